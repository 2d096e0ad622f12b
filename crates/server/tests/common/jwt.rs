//! JWTs for the OAuth2 tests: the hub's token endpoint, keys to sign with (Ed25519, P-256, a
//! fixed RSA key; the hub's own, read from its store), bad tokens of every kind, and an
//! identity provider played by a key set served on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use super::{TestHub, raw};

/// `POST /oauth/token` with this form, and HTTP Basic if given: status, content type, the
/// `cache-control` and `www-authenticate` headers, body.
pub async fn token_post(
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
pub async fn token_for(hub: &TestHub, id: &str, key: &str) -> String {
    let form = [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", key)];
    let (status, _, _, _, body) = token_post(hub, &form, None).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("an access token").to_owned()
}

/// `GET /v1/whoami` with this bearer token: status and body.
pub async fn whoami(hub: &TestHub, token: &str) -> (u16, Value) {
    let (status, _, body) = raw(hub, "GET", "/v1/whoami", Some(token), None).await;
    (status, body)
}

/// Asserts a 401 whose detail says `why`.
pub async fn refused(hub: &TestHub, token: &str, why: &str) {
    let (status, body) = whoami(hub, token).await;
    assert_eq!(status, 401, "{why}: {body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(why), "want `{why}` in: {detail}");
}

pub fn header_of(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

pub fn claims_of(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A signing key of the test (or the hub's, read from its store) and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub enc: EncodingKey,
    pub jwk: Value,
    /// The raw public key bytes.
    pub public: Vec<u8>,
}

pub fn ed_key(kid: &str) -> TestKey {
    let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    ed_from_pkcs8(kid, doc.as_ref())
}

pub fn ed_from_pkcs8(kid: &str, pkcs8: &[u8]) -> TestKey {
    let public = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).unwrap().public_key().as_ref().to_vec();
    let jwk =
        json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig", "x": B64.encode(&public) });
    TestKey { kid: kid.into(), alg: Algorithm::EdDSA, enc: EncodingKey::from_ed_der(pkcs8), jwk, public }
}

pub fn es_key(kid: &str) -> TestKey {
    let rng = ring::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
    let public = pair.public_key().as_ref().to_vec(); // 0x04 ‖ x ‖ y
    let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": kid, "x": B64.encode(&public[1..33]), "y": B64.encode(&public[33..]) });
    TestKey { kid: kid.into(), alg: Algorithm::ES256, enc: EncodingKey::from_ec_der(doc.as_ref()), jwk, public }
}

/// A 2048-bit RSA key made for this test with `openssl genpkey` (PKCS #1 DER, base64): ring,
/// which signs here, cannot generate RSA keys. It signs nothing outside these tests.
pub const RSA_TEST_KEY_DER: &str = "MIIEogIBAAKCAQEA7KMfbUCxGtdd2Np0SNggSPWlk3dHjuSK8ScTQI60znYjiUb8JS5FENXnlrmdpKh8P/gdT4YykPh8otA1xflp/oxsOgXZ+9f4y4PAS6Aepg/RxaJP7rGppu/Iftm77sTr17iV8SfJ8uvek2Mg6hbBglApr15bH37VvRq4fSfzlntuKFUdLmvknIR3lAmTWIPgALzv3gaYrlc5O7ElLkj1VRBHgVKwdaB7s1u1vUf8ftLDmX8Du1sGJ5f7rT7b1D8Zb0c57eIrnHptCGRpPQmFKVIz/ml3DzpbfQtcL8jsNzHO8ZqIgLOZKqS6UHOOgLT5dLEburFi2h8H1WYPZfXkDwIDAQABAoIBAAQYNnz/d5ENVPRho013X+ejSIAqujRAxB60HGMrlPlVlfvUHJzQFiXaba1v/MhSmgPJWUh8+/cCNbXjgGqyjCD5cQ339/Ohow5ycytb0+vvriOLUXLB5DudPozjW5sgESykZwPLOnVXm3xVZMZoKmUE2hPMwCrlWPFyuup/fHmIFLSWA4tcwMzYKOmA+IslTfrjQqmshA5V8Vt58pAYdnsuW76VJwC8cHGxi+QHjGVBytsCVr4MuLTz9zPuEH9bGnZMG9mliwNnSv6munYxGS3tvfS0IfPW5yUp6iAC0ElqXWy8BAhCMS3wpNlpbqIWRZ0/YYC9hYu/W8rALp9BgJECgYEA/K/PhyHsWA3KKSCM5IUSp3rwK8qUv2V2dwPTMZKWlQbdj0GMLgO3GFfHHdPyuM6X4fo+a7KbjnRee8k3rfw8SgLt61vlBBekY60oWMzrQsQwzkE474UFQ4JAlO4o2JJwiAZoNYFzhWA1Tr1p1f1TH3HZR8T/b1es8ziU18p5vU0CgYEA771wVhOnsh9xN/O9PJICWXBMpEKWB5jLJ+/IuOdRLHakvXRl+3jPYuBSxLSiX/N2AJg10GJECZuYR3oXVih3yiP66QnF7CipP4yCssUZb1AnSv/90DzO1SSK03awtwjXNfcP1lJGhnEUCgm3/T/nkBLfVYM8C5qfVZqQy1/b6MsCgYBxx6CE0qufgqYTGssWYy1hKKRYs6GDBWbwdFJ2sfEILc06ImPCnH2ngm7waW2T9cLCSHIvAH+3B4M77gEaYMes8+C55+kZjKPDFkdipPMSX1Eyrn+6qoUSPuZhqVPPITF2rpvh6+ZemlGmoPe1GZqCQDt8a6IxOqNv6XxsJonmyQKBgA9zpknl+mkAnct9ajT9NCmPk2EC6aiTsIRicA1620CCZRvQ5MHQh41X5/3FprGIf5KKPO2xZ7E21hnFRLvI3++nYgSjHJ6cAEyYQdRD39/MyruKxFEnmi0irc/zVnB1oWlZAyxNIT6JC0GaXsFz3PjsPnjEfJpC3QIndC2ngAUBAoGAU5biQY5S3AzJyg1IDG9JbqOD82FhVJAaPIWjAOA23jWgTgMyqSAFRxIf1cz6lP7eo6pZR/hk1SF4kjVjn0VMF/q9tMM899kjI+kwVE9nveFAQGtDGj3AvgvVwvRo+gIAHSm4Ha3jWuGiqewHPvCGx7SvMfUwLr6RooB/25iWSnw=";
/// Its public modulus, base64url (the exponent is 65537, `AQAB`).
pub const RSA_TEST_KEY_N: &str = "7KMfbUCxGtdd2Np0SNggSPWlk3dHjuSK8ScTQI60znYjiUb8JS5FENXnlrmdpKh8P_gdT4YykPh8otA1xflp_oxsOgXZ-9f4y4PAS6Aepg_RxaJP7rGppu_Iftm77sTr17iV8SfJ8uvek2Mg6hbBglApr15bH37VvRq4fSfzlntuKFUdLmvknIR3lAmTWIPgALzv3gaYrlc5O7ElLkj1VRBHgVKwdaB7s1u1vUf8ftLDmX8Du1sGJ5f7rT7b1D8Zb0c57eIrnHptCGRpPQmFKVIz_ml3DzpbfQtcL8jsNzHO8ZqIgLOZKqS6UHOOgLT5dLEburFi2h8H1WYPZfXkDw";

pub fn rs_key(kid: &str) -> TestKey {
    let der = base64::engine::general_purpose::STANDARD.decode(RSA_TEST_KEY_DER).unwrap();
    let jwk = json!({ "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": RSA_TEST_KEY_N, "e": "AQAB" });
    let public = B64.decode(RSA_TEST_KEY_N).unwrap();
    TestKey { kid: kid.into(), alg: Algorithm::RS256, enc: EncodingKey::from_rsa_der(&der), jwk, public }
}

pub fn sign(key: &TestKey, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &key.enc).unwrap()
}

/// `alg: none`, unsigned.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let h = json!({ "alg": "none", "typ": "JWT", "kid": kid });
    format!("{}.{}.", B64.encode(h.to_string()), B64.encode(claims.to_string()))
}

/// HS256 with the public key's bytes as the HMAC secret: the classic algorithm confusion.
pub fn hs256_with(kid: &str, secret: &[u8], claims: &Value) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// The hub's current signing key, read from its store: to forge tokens that are signed
/// right and wrong in every other way.
pub async fn hub_key(hub: &TestHub) -> TestKey {
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
pub struct Idp {
    pub jwks: Arc<Mutex<Value>>,
    pub fetches: Arc<AtomicUsize>,
    /// While set, the key set answers 503.
    pub down: Arc<std::sync::atomic::AtomicBool>,
    pub url: String,
}

pub async fn serve_jwks(keys: &[&TestKey]) -> Idp {
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

pub const IDP: &str = "https://idp.test";
pub const AUDIENCE: &str = "switchboard-test";

pub fn idp_claims(extra: Value) -> Value {
    let mut c = json!({ "iss": IDP, "aud": AUDIENCE, "sub": "svc-1", "iat": now(), "exp": now() + 300 });
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

pub async fn put_providers(hub: &TestHub, token: &str, body: Value) -> (u16, String, Value) {
    raw(hub, "PUT", "/v1/identity-providers", Some(token), Some(body.to_string())).await
}
