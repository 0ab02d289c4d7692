//! `css-push-exporter simulate`: what it posts is what the
//! exporter counts, and its bounds hold.
use crate::helpers::*;
use clap::Parser;
use css_push_exporter::simulate::{self, SimulateArgs};
use std::time::Duration;

fn args(flags: &[&str]) -> SimulateArgs {
    SimulateArgs::try_parse_from(["simulate"].iter().chain(flags)).expect("valid simulate flags")
}

#[actix_web::test]
async fn what_simulate_reports_sending_is_what_the_exporter_counts() {
    // The real clock: simulate signs as CSS does, 10 minutes from the real now.
    let app = spawn_app_real_clock(&["--callback-key", "demo-key"]).await;
    let target = format!("{}/callback", app.base);
    let a = args(&[
        "--target",
        &target,
        "--streams",
        "20",
        "--apps",
        "3",
        "--count",
        "300",
        "--rate",
        "0",
        "--concurrency",
        "4",
        // 15 reports per stream, each a CSS report interval apart: compressed.
        "--report-interval",
        "10ms",
        "--callback-key",
        "demo-key",
        "--lifecycle",
    ]);
    let report = simulate::run(&a).await;
    assert_eq!((report.push_errors, report.lifecycle, report.refused, report.failed), (300, 40, 0, 0));
    assert_eq!(report.latencies_us.len(), 340);
    assert!(report.latency(0.5) <= report.latency(0.99));

    let m = app.metrics().await;
    let accepted =
        |event_type| m.get("css_push_callbacks_total", &[("event_type", event_type), ("outcome", "accepted")]);
    assert_eq!(accepted("321"), Some(300.0), "signed and never a duplicate");
    assert_eq!((accepted("1"), accepted("0")), (Some(20.0), Some(20.0)));
    assert_eq!(m.sum("css_push_errors_total", &[("domain", "demo.example.com")]), report.errors as f64);
    let types = m.label_values("css_push_errors_total", "error");
    assert!(types.len() >= 8, "a mix of error types: {types:?}");
    assert!(!types.contains("unknown"));
    assert!(m.sum("css_push_frame_interval_seconds_count", &[]) > 0.0);
    assert_eq!(m.sum("css_push_unparsed_details_total", &[]), 0.0, "every late-frame detail has a gap");
    assert_eq!(m.find("css_push_streams_live", &[]).count(), 3, "one series per app");
    assert_eq!(m.sum("css_push_streams_live", &[]), 0.0, "every stream started and ended");
    assert_eq!(m.sum("css_push_stream_ends_total", &[]), 20.0);
    println!("{}", report.summary(&a));
    app.stop().await;
}

#[actix_web::test]
async fn rate_and_duration_bound_the_run() {
    let app = spawn_app(&[]).await;
    let target = format!("{}/callback", app.base);
    // 20 callbacks at 100/s: the last waits for its slot at 190 ms.
    let report = simulate::run(&args(&["--target", &target, "--rate", "100", "--count", "20"])).await;
    assert_eq!(report.push_errors, 20);
    assert!(report.elapsed >= Duration::from_millis(190), "{:?}", report.elapsed);
    // As fast as possible, stopped by --duration.
    let report = simulate::run(&args(&["--target", &target, "--rate", "0", "--duration", "300ms"])).await;
    assert!(report.push_errors > 0);
    assert!(
        report.elapsed >= Duration::from_millis(300) && report.elapsed < Duration::from_secs(5),
        "{:?}",
        report.elapsed
    );
    app.stop().await;
}

#[actix_web::test]
async fn each_stream_reports_at_most_once_per_report_interval() {
    let app = spawn_app(&[]).await;
    let target = format!("{}/callback", app.base);
    // 4 streams, one report each per second, for 2.5 s: 3 reports each at
    // most, however fast --rate 0 would go.
    let a = args(&[
        "--target",
        &target,
        "--streams",
        "4",
        "--rate",
        "0",
        "--duration",
        "2500ms",
        "--report-interval",
        "1s",
    ]);
    let report = simulate::run(&a).await;
    assert!((4..=12).contains(&report.push_errors), "{}", report.summary(&a));
    assert!(report.not_due > 0, "the streams had to wait: {}", report.summary(&a));
    assert!(report.summary(&a).contains("no stream due (each reports at most once per 1s)"));
    // As the exporter saw it.
    let res = app.client.get(format!("{}/api/v1/status", app.metrics_base)).send().await;
    let status: serde_json::Value = res.unwrap().json().limit(1 << 20).await.unwrap();
    let per_stream: Vec<u64> =
        status["top_streams"]["streams"].as_array().unwrap().iter().map(|s| s["reports"].as_u64().unwrap()).collect();
    assert_eq!(per_stream.iter().sum::<u64>(), report.push_errors);
    assert!(per_stream.iter().all(|&n| n <= 3), "{per_stream:?}");
    // At the default 5 s: at most one report per stream in a second.
    let a = args(&["--target", &target, "--streams", "4", "--rate", "0", "--duration", "1s"]);
    assert!((1..=4).contains(&simulate::run(&a).await.push_errors));
    app.stop().await;
}

#[actix_web::test]
async fn a_reader_that_goes_away_does_not_make_simulate_panic() {
    let app = spawn_app(&[]).await;
    let target = format!("{}/callback", app.base);
    let outcome = actix_web::web::block(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_css-push-exporter"))
            .args(["simulate", "--target", &target, "--count", "3", "--rate", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("binary runs");
        // `simulate | head -c0`: the reader is gone before the summary.
        drop(child.stdout.take());
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("simulate did not finish within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    assert!(outcome.status.success(), "{}: {stderr}", outcome.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        app.metrics().await.get("css_push_callbacks_total", &[("event_type", "321"), ("outcome", "accepted")]),
        Some(3.0)
    );
    app.stop().await;
}

#[test]
fn nonsense_flags_are_refused() {
    for flags in [
        &["--rate", "-1"][..],
        &["--rate", "NaN"],
        &["--streams", "0"],
        &["--concurrency", "0"],
        &["--duration", "soon"],
        &["--report-interval", "0s"],
    ] {
        let parsed = SimulateArgs::try_parse_from(["simulate"].iter().chain(flags));
        assert!(parsed.is_err(), "{flags:?} accepted");
    }
}

#[test]
fn the_binary_fails_when_the_target_is_unreachable() {
    // Port 9 (discard) on loopback: nothing listens there in a test sandbox.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_css-push-exporter"))
        .args(["simulate", "--target", "http://127.0.0.1:9/callback", "--count", "3", "--rate", "0"])
        .output()
        .expect("binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("0 push error callbacks") && stdout.contains("3 failed"), "{stdout}");
}
