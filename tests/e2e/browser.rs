//! The status page (`GET /`) as headless Chromium renders it: the warning
//! banner, refused reasons, stream names as text, and a screenshot.
use crate::helpers::*;
use crate::tools::require;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs Chromium headless on `url` with `args` (bounded to 90 s); its stdout.
fn chromium(binary: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let profile = format!("--user-data-dir={}", profile.display());
    let mut child = Command::new(binary)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", &profile])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "chromium failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

#[actix_web::test]
#[ignore = "needs chromium: bash .ci/run installs it"]
async fn a_real_browser_renders_the_page() {
    let chromium_bin = require("chromium");
    // No key: the page must warn.
    let app = spawn_app(&[]).await;
    let start = push_lifecycle("push.example.com", "live", "room-1001", "seq-1", None);
    assert_eq!(app.post(start.to_string()).await.0, 200);
    let report = push_error("push.example.com", "live", "room-<b>1001</b>", 1_764_000_000_000, late_video(3046));
    assert_eq!(app.post(report.to_string()).await.0, 200);
    let mut bad = push_error("push.example.com", "live", "room-1001", 1_764_000_000_001, late_video(3046));
    bad["abnormal_event"][0]["count"] = (-2).into();
    assert_eq!(app.post(bad.to_string()).await.0, 400);

    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/", app.metrics_base);
    let (binary, profile) = (chromium_bin.clone(), dir.path().to_owned());
    let dom = actix_web::web::block(move || chromium(&binary, &profile, &["--dump-dom"], &url)).await.unwrap();
    assert!(dom.contains("Callbacks are not authenticated."), "no warning banner:\n{dom}");
    assert!(dom.contains("abnormal_event[0].count: must not be negative, got -2"), "no refused reason:\n{dom}");
    assert!(dom.contains("room-&lt;b&gt;1001&lt;/b&gt;"), "the stream name, as text:\n{dom}");
    assert!(!dom.contains("<b>1001</b>"), "a stream name became markup");
    // The incident summary and the top streams lead the page.
    let summary = dom.find("1 of 1 live stream<").expect("the incident summary");
    let top = dom.find("id=\"top\"").expect("the top streams");
    assert!(summary < top && top < dom.find("id=\"refused\"").unwrap(), "{dom}");

    // A screenshot for a reviewer, kept beside the test binaries.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let (binary, profile, url) = (chromium_bin, dir.path().to_owned(), format!("{}/", app.metrics_base));
    let arg = format!("--screenshot={}", shot.display());
    actix_web::web::block(move || chromium(&binary, &profile, &[&arg, "--window-size=1280,2000"], &url)).await.unwrap();
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    eprintln!("status page screenshot: {}", shot.display());
    app.stop().await;
}

/// A stream's page (`GET /streams/...`), reached from the status page's
/// link, as Chromium renders it: the state in words, the timeline's
/// session and bad-interval bars, the support summary, names as text; and
/// a screenshot.
#[actix_web::test]
#[ignore = "needs chromium: bash .ci/run installs it"]
async fn a_real_browser_renders_a_streams_page() {
    use css_push_exporter::callback_body::{Lifecycle, PushError};
    use css_push_exporter::clock::Clock;
    let chromium_bin = require("chromium");
    let app = spawn_app(&[]).await;
    let (domain, stream) = ("push.example.com", "stage/<b>1</b>");
    let t0 = NOW_SECS;
    let post = |body: serde_json::Value| {
        let app = &app;
        async move { assert_eq!(app.post(body.to_string()).await.0, 200, "{body}") }
    };
    // Where the manual clock is, minutes and seconds after t0.
    let minute = |m: u64, s: u64| t0 + m * 60 + s;
    let go_to = |at: u64| app.clock.advance(Duration::from_secs(at - app.clock.now_secs()));
    let start = |sequence: &str, at: u64| Lifecycle::start(domain, "live", stream, sequence, at);
    let bad = |sequence: &str, at: u64| {
        let ms = i64::try_from(at * 1000).unwrap();
        PushError::new(domain, "live", stream, ms).sequence(sequence).events(late_video(3046)).json()
    };
    // A: pushing from t0, bad twice, cut off by the pusher's network at 50 min.
    post(start("seq-A", t0).json()).await;
    for (m, reports) in [(10, 7), (25, 5)] {
        for i in 0..reports {
            go_to(minute(m, 5 * i));
            post(bad("seq-A", minute(m, 5 * i))).await;
        }
    }
    go_to(minute(50, 0));
    post(start("seq-A", t0).end(50 * 60_000, 13, "network").json()).await;
    // B: from another node overseas, bad once, stopped by the pusher.
    go_to(minute(52, 0));
    let mut b = start("seq-B", minute(52, 0)).json();
    (b["node"], b["set_id"]) = ("203.0.113.9".into(), 8.into());
    post(b.clone()).await;
    for i in 0..6 {
        go_to(minute(60, 5 * i));
        post(bad("seq-B", minute(60, 5 * i))).await;
    }
    go_to(minute(90, 0));
    b["event_type"] = 0.into();
    (b["errcode"], b["push_duration"]) = (1.into(), "2280000".into());
    post(b).await;
    // C: live, bad for the last four minutes.
    go_to(minute(95, 0));
    post(start("seq-C", minute(95, 0)).json()).await;
    for i in 0..48 {
        go_to(minute(110, 5 * i));
        post(bad("seq-C", minute(110, 5 * i))).await;
    }
    go_to(minute(114, 10));

    let dir = tempfile::tempdir().unwrap();
    let render = |url: String, args: Vec<String>| {
        let (binary, profile) = (chromium_bin.clone(), dir.path().to_owned());
        actix_web::web::block(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            chromium(&binary, &profile, &args, &url)
        })
    };
    let status = render(format!("{}/", app.metrics_base), vec!["--dump-dom".into()]).await.unwrap();
    let href = "streams/push.example.com/live/stage%2F%3Cb%3E1%3C%2Fb%3E";
    assert!(status.contains(&format!("href=\"{href}\"")), "the status page links the stream:\n{status}");
    let url = format!("{}/{href}", app.metrics_base);
    let dom = render(url.clone(), vec!["--dump-dom".into()]).await.unwrap();
    assert!(dom.contains("id=\"state\">Bad since 2025-11-24T17:49:55Z (4 min 15 s)</p>"), "{dom}");
    assert!(dom.contains("stage/&lt;b&gt;1&lt;/b&gt;") && !dom.contains("<b>1</b>"), "the name is text:\n{dom}");
    assert!(!dom.contains("<script"), "no script");
    for class in ["s-cut", "s-ended", "s-live"] {
        assert_eq!(dom.matches(&format!("<div class=\"{class}\"")).count(), 1, "{class}:\n{dom}");
    }
    assert_eq!(dom.matches("<div class=\"b\"").count(), 4, "A twice, B and C once:\n{dom}");
    for said in [
        "1. sequence seq-A, node 198.51.100.20 (mainland)",
        "end 2025-11-24T16:50:00Z with errcode 13 (pusher_network), 50 min",
        "2. sequence seq-B, node 203.0.113.9 (overseas)",
        "bad 2025-11-24T17:49:55Z to 2025-11-24T17:53:55Z (4 min, 48 reports)",
    ] {
        assert!(dom.contains(said), "{said:?} not in the summary:\n{dom}");
    }

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stream-page.png");
    let _ = std::fs::remove_file(&shot);
    let args = vec![format!("--screenshot={}", shot.display()), "--window-size=1280,1000".into()];
    render(url, args).await.unwrap();
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    eprintln!("stream page screenshot: {}", shot.display());
    app.stop().await;
}
