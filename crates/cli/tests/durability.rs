//! Durability a test can see: an answer that promises "on disk" is written to its socket only
//! after an fsync of the very bytes it promises.
//!
//! The crash tests (`crash.rs`) cannot see this: after a SIGKILL the kernel still holds data
//! that was written but never fsync'd, so a hub that never fsyncs passes them. Here the real
//! binary runs under `strace -f`, which records every write to the store's files and to
//! sockets and every fsync, from all threads, in one order. For each answered request the
//! test finds the store write that carries that request's own bytes (the message's unique
//! text; for an ack, the delivery row with its new state), and requires an fsync of that
//! file to have *finished* after that write and before the answer's write *began*.
//!
//! The check is per answer, not "every store write is followed by an fsync": leases and
//! WebSocket acks commit without an fsync of their own, by design (README, "Delivery
//! semantics"), and the next durable commit's fsync covers them.
//!
//! On PostgreSQL the promise is that the hub answers only after PostgreSQL's commit with
//! `synchronous_commit` on, which fsyncs the WAL. The hub itself cannot show that (the reply
//! to COMMIT comes just the same with it off), so the test runs a PostgreSQL cluster of its
//! own under the same strace and applies the same check to the server's WAL files. Server-
//! wide counters such as `pg_stat_wal.wal_sync` would not do: the WAL writer also syncs
//! asynchronous commits, within `wal_writer_delay`, so the count goes up either way.
//!
//! Needs `strace` (Debian package `strace`), permission to ptrace and, for PostgreSQL, the
//! server's binaries (`initdb`, `postgres`). Without them the tests say why on stderr and are
//! reported as ignored, never as passed; `.ci/run` sets `SWITCHBOARD_TEST_REQUIRE_STRACE=1`,
//! which makes them fail there instead.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{ADMIN, agent_addr, eventually, free_port};
use libtest_mimic::{Arguments, Failed, Trial};
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{Part, RegisterAgent, SendMessage};
use tokio::task::JoinSet;

/// Set (to anything) where the durability tests must run: missing strace fails them.
const REQUIRE_VAR: &str = "SWITCHBOARD_TEST_REQUIRE_STRACE";

/// The syscalls that put bytes on a file or a socket, and the two that make a file durable.
const TRACED: &str = "trace=write,writev,pwrite64,pwritev,pwritev2,sendto,sendmsg,sendmmsg,fsync,fdatasync";

/// How strace runs, writing its record to `out`. `-f`: every thread; `--seccomp-bpf`: stop
/// only at the traced calls, so the hub runs near full speed; `-yy`: each fd with its path (or
/// `TCP:[local->peer]`); `-s`: whole SQLite pages and HTTP answers, never cut short.
fn strace_args(out: &Path) -> Vec<String> {
    let flags = ["-f", "-qq", "--seccomp-bpf", "-yy", "-s", "65536", "-e", "signal=none", "-e", TRACED, "-o"];
    flags.iter().map(|f| f.to_string()).chain([out.display().to_string()]).collect()
}

fn main() {
    let args = Arguments::from_args();
    let strace = strace_unusable();
    let postgres = postgres_bin();
    let on_postgres = strace.clone().or(postgres.as_ref().err().cloned());
    let bin = postgres.unwrap_or_default();
    let trials = vec![
        traced("sqlite_sends_are_answered_202_only_after_their_message_is_fsynced", strace.clone(), || {
            run(sqlite_sends)
        }),
        traced("sqlite_http_acks_are_answered_only_after_the_ack_is_fsynced", strace, || run(acks_scenario)),
        traced("postgres_sends_are_answered_202_only_after_postgres_fsyncs_their_wal", on_postgres, move || {
            run(|| postgres_sends(bin))
        }),
        Trial::test("trace_pairs_unfinished_calls_with_their_resumption", parser_pairs_unfinished_calls),
        Trial::test("check_refuses_an_answer_written_before_the_fsync_finished", check_refuses_early_answers),
    ];
    libtest_mimic::run(&args, trials).exit();
}

/// A test that needs the tracer: when `blocker` says why it cannot run here, it is reported
/// as ignored, with the reason on stderr (or fails, where `SWITCHBOARD_TEST_REQUIRE_STRACE`
/// is set, or when asked for with `--include-ignored`).
fn traced(name: &str, blocker: Option<String>, body: impl FnOnce() -> Result<(), Failed> + Send + 'static) -> Trial {
    let skip = blocker.is_some() && std::env::var_os(REQUIRE_VAR).is_none();
    if let (true, Some(why)) = (skip, &blocker) {
        eprintln!(
            "*** SKIPPED {name}: {why}. It is reported as ignored, not passed. It needs strace \
             (apt-get install strace), permission to ptrace and, on PostgreSQL, the server's \
             binaries; {REQUIRE_VAR}=1 makes this a failure. ***"
        );
    }
    Trial::test(name, move || match blocker {
        Some(why) => Err(format!("cannot run here: {why}").into()),
        None => body(),
    })
    .with_ignored_flag(skip)
}

/// Why strace cannot trace here, or `None` if it can (tried with the very flags the tests use).
fn strace_unusable() -> Option<String> {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return Some(format!("no temporary directory: {e}")),
    };
    let out = Command::new("strace")
        .args(strace_args(&dir.path().join("probe")))
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("strace is not installed".into()),
        Err(e) => Some(format!("strace could not be started: {e}")),
        Ok(o) if !o.status.success() => {
            let stderr = String::from_utf8_lossy(&o.stderr);
            Some(format!("strace failed ({}): {}", o.status, stderr.trim().replace('\n', "; ")))
        }
        Ok(_) => None,
    }
}

fn run<F: Future<Output = ()>>(scenario: impl FnOnce() -> F) -> Result<(), Failed> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(scenario());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The hub under strace

/// `switchboard serve` run by strace, on SQLite in the temp dir or on a PostgreSQL cluster of
/// its own that the same strace runs; stopped (all of it) when dropped.
struct Traced {
    strace: Child,
    dir: tempfile::TempDir,
    admin: Client,
    postgres: Option<Postgres>,
}

/// Starts PostgreSQL, waits until it takes connections, then becomes the hub (`"$@"`), so
/// that one strace records the server's WAL writes and syncs and the hub's answers in one
/// order.
const POSTGRES_THEN_HUB: &str = r#"$SB_AS "$SB_PG/postgres" -D "$SB_PGDATA" -k "$SB_PGDATA" -p "$SB_PGPORT" \
  -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c wal_sync_method=fdatasync \
  -c autovacuum=off >"$SB_PGDATA.log" 2>&1 &
n=0
until "$SB_PG/pg_isready" -q -h 127.0.0.1 -p "$SB_PGPORT"; do
  n=$((n + 1)); [ "$n" -lt 600 ] || exit 1
  sleep 0.1
done
exec "$@""#;

impl Traced {
    /// The hub on SQLite in `<temp>/data`.
    async fn sqlite() -> Traced {
        Traced::start(None).await
    }

    /// The hub on a fresh PostgreSQL cluster in `<temp>/pg`, run from the binaries in `bin`.
    async fn postgres(bin: &Path) -> Traced {
        Traced::start(Some(bin)).await
    }

    async fn start(postgres_bin: Option<&Path>) -> Traced {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut strace = Command::new("strace");
        strace.args(strace_args(&dir.path().join("trace"))).arg("--");
        let postgres = postgres_bin.map(|bin| Postgres::init(bin, dir.path()));
        if let Some(pg) = &postgres {
            let pg_port = free_port();
            strace
                .args(["sh", "-c", POSTGRES_THEN_HUB, "sh"])
                .env("SB_AS", if running_as_root() { "runuser -u postgres --" } else { "" })
                .env("SB_PG", &pg.bin)
                .env("SB_PGDATA", &pg.data)
                .env("SB_PGPORT", pg_port.to_string())
                .env("SWITCHBOARD_DATABASE_URL", format!("postgres://postgres@127.0.0.1:{pg_port}/postgres"));
        } else {
            strace.env_remove("SWITCHBOARD_DATABASE_URL");
        }
        let strace = strace
            .arg(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir.path().join("data"))
            .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strace");
        let admin = Client::new(format!("http://127.0.0.1:{port}"), Some(ADMIN.into()));
        let traced = Traced { strace, dir, admin: admin.clone(), postgres };
        eventually(120, "the traced hub to answer /health", || async { admin.health().await.is_ok() }).await;
        traced
    }

    /// strace's one child: the hub it started (`None` before it forked or after it exited).
    fn hub_pid(&self) -> Option<u32> {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.strace.id())).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// SIGKILLs the hub and stops PostgreSQL; strace then writes out the rest of its record
    /// and exits.
    fn stop(&mut self) {
        match self.hub_pid() {
            Some(pid) => {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
            }
            None => {
                let _ = self.strace.kill();
            }
        }
        if let Some(pg) = &self.postgres {
            pg.stop();
        }
        let _ = self.strace.wait();
    }

    /// Where the store's durable writes land: SQLite's files, or PostgreSQL's WAL.
    fn store_dir(&self) -> PathBuf {
        match &self.postgres {
            Some(pg) => pg.data.join("pg_wal"),
            None => self.dir.path().join("data"),
        }
    }

    /// Stops everything and returns the whole trace (strace writes it out as it exits).
    fn finish(&mut self) -> String {
        self.stop();
        std::fs::read_to_string(self.dir.path().join("trace")).expect("read the trace")
    }

    /// Keeps the temp dir (trace and store) for a look after a failure; returns where it is.
    fn keep(&mut self) -> PathBuf {
        self.dir.disable_cleanup(true);
        self.dir.path().to_owned()
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if matches!(self.strace.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// A PostgreSQL cluster of the test's own: every process that writes or syncs its WAL is
/// traced, and no other test's traffic is in the trace.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
}

impl Postgres {
    fn init(bin: &Path, dir: &Path) -> Postgres {
        if running_as_root() {
            // PostgreSQL refuses to run as root; its user needs to own the directory.
            let ok = Command::new("chown").arg("postgres").arg(dir).status().is_ok_and(|s| s.success());
            assert!(ok, "chown postgres {}", dir.display());
        }
        let data = dir.join("pg");
        let out = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        Postgres { bin: bin.to_owned(), data }
    }

    fn stop(&self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` run as the `postgres` user when we are root (PostgreSQL refuses root).
fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Where PostgreSQL's server binaries are, or why the test cannot run its own cluster.
fn postgres_bin() -> Result<PathBuf, String> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    // Debian puts them under /usr/lib/postgresql/<version>/bin; take the newest.
    let debian = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|versions| {
        let mut bins: Vec<PathBuf> = versions.filter_map(|v| Some(v.ok()?.path().join("bin"))).collect();
        bins.sort_by_key(|b| b.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()));
        bins.pop()
    });
    let bin = from_pg_config
        .into_iter()
        .chain(debian)
        .find(|b| b.join("initdb").exists())
        .ok_or("PostgreSQL's server binaries (initdb) are not installed")?;
    for tool in ["postgres", "pg_ctl", "pg_isready"] {
        if !bin.join(tool).exists() {
            return Err(format!("{} is missing", bin.join(tool).display()));
        }
    }
    if running_as_root()
        && !Command::new("runuser").args(["-u", "postgres", "--", "true"]).status().is_ok_and(|s| s.success())
    {
        return Err("running as root, and `runuser -u postgres` does not work (PostgreSQL refuses root)".into());
    }
    Ok(bin)
}

/// Fails the test with every violation, keeping the trace for a look.
fn judge(mut hub: Traced, what: &str, check: impl FnOnce(&Trace, &Path) -> Verdict) {
    let text = hub.finish();
    let trace = Trace::parse(&text);
    let verdict = check(&trace, &hub.store_dir());
    if verdict.violations.is_empty() {
        println!(
            "{what}: {} answers checked, covered by {} distinct fsyncs ({} trace lines)",
            verdict.checked,
            verdict.fsyncs,
            text.lines().count()
        );
        return;
    }
    let n = verdict.violations.len();
    let kept = hub.keep();
    let shown: Vec<_> = verdict.violations.iter().take(5).map(String::as_str).collect();
    panic!(
        "{what}: {n} of {} answers are not preceded by an fsync of their data, e.g.\n  {}\n\
         (trace and store kept in {})",
        verdict.checked,
        shown.join("\n  "),
        kept.display()
    );
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// How many sends, one at a time and then from concurrent senders.
struct Load {
    sequential: usize,
    senders: usize,
    per_sender: usize,
}

fn probe(nonce: &str, tag: &str) -> String {
    format!("probe-{nonce}-{tag}")
}

/// The text twice: a PostgreSQL WAL record may straddle a WAL page, whose header then splits
/// one copy, never both.
fn probe_message(to: &str, text: &str) -> SendMessage {
    SendMessage { to: to.to_owned(), parts: vec![Part::text(text), Part::text(text)], ..Default::default() }
}

async fn sends_scenario(hub: Traced, what: &str, load: Load) {
    let bob = hub.admin.register_agent(&RegisterAgent { name: "bob".into(), ..Default::default() }).await.unwrap();
    let to = agent_addr(&bob.agent.id);
    let nonce = switchboard_core::new_id().simple().to_string();
    let mut accepted: Vec<(String, String)> = Vec::new(); // (message id, its unique text)

    // One at a time: each commit holds one message.
    for i in 0..load.sequential {
        let text = probe(&nonce, &format!("q{i}"));
        let a = hub.admin.send(&probe_message(&to, &text)).await.unwrap();
        accepted.push((a.id, text));
    }
    // Concurrent senders: group commit puts several messages under one fsync.
    let mut senders = JoinSet::new();
    for s in 0..load.senders {
        let (admin, to, nonce) = (hub.admin.clone(), to.clone(), nonce.clone());
        senders.spawn(async move {
            let mut got = Vec::new();
            for i in 0..load.per_sender {
                let text = probe(&nonce, &format!("c{s}x{i}"));
                let a = admin.send(&probe_message(&to, &text)).await.unwrap();
                got.push((a.id, text));
            }
            got
        });
    }
    while let Some(got) = senders.join_next().await {
        accepted.extend(got.unwrap());
    }
    assert_eq!(accepted.len(), load.sequential + load.senders * load.per_sender);

    judge(hub, what, |trace, store| {
        // A message's text first reaches the store in its own commit's WAL write.
        let prefix = format!("probe-{nonce}-");
        // The closing quote of the JSON string must follow: a copy cut short by a page
        // header must not pass for the text of another message (`c1x2` of `c1x23`).
        let written = trace.first_store_writes(store, prefix.as_bytes(), |bytes, at| {
            let tag = &bytes[at + prefix.len()..];
            let len = tag.iter().take_while(|b| b.is_ascii_alphanumeric()).count();
            (len > 0 && tag.get(len) == Some(&b'"'))
                .then(|| format!("{prefix}{}", String::from_utf8_lossy(&tag[..len])))
        });
        let answers = trace.answers(|status, body| match status {
            202 => json_strings(body, |v| v.get("id").and_then(|id| id.as_str()).into_iter().collect()),
            _ => vec![],
        });
        trace.check(accepted.iter().map(|(id, text)| (id.clone(), text.clone())), &answers, &written)
    });
}

async fn sqlite_sends() {
    let load = Load { sequential: 100, senders: 8, per_sender: 40 };
    sends_scenario(Traced::sqlite().await, "sends on SQLite", load).await;
}

async fn postgres_sends(bin: PathBuf) {
    let load = Load { sequential: 40, senders: 4, per_sender: 40 };
    sends_scenario(Traced::postgres(&bin).await, "sends on PostgreSQL", load).await;
}

async fn acks_scenario() {
    const MESSAGES: usize = 240;
    const CONSUMERS: usize = 3;
    let hub = Traced::sqlite().await;
    let bob = hub.admin.register_agent(&RegisterAgent { name: "bob".into(), ..Default::default() }).await.unwrap();
    let to = agent_addr(&bob.agent.id);
    let bob_client = hub.admin.with_token(bob.api_key.clone());
    let acked = common::Ids::new();

    // Consumers lease (a commit with no fsync of its own) and ack over HTTP (fsync'd before
    // the answer), while senders keep the writer busy, so groups mix all three.
    let mut tasks = JoinSet::new();
    for _ in 0..CONSUMERS {
        let (c, acked) = (bob_client.clone(), acked.clone());
        tasks.spawn(async move {
            while acked.len() < MESSAGES {
                let opts = InboxOptions { wait_ms: Some(200), limit: Some(8), visibility_ms: Some(600_000) };
                let leased = c.inbox(&opts).await.unwrap();
                if leased.messages.is_empty() {
                    continue;
                }
                let ids = leased.messages.iter().map(|m| m.message.id.clone()).collect();
                for id in c.ack(ids).await.unwrap().ids {
                    acked.push(id);
                }
            }
        });
    }
    for s in 0..4 {
        let (admin, to) = (hub.admin.clone(), to.clone());
        tasks.spawn(async move {
            for i in 0..MESSAGES / 4 {
                admin.send(&SendMessage::text(&to, format!("s{s} {i}"))).await.unwrap();
            }
        });
    }
    acked.wait(120, "every message leased and acked", |ids| ids.len() >= MESSAGES).await;
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    let acked = acked.snapshot();
    assert_eq!(acked.len(), MESSAGES, "each message acked once");

    judge(hub, "HTTP acks on SQLite", |trace, data| {
        // The acked delivery row (tenant, message_id, recipient, state, …) stores its text
        // columns back to back, so its new version holds "<message id>agent:<bob>acked".
        let marker = format!("{to}acked");
        let written = trace.first_store_writes(data, marker.as_bytes(), |bytes, at| {
            let id = bytes.get(at.checked_sub(UUID_LEN)?..at)?;
            Some(String::from_utf8_lossy(id).into_owned())
        });
        let answers = trace.answers(|status, body| match status {
            200 => json_strings(body, |v| {
                v.get("ids").and_then(|ids| ids.as_array()).into_iter().flatten().filter_map(|id| id.as_str()).collect()
            }),
            _ => vec![],
        });
        trace.check(acked.iter().map(|id| (id.clone(), id.clone())), &answers, &written)
    });
}

/// Length of a message id as text (a hyphenated UUID).
const UUID_LEN: usize = 36;

/// The strings `pick` finds in a JSON body (none if it is not JSON).
fn json_strings(body: &[u8], pick: impl for<'a> Fn(&'a serde_json::Value) -> Vec<&'a str>) -> Vec<String> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => pick(&v).into_iter().map(str::to_owned).collect(),
        Err(_) => vec![],
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the trace
//
// Why line order is time order: strace stops each traced thread when a syscall starts and
// again when it returns, and writes one record per stop in the order it handles them. A
// thread's call runs only after its start was recorded, and its return is recorded only
// after the call is done. So when call A's return comes before call B's start in the file,
// A had finished before B began, whatever threads they ran on. A call that another thread
// interrupts is split: `pid name(args <unfinished ...>` at its start, `pid <... name
// resumed>) = ret` at its return; its arguments (the bytes written) are on the first line.

/// One traced syscall.
#[derive(Debug)]
struct Call {
    name: String,
    /// The fd's path as `-yy` shows it (a file path, or `TCP:[local->peer]`); empty if none.
    fd: String,
    /// Every quoted string among the arguments, decoded and joined (the bytes written).
    data: Vec<u8>,
    /// 1-based trace lines of its start and of its return (`None`: it never returned).
    start: usize,
    end: Option<usize>,
    ret: Option<i64>,
}

impl Call {
    fn finished_ok(&self) -> bool {
        self.end.is_some() && self.ret.is_some_and(|r| r >= 0)
    }

    fn is_write(&self) -> bool {
        matches!(
            self.name.as_str(),
            "write" | "writev" | "pwrite64" | "pwritev" | "pwritev2" | "sendto" | "sendmsg" | "sendmmsg"
        )
    }

    fn is_sync(&self) -> bool {
        matches!(self.name.as_str(), "fsync" | "fdatasync")
    }

    fn to_socket(&self) -> bool {
        self.fd.starts_with("TCP") || self.fd.starts_with("socket:")
    }
}

/// What a check found.
struct Verdict {
    checked: usize,
    /// How many different fsyncs covered the answers (fewer than `checked`: group commit).
    fsyncs: usize,
    violations: Vec<String>,
}

struct Trace {
    calls: Vec<Call>,
}

impl Trace {
    fn parse(text: &str) -> Trace {
        let mut calls: Vec<Call> = Vec::new();
        let mut unfinished: HashMap<&str, usize> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let Some((pid, rest)) = line.split_once(' ') else { continue };
            let rest = rest.trim_start();
            if let Some(resumed) = rest.strip_prefix("<... ") {
                let name = resumed.split(' ').next().unwrap_or_default();
                if let Some(c) = unfinished.remove(pid).map(|at| &mut calls[at])
                    && c.name == name
                {
                    c.end = Some(n);
                    c.ret = return_value(rest);
                }
                continue;
            }
            let Some((name, args)) = rest.split_once('(') else { continue }; // `+++ exited`, `--- SIG…`
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            let (fd, args) = fd_path(args);
            let done = !rest.ends_with("<unfinished ...>");
            if !done {
                unfinished.insert(pid, calls.len());
            }
            calls.push(Call {
                name: name.to_owned(),
                fd: fd.to_owned(),
                data: quoted_strings(args),
                start: n,
                end: done.then_some(n),
                ret: if done { return_value(rest) } else { None },
            });
        }
        Trace { calls }
    }

    /// For each key that `key_of` reads at an occurrence of `marker` in a finished write to a
    /// file under `data`: the first such write (by when it returned).
    fn first_store_writes(
        &self,
        data: &Path,
        marker: &[u8],
        key_of: impl Fn(&[u8], usize) -> Option<String>,
    ) -> HashMap<String, usize> {
        let dir = data.display().to_string();
        let mut first: HashMap<String, usize> = HashMap::new();
        for (i, c) in self.calls.iter().enumerate() {
            if !(c.is_write() && c.finished_ok() && c.fd.starts_with(&dir)) {
                continue;
            }
            let mut from = 0;
            while let Some(at) = find(&c.data[from..], marker).map(|p| p + from) {
                if let Some(key) = key_of(&c.data, at) {
                    let e = first.entry(key).or_insert(i);
                    if self.calls[*e].end > c.end {
                        *e = i;
                    }
                }
                from = at + marker.len();
            }
        }
        first
    }

    /// HTTP answers written to sockets: for each key `keys_of(status, body)` names, the first
    /// answer (by when its write started).
    fn answers(&self, keys_of: impl Fn(u16, &[u8]) -> Vec<String>) -> HashMap<String, usize> {
        let mut first = HashMap::new();
        for (i, c) in self.calls.iter().enumerate() {
            if !(c.is_write() && c.to_socket() && c.data.starts_with(b"HTTP/1.1 ")) {
                continue;
            }
            let status = std::str::from_utf8(&c.data[9..c.data.len().min(12)]).ok().and_then(|s| s.parse().ok());
            let body = find(&c.data, b"\r\n\r\n").map_or(&[][..], |at| &c.data[at + 4..]);
            for key in status.map(|s| keys_of(s, body)).unwrap_or_default() {
                first.entry(key).or_insert(i);
            }
        }
        first
    }

    /// For each expected `(answer key, write key)`: the answer's write began only after an
    /// fsync of the file that the data was written to had finished, and that fsync began
    /// after the data's write had returned.
    fn check(
        &self,
        expected: impl Iterator<Item = (String, String)>,
        answers: &HashMap<String, usize>,
        written: &HashMap<String, usize>,
    ) -> Verdict {
        let syncs: Vec<&Call> =
            self.calls.iter().filter(|c| c.is_sync() && c.finished_ok() && c.ret == Some(0)).collect();
        let mut used = std::collections::HashSet::new();
        let mut verdict = Verdict { checked: 0, fsyncs: 0, violations: Vec::new() };
        for (answer_key, write_key) in expected {
            verdict.checked += 1;
            let Some(answer) = answers.get(&answer_key).map(|&i| &self.calls[i]) else {
                verdict.violations.push(format!("{answer_key}: the trace holds no answer for it"));
                continue;
            };
            let at = answer.start;
            let Some(write) = written.get(&write_key).map(|&i| &self.calls[i]).filter(|w| w.end < Some(at)) else {
                verdict.violations.push(format!(
                    "{answer_key}: answered at trace line {at}, before any write of its data ({write_key}) to the store had returned"
                ));
                continue;
            };
            let covering = syncs
                .iter()
                .filter(|s| s.fd == write.fd && Some(s.start) > write.end && s.end < Some(at))
                .min_by_key(|s| s.end);
            match covering {
                Some(s) => {
                    used.insert(s.start);
                }
                None => verdict.violations.push(format!(
                    "{answer_key}: answered at trace line {at}; its data was written to {} at line {}, \
                     and no fsync/fdatasync of that file finished in between",
                    write.fd, write.start
                )),
            }
        }
        verdict.fsyncs = used.len();
        verdict
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The number after the call's closing `) = ` (strace pads short lines before the `=`);
/// `None` for `?`.
fn return_value(line: &str) -> Option<i64> {
    let eq = line.rfind(" = ")?;
    if !line[..eq].trim_end().ends_with(')') {
        return None;
    }
    line[eq + 3..].split(' ').next()?.parse().ok()
}

/// Splits `3</path>, rest` (or `3<TCP:[a->b]>, rest`) into the path and the rest.
fn fd_path(args: &str) -> (&str, &str) {
    let digits = args.bytes().take_while(u8::is_ascii_digit).count();
    let Some(open) = args[digits..].strip_prefix('<') else { return ("", args) };
    // A path may hold `>` (`TCP:[a->b]`), but the annotation ends where the argument does.
    let end = [">, ", ">)", "> <unfinished"].iter().filter_map(|t| open.find(t)).min();
    match end {
        Some(e) => (&open[..e], &open[e + 1..]),
        None => ("", args),
    }
}

/// Decodes and joins every `"…"` string in strace's argument text (its C-style escapes).
fn quoted_strings(args: &str) -> Vec<u8> {
    let b = args.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut inside = false;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if !inside {
            inside = c == b'"';
            continue;
        }
        match c {
            b'"' => inside = false,
            b'\\' if i < b.len() => {
                let e = b[i];
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(0x0b),
                    b'f' => out.push(0x0c),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match b.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push(v as u8);
                    }
                    b'x' => {
                        let hex = args.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
                        if let Some(v) = hex {
                            out.push(v);
                            i += 2;
                        }
                    }
                    other => out.push(other), // `\\`, `\"`
                }
            }
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The reader itself, on traces small enough to read

const WAL: &str = "/d/data/switchboard.db-wal";

fn tiny_trace(fsync_returns_before_answer: bool) -> String {
    let answer = r#"200 writev(7<TCP:[127.0.0.1:7777->127.0.0.1:5000]>, [{iov_base="HTTP/1.1 202 Accepted\r\ncontent-length: 11\r\n\r\n", iov_len=44}, {iov_base="{\"id\":\"m1\"}", iov_len=11}], 2) = 55"#;
    let resumed = "100 <... fsync resumed>)              = 0";
    let (a, b) = if fsync_returns_before_answer { (resumed, answer) } else { (answer, resumed) };
    format!(
        "100 pwrite64(5<{WAL}>, \"\\0\\377\\\"probe-n-q1\\\"\\n\", 15, 4120) = 15\n\
         100 fsync(5<{WAL}> <unfinished ...>\n{a}\n{b}\n100 +++ exited with 0 +++\n"
    )
}

fn tiny_check(text: &str) -> Verdict {
    let trace = Trace::parse(text);
    let data = Path::new("/d/data");
    let written = trace.first_store_writes(data, b"probe-n-", |bytes, at| {
        let tag = &bytes[at + 8..];
        let len = tag.iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        Some(format!("probe-n-{}", String::from_utf8_lossy(&tag[..len])))
    });
    let answers = trace.answers(|status, body| match status {
        202 => json_strings(body, |v| v.get("id").and_then(|id| id.as_str()).into_iter().collect()),
        _ => vec![],
    });
    trace.check([("m1".to_owned(), "probe-n-q1".to_owned())].into_iter(), &answers, &written)
}

fn parser_pairs_unfinished_calls() -> Result<(), Failed> {
    let trace = Trace::parse(&tiny_trace(true));
    let c = &trace.calls;
    assert_eq!(c.len(), 3, "{c:#?}");
    assert_eq!(
        (c[0].name.as_str(), c[0].fd.as_str(), c[0].start, c[0].end, c[0].ret),
        ("pwrite64", WAL, 1, Some(1), Some(15))
    );
    assert_eq!(c[0].data, b"\0\xff\"probe-n-q1\"\n");
    assert_eq!(
        (c[1].name.as_str(), c[1].fd.as_str(), c[1].start, c[1].end, c[1].ret),
        ("fsync", WAL, 2, Some(3), Some(0))
    );
    assert_eq!(c[2].fd, "TCP:[127.0.0.1:7777->127.0.0.1:5000]");
    assert_eq!(c[2].data, b"HTTP/1.1 202 Accepted\r\ncontent-length: 11\r\n\r\n{\"id\":\"m1\"}");
    assert_eq!((c[2].start, c[2].end), (4, Some(4)));
    Ok(())
}

fn check_refuses_early_answers() -> Result<(), Failed> {
    let ok = tiny_check(&tiny_trace(true));
    assert_eq!((ok.checked, ok.fsyncs, ok.violations.len()), (1, 1, 0), "{:?}", ok.violations);
    // The answer's write starts while the fsync is still running: not durable yet.
    let early = tiny_check(&tiny_trace(false));
    assert_eq!(early.violations.len(), 1, "{:?}", early.violations);
    assert!(early.violations[0].contains("no fsync"), "{}", early.violations[0]);
    // And a trace without the write of the data at all.
    let missing = tiny_check(&tiny_trace(true).replace("probe-n-q1", "probe-n-zz"));
    assert!(missing.violations[0].contains("before any write of its data"), "{}", missing.violations[0]);
    Ok(())
}
