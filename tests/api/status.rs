//! The status page (`GET /`) and its JSON (`GET /api/v1/status`): what
//! reached the exporter, refused callbacks with their reasons and no
//! secrets, bounded rings, the same protection as /metrics (the page in a
//! real browser: `tests/e2e/browser.rs`).
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const KEY: &str = "status-page-test-key-7f3a";

async fn status(app: &TestApp) -> Value {
    let (code, body) = get(app, "/api/v1/status", None).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// The refused entry with `outcome`, which must be there.
fn refused<'a>(s: &'a Value, outcome: &str) -> &'a Value {
    let all = s["refused"].as_array().unwrap();
    all.iter().find(|r| r["outcome"] == outcome).unwrap_or_else(|| panic!("no {outcome} in {all:?}"))
}

#[actix_web::test]
async fn each_callback_is_listed_with_its_outcome_and_reason_and_no_secret() {
    let app = spawn_app(&["--callback-key", KEY]).await;
    let body =
        |stream: &str, n: i64| push_error("push.example.com", "live", stream, 1_764_000_000_000 + n, late_video(3046));
    let good = signed(body("room-1001", 1), KEY, 600);
    let badly_signed = signed(body("room-2002", 2), "a-guessed-key", 600);
    let mut malformed = signed(body("room-3003", 3), KEY, 600);
    malformed["abnormal_event"] = "x".repeat(2000).into();
    let mut ignored = signed(body("room-4004", 4), KEY, 600);
    ignored["event_type"] = 100.into();
    for (what, body, code) in [
        ("signed", &good, 200),
        ("badly signed", &badly_signed, 401),
        ("malformed", &malformed, 400),
        ("ignored", &ignored, 200),
    ] {
        assert_eq!(app.post(body.to_string()).await.0, code, "{what}");
    }
    app.clock.advance(Duration::from_secs(7));
    let s = status(&app).await;

    let tallies: Vec<_> = s["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["event_type"].as_str().unwrap(), c["outcome"].as_str().unwrap(), c["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        tallies,
        [("321", "accepted", 1), ("321", "malformed", 1), ("321", "unauthorized", 1), ("100", "ignored", 1)]
    );
    assert!(s["callbacks"].as_array().unwrap().iter().all(|c| c["seconds_ago"] == 7), "{}", s["callbacks"]);

    assert_eq!(s["refused"].as_array().unwrap().len(), 2, "{}", s["refused"]);
    let unauthorized = refused(&s, "unauthorized");
    assert_eq!(unauthorized["reason"], "unauthorized: sign does not match");
    assert_eq!((&unauthorized["peer"], &unauthorized["event_type"]), (&json!("127.0.0.1"), &json!("321")));
    assert_eq!((&unauthorized["first_seen"], &unauthorized["last_seen"]), (&json!(NOW_SECS), &json!(NOW_SECS)));
    assert_eq!((&unauthorized["count"], &unauthorized["seconds_ago"]), (&json!(1), &json!(7)));
    let reason = refused(&s, "malformed")["reason"].as_str().unwrap();
    assert!(reason.starts_with("abnormal_event: invalid type: string \"xxxx"), "{reason}");
    assert!(reason.contains(&format!("{}…\"", "x".repeat(64))) && reason.len() < 200, "{reason}");

    let reports = s["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "only the accepted report: {reports:?}");
    assert_eq!(
        reports[0],
        json!({"time": NOW_SECS, "seconds_ago": 7, "domain": "push.example.com", "app": "live", "stream": "room-1001",
               "errors": [{"error_type": "1", "error": "video_timestamp_rollback", "count": 1},
                          {"error_type": "6", "error": "video_frame_late", "count": 2}],
               "total_errors": 3, "worst_frame_gap_seconds": 3.046, "page": "streams/push.example.com/live/room-1001"})
    );
    assert_eq!(
        s["top_streams"]["streams"],
        json!([{"domain": "push.example.com", "app": "live", "stream": "room-1001", "errors": 3, "reports": 1,
                "first_seen": NOW_SECS, "last_seen": NOW_SECS, "seconds_ago": 7,
                "page": "streams/push.example.com/live/room-1001"}])
    );
    assert_eq!(s["callbacks_authenticated"], true);
    let bounds: Vec<_> = s["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["flag"].as_str().unwrap(), b["used"].as_u64().unwrap()))
        .collect();
    let flags: Vec<_> = bounds.iter().map(|b| b.0).collect();
    let expected = [
        "--max-streams",
        "--max-series",
        "--max-apps",
        "--max-live-streams",
        "--dedup-capacity",
        "--max-nodes",
        "--timeline-max-bytes",
    ];
    assert_eq!(flags, expected);
    assert_eq!([bounds[0].1, bounds[2].1, bounds[3].1, bounds[4].1, bounds[5].1], [1, 1, 0, 1, 0]);
    assert!(bounds[1].1 > 0, "the stream's and its pair's series are counted");
    assert!(bounds[6].1 > 0, "the stream's history is counted");

    // Nothing secret, in the JSON or on the page.
    let (_, page) = get(&app, "/", None).await;
    for text in [s.to_string(), page] {
        for secret in [KEY, "txSecret", "f5828cd4a8a09109304b060172fb3960", "203.0.113.7", "stream_param"] {
            assert!(!text.contains(secret), "{secret} leaked");
        }
        for sign in [&good, &badly_signed, &malformed, &ignored].map(|b| b["sign"].as_str().unwrap()) {
            assert!(!text.contains(sign), "a sign leaked");
        }
    }
    app.stop().await;
}

#[actix_web::test]
async fn what_is_kept_stays_bounded_under_ten_thousand_callbacks() {
    let app = spawn_app(&["--callback-key", KEY]).await;
    let total = 10_000;
    // Half accepted, each from its own stream (more than are tracked), half
    // refused; eight in flight.
    let bodies: Vec<String> = (0..total)
        .map(|i: i64| {
            let key = if i % 2 == 0 { KEY } else { "wrong" };
            let body =
                push_error("d.example.com", "live", &format!("s{}", i / 2), 1_764_000_000_000 + i, late_video(1500));
            signed(body, key, 600).to_string()
        })
        .collect();
    let started = Instant::now();
    for chunk in bodies.chunks(8) {
        let answers = futures_util::future::join_all(chunk.iter().map(|b| app.post(b.clone()))).await;
        assert!(answers.iter().all(|(code, _)| *code == 200 || *code == 401));
    }
    assert!(started.elapsed() < Duration::from_secs(120), "10 000 callbacks took {:?}", started.elapsed());
    let s = status(&app).await;
    let counted: u64 = s["callbacks"].as_array().unwrap().iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 10_000);
    // One sender, one reason: one row, whatever the flood.
    let refused = s["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!((&refused[0]["count"], &refused[0]["peer"]), (&json!(5000), &json!("127.0.0.1")));
    assert_eq!(s["reports"].as_array().unwrap().len(), 20);
    // 5000 streams: 4096 tracked, the reports of the others counted as dropped.
    let top = &s["top_streams"];
    assert_eq!(
        [&top["streams_tracked"], &top["streams_tracked_limit"], &top["streams_with_errors"]],
        [&json!(4096), &json!(4096), &json!(4096)]
    );
    assert_eq!((&top["dropped_reports"], &top["dropped_errors"]), (&json!(904), &json!(904 * 3)));
    assert_eq!(top["streams"].as_array().unwrap().len(), 10);
    // No push start seen: no live time, so no share (never "100 %").
    let slo = json!({"bad_seconds": 0, "error_free": null, "live_seconds": 0, "outage_seconds": 0});
    assert_eq!(
        s["apps"],
        json!([{"domain": "d.example.com", "app": "live", "live": 0, "lifecycle_seen": false, "streams_with_errors": 4096, "slo": slo}])
    );
    let page = get(&app, "/", None).await.1;
    assert!(page.contains("id=\"dropped\"") && page.contains("904 reports"), "the page says what was dropped");
    app.stop().await;
}

/// POSTs `body` to /callback with `X-Forwarded-For: forwarded`.
async fn post_forwarded(app: &TestApp, body: &Value, forwarded: &str) -> u16 {
    let req = app.client.post(format!("{}/callback", app.base)).insert_header(("x-forwarded-for", forwarded));
    req.send_body(body.to_string()).await.expect("request sent").status().as_u16()
}

fn refused_rows(s: &Value) -> Vec<(String, String, u64)> {
    let rows = s["refused"].as_array().unwrap().iter();
    rows.map(|r| {
        (
            r["peer"].as_str().unwrap().to_owned(),
            r["outcome"].as_str().unwrap().to_owned(),
            r["count"].as_u64().unwrap(),
        )
    })
    .collect()
}

#[actix_web::test]
async fn refusals_are_grouped_by_the_sender_a_trusted_proxy_names() {
    let report = |n: i64| push_error("d.example.com", "live", "room-1", 1_764_000_000_000 + n, late_video(1500));
    // Behind a trusted proxy (the test's loopback peer), X-Forwarded-For
    // names the sender, read from the right past trusted hops.
    let app = spawn_app(&["--callback-key", KEY, "--trusted-proxy", "127.0.0.0/8,10.0.0.0/8"]).await;
    for n in 0..30 {
        assert_eq!(
            post_forwarded(&app, &signed(report(n), "guess", 600), "1.2.3.4, 198.51.100.23, 10.1.2.3").await,
            401
        );
    }
    app.clock.advance(Duration::from_secs(2));
    assert_eq!(post_forwarded(&app, &signed(report(100), "guess", 600), "192.0.2.44").await, 401);
    let mut expired = signed(report(101), KEY, 600);
    expired["t"] = (NOW_SECS - 3600).into();
    expired["sign"] = css_push_exporter::ingest::signature::sign(KEY, (NOW_SECS - 3600).cast_signed()).into();
    assert_eq!(post_forwarded(&app, &expired, "192.0.2.44").await, 401);
    // The header never changes authentication: a good signature still
    // passes, whoever the header names.
    assert_eq!(post_forwarded(&app, &signed(report(102), KEY, 600), "192.0.2.44").await, 200);
    let s = status(&app).await;
    assert_eq!(
        refused_rows(&s),
        [
            ("192.0.2.44".into(), "expired".into(), 1),
            ("192.0.2.44".into(), "unauthorized".into(), 1),
            ("198.51.100.23".into(), "unauthorized".into(), 30)
        ]
    );
    let flood = &s["refused"][2];
    assert_eq!(
        (&flood["first_seen"], &flood["last_seen"], &flood["seconds_ago"]),
        (&json!(NOW_SECS), &json!(NOW_SECS), &json!(2))
    );
    let page = get(&app, "/", None).await.1;
    assert!(!page.contains("1.2.3.4"), "an address the sender wrote itself is not believed");
    app.stop().await;

    // Without --trusted-proxy the header is ignored: the peer is the TCP peer.
    let app = spawn_app(&["--callback-key", KEY]).await;
    assert_eq!(post_forwarded(&app, &signed(report(0), "guess", 600), "198.51.100.23").await, 401);
    assert_eq!(refused_rows(&status(&app).await), [("127.0.0.1".into(), "unauthorized".into(), 1)]);
    app.stop().await;
}

#[actix_web::test]
async fn top_streams_cover_fifteen_minutes_and_apps_count_streams_with_recent_errors() {
    let app = spawn_app(&[]).await;
    let report =
        |stream: &str, n: i64| push_error("d.example.com", "live", stream, 1_764_000_000_000 + n, late_video(1500));
    for stream in ["a", "b", "c", "d"] {
        assert_eq!(app.post(push_lifecycle("d.example.com", "live", stream, "seq", None).to_string()).await.0, 200);
    }
    // A loud stream 14 minutes ago, two quieter ones now.
    for n in 0..20 {
        assert_eq!(app.post(report("a", n).to_string()).await.0, 200);
    }
    app.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(app.post(report("b", 100).to_string()).await.0, 200);
    assert_eq!(app.post(report("c", 101).to_string()).await.0, 200);
    let s = status(&app).await;
    let top: Vec<_> = s["top_streams"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["stream"].as_str().unwrap(), t["errors"].as_u64().unwrap(), t["reports"].as_u64().unwrap()))
        .collect();
    assert_eq!(top, [("a", 60, 20), ("b", 3, 1), ("c", 3, 1)], "all 15 minutes count, however few reports");
    assert_eq!(s["top_streams"]["window_seconds"], 900);
    // The SLO's share: live time from the push starts; these reports' data_time
    // falls before the sessions began, so no second of them is bad.
    let slo = json!({"bad_seconds": 0, "error_free": 1.0, "live_seconds": 3360, "outage_seconds": 0});
    assert_eq!(
        s["apps"],
        json!([{"domain": "d.example.com", "app": "live", "live": 4, "lifecycle_seen": true, "streams_with_errors": 2, "slo": slo}])
    );
    let page = get(&app, "/", None).await.1;
    assert!(page.contains("2 of 4 live streams"), "{page}");

    // Two minutes on, the loud stream's minute has left the window.
    app.clock.advance(Duration::from_secs(2 * 60));
    let s = status(&app).await;
    let top: Vec<_> = s["top_streams"]["streams"].as_array().unwrap().iter().map(|t| t["stream"].clone()).collect();
    assert_eq!(top, [json!("b"), json!("c")]);
    assert_eq!(s["apps"][0]["streams_with_errors"], 2);
    // Over five minutes after their errors, the streams count as recovered.
    app.clock.advance(Duration::from_secs(4 * 60));
    let s = status(&app).await;
    // Four live streams for the whole 15 minutes the share looks back.
    let slo = json!({"bad_seconds": 0, "error_free": 1.0, "live_seconds": 4 * 900, "outage_seconds": 0});
    assert_eq!(
        s["apps"],
        json!([{"domain": "d.example.com", "app": "live", "live": 4, "lifecycle_seen": true, "streams_with_errors": 0, "slo": slo}])
    );
    app.stop().await;
}

/// "None seen live" says no push start or end came (the callback template
/// lacks their URLs); a pair whose pushes all ended says so instead.
#[actix_web::test]
async fn a_pair_whose_pushes_ended_is_told_from_one_without_lifecycle_callbacks() {
    let app = spawn_app(&[]).await;
    let lifecycle = |stream: &str, end| push_lifecycle("d.example.com", "ended", stream, "seq", end).to_string();
    assert_eq!(app.post(lifecycle("a", None)).await.0, 200);
    assert_eq!(app.post(lifecycle("a", Some((60_000, 0)))).await.0, 200);
    for app_name in ["ended", "unseen"] {
        let report = push_error("d.example.com", app_name, "a", 1_764_000_000_000, late_video(1500));
        assert_eq!(app.post(report.to_string()).await.0, 200);
    }
    let s = status(&app).await;
    let seen: Vec<_> = s["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["app"].as_str().unwrap(), a["live"].as_u64().unwrap(), a["lifecycle_seen"].as_bool().unwrap()))
        .collect();
    assert_eq!(seen, [("ended", 0, true), ("unseen", 0, false)]);
    let page = get(&app, "/", None).await.1;
    assert!(page.contains("<td>1 stream; none live now</td>"), "{page}");
    assert!(page.contains("<td>1 stream; none seen live</td>"), "{page}");
    assert!(page.contains("2 streams in 2 (domain, app) pairs had errors"), "{page}");
    app.stop().await;
}

#[actix_web::test]
async fn the_status_page_sits_with_metrics_behind_the_same_guard() {
    let (app, _config) = spawn_guarded_app().await;
    for path in ["/", "/api/v1/status"] {
        assert_eq!(get(&app, path, None).await.0, 401, "{path} without credentials");
        assert_eq!(get(&app, path, Some(("prometheus", "wrong"))).await.0, 401, "{path}");
        let (code, body) = get(&app, path, Some(("prometheus", "pw"))).await;
        assert_eq!(code, 200, "{path}");
        assert!(body.contains("/api/v1/status"), "{path} lists the listeners: {body}");
        let res = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 404, "{path} is not on the callback listener");
    }
    app.stop().await;
}

#[actix_web::test]
async fn the_state_file_shows_when_there_is_one() {
    let app = spawn_app(&[]).await;
    assert_eq!(status(&app).await["state_file"], Value::Null);
    assert!(get(&app, "/", None).await.1.contains("--state-file</code> unset"));
    app.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let app = spawn_app(&["--state-file", path.to_str().unwrap(), "--state-interval", "1h"]).await;
    let s = status(&app).await;
    assert_eq!(s["state_file"]["path"], path.to_str().unwrap());
    assert_eq!(
        (s["state_file"]["writes_ok"].as_u64(), s["state_file"]["interval_seconds"].as_f64()),
        (Some(0), Some(3600.0))
    );
    assert_eq!(s["state_file"]["last_write"], Value::Null);
    let page = get(&app, "/", None).await.1;
    assert!(page.contains("id=\"state-file\"") && page.contains("not written yet"), "{page}");
    app.stop().await;
}
