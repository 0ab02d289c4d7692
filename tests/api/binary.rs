//! The real binary as a child process on a loopback port, for what only a
//! process shows: restarts, signals, refusing to start, the open-files
//! limit, resident memory, log output.
use crate::helpers::Metrics;
use crate::raw_http::exchange;
use serde_json::Value;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Binary {
    child: Child,
    /// `127.0.0.1:PORT` for callbacks (and /metrics unless split).
    pub addr: String,
    /// Where /metrics is served.
    pub metrics_addr: String,
    log: Arc<Mutex<String>>,
}

/// A loopback port and the info log, unless `flags` set them.
fn defaults(flags: &[&str]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (flag, value) in [("--listen-address", "127.0.0.1:0"), ("--log-level", "info")] {
        if !flags.contains(&flag) {
            out.extend([flag, value]);
        }
    }
    out
}

/// Starts the binary, under `ulimit ULIMIT` if given (`-n 64`), with
/// `env` added to a cleaned environment.
fn spawn(flags: &[&str], ulimit: Option<&str>, env: &[(&str, &str)]) -> (Child, Arc<Mutex<String>>) {
    let bin = env!("CARGO_BIN_EXE_css-push-exporter");
    let mut command = match ulimit {
        Some(limit) => {
            let mut c = Command::new("sh");
            c.args(["-c", &format!("ulimit {limit} && exec \"$0\" \"$@\""), bin]);
            c
        }
        None => Command::new(bin),
    };
    let mut child = command
        .args(defaults(flags))
        .args(flags)
        .env_remove("CSS_PUSH_CALLBACK_KEY")
        .env_remove("CSS_PUSH_STATE_FILE")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let log = Arc::new(Mutex::new(String::new()));
    let (mut stderr, sink) = (child.stderr.take().unwrap(), log.clone());
    // Drained all along, so a chatty child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (child, log)
}

impl Binary {
    /// Starts the binary with `flags` and waits (at most 20 s) until it listens.
    pub fn start(flags: &[&str]) -> Self {
        Self::start_limited(flags, None)
    }

    /// [`Self::start`] under an open-files limit (`ulimit -n`).
    pub fn start_limited(flags: &[&str], open_files: Option<u32>) -> Self {
        Self::start_in(flags, open_files.map(|n| format!("-n {n}")).as_deref(), &[])
    }

    /// [`Self::start`] under `ulimit ULIMIT` (`-f 8`: the file-size limit).
    pub fn start_under_ulimit(flags: &[&str], ulimit: &str) -> Self {
        Self::start_in(flags, Some(ulimit), &[])
    }

    /// [`Self::start`] with environment variables set.
    pub fn start_with_env(flags: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_in(flags, None, env)
    }

    fn start_in(flags: &[&str], ulimit: Option<&str>, env: &[(&str, &str)]) -> Self {
        let (mut child, log) = spawn(flags, ulimit, env);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = log.lock().unwrap().clone();
            if let Some(rest) = text.split("listening for callbacks on ").nth(1) {
                let line = rest.lines().next().unwrap();
                let (addr, metrics_addr) = line.split_once(", serving /metrics on ").expect(line);
                return Self { child, addr: addr.to_owned(), metrics_addr: metrics_addr.to_owned(), log };
            }
            assert!(child.try_wait().unwrap().is_none(), "exited before listening: {text}");
            assert!(Instant::now() < deadline, "not listening after 20 s: {text}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs the binary with `flags` until it exits by itself (at most 20 s):
    /// its status and log.
    pub fn run_to_exit(flags: &[&str]) -> (ExitStatus, String) {
        Self::run_to_exit_with_env(flags, &[])
    }

    /// [`Self::run_to_exit`] with environment variables set.
    pub fn run_to_exit_with_env(flags: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String) {
        let (mut child, log) = spawn(flags, None, env);
        let status = wait(&mut child, Duration::from_secs(20)).expect("exits by itself");
        // The log thread may still be copying the last lines.
        std::thread::sleep(Duration::from_millis(50));
        let log = log.lock().unwrap().clone();
        (status, log)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A request with `Connection: close`: the status and the body.
    pub fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = exchange(&self.addr, request.as_bytes(), Duration::from_secs(10)).expect("answered");
        (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
    }

    /// A `/proc/PID/status` field in kB (`VmRSS`, `VmHWM`).
    pub fn memory_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).expect(field);
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Resets `VmHWM` to the current RSS, so a peak can be measured from now.
    pub fn reset_peak_memory(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").unwrap();
    }

    pub fn post(&self, body: &Value) -> u16 {
        self.request("POST", "/callback", &body.to_string()).0
    }

    pub fn metrics(&self) -> Metrics {
        let (status, body) = self.request("GET", "/metrics", "");
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }

    /// Scrapes until `done` holds, at most 10 s.
    pub fn wait_for(&self, done: impl Fn(&Metrics) -> bool) -> Metrics {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self.metrics();
            if done(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "condition not reached within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits (at most 15 s) for the exit: its status.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = wait(&mut self.child, Duration::from_secs(15)).expect("exits within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
        (status, self.log())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to write anything more.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn wait(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

impl Drop for Binary {
    fn drop(&mut self) {
        // A failed test must not leave the process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
