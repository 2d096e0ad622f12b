//! People: users, signing in with a password, and personal access tokens.

use reqwest::Method;
use reqwest::header::{COOKIE, SET_COOKIE};
use switchboard_core::people::{
    CreateToken, CreateUser, Login, LoginAnswer, TokenCreated, UpdateUser, User, UserCreated, UserList, UserTokenList,
};

use super::{Client, ClientError, Result, urlencode};

/// A password sign-in: the `sb_session` cookie's value and the answer (its `csrf_token`).
pub struct Session {
    pub cookie: String,
    pub answer: LoginAnswer,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("user", &self.answer.user.id).finish_non_exhaustive()
    }
}

impl Client {
    /// Creates a user (owners and admins).
    pub async fn create_user(&self, req: &CreateUser) -> Result<UserCreated> {
        self.call(Method::POST, "/v1/users", Some(req)).await
    }

    /// A page of the tenant's users by id, after `cursor` (a `next_cursor`).
    pub async fn list_users(&self, cursor: Option<&str>, limit: Option<usize>) -> Result<UserList> {
        let mut q = Vec::new();
        if let Some(c) = cursor {
            q.push(format!("cursor={}", urlencode(c)));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        let path = if q.is_empty() { "/v1/users".to_owned() } else { format!("/v1/users?{}", q.join("&")) };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn get_user(&self, id: &str) -> Result<User> {
        self.call::<(), _>(Method::GET, &format!("/v1/users/{}", urlencode(id)), None).await
    }

    pub async fn update_user(&self, id: &str, req: &UpdateUser) -> Result<User> {
        self.call(Method::PUT, &format!("/v1/users/{}", urlencode(id)), Some(req)).await
    }

    pub async fn delete_user(&self, id: &str) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, &format!("/v1/users/{}", urlencode(id)), None).await
    }

    /// Removes a user and erases the payloads of their messages (cannot be undone).
    pub async fn erase_user(&self, id: &str) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, &format!("/v1/users/{}?erase=true", urlencode(id)), None).await
    }

    /// Creates a personal access token for the person this client acts as; shown only once.
    pub async fn create_token(&self, req: &CreateToken) -> Result<TokenCreated> {
        self.call(Method::POST, "/v1/users/me/tokens", Some(req)).await
    }

    /// The personal access tokens of the person this client acts as.
    pub async fn list_tokens(&self) -> Result<UserTokenList> {
        self.call::<(), _>(Method::GET, "/v1/users/me/tokens", None).await
    }

    /// The caller's e-mail notification preferences (people only).
    pub async fn notification_prefs(&self) -> Result<switchboard_core::api::NotificationPrefs> {
        self.call::<(), _>(Method::GET, "/v1/users/me/notifications", None).await
    }

    /// Replaces the caller's e-mail notification preferences (people only).
    pub async fn put_notification_prefs(
        &self,
        prefs: &switchboard_core::api::NotificationPrefs,
    ) -> Result<switchboard_core::api::NotificationPrefs> {
        self.call(Method::PUT, "/v1/users/me/notifications", Some(prefs)).await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, &format!("/v1/users/me/tokens/{}", urlencode(id)), None).await
    }

    /// Signs in with a password (no token needed); the session is kept in the answer.
    pub async fn login(&self, req: &Login) -> Result<Session> {
        let url = format!("{}/v1/auth/login", self.base);
        let res = self
            .http
            .post(&url)
            .json(req)
            .send()
            .await
            .map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        let cookie = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.split(';').next()?.trim().strip_prefix("sb_session=").map(str::to_owned));
        let answer: LoginAnswer = self.read(&url, res).await?;
        let cookie = cookie.ok_or_else(|| ClientError::Protocol("the sign-in set no `sb_session` cookie".into()))?;
        Ok(Session { cookie, answer })
    }

    /// Creates a personal access token within a password session (as a browser would: the
    /// cookie and its CSRF token).
    pub async fn create_token_in_session(&self, s: &Session, req: &CreateToken) -> Result<TokenCreated> {
        let url = format!("{}/v1/users/me/tokens", self.base);
        let call = self.session_request(Method::POST, &url, s).json(req);
        self.answer(&url, call).await
    }

    /// Ends a password session.
    pub async fn logout(&self, s: &Session) -> Result<()> {
        let url = format!("{}/v1/auth/logout", self.base);
        let call = self.session_request(Method::POST, &url, s);
        self.answer(&url, call).await
    }

    /// GETs a page of the web app (`path`, e.g. `/` or `/conversations/<id>`) in the session;
    /// returns its status and its length in bytes. For benchmarks and smoke checks: the body
    /// is HTML for people, not an API.
    pub async fn page(&self, s: &Session, path: &str) -> Result<(u16, usize)> {
        let url = format!("{}{path}", self.base);
        let res = self
            .session_request(Method::GET, &url, s)
            .send()
            .await
            .map_err(|source| ClientError::Transport { url: url.clone(), source })?;
        let status = res.status().as_u16();
        let body = res.bytes().await.map_err(|source| ClientError::Transport { url, source })?;
        Ok((status, body.len()))
    }

    fn session_request(&self, method: Method, url: &str, s: &Session) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header(COOKIE, format!("sb_session={}", s.cookie))
            .header("x-csrf-token", &s.answer.csrf_token)
    }
}
