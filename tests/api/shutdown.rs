//! Graceful shutdown: a callback in flight when the stop comes is finished.
use crate::helpers::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[actix_web::test]
async fn a_callback_in_flight_finishes_after_the_stop() {
    let mut app = spawn_app(&[]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let body = SEED.as_bytes().to_vec();
    let (head, tail) = body.split_at(body.len() / 2);
    let (head, tail) = (head.to_vec(), tail.to_vec());
    let conn_addr = addr.clone();
    // Blocking I/O off the runtime thread, which also runs the server.
    let mut conn = actix_web::rt::task::spawn_blocking(move || {
        let mut conn = TcpStream::connect(&conn_addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // `Expect: 100-continue`: the server's `100 Continue` says it has
        // read the head, so the request is in flight from then on.
        let head_lines = format!(
            "POST /callback HTTP/1.1\r\nHost: {conn_addr}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        conn.write_all(head_lines.as_bytes()).unwrap();
        let mut answered = Vec::new();
        while !answered.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(conn.read(&mut byte).unwrap(), 1, "answered: {}", String::from_utf8_lossy(&answered));
            answered.push(byte[0]);
        }
        assert!(answered.starts_with(b"HTTP/1.1 100 Continue"), "{}", String::from_utf8_lossy(&answered));
        conn.write_all(&head).unwrap();
        conn.flush().unwrap();
        conn
    })
    .await
    .unwrap();

    // Stop gracefully while half the body is still to come.
    let handles = app.app_handles.clone();
    let stopping = actix_web::rt::spawn(async move {
        for h in handles {
            h.stop(true).await;
        }
    });
    // The listener closes as the stop begins: from then on the callback is
    // in flight during a stop.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections 5 s after the stop");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let answer = actix_web::rt::task::spawn_blocking(move || {
        conn.write_all(&tail).unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        // Read until the JSON answer has arrived (bounded by the read timeout).
        while !String::from_utf8_lossy(&answer).contains("{\"code\":0}") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("{\"code\":0}"), "{answer}");
    stopping.await.unwrap();
    app.stopped().await.unwrap();
    // Once stopped, nothing listens any more.
    assert!(TcpStream::connect(&addr).is_err());
}

#[test]
fn sigterm_stops_the_binary_cleanly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_css-push-exporter"))
        .args(["--listen-address", "127.0.0.1:0", "--log-level", "info"])
        .env_remove("CSS_PUSH_CALLBACK_KEY")
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut stderr = child.stderr.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = String::new();
    let mut buf = [0u8; 4096];
    while !log.contains("listening for callbacks on") && Instant::now() < deadline {
        let n = stderr.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        log.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(log.contains("no --callback-key set"), "the missing key is warned about: {log}");
    let addr =
        log.split("listening for callbacks on ").nth(1).and_then(|s| s.split(',').next()).expect(&log).to_owned();
    let mut conn = TcpStream::connect(&addr).expect("the binary listens where it says");
    write!(conn, "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status after SIGTERM: {status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "still running 15 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
