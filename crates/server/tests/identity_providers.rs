//! Tokens of the identity providers a tenant trusts, against the real server: an issuer played
//! by a key set this test serves on loopback, its keys (EdDSA, ES256, RS256) and rotation, the
//! claims that name an agent or a person, every refusal, and the SSRF guard on its key set.

mod common;

use std::sync::atomic::Ordering;

use common::jwt::*;
use common::{ADMIN, TestHub, agent_addr, eventually, raw};
use serde_json::json;
use switchboard_client::{AuditQuery, Client};
use switchboard_core::api::SendMessage;
use switchboard_core::people::CreateUser;
use switchboard_core::principal::Role;

#[tokio::test]
async fn an_external_issuers_token_acts_as_the_agent_its_claim_names() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("a", &[]).await;
    let (ed, es, rs) = (ed_key("idp-ed"), es_key("idp-es"), rs_key("idp-rs"));
    let idp = serve_jwks(&[&ed, &es, &rs]).await;
    let provider = json!({ "issuer": IDP, "audience": AUDIENCE, "jwks_url": idp.url,
                           "claims": { "agent": "agent_id", "user": "email" } });
    let (status, _, body) = put_providers(&hub, ADMIN, json!({ "providers": [provider] })).await;
    assert_eq!(status, 200, "{body}");

    let as_a = idp_claims(json!({ "agent_id": a.agent.id }));
    for key in [&ed, &es, &rs] {
        let (status, who) = whoami(&hub, &sign(key, &as_a)).await;
        assert_eq!((status, who["agent_id"].as_str()), (200, Some(a.agent.id.as_str())), "{:?}: {who}", key.alg);
    }
    let t = sign(&ed, &as_a);
    let sent = Client::new(hub.url(), Some(t)).send(&SendMessage::text(agent_addr(&a.agent.id), "hi")).await;
    assert!(sent.is_ok(), "{sent:?}");

    refused(&hub, &sign(&ed, &idp_claims(json!({ "agent_id": a.agent.id, "aud": "someone-else" }))), "wrong audience")
        .await;
    refused(
        &hub,
        &sign(&ed, &idp_claims(json!({ "agent_id": a.agent.id, "iss": "https://unknown.test" }))),
        "wrong issuer",
    )
    .await;
    let past = json!({ "agent_id": a.agent.id, "iat": now() - 600, "exp": now() - 60 });
    refused(&hub, &sign(&ed, &idp_claims(past)), "expired").await;
    let later = json!({ "agent_id": a.agent.id, "nbf": (now() + 600).to_string() });
    refused(&hub, &sign(&ed, &idp_claims(later)), "malformed").await;
    let mut forged = ed_key("idp-ed");
    forged.kid = ed.kid.clone();
    refused(&hub, &sign(&forged, &as_a), "bad signature").await;
    refused(&hub, &unsigned(&ed.kid, &as_a), "unsupported alg").await;
    refused(&hub, &hs256_with(&ed.kid, &ed.public, &as_a), "unsupported alg").await;
    refused(&hub, &hs256_with(&es.kid, &es.public, &as_a), "unsupported alg").await;
    refused(&hub, &hs256_with(&rs.kid, &rs.public, &as_a), "unsupported alg").await;
    // An EdDSA key cannot verify a token that says ES256.
    let mut mislabeled = es_key("x");
    mislabeled.kid = ed.kid.clone();
    refused(&hub, &sign(&mislabeled, &as_a), "unsupported alg").await;
    refused(&hub, &sign(&ed, &idp_claims(json!({ "agent_id": "no-such-agent" }))), "not registered").await;

    // Another tenant's agent id in the claim does not reach across.
    let b = hub.admin().create_tenant("b").await.unwrap();
    let b_admin = hub.admin().with_token(b.admin_token.clone());
    let b_agent = b_admin
        .register_agent(&switchboard_core::api::RegisterAgent { name: "b1".into(), ..Default::default() })
        .await
        .unwrap();
    refused(&hub, &sign(&ed, &idp_claims(json!({ "agent_id": b_agent.agent.id }))), "not registered").await;
    hub.stop().await;
}

#[tokio::test]
async fn an_external_issuers_token_acts_as_the_person_its_email_or_sub_names() {
    let hub = TestHub::start().await;
    let key = ed_key("k1");
    let idp = serve_jwks(&[&key]).await;
    let by_email = json!({ "issuer": IDP, "audience": AUDIENCE, "jwks_url": idp.url, "claims": { "user": "email" } });
    let by_sub = json!({ "issuer": IDP, "audience": "by-sub", "jwks_url": idp.url, "claims": { "user": "sub" } });
    assert_eq!(put_providers(&hub, ADMIN, json!({ "providers": [by_email, by_sub] })).await.0, 200);
    let ann = CreateUser { email: "ann@example.com".into(), name: "Ann".into(), role: Role::Viewer, password: None };
    let ann = hub.admin().create_user(&ann).await.unwrap().user;

    // By email (compared without case), with the role the person has.
    let token = sign(&key, &idp_claims(json!({ "email": "Ann@Example.com", "email_verified": true })));
    let (status, who) = whoami(&hub, &token).await;
    assert_eq!((status, who["principal"].as_str()), (200, Some(format!("user:{}", ann.id).as_str())), "{who}");
    assert_eq!(who["user"]["role"], "viewer");
    // A viewer may not send, whoever vouches for them.
    let (a, _) = hub.agent("a", &[]).await;
    let send = Client::new(hub.url(), Some(token)).send(&SendMessage::text(agent_addr(&a.agent.id), "hi")).await;
    assert_eq!(send.unwrap_err().code(), Some("forbidden"));
    // By sub: the user id.
    let token = sign(&key, &idp_claims(json!({ "aud": "by-sub", "sub": ann.id })));
    assert_eq!(whoami(&hub, &token).await.1["user"]["id"], ann.id.as_str());

    refused(&hub, &sign(&key, &idp_claims(json!({ "email": "bob@example.com" }))), "names no person").await;
    let unverified = json!({ "email": "ann@example.com", "email_verified": false });
    refused(&hub, &sign(&key, &idp_claims(unverified)), "email_verified").await;
    refused(&hub, &sign(&key, &idp_claims(json!({ "aud": "by-sub", "sub": "no-such-user" }))), "names no person").await;
    hub.stop().await;
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_key_set_again_at_most_once_per_interval() {
    let hub = TestHub::start_with(|c| c.jwks_refresh_min_ms = 2000).await;
    let (a, _) = hub.agent("a", &[]).await;
    let first = ed_key("k1");
    let idp = serve_jwks(&[&first]).await;
    let provider =
        json!({ "issuer": IDP, "audience": AUDIENCE, "jwks_url": idp.url, "claims": { "agent": "agent_id" } });
    assert_eq!(put_providers(&hub, ADMIN, json!({ "providers": [provider] })).await.0, 200);
    let as_a = idp_claims(json!({ "agent_id": a.agent.id }));
    assert_eq!(whoami(&hub, &sign(&first, &as_a)).await.0, 200);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);

    // The issuer rotates; the hub learns the new key by fetching again, once.
    let second = ed_key("k2");
    *idp.jwks.lock().unwrap() = json!({ "keys": [second.jwk] });
    let token = sign(&second, &as_a);
    eventually(20, "the new key to be fetched", || async { (whoami(&hub, &token).await.0 == 200).then_some(()) }).await;
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2, "one fetch for the unknown kid, however many tries");

    // Made-up kids right after: no fetch per token.
    for i in 0..10 {
        let mut junk = ed_key("x");
        junk.kid = format!("junk-{i}");
        refused(&hub, &sign(&junk, &as_a), "has no key").await;
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2, "within the interval, unknown kids fetch nothing");
    hub.stop().await;
}

#[tokio::test]
async fn an_issuer_that_is_down_is_asked_once_per_interval_and_works_once_up() {
    let hub = TestHub::start_with(|c| c.jwks_refresh_min_ms = 2000).await;
    let (a, _) = hub.agent("a", &[]).await;
    let key = ed_key("k1");
    let idp = serve_jwks(&[&key]).await;
    idp.down.store(true, Ordering::SeqCst);
    let provider =
        json!({ "issuer": IDP, "audience": AUDIENCE, "jwks_url": idp.url, "claims": { "agent": "agent_id" } });
    assert_eq!(put_providers(&hub, ADMIN, json!({ "providers": [provider] })).await.0, 200);
    let token = sign(&key, &idp_claims(json!({ "agent_id": a.agent.id })));
    for _ in 0..5 {
        refused(&hub, &token, "issuer unreachable").await;
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "a failing issuer is not asked once per token");

    idp.down.store(false, Ordering::SeqCst);
    eventually(20, "the issuer's keys once it is up", || async { (whoami(&hub, &token).await.0 == 200).then_some(()) })
        .await;
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
    hub.stop().await;
}

#[tokio::test]
async fn identity_providers_are_checked_audited_and_held_by_one_tenant() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("a", &[]).await;
    let good = json!({ "issuer": IDP, "audience": AUDIENCE, "jwks_url": "https://idp.test/jwks", "claims": { "user": "sub" } });

    let (status, _, body) = put_providers(&hub, &a.api_key, json!({ "providers": [good] })).await;
    assert_eq!(status, 403, "an agent may not: {body}");
    let bad = json!({ "issuer": hub.url(), "audience": "", "jwks_url": "ftp://x", "claims": { "user": "name" } });
    let (status, ct, body) = put_providers(&hub, ADMIN, json!({ "providers": [bad] })).await;
    assert_eq!((status, ct.as_str()), (422, "application/problem+json"), "{body}");
    let paths: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["providers[0].audience", "providers[0].issuer", "providers[0].jwks_url", "providers[0].claims.user"]
    );

    assert_eq!(put_providers(&hub, ADMIN, json!({ "providers": [good] })).await.0, 200);
    let (status, _, listed) = raw(&hub, "GET", "/v1/identity-providers", Some(ADMIN), None).await;
    assert_eq!((status, &listed["providers"][0]), (200, &good));
    let q = AuditQuery { action: Some("identity_providers.update".into()), ..Default::default() };
    let log = hub.admin().audit(&q).await.unwrap();
    assert_eq!(log.events.len(), 1, "the refused PUTs wrote nothing");
    assert_eq!(log.events[0].detail["issuers"][0]["issuer"], IDP);

    // The same issuer and audience in another tenant would make a token's tenant ambiguous.
    let b = hub.admin().create_tenant("b").await.unwrap();
    let (status, _, body) = put_providers(&hub, &b.admin_token, json!({ "providers": [good] })).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")), "{body}");
    let mine = json!({ "issuer": IDP, "audience": "tenant-b", "jwks_url": "https://idp.test/jwks", "claims": { "agent": "aid" } });
    assert_eq!(put_providers(&hub, &b.admin_token, json!({ "providers": [mine] })).await.0, 200);
    let (_, _, b_list) = raw(&hub, "GET", "/v1/identity-providers", Some(&b.admin_token), None).await;
    assert_eq!(b_list["providers"].as_array().unwrap().len(), 1, "B sees its own only: {b_list}");
    hub.stop().await;
}

#[tokio::test]
async fn key_sets_on_private_addresses_need_the_node_to_allow_them() {
    let hub = TestHub::start_with(|c| c.allow_private_endpoints = false).await;
    let (a, _) = hub.agent("a", &[]).await;
    let key = ed_key("k1");
    let idp = serve_jwks(&[&key]).await;
    let literal =
        json!({ "issuer": IDP, "audience": AUDIENCE, "jwks_url": idp.url, "claims": { "agent": "agent_id" } });
    let (status, _, body) = put_providers(&hub, ADMIN, json!({ "providers": [literal] })).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["path"], "providers[0].jwks_url");

    // A name that resolves to loopback passes the PUT, and is refused when fetched.
    let by_name = idp.url.replace("127.0.0.1", "localhost");
    let named = json!({ "issuer": IDP, "audience": AUDIENCE, "jwks_url": by_name, "claims": { "agent": "agent_id" } });
    assert_eq!(put_providers(&hub, ADMIN, json!({ "providers": [named] })).await.0, 200);
    refused(&hub, &sign(&key, &idp_claims(json!({ "agent_id": a.agent.id }))), "issuer unreachable").await;
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 0, "the hub never reached the loopback address");
    hub.stop().await;
}
