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
