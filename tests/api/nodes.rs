//! Where push breaks, per CSS access node, over HTTP: reports and ends
//! joined to their session's node and region, the join kept across a
//! restart with `--state-file`, the node bound, and no `user_ip` anywhere.
use crate::binary::Binary;
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

const DOMAIN: &str = "d.example.com";
/// Two access nodes, one in the mainland (set_id 2), one outside (set_id 50).
const A: [(&str, &str); 2] = [("node", "198.51.100.1"), ("region", "mainland")];
const B: [(&str, &str); 2] = [("node", "198.51.100.2"), ("region", "overseas")];
/// The pusher's address in every body: personal data, never shown.
const PUSHER_IP: &str = "192.0.2.77";

/// A push start of `stream` (session `sequence`) on `node` at `at` (Unix seconds).
fn start_on(stream: &str, sequence: &str, node: &str, set_id: i64, at: u64) -> Value {
    let mut body = push_lifecycle(DOMAIN, "live", stream, sequence, None);
    body["event_time"] = at.into();
    body["node"] = node.into();
    body["set_id"] = set_id.into();
    body["user_ip"] = PUSHER_IP.into();
    body
}

/// Its push end with `errcode`; the end's own `node` is not what counts.
fn end_of(stream: &str, sequence: &str, errcode: i64, at: u64) -> Value {
    let mut body = push_lifecycle(DOMAIN, "live", stream, sequence, Some((1000, errcode)));
    body["event_time"] = at.into();
    body["node"] = "203.0.113.99".into();
    body["user_ip"] = PUSHER_IP.into();
    body
}

/// A report of late video frames (bad for the push-health SLO) of session
/// `sequence`, ending at `at_ms`, 5 s long.
fn late_frames(stream: &str, sequence: &str, at_ms: u64) -> Value {
    let events = json!([{"type": 6, "count": 4}]);
    let mut body = push_error(DOMAIN, "live", stream, i64::try_from(at_ms).unwrap(), events);
    body["sequence"] = sequence.into();
    body["report_interval"] = 5000.into();
    body["user_ip"] = PUSHER_IP.into();
    body
}

fn with<'a>(node: [(&'a str, &'a str); 2], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut labels = node.to_vec();
    labels.extend_from_slice(extra);
    labels
}

async fn page(app: &TestApp, path: &str) -> String {
    let mut res = app.client.get(format!("{}{path}", app.metrics_base)).send().await.expect("request sent");
    assert_eq!(res.status().as_u16(), 200);
    String::from_utf8(res.body().limit(16 << 20).await.unwrap().to_vec()).unwrap()
}

async fn post_all(app: &TestApp, bodies: &[Value]) {
    for b in bodies {
        let (status, answer) = app.post(b.to_string()).await;
        assert_eq!(status, 200, "{answer}: {b}");
    }
}

#[actix_web::test]
async fn two_nodes_with_errors_on_one_only() {
    let app = spawn_app(&[]).await;
    let t = NOW_SECS;
    post_all(
        &app,
        &[
            start_on("a1", "qa1", A[0].1, 2, t),
            start_on("a2", "qa2", A[0].1, 2, t),
            start_on("b1", "qb1", B[0].1, 50, t),
            start_on("b2", "qb2", B[0].1, 50, t),
        ],
    )
    .await;
    app.clock.advance(Duration::from_secs(100));
    // a1 is bad over [10, 40) s; b1 reports only errors no SLO counts bad.
    let mut reports: Vec<Value> = (0..6).map(|i| late_frames("a1", "qa1", (t + 15 + 5 * i) * 1000)).collect();
    let mut harmless =
        push_error(DOMAIN, "live", "b1", i64::try_from((t + 50) * 1000).unwrap(), json!([{"type": 5, "count": 1}]));
    harmless["sequence"] = "qb1".into();
    reports.push(harmless);
    post_all(&app, &reports).await;

    let m = app.metrics().await;
    let slo = [("slo", "push-health")];
    assert_eq!(m.get("css_push_node_bad_seconds_total", &with(A, &slo)), Some(30.0));
    assert_eq!(m.get("css_push_node_bad_seconds_total", &with(B, &slo)), Some(0.0), "no error on B counts bad");
    for node in [A, B] {
        assert_eq!(m.get("css_push_node_live_seconds_total", &node), Some(200.0), "{node:?}");
        assert_eq!(m.get("css_push_node_streams_live", &node), Some(2.0), "{node:?}");
    }
    assert_eq!(m.get("css_push_node_reports_total", &A), Some(6.0));
    assert_eq!(m.get("css_push_node_reports_total", &B), Some(1.0));
    // The nodes' bad and live time is the pairs' (no outage gap here).
    let pair = [("domain", DOMAIN), ("app", "live"), ("slo", "push-health")];
    assert_eq!(m.get("css_push_bad_seconds_total", &pair), Some(30.0));
    assert_eq!(m.sum("css_push_node_live_seconds_total", &[]), m.get("css_push_live_seconds_total", &pair).unwrap());
    assert_eq!(m.get("css_push_nodes_tracked", &[]), Some(2.0));
    assert_eq!(m.label_values("css_push_node_streams_live", "node").len(), 2, "no unknown or other yet");

    // The status page: the bad node first, with its share against the rest.
    let status: Value = serde_json::from_str(&page(&app, "/api/v1/status").await).unwrap();
    let nodes = status["nodes"].as_array().unwrap();
    let rows: Vec<(&str, &str, u64, u64)> = nodes
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap();
            (s("node"), s("region"), n["live_streams"].as_u64().unwrap(), n["bad_seconds"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(rows, [(A[0].1, "mainland", 2, 30), (B[0].1, "overseas", 2, 0)]);
    assert_eq!(nodes[0]["last_bad"], t + 40, "the end of the last bad report");
    assert!((nodes[0]["bad_share"].as_f64().unwrap() - 0.15).abs() < 1e-9, "{}", nodes[0]);
    // What a support ticket needs besides the node: the streams on it.
    assert_eq!(
        nodes[0]["streams"],
        json!([{"domain": DOMAIN, "app": "live", "stream": "a1", "bad_seconds": 30, "page": format!("streams/{DOMAIN}/live/a1")}])
    );
    assert_eq!(nodes[1]["streams"], json!([]));
    let html = page(&app, "/").await;
    let table = &html[html.find("id=\"nodes\"").expect("the node table")..];
    assert!(table.find(A[0].1).unwrap() < table.find(B[0].1).unwrap(), "the bad node first");
    assert!(table.contains("15.00%") && table.contains("Fleet: <strong>7.50%</strong>"), "{table}");
    assert!(table.contains("<strong>a1</strong></a></span> <span class=\"muted\">30 s"), "{table}");

    // Personal data stays out of every page; set_id shows only as the region.
    let metrics = app.metrics().await.text;
    for (what, page) in [("/metrics", &metrics), ("/", &html), ("/api/v1/status", &status.to_string())] {
        assert!(!page.contains(PUSHER_IP), "{what} shows the pusher's user_ip");
        assert!(!page.contains("set_id"), "{what} shows set_id");
    }
    app.stop().await;
}

#[actix_web::test]
async fn ends_count_by_cause_on_their_sessions_node() {
    let app = spawn_app(&[]).await;
    let t = NOW_SECS;
    let starts: Vec<Value> = ["s1", "s5", "s13"].iter().map(|s| start_on(s, &format!("q-{s}"), A[0].1, 2, t)).collect();
    post_all(&app, &starts).await;
    app.clock.advance(Duration::from_secs(60));
    // The ends name another node in their own body: the session's node counts.
    post_all(
        &app,
        &[end_of("s1", "q-s1", 1, t + 60), end_of("s5", "q-s5", 5, t + 60), end_of("s13", "q-s13", 13, t + 60)],
    )
    .await;
    // An end of a session never seen starting, and a report of one.
    post_all(&app, &[end_of("ghost", "q-ghost", 5, t + 60), late_frames("ghost", "q-ghost", (t + 60) * 1000)]).await;

    let m = app.metrics().await;
    let ends = |node, cause| m.get("css_push_node_stream_ends_total", &with(node, &[("cause", cause)]));
    assert_eq!(ends(A, "pusher_stopped"), Some(1.0));
    assert_eq!(ends(A, "css_internal"), Some(1.0));
    assert_eq!(ends(A, "pusher_network"), Some(1.0));
    assert_eq!(ends(A, "access_refused"), Some(0.0), "every cause from 0");
    let unknown = [("node", "unknown"), ("region", "unknown")];
    assert_eq!(ends(unknown, "css_internal"), Some(1.0), "no start seen: node unknown");
    assert_eq!(m.get("css_push_node_reports_total", &unknown), Some(1.0));
    assert_eq!(m.get("css_push_node_stream_ends_total", &with(B, &[("cause", "css_internal")])), None);
    assert_eq!(m.label_values("css_push_node_streams_live", "node").len(), 2, "A and unknown only: {}", m.text);
    assert_eq!(m.get("css_push_node_streams_live", &A), Some(0.0));
    assert_eq!(m.get("css_push_node_live_seconds_total", &A), Some(180.0));
    app.stop().await;
}

#[test]
fn the_join_survives_a_restart_with_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let flags = ["--state-file", state.to_str().unwrap()];
    let before = Binary::start(&flags);
    let now = now_ms().cast_unsigned() / 1000;
    assert_eq!(before.post(&start_on("a1", "qa1", A[0].1, 2, now)), 200);
    before.wait_for(|m| m.get("css_push_node_streams_live", &A) == Some(1.0));
    let (status, log) = before.terminate();
    assert!(status.success(), "{status}: {log}");

    let after = Binary::start(&flags);
    assert_eq!(after.metrics().get("css_push_node_streams_live", &A), Some(1.0), "the live session is restored");
    // Reports after the restart still find the session's node.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(after.post(&late_frames("a1", "qa1", now_ms().cast_unsigned())), 200);
    let m = after.wait_for(|m| m.get("css_push_node_reports_total", &A) == Some(1.0));
    let bad = m.get("css_push_node_bad_seconds_total", &with(A, &[("slo", "push-health")])).unwrap();
    assert!(bad > 0.0 && bad <= 5.0, "bad time since the restart, on A: {bad}");
    assert_eq!(m.get("css_push_node_reports_total", &[("node", "unknown"), ("region", "unknown")]), None);
    // And its end is A's.
    assert_eq!(after.post(&end_of("a1", "qa1", 5, now_ms().cast_unsigned() / 1000)), 200);
    let m = after.wait_for(|m| m.get("css_push_node_streams_live", &A) == Some(0.0));
    assert_eq!(m.get("css_push_node_stream_ends_total", &with(A, &[("cause", "css_internal")])), Some(1.0));
    after.kill();
}

#[actix_web::test]
async fn three_thousand_nodes_stay_bounded() {
    let app = spawn_app(&[]).await;
    for i in 0..3000u32 {
        let node = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        let (status, _) = app.post(start_on(&format!("s{i}"), "q", &node, 2, NOW_SECS).to_string()).await;
        assert_eq!(status, 200);
    }
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_nodes_tracked", &[]), Some(1024.0));
    assert_eq!(m.get("css_push_nodes_limit", &[]), Some(1024.0));
    let other = [("node", "other"), ("region", "mainland")];
    assert_eq!(m.get("css_push_node_streams_live", &other), Some(3000.0 - 1024.0));
    assert_eq!(m.get("css_push_node_overflow_total", &[]), Some(3000.0 - 1024.0));
    assert_eq!(m.count("css_push_node_streams_live"), 1025, "1024 nodes and other");
    assert_eq!(m.sum("css_push_node_streams_live", &[]), 3000.0, "every session counted");
    // Each node's series are in the budget: 12 + one per SLO.
    let series = m.get("css_push_series", &[]).unwrap();
    assert!(series >= 1025.0 * 13.0, "{series}");
    app.stop().await;
}
