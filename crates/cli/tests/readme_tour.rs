//! The README's five-minute tour, run as written: its commands are read from README.md when
//! the test runs, so the README and this test cannot drift apart.
//!
//! Each `$ …` line of the tour's `console` blocks runs through `sh` in one directory (as a
//! person's terminals would share one), with the `switchboard` under test first on `PATH`,
//! and its output is compared line by line with the output the README shows: the same text,
//! with the README's ids, keys and times standing for the ones this run makes. An id is
//! bound the first time it is seen, so a later line that shows another agent where the
//! README shows this one fails. The `sh` block's assignments are made with the values bound.
//!
//! What a test cannot do as written is done explicitly: the hub listens on a free port
//! (`SWITCHBOARD_LISTEN` for `serve`, `SWITCHBOARD_URL` for the client commands and the URL
//! in the `curl` commands replaced), `tail` runs in the background until it prints the line
//! the README says it prints, and Ctrl-C is a SIGINT.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use regex::Regex;

mod common;

use common::cli::{Run, Running, clear_switchboard_env, switchboard};
use common::free_port;

const README: &str = include_str!("../../../README.md");

/// The text of the README section under `heading`, up to the next `## ` heading.
fn section(heading: &str) -> &'static str {
    let start = README.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("README has no `{heading}` section"));
    let body = &README[start + heading.len() + 2..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

/// The fenced blocks of `text`: (language, lines).
fn blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut open: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => open = Some((lang.trim().to_owned(), Vec::new())),
            (Some(_), Some(_)) => out.push(open.take().unwrap()),
            (Some((_, lines)), None) => lines.push(line.to_owned()),
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed code block in the README");
    out
}

/// A `$ command` of a console block and the output shown under it. A line ending in `\`
/// continues the command, as in a shell.
#[derive(Debug)]
struct Step {
    command: String,
    output: Vec<String>,
}

fn steps(lines: &[String]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut continued = false;
    for line in lines {
        if continued {
            let step = out.last_mut().unwrap();
            step.command.push('\n');
            step.command.push_str(line);
        } else if let Some(command) = line.strip_prefix("$ ") {
            out.push(Step { command: command.to_owned(), output: Vec::new() });
        } else {
            out.last_mut().expect("output before any `$ ` command").output.push(line.clone());
        }
        continued = line.ends_with('\\');
    }
    out
}

/// The values that differ between runs. `short` is an id the README cuts short with `…`.
static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
          (?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})
        | (?P<short>[0-9a-f]{8}-[0-9a-f-]*…)
        | (?P<key>sb[ak]_[A-Za-z0-9_-]+…?)
        | (?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z)",
    )
    .unwrap()
});

#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Var(&'static str, String),
}

/// A line cut into literal text (runs of spaces made one, so column widths may differ) and
/// the variable values between.
fn pieces(line: &str) -> Vec<Piece> {
    let indent = if line.starts_with(' ') { " " } else { "" };
    let line = format!("{indent}{}", line.split_whitespace().collect::<Vec<_>>().join(" "));
    let mut out = Vec::new();
    let mut at = 0;
    for c in VARIABLE.captures_iter(&line) {
        let m = c.get(0).unwrap();
        let kind = ["id", "short", "key", "time"].into_iter().find(|k| c.name(k).is_some()).unwrap();
        if m.start() > at {
            out.push(Piece::Text(line[at..m.start()].to_owned()));
        }
        out.push(Piece::Var(kind, m.as_str().to_owned()));
        at = m.end();
    }
    if at < line.len() {
        out.push(Piece::Text(line[at..].to_owned()));
    }
    out
}

/// The README's ids and keys, bound to this run's.
#[derive(Default)]
struct Bindings(HashMap<String, String>);

impl Bindings {
    fn bind(&mut self, readme: &str, run: &str) -> Result<(), String> {
        if let Some(bound) = self.0.get(readme) {
            return if bound == run { Ok(()) } else { Err(format!("`{readme}` is {bound} in this run, not {run}")) };
        }
        if let Some((other, _)) = self.0.iter().find(|(_, r)| *r == run) {
            return Err(format!("{run} stands for `{other}` already, and here for `{readme}`"));
        }
        self.0.insert(readme.to_owned(), run.to_owned());
        Ok(())
    }

    /// Whether a line of this run matches the README's line, binding new ids and keys.
    fn matches(&mut self, readme: &str, run: &str) -> Result<(), String> {
        let (want, got) = (pieces(readme), pieces(run));
        let differs = || format!("the README shows\n    {readme}\n  this run printed\n    {run}");
        if want.len() != got.len() {
            return Err(differs());
        }
        for (w, g) in want.iter().zip(&got) {
            match (w, g) {
                (Piece::Text(a), Piece::Text(b)) if a == b => {}
                (Piece::Var("time", _), Piece::Var("time", _)) => {}
                (Piece::Var(k, a), Piece::Var(l, b)) if k == l => {
                    self.bind(a, b).map_err(|e| format!("{e}: {}", differs()))?
                }
                // An id cut short stands for the id it begins.
                (Piece::Var("short", a), Piece::Var("id", b)) => {
                    let prefix = a.trim_end_matches('…');
                    let full: Vec<&String> = self.0.keys().filter(|k| k.starts_with(prefix)).collect();
                    match full[..] {
                        [id] if &self.0[id] == b => {}
                        _ => return Err(format!("`{a}` is not {b}: {}", differs())),
                    }
                }
                _ => return Err(differs()),
            }
        }
        Ok(())
    }

    /// `text` with the README's ids and keys replaced by this run's; every id left in it must
    /// be one this run made.
    #[track_caller]
    fn substitute(&self, text: &str) -> String {
        let mut names: Vec<(&String, &String)> = self.0.iter().collect();
        names.sort_by_key(|(readme, _)| std::cmp::Reverse(readme.len()));
        let mut out = text.to_owned();
        for (readme, run) in names {
            out = out.replace(readme.as_str(), run);
        }
        for m in VARIABLE.find_iter(&out) {
            assert!(
                self.0.values().any(|v| v == m.as_str()),
                "the README's `{text}` uses {}, which no earlier output of the tour shows",
                m.as_str()
            );
        }
        out
    }

    #[track_caller]
    fn expect_lines(&mut self, command: &str, readme: &[String], run: &[String]) {
        let shown: Vec<&str> = run.iter().map(|l| l.trim_end_matches('\r')).collect();
        assert_eq!(
            readme.len(),
            shown.len(),
            "`{command}`: the README shows {} lines of output, this run printed {}:\n{}",
            readme.len(),
            shown.len(),
            shown.join("\n")
        );
        for (want, got) in readme.iter().zip(shown) {
            if let Err(e) = self.matches(want, got) {
                panic!("`{command}`: {e}");
            }
        }
    }
}

/// Where the tour runs: one directory, the binary under test first on `PATH`, the hub's URL,
/// and the shell variables the README sets.
struct Terminal {
    dir: tempfile::TempDir,
    url: String,
    vars: Vec<(String, String)>,
}

impl Terminal {
    fn shell(&self, command: &str) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_switchboard")).parent().unwrap().to_path_buf();
        let path = std::env::join_paths(
            std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        let mut cmd = Command::new("sh");
        clear_switchboard_env(&mut cmd);
        cmd.arg("-c").arg(command).current_dir(self.dir.path()).env("PATH", path).env("SWITCHBOARD_URL", &self.url);
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

#[test]
fn the_readme_tour_runs_as_written() {
    let tour = section("## A five-minute tour");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // The README's hub is on the default port; this one is on a free port.
    let tour = tour.replace("http://127.0.0.1:7777", &url);
    let mut term = Terminal { dir: tempfile::tempdir().unwrap(), url, vars: Vec::new() };
    let mut names = Bindings::default();
    let curl = Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success());
    if !curl {
        // Straight to stderr: the test runner does not capture it, so the skip shows.
        let note = "SKIPPED the README tour's curl commands: curl is not installed\n";
        let _ = std::io::Write::write_all(&mut std::io::stderr(), note.as_bytes());
    }
    let tail_prints = Regex::new(r"Terminal 3 prints `([^`]+)`").unwrap();
    let said = tail_prints.captures(&tour).expect("the README says what `tail` prints (`Terminal 3 prints `…``)");
    let mut tail_line = Some(said[1].to_owned());

    let mut hub: Option<Running> = None;
    let mut tail: Option<Running> = None;
    let mut ran = 0;
    for (lang, lines) in blocks(&tour) {
        if lang == "sh" {
            for line in lines.iter().filter(|l| !l.trim().is_empty()) {
                let (name, value) = line.split_once('=').unwrap_or_else(|| panic!("not an assignment: {line}"));
                assert!(names.0.contains_key(value), "`{line}`: no earlier output of the tour shows {value}");
                term.vars.push((name.to_owned(), names.substitute(value)));
            }
            continue;
        }
        assert_eq!(lang, "console", "the tour holds console and sh blocks only");
        for step in steps(&lines) {
            let command = names.substitute(&step.command);
            ran += 1;
            if command == "switchboard serve" {
                // Terminal 1. `exec` so that the process the test stops is the hub itself.
                let mut cmd = term.shell(&format!("exec {command}"));
                cmd.env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"));
                let serving = Running::spawn(cmd);
                let shown: Vec<String> =
                    step.output.iter().map(|_| serving.line(30, "the hub's start-up lines")).collect();
                names.expect_lines(&command, &step.output, &shown);
                hub = Some(serving);
            } else if command.ends_with("switchboard tail") {
                // Terminal 3: runs until stopped; what it prints is checked after the next send.
                assert!(step.output.is_empty(), "the README shows tail's output in prose, after the next send");
                tail = Some(Running::spawn(term.shell(&format!("exec env {command}"))));
            } else if command.starts_with("curl ") {
                if curl {
                    curl_step(&term, &mut names, &command, &step.output);
                }
            } else {
                assert!(command.contains("switchboard "), "an unexpected command in the tour: {command}");
                if let Some(capability) = command.split("--to capability:").nth(1) {
                    // "The translator is now `active`": true at a person's pace; presence
                    // is written once a second, so the test waits for what the README says.
                    let capability = capability.split([' ', '?']).next().unwrap();
                    wait_until_active(&term, capability);
                }
                let run = Run::of(term.shell(&command));
                let out = run.ok();
                let out: Vec<String> = out.lines().map(str::to_owned).collect();
                names.expect_lines(&command, &step.output, &out);
                if let Some(t) = &tail
                    && command.contains(" send ")
                    && let Some(said) = tail_line.take()
                {
                    let printed = t.line(30, "the line the README says `tail` prints");
                    if let Err(e) = names.matches(&said, &printed) {
                        panic!("`tail`: {e}");
                    }
                }
            }
        }
    }
    assert!(ran >= 8, "the tour ran only {ran} commands: is it still where this test looks for it?");
    assert!(tail.is_some() && tail_line.is_none(), "the tour starts `tail` and sends it a message");

    // "Stop the hub with Ctrl-C. It finishes in-flight requests … before it exits."
    assert!(tour.contains("Stop the hub with Ctrl-C"));
    let mut hub = hub.expect("the tour starts the hub");
    hub.interrupt();
    assert!(hub.exit(30, "the hub after Ctrl-C").success(), "the hub exits cleanly: {}", hub.stderr());
    assert!(hub.stderr().contains("shutting down"), "{}", hub.stderr());
}

/// Waits until an agent with `capability` is listed as active.
fn wait_until_active(term: &Terminal, capability: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let command = format!("switchboard agent list --status active --capability {capability} --json");
    loop {
        let list: serde_json::Value = serde_json::from_str(&Run::of(term.shell(&command)).ok()).unwrap();
        if list["agents"].as_array().is_some_and(|a| !a.is_empty()) {
            return;
        }
        assert!(Instant::now() < deadline, "no agent with capability {capability} became active within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `curl` command of the tour: the same JSON (ids bound, times any), and for `-i` the same
/// status line and the headers the README shows (curl prints more, such as `date`).
fn curl_step(term: &Terminal, names: &mut Bindings, command: &str, readme: &[String]) {
    let out = Run::of(term.shell(command)).ok();
    let out: Vec<String> = out.lines().map(|l| l.trim_end_matches('\r').to_owned()).collect();
    if !command.contains(" -i ") {
        names.expect_lines(command, readme, &out);
        // "Sending it again returns the same answer plus `"duplicate":true`."
        if command.contains("idempotency_key") {
            let again: serde_json::Value = serde_json::from_str(&Run::of(term.shell(command)).ok()).unwrap();
            let mut first: serde_json::Value = serde_json::from_str(&out.join("\n")).unwrap();
            first["duplicate"] = true.into();
            assert_eq!(again, first, "the same send again is the same answer plus duplicate: true");
        }
        return;
    }
    let split = |lines: &[String]| -> (Vec<String>, Vec<String>) {
        let blank = lines.iter().position(|l| l.is_empty()).unwrap_or(lines.len());
        (lines[..blank].to_vec(), lines[(blank + 1).min(lines.len())..].to_vec())
    };
    let ((want_head, want_body), (got_head, got_body)) = (split(readme), split(&out));
    assert_eq!(want_head.first(), got_head.first(), "`{command}`: the status line");
    for header in &want_head[1..] {
        assert!(
            got_head.iter().any(|h| h.eq_ignore_ascii_case(header)),
            "`{command}`: the README shows the header `{header}`; the hub sent {got_head:?}"
        );
    }
    names.expect_lines(command, &want_body, &got_body);
}

#[test]
fn the_readme_configuration_error_is_what_serve_prints() {
    let config = section("## Configuration");
    let (_, lines) = blocks(config).into_iter().find(|(lang, _)| lang == "console").expect("a console block");
    let dir = tempfile::tempdir().unwrap();
    for step in steps(&lines) {
        let (program, args) = step.command.split_once(' ').unwrap();
        assert_eq!(program, "switchboard");
        let mut cmd = switchboard();
        cmd.args(args.split(' ')).current_dir(dir.path());
        let err = Run::of(cmd).fails();
        let err: Vec<String> = err.lines().map(str::to_owned).collect();
        Bindings::default().expect_lines(&step.command, &step.output, &err);
    }
}
