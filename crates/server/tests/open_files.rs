//! A node with few file descriptors under a flood of idle connections (issue 9: at 256 open
//! files, 364 idle connections made every request time out while the node logged
//! `accept error: Too many open files` each second). A test binary of its own, because it
//! lowers the open-file limit of the whole process.

mod common;

use std::process::Stdio;

use common::{TestHub, eventually, within};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Far fewer descriptors than idle connections.
const OPEN_FILES: u64 = 256;
const IDLE_CONNECTIONS: usize = 300;

/// Opens the idle connections from a process of its own, so that only the node's end of each
/// counts against the lowered limit: reads the port, connects, reports, then holds them. On
/// `metrics` it asks for `/metrics` on a new connection and prints the status line and the
/// accept-error count it got, as `<status>|<sample>`.
const HOLDER: &str = r#"
read port
n=0
for _ in $(seq "$COUNT"); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port" || break
  n=$((n + 1))
done
echo "opened $n"
while read -r command; do
  [ "$command" = metrics ] || exit 0
  exec {c}<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /metrics HTTP/1.1\r\nhost: switchboard\r\nconnection: close\r\n\r\n' >&"$c"
  status="no answer" errors=""
  while IFS= read -r -t 20 line <&"$c"; do
    case "$line" in
      "HTTP/1.1 "*) status="${line%$'\r'}" ;;
      switchboard_http_accept_errors_total*) errors="$line" ;;
    esac
  done
  exec {c}>&-
  echo "$status|$errors"
done
"#;

fn set_open_file_limit(n: u64) {
    let limit = libc::rlimit { rlim_cur: n as libc::rlim_t, rlim_max: n as libc::rlim_t };
    // SAFETY: setrlimit reads the struct it is given; lowering a limit is always allowed.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "lower RLIMIT_NOFILE: {}", std::io::Error::last_os_error());
}

async fn metric(url: &str, sample: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics")).await.expect("metrics").text().await.expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

#[tokio::test]
async fn idle_connections_cannot_use_up_the_descriptors_of_a_node_that_has_few() {
    // Started before the limit is lowered: the holder keeps the limit it was born with.
    let mut holder = tokio::process::Command::new("bash")
        .args(["-c", HOLDER])
        .env("COUNT", IDLE_CONNECTIONS.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start bash");
    set_open_file_limit(OPEN_FILES);
    let hub = TestHub::start().await;
    let port = hub.hub.as_ref().expect("hub running").addr.port();
    let mut to_holder = holder.stdin.take().expect("holder stdin");
    to_holder.write_all(format!("{port}\n").as_bytes()).await.unwrap();
    let mut from_holder = BufReader::new(holder.stdout.take().expect("holder stdout")).lines();
    let opened = within(60, "the holder to open its connections", from_holder.next_line()).await.unwrap();
    assert_eq!(opened.as_deref(), Some(format!("opened {IDLE_CONNECTIONS}").as_str()));

    let url = hub.url();
    // The node has room for 256 - 128 reserved - 64 push = 64 connections; it closes the idle
    // ones beyond that as new ones come (its own log says so at WARN).
    let beyond = (IDLE_CONNECTIONS - 64) as f64;
    eventually(30, "the node to close the idle connections it has no room for", || async {
        (metric(&url, "switchboard_http_connections_closed_total{reason=\"evicted\"}").await >= beyond).then_some(())
    })
    .await;
    let res = within(10, "a request from a new client", reqwest::get(format!("{url}/health"))).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(metric(&url, "switchboard_http_connections").await <= 64.0);
    assert_eq!(metric(&url, "switchboard_http_accept_errors_total").await, 0.0, "the reserve was not enough");

    // Something else takes the descriptors the reserve was for (here: the test itself), so
    // the node's accepts fail. It closes an idle connection to free one and retries after a
    // short back-off, so a new client is still served. (A descriptor the node frees just
    // after the test took the rest lets an accept through; the next round takes it too.)
    let mut taken = Vec::new();
    let mut errors = 0;
    for _ in 0..10 {
        while let Ok(f) = std::fs::File::open("/dev/null") {
            taken.push(f);
        }
        to_holder.write_all(b"metrics\n").await.unwrap();
        let answer = within(30, "the holder's request while out of descriptors", from_holder.next_line()).await;
        let answer = answer.unwrap().expect("the holder answers");
        let (status, sample) = answer.split_once('|').expect("status|sample");
        assert_eq!(status, "HTTP/1.1 200 OK", "{answer}");
        errors = sample.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if errors > 0 {
            break;
        }
    }
    drop(taken);
    // Backing off, the node fails a handful of accepts, not thousands.
    assert!((1..50).contains(&errors), "accept errors: {errors}");

    let _ = to_holder.write_all(b"done\n").await;
    let _ = holder.wait().await;
    hub.stop().await;
}
