//! What the client commands print: aligned tables for people, `--json` for scripts, and
//! errors on stderr with a hint of what to do next.

use anyhow::Result;
use switchboard_client::ClientError;
use switchboard_core::api::{DeliveryItem, Part};

use crate::logs::LogFormat;

/// Renders rows under headers, each column as wide as its widest cell.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Prints `v` as pretty JSON: the `--json` answer of a client command.
pub fn json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A message's parts as one line of text (data parts as JSON, files by name).
pub fn text_of(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text { text } => text.clone(),
            Part::Data { data } => data.to_string(),
            Part::File { file } => format!("[file {}]", file.name.as_deref().unwrap_or("")),
            Part::Sealed { .. } => "[sealed]".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The columns of a delivery listing (`deliveries`, `dead-letters list`).
pub const DELIVERY_HEADERS: [&str; 7] = ["MESSAGE", "FROM", "RECIPIENT", "STATE", "ATTEMPTS", "UPDATED", "LAST ERROR"];

/// The rows of a delivery listing, under [`DELIVERY_HEADERS`].
pub fn delivery_rows(items: &[DeliveryItem]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|d| {
            vec![
                d.message_id.clone(),
                d.from.clone(),
                d.recipient.clone(),
                d.state.as_str().into(),
                d.attempts.to_string(),
                d.updated_at.clone(),
                d.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

/// Client commands end quietly when their reader goes away (`switchboard … --json | head`),
/// as Unix tools do, instead of panicking on a failed `println!`. Rust ignores SIGPIPE at
/// start; sockets are unaffected either way (std sends with `MSG_NOSIGNAL`). Not for `serve`.
pub fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once on the main thread before any other thread writes to a pipe;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Tells what went wrong on stderr, with what to do about it: for people as text, or as one
/// JSON log event when the logs are JSON (a log shipper reads every line of stderr).
pub fn report_error(e: &anyhow::Error, logs: LogFormat) {
    if logs == LogFormat::Json {
        tracing::error!("{e:#}");
        return;
    }
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Api(p)) => {
            eprintln!("error: {} ({})\n  {}", p.title, p.code, p.detail);
            for fe in &p.errors {
                eprintln!("  - {}: {}", if fe.path.is_empty() { "(body)" } else { &fe.path }, fe.message);
            }
            if p.code == "unauthenticated" {
                eprintln!("  hint: set SWITCHBOARD_TOKEN to an agent API key or the admin token");
            }
        }
        // reqwest's error repeats the URL at each level of its chain: the root cause
        // is the part that says what went wrong (refused, timed out, no such host).
        Some(ClientError::Transport { url, source }) => {
            let cause = root_cause(source).to_string();
            eprintln!("error: cannot reach the hub at {url}: {cause}");
            if cause.contains("certificate") {
                eprintln!("  {CERTIFICATE_HINT}");
            } else if url.starts_with("http://") && cause.contains("invalid HTTP") {
                eprintln!("  hint: the hub may serve HTTPS (--tls-cert); use an https:// URL");
            } else {
                eprintln!("  {HUB_DOWN_HINT}");
            }
        }
        Some(ClientError::Stream(s)) if s.starts_with("cannot connect") => {
            eprintln!("error: stream: {s}");
            eprintln!("  {HUB_DOWN_HINT}");
        }
        _ => eprintln!("error: {e:#}"),
    }
}

/// What to do when the hub's certificate is not trusted.
const CERTIFICATE_HINT: &str = "hint: if the hub's certificate is self-signed or from a private CA, pass that CA's certificate with --ca-cert or SWITCHBOARD_CA_CERT";

/// What to check when the hub cannot be reached.
const HUB_DOWN_HINT: &str =
    "hint: is the hub running? Start it with `switchboard serve`, or point --url / SWITCHBOARD_URL at it";

/// The innermost error of a chain.
fn root_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> &'a (dyn std::error::Error + 'static) {
    let mut e = e;
    while let Some(next) = e.source() {
        e = next;
    }
    e
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let t = super::table(&["ID", "NAME"], vec![vec!["1".into(), "alpha".into()], vec!["22".into(), "b".into()]]);
        assert_eq!(t, "ID  NAME\n1   alpha\n22  b\n");
    }
}
