//! Tokens from external issuers: which tenant trusts the issuer (and audience), the issuer's
//! key set (fetched, cached, fetched again for an unknown `kid` at most once per
//! `jwks_refresh_min_ms`), and the principal its claims name.
//!
//! The key set is fetched through the SSRF guard of push (no redirects; loopback, private and
//! other special-purpose addresses only where the node allows private endpoints), with a
//! timeout and a size limit, so a tenant admin cannot make the hub reach inside.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;
use switchboard_store::oauth::IdentityProviderRecord;

use super::Refusal;

/// A key set is fetched again after this even when every `kid` is known (issuers rotate).
const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// How long a key set fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest key set read.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// One key of a fetched set, as far as it is read.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

/// A verification key of an issuer, with the one algorithm it verifies.
#[derive(Clone)]
pub struct IssuerKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// The algorithm a JWK is for: its `alg` if it names one, else what its type implies. `None`
/// for keys this hub does not use (encryption keys, symmetric keys, other curves).
fn key_of(j: RawJwk) -> Option<IssuerKey> {
    if j.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let implied = match (j.kty.as_str(), j.crv.as_deref()) {
        ("OKP", Some("Ed25519")) => Algorithm::EdDSA,
        ("RSA", _) => Algorithm::RS256,
        ("EC", Some("P-256")) => Algorithm::ES256,
        _ => return None,
    };
    let alg = match j.alg.as_deref() {
        None => implied,
        Some("EdDSA") if implied == Algorithm::EdDSA => implied,
        Some("RS256") if implied == Algorithm::RS256 => implied,
        Some("ES256") if implied == Algorithm::ES256 => implied,
        Some(_) => return None,
    };
    let key = match alg {
        Algorithm::EdDSA => DecodingKey::from_ed_components(j.x.as_deref()?).ok()?,
        Algorithm::RS256 => DecodingKey::from_rsa_components(j.n.as_deref()?, j.e.as_deref()?).ok()?,
        _ => DecodingKey::from_ec_components(j.x.as_deref()?, j.y.as_deref()?).ok()?,
    };
    Some(IssuerKey { kid: j.kid, alg, key })
}

struct Fetched {
    keys: Arc<Vec<IssuerKey>>,
    /// The last fetch, whether it worked or not.
    at: Instant,
    /// Why the first fetches failed, while no key set was ever read.
    failed: Option<String>,
}

/// Key sets by URL, and the providers of each issuer.
pub struct KeySets {
    http: reqwest::Client,
    allow_private: bool,
    refresh_min: Duration,
    sets: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Fetched>>>>>,
}

impl KeySets {
    pub fn new(allow_private: bool, refresh_min: Duration) -> KeySets {
        KeySets {
            http: crate::domain::push::endpoint::guarded_client(
                FETCH_TIMEOUT,
                allow_private,
                concat!("Switchboard/", env!("CARGO_PKG_VERSION")),
            ),
            allow_private,
            refresh_min,
            sets: Mutex::new(HashMap::new()),
        }
    }

    /// The key of `url`'s set that verifies a token with this header: by `kid`, or the one
    /// key for the token's algorithm when the token names none. An unknown `kid` fetches the
    /// set again, unless it was fetched less than `jwks_refresh_min_ms` ago.
    pub async fn key(&self, url: &str, kid: Option<&str>, alg: Algorithm) -> Result<IssuerKey, Refusal> {
        let slot = {
            let mut sets = self.sets.lock().expect("key set cache poisoned");
            if sets.len() > 10_000 {
                sets.clear();
            }
            sets.entry(url.to_owned()).or_default().clone()
        };
        // One fetch per URL at a time: concurrent requests wait for it and use its answer.
        let mut entry = slot.lock().await;
        let stale = entry.as_ref().is_none_or(|f| {
            let age = f.at.elapsed();
            age >= JWKS_MAX_AGE || (f.failed.is_some() && age >= self.refresh_min)
        });
        if stale {
            self.fetch_into(url, &mut entry).await;
        }
        if let Some(e) = entry.as_ref().and_then(|f| f.failed.as_ref()) {
            return Err(Refusal::IssuerUnreachable(format!(
                "could not fetch the issuer's keys from {url}: {e}; retry later, or ask the tenant admin to check \
                 `jwks_url`"
            )));
        }
        let pick = |keys: &[IssuerKey]| -> Option<IssuerKey> {
            match kid {
                Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned(),
                None => {
                    let mut of_alg = keys.iter().filter(|k| k.alg == alg);
                    match (of_alg.next(), of_alg.next()) {
                        (Some(one), None) => Some(one.clone()),
                        _ => None,
                    }
                }
            }
        };
        let known = entry.as_ref().and_then(|f| pick(&f.keys));
        let found = match known {
            Some(k) => Some(k),
            None if !stale && entry.as_ref().is_some_and(|f| f.at.elapsed() >= self.refresh_min) => {
                self.fetch_into(url, &mut entry).await;
                entry.as_ref().and_then(|f| pick(&f.keys))
            }
            None => None,
        };
        let key = found.ok_or_else(|| match kid {
            Some(kid) => Refusal::BadSignature(format!(
                "the issuer's key set ({url}) has no key `{kid}`; if the issuer has just rotated its keys, retry in a few \
                 seconds"
            )),
            None => Refusal::BadSignature(format!(
                "the token names no `kid` and the issuer's key set ({url}) does not hold exactly one key for its algorithm"
            )),
        })?;
        if key.alg != alg {
            return Err(Refusal::UnsupportedAlg(format!(
                "the token says `alg` {alg:?}, but its key `{}` is for {:?}",
                key.kid.as_deref().unwrap_or("-"),
                key.alg
            )));
        }
        Ok(key)
    }

    /// Fetches `url`'s key set into `entry`. A failure keeps the keys read before (an issuer
    /// that is briefly down does not lock its users out), or records why there are none; either
    /// way it counts as a fetch, so a failing issuer is asked once per `jwks_refresh_min_ms`,
    /// not once per token.
    async fn fetch_into(&self, url: &str, entry: &mut Option<Fetched>) {
        let now = Instant::now();
        match (self.fetch(url).await, entry.as_mut()) {
            (Ok(keys), _) => *entry = Some(Fetched { keys: Arc::new(keys), at: now, failed: None }),
            (Err(e), Some(f)) if f.failed.is_none() => {
                tracing::warn!(%url, error = %e, "could not fetch an identity provider's key set; keeping the last one");
                f.at = now;
            }
            (Err(e), _) => {
                tracing::warn!(%url, error = %e, "could not fetch an identity provider's key set");
                *entry = Some(Fetched { keys: Arc::new(Vec::new()), at: now, failed: Some(e) });
            }
        }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<IssuerKey>, String> {
        if !self.allow_private {
            crate::domain::push::endpoint::check_literal(url)?;
        }
        let mut res = self.http.get(url).send().await.map_err(|e| describe(&e))?;
        if !res.status().is_success() {
            return Err(format!("it answered {}", res.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| describe(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
            }
        }
        let doc: Value = serde_json::from_slice(&body).map_err(|e| format!("the key set is not JSON: {e}"))?;
        let keys = doc.get("keys").and_then(Value::as_array).ok_or("the key set has no `keys` array")?;
        Ok(keys.iter().filter_map(|k| serde_json::from_value::<RawJwk>(k.clone()).ok()).filter_map(key_of).collect())
    }
}

/// A reqwest error with its cause (its own text often says only "error sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Of the providers configured for a token's issuer, the one whose audience the token
/// carries.
pub fn provider_for<'a>(providers: &'a [IdentityProviderRecord], aud: &Value) -> Option<&'a IdentityProviderRecord> {
    let carries = |a: &str| match aud {
        Value::String(s) => s == a,
        Value::Array(list) => list.iter().any(|v| v.as_str() == Some(a)),
        _ => false,
    };
    providers.iter().find(|p| carries(&p.audience))
}
