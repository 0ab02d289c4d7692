//! Raw HTTP/1.1 exchanges over a TCP connection, for what a client library
//! hides: slow bodies, exact headers, `HEAD`, closed connections.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

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

/// A GET from a chosen loopback address (all of 127/8 is local on Linux),
/// so a test can be many peers: the status.
pub fn get_from(source: [u8; 4], addr: &str, path: &str, headers: &str) -> std::io::Result<u16> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect(&addr.parse::<SocketAddr>().unwrap().into())?;
    let mut conn: TcpStream = socket.into();
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n")?;
    let mut head = [0u8; 12];
    conn.read_exact(&mut head)?;
    Ok(String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0))
}

/// Posts `count` bodies over `connections` keep-alive connections, in
/// pipelined batches of [`BATCH`]; the number answered 200. Bounded in
/// count and, through `deadline`, in time.
pub fn pipelined(
    addr: &str,
    count: usize,
    connections: usize,
    deadline: Instant,
    body: impl Fn(usize) -> String + Sync,
) -> usize {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|c| {
                let body = &body;
                scope.spawn(move || {
                    let mut stream = TcpStream::connect(addr).expect("connect");
                    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mine: Vec<usize> = (c..count).step_by(connections).collect();
                    let mut ok = 0;
                    for batch in mine.chunks(BATCH) {
                        if Instant::now() > deadline {
                            break;
                        }
                        let mut out = Vec::with_capacity(batch.len() * 600);
                        for &i in batch {
                            let b = body(i);
                            let head = format!(
                                "POST /callback HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                                b.len()
                            );
                            out.extend_from_slice(head.as_bytes());
                            out.extend_from_slice(b.as_bytes());
                        }
                        stream.write_all(&out).expect("write");
                        ok += read_answers(&mut stream, batch.len());
                    }
                    ok
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

/// Pipelined requests sent at once per connection.
const BATCH: usize = 64;

/// Reads `expected` pipelined answers; how many were 200.
fn read_answers(stream: &mut TcpStream, expected: usize) -> usize {
    let (mut ok, mut seen, mut pending) = (0, 0, Vec::<u8>::new());
    let mut buf = vec![0; 1 << 16];
    while seen < expected {
        let n = stream.read(&mut buf).expect("answers within the read timeout");
        assert!(n > 0, "the server closed the connection after {seen} of {expected} answers");
        pending.extend_from_slice(&buf[..n]);
        // Each answer starts with its status line; bodies are short JSON.
        let mut at = 0;
        while let Some(i) = pending[at..].windows(9).position(|w| w == b"HTTP/1.1 ") {
            if pending.len() < at + i + 12 {
                break;
            }
            seen += 1;
            ok += usize::from(&pending[at + i + 9..at + i + 12] == b"200");
            at += i + 12;
        }
        pending.drain(..at);
    }
    ok
}
