//! People: users and their roles, password sign-in with sessions, personal access tokens.
//!
//! - [`users`]: creating, changing and removing users, who may do it, and personal access
//!   tokens.
//! - [`sessions`]: sign-in (password check, throttle), sessions and sign-out.
//! - [`password`]: argon2id hashing on the blocking pool; [`throttle`]: failed sign-ins per key.

pub mod password;
pub mod sessions;
pub mod throttle;
pub mod users;
