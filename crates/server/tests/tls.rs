//! TLS: a node given a certificate serves HTTPS and wss to clients that trust it, refuses
//! plain HTTP and clients that do not, closes a client that stalls in the handshake at the
//! header timeout, keeps its header and idle timeouts over TLS, and will not start with half
//! a configuration or files it cannot use.
//!
//! The certificates are made at test time with the `openssl` command.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ADMIN, TestHub, eventually, within};
use serde_json::Value;
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{RegisterAgent, SendMessage};
use switchboard_server::{Config, Hub, Settings, StartError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key, in a temp dir.
struct Cert {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    pem: Vec<u8>,
}

impl Cert {
    fn new() -> Cert {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests make a self-signed certificate with the `openssl` command, which cannot be run ({e}); install it (Debian: apt-get install openssl)"
                )
            });
        assert!(out.status.success(), "openssl failed: {}", String::from_utf8_lossy(&out.stderr));
        let pem = std::fs::read(&cert).expect("read the certificate");
        Cert { dir, cert, key, pem }
    }

    /// `config` serving HTTPS with this certificate.
    fn serve(&self, config: &mut Config) {
        config.tls_cert = Some(self.cert.clone());
        config.tls_key = Some(self.key.clone());
    }

    /// A file in this certificate's directory with `text` in it.
    fn file(&self, name: &str, text: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write a file");
        p
    }

    /// An HTTP client that trusts this certificate.
    fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.pem).expect("a PEM certificate"))
            .build()
            .expect("http client")
    }

    /// A raw TLS client that trusts this certificate, for what no HTTP client does on purpose.
    async fn connect(&self, addr: std::net::SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(&self.pem).unwrap()).unwrap();
        let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // Offered as a browser would; the node speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("localhost").unwrap();
        TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake")
    }
}

const FAILED: &str = "switchboard_http_connections_closed_total{reason=\"tls_handshake_failed\"}";

fn addr(hub: &TestHub) -> std::net::SocketAddr {
    hub.hub.as_ref().expect("hub running").addr
}

/// The value of one metric sample (`name{labels}`), 0 if it is not there yet.
async fn metric(hub: &TestHub, cert: &Cert, sample: &str) -> f64 {
    let text = cert.http().get(format!("{}/metrics", hub.url())).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// Reads until the peer closes (or resets) the connection; what arrived first.
async fn until_closed(s: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn agents_register_send_and_receive_over_https_and_wss() {
    let cert = Cert::new();
    let hub = TestHub::start_with(|c| cert.serve(c)).await;
    assert!(hub.url().starts_with("https://127.0.0.1:"), "{}", hub.url());

    let admin = Client::new(hub.url(), Some(ADMIN.into())).with_ca_cert(&cert.pem).expect("the CA certificate");
    assert_eq!(admin.health().await.unwrap().status, "ok");
    let register = |name: &str| RegisterAgent { name: name.into(), ..Default::default() };
    let alice = admin.with_token(admin.register_agent(&register("alice")).await.unwrap().api_key);
    let bob_reg = admin.register_agent(&register("bob")).await.unwrap();
    let bob = admin.with_token(bob_reg.api_key.clone());
    let to_bob = common::agent_addr(&bob_reg.agent.id);

    alice.send(&SendMessage::text(&to_bob, "over https")).await.unwrap();
    let inbox = bob.inbox(&InboxOptions { wait_ms: Some(5_000), ..Default::default() }).await.unwrap();
    assert_eq!(inbox.messages.len(), 1);
    assert_eq!(serde_json::to_value(&inbox.messages[0].message.parts).unwrap()[0]["text"], "over https");
    bob.ack(vec![inbox.messages[0].message.id.clone()]).await.unwrap();

    let mut ws = bob.stream().await.expect("a WebSocket over wss");
    alice.send(&SendMessage::text(&to_bob, "over wss")).await.unwrap();
    let m = within(10, "the stream to deliver", ws.next_message()).await.unwrap().expect("a message");
    assert_eq!(serde_json::to_value(&m.message.parts).unwrap()[0]["text"], "over wss");

    // A client that does not trust the certificate is refused at the handshake.
    let untrusting = Client::new(hub.url(), None);
    let e = untrusting.health().await.expect_err("an untrusted certificate is refused");
    assert!(format!("{e:?}").to_lowercase().contains("certificate"), "{e:?}");
    eventually(10, "the failed handshake to be counted", || async {
        (metric(&hub, &cert, FAILED).await >= 1.0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_session_cookie_set_over_https_is_secure() {
    use switchboard_core::people::CreateUser;
    let cert = Cert::new();
    let hub = TestHub::start_with(|c| cert.serve(c)).await;
    let admin = Client::new(hub.url(), Some(ADMIN.into())).with_ca_cert(&cert.pem).expect("the CA certificate");
    let user = CreateUser {
        email: "ann@example.com".into(),
        name: "Ann".into(),
        role: switchboard_core::principal::Role::Member,
        password: Some("correct horse battery".into()),
    };
    admin.create_user(&user).await.expect("a user");
    let res = cert
        .http()
        .post(format!("{}/v1/auth/login", hub.url()))
        .json(&serde_json::json!({ "email": "ann@example.com", "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    let attrs: Vec<&str> = cookie.split("; ").collect();
    for want in ["HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(attrs.contains(&want), "{want} missing: {cookie}");
    }
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_answer() {
    let cert = Cert::new();
    let hub = TestHub::start_with(|c| cert.serve(c)).await;
    let plain = format!("http://{}/health", addr(&hub));
    let res = within(10, "the plain HTTP request to fail", reqwest::Client::new().get(&plain).send()).await;
    assert!(res.is_err(), "plain HTTP was answered: {res:?}");

    // On a raw socket: whatever comes back (a TLS alert at most) is not HTTP, and it closes.
    let mut s = TcpStream::connect(addr(&hub)).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nhost: switchboard\r\n\r\n").await.unwrap();
    let got = within(10, "the node to close the plain connection", until_closed(&mut s)).await;
    assert!(!got.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&got));
    eventually(10, "both failed handshakes to be counted", || async {
        (metric(&hub, &cert, FAILED).await == 2.0).then_some(())
    })
    .await;
    // The node still serves HTTPS.
    assert_eq!(cert.http().get(format!("{}/health", hub.url())).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_client_that_stalls_in_the_handshake_is_closed_at_the_header_timeout() {
    let cert = Cert::new();
    let hub = TestHub::start_with(|c| {
        cert.serve(c);
        c.header_read_timeout_ms = 500;
        c.idle_timeout_ms = 60_000;
    })
    .await;
    // One client opens TCP and sends nothing; another sends the start of a ClientHello (a
    // handshake record header announcing 512 bytes) and nothing more.
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr(&hub)).await.unwrap();
    let mut partial = TcpStream::connect(addr(&hub)).await.unwrap();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    within(10, "the node to close the silent client", until_closed(&mut silent)).await;
    within(10, "the node to close the half-hello client", until_closed(&mut partial)).await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(500), "closed after {waited:?}, before the header timeout");
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}, long after the header timeout");
    assert_eq!(metric(&hub, &cert, "switchboard_http_connections_closed_total{reason=\"header_timeout\"}").await, 2.0);
}

#[tokio::test]
async fn header_and_idle_timeouts_hold_over_tls() {
    let cert = Cert::new();
    let hub = TestHub::start_with(|c| {
        cert.serve(c);
        c.header_read_timeout_ms = 500;
        c.idle_timeout_ms = 800;
    })
    .await;
    // After the handshake, a request whose headers trickle in is answered 408 over TLS.
    let mut s = cert.connect(addr(&hub)).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]), "ALPN chooses HTTP/1.1 over h2");
    let started = Instant::now();
    s.write_all(b"GET /health HTTP/1.1\r\nhost: switchboard\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut trickle = tokio::time::interval(Duration::from_millis(100));
    within(10, "the node to answer the half-sent request and close", async {
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                n = s.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
                _ = trickle.tick(), if answer.is_empty() => { let _ = s.write_all(b"x-slow: 1\r\n").await; }
            }
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "request_timeout");
    assert!(started.elapsed() >= Duration::from_millis(500));

    // A TLS connection that served a request and then sits idle is closed at the idle timeout,
    // counted from the end of its request (not its handshake).
    let mut idle = cert.connect(addr(&hub)).await;
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: switchboard\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 "), "{}", String::from_utf8_lossy(&buf[..n]));
    let answered = Instant::now();
    within(10, "the node to close the idle TLS connection", until_closed(&mut idle)).await;
    assert!(answered.elapsed() >= Duration::from_millis(700), "closed after {:?}", answered.elapsed());
    eventually(10, "the idle close to be counted", || async {
        (metric(&hub, &cert, "switchboard_http_connections_closed_total{reason=\"idle_timeout\"}").await >= 1.0)
            .then_some(())
    })
    .await;
}

/// The config a test hub would start with, serving TLS from `cert` and `key`.
fn config_with(dir: &Path, cert: Option<PathBuf>, key: Option<PathBuf>) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.join("data"),
        admin_token: Some(ADMIN.into()),
        tls_cert: cert,
        tls_key: key,
        ..Config::default()
    }
}

/// Why a node with these TLS files does not start.
async fn start_error(dir: &Path, cert: Option<PathBuf>, key: Option<PathBuf>) -> String {
    match Hub::start(config_with(dir, cert, key)).await {
        Ok(hub) => {
            hub.shutdown().await;
            panic!("the node started");
        }
        Err(e) => {
            assert!(!matches!(e, StartError::Store(_)), "{e}");
            e.to_string()
        }
    }
}

#[tokio::test]
async fn half_a_tls_configuration_or_an_unusable_file_stops_the_start_naming_it() {
    let cert = Cert::new();
    let dir = cert.dir.path();

    // Both or neither, in every layer: the missing one is named with its flag and variable.
    let only_cert = Settings { tls_cert: Some(cert.cert.clone()), ..Default::default() };
    let e = Config::resolve(only_cert, Settings::default()).unwrap_err().to_string();
    assert!(e.starts_with("tls_key (--tls-key, SWITCHBOARD_TLS_KEY): missing"), "{e}");
    let only_key = Settings { tls_key: Some(cert.key.clone()), ..Default::default() };
    let e = Config::resolve(Settings::default(), only_key).unwrap_err().to_string();
    assert!(e.starts_with("tls_cert (--tls-cert, SWITCHBOARD_TLS_CERT): missing"), "{e}");
    let e = start_error(dir, Some(cert.cert.clone()), None).await;
    assert!(e.starts_with("tls_key (--tls-key, SWITCHBOARD_TLS_KEY): missing"), "{e}");

    // Files that cannot be read or used: each error names the file and what is wrong with it.
    let missing = dir.join("nowhere.pem");
    let e = start_error(dir, Some(missing.clone()), Some(cert.key.clone())).await;
    assert!(e.starts_with(&format!("tls_cert: cannot read {}", missing.display())), "{e}");
    let e = start_error(dir, Some(cert.cert.clone()), Some(missing.clone())).await;
    assert!(e.starts_with(&format!("tls_key: cannot read {}", missing.display())), "{e}");

    let garbage = cert.file("garbage.pem", b"not a certificate\n");
    let e = start_error(dir, Some(garbage.clone()), Some(cert.key.clone())).await;
    assert!(e.starts_with(&format!("tls_cert: {} holds no certificate", garbage.display())), "{e}");
    let truncated = cert.file("truncated.pem", &cert.pem[..cert.pem.len() - 30]);
    let e = start_error(dir, Some(truncated.clone()), Some(cert.key.clone())).await;
    assert!(e.starts_with(&format!("tls_cert: {} is not valid PEM", truncated.display())), "{e}");
    // Certificate and key swapped: the key file holds no key.
    let e = start_error(dir, Some(cert.key.clone()), Some(cert.cert.clone())).await;
    assert!(e.starts_with("tls_cert:") && e.contains("holds no certificate"), "{e}");
    let e = start_error(dir, Some(cert.cert.clone()), Some(cert.cert.clone())).await;
    assert!(e.starts_with(&format!("tls_key: {} holds no private key", cert.cert.display())), "{e}");
    // A key that is not the certificate's.
    let other = Cert::new();
    let e = start_error(dir, Some(cert.cert.clone()), Some(other.key.clone())).await;
    assert!(e.contains("cannot be used together"), "{e}");
    assert!(e.contains(&cert.cert.display().to_string()) && e.contains(&other.key.display().to_string()), "{e}");

    // Nothing was opened: the data dir of the refused starts was never created.
    assert!(!dir.join("data").exists());
}
