//! A real headless Chromium driven over WebDriver (ChromeDriver and `fantoccini`), for the web
//! app's end-to-end tests, with axe-core injected to check each page's accessibility.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// axe-core 4.14.1 (MPL-2.0, from npm `axe-core`), injected into pages by the tests only.
const AXE: &str = include_str!("../data/axe.min.js");

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One browser: ChromeDriver, the session it drives, and a fresh profile directory. The
/// driver (and with it the browser) is killed when this is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Browser {
    /// Starts ChromeDriver on a free port and opens a headless Chromium session at 1280×800.
    pub async fn start() -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the browser tests need Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`)"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        crate::common::eventually(30, "chromedriver answers /status", || {
            let status = status.clone();
            async move {
                let r = reqwest::get(&status).await.ok()?;
                let v: Value = r.json().await.ok()?;
                v["value"]["ready"].as_bool().filter(|r| *r)
            }
        })
        .await;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            "--window-size=1280,800",
        ];
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client =
            ClientBuilder::new(connector).capabilities(caps).connect(&url).await.expect("open a Chromium session");
        Browser { client, driver, _profile: profile }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The path (and query) the browser is at.
    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.expect("current url");
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.client.find(Locator::Css("body")).await.expect("body").text().await.expect("text")
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        e.clear().await.expect("clear");
        e.send_keys(value).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        e.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Waits until the page's text contains `want`: a `MutationObserver` in the page answers
    /// as soon as it does (or after the deadline), so nothing here sleeps. A page replaced
    /// while it waits (after a click that navigates) is asked again.
    pub async fn wait_for_text(&self, want: &str) {
        const WAIT: &str = "const want = arguments[0], done = arguments[arguments.length - 1];
             const has = () => !!document.body && document.body.innerText.includes(want);
             if (has()) return done(true);
             const obs = new MutationObserver(() => { if (has()) { obs.disconnect(); done(true); } });
             obs.observe(document.documentElement, { subtree: true, childList: true, characterData: true, attributes: true });
             setTimeout(() => { obs.disconnect(); done(has()); }, arguments[1]);";
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as u64;
            let found = self.client.execute_async(WAIT, vec![json!(want), json!(left)]).await;
            if matches!(found, Ok(Value::Bool(true))) {
                return;
            }
            if std::time::Instant::now() >= deadline {
                panic!("the page never showed {want:?}; it shows:\n{}", self.text().await);
            }
        }
    }

    /// Runs axe-core on the page; fails listing every serious or critical violation.
    pub async fn assert_accessible(&self, what: &str) {
        self.client.execute(AXE, vec![]).await.expect("inject axe-core");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')
                   .map(v => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)),
                   e => done([`axe failed: ${e}`]));",
                vec![],
            )
            .await
            .expect("run axe-core");
        let found: Vec<String> = serde_json::from_value(found).expect("axe answer");
        assert!(found.is_empty(), "{what}: accessibility violations:\n{}", found.join("\n"));
    }

    /// Saves a screenshot of the page at 1280×800 and at 375×812 as `docs/screenshots/NAME-*.png`,
    /// when `SWITCHBOARD_SCREENSHOTS` is set (the tests make the committed screenshots; see the
    /// README). The window is back at 1280×800 afterwards.
    pub async fn screenshots(&self, name: &str) {
        if std::env::var_os("SWITCHBOARD_SCREENSHOTS").is_none() {
            return;
        }
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        for (w, h, label) in [(375, 812, "phone"), (1280, 800, "desktop")] {
            self.client.set_window_size(w, h).await.expect("resize");
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).expect("write screenshot");
        }
    }
}
