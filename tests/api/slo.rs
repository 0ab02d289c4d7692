//! The push-health SLO accounting over HTTP: exact live and bad seconds,
//! unattributed streams, pairs born at 0, the SLO file, a restart with
//! `--state-file`.
use crate::binary::Binary;
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

const PAIR: [(&str, &str); 2] = [("domain", "d.example.com"), ("app", "live")];
const PAIR_SLO: [(&str, &str); 3] = [PAIR[0], PAIR[1], ("slo", "push-health")];

/// A push start of `stream` at `at` (Unix seconds).
fn start(stream: &str, at: u64) -> Value {
    let mut body = push_lifecycle("d.example.com", "live", stream, "q1", None);
    body["event_time"] = at.into();
    body
}

fn end(stream: &str, at: u64) -> Value {
    let mut body = push_lifecycle("d.example.com", "live", stream, "q1", Some((1000, 0)));
    body["event_time"] = at.into();
    body
}

/// A report of late video frames (type 6, bad by default) ending at `at`.
fn late_frames(stream: &str, at: u64, interval_ms: Option<u64>) -> Value {
    let events = json!([{"type": 6, "count": 4}]);
    let mut body = push_error("d.example.com", "live", stream, i64::try_from(at * 1000).unwrap(), events);
    // The session it belongs to, as CSS names it in both.
    body["sequence"] = "q1".into();
    match interval_ms {
        Some(ms) => body["report_interval"] = ms.into(),
        None => drop(body.as_object_mut().unwrap().remove("report_interval")),
    }
    body
}

fn slo_seconds(m: &Metrics, family: &str, slo: &str) -> Option<f64> {
    m.get(family, &[PAIR[0], PAIR[1], ("slo", slo)])
}

#[actix_web::test]
async fn live_and_bad_seconds_are_exact_and_bad_never_exceeds_live() {
    let app = spawn_app(&[]).await;
    // A pair seen only through a report no SLO counts bad: all three at 0.
    let chunk = json!([{"type": 5, "count": 1}]);
    let other = push_error("d.example.com", "vod", "x", i64::try_from(NOW_SECS * 1000).unwrap(), chunk);
    assert_eq!(app.post(other.to_string()).await.0, 200);
    let m = app.metrics().await;
    let vod = [("domain", "d.example.com"), ("app", "vod")];
    assert_eq!(m.get("css_push_live_seconds_total", &[vod[0], vod[1], ("slo", "push-health")]), Some(0.0), "born at 0");
    assert_eq!(m.get("css_push_bad_seconds_total", &[vod[0], vod[1], ("slo", "push-health")]), Some(0.0));
    assert_eq!(m.get("css_push_slo_unattributed_seconds_total", &[vod[0], vod[1], ("slo", "push-health")]), Some(0.0));

    for s in ["a", "b"] {
        assert_eq!(app.post(start(s, NOW_SECS).to_string()).await.0, 200);
    }
    app.clock.advance(Duration::from_secs(100));
    let t = NOW_SECS;
    let reports = [
        late_frames("a", t + 10, Some(5000)),   // [5, 10)
        late_frames("a", t + 12, Some(5000)),   // overlaps: [10, 12) new
        late_frames("a", t + 8, None),          // out of order, 5 s by default: nothing new
        late_frames("a", t + 40, Some(10_000)), // [30, 40)
        late_frames("b", t + 3, Some(60_000)),  // clipped to the session: [0, 3)
        late_frames("b", t + 300, Some(5000)),  // ahead of now: clipped at now, nothing left
    ];
    for r in &reports {
        assert_eq!(app.post(r.to_string()).await.0, 200);
    }
    assert_eq!(app.post(reports[0].to_string()).await.0, 200, "CSS's retry: a duplicate");
    assert_eq!(app.post(end("a", t + 100).to_string()).await.0, 200);
    app.clock.advance(Duration::from_secs(10));
    // After its end, only what is within the session counts: [98, 100).
    assert_eq!(app.post(late_frames("a", t + 103, Some(5000)).to_string()).await.0, 200);
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_live_seconds_total", &PAIR_SLO), Some(100.0 + 110.0));
    let bad = [5, 2, 2, 10, 3, 0, 2].iter().sum::<u32>();
    assert_eq!(slo_seconds(&m, "css_push_bad_seconds_total", "push-health"), Some(f64::from(bad)));
    assert_eq!(slo_seconds(&m, "css_push_slo_unattributed_seconds_total", "push-health"), Some(0.0));

    app.clock.advance(Duration::from_secs(50));
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_live_seconds_total", &PAIR_SLO), Some(260.0), "b is still live");
    app.stop().await;
}

#[actix_web::test]
async fn streams_without_a_push_start_are_unattributed() {
    let app = spawn_app(&[]).await;
    for at in [NOW_SECS - 20, NOW_SECS - 18, NOW_SECS - 18 + 60] {
        assert_eq!(app.post(late_frames("nostart", at, Some(5000)).to_string()).await.0, 200);
    }
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_live_seconds_total", &PAIR_SLO), Some(0.0));
    assert_eq!(slo_seconds(&m, "css_push_bad_seconds_total", "push-health"), Some(0.0), "no data, not 100 % bad");
    // [-20, -15) and [-18, -13) overlap: 7 s; the third is ahead of our clock, clipped to nothing.
    assert_eq!(slo_seconds(&m, "css_push_slo_unattributed_seconds_total", "push-health"), Some(7.0));
    app.stop().await;
}

#[actix_web::test]
async fn the_slo_file_defines_what_is_counted_and_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slo.toml");
    let strict =
        "[[slo]]\nname = \"audio\"\nobjective = 0.999\nwindow = \"7d\"\nbad_error_types = [7]\nmin_live_streams = 1\n";
    let shipped = include_str!("../../prometheus/slo.toml");
    std::fs::write(&file, format!("{shipped}\n{strict}")).unwrap();
    let app = spawn_app(&["--slo-file", file.to_str().unwrap()]).await;
    assert_eq!(app.post(start("a", NOW_SECS).to_string()).await.0, 200);
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(app.post(late_frames("a", NOW_SECS + 30, Some(5000)).to_string()).await.0, 200);
    let m = app.metrics().await;
    assert_eq!(slo_seconds(&m, "css_push_bad_seconds_total", "push-health"), Some(5.0));
    assert_eq!(slo_seconds(&m, "css_push_bad_seconds_total", "audio"), Some(0.0), "video frames are not audio");
    let info = m.get(
        "css_push_slo_info",
        &[("slo", "audio"), ("objective", "0.999"), ("window", "7d"), ("bad_error_types", "7")],
    );
    assert_eq!(info, Some(1.0));
    assert_eq!(m.label_values("css_push_slo_info", "slo").len(), 2);
    app.stop().await;
}

#[test]
fn a_bad_slo_file_is_refused_at_start_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slo.toml");
    let shipped = include_str!("../../prometheus/slo.toml");
    std::fs::write(&file, shipped.replace("0.99", "99")).unwrap();
    let (status, log) = Binary::run_to_exit(&["--slo-file", file.to_str().unwrap()]);
    assert!(!status.success(), "{log}");
    assert!(log.contains("--slo-file") && log.contains("objective must be between 0 and 1"), "{log}");
    let (status, log) = Binary::run_to_exit(&["--slo-file", dir.path().join("missing.toml").to_str().unwrap()]);
    assert!(!status.success() && log.contains("cannot read it"), "{log}");
}

#[test]
fn after_a_restart_with_the_state_file_restored_live_streams_accrue_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let flags = ["--state-file", state.to_str().unwrap()];
    let before = Binary::start(&flags);
    for s in ["a", "b", "c"] {
        assert_eq!(before.post(&push_lifecycle("d.example.com", "live", s, "q1", None)), 200);
    }
    before.wait_for(|m| m.get("css_push_live_seconds_total", &PAIR_SLO).is_some_and(|v| v >= 3.0));
    let (status, log) = before.terminate();
    assert!(status.success(), "{status}: {log}");

    let after = Binary::start(&flags);
    let first = after.metrics();
    // Counters start at 0 after a restart, as every counter here.
    let at_start = first.get("css_push_live_seconds_total", &PAIR_SLO).expect("the restored pair is shown");
    assert!(at_start <= 3.0, "{at_start}");
    let grown =
        after.wait_for(|m| m.get("css_push_live_seconds_total", &PAIR_SLO).is_some_and(|v| v >= at_start + 3.0));
    assert_eq!(slo_seconds(&grown, "css_push_bad_seconds_total", "push-health"), Some(0.0));
    // A restored stream's end is known: it stops accruing.
    for s in ["a", "b", "c"] {
        assert_eq!(after.post(&push_lifecycle("d.example.com", "live", s, "q1", Some((1000, 0)))), 200);
    }
    let ended = after.metrics().get("css_push_live_seconds_total", &PAIR_SLO).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(after.metrics().get("css_push_live_seconds_total", &PAIR_SLO), Some(ended));
    after.kill();
}
