//! Password hashing: argon2id with the `argon2` crate's default parameters (19 MiB, 2
//! passes, 1 lane: OWASP's minimum for argon2id), as a PHC string. Hashing is deliberately
//! slow (tens of milliseconds), so it runs on the blocking pool, never on the async threads.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::ApiError;

/// A hash of a password nobody knows (256 random bits, generated once and thrown away), with
/// the parameters the hub hashes with, checked when there is no real hash (an unknown email, a
/// user without a password), so that those answers take as long as a wrong password. A
/// constant rather than one hashed at start-up: the start-up would pay ~90 million
/// instructions for it, which callgrind counted against every bench run.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$esdPuxdJOYfVoBcLe7F4rQ$oLuYPacN24OhQs3Ohp0xPIUGqiNkqxlcL1/FMEIm2u0";

fn hash_now(password: &str) -> Result<String, argon2::password_hash::Error> {
    // 16 random bytes from the thread's CSPRNG (the crate's own `OsRng` needs a feature more).
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let salt = SaltString::encode_b64(&bytes)?;
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// The argon2id hash (PHC string) of `password`.
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing task failed: {e}")))?
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches `stored`; with no stored hash, a dummy is checked (and fails)
/// so the answer takes as long.
pub async fn verify(stored: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let real = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY.to_owned());
        let ok = PasswordHash::new(&stored)
            .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
        ok && real
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let h = hash("correct horse battery".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify(Some(h.clone()), "correct horse battery".into()).await);
        assert!(!verify(Some(h), "correct horse battery!".into()).await);
        assert!(!verify(None, String::new()).await, "no stored hash never verifies");
    }

    /// The dummy costs what a real check costs only while it has the parameters the hub
    /// hashes with: a change of parameters must change it too.
    #[tokio::test]
    async fn the_dummy_hash_has_the_parameters_of_a_real_one() {
        let real = hash("correct horse battery".into()).await.expect("hash");
        let (real, dummy) = (PasswordHash::new(&real).unwrap(), PasswordHash::new(DUMMY).unwrap());
        assert_eq!(real.algorithm, dummy.algorithm);
        assert_eq!(real.version, dummy.version);
        assert_eq!(real.params, dummy.params);
        assert_eq!(real.hash.map(|h| h.len()), dummy.hash.map(|h| h.len()));
    }
}
