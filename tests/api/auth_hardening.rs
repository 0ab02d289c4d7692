//! Authentication under attack: signatures that cannot be replayed once
//! forgotten, basic auth that a flood of wrong passwords cannot turn into a
//! CPU sink, failed logins that are seen, keys kept off the command line.
use crate::binary::Binary;
use crate::helpers::*;
use crate::raw_http::{get_from, request};
use serde_json::json;
use std::time::{Duration, Instant};

const CALLBACKS: &str = "css_push_callbacks_total";
const AUTH_FAILURES: &str = "css_push_http_auth_failures_total";

fn outcome(m: &Metrics, outcome: &str) -> f64 {
    m.sum(CALLBACKS, &[("outcome", outcome)])
}

#[actix_web::test]
async fn a_captured_callback_never_counts_twice() {
    let app = spawn_app(&["--callback-key", "k"]).await;
    let body = push_error("d", "live", "s", NOW_SECS.cast_signed() * 1000, json!([{"type": 6, "count": 1}]));
    // Signed far ahead, it would outlive the duplicate memory: refused.
    for ahead in [15 * 60, 10 * 365 * 86_400, i64::MAX - NOW_SECS.cast_signed()] {
        let (status, answer) = app.post(signed(body.clone(), "k", ahead).to_string()).await;
        assert_eq!(status, 401, "t = now + {ahead} s");
        assert!(answer["error"].as_str().unwrap().contains("t too far ahead"), "{answer}");
    }
    // As CSS signs (10 minutes ahead): accepted once, a duplicate while
    // remembered, and expired by the time it is forgotten.
    let captured = signed(body, "k", 600).to_string();
    assert_eq!(app.post(captured.clone()).await.0, 200);
    assert_eq!(app.post(captured.clone()).await.0, 200);
    app.clock.advance(Duration::from_secs(15 * 60 + 1));
    app.wait_for(|m| m.get("css_push_dedup_entries", &[]) == Some(0.0)).await;
    assert_eq!(app.post(captured).await.0, 401);
    let m = app.metrics().await;
    assert_eq!(m.sum("css_push_errors_total", &[]), 1.0, "counted once");
    assert_eq!(
        [outcome(&m, "accepted"), outcome(&m, "duplicate"), outcome(&m, "unauthorized"), outcome(&m, "expired")],
        [1.0, 1.0, 3.0, 1.0]
    );
    app.stop().await;
}

#[test]
fn a_validity_longer_than_the_dedup_window_is_refused_at_start() {
    let (status, log) = Binary::run_to_exit(&["--callback-key", "k", "--max-signature-validity", "1h"]);
    assert!(!status.success());
    assert!(log.contains("exceeds --dedup-window (15m)"), "{log}");
}

#[test]
fn costly_hashes_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    // Written as htpasswd -B -C 31 would; checking it would take days.
    let path = dir.path().join("web.yml");
    std::fs::write(&path, "basic_auth_users:\n  p: '$2y$31$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui'\n")
        .unwrap();
    let (status, log) = Binary::run_to_exit(&["--web-config-file", path.to_str().unwrap()]);
    assert!(!status.success());
    assert!(log.contains("basic_auth_users.p: bcrypt cost 31 is above 12"), "{log}");
}

#[test]
fn a_wrong_password_flood_is_throttled_counted_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let config = web_config(dir.path(), &[("prometheus", "s3cret")], 8);
    let exporter = Binary::start(&["--web-config-file", &config, "--metrics-listen-address", "127.0.0.1:0"]);
    let ok = basic_auth("prometheus", "s3cret");
    assert_eq!(request(&exporter.metrics_addr, "GET", "/metrics", &ok, Duration::from_secs(30)).status, 200);

    // One wrong password 32 times at once from one peer: checked once, the
    // others wait for that verdict; none is refused unchecked.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let flood: Vec<_> = (0..32)
            .map(|_| {
                s.spawn(|| {
                    get_from([127, 0, 0, 1], &exporter.metrics_addr, "/metrics", &basic_auth("prometheus", "guess"))
                })
            })
            .collect();
        flood.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");

    // 32 different wrong passwords at once from one peer, and 32 from as
    // many others: a few waiting per peer, a queue of them in all; the rest
    // are refused at once, unchecked.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let flood: Vec<_> = (0..64u8)
            .map(|i| {
                let (source, addr) = (if i < 32 { [127, 0, 0, 1] } else { [127, 0, 1, i] }, &exporter.metrics_addr);
                s.spawn(move || {
                    get_from(source, addr, "/metrics", &basic_auth("prometheus", &format!("guess{i}"))).unwrap()
                })
            })
            .collect();
        // A login seen before is not checked again: it passes during the flood.
        let started = Instant::now();
        assert_eq!(request(&exporter.metrics_addr, "GET", "/metrics", &ok, Duration::from_secs(30)).status, 200);
        assert!(started.elapsed() < Duration::from_secs(5), "a cached login waited {:?}", started.elapsed());
        flood.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let throttled = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(checked + throttled, 64, "{statuses:?}");
    let (one_peer, others) = statuses.split_at(32);
    let one_peer_checked = one_peer.iter().filter(|&&s| s == 401).count();
    let others_checked = others.iter().filter(|&&s| s == 401).count();
    assert!(one_peer_checked < 16, "one peer took {one_peer_checked} checks of 32: {statuses:?}");
    assert!(others_checked >= 16, "the other peers got {others_checked} checks: {statuses:?}");

    let m = Metrics::parse(&String::from_utf8_lossy(
        &request(&exporter.metrics_addr, "GET", "/metrics", &ok, Duration::from_secs(30)).body,
    ));
    assert_eq!(m.get(AUTH_FAILURES, &[("reason", "invalid")]), Some(32.0 + checked as f64));
    assert_eq!(m.get(AUTH_FAILURES, &[("reason", "throttled")]), Some(throttled as f64));
    assert_eq!(m.get(AUTH_FAILURES, &[("reason", "missing")]), Some(0.0));
    let log = exporter.log();
    assert!(log.contains("basic auth failed for user \"prometheus\" from 127.0."), "{log}");
    assert!(log.contains("basic auth not checked for 127.0."), "{log}");
    assert!(!log.contains("guess") && !log.contains("s3cret"), "a password was logged: {log}");
}

#[test]
fn unknown_users_take_as_long_as_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    // Cost 10: bcrypt (tens of ms) outweighs the noise of a loaded host.
    let config = web_config(dir.path(), &[("prometheus", "s3cret")], 10);
    let exporter = Binary::start(&["--web-config-file", &config]);
    let time_ms = |user: &str, i: usize| {
        // A new wrong password each time: a repeated one is not checked again.
        let started = Instant::now();
        let header = basic_auth(user, &format!("guess{i}"));
        let answer = request(&exporter.addr, "GET", "/metrics", &header, Duration::from_secs(30));
        assert_eq!(answer.status, 401);
        started.elapsed().as_secs_f64() * 1000.0
    };
    // Taken in turns, so a burst of load on the shared host falls on both alike.
    let (mut known, mut unknown): (Vec<f64>, Vec<f64>) =
        (0..7).map(|i| (time_ms("prometheus", i), time_ms("nobody", i))).unzip();
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (known, unknown) = (median(&mut known), median(&mut unknown));
    assert!(unknown > known / 2.0 && unknown < known * 2.0, "known user {known:.1} ms, unknown {unknown:.1} ms");
}

#[test]
fn a_callback_key_given_as_a_flag_is_warned_about() {
    const WARNING: &str = "--callback-key given as a flag";
    let flag = Binary::start(&["--callback-key", "k"]);
    assert!(flag.log().contains(WARNING), "{}", flag.log());
    let env = Binary::start_with_env(&[], &[("CSS_PUSH_CALLBACK_KEY", "k")]);
    assert!(!env.log().contains(WARNING), "{}", env.log());
}
