//! The pure half of end-to-end trust: the canonical bytes a message signature covers, and
//! the Ed25519 check of a signature against a public key. Sealing and opening (HPKE) are the
//! clients' (`switchboard-client`); the hub never holds a private key of a principal.
//!
//! `docs/e2e.md` is the contract these functions implement, written so that a client in
//! another language produces the same bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::api::{MessageSignature, Part};

/// What the signed bytes start with, so a signature over them means nothing elsewhere.
pub const SIGNED_PREFIX: &[u8] = b"switchboard.signed.v1\n";

/// The AEAD associated data of a sealed part's payload encryption.
pub const SEALED_AAD: &[u8] = b"switchboard.sealed.v1";

/// The HPKE `info` of the content key's wrapping, per recipient key.
pub const SEALED_INFO: &[u8] = b"switchboard.sealed.v1";

/// The routing headers and parts a signature covers. `conversation_id` is the one the message
/// is stored with: a send to `conversation:<id>` carries `<id>`.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// `agent:<id>` or `user:<id>`.
    pub from: &'a str,
    /// The address as the hub prints it (`Address`'s display).
    pub to: &'a str,
    pub conversation_id: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    /// Required: the nonce. The hub stores one message per (sender, key), so a replayed
    /// signed message is answered as a duplicate and delivered to nobody again.
    pub idempotency_key: &'a str,
    pub parts: &'a [Part],
}

/// The bytes an Ed25519 message signature is made over: [`SIGNED_PREFIX`] followed by the
/// canonical JSON of `{conversation_id, from, idempotency_key, in_reply_to, parts, to}`
/// (absent values are `null`).
pub fn signed_bytes(s: &Signed<'_>) -> Vec<u8> {
    let opt = |v: Option<&str>| v.map_or(Value::Null, |v| Value::String(v.to_owned()));
    let parts = serde_json::to_value(s.parts).unwrap_or(Value::Null);
    let object = serde_json::json!({
        "conversation_id": opt(s.conversation_id),
        "from": s.from,
        "idempotency_key": s.idempotency_key,
        "in_reply_to": opt(s.in_reply_to),
        "parts": parts,
        "to": s.to,
    });
    let mut out = SIGNED_PREFIX.to_vec();
    canonical_json(&object, &mut out);
    out
}

/// Writes `v` as canonical JSON: object keys sorted by code point, no whitespace, strings
/// escaped as `serde_json` does (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other control
/// characters as `\u00xx`, everything else as UTF-8), numbers as `serde_json` prints them.
/// Python's `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
/// writes the same bytes for strings, integers, booleans and nulls.
pub fn canonical_json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                canonical_json(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(v, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    // A scalar's compact form is already canonical; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the public key is not standard base64 of 32 bytes, or not a valid Ed25519 point")]
    BadKey,
    #[error("`signature.sig` is not standard base64 of 64 bytes")]
    Malformed,
    #[error("the signature does not match the message's signed bytes and the key")]
    Mismatch,
}

/// Decodes standard base64 of exactly `N` bytes.
pub fn decode_fixed<const N: usize>(b64: &str) -> Option<[u8; N]> {
    STANDARD.decode(b64).ok()?.try_into().ok()
}

/// Checks `sig` over `bytes` with the Ed25519 public key `public_key` (standard base64).
/// Strict verification: no malleable signatures, no small-order keys.
pub fn verify(public_key: &str, sig: &MessageSignature, bytes: &[u8]) -> Result<(), SignatureError> {
    let key = decode_fixed::<32>(public_key).ok_or(SignatureError::BadKey)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| SignatureError::BadKey)?;
    let raw = decode_fixed::<64>(&sig.sig).ok_or(SignatureError::Malformed)?;
    let signature = ed25519_dalek::Signature::from_bytes(&raw);
    key.verify_strict(bytes, &signature).map_err(|_| SignatureError::Mismatch)
}

/// Whether `public_key` is standard base64 of a 32-byte key usable as `kind` (Ed25519 keys
/// must decode to a curve point; any 32 bytes are an X25519 key).
pub fn valid_public_key(kind: crate::api::KeyKind, public_key: &str) -> bool {
    let Some(raw) = decode_fixed::<32>(public_key) else { return false };
    match kind {
        crate::api::KeyKind::Ed25519 => ed25519_dalek::VerifyingKey::from_bytes(&raw).is_ok(),
        crate::api::KeyKind::X25519 => raw != [0u8; 32],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(parts: &[Part]) -> Vec<u8> {
        signed_bytes(&Signed {
            from: "agent:a",
            to: "agent:b",
            conversation_id: None,
            in_reply_to: None,
            idempotency_key: "n1",
            parts,
        })
    }

    #[test]
    fn signed_bytes_are_the_prefix_and_sorted_compact_json() {
        let bytes = signed(&[Part::text("héllo\n\"x\"")]);
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "switchboard.signed.v1\n{\"conversation_id\":null,\"from\":\"agent:a\",\"idempotency_key\":\"n1\",\
             \"in_reply_to\":null,\"parts\":[{\"kind\":\"text\",\"text\":\"héllo\\n\\\"x\\\"\"}],\"to\":\"agent:b\"}"
        );
    }

    #[test]
    fn nested_data_keys_are_sorted() {
        let v = serde_json::json!({"b": {"z": 1, "a": [true, null]}, "a": "\u{1}"});
        let mut out = Vec::new();
        canonical_json(&v, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\":\"\\u0001\",\"b\":{\"a\":[true,null],\"z\":1}}");
    }

    #[test]
    fn a_signature_verifies_only_over_its_bytes() {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let public = STANDARD.encode(key.verifying_key().to_bytes());
        let bytes = signed(&[Part::text("hi")]);
        let sig = MessageSignature { key_id: "k".into(), sig: STANDARD.encode(key.sign(&bytes).to_bytes()) };
        assert_eq!(verify(&public, &sig, &bytes), Ok(()));
        assert_eq!(verify(&public, &sig, &signed(&[Part::text("ho")])), Err(SignatureError::Mismatch));
        let bad = MessageSignature { key_id: "k".into(), sig: "AAAA".into() };
        assert_eq!(verify(&public, &bad, &bytes), Err(SignatureError::Malformed));
    }
}
