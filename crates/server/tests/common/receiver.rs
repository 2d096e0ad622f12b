//! A real HTTP receiver on loopback for push tests. It speaks just enough HTTP/1.1 by hand
//! (one request per connection, or several with [`Receiver::start_keep_alive`]) to also
//! misbehave on purpose: answer slowly, hold an answer until the test releases it, or close
//! the connection without answering.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What the receiver does with request number `n` (0-based).
#[derive(Clone, Debug)]
pub enum Plan {
    Status(u16),
    StatusWith {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Slow {
        ms: u64,
        status: u16,
    },
    /// Answers `status` once the test adds a permit to `gate` (one permit per request), so a
    /// test can act while the hub waits for the answer.
    Held {
        gate: Arc<Semaphore>,
        status: u16,
    },
    Close,
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The request line and headers as received.
    pub head: String,
}

impl Received {
    /// A header's value (empty when absent).
    pub fn header(&self, name: &str) -> String {
        self.head
            .lines()
            .find_map(|l| {
                l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default()
    }
}

pub type Behaviour = Arc<dyn Fn(usize) -> Plan + Send + Sync>;

pub struct Receiver {
    pub url: String,
    pub port: u16,
    pub got: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    counts: Arc<Counts>,
}

/// Requests being answered now, the most at once, and connections accepted.
#[derive(Default)]
struct Counts {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    connections: AtomicUsize,
}

impl Receiver {
    /// One request per connection (`connection: close`).
    pub async fn start(b: impl Fn(usize) -> Plan + Send + Sync + 'static) -> Receiver {
        Receiver::serve(false, Arc::new(b)).await
    }

    /// Keeps each connection open for further requests, as most real servers do, so a client
    /// that pools connections can reuse one.
    pub async fn start_keep_alive(b: impl Fn(usize) -> Plan + Send + Sync + 'static) -> Receiver {
        Receiver::serve(true, Arc::new(b)).await
    }

    async fn serve(keep_alive: bool, b: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/hook");
        let got = Arc::new(Mutex::new(Vec::new()));
        let behaviour: Arc<Mutex<Behaviour>> = Arc::new(Mutex::new(b));
        let counts = Arc::new(Counts::default());
        let (g, bh, cs) = (got.clone(), behaviour.clone(), counts.clone());
        let counter = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                cs.connections.fetch_add(1, Ordering::SeqCst);
                let (g, bh, counter, cs) = (g.clone(), bh.clone(), counter.clone(), cs.clone());
                tokio::spawn(async move {
                    loop {
                        let Some(req) = read_request(&mut sock).await else { return };
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let now = cs.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        cs.max_in_flight.fetch_max(now, Ordering::SeqCst);
                        g.lock().unwrap().push(req);
                        let plan = (bh.lock().unwrap().clone())(n);
                        let answered = answer(&mut sock, plan, keep_alive).await;
                        cs.in_flight.fetch_sub(1, Ordering::SeqCst);
                        if !answered || !keep_alive {
                            let _ = sock.shutdown().await;
                            return;
                        }
                    }
                });
            }
        });
        Receiver { url, port, got, behaviour, counts }
    }

    /// Changes what the receiver does from now on.
    pub fn set(&self, b: impl Fn(usize) -> Plan + Send + Sync + 'static) {
        *self.behaviour.lock().unwrap() = Arc::new(b);
    }

    /// Requests being answered (or held) right now.
    pub fn in_flight(&self) -> usize {
        self.counts.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests this receiver was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.counts.max_in_flight.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counts.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        super::eventually(secs, &format!("{n} push requests"), || async {
            let r = self.requests();
            (r.len() >= n).then_some(r)
        })
        .await
    }
}

/// Writes the answer `plan` calls for; false when it calls for dropping the connection.
async fn answer(sock: &mut tokio::net::TcpStream, plan: Plan, keep_alive: bool) -> bool {
    let (status, headers, body) = match plan {
        Plan::Close => return false,
        Plan::Status(s) => (s, vec![], String::new()),
        Plan::StatusWith { status, headers, body } => (status, headers, body),
        Plan::Slow { ms, status } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            (status, vec![], String::new())
        }
        Plan::Held { gate, status } => {
            gate.acquire().await.expect("the gate stays open").forget();
            (status, vec![], String::new())
        }
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut head = format!("HTTP/1.1 {status} X\r\nconnection: {connection}\r\ncontent-length: {}\r\n", body.len());
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await.is_ok() && sock.write_all(body.as_bytes()).await.is_ok()
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let len: usize = header("content-length").parse().unwrap_or(0);
    while buf.len() < header_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: buf[header_end..header_end + len].to_vec(),
        at: Instant::now(),
        head,
    })
}

/// Standard Webhooks verification written here from the specification, independently of
/// the server's signing code and the client crate's helper: HMAC-SHA256 over
/// `{id}.{timestamp}.{body}` keyed with the base64-decoded secret after `whsec_`.
pub fn signature_valid(secret: &str, r: &Received) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut signed = format!("{}.{}.", r.id, r.timestamp).into_bytes();
    signed.extend_from_slice(&r.body);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(&signed);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    r.signature.split(' ').any(|s| s == format!("v1,{expected}"))
}
