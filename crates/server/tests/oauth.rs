//! The hub as an OAuth2 authorization server, against the real server: the client-credentials
//! grant, the key set and metadata, key rotation, the keys kept in the store, and every kind of
//! bad token in the hub's name. External issuers are in `identity_providers.rs`.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::jwt::*;
use common::{ADMIN, TestHub, agent_addr, eventually, raw};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use switchboard_client::{AuditQuery, Client, InboxOptions};
use switchboard_core::api::SendMessage;
use switchboard_core::limits::{Rate, TenantLimits};

// ---- the client-credentials grant ----

#[tokio::test]
async fn an_agent_gets_a_token_by_post_and_basic_and_acts_with_it() {
    let hub = TestHub::start().await;
    let (sender, _) = hub.agent("sender", &[]).await;
    let (receiver, receiver_client) = hub.agent("receiver", &[]).await;
    let id = sender.agent.id.as_str();

    let form = [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", &sender.api_key)];
    let (status, ct, cache, _, body) = token_post(&hub, &form, None).await;
    assert_eq!((status, ct.as_str(), cache.as_str()), (200, "application/json", "no-store"), "{body}");
    assert_eq!((body["token_type"].as_str(), body["expires_in"].as_u64()), (Some("Bearer"), Some(900)));
    let by_post = body["access_token"].as_str().unwrap().to_owned();

    let (status, _, _, _, body) =
        token_post(&hub, &[("grant_type", "client_credentials")], Some((id, &sender.api_key))).await;
    assert_eq!(status, 200, "{body}");
    let by_basic = body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(by_post, by_basic, "each token has its own jti");

    for token in [&by_post, &by_basic] {
        let (status, who) = whoami(&hub, token).await;
        assert_eq!((status, who["agent_id"].as_str(), who["tenant"].as_str()), (200, Some(id), Some("default")));
    }
    // A send with the JWT comes from the agent.
    let jwt_client = Client::new(hub.url(), Some(by_post.clone()));
    let sent = jwt_client.send(&SendMessage::text(agent_addr(&receiver.agent.id), "via jwt")).await.expect("send");
    let got = receiver_client.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
    assert_eq!(got.messages[0].message.id, sent.id);
    assert_eq!(got.messages[0].message.from, agent_addr(id));

    // Each issue is audited, with the jti and never the token or the key.
    let q = AuditQuery { action: Some("oauth.token_issued".into()), ..Default::default() };
    let log = hub.admin().audit(&q).await.unwrap();
    assert_eq!(log.events.len(), 2, "{:?}", log.events);
    let e = &log.events[0];
    assert_eq!((e.actor.as_str(), e.target.as_str()), (agent_addr(id).as_str(), agent_addr(id).as_str()));
    assert_eq!(e.detail["jti"], claims_of(&by_post)["jti"]);
    let text = serde_json::to_string(&log.events).unwrap();
    assert!(!text.contains(&by_post) && !text.contains(&sender.api_key), "a secret in the audit log: {text}");
    hub.stop().await;
}

#[tokio::test]
async fn a_jwt_counts_against_its_agents_api_rate_as_its_key_does() {
    let hub = TestHub::start().await;
    let (a, by_key) = hub.agent("a", &[]).await;
    let jwt = token_for(&hub, &a.agent.id, &a.api_key).await;
    let limits = TenantLimits { api_rate: Some(Rate { per_second: 0.5, burst: 3 }), ..Default::default() };
    hub.admin().put_limits(&limits).await.unwrap();
    by_key.whoami().await.expect("within the burst");
    assert_eq!(whoami(&hub, &jwt).await.0, 200, "within the burst");
    by_key.whoami().await.expect("the burst's last");
    let (status, body) = whoami(&hub, &jwt).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")), "one bucket for the agent: {body}");
    hub.stop().await;
}

#[tokio::test]
async fn token_requests_are_refused_with_rfc6749_errors() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("a", &[]).await;
    let (b, _) = hub.agent("b", &[]).await;
    let id = a.agent.id.as_str();
    let grant = ("grant_type", "client_credentials");
    // What is wrong, the form, HTTP Basic, and the answer.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "a wrong secret",
            vec![grant, ("client_id", id), ("client_secret", "sbk_not-a-key")],
            None,
            401,
            "invalid_client",
        ),
        (
            "another agent's key",
            vec![grant, ("client_id", id), ("client_secret", &b.api_key)],
            None,
            401,
            "invalid_client",
        ),
        ("the admin token", vec![grant, ("client_id", id), ("client_secret", ADMIN)], None, 401, "invalid_client"),
        ("a wrong secret by Basic", vec![grant], Some((id, "sbk_nope")), 401, "invalid_client"),
        ("no credentials", vec![grant], None, 401, "invalid_client"),
        (
            "another grant",
            vec![("grant_type", "password"), ("client_id", id), ("client_secret", &a.api_key)],
            None,
            400,
            "unsupported_grant_type",
        ),
        ("no grant", vec![("client_id", id), ("client_secret", &a.api_key)], None, 400, "invalid_request"),
        ("two methods", vec![grant, ("client_secret", &a.api_key)], Some((id, &a.api_key)), 400, "invalid_request"),
        (
            "a repeated parameter",
            vec![grant, grant, ("client_id", id), ("client_secret", &a.api_key)],
            None,
            400,
            "invalid_request",
        ),
    ];
    for (what, form, basic, status, error) in cases {
        let (got, ct, cache, www, body) = token_post(&hub, &form, basic).await;
        assert_eq!((got, body["error"].as_str()), (status, Some(error)), "{what}: {body}");
        assert_eq!(ct, "application/json", "{what}: RFC 6749 errors, not problem+json");
        assert_eq!(cache, "no-store", "{what}");
        assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{what}");
        assert_eq!(www.starts_with("Basic"), basic.is_some() && status == 401, "{what}: {www}");
    }
    // JSON instead of a form.
    let res = reqwest::Client::new()
        .post(format!("{}/oauth/token", hub.url()))
        .header("content-type", "application/json")
        .body(json!({ "grant_type": "client_credentials", "client_id": id, "client_secret": a.api_key }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_request");

    // Another tenant's agent key gets no token for this tenant's agent.
    let other = hub.admin().create_tenant("other").await.unwrap();
    let other_admin = hub.admin().with_token(other.admin_token.clone());
    let reg = switchboard_core::api::RegisterAgent { name: "o".into(), ..Default::default() };
    let o = other_admin.register_agent(&reg).await.unwrap();
    let form = [grant, ("client_id", id), ("client_secret", o.api_key.as_str())];
    let (status, _, _, _, body) = token_post(&hub, &form, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");

    // A revoked key issues no more tokens.
    token_for(&hub, id, &a.api_key).await;
    let keys = hub.admin().list_agent_keys(id).await.unwrap();
    hub.admin().revoke_agent_key(id, &keys.keys[0].id, None).await.unwrap();
    let form = [grant, ("client_id", id), ("client_secret", a.api_key.as_str())];
    let (status, _, _, _, body) = token_post(&hub, &form, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
    hub.stop().await;
}

#[tokio::test]
async fn the_published_key_verifies_the_token_and_the_metadata_names_the_endpoints() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("a", &[]).await;
    let token = token_for(&hub, &a.agent.id, &a.api_key).await;

    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", hub.url())).await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let k = &keys[0];
    assert_eq!(
        (&k["kty"], &k["crv"], &k["alg"], &k["use"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"), &json!("sig"))
    );
    assert_eq!(header_of(&token)["kid"], k["kid"]);
    assert_eq!(header_of(&token)["alg"], "EdDSA");

    // Anyone can verify it with the published key.
    let key = DecodingKey::from_ed_components(k["x"].as_str().unwrap()).unwrap();
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&[hub.url()]);
    v.set_audience(&[hub.url()]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &v).expect("the published key verifies the token");
    let c = data.claims;
    assert_eq!(c["sub"], agent_addr(&a.agent.id));
    assert_eq!(c["tenant"], "default");
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 900);
    assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16));

    let meta: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", hub.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], hub.url());
    assert_eq!(meta["token_endpoint"], format!("{}/oauth/token", hub.url()));
    assert_eq!(meta["jwks_uri"], format!("{}/.well-known/jwks.json", hub.url()));
    assert_eq!(meta["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(meta["token_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post"]));
    assert_eq!(meta["response_types_supported"], json!([]), "no authorization endpoint, so no response type");
    hub.stop().await;
}

#[tokio::test]
async fn a_rotated_key_keeps_its_tokens_valid_until_they_expire() {
    let hub = TestHub::start_with(|c| c.oauth_token_ttl_secs = 1).await;
    let (a, _) = hub.agent("a", &[]).await;
    let old = token_for(&hub, &a.agent.id, &a.api_key).await;
    let old_kid = header_of(&old)["kid"].as_str().unwrap().to_owned();

    // Only the platform operator rotates: not a tenant's admin, not an agent.
    let b = hub.admin().create_tenant("b").await.unwrap();
    for token in [b.admin_token.as_str(), a.api_key.as_str()] {
        let (status, _, body) = raw(&hub, "POST", "/v1/oauth/keys:rotate", Some(token), None).await;
        assert_eq!(status, 403, "{body}");
    }
    let (status, _, rotated) = raw(&hub, "POST", "/v1/oauth/keys:rotate", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["retired_kid"], old_kid.as_str());
    let new = token_for(&hub, &a.agent.id, &a.api_key).await;
    let new_kid = header_of(&new)["kid"].as_str().unwrap().to_owned();
    assert_eq!(rotated["kid"], new_kid.as_str());
    assert_ne!(new_kid, old_kid);

    let kids = || async {
        let jwks: Value =
            reqwest::get(format!("{}/.well-known/jwks.json", hub.url())).await.unwrap().json().await.unwrap();
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(kids().await, [new_kid.clone(), old_kid.clone()], "the new key first, the old one still published");
    assert_eq!(whoami(&hub, &old).await.0, 200, "a token of the old key still works");
    assert_eq!(whoami(&hub, &new).await.0, 200);
    let log = hub.admin().audit(&AuditQuery { action: Some("oauth.key_rotated".into()), ..Default::default() }).await;
    assert_eq!(log.unwrap().events.len(), 1);

    // Once every token of the old key has expired (1 s, the 5 s leeway, the 5 s cache), the
    // key leaves the set.
    eventually(30, "the retired key to leave the key set", || async {
        (kids().await == [new_kid.clone()]).then_some(())
    })
    .await;
    refused(&hub, &old, "expired").await;
    hub.stop().await;
}

// ---- bad tokens ----

#[tokio::test]
async fn hub_tokens_forged_expired_or_misaddressed_are_refused() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("a", &[]).await;
    let good = token_for(&hub, &a.agent.id, &a.api_key).await;
    let key = hub_key(&hub).await;
    let claims = claims_of(&good);
    let with = |patch: Value| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        c
    };
    // Signed with the hub's own key, so that only the one thing named is wrong.
    assert_eq!(whoami(&hub, &sign(&key, &with(json!({})))).await.0, 200, "the forging itself is sound");
    refused(&hub, &sign(&key, &with(json!({ "exp": now() - 60, "iat": now() - 120, "nbf": now() - 120 }))), "expired")
        .await;
    refused(&hub, &sign(&key, &with(json!({ "nbf": now() + 600 }))), "not valid yet").await;
    // A time of the wrong type is not a time left out (CVE-2026-25537 in jsonwebtoken 9).
    refused(&hub, &sign(&key, &with(json!({ "nbf": (now() + 600).to_string() }))), "malformed").await;
    refused(&hub, &sign(&key, &with(json!({ "exp": "never" }))), "malformed").await;
    refused(&hub, &sign(&key, &with(json!({ "aud": "https://elsewhere.example" }))), "wrong audience").await;
    refused(&hub, &sign(&key, &with(json!({ "iss": "https://elsewhere.example" }))), "wrong issuer").await;

    // The hub's claims with a signature that is not the hub's.
    let mut other = ed_key(&key.kid);
    other.kid = key.kid.clone();
    refused(&hub, &sign(&other, &claims), "bad signature").await;
    let (head, _) = good.rsplit_once('.').unwrap();
    let mut sig = B64.decode(good.rsplit('.').next().unwrap()).unwrap();
    sig[0] ^= 1;
    refused(&hub, &format!("{head}.{}", B64.encode(&sig)), "bad signature").await;
    // A payload changed under the hub's signature: acting as another agent.
    let (b, _) = hub.agent("b", &[]).await;
    let parts: Vec<&str> = good.split('.').collect();
    let swapped = B64.encode(with(json!({ "sub": agent_addr(&b.agent.id) })).to_string());
    refused(&hub, &format!("{}.{swapped}.{}", parts[0], parts[2]), "bad signature").await;

    refused(&hub, &unsigned(&key.kid, &claims), "unsupported alg").await;
    refused(&hub, &hs256_with(&key.kid, &key.public, &claims), "unsupported alg").await;
    refused(&hub, &hs256_with(&key.kid, key.jwk["x"].as_str().unwrap().as_bytes(), &claims), "unsupported alg").await;
    let mut unknown = ed_key("sb-unknown");
    unknown.kid = "sb-unknown".into();
    refused(&hub, &sign(&unknown, &claims), "does not publish").await;

    // A token of a deleted agent is refused at once, also one this node has just verified.
    let (c, _) = hub.agent("c", &[]).await;
    let doomed = token_for(&hub, &c.agent.id, &c.api_key).await;
    assert_eq!(whoami(&hub, &doomed).await.0, 200);
    hub.admin().delete_agent(&c.agent.id).await.unwrap();
    refused(&hub, &doomed, "no longer exists").await;
    hub.stop().await;
}

// ---- the keys live in the store ----

/// The signing key is made once and kept: a restarted node verifies the tokens it issued
/// before. On PostgreSQL, a second node on the same database (and the same `public_url`)
/// verifies the first node's tokens, and signs with a key the first rotated once its cache
/// of the keys is read again.
#[tokio::test]
async fn the_signing_keys_are_the_stores_and_every_node_uses_them() {
    let public_url = format!("http://hub-{}.test", std::process::id());
    let mut hub = TestHub::start_with(|c| c.public_url = Some(public_url.clone())).await;
    let (a, _) = hub.agent("a", &[]).await;
    let before = token_for(&hub, &a.agent.id, &a.api_key).await;
    assert_eq!(claims_of(&before)["iss"], public_url.as_str(), "the configured public URL is the issuer");
    let meta: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", hub.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["token_endpoint"], format!("{public_url}/oauth/token"));

    hub.restart().await;
    assert_eq!(whoami(&hub, &before).await.0, 200, "a restart keeps the key");
    let after = token_for(&hub, &a.agent.id, &a.api_key).await;
    assert_eq!(header_of(&after)["kid"], header_of(&before)["kid"], "no new key at start");

    if hub.database.is_some() {
        let url = hub.config.database_url.clone();
        let other = TestHub::start_with(|c| {
            c.database_url = url;
            c.public_url = Some(public_url.clone());
        })
        .await;
        assert_eq!(whoami(&other, &before).await.0, 200, "another node verifies the first node's token");
        let (status, _, rotated) = raw(&other, "POST", "/v1/oauth/keys:rotate", Some(ADMIN), None).await;
        assert_eq!(status, 200, "{rotated}");
        // The first node reads the keys again within its 5 s cache, then signs with the new one.
        eventually(20, "the first node to sign with the key the second made", || async {
            let t = token_for(&hub, &a.agent.id, &a.api_key).await;
            (header_of(&t)["kid"] == rotated["kid"]).then_some(())
        })
        .await;
        assert_eq!(whoami(&hub, &before).await.0, 200, "the retired key still verifies on both");
        assert_eq!(whoami(&other, &before).await.0, 200);
        other.stop().await;
    }
    hub.stop().await;
}
