//! Principals' public keys in the directory, and the sealed part and signature they make
//! possible (end-to-end encryption: `docs/e2e.md` is the wire format and the signed bytes).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a published key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// X25519: recipients' keys that sealed messages are encrypted to (HPKE).
    X25519,
    /// Ed25519: senders' keys that signatures are checked against.
    Ed25519,
}

impl KeyKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::X25519 => "x25519",
            KeyKind::Ed25519 => "ed25519",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "x25519" => Some(KeyKind::X25519),
            "ed25519" => Some(KeyKind::Ed25519),
            _ => None,
        }
    }
}

/// `POST /v1/keys`: publish one of the caller's public keys. The private half never leaves
/// the caller.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishKey {
    pub kind: KeyKind,
    /// Standard base64 of the 32-byte public key.
    #[schema(min_length = 44, max_length = 44)]
    pub public_key: String,
    /// Rotation: the id of one of the caller's keys to revoke in the same step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// A public key in the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PublicKey {
    /// `pk_…`, chosen by the hub.
    pub key_id: String,
    /// Whose key: `agent:<id>` or `user:<id>`.
    pub principal: String,
    pub kind: KeyKind,
    /// Standard base64 of the 32-byte public key.
    pub public_key: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Set once revoked: no message may be sealed to it or signed with it from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<PublicKey>,
}

/// The HPKE suite of every sealed part: RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256),
/// HKDF-SHA256, ChaCha20-Poly1305.
pub const SEALED_SUITE: &str = "hpke-base-x25519-sha256-chacha20poly1305";

/// A payload encrypted for its recipients' keys. `ciphertext` is the JSON array of the
/// message's real parts, encrypted once under a random content key; each entry of
/// `recipients` carries that key wrapped by HPKE for one recipient key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// Always [`SEALED_SUITE`].
    pub suite: String,
    /// Standard base64 of ChaCha20-Poly1305(content key, nonce of 12 zero bytes, aad
    /// `switchboard.sealed.v1`) over the UTF-8 JSON array of parts.
    pub ciphertext: String,
    /// One entry per recipient key, at least one.
    #[schema(min_items = 1)]
    pub recipients: Vec<SealedRecipient>,
}

/// The content key of a sealed part, wrapped for one recipient key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedRecipient {
    /// The recipient's X25519 key (`GET /v1/keys`).
    pub key_id: String,
    /// Standard base64 of the HPKE encapsulated key (32 bytes).
    pub enc: String,
    /// Standard base64 of the HPKE ciphertext of the 32-byte content key (48 bytes).
    pub wrapped_key: String,
}

/// The sender's Ed25519 signature over a message's canonical signed bytes (`docs/e2e.md`):
/// its sender, address, conversation, `in_reply_to`, idempotency key (the nonce) and parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageSignature {
    /// The sender's Ed25519 key.
    pub key_id: String,
    /// Standard base64 of the 64-byte signature.
    pub sig: String,
}
