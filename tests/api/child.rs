//! The real binary as a child process, for what only a process shows: the
//! open-files limit, resident memory, log output.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Exporter {
    child: Child,
    /// `127.0.0.1:PORT` for callbacks, and for /metrics.
    pub callback_addr: String,
    pub metrics_addr: String,
    log: Arc<Mutex<String>>,
}

impl Exporter {
    /// Starts the binary on 127.0.0.1 port 0 with `flags` (info logs),
    /// under `ulimit -n` if given; waits (at most 20 s) until it listens.
    pub fn start(flags: &[&str], open_files: Option<u32>) -> Self {
        let bin = env!("CARGO_BIN_EXE_css-push-exporter");
        let mut cmd = match open_files {
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), bin]);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["--listen-address", "127.0.0.1:0", "--log-level", "info"]).args(flags);
        let mut child = cmd
            .env_remove("CSS_PUSH_CALLBACK_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let line = loop {
            let text = log.lock().unwrap().clone();
            if let Some(rest) = text.split("listening for callbacks on ").nth(1) {
                break rest.lines().next().unwrap().to_owned();
            }
            assert!(child.try_wait().unwrap().is_none(), "the binary exited: {text}");
            assert!(Instant::now() < deadline, "not listening after 20 s: {text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let (callback, metrics) = line.split_once(", serving /metrics on ").expect(&line);
        Self { child, callback_addr: callback.to_owned(), metrics_addr: metrics.to_owned(), log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
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
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer read whole from a raw HTTP/1.1 exchange.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` (which should say `Connection: close`) and reads the
/// answer until the server closes, within `timeout`.
pub fn exchange(addr: &str, request: &[u8], timeout: Duration) -> std::io::Result<Answer> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.write_all(request)?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(Answer { status, head, body: raw[split + 4..].to_vec() })
}

/// `GET path` (or another method) with extra header lines, answered within `timeout`.
pub fn request(addr: &str, method: &str, path: &str, headers: &str, timeout: Duration) -> Answer {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n");
    exchange(addr, req.as_bytes(), timeout).unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// `POST /callback` with `body`.
pub fn post(addr: &str, body: &[u8]) -> Answer {
    let mut req = format!(
        "POST /callback HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    exchange(addr, &req, Duration::from_secs(10)).expect("callback answered")
}
