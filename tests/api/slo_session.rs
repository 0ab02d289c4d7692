//! Issue 24's SLI over HTTP: one push-session record (an end that overtakes
//! its start), outage gaps counted or not, millisecond clipping, a flood of
//! reports of never-started streams that cannot blind the accounting,
//! per-stream bad seconds born and gone, and the SLO file read as data.
use crate::binary::Binary;
use crate::helpers::*;
use crate::raw_http::pipelined;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DOMAIN: &str = "d.example.com";
const PAIR: [(&str, &str); 2] = [("domain", DOMAIN), ("app", "live")];
const SLO: (&str, &str) = ("slo", "push-health");

/// A push start of `stream`'s session `sequence`, its own time `at_ms` (whole seconds on the wire).
fn start(stream: &str, sequence: &str, at_secs: u64) -> String {
    let mut body = push_lifecycle(DOMAIN, "live", stream, sequence, None);
    body["event_time"] = at_secs.into();
    body["node"] = "198.51.100.20".into();
    body.to_string()
}

/// A push end of `stream`'s session `sequence` for `errcode`.
fn end(stream: &str, sequence: &str, errcode: i64) -> String {
    let body = push_lifecycle(DOMAIN, "live", stream, sequence, Some((1000, errcode)));
    body.to_string()
}

/// A bad report (late video frames) of session `sequence`: `[data_time_ms - interval_ms, data_time_ms)`.
fn bad(stream: &str, sequence: &str, data_time_ms: u64, interval_ms: u64) -> String {
    let events = json!([{"type": 6, "count": 1}]);
    let mut body = push_error(DOMAIN, "live", stream, i64::try_from(data_time_ms).unwrap(), events);
    body["sequence"] = sequence.into();
    body["report_interval"] = interval_ms.into();
    body.to_string()
}

fn pair_slo(m: &Metrics, family: &str) -> Option<f64> {
    m.get(family, &[PAIR[0], PAIR[1], SLO])
}

fn stream_bad(m: &Metrics, stream: &str) -> Option<f64> {
    m.get("css_push_stream_bad_seconds_total", &[PAIR[0], PAIR[1], ("stream", stream), SLO])
}

async fn post_ok(app: &TestApp, body: String) {
    let (status, answer) = app.post(body).await;
    assert_eq!(status, 200, "{answer}");
}

const T: u64 = NOW_SECS;
const T_MS: u64 = NOW_SECS * 1000;

#[actix_web::test]
async fn an_end_that_overtakes_its_start_leaves_the_stream_not_live_in_both() {
    let app = spawn_app(&[]).await;
    post_ok(&app, end("s", "q1", 14)).await;
    post_ok(&app, start("s", "q1", T)).await;
    app.clock.advance(Duration::from_secs(600));
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_streams_live", &PAIR), Some(0.0));
    assert_eq!(pair_slo(&m, "css_push_live_seconds_total"), Some(0.0), "not live in the SLO either");
    let ends = [PAIR[0], PAIR[1], ("errcode", "14"), ("cause", "pusher_network")];
    assert_eq!(m.get("css_push_stream_ends_total", &ends), Some(1.0));
    // Its reports name a session that never went live: unattributed.
    post_ok(&app, bad("s", "q1", (T + 600) * 1000, 5000)).await;
    let m = app.metrics().await;
    assert_eq!(pair_slo(&m, "css_push_bad_seconds_total"), Some(0.0));
    assert_eq!(pair_slo(&m, "css_push_slo_unattributed_seconds_total"), Some(5.0));
    app.stop().await;
}

#[actix_web::test]
async fn an_abnormal_end_and_a_restart_within_the_window_count_the_gap_as_live_and_bad() {
    let app = spawn_app(&[]).await;
    post_ok(&app, start("s", "q1", T)).await;
    app.clock.advance(Duration::from_secs(100));
    post_ok(&app, end("s", "q1", 14)).await;
    app.clock.advance(Duration::from_secs(60));
    post_ok(&app, start("s", "q2", T + 160)).await;
    app.clock.advance(Duration::from_secs(40));
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_outage_seconds_total", &PAIR), Some(60.0));
    assert_eq!(pair_slo(&m, "css_push_live_seconds_total"), Some(100.0 + 60.0 + 40.0));
    assert_eq!(pair_slo(&m, "css_push_bad_seconds_total"), Some(60.0));
    assert_eq!(stream_bad(&m, "s"), Some(60.0), "the stream's own bad time, born at its gap");
    app.stop().await;
}

#[actix_web::test]
async fn a_normal_end_or_a_restart_past_the_window_counts_no_gap() {
    let app = spawn_app(&[]).await;
    // The pusher stopped (errcode 1): 60 s later it starts again.
    post_ok(&app, start("normal", "q1", T)).await;
    // Cut off (errcode 8, no data), back after 6 minutes: past the 5-minute window.
    post_ok(&app, start("late", "q1", T)).await;
    app.clock.advance(Duration::from_secs(100));
    post_ok(&app, end("normal", "q1", 1)).await;
    post_ok(&app, end("late", "q1", 8)).await;
    app.clock.advance(Duration::from_secs(60));
    post_ok(&app, start("normal", "q2", T + 160)).await;
    app.clock.advance(Duration::from_secs(300));
    post_ok(&app, start("late", "q2", T + 460)).await;
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_outage_seconds_total", &PAIR), Some(0.0));
    assert_eq!(pair_slo(&m, "css_push_bad_seconds_total"), Some(0.0));
    assert_eq!(pair_slo(&m, "css_push_live_seconds_total"), Some(100.0 + 100.0 + 300.0));
    assert_eq!(m.count("css_push_stream_bad_seconds_total"), 0, "no stream was bad");
    let ends = |errcode, cause| {
        m.get("css_push_stream_ends_total", &[PAIR[0], PAIR[1], ("errcode", errcode), ("cause", cause)])
    };
    assert_eq!((ends("1", "pusher_stopped"), ends("8", "no_data")), (Some(1.0), Some(1.0)));
    app.stop().await;
}

#[actix_web::test]
async fn the_slo_file_sets_each_slos_reconnect_window() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slo.toml");
    let shipped = include_str!("../../prometheus/slo.toml");
    let patient = "[[slo]]\nname = \"patient\"\nobjective = 0.99\nwindow = \"30d\"\nbad_error_types = [6]\n\
                   min_live_streams = 1\nreconnect_window = \"10m\"\n";
    std::fs::write(&file, format!("{shipped}\n{patient}")).unwrap();
    let app = spawn_app(&["--slo-file", file.to_str().unwrap()]).await;
    post_ok(&app, start("s", "q1", T)).await;
    app.clock.advance(Duration::from_secs(100));
    post_ok(&app, end("s", "q1", 5)).await;
    app.clock.advance(Duration::from_secs(420));
    post_ok(&app, start("s", "q2", T + 520)).await;
    let m = app.metrics().await;
    let of = |family, slo| m.get(family, &[PAIR[0], PAIR[1], ("slo", slo)]);
    assert_eq!(of("css_push_bad_seconds_total", "push-health"), Some(0.0), "7 minutes: past 5m");
    assert_eq!(of("css_push_bad_seconds_total", "patient"), Some(420.0), "within 10m");
    assert_eq!(of("css_push_live_seconds_total", "push-health"), Some(100.0));
    assert_eq!(of("css_push_live_seconds_total", "patient"), Some(520.0));
    assert_eq!(m.get("css_push_outage_seconds_total", &PAIR), Some(420.0), "within the longest window");
    app.stop().await;
}

#[actix_web::test]
async fn bad_time_is_counted_in_milliseconds_and_clipped_never_shifted() {
    let app = spawn_app(&[]).await;
    post_ok(&app, start("s", "q1", T)).await;
    app.clock.advance(Duration::from_millis(8000));
    // [4.75 s, 7.25 s): 2.5 s.
    post_ok(&app, bad("s", "q1", T_MS + 7250, 2500)).await;
    // Ahead of our clock (now 8 s): [7 s, 9 s) is cut at 8 s, adding [7.25 s, 8 s).
    post_ok(&app, bad("s", "q1", T_MS + 9000, 2000)).await;
    let m = app.metrics().await;
    assert_eq!(pair_slo(&m, "css_push_bad_seconds_total"), Some(3.25));
    assert_eq!(pair_slo(&m, "css_push_live_seconds_total"), Some(8.0));
    app.clock.advance(Duration::from_millis(2500));
    post_ok(&app, end("s", "q1", 1)).await;
    app.clock.advance(Duration::from_millis(1500));
    // Reaching past the end (10.5 s): [9 s, 12 s) is cut at the end.
    post_ok(&app, bad("s", "q1", T_MS + 12_000, 3000)).await;
    // Half a minute ahead, wholly in the future when sent: nothing.
    post_ok(&app, bad("s", "q1", T_MS + 40_000, 5000)).await;
    let m = app.metrics().await;
    assert_eq!(pair_slo(&m, "css_push_bad_seconds_total"), Some(3.25 + 1.5));
    assert_eq!(pair_slo(&m, "css_push_live_seconds_total"), Some(10.5));
    assert_eq!(stream_bad(&m, "s"), Some(4.75));
    app.stop().await;
}

#[actix_web::test]
async fn a_streams_bad_seconds_series_is_born_at_its_first_bad_second_and_goes_with_the_stream() {
    let app = spawn_app(&["--stream-ttl", "10m"]).await;
    post_ok(&app, start("quiet", "q1", T)).await;
    post_ok(&app, start("loud", "q1", T)).await;
    app.clock.advance(Duration::from_secs(30));
    let m = app.metrics().await;
    assert_eq!(m.count("css_push_stream_bad_seconds_total"), 0, "no bad second yet");
    let held = m.get("css_push_series", &[]).unwrap();
    post_ok(&app, bad("loud", "q1", (T + 30) * 1000, 5000)).await;
    let m = app.metrics().await;
    assert_eq!(stream_bad(&m, "loud"), Some(5.0));
    assert_eq!(stream_bad(&m, "quiet"), None);
    // The report added its error counter to the stream's series, and this one.
    assert_eq!(m.get("css_push_series", &[]), Some(held + 1.0 + 1.0));
    post_ok(&app, end("loud", "q1", 1)).await;
    // Forgotten with its push sessions after the stream TTL: the series goes, its budget back.
    app.clock.advance(Duration::from_secs(11 * 60));
    let m = app.wait_for(|m| m.count("css_push_stream_bad_seconds_total") == 0).await;
    assert_eq!(m.get("css_push_slo_streams_tracked", &[("kind", "started")]), Some(0.0));
    app.stop().await;
}

#[actix_web::test]
async fn reports_of_never_started_streams_cannot_blind_the_accounting_of_started_ones() {
    const STARTED: u64 = 100;
    const FLOOD: usize = 300_000;
    // Room for 1000 started streams, so 100 for report-only ones.
    let app = spawn_app(&["--max-live-streams", "1000", "--dedup-capacity", "400000"]).await;
    for s in 0..STARTED {
        post_ok(&app, start(&format!("live-{s}"), "q1", T)).await;
    }
    app.clock.advance(Duration::from_secs(60));
    let addr = app.base.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(240);
    let flood = actix_web::rt::task::spawn_blocking(move || {
        pipelined(&addr, FLOOD, 4, deadline, |i| bad(&format!("ghost-{i}"), "unknown", (T + 60) * 1000, 5000))
    });
    let answered = flood.await.unwrap();
    assert_eq!(answered, FLOOD, "every report was answered 200 within the time bound");
    // The started streams: a bad report each, then a minute more.
    for s in 0..STARTED {
        post_ok(&app, bad(&format!("live-{s}"), "q1", (T + 60) * 1000, 5000)).await;
    }
    app.clock.advance(Duration::from_secs(60));
    let m = app.metrics().await;
    assert_eq!(pair_slo(&m, "css_push_live_seconds_total"), Some(f64::from(100 * 120)), "exact live time");
    assert_eq!(pair_slo(&m, "css_push_bad_seconds_total"), Some(f64::from(100 * 5)), "exact bad time");
    let kind = |family, kind| m.get(family, &[("kind", kind)]);
    assert_eq!(kind("css_push_slo_streams_tracked", "started"), Some(100.0));
    assert_eq!(kind("css_push_slo_streams_tracked", "report_only"), Some(100.0));
    assert_eq!(kind("css_push_slo_streams_limit", "report_only"), Some(100.0));
    assert_eq!(kind("css_push_slo_dropped_reports_total", "report_only"), Some(f64::from(300_000 - 100)));
    assert_eq!(kind("css_push_slo_dropped_reports_total", "started"), Some(0.0));
    // The status page says so.
    let mut res = app.client.get(format!("{}/api/v1/status", app.base)).send().await.unwrap();
    let status: Value = serde_json::from_slice(&res.body().limit(1 << 24).await.unwrap()).unwrap();
    let room = json!({"kind": "report_only", "tracked": 100, "limit": 100, "dropped_reports": 299_900});
    assert_eq!(status["slo"]["saturation"][1], room, "{}", status["slo"]);
    let mut res = app.client.get(format!("{}/", app.base)).send().await.unwrap();
    let page = String::from_utf8(res.body().limit(1 << 24).await.unwrap().to_vec()).unwrap();
    assert!(page.contains("id=\"slo-saturated\"") && page.contains("299\u{202f}900 bad"), "the page warns");
    app.stop().await;
}

#[test]
fn an_slo_file_that_is_not_a_small_regular_file_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let regular = dir.path().join("slo.toml");
    std::fs::write(&regular, include_str!("../../prometheus/slo.toml")).unwrap();
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&regular, &link).unwrap();
    let fifo = dir.path().join("fifo.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let large = dir.path().join("large.toml");
    let mut text = include_str!("../../prometheus/slo.toml").to_owned();
    text.push_str(&format!("# {}\n", "x".repeat(64 * 1024)));
    std::fs::write(&large, text).unwrap();
    let cases = [
        (fifo.as_path(), "not a regular file"),
        (std::path::Path::new("/dev/zero"), "not a regular file"),
        (link.as_path(), "a symbolic link"),
        (large.as_path(), "more than the 65536 bytes"),
        (dir.path(), "not a regular file"),
    ];
    for (path, why) in cases {
        let started = Instant::now();
        let (status, log) = Binary::run_to_exit(&["--slo-file", path.to_str().unwrap()]);
        assert!(!status.success(), "{path:?}: {log}");
        assert!(log.contains("--slo-file") && log.contains(why), "{path:?}: {log}");
        assert!(started.elapsed() < Duration::from_secs(30), "{path:?} hung");
    }
    // The regular file itself is fine.
    let app = Binary::start(&["--slo-file", regular.to_str().unwrap()]);
    app.kill();
}
