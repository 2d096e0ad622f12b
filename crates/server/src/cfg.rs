//! Configuration: defaults < `switchboard.toml` < environment < flags, resolved once at start.
//!
//! The CLI fills a [`Settings`] from flags and environment (clap does both); the file fills
//! another; [`Config::resolve`] layers them over the defaults and validates the result, naming
//! the setting that is wrong.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Every setting, each optional: one layer of configuration (file, or flags and environment).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub admin_token: Option<String>,
    /// Largest accepted message body, bytes.
    pub max_message_bytes: Option<usize>,
    /// Default lease (visibility timeout) of a delivered message, milliseconds.
    pub visibility_timeout_ms: Option<u64>,
    /// An agent not seen for this long is `inactive`, milliseconds.
    pub heartbeat_window_ms: Option<u64>,
    /// Deliveries not acknowledged after this many attempts go to `dead`.
    pub max_attempts: Option<u32>,
    /// Unacknowledged messages a stream connection may hold at once.
    pub max_in_flight: Option<usize>,
    /// How often the node looks for expired leases and TTLs, milliseconds.
    pub reaper_interval_ms: Option<u64>,
    /// Push: how long an endpoint has to answer, milliseconds.
    pub push_timeout_ms: Option<u64>,
    /// Push: milliseconds before each retry; after the last the delivery is dead.
    pub push_retry_schedule_ms: Option<Vec<u64>>,
    /// Push: requests in flight per endpoint.
    pub push_concurrency_per_endpoint: Option<usize>,
    /// Push: requests in flight per node.
    pub push_concurrency: Option<usize>,
    /// Push: consecutive failures that open an endpoint's circuit.
    pub circuit_failures: Option<u32>,
    /// Push: how long an open circuit waits before a probe, milliseconds.
    pub circuit_cooldown_ms: Option<u64>,
    /// Push: allow endpoints on addresses that are not globally reachable (loopback, private,
    /// link-local and the other special-purpose ranges of the IANA registries).
    pub allow_private_endpoints: Option<bool>,
    /// HTTP connections the node keeps open at once (also bounded by the open-file limit).
    pub max_connections: Option<usize>,
    /// HTTP connections one client address keeps open at once; 0 for no limit.
    pub max_connections_per_ip: Option<usize>,
    /// How long a client has to send a request's headers once it started, milliseconds.
    pub header_read_timeout_ms: Option<u64>,
    /// How long a connection with no request in progress stays open, milliseconds.
    pub idle_timeout_ms: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first).
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM, unencrypted).
    pub tls_key: Option<PathBuf>,
    /// The hub's public base URL (e.g. `https://hub.example.com`): the `iss` of its OAuth2
    /// tokens and the base of its metadata URLs.
    pub public_url: Option<String>,
    /// Lifetime of OAuth2 access tokens issued by `POST /oauth/token`, seconds.
    pub oauth_token_ttl_secs: Option<u64>,
    /// An external issuer's key set is fetched again for an unknown `kid` at most this
    /// often, milliseconds.
    pub jwks_refresh_min_ms: Option<u64>,
    /// E-mail notifications: the SMTP server's host name (unset: no e-mail is sent).
    pub smtp_host: Option<String>,
    /// The SMTP server's port (default by `smtp_tls`: 25, 587 or 465).
    pub smtp_port: Option<u16>,
    /// `none` (plain text, for a relay on the same host), `starttls` (the default) or `tls`.
    pub smtp_tls: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    /// The `From` of notification e-mails, e.g. `Switchboard <hub@example.com>`.
    pub smtp_from: Option<String>,
    /// How often a node looks for new requests to e-mail, milliseconds.
    pub notify_interval_ms: Option<u64>,
}

/// A setting never shown: `Debug` prints `***`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Settings {
    /// `self` with every unset field taken from `lower`.
    fn over(self, lower: Settings) -> Settings {
        Settings {
            listen: self.listen.or(lower.listen),
            data_dir: self.data_dir.or(lower.data_dir),
            database_url: self.database_url.or(lower.database_url),
            admin_token: self.admin_token.or(lower.admin_token),
            max_message_bytes: self.max_message_bytes.or(lower.max_message_bytes),
            visibility_timeout_ms: self.visibility_timeout_ms.or(lower.visibility_timeout_ms),
            heartbeat_window_ms: self.heartbeat_window_ms.or(lower.heartbeat_window_ms),
            max_attempts: self.max_attempts.or(lower.max_attempts),
            max_in_flight: self.max_in_flight.or(lower.max_in_flight),
            reaper_interval_ms: self.reaper_interval_ms.or(lower.reaper_interval_ms),
            push_timeout_ms: self.push_timeout_ms.or(lower.push_timeout_ms),
            push_retry_schedule_ms: self.push_retry_schedule_ms.or(lower.push_retry_schedule_ms),
            push_concurrency_per_endpoint: self.push_concurrency_per_endpoint.or(lower.push_concurrency_per_endpoint),
            push_concurrency: self.push_concurrency.or(lower.push_concurrency),
            circuit_failures: self.circuit_failures.or(lower.circuit_failures),
            circuit_cooldown_ms: self.circuit_cooldown_ms.or(lower.circuit_cooldown_ms),
            allow_private_endpoints: self.allow_private_endpoints.or(lower.allow_private_endpoints),
            max_connections: self.max_connections.or(lower.max_connections),
            max_connections_per_ip: self.max_connections_per_ip.or(lower.max_connections_per_ip),
            header_read_timeout_ms: self.header_read_timeout_ms.or(lower.header_read_timeout_ms),
            idle_timeout_ms: self.idle_timeout_ms.or(lower.idle_timeout_ms),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            public_url: self.public_url.or(lower.public_url),
            oauth_token_ttl_secs: self.oauth_token_ttl_secs.or(lower.oauth_token_ttl_secs),
            jwks_refresh_min_ms: self.jwks_refresh_min_ms.or(lower.jwks_refresh_min_ms),
            smtp_host: self.smtp_host.or(lower.smtp_host),
            smtp_port: self.smtp_port.or(lower.smtp_port),
            smtp_tls: self.smtp_tls.or(lower.smtp_tls),
            smtp_username: self.smtp_username.or(lower.smtp_username),
            smtp_password: self.smtp_password.or(lower.smtp_password),
            smtp_from: self.smtp_from.or(lower.smtp_from),
            notify_interval_ms: self.notify_interval_ms.or(lower.notify_interval_ms),
        }
    }

    /// Reads a `switchboard.toml`.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))
    }
}

/// A setting that cannot be used; the text names it and says what is expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The node's resolved configuration, passed explicitly to everything that needs it.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// Admin token set by the operator (`SWITCHBOARD_ADMIN_TOKEN`); otherwise one is generated
    /// on first start.
    pub admin_token: Option<String>,
    pub max_message_bytes: usize,
    pub visibility_timeout_ms: u64,
    pub heartbeat_window_ms: u64,
    pub max_attempts: u32,
    pub max_in_flight: usize,
    pub reaper_interval_ms: u64,
    pub push_timeout_ms: u64,
    pub push_retry_schedule_ms: Vec<u64>,
    pub push_concurrency_per_endpoint: usize,
    pub push_concurrency: usize,
    pub circuit_failures: u32,
    pub circuit_cooldown_ms: u64,
    pub allow_private_endpoints: bool,
    /// Open HTTP connections at most. At the limit a new connection takes the place of the
    /// one idle longest; if every connection is busy it is refused.
    pub max_connections: usize,
    /// Open HTTP connections per client address at most (IPv6: per /64), the same way; 0
    /// turns it off (behind a load balancer every connection comes from its address).
    pub max_connections_per_ip: usize,
    /// A request's headers must arrive within this of their first byte, else the
    /// connection is answered 408 and closed (slow-header clients hold no connection long).
    pub header_read_timeout_ms: u64,
    /// A keep-alive connection with no request in progress is closed after this. Streams,
    /// SSE and long-polls are requests in progress, so it never cuts them.
    pub idle_timeout_ms: u64,
    /// The node serves HTTPS with this certificate chain (PEM) and `tls_key`; both or neither.
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM).
    pub tls_key: Option<PathBuf>,
    /// The hub's public base URL, without a trailing `/`: its OAuth2 issuer. `None`: the
    /// node's own `http(s)://<listen address>`, which suits one node reached directly;
    /// behind a proxy, or with several nodes (which must share one issuer), set it.
    pub public_url: Option<String>,
    /// Lifetime of the OAuth2 access tokens the hub issues, seconds (default 900).
    pub oauth_token_ttl_secs: u64,
    /// Least time between two fetches of an external issuer's key set caused by an unknown
    /// `kid`, milliseconds (default 10000): a stream of tokens with made-up key ids costs
    /// the issuer one request per this interval, not one per token.
    pub jwks_refresh_min_ms: u64,
    /// Where notification e-mails go out; `None`: no e-mail (and no error).
    pub smtp: Option<SmtpConfig>,
    /// How often the node looks for new requests to e-mail, milliseconds (default 1000).
    pub notify_interval_ms: u64,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or network.
    None,
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// The SMTP server notification e-mails go through.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The `From` mailbox, checked at start-up.
    pub from: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:7777".into(),
            data_dir: PathBuf::from("./switchboard-data"),
            database_url: None,
            admin_token: None,
            max_message_bytes: 1024 * 1024,
            visibility_timeout_ms: 30_000,
            heartbeat_window_ms: 60_000,
            max_attempts: 10,
            max_in_flight: 1000,
            reaper_interval_ms: 250,
            push_timeout_ms: 15_000,
            // 5 s, 30 s, 2 m, 10 m, 30 m, 1 h, 3 h, 6 h: Svix's schedule, about 10 h in all.
            push_retry_schedule_ms: vec![5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000],
            push_concurrency_per_endpoint: 4,
            push_concurrency: 64,
            circuit_failures: 5,
            circuit_cooldown_ms: 30_000,
            allow_private_endpoints: false,
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            header_read_timeout_ms: 10_000,
            // Longer than the 60 s idle timeout of common load balancers, so that they, not
            // the node, close a pooled connection (a request racing the node's close fails).
            idle_timeout_ms: 75_000,
            tls_cert: None,
            tls_key: None,
            public_url: None,
            oauth_token_ttl_secs: 900,
            jwks_refresh_min_ms: 10_000,
            smtp: None,
            notify_interval_ms: 1_000,
        }
    }
}

impl Config {
    /// Layers `flags` (flags and environment) over `file` over the defaults, and validates.
    pub fn resolve(flags: Settings, file: Settings) -> Result<Config, ConfigError> {
        let s = flags.over(file);
        let d = Config::default();
        let smtp = smtp(&s)?;
        let c = Config {
            listen: s.listen.unwrap_or(d.listen),
            data_dir: s.data_dir.unwrap_or(d.data_dir),
            database_url: s.database_url.filter(|u| !u.is_empty()),
            admin_token: s.admin_token.filter(|t| !t.is_empty()),
            max_message_bytes: s.max_message_bytes.unwrap_or(d.max_message_bytes),
            visibility_timeout_ms: s.visibility_timeout_ms.unwrap_or(d.visibility_timeout_ms),
            heartbeat_window_ms: s.heartbeat_window_ms.unwrap_or(d.heartbeat_window_ms),
            max_attempts: s.max_attempts.unwrap_or(d.max_attempts),
            max_in_flight: s.max_in_flight.unwrap_or(d.max_in_flight),
            reaper_interval_ms: s.reaper_interval_ms.unwrap_or(d.reaper_interval_ms),
            push_timeout_ms: s.push_timeout_ms.unwrap_or(d.push_timeout_ms),
            push_retry_schedule_ms: s.push_retry_schedule_ms.unwrap_or(d.push_retry_schedule_ms),
            push_concurrency_per_endpoint: s.push_concurrency_per_endpoint.unwrap_or(d.push_concurrency_per_endpoint),
            push_concurrency: s.push_concurrency.unwrap_or(d.push_concurrency),
            circuit_failures: s.circuit_failures.unwrap_or(d.circuit_failures),
            circuit_cooldown_ms: s.circuit_cooldown_ms.unwrap_or(d.circuit_cooldown_ms),
            allow_private_endpoints: s.allow_private_endpoints.unwrap_or(d.allow_private_endpoints),
            max_connections: s.max_connections.unwrap_or(d.max_connections),
            max_connections_per_ip: s.max_connections_per_ip.unwrap_or(d.max_connections_per_ip),
            header_read_timeout_ms: s.header_read_timeout_ms.unwrap_or(d.header_read_timeout_ms),
            idle_timeout_ms: s.idle_timeout_ms.unwrap_or(d.idle_timeout_ms),
            tls_cert: s.tls_cert.filter(|p| !p.as_os_str().is_empty()),
            tls_key: s.tls_key.filter(|p| !p.as_os_str().is_empty()),
            public_url: s.public_url.filter(|u| !u.is_empty()).map(|u| u.trim_end_matches('/').to_owned()),
            oauth_token_ttl_secs: s.oauth_token_ttl_secs.unwrap_or(d.oauth_token_ttl_secs),
            jwks_refresh_min_ms: s.jwks_refresh_min_ms.unwrap_or(d.jwks_refresh_min_ms),
            smtp,
            notify_interval_ms: s.notify_interval_ms.unwrap_or(d.notify_interval_ms),
        };
        c.validate()?;
        Ok(c)
    }

    /// Whether the node serves HTTPS (so a cookie it sets can be `Secure`).
    pub fn serves_tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// The certificate and key files when both are set, `None` when neither is; one alone is
    /// an error naming the other.
    pub fn tls_files(&self) -> Result<Option<(&Path, &Path)>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError(
                "tls_key (--tls-key, SWITCHBOARD_TLS_KEY): missing; tls_cert is set, and HTTPS needs both the certificate and its private key".into(),
            )),
            (None, Some(_)) => Err(ConfigError(
                "tls_cert (--tls-cert, SWITCHBOARD_TLS_CERT): missing; tls_key is set, and HTTPS needs both the certificate and its private key".into(),
            )),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.tls_files()?;
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError(format!(
                "listen: `{}` is not an address and port such as 127.0.0.1:7777",
                self.listen
            )));
        }
        if let Some(t) = &self.admin_token
            && t.len() < 16
        {
            return Err(ConfigError("admin_token (SWITCHBOARD_ADMIN_TOKEN): use at least 16 characters".into()));
        }
        if let Some(u) = &self.database_url
            && !(u.starts_with("postgres://") || u.starts_with("postgresql://") || u.starts_with("sqlite:"))
        {
            return Err(ConfigError(format!(
                "database_url: `{}` is not understood; use postgres://… (or leave it unset for the embedded store)",
                u.split('@').next_back().unwrap_or_default()
            )));
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(ConfigError(format!(
                "public_url: `{u}` is not an http(s) URL; use the base URL clients reach the hub at, e.g. https://hub.example.com"
            )));
        }
        let ranges: [(&str, u64, u64, u64); 17] = [
            ("notify_interval_ms", self.notify_interval_ms, 50, 600_000),
            ("oauth_token_ttl_secs", self.oauth_token_ttl_secs, 1, 24 * 3600),
            ("jwks_refresh_min_ms", self.jwks_refresh_min_ms, 0, 3600 * 1000),
            ("push_timeout_ms", self.push_timeout_ms, 100, 300_000),
            ("push_concurrency_per_endpoint", self.push_concurrency_per_endpoint as u64, 1, 1000),
            ("push_concurrency", self.push_concurrency as u64, 1, 10_000),
            ("circuit_failures", self.circuit_failures as u64, 1, 1000),
            ("circuit_cooldown_ms", self.circuit_cooldown_ms, 10, 24 * 3600 * 1000),
            ("max_message_bytes", self.max_message_bytes as u64, 1024, 64 * 1024 * 1024),
            ("visibility_timeout_ms", self.visibility_timeout_ms, 100, 12 * 3600 * 1000),
            ("heartbeat_window_ms", self.heartbeat_window_ms, 1000, 7 * 24 * 3600 * 1000),
            ("max_in_flight", self.max_in_flight as u64, 1, 100_000),
            ("reaper_interval_ms", self.reaper_interval_ms, 10, 60_000),
            ("max_connections", self.max_connections as u64, 1, 1_000_000),
            ("max_connections_per_ip", self.max_connections_per_ip as u64, 0, 1_000_000),
            ("header_read_timeout_ms", self.header_read_timeout_ms, 100, 600_000),
            ("idle_timeout_ms", self.idle_timeout_ms, 100, 24 * 3600 * 1000),
        ];
        for (name, v, lo, hi) in ranges {
            if v < lo || v > hi {
                return Err(ConfigError(format!("{name}: {v} is out of range; use {lo} to {hi}")));
            }
        }
        if self.push_retry_schedule_ms.len() > 50 {
            return Err(ConfigError("push_retry_schedule_ms: at most 50 retries".into()));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError("max_attempts: use at least 1".into()));
        }
        Ok(())
    }
}

/// The SMTP settings, resolved: none without a host; with one, a sender is required.
fn smtp(s: &Settings) -> Result<Option<SmtpConfig>, ConfigError> {
    let Some(host) = s.smtp_host.clone().filter(|h| !h.is_empty()) else {
        if s.smtp_from.as_deref().is_some_and(|f| !f.is_empty()) {
            return Err(ConfigError(
                "smtp_host (--smtp-host, SWITCHBOARD_SMTP_HOST): missing; smtp_from is set, and e-mail needs the SMTP server too".into(),
            ));
        }
        return Ok(None);
    };
    let tls = match s.smtp_tls.as_deref().unwrap_or("starttls") {
        "none" => SmtpTls::None,
        "starttls" => SmtpTls::StartTls,
        "tls" => SmtpTls::Tls,
        other => {
            return Err(ConfigError(format!("smtp_tls: `{other}` is not understood; use none, starttls or tls")));
        }
    };
    let default_port = match tls {
        SmtpTls::None => 25,
        SmtpTls::StartTls => 587,
        SmtpTls::Tls => 465,
    };
    let from = s.smtp_from.clone().filter(|f| !f.is_empty()).ok_or_else(|| {
        ConfigError("smtp_from (--smtp-from, SWITCHBOARD_SMTP_FROM): missing; e-mail needs a sender such as `Switchboard <hub@example.com>`".into())
    })?;
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(ConfigError(format!(
            "smtp_from: `{from}` is not a mailbox; use an address such as hub@example.com or `Switchboard <hub@example.com>`"
        )));
    }
    let username = s.smtp_username.clone().filter(|u| !u.is_empty());
    let password = s.smtp_password.clone().filter(|p| !p.0.is_empty());
    if username.is_some() != password.is_some() {
        return Err(ConfigError(
            "smtp_username and smtp_password: set both to sign in to the SMTP server, or neither".into(),
        ));
    }
    Ok(Some(SmtpConfig { host, port: s.smtp_port.unwrap_or(default_port), tls, username, password, from }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let file = Settings { listen: Some("127.0.0.1:1".into()), max_attempts: Some(3), ..Default::default() };
        let flags = Settings { listen: Some("127.0.0.1:2".into()), ..Default::default() };
        let c = Config::resolve(flags, file).unwrap();
        assert_eq!(c.listen, "127.0.0.1:2");
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.visibility_timeout_ms, 30_000);
    }

    #[test]
    fn connection_limits_come_from_the_file_and_are_checked() {
        let file = Settings { max_connections_per_ip: Some(0), idle_timeout_ms: Some(5_000), ..Default::default() };
        let c = Config::resolve(Settings::default(), file).unwrap();
        assert_eq!((c.max_connections_per_ip, c.idle_timeout_ms), (0, 5_000));
        assert_eq!((c.max_connections, c.header_read_timeout_ms), (10_000, 10_000));
        let flags = Settings { header_read_timeout_ms: Some(0), ..Default::default() };
        let e = Config::resolve(flags, Settings::default()).unwrap_err();
        assert!(e.0.starts_with("header_read_timeout_ms:"), "{e}");
    }

    #[test]
    fn tls_takes_both_a_certificate_and_a_key() {
        let c = Config::resolve(Settings::default(), Settings::default()).unwrap();
        assert!(!c.serves_tls());
        let file = Settings { tls_cert: Some("cert.pem".into()), ..Default::default() };
        let e = Config::resolve(Settings::default(), file.clone()).unwrap_err();
        assert!(e.0.starts_with("tls_key (--tls-key, SWITCHBOARD_TLS_KEY): missing"), "{e}");
        let flags = Settings { tls_key: Some("key.pem".into()), tls_cert: None, ..Default::default() };
        let c = Config::resolve(flags.clone(), file).unwrap();
        assert!(c.serves_tls());
        let e = Config::resolve(flags, Settings::default()).unwrap_err();
        assert!(e.0.starts_with("tls_cert (--tls-cert, SWITCHBOARD_TLS_CERT): missing"), "{e}");
    }

    #[test]
    fn smtp_needs_a_host_and_a_sender_and_hides_the_password() {
        let c = Config::resolve(Settings::default(), Settings::default()).unwrap();
        assert!(c.smtp.is_none());
        let file = Settings {
            smtp_host: Some("mail.example.com".into()),
            smtp_from: Some("Hub <hub@example.com>".into()),
            smtp_username: Some("hub".into()),
            smtp_password: Some(Secret("hunter2-secret".into())),
            ..Default::default()
        };
        let c = Config::resolve(Settings::default(), file.clone()).unwrap();
        let smtp = c.smtp.as_ref().unwrap();
        assert_eq!((smtp.port, smtp.tls), (587, SmtpTls::StartTls));
        assert!(!format!("{c:?} {file:?}").contains("hunter2"), "the password is never printed");
        let tls = Settings { smtp_tls: Some("tls".into()), ..Default::default() };
        assert_eq!(Config::resolve(tls, file.clone()).unwrap().smtp.unwrap().port, 465);
        for (flags, starts) in [
            (Settings { smtp_tls: Some("ssl".into()), ..Default::default() }, "smtp_tls:"),
            (Settings { smtp_from: Some("not a mailbox".into()), ..Default::default() }, "smtp_from:"),
            (Settings { smtp_password: Some(Secret(String::new())), ..Default::default() }, "smtp_username and"),
        ] {
            let e = Config::resolve(flags, file.clone()).unwrap_err();
            assert!(e.0.starts_with(starts), "{e}");
        }
        let e =
            Config::resolve(Settings { smtp_from: Some("a@b.c".into()), ..Default::default() }, Settings::default())
                .unwrap_err();
        assert!(e.0.starts_with("smtp_host"), "{e}");
    }

    #[test]
    fn a_bad_setting_is_named() {
        let flags = Settings { listen: Some("nowhere".into()), ..Default::default() };
        let e = Config::resolve(flags, Settings::default()).unwrap_err();
        assert!(e.0.starts_with("listen:"), "{e}");
    }
}
