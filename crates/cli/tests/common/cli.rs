//! Running the `switchboard` binary as a person or a script would: a command line in; exit
//! status, stdout and stderr out; tables read back into cells and `--json` into values.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_client::Client;

use super::{ADMIN, start_hub};

/// The binary under test with none of the caller's `SWITCHBOARD_*` variables, so that a
/// developer's own token, URL or data dir cannot change what a test sees.
pub fn switchboard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    clear_switchboard_env(&mut cmd);
    cmd
}

/// Removes the caller's `SWITCHBOARD_*` variables from what `cmd` will see.
pub fn clear_switchboard_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SWITCHBOARD_") {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null());
}

/// One finished run of the binary.
pub struct Run {
    /// The command line, to name it when an assertion fails.
    pub args: String,
    pub out: Output,
}

impl Run {
    /// Runs `cmd` to completion.
    pub fn of(mut cmd: Command) -> Run {
        let args = format!("{:?}", cmd);
        let out = cmd.output().expect("run switchboard");
        Run { args, out }
    }

    /// What the command printed for its reader, whatever its exit status.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    /// What the command printed as errors and logs.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    /// Stdout, after asserting the command succeeded.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert!(
            self.out.status.success(),
            "{} failed ({}):\nstdout: {}\nstderr: {}",
            self.args,
            self.out.status,
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }

    /// Stderr, after asserting the command failed with exit status 1 and printed nothing to
    /// stdout (a script reading stdout must not mistake an error for a result).
    #[track_caller]
    pub fn fails(&self) -> String {
        assert_eq!(self.out.status.code(), Some(1), "{} should fail: stdout: {}", self.args, self.stdout());
        assert_eq!(self.stdout(), "", "{} failed but printed to stdout", self.args);
        let err = self.stderr();
        assert!(err.starts_with("error: "), "{}: stderr should start with `error: `: {err}", self.args);
        assert!(!err.contains("panicked"), "{} panicked: {err}", self.args);
        err
    }

    /// Stdout parsed as JSON, after asserting success.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}): {out}", self.args))
    }

    /// Stdout read as one table, after asserting success.
    #[track_caller]
    pub fn table(&self) -> Table {
        Table::parse(&self.ok())
    }
}

/// The client commands against one hub, as one principal.
#[derive(Clone)]
pub struct Cli {
    pub url: String,
    pub token: Option<String>,
}

impl Cli {
    /// The hub at `url` (e.g. `http://127.0.0.1:7777`) as `token`, or with no token given.
    pub fn new(url: impl Into<String>, token: Option<String>) -> Cli {
        Cli { url: url.into(), token }
    }

    /// The same hub as another principal.
    pub fn with_token(&self, token: &str) -> Cli {
        Cli { url: self.url.clone(), token: Some(token.to_owned()) }
    }

    /// The command line, ready to run; the hub and token travel in the environment, as the
    /// README tells people to pass them.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = switchboard();
        cmd.args(args).env("SWITCHBOARD_URL", &self.url);
        if let Some(t) = &self.token {
            cmd.env("SWITCHBOARD_TOKEN", t);
        }
        cmd
    }

    /// Runs `switchboard <args>` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.command(args))
    }
}

/// A table the CLI printed: headers and rows of cells, cut at the columns where the headers
/// start (so a cell that does not line up under its header shows as a wrong cell).
#[derive(Debug)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Reads `text` (the header line first) as a table.
    #[track_caller]
    pub fn parse(text: &str) -> Table {
        let mut lines = text.lines();
        let header: Vec<char> = lines.next().unwrap_or_default().chars().collect();
        // A column starts at the beginning and after each run of two or more spaces.
        let mut starts = vec![0];
        for i in 2..header.len() {
            if header[i] != ' ' && header[i - 1] == ' ' && header[i - 2] == ' ' {
                starts.push(i);
            }
        }
        let cut = |line: &str| -> Vec<String> {
            let chars: Vec<char> = line.chars().collect();
            let columns = starts.iter().enumerate().map(|(n, &start)| {
                let start = start.min(chars.len());
                let end = starts.get(n + 1).map_or(chars.len(), |&next| next.min(chars.len()));
                assert!(
                    start == 0 || start == chars.len() || chars[start - 1] == ' ',
                    "column {n} of `{line}` does not start under its header"
                );
                chars[start..end].iter().collect::<String>().trim().to_owned()
            });
            columns.collect()
        };
        let headers = cut(&header.iter().collect::<String>());
        let rows = lines.map(cut).collect();
        Table { headers, rows }
    }

    /// The cells of one column, top to bottom.
    #[track_caller]
    pub fn column(&self, header: &str) -> Vec<&str> {
        let i = self.index(header);
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }

    /// The row whose `header` cell is `value`.
    #[track_caller]
    pub fn row(&self, header: &str, value: &str) -> Vec<&str> {
        let i = self.index(header);
        let row = self.rows.iter().find(|r| r[i] == value);
        row.unwrap_or_else(|| panic!("no row with {header} = {value} in {self:?}")).iter().map(String::as_str).collect()
    }

    /// The cell under `header` in the row whose `key` cell is `value`.
    #[track_caller]
    pub fn cell(&self, key: &str, value: &str, header: &str) -> String {
        self.row(key, value)[self.index(header)].to_owned()
    }

    #[track_caller]
    fn index(&self, header: &str) -> usize {
        self.headers
            .iter()
            .position(|h| h == header)
            .unwrap_or_else(|| panic!("no column {header} in {:?}", self.headers))
    }
}

/// Kills the child when the test ends, whether it passed or not.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A long-running `switchboard` process (`serve`, `tail`) whose stdout the test reads line
/// by line as it comes, with a deadline, and whose stderr is kept to explain a failure.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts `cmd` with its output piped to the test.
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start switchboard in the background");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let kept = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    return;
                }
                kept.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Running { child, lines, stderr }
    }

    /// The next line of stdout, failing after `secs` seconds.
    #[track_caller]
    pub fn line(&self, secs: u64, what: &str) -> String {
        match self.lines.recv_timeout(Duration::from_secs(secs)) {
            Ok(line) => line,
            Err(e) => panic!("waited {secs} s for {what} on stdout ({e}); stderr: {}", self.stderr()),
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself, failing after `secs` seconds.
    #[track_caller]
    pub fn exit(&mut self, secs: u64, what: &str) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(Instant::now() < deadline, "{what} did not exit within {secs} s; stderr: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        let sent = Command::new("kill").args(["-INT", &self.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "could not send SIGINT to {}", self.id());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which store a test hub runs on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database on the test PostgreSQL server, dropped when the guard goes.
pub struct Database {
    admin_url: String,
    name: String,
    /// The database's URL, for `SWITCHBOARD_DATABASE_URL` or `--database-url`.
    pub url: String,
}

impl Database {
    /// A new database on the server `SWITCHBOARD_TEST_DATABASE_URL` names. The tests that
    /// call this are `#[ignore]`d, so a run without PostgreSQL reports them as ignored; asked
    /// for with `--ignored` and no server named, the test fails and says why.
    pub fn create(test: &str) -> Database {
        let base = std::env::var("SWITCHBOARD_TEST_DATABASE_URL").unwrap_or_else(|_| {
            panic!(
                "{test} on PostgreSQL: SWITCHBOARD_TEST_DATABASE_URL is unset; \
                 set it to postgres://user@host:port/db of a server this test may create databases on"
            )
        });
        let (server, _) = base.rsplit_once('/').expect("database URL ends in /<db>");
        let name = format!("sb_cli_{}", switchboard_core::new_id().simple());
        let admin_url = format!("{server}/postgres");
        let ok = Command::new("psql").args([&admin_url, "-qc", &format!("CREATE DATABASE {name}")]).status();
        assert!(ok.is_ok_and(|s| s.success()), "cannot create the test database on {server}");
        Database { url: format!("{server}/{name}"), admin_url, name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.admin_url, "-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .stderr(Stdio::null())
            .status();
    }
}

/// A `switchboard serve` child on a free port with a temporary store, its admin client, and
/// the CLI pointed at it with the admin token.
pub struct Hub {
    /// The library client with the admin token, for setting up what a test does not test.
    pub admin: Client,
    /// The binary with the admin token.
    pub cli: Cli,
    child: Child,
    dir: tempfile::TempDir,
    _db: Option<Database>,
}

impl Hub {
    /// Starts a hub on `backend` with extra environment (PostgreSQL: see [`Database::create`]).
    pub async fn start(backend: Backend, test: &str, env: &[(&str, &str)]) -> Hub {
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Database::create(test)),
        };
        let dir = tempfile::tempdir().unwrap();
        let mut env = env.to_vec();
        if let Some(db) = &db {
            env.push(("SWITCHBOARD_DATABASE_URL", &db.url));
        }
        let (child, admin) = start_hub(dir.path(), &env).await;
        let cli = Cli::new(admin.base_url(), Some(ADMIN.into()));
        Hub { admin, cli, child, dir, _db: db }
    }

    /// The hub's temporary directory (its SQLite store lives here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The hub's base URL.
    pub fn url(&self) -> &str {
        self.admin.base_url()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
