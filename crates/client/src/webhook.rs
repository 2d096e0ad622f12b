//! Verifying push requests, written from the Standard Webhooks specification: a Rust agent
//! checks a request in one call.
//!
//! ```
//! use switchboard_client::webhook;
//! # let (secret, id, ts, sig, body) = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1_700_000_000, "v1,x", b"{}");
//! let ok = webhook::verify(secret, id, &ts.to_string(), sig, body, ts);
//! assert!(ok.is_err()); // a made-up signature does not verify
//! ```

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a request's timestamp may be from now, in seconds (the spec's suggested five
/// minutes), so a captured request cannot be replayed later.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a request did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the secret is not a whsec_ base64 secret")]
    BadSecret,
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than {TOLERANCE_SECS} s from now")]
    Stale,
    #[error("no signature in webhook-signature matches")]
    NoMatch,
}

/// Checks the `webhook-signature` header (space-separated `v1,<base64>` entries; any one
/// matching is enough, which is how rotation works) against `id.timestamp.body`, in constant
/// time, and that the timestamp is within [`TOLERANCE_SECS`] of `now_secs`.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    let key = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD.decode(key).map_err(|_| VerifyError::BadSecret)?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if (now_secs - ts).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Stale);
    }
    for entry in signatures.split(' ') {
        let Some(sig) = entry.strip_prefix("v1,") else { continue };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else { continue };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| VerifyError::BadSecret)?;
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from the Standard Webhooks specification's reference implementations.
    #[test]
    fn verifies_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = "1614265330";
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(verify(secret, id, ts, sig, body, 1614265330), Ok(()));
        assert_eq!(verify(secret, id, ts, &format!("v1,bogus {sig}"), body, 1614265330), Ok(()));
        assert_eq!(verify(secret, id, ts, sig, b"{}", 1614265330), Err(VerifyError::NoMatch));
        assert_eq!(verify(secret, id, ts, sig, body, 1614265330 + 301), Err(VerifyError::Stale));
    }
}
