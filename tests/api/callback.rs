//! Receiving push error callbacks: what is counted, what is refused.
use crate::helpers::*;
use css_push_exporter::callback_body::frame_gap_detail;
use serde_json::{json, Value};

const E: &str = "css_push_errors_total";
const CALLBACKS: &str = "css_push_callbacks_total";

fn gap(media: &str, ms: u64) -> Value {
    frame_gap_detail(media, ms, Some(1_670_588_070_569))
}

#[actix_web::test]
async fn the_seed_example_is_counted_exactly() {
    let app = spawn_app(&[]).await;
    let (status, answer) = app.post(SEED).await;
    assert_eq!((status, answer), (200, json!({"code": 0})));

    let m = app.metrics().await;
    let stream = [("domain", "xxxx.xxxxx.xxxx.xxxx"), ("app", "xxxx"), ("stream", "xxxxxx")];
    let with = |extra: &[(&'static str, &'static str)]| [&stream[..], extra].concat();
    assert_eq!(m.get(E, &with(&[("error_type", "6"), ("error", "video_frame_late")])), Some(2.0));
    assert_eq!(m.get(E, &with(&[("error_type", "7"), ("error", "audio_frame_late")])), Some(2.0));
    assert_eq!(m.count(E), 2);

    let video = [("domain", "xxxx.xxxxx.xxxx.xxxx"), ("app", "xxxx"), ("media", "video")];
    let audio = [("domain", "xxxx.xxxxx.xxxx.xxxx"), ("app", "xxxx"), ("media", "audio")];
    assert_eq!(m.get("css_push_frame_interval_seconds_count", &video), Some(2.0));
    assert_eq!(m.get("css_push_frame_interval_seconds_sum", &video), Some(5.999));
    assert_eq!(m.get("css_push_frame_interval_seconds_sum", &audio), Some(5.926));
    // 3.046 s and 2.953 s: one gap in (2, 3], both in (3, 4].
    assert_eq!(m.get("css_push_frame_interval_seconds_bucket", &[&video[..], &[("le", "3")]].concat()), Some(1.0));
    assert_eq!(m.get("css_push_frame_interval_seconds_bucket", &[&video[..], &[("le", "2")]].concat()), Some(0.0));
    assert_eq!(m.get("css_push_frame_interval_seconds_bucket", &[&video[..], &[("le", "4")]].concat()), Some(2.0));

    assert_eq!(m.get("css_push_frame_interval_max_seconds", &with(&[("media", "video")])), Some(3.046));
    assert_eq!(m.get("css_push_frame_interval_max_seconds", &with(&[("media", "audio")])), Some(3.009));
    assert_eq!(m.get("css_push_last_error_timestamp_seconds", &stream), Some(1670588074.971));
    assert_eq!(m.get(CALLBACKS, &[("event_type", "321"), ("outcome", "accepted")]), Some(1.0));
    assert_eq!(m.get("css_push_callback_delay_seconds_count", &[]), Some(1.0));
    let delay = NOW_SECS as f64 - 1670588074.971;
    assert!((m.get("css_push_callback_delay_seconds_sum", &[]).unwrap() - delay).abs() < 1e-3);
    assert_eq!(m.get("css_push_streams", &[]), Some(1.0));
    assert_eq!(m.get("css_push_exporter_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
    assert!(m.count("process_resident_memory_bytes") == 1, "process metrics are served");
    app.stop().await;
}

#[actix_web::test]
async fn every_error_type_has_its_stable_name() {
    let app = spawn_app(&[]).await;
    let names = [
        "video_timestamp_rollback",
        "audio_timestamp_rollback",
        "video_timestamp_jump",
        "audio_timestamp_jump",
        "chunk_size_too_large",
        "video_frame_late",
        "audio_frame_late",
        "video_codec_changed",
        "audio_codec_changed",
        "video_codec_header_missing",
        "audio_codec_header_missing",
        "audio_timestamp_gap",
        "uncommon_codec",
        "video_header_unparsable",
        "video_frame_rate_low",
        "gop_too_long",
    ];
    let mut events: Vec<Value> = (1..=16).map(|t| json!({"type": t, "count": t * 10, "detail": []})).collect();
    events.push(json!({"type": 42, "count": 5}));
    events.push(json!({"type": 4242, "count": 7}));
    events.push(json!({"type": 0, "count": 1}));
    let (status, _) = app.post(push_error("d", "live", "s", 1, Value::Array(events)).to_string()).await;
    assert_eq!(status, 200);

    let m = app.metrics().await;
    for (i, name) in names.iter().enumerate() {
        let t = (i + 1).to_string();
        assert_eq!(m.get(E, &[("error_type", &t), ("error", name)]), Some((i as f64 + 1.0) * 10.0), "type {t}");
    }
    assert_eq!(m.get(E, &[("error_type", "42"), ("error", "unknown")]), Some(5.0));
    // Outside 1..=99: one bounded "other" series.
    assert_eq!(m.get(E, &[("error_type", "other"), ("error", "unknown")]), Some(8.0));
    assert_eq!(m.count(E), 18);
    app.stop().await;
}

#[actix_web::test]
async fn count_is_counted_not_the_detail_entries() {
    let app = spawn_app(&[]).await;
    let events = json!([
        {"type": 6, "count": 9, "detail": [gap("video", 1500), gap("video", 4500)]},
        {"type": 1, "count": 3, "detail": [{"desc": "video timestamp rollback", "occur_time": 1}]},
        {"type": 7, "count": 1, "detail": [gap("audio", 1200), {"desc": "no number here"}]},
    ]);
    app.post(push_error("d", "live", "s", 1_000, events).to_string()).await;
    let m = app.metrics().await;
    assert_eq!(m.get(E, &[("error_type", "6")]), Some(9.0));
    assert_eq!(m.get(E, &[("error_type", "1")]), Some(3.0));
    assert_eq!(m.get(E, &[("error_type", "7")]), Some(1.0));
    assert_eq!(m.get("css_push_frame_interval_seconds_count", &[("media", "video")]), Some(2.0));
    assert_eq!(m.get("css_push_frame_interval_seconds_count", &[("media", "audio")]), Some(1.0));
    assert_eq!(m.get("css_push_frame_interval_max_seconds", &[("media", "video")]), Some(4.5));
    // Only frame-gap details are read for intervals; the unreadable one is counted.
    assert_eq!(m.get("css_push_unparsed_details_total", &[("error_type", "7")]), Some(1.0));
    assert_eq!(m.get("css_push_unparsed_details_total", &[("error_type", "1")]), None);
    app.stop().await;
}

#[actix_web::test]
async fn reports_accumulate_and_gauges_follow_the_latest() {
    let app = spawn_app(&[]).await;
    let report = |t: i64, ms: u64| {
        push_error("d", "live", "s", t, json!([{"type": 6, "count": 1, "detail": [gap("video", ms)]}])).to_string()
    };
    app.post(report(10_000, 8000)).await;
    app.post(report(15_000, 2000)).await;
    // A retried older report arriving late does not replace the latest gauges.
    app.post(report(5_000, 9000)).await;
    let m = app.metrics().await;
    assert_eq!(m.get(E, &[("stream", "s")]), Some(3.0));
    assert_eq!(m.get("css_push_frame_interval_max_seconds", &[("stream", "s")]), Some(2.0));
    assert_eq!(m.get("css_push_last_error_timestamp_seconds", &[("stream", "s")]), Some(15.0));
    app.stop().await;
}

#[actix_web::test]
async fn integers_may_arrive_as_strings_and_unknown_fields_are_ignored() {
    let app = spawn_app(&[]).await;
    let body = json!({
        "event_type": "321", "appid": "1250000000", "domain": "d", "path": "live", "stream_id": "s",
        "data_time": "1764000000000", "report_interval": "5000", "timeout": "5000", "new_field": {"a": [1]},
        "abnormal_event": [{"type": "6", "count": "4", "event_key": "k", "customer_visible": "true",
                            "type_desc_cn": " ", "detail": [{"desc": "interval=1000(msec)", "occur_time": "1"}]}],
    });
    let (status, _) = app.post(body.to_string()).await;
    assert_eq!(status, 200);
    let m = app.metrics().await;
    assert_eq!(m.get(E, &[("error_type", "6")]), Some(4.0));
    assert_eq!(m.get("css_push_last_error_timestamp_seconds", &[("stream", "s")]), Some(1764000000.0));
    app.stop().await;
}

#[actix_web::test]
async fn query_string_and_content_type_do_not_matter() {
    let app = spawn_app(&[]).await;
    let res = app
        .client
        .post(format!("{}/callback?action=push_error&x=1", app.base))
        .insert_header(("content-type", "text/plain"))
        .send_body(SEED)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = app.client.post(format!("{}/callback", app.base)).send_body(SIGNED).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(app.metrics().await.get(CALLBACKS, &[("outcome", "accepted")]), Some(2.0));
    app.stop().await;
}

#[actix_web::test]
async fn other_event_types_are_answered_and_counted_as_ignored() {
    let app = spawn_app(&[]).await;
    for (body, label) in [
        (json!({"event_type": 100, "stream_id": 5, "file_size": "big"}), "100"),
        (json!({"event_type": "200", "pic_url": "x"}), "200"),
        (json!({"event_type": 999999}), "other"),
    ] {
        let (status, answer) = app.post(body.to_string()).await;
        assert_eq!((status, answer), (200, json!({"code": 0})), "{body}");
        let m = app.metrics().await;
        assert_eq!(m.get(CALLBACKS, &[("event_type", label), ("outcome", "ignored")]), Some(1.0), "{body}");
    }
    assert_eq!(app.metrics().await.count(E), 0);
    app.stop().await;
}

#[actix_web::test]
async fn malformed_bodies_are_refused_and_nothing_is_counted() {
    let app = spawn_app(&[]).await;
    let ok_event = json!([{"type": 6, "count": 1}]);
    let mut negative = push_error("d", "live", "s", 1, json!([{"type": 6, "count": 1}, {"type": 7, "count": -2}]));
    let mut no_stream = push_error("d", "live", "s", 1, ok_event.clone());
    no_stream.as_object_mut().unwrap().remove("stream_id");
    let mut no_time = push_error("d", "live", "s", 1, ok_event.clone());
    no_time.as_object_mut().unwrap().remove("data_time");
    let mut wrong_type = push_error("d", "live", "s", 1, ok_event.clone());
    wrong_type["abnormal_event"] = json!({"type": 6});
    let mut fraction = push_error("d", "live", "s", 1, ok_event.clone());
    fraction["abnormal_event"][0]["count"] = json!(1.5);
    negative["x"] = json!(1);
    let cases: Vec<(String, &str, &str)> = vec![
        ("{\"event_type\":321,".into(), "unknown", "invalid JSON"),
        ("".into(), "unknown", "invalid JSON"),
        ("[1,2]".into(), "unknown", "must be a JSON object"),
        ("{\"event_type\":321} trailing".into(), "unknown", "invalid JSON"),
        (json!({"stream_id": "s"}).to_string(), "unknown", "missing field `event_type`"),
        (json!({"event_type": "three"}).to_string(), "unknown", "event_type: expected an integer"),
        (negative.to_string(), "321", "abnormal_event[1].count: must not be negative"),
        (no_stream.to_string(), "321", "missing field `stream_id`"),
        (no_time.to_string(), "321", "missing field `data_time`"),
        (wrong_type.to_string(), "321", "abnormal_event: invalid type"),
        (fraction.to_string(), "321", "abnormal_event[0].count: expected an integer, got a fraction"),
    ];
    for (i, (body, event_type, want)) in cases.iter().enumerate() {
        let (status, answer) = app.post(body.clone()).await;
        assert_eq!(status, 400, "case {i}: {body}");
        assert_eq!(answer["code"], 400, "case {i}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(want), "case {i}: {error:?} should say {want:?}");
        let m = app.metrics().await;
        let malformed = m.sum(CALLBACKS, &[("event_type", event_type), ("outcome", "malformed")]);
        assert_eq!(malformed, cases[..=i].iter().filter(|c| c.1 == *event_type).count() as f64, "case {i}");
    }
    let m = app.metrics().await;
    assert_eq!(m.count(E), 0, "nothing counted from a rejected callback");
    assert_eq!(m.get("css_push_streams", &[]), Some(0.0));
    assert_eq!(m.sum(CALLBACKS, &[("outcome", "accepted")]), 0.0);
    app.stop().await;
}

#[actix_web::test]
async fn stream_param_and_user_ip_never_reach_metrics() {
    let app = spawn_app(&[]).await;
    app.post(SIGNED).await;
    let m = app.metrics().await;
    assert!(m.count(E) > 0);
    for secret in ["txSecret", "f5828cd4a8a09109304b060172fb3960", "203.0.113.7", "b276e9751b35f01e28bf285d4175b495"] {
        assert!(!m.text.contains(secret), "{secret} leaked into /metrics");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_separate_metrics_listener_splits_the_routes() {
    let app = spawn_app(&["--metrics-listen-address", "127.0.0.1:0", "--workers", "1"]).await;
    assert_ne!(app.base, app.metrics_base);
    let (status, _) = app.post(SEED).await;
    assert_eq!(status, 200);
    let res = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 404, "/metrics is not on the callback listener");
    let res = app.client.post(format!("{}/callback", app.metrics_base)).send_body(SEED).await.unwrap();
    assert_eq!(res.status().as_u16(), 404, "/callback is not on the metrics listener");
    assert_eq!(app.metrics().await.get(CALLBACKS, &[("event_type", "321"), ("outcome", "accepted")]), Some(1.0));
    for base in [&app.base, &app.metrics_base] {
        for path in ["/-/healthy", "/-/ready"] {
            let res = app.client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200, "{base}{path}");
        }
    }
    // The status page names streams: it stays with /metrics.
    let res = app.client.get(format!("{}/", app.metrics_base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = app.client.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 404, "no status page on the callback listener");
    app.stop().await;
}

#[actix_web::test]
async fn status_page_links_metrics_and_callback_wants_post() {
    let app = spawn_app(&[]).await;
    let mut res = app.client.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(body.contains("href=\"metrics\""), "{body}");
    let res = app.client.get(format!("{}/callback", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 405);
    app.stop().await;
}

#[actix_web::test]
async fn a_flood_of_domains_stays_bounded_and_quiet_apps_are_forgotten() {
    let app = spawn_app(&["--max-apps", "3", "--stream-ttl", "10m", "--live-stream-ttl", "10m"]).await;
    let gaps = json!([{"type": 6, "count": 2, "detail": [gap("video", 1500)]}]);
    for i in 0..10 {
        let body = push_error(&format!("d{i}.example.com"), "live", "s", 1_000, gaps.clone());
        assert_eq!(app.post(body.to_string()).await.0, 200);
    }
    let m = app.metrics().await;
    assert_eq!(m.sum(E, &[]), 20.0, "every error is still counted");
    let domains = m.label_values("css_push_frame_interval_seconds_count", "domain");
    assert_eq!(domains.len(), 4, "three domains and the overflow bucket: {domains:?}");
    let overflow = [("domain", "__overflow__"), ("app", "__overflow__"), ("stream", "__overflow__")];
    assert_eq!(m.get(E, &overflow), Some(14.0));
    assert_eq!(m.get("css_push_stream_overflow_total", &[]), Some(7.0));
    assert_eq!(m.get("css_push_streams", &[]), Some(3.0));

    // Ten minutes later the quiet pairs and their histograms are gone (the
    // one overflow bucket stays), and a new domain gets its own labels again.
    app.clock.advance(std::time::Duration::from_secs(601));
    let m = app.wait_for(|m| m.count("css_push_frame_interval_seconds_count") == 1).await;
    assert_eq!(m.get("css_push_frame_interval_seconds_count", &[("domain", "__overflow__")]), Some(7.0));
    app.post(push_error("new.example.com", "live", "s", 2_000, gaps.clone()).to_string()).await;
    let m = app.metrics().await;
    assert_eq!(m.get(E, &[("domain", "new.example.com")]), Some(2.0));
    app.stop().await;
}
