//! Wire types for people: users, sign-in sessions and personal access tokens (`/v1/users`,
//! `/v1/auth`, `/v1/users/me/tokens`), and the rules their fields follow.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::FieldError;
use crate::principal::Role;

/// Prefix of personal access tokens, so a leaked one is recognisable by secret scanners.
pub const PAT_PREFIX: &str = "sbp_";
/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted (argon2 hashes any length; this bounds the work).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The longest a personal access token may live: 365 days.
pub const MAX_TOKEN_DAYS: f64 = 365.0;

/// A user of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    /// Lower-cased; unique in the tenant.
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Whether the user can sign in with a password (else only with personal access tokens
    /// an admin made for it).
    pub has_password: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// `POST /v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// An email address, unique in the tenant (compared without regard to case).
    #[schema(min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub role: Role,
    /// At least 12 characters. Without one the user cannot sign in with a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
}

/// `PUT /v1/users/{id}`: the fields to change; those left out keep their value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 3, max_length = 254)]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// A new password (at least 12 characters); the user's sessions end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
}

/// `POST /v1/users` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserCreated {
    pub user: User,
}

/// `GET /v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
    /// The tenant's id or name; the default tenant when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// `POST /v1/auth/login` answer (the session itself is the `sb_session` cookie).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginAnswer {
    pub user: User,
    /// The tenant signed in to.
    pub tenant: String,
    /// Send it as `X-CSRF-Token` with every POST, PUT, PATCH and DELETE made with the cookie.
    pub csrf_token: String,
    /// When the session ends at the latest.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// `POST /v1/users/me/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1 to 200 characters, to tell your tokens apart.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// How long it works, in days (fractions allowed), up to 365; it never expires when left
    /// out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0, maximum = 365)]
    pub expires_in_days: Option<f64>,
}

/// A personal access token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserToken {
    /// Its id (`tok_…`), to revoke it by.
    pub id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it stops working; `null`: never.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// When it last authenticated a request (recorded about once a second); `null` if never.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

/// `POST /v1/users/me/tokens` answer: the token, shown only this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The token itself (`sbp_…`); only its hash is stored.
    pub token: String,
    pub id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// `GET /v1/users/me/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserTokenList {
    pub tokens: Vec<UserToken>,
}

fn field(path: &str, message: impl Into<String>) -> FieldError {
    FieldError { path: path.to_owned(), message: message.into() }
}

/// An email as stored and compared: trimmed and lower-cased, or what is wrong with it.
pub fn normalize_email(email: &str) -> Result<String, String> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(e) } else { Err("must be an email address such as ann@example.com (at most 254 bytes)".into()) }
}

/// Whether `password` is acceptable, or what is wrong with it.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters long"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("must be at most {MAX_PASSWORD_BYTES} bytes long"));
    }
    Ok(())
}

fn check_name(path: &str, name: &str, errors: &mut Vec<FieldError>) {
    if name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        errors.push(field(path, "must be 1 to 200 characters, without control characters"));
    }
}

/// Checks a new user; returns it with its email normalized, or every field at fault.
pub fn create_user(mut u: CreateUser) -> Result<CreateUser, Vec<FieldError>> {
    let mut errors = Vec::new();
    match normalize_email(&u.email) {
        Ok(e) => u.email = e,
        Err(m) => errors.push(field("email", m)),
    }
    check_name("name", &u.name, &mut errors);
    if let Some(p) = &u.password
        && let Err(m) = check_password(p)
    {
        errors.push(field("password", m));
    }
    if errors.is_empty() { Ok(u) } else { Err(errors) }
}

/// Checks a user update; returns it with its email normalized, or every field at fault.
pub fn update_user(mut u: UpdateUser) -> Result<UpdateUser, Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Some(email) = &u.email {
        match normalize_email(email) {
            Ok(e) => u.email = Some(e),
            Err(m) => errors.push(field("email", m)),
        }
    }
    if let Some(n) = &u.name {
        check_name("name", n, &mut errors);
    }
    if let Some(p) = &u.password
        && let Err(m) = check_password(p)
    {
        errors.push(field("password", m));
    }
    if errors.is_empty() { Ok(u) } else { Err(errors) }
}

/// Checks a new token's fields; returns its lifetime in milliseconds (`None`: no expiry).
pub fn create_token(t: &CreateToken) -> Result<Option<i64>, Vec<FieldError>> {
    let mut errors = Vec::new();
    check_name("name", &t.name, &mut errors);
    let ms = match t.expires_in_days {
        None => None,
        Some(d) if d.is_finite() && d > 0.0 && d <= MAX_TOKEN_DAYS => Some((d * 86_400_000.0).ceil() as i64),
        Some(_) => {
            errors.push(field("expires_in_days", "must be more than 0 and at most 365 (fractions of a day allowed)"));
            None
        }
    };
    if errors.is_empty() { Ok(ms) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_need_an_at() {
        assert_eq!(normalize_email(" Ann@Example.COM "), Ok("ann@example.com".into()));
        for bad in ["ann", "@x", "ann@", "a b@x", ""] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert!(check_password("elevenchars").unwrap_err().contains("at least 12"));
        assert_eq!(check_password("twelve chars"), Ok(()));
        assert!(check_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn token_lifetimes_may_be_fractions_of_a_day() {
        let t = |d| CreateToken { name: "ci".into(), expires_in_days: d };
        assert_eq!(create_token(&t(None)), Ok(None));
        assert_eq!(create_token(&t(Some(1.0))), Ok(Some(86_400_000)));
        assert_eq!(create_token(&t(Some(0.5))), Ok(Some(43_200_000)));
        for bad in [0.0, -1.0, 366.0, f64::NAN] {
            assert_eq!(create_token(&t(Some(bad))).unwrap_err()[0].path, "expires_in_days");
        }
    }

    #[test]
    fn a_user_reports_every_bad_field() {
        let u =
            CreateUser { email: "nope".into(), name: " ".into(), role: Role::Member, password: Some("short".into()) };
        let paths: Vec<_> = create_user(u).unwrap_err().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["email", "name", "password"]);
    }
}
