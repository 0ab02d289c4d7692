//! `--state-file`: live streams and the callback memory survive restarts,
//! graceful or not; a bad file or path is handled as documented. Restarts
//! run the real binary; the rest the server in process.
use crate::binary::Binary;
use crate::helpers::*;
use css_push_exporter::state::snapshot::StateSnapshot;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

/// The gauges a restart must keep, as sorted sample lines.
fn kept_gauges(m: &Metrics) -> Vec<String> {
    let families = [
        "css_push_stream_live{",
        "css_push_streams_live{",
        "css_push_last_error_timestamp_seconds{",
        "css_push_frame_interval_max_seconds{",
    ];
    let mut lines: Vec<String> =
        m.text.lines().filter(|l| families.iter().any(|f| l.starts_with(f))).map(str::to_owned).collect();
    lines.sort();
    lines
}

fn start(stream: &str, app: &str, sequence: &str) -> Value {
    push_lifecycle("d.example.com", app, stream, sequence, None)
}

fn end(stream: &str, app: &str, sequence: &str) -> Value {
    push_lifecycle("d.example.com", app, stream, sequence, Some((60_000, 0)))
}

fn state_flags(path: &Path) -> Vec<String> {
    vec!["--state-file".into(), path.to_str().unwrap().into()]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_graceful_restart_keeps_the_live_streams_and_retries_stay_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let flags = state_flags(&dir.path().join("state"));
    let before = Binary::start(&strs(&flags));
    let mut sent: Vec<Value> = (0..50).map(|i| start(&format!("s{i}"), &format!("live{}", i % 2), "q1")).collect();
    sent.extend((0..5).map(|i| end(&format!("s{i}"), &format!("live{}", i % 2), "q1")));
    let gap = json!([{"type": 6, "count": 2, "detail": [{"desc": "video frame arrive interval too long, interval=3046(msec)", "occur_time": 1}]}]);
    sent.push(push_error("d.example.com", "live1", "s7", now_ms(), gap));
    for body in &sent {
        assert_eq!(before.post(body), 200);
    }
    let m = before.metrics();
    assert_eq!(m.sum("css_push_streams_live", &[]), 45.0);
    let gauges = kept_gauges(&m);
    assert_eq!(gauges.len(), 50 + 2 + 1 + 1, "{gauges:?}");
    let (status, log) = before.terminate();
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("state written to"), "{log}");

    let after = Binary::start(&strs(&flags));
    assert!(after.log().contains("restored 50 streams (45 live)"), "{}", after.log());
    let m = after.metrics();
    assert_eq!(kept_gauges(&m), gauges, "per stream and per (domain, app), as before the restart");
    assert_eq!(m.get("css_push_state_restored_streams", &[]), Some(50.0));
    // CSS retries everything it sent before the restart: all duplicates.
    for body in &sent {
        assert_eq!(after.post(body), 200);
    }
    let m = after.metrics();
    assert_eq!(m.sum("css_push_callbacks_total", &[("outcome", "duplicate")]), sent.len() as f64, "{}", m.text);
    assert_eq!(m.sum("css_push_callbacks_total", &[("outcome", "accepted")]), 0.0);
    assert_eq!(m.sum("css_push_errors_total", &[]), 0.0, "the retried push error is not counted again");
    assert_eq!(kept_gauges(&m), gauges);
    assert!(after.terminate().0.success());
}

#[test]
fn after_sigkill_the_last_periodic_snapshot_is_what_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut flags = state_flags(&dir.path().join("state"));
    flags.extend(["--state-interval".into(), "2s".into()]);
    let first = Binary::start(&strs(&flags));
    for body in [start("a", "live", "qa"), start("b", "live", "qb"), end("b", "live", "qb")] {
        assert_eq!(first.post(&body), 200);
    }
    first.wait_for(|m| m.get("css_push_state_snapshots_total", &[("result", "ok")]) == Some(1.0));
    // After the snapshot, killed at once: back if the journal's second
    // passed (state_file_hardening.rs waits for it), else lost; never half.
    assert_eq!(first.post(&start("c", "live", "qc")), 200);
    first.kill();

    let second = Binary::start(&strs(&flags));
    let m = second.metrics();
    assert_eq!(m.get("css_push_stream_live", &[("stream", "a")]), Some(1.0));
    assert_eq!(m.get("css_push_stream_live", &[("stream", "b")]), Some(0.0), "ended before the snapshot: stays ended");
    let c = m.get("css_push_stream_live", &[("stream", "c")]);
    assert!(c.is_none() || c == Some(1.0), "{c:?}");
    let c = c.unwrap_or(0.0);
    assert_eq!(m.get("css_push_streams_live", &[("app", "live")]), Some(1.0 + c));
    assert_eq!(m.get("css_push_state_restored_streams", &[]), Some(2.0 + c));
    // b's start retried with a new event time (not a duplicate): its session ended, it stays ended.
    let mut retried = start("b", "live", "qb");
    retried["event_time"] = (retried["event_time"].as_u64().unwrap() + 1).into();
    assert_eq!(second.post(&retried), 200);
    let m = second.metrics();
    assert_eq!(m.get("css_push_stream_live", &[("stream", "b")]), Some(0.0));
    assert_eq!(m.sum("css_push_callbacks_total", &[("outcome", "accepted")]), 1.0);
}

#[test]
fn a_corrupt_file_is_kept_aside_byte_for_byte_and_the_exporter_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let flags = state_flags(&path);
    let garbage = b"CSSPUSHS\x01\x00\x00\x00 not really: cut short \xff\x00".to_vec();
    fs::write(&path, &garbage).unwrap();
    let app = Binary::start(&strs(&flags));
    let log = app.log();
    assert!(log.contains("is unusable") && log.contains("state.corrupt-"), "{log}");
    assert_eq!(app.request("GET", "/-/ready", "").0, 200);
    assert_eq!(app.post(&start("a", "live", "q")), 200);
    let m = app.metrics();
    assert_eq!(m.get("css_push_state_corrupt_files_total", &[]), Some(1.0));
    assert_eq!(m.get("css_push_state_restored_streams", &[]), Some(0.0));
    assert_eq!(m.get("css_push_streams_live", &[]), Some(1.0));
    let aside = files_starting(dir.path(), "state.corrupt-");
    assert_eq!(aside.len(), 1);
    assert_eq!(fs::read(&aside[0]).unwrap(), garbage);
    assert!(app.terminate().0.success());
    let written = fs::read(&path).unwrap();
    assert!(StateSnapshot::decode(&written).is_ok(), "a good file replaced it at shutdown");

    // Truncated (a copy cut short): moved aside too, the first one untouched.
    fs::write(&path, &written[..written.len() / 2]).unwrap();
    let app = Binary::start(&strs(&flags));
    assert_eq!(app.metrics().get("css_push_streams_live", &[]), None, "started empty");
    let aside = files_starting(dir.path(), "state.corrupt-");
    assert_eq!(aside.len(), 2, "{aside:?}");
    assert!(aside.iter().any(|p| fs::read(p).unwrap() == garbage));
    assert!(aside.iter().any(|p| fs::read(p).unwrap() == written[..written.len() / 2]));
}

#[test]
fn an_unusable_path_is_refused_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, "x").unwrap();
    // Its directory is a regular file: nothing can be written there, even as root.
    let under_a_file = file.join("state");
    let a_directory = dir.path().to_owned();
    for path in [&under_a_file, &a_directory] {
        let (status, log) = Binary::run_to_exit(&strs(&state_flags(path)));
        assert!(!status.success(), "{log}");
        assert!(log.contains(&format!("--state-file {}: cannot", path.display())), "{log}");
        assert!(!log.contains("listening for callbacks"), "{log}");
    }
}

#[actix_web::test]
async fn live_counts_do_not_depend_on_the_series_cap() {
    let app = spawn_app(&["--max-streams", "10"]).await;
    for i in 0..10 {
        let body = push_error("d.example.com", "live", &format!("e{i}"), now_ms(), json!([{"type": 5, "count": 1}]));
        assert_eq!(app.post(body.to_string()).await.0, 200);
    }
    for i in 0..20 {
        assert_eq!(app.post(start(&format!("s{i}"), "live", "q").to_string()).await.0, 200);
    }
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_streams", &[]), Some(10.0), "error-only streams fill the series cap");
    assert_eq!(m.get("css_push_streams_live", &[("app", "live")]), Some(20.0));
    assert_eq!(m.get("css_push_live_streams_tracked", &[]), Some(20.0));
    assert_eq!(m.get("css_push_live_streams_limit", &[]), Some(200_000.0));
    assert_eq!(m.count("css_push_stream_live"), 0, "no per-stream series past the cap");
    assert!(m.get("css_push_state_snapshots_total", &[("result", "ok")]).is_none(), "no state metrics without a file");
    app.stop().await;
}

#[actix_web::test]
async fn a_failed_periodic_write_keeps_the_previous_file_and_the_next_one_retries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let app = spawn_app(&["--state-file", path.to_str().unwrap(), "--state-interval", "50ms"]).await;
    app.post(start("a", "live", "q").to_string()).await;
    let ok = |m: &Metrics| m.get("css_push_state_snapshots_total", &[("result", "ok")]).unwrap();
    let errors = |m: &Metrics| m.get("css_push_state_snapshots_total", &[("result", "error")]).unwrap();
    let m = app.wait_for(|m| ok(m) >= 1.0).await;
    assert_eq!(m.get("css_push_state_snapshot_interval_seconds", &[]), Some(0.05));
    assert_eq!(m.get("css_push_state_last_snapshot_timestamp_seconds", &[]), Some(NOW_SECS as f64));
    // The file's place taken by a directory that is not empty: every rename
    // over it fails, as a full disk fails the write (the ulimit test in
    // state_file_hardening.rs shows the previous file intact).
    let kept = fs::read(&path).unwrap();
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    fs::write(path.join("x"), "").unwrap();
    let m = app.wait_for(|m| errors(m) >= 1.0).await;
    let ok_before = ok(&m);
    app.post(start("b", "live", "q").to_string()).await;
    app.wait_for(|m| errors(m) >= 3.0).await;
    // A write in progress has its own temporary file (a random name each),
    // so look until none is there: a copy left behind never goes away.
    let temps = || {
        let names = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name());
        names.filter(|n| n.to_str().unwrap().contains(".tmp.")).count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut none_left = temps() == 0;
    while !none_left && std::time::Instant::now() < deadline {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
        none_left = temps() == 0;
    }
    assert!(none_left, "no half-written copy left");

    fs::remove_dir_all(&path).unwrap();
    let m = app.wait_for(|m| ok(m) > ok_before).await;
    let written = fs::read(&path).unwrap();
    assert_ne!(written, kept);
    assert!(StateSnapshot::decode(&written).is_ok());
    assert!(m.get("css_push_state_snapshot_bytes", &[]).unwrap() > 0.0);
    assert!(m.get("css_push_state_snapshot_duration_seconds", &[]).unwrap() > 0.0);
    app.stop().await;
}

/// Arbitrary callback sequences, a snapshot, a load: the restored exporter
/// answers and shows exactly what the original does on whatever comes next.
mod restored_behaves_as_the_original {
    use super::NOW_SECS;
    use css_push_exporter::callback_body::{event, frame_gap_detail, Lifecycle, PushError};
    use css_push_exporter::clock::{Clock, ManualClock};
    use css_push_exporter::state::persist::Loaded;
    use css_push_exporter::state::snapshot::StateSnapshot;
    use css_push_exporter::{Config, Exporter};
    use proptest::prelude::*;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    #[derive(Debug, Clone)]
    enum Step {
        /// A push start (or end), of few streams, apps, sessions and times, so they collide and repeat.
        Lifecycle {
            end: bool,
            stream: u8,
            app: u8,
            sequence: u8,
            time: u8,
        },
        PushError {
            stream: u8,
            app: u8,
            time: u8,
            gap_ms: Option<u32>,
        },
        /// Seconds passing, then expiry: across the dedup window and the TTLs.
        Advance(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (any::<bool>(), 0u8..6, 0u8..3, 0u8..3, 0u8..3)
                .prop_map(|(end, stream, app, sequence, time)| Step::Lifecycle { end, stream, app, sequence, time }),
            2 => (0u8..6, 0u8..3, 0u8..3, proptest::option::of(1000u32..9000))
                .prop_map(|(stream, app, time, gap_ms)| Step::PushError { stream, app, time, gap_ms }),
            1 => prop_oneof![Just(1u64), Just(600), Just(1000), Just(4000)].prop_map(Step::Advance),
        ]
    }

    fn body(step: &Step) -> Option<String> {
        let body = match *step {
            Step::Lifecycle { end, stream, app, sequence, time } => {
                let (app, stream, sequence) = (format!("app{app}"), format!("s{stream}"), format!("q{sequence}"));
                let start = Lifecycle::start("d", &app, &stream, &sequence, NOW_SECS + u64::from(time));
                if end { start.end(1000, 0, "ok") } else { start }.body()
            }
            Step::PushError { stream, app, time, gap_ms } => {
                let detail = gap_ms.map(|ms| frame_gap_detail("video", ms.into(), None)).into_iter().collect();
                let data_time = (NOW_SECS + u64::from(time)).cast_signed() * 1000;
                PushError::new("d", &format!("app{app}"), &format!("s{stream}"), data_time)
                    .sequence("q")
                    .events(json!([event(6, 1, detail)]))
                    .body()
            }
            Step::Advance(_) => return None,
        };
        Some(body)
    }

    /// What a restart keeps, as sorted lines of the page (counters start again at 0).
    fn kept(exporter: &Exporter) -> Vec<String> {
        let page = exporter.render();
        let kept = [
            "css_push_stream_live{",
            "css_push_streams_live{",
            "css_push_last_error_timestamp_seconds{",
            "css_push_frame_interval_max_seconds{",
            "css_push_streams ",
            "css_push_live_streams_tracked ",
            "css_push_dedup_entries ",
        ];
        let mut lines: Vec<String> =
            page.lines().filter(|l| kept.iter().any(|k| l.starts_with(k))).map(str::to_owned).collect();
        lines.sort();
        lines
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        #[test]
        fn on_the_next_callbacks(
            before in prop::collection::vec(step(), 0..40),
            after in prop::collection::vec(step(), 0..40),
        ) {
            // Small bounds, so every cap and eviction is reached.
            let config = Config::from_flags([
                "--max-streams", "3", "--max-live-streams", "4", "--max-apps", "2",
                "--dedup-capacity", "6", "--live-stream-ttl", "2h",
            ]).unwrap();
            let clock = Arc::new(ManualClock::new(Duration::from_secs(NOW_SECS)));
            let original = Exporter::new(&config, clock.clone() as Arc<dyn Clock>);
            for step in &before {
                match body(step) {
                    Some(body) => { original.handle(body.as_bytes(), None); }
                    None => if let Step::Advance(secs) = step {
                        clock.advance(Duration::from_secs(*secs));
                        original.expire();
                    },
                }
            }
            let snapshot = StateSnapshot::decode(&original.snapshot().bytes).unwrap();
            let loaded = Loaded { snapshot, journal: Vec::new(), moved_aside: 0 };
            let slos = vec![css_push_exporter::slo::Slo::push_health()];
            let (restored, _) = Exporter::restored(&config, slos, clock.clone() as Arc<dyn Clock>, loaded);
            prop_assert_eq!(kept(&restored), kept(&original));
            for step in &after {
                match body(step) {
                    Some(body) => {
                        let (a, b) = (original.handle(body.as_bytes(), None), restored.handle(body.as_bytes(), None));
                        prop_assert_eq!(a, b, "{}", body);
                    }
                    None => if let Step::Advance(secs) = step {
                        clock.advance(Duration::from_secs(*secs));
                        original.expire();
                        restored.expire();
                    },
                }
                prop_assert_eq!(kept(&restored), kept(&original), "after {:?}", step);
            }
        }
    }
}
