//! Each stream's story (issue 26): `GET /api/v1/streams/{domain}/{app}/{stream}`
//! and the stream page, over real HTTP: sessions and their merged bad
//! intervals, the bounds and what they drop, names escaped and capped as
//! labels, 404s, and a restart through the state file (the page in a real
//! browser: `tests/e2e/browser.rs`).
use crate::helpers::*;
use css_push_exporter::callback_body::{Lifecycle, PushError};
use css_push_exporter::text::url::stream_page;
use serde_json::{json, Value};
use std::time::Duration;

const T: i64 = NOW_SECS.cast_signed() * 1000;
const D: &str = "push.example.com";

fn start(stream: &str, sequence: &str, event_time: i64) -> Lifecycle {
    Lifecycle::start(D, "live", stream, sequence, event_time.cast_unsigned())
}

/// A report of `stream` in session `sequence` at `data_time` (ms after T):
/// two late video frames (a 3.046 s gap) and a timestamp rollback.
fn bad(stream: &str, sequence: &str, data_time: i64) -> PushError {
    PushError::new(D, "live", stream, T + data_time).sequence(sequence).events(late_video(3046))
}

async fn post(app: &TestApp, body: Value) {
    assert_eq!(app.post(body.to_string()).await.0, 200, "{body}");
}

/// The API's answer for the stream, which must exist.
async fn history(app: &TestApp, domain: &str, stream: &str) -> Value {
    let (code, body) = get(app, &format!("/api/v1/{}", stream_page(domain, "live", stream)), None).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

fn intervals(session: &Value) -> Vec<(i64, i64, u64)> {
    let all = session["bad_intervals"].as_array().unwrap();
    all.iter()
        .map(|iv| {
            (iv["from_ms"].as_i64().unwrap() - T, iv["to_ms"].as_i64().unwrap() - T, iv["reports"].as_u64().unwrap())
        })
        .collect()
}

#[actix_web::test]
async fn a_streams_sessions_carry_their_merged_bad_intervals() {
    let app = spawn_app(&[]).await;
    let now = NOW_SECS.cast_signed();
    post(&app, start("room-1001", "seq-1", now - 120).json()).await;
    // Three consecutive reports (5 s apart) are one interval; the fourth, 30 s on, its own.
    for at in [-100_000, -95_000, -90_000, -60_000] {
        post(&app, bad("room-1001", "seq-1", at).json()).await;
    }
    post(&app, start("room-1001", "seq-1", now - 120).end(110_000, 13, "pusher network").json()).await;
    app.clock.advance(Duration::from_secs(30));
    post(&app, start("room-1001", "seq-2", now + 30).json()).await;
    post(&app, bad("room-1001", "seq-2", 35_000).json()).await;
    app.clock.advance(Duration::from_secs(10));

    let h = history(&app, D, "room-1001").await;
    assert_eq!(
        (h["domain"].as_str(), h["app"].as_str(), h["stream"].as_str()),
        (Some(D), Some("live"), Some("room-1001"))
    );
    let sessions = h["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{h:#}");
    let (first, second) = (&sessions[0], &sessions[1]);
    assert_eq!(first["sequence"], "seq-1");
    assert_eq!(
        (first["start_ms"].as_i64(), first["start"].as_str()),
        (Some(T - 120_000), Some("2025-11-24T15:58:00.000Z"))
    );
    assert_eq!((first["end_ms"].as_i64(), first["end"].as_str()), (Some(T), Some("2025-11-24T16:00:00.000Z")));
    assert_eq!((first["errcode"].as_i64(), first["cause"].as_str()), (Some(13), Some("pusher_network")));
    assert_eq!((first["node"].as_str(), first["region"].as_str()), (Some("198.51.100.20"), Some("mainland")));
    assert_eq!((first["live"].as_bool(), first["duration_seconds"].as_f64()), (Some(false), Some(110.0)));
    assert_eq!(intervals(first), [(-105_000, -90_000, 3), (-65_000, -60_000, 1)]);
    let merged = &first["bad_intervals"][0];
    assert_eq!(
        merged["errors"],
        json!([{"error_type": "1", "error": "video_timestamp_rollback", "count": 3},
               {"error_type": "6", "error": "video_frame_late", "count": 6}])
    );
    assert_eq!(merged["worst_frame_gap_seconds"], 3.046);
    assert_eq!(merged["from"], "2025-11-24T15:58:15.000Z");
    // The second session: live, its report clipped to its start.
    assert_eq!((second["sequence"].as_str(), second["live"].as_bool()), (Some("seq-2"), Some(true)));
    assert_eq!((second["end"].clone(), intervals(second)), (Value::Null, vec![(30_000, 35_000, 1)]));
    // Bad now, since the second session's errors began: the first's ended 90 s before.
    assert_eq!(
        (h["bad_since_ms"].as_i64(), h["status"].as_str()),
        (Some(T + 30_000), Some("bad since 2025-11-24T16:00:30Z (10 s)"))
    );
    assert_eq!(h["limits"], json!({"max_sessions": 64, "max_intervals": 512, "max_age_seconds": 86_400}));
    let summary = h["summary"].as_str().unwrap();
    for said in [
        "Stream: push.example.com / live / room-1001",
        "1. sequence seq-1, node 198.51.100.20 (mainland)",
        "end 2025-11-24T16:00:00Z with errcode 13 (pusher_network)",
        "bad 2025-11-24T15:58:15Z to 2025-11-24T15:58:30Z (15 s, 3 reports): video_timestamp_rollback (type 1) x 3, \
         video_frame_late (type 6) x 6; worst frame gap 3.046 s",
    ] {
        assert!(summary.contains(said), "{said:?} not in:\n{summary}");
    }

    // The status page links the stream to its page, which tells the same.
    let (_, status) = get(&app, "/api/v1/status", None).await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["reports"][0]["page"], "streams/push.example.com/live/room-1001");
    assert_eq!(status["top_streams"]["streams"][0]["page"], "streams/push.example.com/live/room-1001");
    let (_, page) = get(&app, "/", None).await;
    assert!(page.contains("<a class=\"stream\" href=\"streams/push.example.com/live/room-1001\">"), "{page}");
    let (code, page) = get(&app, "/streams/push.example.com/live/room-1001", None).await;
    assert_eq!(code, 200);
    assert!(page.contains("Bad since 2025-11-24T16:00:30Z (10 s)") && page.contains("seq-2"), "{page}");
    app.stop().await;
}

#[actix_web::test]
async fn the_bounds_keep_the_newest_and_count_what_they_drop() {
    let app = spawn_app(&["--timeline-max-sessions", "3", "--timeline-max-intervals", "4"]).await;
    let now = NOW_SECS.cast_signed();
    // Five sessions 100 s apart (each start closes the one before), each
    // with two reports 30 s apart.
    for n in 0..5i64 {
        let sequence = format!("seq-{n}");
        post(&app, start("s", &sequence, now - 800 + n * 100).json()).await;
        for at in [10, 40] {
            post(&app, bad("s", &sequence, (n * 100 + at - 800) * 1000).json()).await;
        }
    }
    let h = history(&app, D, "s").await;
    let kept: Vec<&str> = h["sessions"].as_array().unwrap().iter().map(|s| s["sequence"].as_str().unwrap()).collect();
    assert_eq!(kept, ["seq-2", "seq-3", "seq-4"]);
    let per_session: Vec<usize> = h["sessions"].as_array().unwrap().iter().map(|s| intervals(s).len()).collect();
    assert_eq!(per_session, [0, 2, 2], "the oldest intervals go first");
    let m = app.metrics().await;
    let dropped = |bound, item| m.get("css_push_timeline_dropped_total", &[("bound", bound), ("item", item)]);
    // Each session's intervals went as the next ones came, before the session did.
    assert_eq!(dropped("sessions", "session"), Some(2.0));
    assert_eq!(dropped("sessions", "interval"), Some(0.0));
    assert_eq!(dropped("intervals", "interval"), Some(6.0));
    assert_eq!(dropped("memory", "session"), Some(0.0));
    assert_eq!(m.get("css_push_timeline_streams", &[]), Some(1.0));

    // A day after the last session ended nothing is left.
    post(&app, start("s", "seq-4", now - 400).end(400_000, 1, "stopped").json()).await;
    app.clock.advance(Duration::from_secs(86_400 + 60));
    app.wait_for(|m| m.get("css_push_timeline_streams", &[]) == Some(0.0)).await;
    let (code, body) = get(&app, &format!("/api/v1/{}", stream_page(D, "live", "s")), None).await;
    assert_eq!(code, 404, "{body}");
    app.stop().await;
}

#[actix_web::test]
async fn past_the_memory_cap_the_oldest_history_of_any_stream_goes_first() {
    let app = spawn_app(&["--timeline-max-bytes", "30000"]).await;
    for i in 0..120i64 {
        post(&app, bad(&format!("s{i}"), "q", -600_000 + i * 1000).json()).await;
    }
    // The expiry timer (every 20 ms here) keeps the cap.
    let m = app.wait_for(|m| m.get("css_push_timeline_bytes", &[]).is_some_and(|b| b <= 30_000.0)).await;
    let (used, limit) = (m.get("css_push_timeline_bytes", &[]).unwrap(), m.get("css_push_timeline_bytes_limit", &[]));
    assert!(used <= 30_000.0 && limit == Some(30_000.0), "{used} {limit:?}");
    assert!(m.sum("css_push_timeline_dropped_total", &[("bound", "memory")]) > 0.0, "{}", m.text);
    let kept = m.get("css_push_timeline_streams", &[]).unwrap();
    assert!(kept > 10.0 && kept < 120.0, "{kept}");
    assert_eq!(get(&app, &format!("/api/v1/{}", stream_page(D, "live", "s0")), None).await.0, 404, "the oldest went");
    history(&app, D, "s119").await;
    app.stop().await;
}

#[actix_web::test]
async fn a_flood_of_new_streams_is_held_to_the_cap_oldest_first_and_the_exporter_answers_throughout() {
    const FLOOD: usize = 20_000;
    const CAP: f64 = 1_000_000.0;
    // The expiry timer runs every 20 ms (as it did when a flood like this
    // stalled the exporter: each pass walked every history). Few streams
    // with their own series, and room for 100 report-only streams in the
    // SLO accounting (whose pass walks those it has), so that neither a
    // scrape nor the timer's pass outgrows the test's client.
    let flags = ["--timeline-max-bytes", "1000000", "--max-streams", "100", "--max-live-streams", "1000"];
    let app = spawn_app(&flags).await;
    let now = NOW_SECS.cast_signed();
    post(&app, start("watched", "seq-1", now).json()).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    // Reports of never-started streams, each newer than the one before.
    let flood = actix_web::rt::task::spawn_blocking(move || {
        let ghost = |i: usize| bad(&format!("ghost-{i}"), "q", -600_000 + i64::try_from(i).unwrap()).json().to_string();
        crate::raw_http::pipelined(&addr, FLOOD, 4, deadline, ghost)
    });
    // Meanwhile a started stream reports, its page is read and /metrics
    // scraped: each answered (within the client's 5 s), the cap held but
    // for the updates in flight (a few hundred bytes each).
    let (mut probes, mut most) = (0, 0.0f64);
    while !flood.is_finished() && std::time::Instant::now() < deadline {
        post(&app, bad("watched", "seq-1", probes * 5000).json()).await;
        history(&app, D, "watched").await;
        let (code, text) = get(&app, "/metrics", None).await;
        assert_eq!(code, 200);
        most = most.max(Metrics::parse(&text).get("css_push_timeline_bytes", &[]).unwrap());
        probes += 1;
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(flood.await.unwrap(), FLOOD, "every report answered 200");
    assert!(probes > 0 && most <= CAP * 1.01, "{probes} probes, at most {most} bytes");
    let m = app.metrics().await;
    let (used, kept) =
        (m.get("css_push_timeline_bytes", &[]).unwrap(), m.get("css_push_timeline_streams", &[]).unwrap());
    assert!(used <= CAP && kept > 100.0 && kept < 10_000.0, "{used} bytes, {kept} streams");
    // Every ghost whose history went is counted: its one session and interval.
    let gone = (FLOOD + 1) as f64 - kept;
    let dropped = |item| m.get("css_push_timeline_dropped_total", &[("bound", "memory"), ("item", item)]).unwrap();
    assert_eq!((dropped("session"), dropped("interval")), (gone, gone), "{}", m.text);
    // The oldest went, the newest stayed, and the live stream kept its story.
    let page = |s: &str| format!("/api/v1/{}", stream_page(D, "live", s));
    assert_eq!(get(&app, &page("ghost-0"), None).await.0, 404);
    history(&app, D, &format!("ghost-{}", FLOOD - 1)).await;
    let watched = history(&app, D, "watched").await;
    assert_eq!(watched["sessions"][0]["bad_intervals"].as_array().map(Vec::len), Some(1), "{watched}");
    app.stop().await;
}

#[actix_web::test]
async fn names_are_matched_as_labels_and_secrets_never_shown() {
    let app = spawn_app(&["--max-label-length", "16"]).await;
    // 15 bytes, then a 2-byte é that does not fit: cut before it, as labels are.
    let name = "a/b %\"<直播>-é-and-more";
    let capped = "a/b %\"<直播>-";
    let (param, ip) = ("txSecret=SECRET-f00d&txTime=6900AA00", "203.0.113.77");
    post(&app, start(name, "seq-1", NOW_SECS.cast_signed()).pusher(param, ip).json()).await;
    post(&app, bad(name, "seq-1", 5000).pusher(param, ip).json()).await;
    let h = history(&app, D, name).await;
    assert_eq!(h["stream"], capped);
    assert_eq!(history(&app, D, capped).await["stream"], capped, "the capped name is the same stream");
    let by_hand = "/api/v1/streams/push.example.com/live/a%2Fb%20%25%22%3C%E7%9B%B4%E6%92%AD%3E-";
    assert_eq!(get(&app, by_hand, None).await.0, 200);
    let (code, page) = get(&app, &format!("/{}", stream_page(D, "live", name)), None).await;
    assert_eq!(code, 200);
    assert!(page.contains("a/b %&quot;&lt;直播&gt;-") && !page.contains("<直播>"), "{page}");
    let json = h.to_string();
    for secret in ["SECRET-f00d", "txSecret", ip] {
        assert!(!json.contains(secret) && !page.contains(secret), "{secret} shown");
    }

    // Unknown, malformed and misshapen paths: JSON errors, never a panic.
    let (code, body) = get(&app, "/api/v1/streams/push.example.com/live/nobody", None).await;
    assert_eq!(code, 404);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], 404);
    assert!(error["error"].as_str().unwrap().contains("no recent history"), "{error}");
    for (path, expected) in [
        ("/api/v1/streams/push.example.com/live/%zz", 400),
        ("/api/v1/streams/push.example.com/live/%FF", 400),
        ("/api/v1/streams/push.example.com/live", 404),
        ("/api/v1/streams/push.example.com/live/a/b", 404),
    ] {
        let (code, body) = get(&app, path, None).await;
        assert_eq!(code, expected, "{path}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], expected, "{path}");
    }
    let (code, page) = get(&app, "/streams/push.example.com/live/nobody", None).await;
    assert!(code == 404 && page.contains("No recent history of this stream."), "{code}: {page}");
    app.stop().await;
}

#[actix_web::test]
async fn the_stream_pages_sit_with_metrics_behind_the_same_guard_and_headers() {
    let (app, _config) = spawn_guarded_app().await;
    post(&app, bad("s", "q", 0).json()).await;
    let api = format!("/api/v1/{}", stream_page(D, "live", "s"));
    let page = format!("/{}", stream_page(D, "live", "s"));
    for path in [&api, &page] {
        assert_eq!(get(&app, path, None).await.0, 401, "{path} without credentials");
        assert_eq!(get(&app, path, Some(("prometheus", "pw"))).await.0, 200, "{path}");
        let res = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 404, "{path} is not on the callback listener");
    }
    let res =
        app.client.get(format!("{}{page}", app.metrics_base)).basic_auth("prometheus", "pw").send().await.unwrap();
    let csp = res.headers().get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    app.stop().await;
}

#[actix_web::test]
async fn a_restart_brings_the_histories_back_from_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let flags = ["--state-file", path.to_str().unwrap(), "--state-interval", "1h"];
    let mut app = spawn_app(&flags).await;
    let now = NOW_SECS.cast_signed();
    post(&app, start("room-1", "seq-1", now - 60).json()).await;
    for at in [-50_000, -45_000, -10_000] {
        post(&app, bad("room-1", "seq-1", at).json()).await;
    }
    post(&app, start("room-1", "seq-1", now - 60).end(59_000, 6, "rtmp").json()).await;
    post(&app, bad("room-2", "other", 0).json()).await;
    let before = (history(&app, D, "room-1").await, history(&app, D, "room-2").await);
    for h in &app.app_handles {
        h.stop(true).await;
    }
    app.stopped().await.unwrap();
    drop(app);

    let app = spawn_app(&flags).await;
    let after = (history(&app, D, "room-1").await, history(&app, D, "room-2").await);
    assert_eq!(after.0["sessions"], before.0["sessions"], "as before the restart");
    assert_eq!(after.1["sessions"], before.1["sessions"]);
    assert_eq!(after.0["sessions"][0]["cause"], "rtmp_content");
    assert_eq!(app.metrics().await.get("css_push_timeline_streams", &[]), Some(2.0));
    app.stop().await;
}
