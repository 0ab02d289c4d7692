//! Hardening the callback endpoint: signatures, retries counted
//! once, bounded series and bodies.
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

const E: &str = "css_push_errors_total";
const CALLBACKS: &str = "css_push_callbacks_total";

fn late_video(count: u64) -> Value {
    json!([{"type": 6, "count": count, "detail": []}])
}

fn outcome(m: &Metrics, outcome: &str) -> f64 {
    m.sum(CALLBACKS, &[("outcome", outcome)])
}

#[actix_web::test]
async fn only_callbacks_signed_with_a_configured_key_and_not_expired_get_in() {
    let app = spawn_app(&["--callback-key", "old-key", "--callback-key", "new-key", "--max-clock-skew", "30s"]).await;
    // (what, body, status, outcome); each body a distinct event, count 1.
    let body = |n: i64| push_error("d.example.com", "live", "s", 1_764_000_000_000 + n, late_video(1));
    let mut no_sign = signed(body(3), "new-key", 600);
    no_sign.as_object_mut().unwrap().remove("sign");
    let mut no_t = signed(body(4), "new-key", 600);
    no_t.as_object_mut().unwrap().remove("t");
    let mut garbage = signed(body(8), "new-key", 600);
    garbage["sign"] = "' OR 1=1 --".into();
    let mut upper = signed(body(9), "new-key", 600);
    upper["sign"] = upper["sign"].as_str().unwrap().to_uppercase().into();
    let mut t_as_string = signed(body(10), "new-key", 600);
    t_as_string["t"] = t_as_string["t"].to_string().into();
    let mut resigned = signed(body(11), "new-key", 600);
    resigned["t"] = (NOW_SECS + 6000).into(); // a later t without re-signing
    let table: Vec<(&str, Value, u16, &str)> = vec![
        ("new key", signed(body(1), "new-key", 600), 200, "accepted"),
        ("old key, during rotation", signed(body(2), "old-key", 600), 200, "accepted"),
        ("sign missing", no_sign, 401, "unauthorized"),
        ("t missing", no_t, 401, "unauthorized"),
        ("unknown key", signed(body(5), "guessed-key", 600), 401, "unauthorized"),
        ("t in the past beyond the skew", signed(body(6), "new-key", -31), 401, "expired"),
        ("t in the past within the skew", signed(body(7), "new-key", -29), 200, "accepted"),
        ("garbage sign", garbage, 401, "unauthorized"),
        ("upper-case hex", upper, 200, "accepted"),
        ("t as a numeric string", t_as_string, 200, "accepted"),
        ("t moved without re-signing", resigned, 401, "unauthorized"),
    ];
    for (what, body, status, want) in &table {
        let before = outcome(&app.metrics().await, want);
        let (got, answer) = app.post(body.to_string()).await;
        assert_eq!(got, *status, "{what}: {answer}");
        if *status == 200 {
            assert_eq!(answer, json!({"code": 0}), "{what}");
        } else {
            assert_eq!(answer["code"], json!(401), "{what}: {answer}");
            assert!(!answer.to_string().contains("new-key"), "{what}: a key leaked in {answer}");
        }
        assert_eq!(outcome(&app.metrics().await, want), before + 1.0, "{what} counted as {want}");
    }
    let accepted = table.iter().filter(|row| row.2 == 200).count() as f64;
    let m = app.metrics().await;
    assert_eq!(m.sum(E, &[("domain", "d.example.com")]), accepted, "only accepted callbacks are counted");
    assert_eq!(m.get("css_push_callback_delay_seconds_count", &[]), Some(accepted));
    app.stop().await;
}

#[actix_web::test]
async fn the_signed_sample_passes_with_its_key_only() {
    let right = spawn_app(&["--callback-key", "demo-callback-key"]).await;
    // The sample is signed until 2100: no further ahead than a signature may be valid.
    right.clock.advance(Duration::from_secs(4_102_444_800 - 600 - NOW_SECS));
    assert_eq!(right.post(SIGNED).await, (200, json!({"code": 0})));
    let m = right.metrics().await;
    assert_eq!(m.sum(E, &[("domain", "push.example.com"), ("stream", "room-1001")]), 4.0);
    right.stop().await;

    let wrong = spawn_app(&["--callback-key", "another-key"]).await;
    assert_eq!(wrong.post(SIGNED).await.0, 401);
    assert_eq!(wrong.metrics().await.count(E), 0);
    wrong.stop().await;
}

#[actix_web::test]
async fn a_retried_callback_is_counted_once_within_the_dedup_window() {
    let app = spawn_app(&["--dedup-window", "15m"]).await;
    let errors = |m: &Metrics| m.sum(E, &[("domain", "xxxx.xxxxx.xxxx.xxxx")]);
    assert_eq!(app.post(SEED).await, (200, json!({"code": 0})));
    // CSS retries on a timeout: the same body, at once and up to ~13 minutes later.
    assert_eq!(app.post(SEED).await, (200, json!({"code": 0})));
    app.clock.advance(Duration::from_secs(13 * 60));
    assert_eq!(app.post(SEED).await, (200, json!({"code": 0})));
    let m = app.metrics().await;
    assert_eq!(errors(&m), 4.0, "two abnormal events of count 2, once");
    assert_eq!(outcome(&m, "accepted"), 1.0);
    assert_eq!(outcome(&m, "duplicate"), 2.0);
    assert_eq!(m.get("css_push_frame_interval_seconds_count", &[("media", "video")]), Some(2.0));
    assert_eq!(m.get("css_push_dedup_entries", &[]), Some(1.0));

    // A changed field is another event, not a retry.
    let mut next = serde_json::from_str::<Value>(SEED).unwrap();
    next["data_time"] = (next["data_time"].as_i64().unwrap() + 5000).into();
    assert_eq!(app.post(next.to_string()).await.0, 200);
    assert_eq!(errors(&app.metrics().await), 8.0);

    // Past the window the entry is forgotten (on the expiry timer) and the
    // memory is given back.
    app.clock.advance(Duration::from_secs(15 * 60 + 1));
    app.wait_for(|m| m.get("css_push_dedup_entries", &[]) == Some(0.0)).await;
    app.stop().await;
}

#[actix_web::test]
async fn a_forged_copy_does_not_make_the_real_callback_a_duplicate() {
    let app = spawn_app(&["--callback-key", "k"]).await;
    let body = push_error("d", "live", "s", 1_764_000_000_000, late_video(3));
    assert_eq!(app.post(signed(body.clone(), "k-guess", 600).to_string()).await.0, 401);
    assert_eq!(app.post(signed(body.clone(), "k", -3600).to_string()).await.0, 401);
    assert_eq!(app.post(signed(body.clone(), "k", 600).to_string()).await, (200, json!({"code": 0})));
    assert_eq!(app.post(signed(body, "k", 600).to_string()).await, (200, json!({"code": 0})));
    let m = app.metrics().await;
    assert_eq!(m.sum(E, &[]), 3.0);
    assert_eq!(outcome(&m, "accepted"), 1.0);
    assert_eq!(outcome(&m, "duplicate"), 1.0);
    assert_eq!(outcome(&m, "unauthorized"), 1.0);
    assert_eq!(outcome(&m, "expired"), 1.0);
    app.stop().await;
}

#[actix_web::test]
async fn quiet_streams_lose_their_series_after_the_ttl() {
    let app = spawn_app(&["--stream-ttl", "60s"]).await;
    let post = |stream: &'static str, n: i64| {
        let body = push_error(
            "d",
            "live",
            stream,
            1_764_000_000_000 + n,
            json!([{"type": 6, "count": 1, "detail": [
            {"desc": "video frame arrive interval too long, interval=2000(msec)"}]}]),
        );
        let app = &app;
        async move { assert_eq!(app.post(body.to_string()).await.0, 200) }
    };
    post("quiet", 0).await;
    post("busy", 0).await;
    app.clock.advance(Duration::from_secs(40));
    post("busy", 1).await;
    let m = app.metrics().await;
    assert_eq!(m.get("css_push_streams", &[]), Some(2.0), "40 s is within the TTL");
    app.clock.advance(Duration::from_secs(21));

    let m = app.wait_for(|m| m.get("css_push_streams", &[]) == Some(1.0)).await;
    assert_eq!(m.get("css_push_streams_expired_total", &[]), Some(1.0));
    for name in [E, "css_push_frame_interval_max_seconds", "css_push_last_error_timestamp_seconds"] {
        assert_eq!(m.find(name, &[("stream", "quiet")]).count(), 0, "{name} of the quiet stream is gone");
        assert_eq!(m.find(name, &[("stream", "busy")]).count(), 1, "{name} of the busy stream stays");
    }
    // Per-(domain, app) series are not per stream and keep every observation.
    assert_eq!(m.get("css_push_frame_interval_seconds_count", &[("domain", "d")]), Some(3.0));

    // A stream that comes back starts again from zero, as a new series.
    post("quiet", 2).await;
    assert_eq!(app.metrics().await.get(E, &[("stream", "quiet")]), Some(1.0));
    app.stop().await;
}

#[actix_web::test]
async fn a_flood_of_distinct_streams_keeps_series_bounded_and_totals_exact() {
    const STREAMS: usize = 4_000;
    const MAX: usize = 1000;
    let app = spawn_app(&["--max-streams", "1000"]).await;
    let mut ok = 0;
    for batch in (0..STREAMS).collect::<Vec<_>>().chunks(100) {
        let posts = batch.iter().map(|i| {
            let body = push_error("flood.example.com", "live", &format!("s{i}"), 1_764_000_000_000, late_video(3));
            app.post(body.to_string())
        });
        ok += futures_util::future::join_all(posts).await.iter().filter(|(status, _)| *status == 200).count();
    }
    assert_eq!(ok, STREAMS);
    let m = app.metrics().await;
    let streams = m.label_values(E, "stream");
    assert_eq!(streams.len(), MAX + 1, "{MAX} streams of their own and the overflow bucket");
    assert!(streams.contains("__overflow__"));
    assert_eq!(m.sum(E, &[("domain", "flood.example.com")]), 3.0 * STREAMS as f64, "the domain total is exact");
    assert_eq!(m.get(E, &[("stream", "__overflow__")]), Some(3.0 * (STREAMS - MAX) as f64));
    assert_eq!(m.get("css_push_stream_overflow_total", &[]), Some((STREAMS - MAX) as f64));
    assert_eq!(m.get("css_push_streams", &[]), Some(MAX as f64));
    assert_eq!(m.get("css_push_streams_limit", &[]), Some(MAX as f64));
    assert!(m.count("css_push_last_error_timestamp_seconds") <= MAX + 1);
    app.stop().await;
}

#[actix_web::test]
async fn long_label_values_are_cut_on_a_character_boundary() {
    let app = spawn_app(&["--max-label-length", "10"]).await;
    let body = push_error("d", "live", "ééééééééééé-tail", 1_764_000_000_000, late_video(1)); // é is 2 bytes
    assert_eq!(app.post(body.to_string()).await.0, 200);
    let body = push_error("d", "live", "éééééééééé", 1_764_000_005_000, late_video(1));
    assert_eq!(app.post(body.to_string()).await.0, 200);
    let m = app.metrics().await;
    assert_eq!(m.get(E, &[("stream", "ééééé")]), Some(2.0), "both cut to the same 10 bytes");
    app.stop().await;
}

#[actix_web::test]
async fn bodies_over_the_limit_are_answered_413_however_they_are_sent() {
    let app = spawn_app(&["--max-body-bytes", "2000"]).await;
    let filler = "x".repeat(3000);
    let mut big = push_error("d", "live", "s", 1_764_000_000_000, late_video(1));
    big["padding"] = filler.into();
    let big = big.to_string();

    // Announced with Content-Length: refused before it is read.
    let (status, answer) = app.post(big.clone()).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["code"], json!(413));

    // Chunked, with no length announced: refused once the limit is crossed.
    let chunks: Vec<Result<actix_web::web::Bytes, std::io::Error>> =
        big.as_bytes().chunks(500).map(|c| Ok(actix_web::web::Bytes::copy_from_slice(c))).collect();
    let res = app
        .client
        .post(format!("{}/callback", app.base))
        .send_stream(futures_util::stream::iter(chunks))
        .await
        .expect("chunked request sent");
    assert_eq!(res.status().as_u16(), 413);

    // Just under the limit still passes.
    let small = push_error("d", "live", "s", 1_764_000_000_000, late_video(1)).to_string();
    assert!(small.len() < 2000);
    assert_eq!(app.post(small).await.0, 200);

    let m = app.metrics().await;
    assert_eq!(m.get(CALLBACKS, &[("event_type", "unknown"), ("outcome", "too_large")]), Some(2.0));
    assert_eq!(m.sum(E, &[]), 1.0, "nothing of the refused bodies was counted");
    app.stop().await;
}

/// A key as `kubectl create secret --from-file` or an env file leaves it
/// (trailing newline, a space after the comma) still verifies CSS's
/// signatures; a key with whitespace inside is refused at start.
#[test]
fn callback_keys_from_the_environment_are_trimmed() {
    use crate::binary::Binary;
    for keys in ["demo-key\n", " other-key , demo-key ", "demo-key\r\n,other-key"] {
        let exporter = Binary::start_with_env(&[], &[("CSS_PUSH_CALLBACK_KEY", keys)]);
        for i in 0..5 {
            let body = signed_now(push_error("d", "a", &format!("s{i}"), now_ms(), late_video(1)), "demo-key");
            assert_eq!(exporter.post(&body), 200, "{keys:?}: {}", exporter.log());
        }
        let m = exporter.metrics();
        assert_eq!(outcome(&m, "accepted"), 5.0, "{keys:?}");
    }
    for keys in ["demo key", "a,,b", " "] {
        let (status, log) = crate::binary::Binary::run_to_exit_with_env(&[], &[("CSS_PUSH_CALLBACK_KEY", keys)]);
        assert!(!status.success(), "{keys:?} accepted");
        assert!(log.contains("callback key"), "{keys:?}: {log}");
        assert!(!log.contains("demo key"), "the key is printed: {log}");
    }
}
