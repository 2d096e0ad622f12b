//! OAuth2 and JWTs against the real server: the client-credentials grant, the key set and
//! metadata, key rotation, every kind of bad token, and an external issuer played by a key
//! set this test serves on loopback.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{ADMIN, TestHub, agent_addr, eventually, raw};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use switchboard_client::{AuditQuery, Client, InboxOptions};
use switchboard_core::api::SendMessage;
use switchboard_core::people::CreateUser;
use switchboard_core::principal::Role;

// ---- helpers ----

/// `POST /oauth/token` with this form, and HTTP Basic if given: status, content type, the
/// `cache-control` and `www-authenticate` headers, body.
async fn token_post(
    hub: &TestHub,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, String, String, String, Value) {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut req = reqwest::Client::new()
        .post(format!("{}/oauth/token", hub.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.expect("the hub answers");
    let h = |n: &str| res.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (ct, cc, wa) = (h("content-type"), h("cache-control"), h("www-authenticate"));
    let status = res.status().as_u16();
    (status, ct, cc, wa, res.json().await.unwrap_or(Value::Null))
}

/// A token for agent `id` with `key`, by the form.
async fn token_for(hub: &TestHub, id: &str, key: &str) -> String {
    let form = [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", key)];
    let (status, _, _, _, body) = token_post(hub, &form, None).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("an access token").to_owned()
}

/// `GET /v1/whoami` with this bearer token: status and body.
async fn whoami(hub: &TestHub, token: &str) -> (u16, Value) {
    let (status, _, body) = raw(hub, "GET", "/v1/whoami", Some(token), None).await;
    (status, body)
}

/// Asserts a 401 whose detail says `why`.
async fn refused(hub: &TestHub, token: &str, why: &str) {
    let (status, body) = whoami(hub, token).await;
    assert_eq!(status, 401, "{why}: {body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(why), "want `{why}` in: {detail}");
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

fn claims_of(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A signing key of the test (or the hub's, read from its store) and its public JWK.
struct TestKey {
    kid: String,
    alg: Algorithm,
    enc: EncodingKey,
    jwk: Value,
    /// The raw public key bytes.
    public: Vec<u8>,
}

fn ed_key(kid: &str) -> TestKey {
    let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    ed_from_pkcs8(kid, doc.as_ref())
}

fn ed_from_pkcs8(kid: &str, pkcs8: &[u8]) -> TestKey {
    let public = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).unwrap().public_key().as_ref().to_vec();
    let jwk =
        json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig", "x": B64.encode(&public) });
    TestKey { kid: kid.into(), alg: Algorithm::EdDSA, enc: EncodingKey::from_ed_der(pkcs8), jwk, public }
}

fn es_key(kid: &str) -> TestKey {
    let rng = ring::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
    let public = pair.public_key().as_ref().to_vec(); // 0x04 ‖ x ‖ y
    let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": kid, "x": B64.encode(&public[1..33]), "y": B64.encode(&public[33..]) });
    TestKey { kid: kid.into(), alg: Algorithm::ES256, enc: EncodingKey::from_ec_der(doc.as_ref()), jwk, public }
}

/// A 2048-bit RSA key made for this test with `openssl genpkey` (PKCS #1 DER, base64): ring,
/// which signs here, cannot generate RSA keys. It signs nothing outside these tests.
const RSA_TEST_KEY_DER: &str = "MIIEogIBAAKCAQEA7KMfbUCxGtdd2Np0SNggSPWlk3dHjuSK8ScTQI60znYjiUb8JS5FENXnlrmdpKh8P/gdT4YykPh8otA1xflp/oxsOgXZ+9f4y4PAS6Aepg/RxaJP7rGppu/Iftm77sTr17iV8SfJ8uvek2Mg6hbBglApr15bH37VvRq4fSfzlntuKFUdLmvknIR3lAmTWIPgALzv3gaYrlc5O7ElLkj1VRBHgVKwdaB7s1u1vUf8ftLDmX8Du1sGJ5f7rT7b1D8Zb0c57eIrnHptCGRpPQmFKVIz/ml3DzpbfQtcL8jsNzHO8ZqIgLOZKqS6UHOOgLT5dLEburFi2h8H1WYPZfXkDwIDAQABAoIBAAQYNnz/d5ENVPRho013X+ejSIAqujRAxB60HGMrlPlVlfvUHJzQFiXaba1v/MhSmgPJWUh8+/cCNbXjgGqyjCD5cQ339/Ohow5ycytb0+vvriOLUXLB5DudPozjW5sgESykZwPLOnVXm3xVZMZoKmUE2hPMwCrlWPFyuup/fHmIFLSWA4tcwMzYKOmA+IslTfrjQqmshA5V8Vt58pAYdnsuW76VJwC8cHGxi+QHjGVBytsCVr4MuLTz9zPuEH9bGnZMG9mliwNnSv6munYxGS3tvfS0IfPW5yUp6iAC0ElqXWy8BAhCMS3wpNlpbqIWRZ0/YYC9hYu/W8rALp9BgJECgYEA/K/PhyHsWA3KKSCM5IUSp3rwK8qUv2V2dwPTMZKWlQbdj0GMLgO3GFfHHdPyuM6X4fo+a7KbjnRee8k3rfw8SgLt61vlBBekY60oWMzrQsQwzkE474UFQ4JAlO4o2JJwiAZoNYFzhWA1Tr1p1f1TH3HZR8T/b1es8ziU18p5vU0CgYEA771wVhOnsh9xN/O9PJICWXBMpEKWB5jLJ+/IuOdRLHakvXRl+3jPYuBSxLSiX/N2AJg10GJECZuYR3oXVih3yiP66QnF7CipP4yCssUZb1AnSv/90DzO1SSK03awtwjXNfcP1lJGhnEUCgm3/T/nkBLfVYM8C5qfVZqQy1/b6MsCgYBxx6CE0qufgqYTGssWYy1hKKRYs6GDBWbwdFJ2sfEILc06ImPCnH2ngm7waW2T9cLCSHIvAH+3B4M77gEaYMes8+C55+kZjKPDFkdipPMSX1Eyrn+6qoUSPuZhqVPPITF2rpvh6+ZemlGmoPe1GZqCQDt8a6IxOqNv6XxsJonmyQKBgA9zpknl+mkAnct9ajT9NCmPk2EC6aiTsIRicA1620CCZRvQ5MHQh41X5/3FprGIf5KKPO2xZ7E21hnFRLvI3++nYgSjHJ6cAEyYQdRD39/MyruKxFEnmi0irc/zVnB1oWlZAyxNIT6JC0GaXsFz3PjsPnjEfJpC3QIndC2ngAUBAoGAU5biQY5S3AzJyg1IDG9JbqOD82FhVJAaPIWjAOA23jWgTgMyqSAFRxIf1cz6lP7eo6pZR/hk1SF4kjVjn0VMF/q9tMM899kjI+kwVE9nveFAQGtDGj3AvgvVwvRo+gIAHSm4Ha3jWuGiqewHPvCGx7SvMfUwLr6RooB/25iWSnw=";
/// Its public modulus, base64url (the exponent is 65537, `AQAB`).
const RSA_TEST_KEY_N: &str = "7KMfbUCxGtdd2Np0SNggSPWlk3dHjuSK8ScTQI60znYjiUb8JS5FENXnlrmdpKh8P_gdT4YykPh8otA1xflp_oxsOgXZ-9f4y4PAS6Aepg_RxaJP7rGppu_Iftm77sTr17iV8SfJ8uvek2Mg6hbBglApr15bH37VvRq4fSfzlntuKFUdLmvknIR3lAmTWIPgALzv3gaYrlc5O7ElLkj1VRBHgVKwdaB7s1u1vUf8ftLDmX8Du1sGJ5f7rT7b1D8Zb0c57eIrnHptCGRpPQmFKVIz_ml3DzpbfQtcL8jsNzHO8ZqIgLOZKqS6UHOOgLT5dLEburFi2h8H1WYPZfXkDw";

fn rs_key(kid: &str) -> TestKey {
    let der = base64::engine::general_purpose::STANDARD.decode(RSA_TEST_KEY_DER).unwrap();
    let jwk = json!({ "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": RSA_TEST_KEY_N, "e": "AQAB" });
    let public = B64.decode(RSA_TEST_KEY_N).unwrap();
    TestKey { kid: kid.into(), alg: Algorithm::RS256, enc: EncodingKey::from_rsa_der(&der), jwk, public }
}

fn sign(key: &TestKey, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &key.enc).unwrap()
}

/// `alg: none`, unsigned.
fn unsigned(kid: &str, claims: &Value) -> String {
    let h = json!({ "alg": "none", "typ": "JWT", "kid": kid });
    format!("{}.{}.", B64.encode(h.to_string()), B64.encode(claims.to_string()))
}

/// HS256 with the public key's bytes as the HMAC secret: the classic algorithm confusion.
fn hs256_with(kid: &str, secret: &[u8], claims: &Value) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// The hub's current signing key, read from its store: to forge tokens that are signed
/// right and wrong in every other way.
async fn hub_key(hub: &TestHub) -> TestKey {
    let sql = "SELECT kid, pkcs8 FROM oauth_keys WHERE retired_at IS NULL";
    let (kid, pkcs8): (String, Vec<u8>) = match &hub.database {
        Some(db) => {
            let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let row = client.query_one(sql, &[]).await.unwrap();
            (row.get(0), row.get(1))
        }
        None => {
            let c = rusqlite::Connection::open(hub.dir.path().join("switchboard.db")).unwrap();
            c.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
        }
    };
    ed_from_pkcs8(&kid, &pkcs8)
}

/// An identity provider played by this test: its key set on loopback, which the test can
/// change, and how often it was fetched.
struct Idp {
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    /// While set, the key set answers 503.
    down: Arc<std::sync::atomic::AtomicBool>,
    url: String,
}

async fn serve_jwks(keys: &[&TestKey]) -> Idp {
    let jwks = Arc::new(Mutex::new(json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })));
    let fetches = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (j, f, d) = (jwks.clone(), fetches.clone(), down.clone());
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (j, f, d) = (j.clone(), f.clone(), d.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                if d.load(Ordering::SeqCst) {
                    return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                }
                Ok(axum::Json(j.lock().unwrap().clone()))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Idp { jwks, fetches, down, url }
}

const IDP: &str = "https://idp.test";
const AUDIENCE: &str = "switchboard-test";

fn idp_claims(extra: Value) -> Value {
    let mut c = json!({ "iss": IDP, "aud": AUDIENCE, "sub": "svc-1", "iat": now(), "exp": now() + 300 });
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

async fn put_providers(hub: &TestHub, token: &str, body: Value) -> (u16, String, Value) {
    raw(hub, "PUT", "/v1/identity-providers", Some(token), Some(body.to_string())).await
}

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

// ---- external issuers ----

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
