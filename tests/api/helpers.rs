//! Starting the real server on a random loopback port, and reading /metrics.
use css_push_exporter::clock::{Clock, ManualClock};
use css_push_exporter::text::parse_labels;
use css_push_exporter::{Application, Config};
use serde_json::Value;
use std::sync::Arc;
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
    /// Resolves when the servers have stopped.
    pub stopped: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the exporter with `flags` on 127.0.0.1:0, with a manual clock at
/// [`NOW_SECS`] and expiry checked every 20 ms.
pub async fn spawn_app(flags: &[&str]) -> TestApp {
    let mut all = vec!["--listen-address", "127.0.0.1:0", "--expiry-interval", "20ms", "--log-level", "warn"];
    all.extend_from_slice(flags);
    let config = Config::from_flags(all).expect("valid test flags");
    let clock = Arc::new(ManualClock::new(Duration::from_secs(NOW_SECS)));
    let app = Application::build(&config, clock.clone() as Arc<dyn Clock>).expect("app starts");
    let base = format!("http://{}", app.address());
    let metrics_base = format!("http://{}", app.metrics_address());
    let app_handles = app.handles();
    let stopped = actix_web::rt::spawn(app.run_until_stopped());
    TestApp { base, metrics_base, clock, app_handles, client: awc::Client::default(), stopped }
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

    /// The /metrics page, parsed.
    pub async fn metrics(&self) -> Metrics {
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

    pub async fn stop(self) {
        for h in &self.app_handles {
            h.stop(true).await;
        }
    }
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
    serde_json::json!({
        "event_type": 321, "appid": 1250000000, "domain": domain, "path": app, "stream_id": stream,
        "sequence": "2263925735398723142", "data_time": data_time_ms, "report_interval": 5000,
        "timeout": 5000, "interface": "general_callback", "abnormal_event": events,
        "stream_param": "txSecret=f5828cd4a8a09109304b060172fb3960&txTime=665982e4", "user_ip": "203.0.113.7",
    })
}

/// Signs `body` with `key`, expiring `valid_for` seconds after [`NOW_SECS`].
pub fn signed(mut body: Value, key: &str, valid_for: i64) -> Value {
    let t = NOW_SECS.cast_signed() + valid_for;
    body["t"] = t.into();
    body["sign"] = css_push_exporter::ingest::signature::sign(key, t).into();
    body
}

pub const SEED: &str = include_str!("../fixtures/push-error-seed.json");
pub const SIGNED: &str = include_str!("../fixtures/push-error-signed.json");

/// Starts the exporter like [`spawn_app`] but on the real clock, so
/// timestamps and `data_time` are current (for tests with a real
/// Prometheus). The returned `clock` is unused.
pub async fn spawn_app_real_clock(flags: &[&str]) -> TestApp {
    let mut all = vec!["--listen-address", "127.0.0.1:0", "--expiry-interval", "1s", "--log-level", "warn"];
    all.extend_from_slice(flags);
    let config = Config::from_flags(all).expect("valid test flags");
    let real: Arc<dyn Clock> = Arc::new(css_push_exporter::clock::SystemClock);
    let app = Application::build(&config, real).expect("app starts");
    let base = format!("http://{}", app.address());
    let metrics_base = format!("http://{}", app.metrics_address());
    let app_handles = app.handles();
    let stopped = actix_web::rt::spawn(app.run_until_stopped());
    let clock = Arc::new(ManualClock::new(Duration::ZERO));
    TestApp { base, metrics_base, clock, app_handles, client: awc::Client::default(), stopped }
}

/// Signs `body` with `key`, expiring 10 minutes from the real now.
pub fn signed_now(mut body: Value, key: &str) -> Value {
    use css_push_exporter::clock::SystemClock;
    let t = SystemClock.now_secs().cast_signed() + 600;
    body["t"] = t.into();
    body["sign"] = css_push_exporter::ingest::signature::sign(key, t).into();
    body
}

/// Real now in Unix milliseconds, for `data_time`.
pub fn now_ms() -> i64 {
    i64::try_from(css_push_exporter::clock::SystemClock.now().as_millis()).expect("a clock before year 292 million")
}

/// A push start (`event_type` 1) or end (0, with `push_duration` ms and
/// `errcode`) body at the real now.
pub fn push_lifecycle(domain: &str, app: &str, stream: &str, sequence: &str, end: Option<(u64, i64)>) -> Value {
    let now = css_push_exporter::clock::SystemClock.now_secs();
    let mut body = serde_json::json!({
        "event_type": 1, "appid": 1250000000, "app": domain, "appname": app, "stream_id": stream,
        "channel_id": stream, "sequence": sequence, "event_time": now, "errcode": 0, "errmsg": "ok",
        "node": "198.51.100.20", "user_ip": "203.0.113.7", "stream_param": "txSecret=x&txTime=665982e4",
        "set_id": 2, "width": 1280, "height": 720,
    });
    if let Some((duration_ms, errcode)) = end {
        body["event_type"] = 0.into();
        body["push_duration"] = duration_ms.to_string().into();
        body["errcode"] = errcode.into();
        body["errmsg"] = "recv rtmp deleteStream".into();
    }
    body
}
