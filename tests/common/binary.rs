//! The real binary as a child process on a loopback port, for what only a
//! process shows: restarts, signals, refusing to start, the open-files
//! limit, resident memory, log output.
use super::helpers::{Metrics, NewRender};
use super::raw_http::{exchange, request};
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
    log: Log,
    seen: NewRender,
}

/// The child's stderr, copied as it comes by a thread that ends when the
/// child has exited (and closed it).
struct Log {
    text: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Log {
    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Everything the exited child wrote.
    fn complete(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the log reader does not panic");
        }
        self.text()
    }
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
fn spawn(flags: &[&str], ulimit: Option<&str>, env: &[(&str, &str)]) -> (Child, Log) {
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
    let text = Arc::new(Mutex::new(String::new()));
    let (mut stderr, sink) = (child.stderr.take().unwrap(), text.clone());
    // Drained all along, so a chatty child never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (child, Log { text, reader: Some(reader) })
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
            let text = log.text();
            if let Some(rest) = text.split("listening for callbacks on ").nth(1) {
                let line = rest.lines().next().unwrap();
                let (addr, metrics_addr) = line.split_once(", serving /metrics on ").expect(line);
                let (addr, metrics_addr) = (addr.to_owned(), metrics_addr.to_owned());
                return Self { child, addr, metrics_addr, log, seen: NewRender::default() };
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
        let (mut child, mut log) = spawn(flags, None, env);
        let status = wait(&mut child, Duration::from_secs(20)).expect("exits by itself");
        (status, log.complete())
    }

    pub fn log(&self) -> String {
        self.log.text()
    }

    /// The log once `done` holds for it (it is copied from the child's
    /// stderr as it comes), at most 10 s.
    pub fn wait_log(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if done(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "not in the log within 10 s:\n{log}");
            std::thread::sleep(Duration::from_millis(10));
        }
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

    /// The /metrics page (on its own listener if split), parsed.
    /// Rendered after the last page this test saw ([`NewRender`]).
    pub fn metrics(&self) -> Metrics {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = request(&self.metrics_addr, "GET", "/metrics", "", Duration::from_secs(10));
            assert_eq!(answer.status, 200, "{}", answer.head);
            let m = Metrics::parse(std::str::from_utf8(&answer.body).expect("UTF-8"));
            if self.seen.is_new(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "no new render of /metrics within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        }
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
        (status, self.log.complete())
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
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!(
                "--- log of {} (pid {}) ---\n{}",
                env!("CARGO_BIN_EXE_css-push-exporter"),
                self.child.id(),
                self.log.complete()
            );
        }
    }
}
