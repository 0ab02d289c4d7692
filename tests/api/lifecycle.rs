//! Push start / end callbacks: live streams and how pushes end.
use crate::helpers::*;
use css_push_exporter::callback_body::{Lifecycle, USER_IP};
use serde_json::{json, Value};

fn start(stream: &str, sequence: &str, at: u64) -> String {
    Lifecycle::start("push.example.com", "live", stream, sequence, at).body()
}

/// A push end with `push_duration` as given: a string as CSS sends it, a
/// number, or something wrong.
fn end(stream: &str, sequence: &str, at: u64, errcode: i64, duration_ms: Value) -> String {
    let mut body = Lifecycle::start("push.example.com", "live", stream, sequence, at)
        .end(0, errcode, "recv rtmp deleteStream")
        .json();
    body["push_duration"] = duration_ms;
    body.to_string()
}

const APP: [(&str, &str); 2] = [("domain", "push.example.com"), ("app", "live")];

fn stream_labels(stream: &str) -> [(&str, &str); 3] {
    [APP[0], APP[1], ("stream", stream)]
}

#[actix_web::test]
async fn start_errors_end() {
    let app = spawn_app(&[]).await;
    assert_eq!(app.post(start("room-1", "seq-1", NOW_SECS)).await.0, 200);
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_streams_live", &APP), Some(1.0));
    assert_eq!(m.get("css_push_stream_live", &stream_labels("room-1")), Some(1.0));
    assert_eq!(m.get("css_push_stream_starts_total", &APP), Some(1.0));

    let errors = push_error(
        "push.example.com",
        "live",
        "room-1",
        NOW_SECS.cast_signed() * 1000,
        json!([{"type": 10, "count": 3}]),
    );
    assert_eq!(app.post(errors.to_string()).await.0, 200);
    let m = app.metrics().await;
    assert_eq!(
        m.get("css_push_errors_total", &[("stream", "room-1"), ("error", "video_codec_header_missing")]),
        Some(3.0)
    );
    assert_eq!(m.get("css_push_streams", &[]), Some(1.0), "errors and liveness share one stream entry");

    assert_eq!(app.post(end("room-1", "seq-1", NOW_SECS + 120, 1, json!("120000"))).await.0, 200);
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_streams_live", &APP), Some(0.0));
    assert_eq!(m.get("css_push_stream_live", &stream_labels("room-1")), Some(0.0));
    assert_eq!(m.get("css_push_stream_ends_total", &[APP[0], APP[1], ("errcode", "1")]), Some(1.0));
    assert_eq!(m.get("css_push_session_duration_seconds_sum", &APP), Some(120.0));
    assert_eq!(m.get("css_push_session_duration_seconds_bucket", &[APP[0], APP[1], ("le", "60")]), Some(0.0));
    assert_eq!(m.get("css_push_session_duration_seconds_bucket", &[APP[0], APP[1], ("le", "300")]), Some(1.0));
    assert_eq!(m.get("css_push_callbacks_total", &[("event_type", "1"), ("outcome", "accepted")]), Some(1.0));
    assert_eq!(m.get("css_push_callbacks_total", &[("event_type", "0"), ("outcome", "accepted")]), Some(1.0));
    assert!(!m.text.contains(USER_IP) && !m.text.contains("txSecret") && !m.text.contains("f5828cd4a8a09109"));
    app.stop().await;
}

#[actix_web::test]
async fn a_start_after_a_missed_end_does_not_double_count() {
    let app = spawn_app(&[]).await;
    app.post(start("room-1", "seq-1", NOW_SECS)).await;
    app.post(start("room-2", "seq-9", NOW_SECS)).await;
    // room-1's end was lost; it reconnects with a new session.
    app.post(start("room-1", "seq-2", NOW_SECS + 60)).await;
    assert_eq!(app.metrics().await.get("css_push_streams_live", &APP), Some(2.0));
    // The lost end finally arrives (a retry): the new session goes on.
    app.post(end("room-1", "seq-1", NOW_SECS + 59, 0, json!(59000))).await;
    assert_eq!(app.metrics().await.get("css_push_stream_live", &stream_labels("room-1")), Some(1.0));
    app.post(end("room-1", "seq-2", NOW_SECS + 90, 0, json!(30000))).await;
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_streams_live", &APP), Some(1.0));
    assert_eq!(m.get("css_push_stream_starts_total", &APP), Some(3.0));
    assert_eq!(m.get("css_push_stream_ends_total", &[APP[0], APP[1], ("errcode", "0")]), Some(2.0));
    app.stop().await;
}

#[actix_web::test]
async fn duplicates_and_late_retries_change_nothing() {
    let app = spawn_app(&[]).await;
    app.post(start("room-1", "seq-1", NOW_SECS)).await;
    let (status, answer) = app.post(start("room-1", "seq-1", NOW_SECS)).await;
    assert_eq!((status, answer), (200, json!({"code": 0})));
    app.post(end("room-1", "seq-1", NOW_SECS + 10, 0, json!("10000"))).await;
    app.post(end("room-1", "seq-1", NOW_SECS + 10, 0, json!("10000"))).await;
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_stream_starts_total", &APP), Some(1.0));
    assert_eq!(m.get("css_push_stream_ends_total", &[APP[0], APP[1], ("errcode", "0")]), Some(1.0));
    assert_eq!(m.get("css_push_session_duration_seconds_count", &APP), Some(1.0));
    assert_eq!(m.sum("css_push_callbacks_total", &[("outcome", "duplicate")]), 2.0);
    assert_eq!(m.get("css_push_streams_live", &APP), Some(0.0));
    app.stop().await;
}

#[actix_web::test]
async fn an_end_overtaking_its_start_leaves_the_stream_ended() {
    let app = spawn_app(&[]).await;
    app.post(end("room-1", "seq-1", NOW_SECS + 10, 0, json!(10000))).await;
    app.post(start("room-1", "seq-1", NOW_SECS)).await;
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_streams_live", &APP), Some(0.0));
    assert_eq!(m.get("css_push_stream_live", &stream_labels("room-1")), Some(0.0));
    app.stop().await;
}

#[actix_web::test]
async fn errcodes_are_bounded_and_bad_lifecycle_bodies_refused() {
    let app = spawn_app(&[]).await;
    app.post(end("room-1", "seq-1", NOW_SECS, 123456, json!(1000))).await;
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_stream_ends_total", &[APP[0], APP[1], ("errcode", "other")]), Some(1.0));
    let (status, answer) = app.post(end("room-1", "seq-2", NOW_SECS, 0, json!("-5"))).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("push_duration: must not be negative"), "{answer}");
    let (status, answer) = app.post(json!({"event_type": 1, "stream_id": "s"}).to_string()).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("event_time"), "{answer}");
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_callbacks_total", &[("event_type", "0"), ("outcome", "malformed")]), Some(1.0));
    assert_eq!(m.get("css_push_callbacks_total", &[("event_type", "1"), ("outcome", "malformed")]), Some(1.0));
    assert_eq!(m.get("css_push_stream_starts_total", &APP), None);
    app.stop().await;
}

#[actix_web::test]
async fn live_streams_survive_the_error_ttl_but_not_the_live_ttl() {
    let app = spawn_app(&["--stream-ttl", "1h", "--live-stream-ttl", "24h"]).await;
    app.post(start("room-1", "seq-1", NOW_SECS)).await;
    app.post(
        push_error(
            "push.example.com",
            "live",
            "room-2",
            NOW_SECS.cast_signed() * 1000,
            json!([{"type": 1, "count": 1}]),
        )
        .to_string(),
    )
    .await;
    app.clock.advance(std::time::Duration::from_secs(2 * 3600));
    let gone = app
        .wait_for(|m| {
            m.get("css_push_stream_live", &stream_labels("room-2")).is_none()
                && m.sum("css_push_errors_total", &[("stream", "room-2")]) == 0.0
        })
        .await;
    assert_eq!(gone.get("css_push_stream_live", &stream_labels("room-1")), Some(1.0), "a clean push keeps its stream");
    app.clock.advance(std::time::Duration::from_secs(23 * 3600));
    let gone = app.wait_for(|m| m.get("css_push_stream_live", &stream_labels("room-1")).is_none()).await;
    assert_eq!(gone.get("css_push_streams_expired_total", &[]), Some(2.0));
    app.stop().await;
}
