//! Notification e-mails: what they say (`compose`, pure) and how they go out (`Mailer`, SMTP
//! through lettre's tokio transport, rustls with ring).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::cfg::{ConfigError, SmtpConfig, SmtpTls};

/// One request in an e-mail.
#[derive(Debug, Clone)]
pub struct Notice {
    /// Who sent it, as a person reads it ("Deploy bot").
    pub from: String,
    /// Its text (the first text part), or what it holds.
    pub text: String,
    /// When it arrived (RFC 3339).
    pub at: String,
    /// The signed link to it.
    pub link: String,
}

/// Longest text quoted from a request.
const QUOTE_CHARS: usize = 1000;

fn first_line(text: &str, chars: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > chars {
        format!("{}…", line.chars().take(chars).collect::<String>())
    } else {
        line.into()
    }
}

/// Subject and plain-text body of the e-mail telling a person of `notices` (at least one):
/// one request as itself, several (what arrived in quiet hours) as one digest.
pub fn compose(notices: &[Notice], link_hours: i64) -> (String, String) {
    let footer = format!(
        "\n--\nEach link works for {link_hours} hours. You get these e-mails for requests addressed to you; \
         turn them off or set quiet hours with PUT /v1/users/me/notifications.\n"
    );
    let quote = |t: &str| {
        let t: String = t.chars().take(QUOTE_CHARS).collect();
        t.lines().map(|l| format!("> {l}\n")).collect::<String>()
    };
    match notices {
        [n] => {
            let subject = format!("{}: {}", n.from, first_line(&n.text, 80));
            let body = format!(
                "{} sent you a request at {}:\n\n{}\nOpen it: {}\n{footer}",
                n.from,
                n.at,
                quote(&n.text),
                n.link
            );
            (subject, body)
        }
        many => {
            let subject = format!("{} new requests in Switchboard", many.len());
            let mut body = format!("{} requests arrived while you were away:\n", many.len());
            for (i, n) in many.iter().enumerate() {
                body.push_str(&format!(
                    "\n{}. {} at {}:\n{}Open it: {}\n",
                    i + 1,
                    n.from,
                    n.at,
                    quote(&n.text),
                    n.link
                ));
            }
            body.push_str(&footer);
            (subject, body)
        }
    }
}

/// The host of a base URL (`https://hub.example.com:8443/x` → `hub.example.com`), the name the
/// node greets the SMTP server with.
pub fn host_of(base_url: &str) -> String {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() { "localhost".into() } else { host.into() }
}

/// Sends e-mail through the configured SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The transport for `cfg`, greeting the server as `helo` (the public URL's host).
    pub fn new(cfg: &SmtpConfig, helo: &str) -> Result<Mailer, ConfigError> {
        let bad = |e: lettre::transport::smtp::Error| ConfigError(format!("smtp_host `{}`: {e}", cfg.host));
        let builder = match cfg.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host).map_err(bad)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(bad)?,
        };
        let mut builder =
            builder.port(cfg.port).hello_name(ClientId::Domain(helo.to_owned())).timeout(Some(Duration::from_secs(30)));
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.0.clone()));
        }
        let from = cfg.from.parse().map_err(|e| ConfigError(format!("smtp_from `{}`: {e}", cfg.from)))?;
        Ok(Mailer { transport: builder.build(), from })
    }

    /// Sends one plain-text e-mail; the error says why in words (no credentials in it).
    pub async fn send(&self, to_name: &str, to_email: &str, subject: &str, body: String) -> Result<(), String> {
        let to =
            Mailbox::new(Some(to_name.to_owned()), to_email.parse().map_err(|e| format!("address {to_email}: {e}"))?);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("cannot build the e-mail: {e}"))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(text: &str) -> Notice {
        Notice {
            from: "Deploy bot".into(),
            text: text.into(),
            at: "2026-11-29T12:00:00.000Z".into(),
            link: "https://hub/open/x".into(),
        }
    }

    #[test]
    fn the_greeting_names_the_public_host() {
        assert_eq!(host_of("https://hub.example.com:8443/x"), "hub.example.com");
        assert_eq!(host_of("http://127.0.0.1:7777"), "127.0.0.1");
        assert_eq!(host_of("http://[::1]:7777"), "::1");
    }

    #[test]
    fn one_request_is_its_own_e_mail_and_several_are_a_digest() {
        let (subject, body) = compose(&[notice("Ship 1.2 to production?\nAll checks passed.")], 72);
        assert_eq!(subject, "Deploy bot: Ship 1.2 to production?");
        assert!(body.contains("> All checks passed.\n"), "{body}");
        assert!(body.contains("Open it: https://hub/open/x"), "{body}");
        assert!(body.contains("72 hours"), "{body}");
        let (subject, body) = compose(&[notice("a"), notice("b")], 72);
        assert_eq!(subject, "2 new requests in Switchboard");
        assert!(body.contains("1. Deploy bot") && body.contains("2. Deploy bot"), "{body}");
    }
}
