//! Signing pushes: Standard Webhooks HMAC (`v1`, with the agent's `whsec_` secret, both
//! secrets during a rotation) and Ed25519 (`v1a`, with the hub key).

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

/// Prefix of webhook signing secrets, as the Standard Webhooks spec suggests.
pub const SECRET_PREFIX: &str = "whsec_";
/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(key))
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with a `whsec_` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// `v1a,<base64 Ed25519 signature of "{id}.{timestamp}.{body}">`, the Standard Webhooks
/// asymmetric scheme.
pub fn sign_ed25519(key: &ed25519_dalek::SigningKey, id: &str, timestamp: i64, body: &[u8]) -> String {
    use ed25519_dalek::Signer;
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("v1a,{}", base64::engine::general_purpose::STANDARD.encode(key.sign(&signed).to_bytes()))
}
