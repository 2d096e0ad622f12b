//! End-to-end trust on the client side: key pairs, sealing a message's parts for its
//! recipients' keys (HPKE, RFC 9180), signing it, opening a sealed message and verifying a
//! signature against the directory. The hub sees public keys and ciphertext only.
//! `docs/e2e.md` is the wire format.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ed25519_dalek::Signer;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand::RngCore;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use switchboard_core::api::{
    KeyKind, KeyList, Message, MessageSignature, Part, PublicKey, PublishKey, SEALED_SUITE, Sealed, SealedRecipient,
    SendMessage,
};
use switchboard_core::e2e::{self, SEALED_AAD, SEALED_INFO, Signed};

use crate::{Client, ClientError, Result};

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Wrap = hpke::aead::ChaCha20Poly1305;

/// Why a message could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    #[error("the message has no sealed part")]
    NotSealed,
    #[error("the message is not sealed to any of your keys ({0})")]
    NotForMe(String),
    #[error("the sealed part is malformed: {0}")]
    Malformed(String),
    #[error("the sealed part does not open with your key (tampered with, or not for this key)")]
    Tampered,
    #[error("there is no current x25519 key to seal for: every recipient must publish one (`switchboard keys init`)")]
    NoRecipientKeys,
}

impl From<E2eError> for ClientError {
    fn from(e: E2eError) -> ClientError {
        ClientError::Protocol(e.to_string())
    }
}

/// A principal's private keys and their ids in the directory, as `switchboard keys init`
/// keeps them (mode 0600). Never sent to the hub.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyPairs {
    /// Whose keys: `agent:<id>` or `user:<id>`.
    pub principal: String,
    pub signing_key_id: String,
    /// Standard base64 of the 32-byte Ed25519 seed.
    pub signing_key: String,
    pub encryption_key_id: String,
    /// Standard base64 of the 32-byte X25519 private key.
    pub encryption_key: String,
}

impl std::fmt::Debug for KeyPairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPairs")
            .field("principal", &self.principal)
            .field("signing_key_id", &self.signing_key_id)
            .field("encryption_key_id", &self.encryption_key_id)
            .finish_non_exhaustive()
    }
}

/// Fresh private keys: (Ed25519 seed, X25519 private key), 32 bytes each.
pub fn generate() -> ([u8; 32], [u8; 32]) {
    let mut rng = rand::rng();
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let (sk, _) = Kem::gen_keypair(&mut rng);
    let mut x = [0u8; 32];
    x.copy_from_slice(&sk.to_bytes());
    (seed, x)
}

/// The public half (standard base64) of an Ed25519 seed.
pub fn signing_public(seed: &[u8; 32]) -> String {
    STANDARD.encode(ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes())
}

/// The public half (standard base64) of an X25519 private key.
pub fn encryption_public(private: &[u8; 32]) -> Result<String, E2eError> {
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(private).map_err(|e| E2eError::Malformed(e.to_string()))?;
    Ok(STANDARD.encode(Kem::sk_to_pk(&sk).to_bytes()))
}

/// Seals `parts` for every current X25519 key in `keys` (ed25519 and revoked ones are
/// skipped): one content key, wrapped for each recipient key.
pub fn seal(parts: &[Part], keys: &[PublicKey]) -> Result<Part, E2eError> {
    let mut rng = rand::rng();
    let mut content_key = [0u8; 32];
    rng.fill_bytes(&mut content_key);
    let plaintext = serde_json::to_vec(parts).map_err(|e| E2eError::Malformed(e.to_string()))?;
    let cipher = ChaCha20Poly1305::new((&content_key).into());
    // A content key encrypts exactly one payload, so the all-zero nonce is never reused.
    let ciphertext = cipher
        .encrypt(&[0u8; 12].into(), Payload { msg: &plaintext, aad: SEALED_AAD })
        .map_err(|_| E2eError::Malformed("payload encryption failed".into()))?;
    let mut recipients = Vec::new();
    for k in keys.iter().filter(|k| k.kind == KeyKind::X25519 && k.revoked_at.is_none()) {
        let raw = e2e::decode_fixed::<32>(&k.public_key)
            .ok_or_else(|| E2eError::Malformed(format!("key {} is not 32 bytes of base64", k.key_id)))?;
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&raw).map_err(|e| E2eError::Malformed(e.to_string()))?;
        let (enc, wrapped) = hpke::single_shot_seal::<Wrap, Kdf, Kem, _>(
            &OpModeS::Base,
            &pk,
            SEALED_INFO,
            &content_key,
            &ciphertext,
            &mut rng,
        )
        .map_err(|e| E2eError::Malformed(e.to_string()))?;
        recipients.push(SealedRecipient {
            key_id: k.key_id.clone(),
            enc: STANDARD.encode(enc.to_bytes()),
            wrapped_key: STANDARD.encode(wrapped),
        });
    }
    if recipients.is_empty() {
        return Err(E2eError::NoRecipientKeys);
    }
    Ok(Part::Sealed {
        sealed: Sealed { suite: SEALED_SUITE.to_owned(), ciphertext: STANDARD.encode(ciphertext), recipients },
    })
}

/// Opens the sealed part of `parts` with `keys`' X25519 key: the message's real parts.
pub fn open(parts: &[Part], keys: &KeyPairs) -> Result<Vec<Part>, E2eError> {
    let sealed = parts
        .iter()
        .find_map(|p| match p {
            Part::Sealed { sealed } => Some(sealed),
            _ => None,
        })
        .ok_or(E2eError::NotSealed)?;
    let entry = sealed
        .recipients
        .iter()
        .find(|r| r.key_id == keys.encryption_key_id)
        .ok_or_else(|| E2eError::NotForMe(keys.encryption_key_id.clone()))?;
    let b64 =
        |s: &str, what: &str| STANDARD.decode(s).map_err(|_| E2eError::Malformed(format!("{what} is not base64")));
    let ciphertext = b64(&sealed.ciphertext, "ciphertext")?;
    let private = e2e::decode_fixed::<32>(&keys.encryption_key)
        .ok_or_else(|| E2eError::Malformed("your x25519 key is not 32 bytes of base64".into()))?;
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&private).map_err(|e| E2eError::Malformed(e.to_string()))?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&b64(&entry.enc, "enc")?)
        .map_err(|e| E2eError::Malformed(e.to_string()))?;
    let content_key = hpke::single_shot_open::<Wrap, Kdf, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        SEALED_INFO,
        &b64(&entry.wrapped_key, "wrapped_key")?,
        &ciphertext,
    )
    .map_err(|_| E2eError::Tampered)?;
    let content_key: [u8; 32] = content_key.try_into().map_err(|_| E2eError::Malformed("content key size".into()))?;
    let plaintext = ChaCha20Poly1305::new((&content_key).into())
        .decrypt(&[0u8; 12].into(), Payload { msg: &ciphertext, aad: SEALED_AAD })
        .map_err(|_| E2eError::Tampered)?;
    serde_json::from_slice(&plaintext).map_err(|e| E2eError::Malformed(format!("opened parts: {e}")))
}

/// Signs `m` as `keys.principal` would send it: fills in a random idempotency key (the
/// nonce) if it has none, and the conversation id of a send to `conversation:<id>`, then
/// sets `signature`. `to` must be written as the hub prints it.
pub fn sign(m: &mut SendMessage, keys: &KeyPairs) -> Result<(), E2eError> {
    if m.idempotency_key.is_none() {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        m.idempotency_key = Some(format!("sig-{}", hex(&nonce)));
    }
    if m.conversation_id.is_none()
        && let Some(id) = m.to.strip_prefix("conversation:")
    {
        m.conversation_id = Some(id.to_owned());
    }
    let seed = e2e::decode_fixed::<32>(&keys.signing_key)
        .ok_or_else(|| E2eError::Malformed("your ed25519 key is not 32 bytes of base64".into()))?;
    let bytes = e2e::signed_bytes(&Signed {
        from: &keys.principal,
        to: &m.to,
        conversation_id: m.conversation_id.as_deref(),
        in_reply_to: m.in_reply_to.as_deref(),
        idempotency_key: m.idempotency_key.as_deref().unwrap_or_default(),
        parts: &m.parts,
    });
    let sig = ed25519_dalek::SigningKey::from_bytes(&seed).sign(&bytes);
    m.signature = Some(MessageSignature { key_id: keys.signing_key_id.clone(), sig: STANDARD.encode(sig.to_bytes()) });
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `m`'s signature verifies against one of `sender_keys` (the directory's keys of
/// `m.from`, revoked ones included): an Ed25519 key of the sender, current or revoked only
/// after the message was sent. Checked here, not taken from the hub's `verified`.
pub fn verify(m: &Message, sender_keys: &[PublicKey]) -> bool {
    let (Some(sig), Some(nonce)) = (&m.signature, m.idempotency_key.as_deref()) else { return false };
    let Some(key) = sender_keys.iter().find(|k| {
        k.key_id == sig.key_id
            && k.principal == m.from
            && k.kind == KeyKind::Ed25519
            && k.revoked_at.as_deref().is_none_or(|r| r > m.created_at.as_str())
    }) else {
        return false;
    };
    let bytes = e2e::signed_bytes(&Signed {
        from: &m.from,
        to: &m.to,
        conversation_id: m.conversation_id.as_deref(),
        in_reply_to: m.in_reply_to.as_deref(),
        idempotency_key: nonce,
        parts: &m.parts,
    });
    e2e::verify(&key.public_key, sig, &bytes).is_ok()
}

/// A received message as its recipient reads it: the parts opened, and whether the
/// signature verified against the directory.
#[derive(Debug, Clone)]
pub struct Opened {
    pub parts: Vec<Part>,
    /// The message was sealed (and opened with the caller's key).
    pub sealed: bool,
    pub verified: bool,
}

impl Client {
    /// `POST /v1/keys`: publishes one of the caller's public keys.
    pub async fn publish_key(&self, req: &PublishKey) -> Result<PublicKey> {
        self.call(Method::POST, "/v1/keys", Some(req)).await
    }

    /// `DELETE /v1/keys/{key_id}`.
    pub async fn revoke_key(&self, key_id: &str) -> Result<PublicKey> {
        self.call::<(), _>(Method::DELETE, &format!("/v1/keys/{}", crate::path_segment(key_id)), None).await
    }

    /// `GET /v1/keys?principal=`: one principal's keys.
    pub async fn keys_of(&self, principal: &str, include_revoked: bool) -> Result<KeyList> {
        let path = format!("/v1/keys?principal={}&include_revoked={include_revoked}", crate::urlencode(principal));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// `GET /v1/keys?to=`: the current keys of everyone a message to `to` reaches.
    pub async fn recipient_keys(&self, to: &str) -> Result<KeyList> {
        self.call::<(), _>(Method::GET, &format!("/v1/keys?to={}", crate::urlencode(to)), None).await
    }

    /// Makes the caller's key pairs and publishes their public halves (`principal` is the
    /// caller, as `whoami` names it).
    pub async fn init_keys(&self, principal: &str) -> Result<KeyPairs> {
        self.publish_pairs(principal, None).await
    }

    /// New key pairs for the caller, published in place of `old` (which are revoked).
    pub async fn rotate_keys(&self, old: &KeyPairs) -> Result<KeyPairs> {
        self.publish_pairs(&old.principal, Some(old)).await
    }

    async fn publish_pairs(&self, principal: &str, old: Option<&KeyPairs>) -> Result<KeyPairs> {
        let (seed, x) = generate();
        let signing = self
            .publish_key(&PublishKey {
                kind: KeyKind::Ed25519,
                public_key: signing_public(&seed),
                replaces: old.map(|o| o.signing_key_id.clone()),
            })
            .await?;
        let encryption = self
            .publish_key(&PublishKey {
                kind: KeyKind::X25519,
                public_key: encryption_public(&x)?,
                replaces: old.map(|o| o.encryption_key_id.clone()),
            })
            .await?;
        Ok(KeyPairs {
            principal: principal.to_owned(),
            signing_key_id: signing.key_id,
            signing_key: STANDARD.encode(seed),
            encryption_key_id: encryption.key_id,
            encryption_key: STANDARD.encode(x),
        })
    }

    /// Seals `m`'s parts for every current key of its recipients (asked of the hub), signs
    /// it and sends it.
    pub async fn send_sealed(
        &self,
        mut m: SendMessage,
        keys: &KeyPairs,
    ) -> Result<switchboard_core::api::MessageAccepted> {
        let recipients = self.recipient_keys(&m.to).await?;
        m.parts = vec![seal(&m.parts, &recipients.keys)?];
        sign(&mut m, keys)?;
        self.send(&m).await
    }

    /// Signs `m` (plain parts) and sends it.
    pub async fn send_signed(
        &self,
        mut m: SendMessage,
        keys: &KeyPairs,
    ) -> Result<switchboard_core::api::MessageAccepted> {
        sign(&mut m, keys)?;
        self.send(&m).await
    }

    /// Opens a received message (if sealed) and checks its signature against the sender's
    /// keys in the directory.
    pub async fn open_message(&self, m: &Message, keys: Option<&KeyPairs>) -> Result<Opened> {
        let sealed = m.parts.iter().any(|p| matches!(p, Part::Sealed { .. }));
        let verified = match &m.signature {
            Some(_) if m.from.starts_with("agent:") || m.from.starts_with("user:") => {
                verify(m, &self.keys_of(&m.from, true).await?.keys)
            }
            _ => false,
        };
        let parts = match (sealed, keys) {
            (true, Some(k)) => open(&m.parts, k)?,
            (true, None) => return Err(E2eError::NotForMe("no keys; run `switchboard keys init`".into()).into()),
            (false, _) => m.parts.clone(),
        };
        Ok(Opened { parts, sealed, verified })
    }
}
