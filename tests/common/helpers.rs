//! Starting the real server on a random loopback port, reading /metrics,
//! and callback bodies (through the library's one builder,
//! `css_push_exporter::callback_body`).
//!
//! `TEST_LOG=1` (or a filter such as `TEST_LOG=debug`) shows the server's
//! log in in-process tests, and each child binary's log when it stops.
use css_push_exporter::callback_body::{event, frame_gap_detail, sign_json, Lifecycle, PushError};
use css_push_exporter::clock::{Clock, ManualClock, SystemClock};
use css_push_exporter::text::parse_labels;
use css_push_exporter::{Application, Config};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

/// A fixed "now" for tests: 2025-11-24T16:00:00Z.
pub const NOW_SECS: u64 = 1_764_000_000;

pub struct TestApp {
    /// `http://127.0.0.1:PORT`, where callbacks go.
    pub base: String,
    /// `http://127.0.0.1:PORT` serving /metrics (same as `base` unless split).
    pub metrics_base: String,
    pub clock: Arc<ManualClock>,
    pub app_handles: Vec<actix_web::dev::ServerHandle>,
    pub client: awc::Client,
    seen: NewRender,
    /// Resolves when the servers have stopped (taken by [`TestApp::stopped`]).
    stopped: Option<actix_web::rt::task::JoinHandle<std::io::Result<()>>>,
}

/// Installs a logger once per test binary when `TEST_LOG` is set: its value
/// is the filter (`1` means `info`).
pub fn init_test_log() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let filter = if filter == "1" { "info" } else { &filter };
            let _ = env_logger::Builder::new().parse_filters(filter).is_test(true).try_init();
        }
    });
}

/// Starts the exporter with `flags` on 127.0.0.1:0, with a manual clock at
/// [`NOW_SECS`] and expiry checked every 20 ms.
pub async fn spawn_app(flags: &[&str]) -> TestApp {
    let clock = Arc::new(ManualClock::new(Duration::from_secs(NOW_SECS)));
    start(&["--expiry-interval", "20ms"], flags, clock.clone() as Arc<dyn Clock>, clock)
}

/// Starts the exporter like [`spawn_app`] but on the real clock, so
/// timestamps and `data_time` are current (for tests with a real
/// Prometheus). The returned `clock` is unused.
pub async fn spawn_app_real_clock(flags: &[&str]) -> TestApp {
    let unused = Arc::new(ManualClock::new(Duration::ZERO));
    start(&["--expiry-interval", "1s"], flags, Arc::new(SystemClock), unused)
}

fn start(defaults: &[&str], flags: &[&str], clock: Arc<dyn Clock>, manual: Arc<ManualClock>) -> TestApp {
    init_test_log();
    let mut all = vec!["--listen-address", "127.0.0.1:0", "--log-level", "warn"];
    all.extend_from_slice(defaults);
    all.extend_from_slice(flags);
    let config = Config::from_flags(all).expect("valid test flags");
    let app = Application::build(&config, clock).expect("app starts");
    let base = format!("http://{}", app.address());
    let metrics_base = format!("http://{}", app.metrics_address());
    let app_handles = app.handles();
    let stopped = Some(actix_web::rt::spawn(app.run_until_stopped()));
    let client = awc::Client::default();
    TestApp { base, metrics_base, clock: manual, app_handles, client, seen: NewRender::default(), stopped }
}

/// Which render of /metrics a test saw last. A page that was slow to render
/// (a loaded host: it is wall time) is served again for twice as long
/// (`src/expose/scrape.rs`), so a test that posts, then scrapes, could read
/// the page from before its post; it asks again until the page is newer
/// (`css_push_scrape_renders_total` grew).
#[derive(Default)]
pub struct NewRender(AtomicU64);

impl NewRender {
    /// Whether `page` was rendered after the last page this was shown.
    pub fn is_new(&self, page: &Metrics) -> bool {
        let render = page.get("css_push_scrape_renders_total", &[]).expect("renders are counted");
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a count of renders")]
        let render = render as u64;
        self.0.fetch_max(render, Ordering::Relaxed) < render
    }
}

impl Drop for TestApp {
    /// A test that ends early (a failed assertion) stops its servers too:
    /// `stop` sends the command at once; nobody is left to await it.
    fn drop(&mut self) {
        for h in &self.app_handles {
            drop(h.stop(false));
        }
    }
}

impl TestApp {
    /// POSTs `body` to /callback; returns the status and the JSON answer.
    pub async fn post(&self, body: impl Into<String>) -> (u16, Value) {
        self.post_to("/callback", body.into()).await
    }

    pub async fn post_to(&self, path: &str, body: String) -> (u16, Value) {
        let mut res = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("content-type", "application/json"))
            .send_body(body)
            .await
            .expect("request sent");
        let bytes = res.body().limit(1 << 20).await.expect("body read");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (res.status().as_u16(), json)
    }

    /// The /metrics page, parsed: rendered after the last one this test
    /// saw (see [`NewRender`]).
    pub async fn metrics(&self) -> Metrics {
        for _ in 0..500 {
            let m = self.scrape().await;
            if self.seen.is_new(&m) {
                return m;
            }
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no new render of /metrics within 5 s");
    }

    async fn scrape(&self) -> Metrics {
        let mut res = self.client.get(format!("{}/metrics", self.metrics_base)).send().await.expect("scrape");
        assert_eq!(res.status().as_u16(), 200);
        let ct = res.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let bytes = res.body().limit(256 << 20).await.expect("metrics body");
        Metrics::parse(std::str::from_utf8(&bytes).unwrap())
    }

    /// Scrapes until `done` holds (expiry runs on a 20 ms timer), at most 5 s.
    pub async fn wait_for(&self, done: impl Fn(&Metrics) -> bool) -> Metrics {
        for _ in 0..250 {
            let m = self.metrics().await;
            if done(&m) {
                return m;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("condition not reached within 5 s");
    }

    /// Stops the servers gracefully and waits until they have.
    pub async fn stop(self) {
        for h in &self.app_handles {
            h.stop(true).await;
        }
    }

    /// Waits until the servers have stopped (once; someone else stops them).
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        self.stopped.take().expect("awaited once").await.expect("the server task did not panic")
    }
}

/// GETs `path` from the metrics listener, with basic auth if given:
/// (status, body).
pub async fn get(app: &TestApp, path: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    let mut req = app.client.get(format!("{}{path}", app.metrics_base));
    if let Some((user, password)) = auth {
        req = req.basic_auth(user, password);
    }
    let mut res = req.send().await.expect("request sent");
    let body = res.body().limit(16 << 20).await.expect("body read");
    (res.status().as_u16(), String::from_utf8(body.to_vec()).expect("UTF-8"))
}

/// An exporter whose metrics listener (split from the callback one) asks
/// for basic auth: user `prometheus`, password `pw`. The temp dir holds
/// its web config.
pub async fn spawn_guarded_app() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("web-config.yml");
    std::fs::write(&config, format!("basic_auth_users:\n  prometheus: '{}'\n", bcrypt::hash("pw", 4).unwrap()))
        .unwrap();
    let app =
        spawn_app(&["--web-config-file", config.to_str().unwrap(), "--metrics-listen-address", "127.0.0.1:0"]).await;
    (app, dir)
}

/// One sample of a text exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A parsed text exposition.
pub struct Metrics {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Metrics {
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("sample has a value");
                let value = match value {
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
                };
                let (name, labels) = match series.split_once('{') {
                    None => (series.to_owned(), Vec::new()),
                    Some((name, rest)) => {
                        (name.to_owned(), parse_labels(rest.strip_suffix('}').expect("closing brace")))
                    }
                };
                Sample { name, labels, value }
            })
            .collect();
        Self { text: text.to_owned(), samples }
    }

    /// Samples of `name` carrying every pair in `labels`.
    pub fn find<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name && labels.iter().all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
    }

    /// The sum over samples of `name` matching `labels` (0 when none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).map(|s| s.value).sum()
    }

    /// The value of the single sample of `name` matching `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<_> = self.find(name, labels).collect();
        assert!(found.len() <= 1, "{name} {labels:?} matches {} samples", found.len());
        found.first().map(|s| s.value)
    }

    pub fn count(&self, name: &str) -> usize {
        self.samples.iter().filter(|s| s.name == name).count()
    }

    /// The distinct values of `label` over the samples of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> std::collections::BTreeSet<String> {
        self.find(name, &[])
            .map(|s| {
                s.labels.iter().find(|(k, _)| k == label).unwrap_or_else(|| panic!("{name} without {label}")).1.clone()
            })
            .collect()
    }
}

/// A push error callback body (event 321) with the given abnormal events.
pub fn push_error(domain: &str, app: &str, stream: &str, data_time_ms: i64, events: Value) -> Value {
    PushError::new(domain, app, stream, data_time_ms).events(events).json()
}

/// A push error of `stream` in `domain` (app `live`) with one error of each
/// of `types`.
pub fn report(domain: &str, stream: &str, types: std::ops::RangeInclusive<u64>, data_time_ms: i64) -> Value {
    let events = types.map(|t| event(t, 1, Vec::new())).collect();
    push_error(domain, "live", stream, data_time_ms, Value::Array(events))
}

/// Signs `body` with `key`, expiring `valid_for` seconds after [`NOW_SECS`].
pub fn signed(body: Value, key: &str, valid_for: i64) -> Value {
    sign(body, key, NOW_SECS.cast_signed() + valid_for)
}

/// Signs `body` with `key`, expiring 10 minutes from the real now.
pub fn signed_now(body: Value, key: &str) -> Value {
    sign(body, key, SystemClock.now_secs().cast_signed() + 600)
}

fn sign(mut body: Value, key: &str, t: i64) -> Value {
    sign_json(&mut body, key, t);
    body
}

pub const SEED: &str = include_str!("../fixtures/push-error-seed.json");
pub const SIGNED: &str = include_str!("../fixtures/push-error-signed.json");

/// Real now in Unix milliseconds, for `data_time`.
pub fn now_ms() -> i64 {
    i64::try_from(SystemClock.now().as_millis()).expect("a clock before year 292 million")
}

/// A push start (`event_type` 1) or end (0, with `push_duration` ms and
/// `errcode`) body at the real now.
pub fn push_lifecycle(domain: &str, app: &str, stream: &str, sequence: &str, end: Option<(u64, i64)>) -> Value {
    let start = Lifecycle::start(domain, app, stream, sequence, SystemClock.now_secs());
    match end {
        None => start.json(),
        Some((duration_ms, errcode)) => start.end(duration_ms, errcode, "recv rtmp deleteStream").json(),
    }
}

/// Abnormal events: two late video frames (one detail, a gap of `gap_ms`)
/// and a video timestamp rollback.
pub fn late_video(gap_ms: u64) -> Value {
    json!([{"type": 6, "count": 2, "detail": [frame_gap_detail("video", gap_ms, None)]}, {"type": 1, "count": 1}])
}

/// An exporter (manual clock, with a state file) fed so that every metric
/// family of the table shows on its page; the temp dir holds the state file.
pub async fn spawn_app_showing_every_family() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let app = spawn_app(&["--state-file", state.to_str().unwrap()]).await;
    app.post(SEED).await;
    app.post(push_lifecycle("d", "live", "s", "q", None).to_string()).await;
    app.post(push_lifecycle("d", "live", "s", "q", Some((60_000, 0))).to_string()).await;
    app.post("{").await;
    // A detail without a readable gap: the last family that appears only once used.
    let unreadable = json!([{"type": 6, "count": 1, "detail": [{"desc": "late"}]}]);
    app.post(push_error("d", "live", "s", NOW_SECS.cast_signed() * 1000, unreadable).to_string()).await;
    (app, dir)
}

/// The files in `dir` whose name starts with `prefix`, sorted.
pub fn files_starting(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    found.sort();
    found
}

/// A `--web-config-file` in `dir` with `users` (name, password) hashed at
/// `cost`: its path.
pub fn web_config(dir: &std::path::Path, users: &[(&str, &str)], cost: u32) -> String {
    let mut yaml = String::from("basic_auth_users:\n");
    for (user, password) in users {
        yaml += &format!("  {user}: '{}'\n", bcrypt::hash(password, cost).unwrap());
    }
    let path = dir.join("web.yml");
    std::fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The `Authorization` header line for `user` and `password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {encoded}\r\n")
}
