//! The hub's token signing keys: Ed25519, kept in the store so that every node signs with the
//! same current key and verifies with every published one.
//!
//! Each node caches the published keys and reads them again every [`KEY_REFRESH`], or at once
//! (at most once a second) when a token names a key it does not know: another node may have
//! rotated. So a node may sign with a key another node has just retired for up to
//! [`KEY_REFRESH`]; a retired key therefore stays published for the token lifetime, the
//! verification leeway and that refresh interval together.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::signature::{Ed25519KeyPair, KeyPair};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::oauth::{KeyRotated, PublicJwk};
use switchboard_core::time::{Millis, now_ms, rfc3339};
use switchboard_core::{Principal, new_id};
use switchboard_store::Store;
use switchboard_store::oauth::SigningKeyRecord;

use crate::error::ApiError;

/// How long a node trusts its cached copy of the keys.
pub const KEY_REFRESH: Duration = Duration::from_secs(5);
/// Least time between two reads forced by an unknown `kid`.
const FORCED_REFRESH: Duration = Duration::from_secs(1);

/// One key, ready to sign (if current) and verify.
#[derive(Clone)]
pub struct HubKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public key, base64url.
    pub x: String,
    /// Until when it is published (`None`: the current key).
    pub published_until: Option<Millis>,
}

impl HubKey {
    fn from_record(r: &SigningKeyRecord) -> Result<HubKey, ApiError> {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&r.public_key);
        let decoding = DecodingKey::from_ed_components(&x)
            .map_err(|e| ApiError::Internal(format!("stored signing key {} is unusable: {e}", r.kid)))?;
        Ok(HubKey {
            kid: r.kid.clone(),
            encoding: EncodingKey::from_ed_der(&r.pkcs8),
            decoding,
            x,
            published_until: r.published_until,
        })
    }

    /// The key as the key set publishes it.
    pub fn jwk(&self) -> PublicJwk {
        PublicJwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            kid: self.kid.clone(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
            x: self.x.clone(),
        }
    }
}

/// A new Ed25519 key (ring generates it as PKCS #8), with a fresh `kid`.
fn generate(now: Millis) -> Result<SigningKeyRecord, ApiError> {
    let rng = ring::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| ApiError::Internal("could not generate an Ed25519 key".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
        .map_err(|_| ApiError::Internal("ring rejected the key it generated".into()))?;
    Ok(SigningKeyRecord {
        kid: format!("sb-{}", new_id().simple()),
        pkcs8: doc.as_ref().to_vec(),
        public_key: pair.public_key().as_ref().to_vec(),
        created_at: now,
        retired_at: None,
        published_until: None,
    })
}

struct Cached {
    keys: Arc<Vec<HubKey>>,
    read_at: Instant,
}

/// The node's view of the hub's keys.
pub struct HubKeys {
    store: Arc<dyn Store>,
    cache: Mutex<Cached>,
    /// Serialises reloads, so that a burst of requests reads the store once.
    reload: tokio::sync::Mutex<()>,
}

impl HubKeys {
    /// Makes sure the store holds a current key (creating it on the first start) and loads
    /// the published ones.
    pub async fn open(store: Arc<dyn Store>) -> Result<HubKeys, ApiError> {
        store.ensure_oauth_key(generate(now_ms())?).await?;
        let keys = load(store.as_ref()).await?;
        Ok(HubKeys {
            store,
            cache: Mutex::new(Cached { keys, read_at: Instant::now() }),
            reload: tokio::sync::Mutex::new(()),
        })
    }

    fn cached(&self) -> (Arc<Vec<HubKey>>, Instant) {
        let c = self.cache.lock().expect("key cache poisoned");
        (c.keys.clone(), c.read_at)
    }

    /// Reads the keys again unless someone did within `fresh`.
    async fn reload(&self, fresh: Duration) -> Result<Arc<Vec<HubKey>>, ApiError> {
        let _one = self.reload.lock().await;
        let (keys, read_at) = self.cached();
        if read_at.elapsed() < fresh {
            return Ok(keys);
        }
        let keys = load(self.store.as_ref()).await?;
        *self.cache.lock().expect("key cache poisoned") = Cached { keys: keys.clone(), read_at: Instant::now() };
        Ok(keys)
    }

    /// The published keys, the current one first, without those whose time is up.
    pub async fn published(&self) -> Result<Vec<HubKey>, ApiError> {
        let (mut keys, read_at) = self.cached();
        if read_at.elapsed() >= KEY_REFRESH {
            keys = self.reload(KEY_REFRESH).await?;
        }
        let now = now_ms();
        Ok(keys.iter().filter(|k| k.published_until.is_none_or(|t| t > now)).cloned().collect())
    }

    /// The key that signs now.
    pub async fn current(&self) -> Result<HubKey, ApiError> {
        self.published()
            .await?
            .into_iter()
            .find(|k| k.published_until.is_none())
            .ok_or_else(|| ApiError::Internal("the store holds no current signing key".into()))
    }

    /// The published key `kid`, reading the store again (at most once a second) if this node
    /// does not know it: another node may have rotated.
    pub async fn find(&self, kid: &str) -> Result<Option<HubKey>, ApiError> {
        let now = now_ms();
        let live =
            |keys: &[HubKey]| keys.iter().find(|k| k.kid == kid && k.published_until.is_none_or(|t| t > now)).cloned();
        if let Some(k) = live(&self.published().await?) {
            return Ok(Some(k));
        }
        Ok(live(&self.reload(FORCED_REFRESH).await?))
    }

    /// Retires the current key and makes a new one current (the operator alone). The old key
    /// stays published for `keep`: the token lifetime, the leeway and [`KEY_REFRESH`].
    pub async fn rotate(&self, by: &Principal, keep: Duration) -> Result<KeyRotated, ApiError> {
        crate::domain::tenants::require_operator(by)?;
        let now = now_ms();
        let new = generate(now)?;
        let until = now + i64::try_from(keep.as_millis()).unwrap_or(i64::MAX / 2);
        let kid = new.kid.clone();
        let audit = NewAuditEvent::by(by, AuditAction::OAuthKeyRotate, format!("oauth_key:{kid}"), now)
            .with_detail(serde_json::json!({ "kid": kid }));
        let retired = self.store.rotate_oauth_key(new, until, Some(audit)).await?;
        self.reload(Duration::ZERO).await?;
        tracing::info!(%kid, retired = ?retired, "OAuth signing key rotated");
        Ok(KeyRotated { kid, retired_until: retired.is_some().then(|| rfc3339(until)), retired_kid: retired })
    }
}

async fn load(store: &dyn Store) -> Result<Arc<Vec<HubKey>>, ApiError> {
    let records = store.oauth_keys(now_ms()).await?;
    Ok(Arc::new(records.iter().map(HubKey::from_record).collect::<Result<_, _>>()?))
}
