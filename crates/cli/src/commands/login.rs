//! `switchboard login` and `switchboard whoami`: signing in as a person, and asking who the
//! CLI acts as.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use clap::Args;
use switchboard_core::people::{CreateToken, Login};

use crate::conn::{Conn, client};
use crate::{credentials, output};

/// `switchboard login`.
#[derive(Args)]
pub struct LoginArgs {
    /// Your email (asked for when left out).
    #[arg(long)]
    pub email: Option<String>,
    /// The tenant's id or name (default: the default tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// How long the saved token works, in days (at most 365).
    #[arg(long, default_value_t = 90.0)]
    pub expires_in_days: f64,
    #[command(flatten)]
    pub conn: Conn,
}

/// `switchboard whoami`.
#[derive(Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub conn: Conn,
}

/// Reads a line from the terminal after `prompt`, echoing it unless `secret`.
fn ask(prompt: &str, secret: bool) -> Result<String> {
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to ask on; pass --email and set SWITCHBOARD_PASSWORD")?;
    (&tty).write_all(prompt.as_bytes())?;
    let fd = tty.as_raw_fd();
    // SAFETY: `termios` is plain data; tcgetattr fills it for an open descriptor.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let echo_off = secret && unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if echo_off {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: `fd` is open, `quiet` a termios read from it.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if echo_off {
        // SAFETY: as above; puts back what was there.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The password: `SWITCHBOARD_PASSWORD` for scripts, else asked without echo.
pub fn password(prompt: &str) -> Result<String> {
    match std::env::var("SWITCHBOARD_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(p),
        _ => ask(prompt, true),
    }
}

/// Signs in, makes a personal access token and saves it for this hub.
pub async fn login(args: LoginArgs) -> Result<()> {
    let email = match args.email {
        Some(e) => e,
        None => ask("email: ", false)?,
    };
    let password = password("password: ")?;
    // Signing in needs no token; any token set is not sent.
    let hub = client(&args.conn)?.without_token();
    let session = hub.login(&Login { email, password, tenant: args.tenant }).await?;
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "this machine".into());
    let req = CreateToken { name: format!("switchboard CLI on {host}"), expires_in_days: Some(args.expires_in_days) };
    let made = hub.create_token_in_session(&session, &req).await;
    // The session was only the way to the token.
    let _ = hub.logout(&session).await;
    let made = made?;
    let user = &session.answer.user;
    let saved = credentials::Saved {
        token: made.token,
        token_id: made.id.clone(),
        email: user.email.clone(),
        tenant: session.answer.tenant.clone(),
    };
    let path = credentials::save(&args.conn.url, saved)?;
    if args.conn.json {
        return output::json(&serde_json::json!({
            "user": user, "tenant": session.answer.tenant, "token_id": made.id,
            "expires_at": made.expires_at, "saved_to": path,
        }));
    }
    println!("signed in as {} ({}) in tenant {}", user.email, user.role, session.answer.tenant);
    println!(
        "token {} saved to {} (until {}); commands use it when SWITCHBOARD_TOKEN is unset",
        made.id,
        path.display(),
        made.expires_at.as_deref().unwrap_or("revoked")
    );
    Ok(())
}

/// Prints who the CLI acts as.
pub async fn whoami(args: WhoamiArgs) -> Result<()> {
    let who = client(&args.conn)?.whoami().await?;
    if args.conn.json {
        return output::json(&who);
    }
    let mut rows = vec![vec!["principal".into(), who.principal.clone()], vec!["tenant".into(), who.tenant.clone()]];
    if let Some(u) = &who.user {
        rows.push(vec!["email".into(), u.email.clone()]);
        rows.push(vec!["name".into(), u.name.clone()]);
        rows.push(vec!["role".into(), u.role.to_string()]);
    }
    print!("{}", output::table(&["WHO", "VALUE"], rows));
    Ok(())
}
