//! Headless Chromium for the dashboard tests: Debian's `chromedriver` on a free port with a fresh
//! profile directory, driven over plain HTTP with fantoccini. Blocking wrappers keep the tests
//! synchronous. When Chromium is missing the test fails and says how to install it.
//!
//! ```ignore
//! let b = Browser::start();
//! b.goto(&server.url("/login"));
//! b.fill("input[name=email]", "admin@example.com");
//! b.click("button[type=submit]");
//! b.wait_for_text("h1", "Dashboard");
//! ```

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::{free_port, workspace_root};

/// How long waits for the page last before the test fails.
pub const BROWSER_WAIT: Duration = Duration::from_secs(20);

/// A headless Chromium with its chromedriver; both stop on drop.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of 1280×900.
    pub fn start() -> Browser {
        let driver_bin = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]).unwrap_or_else(|| {
            panic!("chromedriver is not installed: run ./scripts/test.sh (it installs Debian's chromium and chromium-driver), or `apt-get install chromium chromium-driver`")
        });
        let chromium = find(&["/usr/bin/chromium", "/usr/lib/chromium/chromium"]).unwrap_or_else(|| {
            panic!("chromium is not installed: run ./scripts/test.sh (it installs Debian's chromium and chromium-driver), or `apt-get install chromium chromium-driver`")
        });
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver_bin.display()));
        let profile = tempfile::Builder::new().prefix("sentry-chromium-").tempdir().expect("profile dir");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let attempt = rt.block_on(async {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await
            });
            match attempt {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("could not start a Chromium session through chromedriver at {url}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        Browser { rt, client: Some(client), driver, _profile: profile }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("browser open")
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.c().goto(url)).unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    pub fn current_url(&self) -> String {
        self.rt.block_on(self.c().current_url()).expect("current url").to_string()
    }

    /// Runs JavaScript in the page and returns its result.
    pub fn js(&self, script: &str) -> Value {
        self.rt.block_on(self.c().execute(script, vec![])).unwrap_or_else(|e| panic!("running {script}: {e}"))
    }

    /// The text of the first element matching `css` (panics when there is none).
    pub fn text(&self, css: &str) -> String {
        self.rt
            .block_on(async { self.c().find(Locator::Css(css)).await?.text().await })
            .unwrap_or_else(|e| panic!("text of {css} on {}: {e}", self.current_url()))
    }

    /// The texts of every element matching `css` (read in one script, so a live update that
    /// replaces the elements meanwhile can't make them stale).
    pub fn texts(&self, css: &str) -> Vec<String> {
        let v = self
            .rt
            .block_on(self.c().execute(
                "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent.trim())",
                vec![json!(css)],
            ))
            .unwrap_or_else(|e| panic!("texts of {css}: {e}"));
        v.as_array().map(|a| a.iter().map(|t| t.as_str().unwrap_or("").to_string()).collect()).unwrap_or_default()
    }

    pub fn exists(&self, css: &str) -> bool {
        self.rt.block_on(self.c().find_all(Locator::Css(css))).map(|v| !v.is_empty()).unwrap_or(false)
    }

    pub fn click(&self, css: &str) {
        self.rt
            .block_on(async { self.c().find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("clicking {css} on {}: {e}", self.current_url()));
    }

    /// Replaces the value of an input.
    pub fn fill(&self, css: &str, text: &str) {
        self.rt
            .block_on(async {
                let el = self.c().find(Locator::Css(css)).await?;
                el.clear().await?;
                el.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Chooses an option of a select by its value.
    pub fn select(&self, css: &str, value: &str) {
        self.rt
            .block_on(async { self.c().find(Locator::Css(css)).await?.select_by_value(value).await })
            .unwrap_or_else(|e| panic!("choosing {value} in {css}: {e}"));
    }

    /// Waits until `check` holds, polling; panics with `what` and the page's text after
    /// [`BROWSER_WAIT`].
    pub fn wait_until(&self, what: &str, mut check: impl FnMut(&Browser) -> bool) {
        let deadline = Instant::now() + BROWSER_WAIT;
        while !check(self) {
            if Instant::now() > deadline {
                let body = self.js("return document.body ? document.body.innerText : ''");
                panic!("waited {BROWSER_WAIT:?} for {what} on {}; the page says:\n{}", self.current_url(), body.as_str().unwrap_or(""));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until an element matching `css` contains `text`.
    pub fn wait_for_text(&self, css: &str, text: &str) {
        self.wait_until(&format!("{css} to contain {text:?}"), |b| b.texts(css).iter().any(|t| t.contains(text)));
    }

    /// Saves a PNG of the window under `test-artifacts/` in the repository; returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.rt.block_on(self.c().screenshot()).expect("screenshot");
        let dir = workspace_root().join("test-artifacts");
        std::fs::create_dir_all(&dir).expect("creating test-artifacts/");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("writing the screenshot");
        path
    }

    pub fn set_window_size(&self, w: u32, h: u32) {
        self.rt.block_on(self.c().set_window_size(w, h)).expect("window size");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Whether `path` is an existing non-empty PNG.
pub fn is_png(path: &Path) -> bool {
    std::fs::read(path).map(|b| b.starts_with(b"\x89PNG")).unwrap_or(false)
}
