//! An SMTP sink on loopback: enough of RFC 5321 for a client that sends plain mail (no AUTH,
//! no STARTTLS), keeping every message it is given, for tests of notification e-mail.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope: `MAIL FROM` and `RCPT TO` addresses.
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    /// The message (headers and body) as sent, dot-unstuffed, lines joined with `\n`.
    pub data: String,
}

impl Mail {
    /// A header's value (unfolded), by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\n\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = value.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }

    /// The body as text: quoted-printable undone if the message says it is encoded so.
    pub fn text(&self) -> String {
        let body = self.data.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
        let qp = self.header("Content-Transfer-Encoding").is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        if !qp {
            return body.to_owned();
        }
        let mut out = Vec::new();
        let joined = body.replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A running sink: its port, and the mail it got.
pub struct SmtpSink {
    pub port: u16,
    mail: Arc<Mutex<Vec<Mail>>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP sink");
        let port = listener.local_addr().expect("sink address").port();
        let mail = Arc::new(Mutex::new(Vec::new()));
        let kept = mail.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(session(conn, kept.clone()));
            }
        });
        SmtpSink { port, mail, task }
    }

    /// Every message received so far.
    pub fn mail(&self) -> Vec<Mail> {
        self.mail.lock().expect("sink lock").clone()
    }

    /// The messages sent to `address` (in the envelope).
    pub fn mail_to(&self, address: &str) -> Vec<Mail> {
        self.mail().into_iter().filter(|m| m.envelope_to.iter().any(|t| t == address)).collect()
    }
}

fn angle(arg: &str) -> String {
    let a = arg.split_once(':').map_or(arg, |(_, a)| a).trim();
    let a = a.split_whitespace().next().unwrap_or_default();
    a.trim_start_matches('<').trim_end_matches('>').to_owned()
}

async fn session(conn: tokio::net::TcpStream, kept: Arc<Mutex<Vec<Mail>>>) {
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 sink.test ESMTP ready\r\n").await;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 sink.test\r\n",
            "MAIL" => {
                from = angle(&line);
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(angle(&line));
                b"250 OK\r\n"
            }
            "DATA" => {
                let _ = write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
                let mut data = Vec::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    // Dot-unstuffing: the client doubled every leading dot.
                    data.push(l.strip_prefix('.').unwrap_or(&l).to_owned());
                }
                let mail =
                    Mail { envelope_from: from.clone(), envelope_to: std::mem::take(&mut to), data: data.join("\n") };
                kept.lock().expect("sink lock").push(mail);
                b"250 OK queued\r\n"
            }
            "RSET" | "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 not implemented\r\n",
        };
        if write.write_all(answer).await.is_err() {
            return;
        }
    }
}
