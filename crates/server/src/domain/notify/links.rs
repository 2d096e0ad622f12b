//! The signed, expiring links in notification e-mails: `/open/<token>`, where the token is
//! the link's fields and an HMAC-SHA256 over them with the hub's link key (kept in the store
//! so that every node signs and checks alike).
//!
//! Token: `base64url(payload) "." base64url(mac)`, payload `v1\n<tenant>\n<user>\n<message>\n<expires
//! at, Unix seconds>`, mac over `switchboard-open-link\n` + payload. The token names the
//! message, not the page: where it leads is decided when it is followed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_core::time::Millis;

/// The default lifetime of a link: 72 hours.
pub const LINK_LIFETIME_MS: i64 = 72 * 3600 * 1000;

const CONTEXT: &[u8] = b"switchboard-open-link\n";

/// What a good link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLink {
    pub tenant: String,
    pub user: String,
    pub message: String,
    /// Unix milliseconds (whole seconds).
    pub expires_at: Millis,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not a token, or not one of this hub (cut short, edited, or signed with another key).
    Invalid,
    /// A good token whose time is up.
    Expired,
}

/// Signs and checks links with the hub's key.
pub struct Links {
    key: Vec<u8>,
}

impl Links {
    pub fn new(key: Vec<u8>) -> Links {
        Links { key }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length; this one is 32 bytes.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(CONTEXT);
        mac.update(payload);
        mac
    }

    /// The token for `link`.
    pub fn sign(&self, link: &OpenLink) -> String {
        let payload =
            format!("v1\n{}\n{}\n{}\n{}", link.tenant, link.user, link.message, link.expires_at.div_euclid(1000));
        let tag = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag))
    }

    /// The link a token names, if this hub signed it and it has not expired at `now`.
    pub fn verify(&self, token: &str, now: Millis) -> Result<OpenLink, LinkError> {
        let (payload, tag) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| LinkError::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| LinkError::Invalid)?;
        self.mac(&payload).verify_slice(&tag).map_err(|_| LinkError::Invalid)?;
        let text = String::from_utf8(payload).map_err(|_| LinkError::Invalid)?;
        let f: Vec<&str> = text.split('\n').collect();
        let [version, tenant, user, message, expires] = f[..] else { return Err(LinkError::Invalid) };
        let expires: i64 = expires.parse().map_err(|_| LinkError::Invalid)?;
        if version != "v1" {
            return Err(LinkError::Invalid);
        }
        let link = OpenLink {
            tenant: tenant.to_owned(),
            user: user.to_owned(),
            message: message.to_owned(),
            expires_at: expires.saturating_mul(1000),
        };
        if now >= link.expires_at {
            return Err(LinkError::Expired);
        }
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> OpenLink {
        OpenLink { tenant: "t1".into(), user: "u1".into(), message: "m1".into(), expires_at: 10_000 }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let links = Links::new(vec![7; 32]);
        let token = links.sign(&link());
        assert_eq!(links.verify(&token, 9_999), Ok(link()));
        assert_eq!(links.verify(&token, 10_000), Err(LinkError::Expired));
    }

    #[test]
    fn an_edited_or_foreign_token_is_invalid() {
        let links = Links::new(vec![7; 32]);
        let token = links.sign(&link());
        let other = Links::new(vec![8; 32]);
        assert_eq!(other.verify(&token, 0), Err(LinkError::Invalid));
        // Another message id under the same tag.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("v1\nt1\nu1\nm2\n10"));
        assert_eq!(links.verify(&forged, 0), Err(LinkError::Invalid));
        for bad in ["", ".", "abc", "a.b.c", &token[..token.len() - 2]] {
            assert_eq!(links.verify(bad, 0), Err(LinkError::Invalid), "{bad}");
        }
    }
}
