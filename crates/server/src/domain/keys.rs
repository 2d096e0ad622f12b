//! End-to-end trust: the directory of principals' public keys, and the checks the accept
//! path makes of a signed or sealed message (`docs/e2e.md`). The hub holds public halves
//! only; it cannot open a sealed part, and it cannot sign for anyone.
//!
//! The checks run only for a message that carries a signature or a sealed part: an unsigned
//! plain send pays for one `Option` test and a scan of its parts' tags.

use std::sync::Arc;

use switchboard_core::api::{
    FieldError, KeyKind, MessageSignature, Part, PublicKey, PublishKey, SEALED_SUITE, SendMessage,
};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::e2e::{self, Signed};
use switchboard_core::time::{now_ms, rfc3339};
use switchboard_core::{Address, Principal, PrincipalKind, Recipient};
use switchboard_store::Store;
use switchboard_store::keys::KeyRecord;

use crate::error::ApiError;

/// The directory of public keys of one tenant's principals.
pub struct Keys {
    store: Arc<dyn Store>,
}

/// The API view of a stored key.
pub fn key_view(k: KeyRecord) -> PublicKey {
    PublicKey {
        key_id: k.key_id,
        principal: k.principal,
        kind: KeyKind::parse(&k.kind).unwrap_or(KeyKind::X25519),
        public_key: k.public_key,
        created_at: rfc3339(k.created_at),
        revoked_at: k.revoked_at.map(rfc3339),
    }
}

/// The principal text of an agent or a person, who alone own keys.
fn owner(by: &Principal) -> Result<String, ApiError> {
    match &by.kind {
        PrincipalKind::Agent(_) | PrincipalKind::User { .. } => Ok(by.sender()),
        PrincipalKind::Admin | PrincipalKind::Operator => Err(ApiError::Forbidden(
            "only agents and people have keys; publish them with the agent's key or the person's credentials".into(),
        )),
    }
}

fn field(path: impl Into<String>, message: impl Into<String>) -> Vec<FieldError> {
    vec![FieldError { path: path.into(), message: message.into() }]
}

impl Keys {
    pub fn new(store: Arc<dyn Store>) -> Keys {
        Keys { store }
    }

    /// Publishes one of the caller's public keys; with `replaces`, revokes that one of the
    /// caller's keys in the same step (rotation). Audited.
    pub async fn publish(&self, by: &Principal, req: PublishKey) -> Result<PublicKey, ApiError> {
        let principal = owner(by)?;
        if !e2e::valid_public_key(req.kind, &req.public_key) {
            return Err(ApiError::fields(field(
                "public_key",
                format!("must be standard base64 of a 32-byte {} public key", req.kind.as_str()),
            )));
        }
        let now = now_ms();
        let key = KeyRecord {
            tenant: by.tenant.to_string(),
            key_id: format!("pk_{}", switchboard_core::new_id().simple()),
            principal: principal.clone(),
            kind: req.kind.as_str().to_owned(),
            public_key: req.public_key,
            created_at: now,
            revoked_at: None,
        };
        let mut audit = vec![
            NewAuditEvent::by(by, AuditAction::KeyPublish, principal.clone(), now)
                .with_detail(serde_json::json!({ "key_id": key.key_id, "kind": key.kind })),
        ];
        if let Some(old) = &req.replaces {
            audit.push(
                NewAuditEvent::by(by, AuditAction::KeyRevoke, principal.clone(), now)
                    .with_detail(serde_json::json!({ "key_id": old, "replaced_by": key.key_id })),
            );
        }
        if !self.store.publish_key(key.clone(), req.replaces.clone(), audit).await? {
            return Err(ApiError::NotFound(format!(
                "`replaces`: you have no current key {}; list yours with `GET /v1/keys?principal={principal}`",
                req.replaces.unwrap_or_default()
            )));
        }
        tracing::info!(principal, key_id = key.key_id, kind = key.kind, "public key published");
        Ok(key_view(key))
    }

    /// Revokes a key: the caller's own, or (tenant admins) any key of the tenant. Audited.
    pub async fn revoke(&self, by: &Principal, key_id: &str) -> Result<PublicKey, ApiError> {
        let only = if by.is_admin() { None } else { Some(owner(by)?) };
        let now = now_ms();
        let target = only.clone().unwrap_or_else(|| key_id.to_owned());
        let audit = NewAuditEvent::by(by, AuditAction::KeyRevoke, target, now)
            .with_detail(serde_json::json!({ "key_id": key_id }));
        match self.store.revoke_key(by.tenant.as_str(), key_id, only.as_deref(), now, Some(audit)).await? {
            Some(k) => {
                tracing::info!(principal = k.principal, key_id, "public key revoked");
                Ok(key_view(k))
            }
            None => Err(ApiError::NotFound(format!(
                "no current key {key_id} {}; list keys with `GET /v1/keys?principal=`",
                if only.is_some() { "of yours" } else { "in this tenant" }
            ))),
        }
    }

    /// The keys of `principals` (current ones, or all with `include_revoked`).
    pub async fn of(
        &self,
        by: &Principal,
        principals: Vec<String>,
        include_revoked: bool,
    ) -> Result<Vec<PublicKey>, ApiError> {
        let keys = self.store.keys_of(by.tenant.as_str(), principals, include_revoked).await?;
        Ok(keys.into_iter().map(key_view).collect())
    }
}

/// Whether a send needs the checks of [`check_send`]: it is signed or sealed.
pub fn needs_check(m: &SendMessage) -> bool {
    m.signature.is_some() || m.parts.iter().any(|p| matches!(p, Part::Sealed { .. }))
}

/// Checks a signed or sealed send from `by` to `to` (whose `conversation_id` is already the
/// one it will be stored with) and answers the signature to store, as JSON text:
/// - a sealed part is the message's only part, is signed, and is sealed to current X25519
///   keys of the tenant (422 `unknown_key`, `revoked_key`);
/// - a signature names a current Ed25519 key of the sender and verifies over the message's
///   signed bytes (422 `bad_signature`), and the message has an idempotency key (its nonce).
pub async fn check_send(
    store: &dyn Store,
    by: &Principal,
    to: &Address,
    m: &SendMessage,
) -> Result<Option<String>, ApiError> {
    let tenant = by.tenant.as_str();
    if let Some(sealed) = m.parts.iter().find_map(|p| match p {
        Part::Sealed { sealed } => Some(sealed),
        _ => None,
    }) {
        if m.parts.len() != 1 {
            return Err(ApiError::fields(field("parts", "a `sealed` part is the message's only part")));
        }
        if *to == Address::Auto {
            return Err(ApiError::fields(field(
                "to",
                "a sealed message cannot be routed by its text (`auto`); address it to an agent, person, group, topic or conversation",
            )));
        }
        if sealed.suite != SEALED_SUITE {
            return Err(ApiError::fields(field("parts[0].sealed.suite", format!("must be `{SEALED_SUITE}`"))));
        }
        if m.signature.is_none() {
            return Err(ApiError::BadSignature {
                detail: "a sealed message must be signed by its sender; see docs/e2e.md".into(),
                errors: field("signature", "required with a `sealed` part"),
            });
        }
        if sealed.recipients.is_empty() {
            return Err(ApiError::fields(field("parts[0].sealed.recipients", "needs at least one recipient key")));
        }
        for (i, r) in sealed.recipients.iter().enumerate() {
            let path = format!("parts[0].sealed.recipients[{i}].key_id");
            match store.get_key(tenant, &r.key_id).await? {
                None => {
                    return Err(ApiError::UnknownKey {
                        detail: format!(
                            "key {} is not in this tenant's directory; fetch current keys with `GET /v1/keys?to=`",
                            r.key_id
                        ),
                        errors: field(path, "names no published key"),
                    });
                }
                Some(k) if k.revoked_at.is_some() => {
                    return Err(ApiError::RevokedKey {
                        detail: format!(
                            "key {} of {} was revoked; seal again to its current keys (`GET /v1/keys?to=`)",
                            r.key_id, k.principal
                        ),
                        errors: field(path, "names a revoked key"),
                    });
                }
                Some(k) if k.kind != KeyKind::X25519.as_str() => {
                    return Err(ApiError::fields(field(path, "names an ed25519 key; seal to x25519 keys")));
                }
                Some(_) => {}
            }
        }
    }
    let Some(sig) = &m.signature else { return Ok(None) };
    let Some(nonce) = m.idempotency_key.as_deref() else {
        return Err(ApiError::fields(field(
            "idempotency_key",
            "a signed message carries an idempotency key: the nonce its signature covers (docs/e2e.md)",
        )));
    };
    let from = by.sender();
    verify(
        store,
        tenant,
        &from,
        sig,
        &e2e::signed_bytes(&Signed {
            from: &from,
            to: &to.to_string(),
            conversation_id: m.conversation_id.as_deref(),
            in_reply_to: m.in_reply_to.as_deref(),
            idempotency_key: nonce,
            parts: &m.parts,
        }),
    )
    .await?;
    serde_json::to_string(sig).map(Some).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Checks `sig` over `bytes` against a current Ed25519 key of `from`.
async fn verify(
    store: &dyn Store,
    tenant: &str,
    from: &str,
    sig: &MessageSignature,
    bytes: &[u8],
) -> Result<(), ApiError> {
    let bad = |detail: String, message: &str| ApiError::BadSignature { detail, errors: field("signature", message) };
    if from.parse::<Recipient>().is_err() {
        return Err(bad(format!("`{from}` has no keys; only agents and people sign"), "the sender has no keys"));
    }
    let key = store.get_key(tenant, &sig.key_id).await?;
    let key = match key {
        Some(k) if k.principal == from && k.kind == KeyKind::Ed25519.as_str() && k.revoked_at.is_none() => k,
        Some(k) if k.principal == from && k.revoked_at.is_some() => {
            return Err(bad(format!("signing key {} was revoked; sign with a current key", sig.key_id), "revoked key"));
        }
        _ => {
            return Err(bad(
                format!("{} is not a current ed25519 key of {from}; publish one with `POST /v1/keys`", sig.key_id),
                "names no current signing key of the sender",
            ));
        }
    };
    e2e::verify(&key.public_key, sig, bytes).map_err(|e| {
        tracing::info!(from, key_id = sig.key_id, error = %e, "refused a message with a bad signature");
        bad(format!("the signature does not verify with key {}: {e}", sig.key_id), "does not verify")
    })
}
