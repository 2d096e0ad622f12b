//! Speaking to the web app over HTTP as a person: create one, sign in through the form, read
//! a page's CSRF token.

use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use switchboard_core::people::CreateUser;
use switchboard_core::principal::Role;

use super::TestHub;

pub const PASSWORD: &str = "correct horse battery";

/// Creates a member who can sign in with `PASSWORD`; returns its id.
pub async fn user(hub: &TestHub, email: &str, name: &str) -> String {
    let req =
        CreateUser { email: email.into(), name: name.into(), role: Role::Member, password: Some(PASSWORD.into()) };
    hub.admin().create_user(&req).await.expect("create user").user.id
}

/// A client that does not follow redirects, so tests see them.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().expect("client")
}

/// Signs in through the form; returns the `sb_session=…` cookie pair.
pub async fn sign_in(hub: &TestHub, email: &str) -> String {
    let res = http()
        .post(format!("{}/sign-in", hub.url()))
        .form(&[("email", email), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 303, "a good password is sent on to the inbox");
    assert_eq!(res.headers()[LOCATION], "/");
    let cookie = res.headers()[SET_COOKIE].to_str().expect("cookie").to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    cookie.split(';').next().expect("pair").to_owned()
}

/// GETs `path` with the session; returns (status, body).
pub async fn get(hub: &TestHub, cookie: &str, path: &str) -> (u16, String) {
    let res =
        http().get(format!("{}{path}", hub.url())).header(reqwest::header::COOKIE, cookie).send().await.expect("get");
    (res.status().as_u16(), res.text().await.expect("body"))
}

/// The CSRF token a page's forms carry.
pub fn csrf_of(page: &str) -> String {
    page.split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's forms carry the token")
        .to_owned()
}
