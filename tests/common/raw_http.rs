//! Raw HTTP/1.1 exchanges over a TCP connection, for what a client library
//! hides: slow bodies, exact headers, `HEAD`, closed connections.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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

/// `POST /callback` with `body` as JSON text.
pub fn post_json(addr: &str, body: &serde_json::Value) -> Answer {
    post(addr, body.to_string().as_bytes())
}
