//! End to end with a real Prometheus: two exporter instances (plus one dead
//! target) in one scrape job, scraped every second, fed scripted callbacks;
//! then every dashboard query and recording rule is run through Prometheus'
//! HTTP API and must parse and return data, every alert expression must
//! evaluate, and the dashboards' aggregations must equal the sum of the two
//! instances.
use crate::dashboards::{self, DASHBOARDS};
use crate::helpers::*;
use crate::tools::{self, Prometheus};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const KEY: &str = "e2e-callback-key";
const DOMAIN: &str = "push.example.com";
const APP: &str = "live";

fn late(video_ms: &[u32], audio_ms: &[u32]) -> Value {
    let detail = |kind: &str, ms: &[u32]| -> Vec<Value> {
        ms.iter()
            .map(|ms| json!({"desc": format!("{kind} frame arrive interval too long, interval={ms}(msec)"), "occur_time": now_ms()}))
            .collect()
    };
    let mut events = vec![json!({"type": 6, "count": video_ms.len(), "detail": detail("video", video_ms)})];
    if !audio_ms.is_empty() {
        events.push(json!({"type": 7, "count": audio_ms.len(), "detail": detail("audio", audio_ms)}));
    }
    Value::Array(events)
}

async fn post_ok(app: &TestApp, body: Value) {
    let (status, answer) = app.post(signed_now(body, KEY).to_string()).await;
    assert_eq!(status, 200, "{answer}");
}

fn target(app: &TestApp) -> String {
    app.metrics_base.trim_start_matches("http://").to_owned()
}

/// One round of the scripted traffic; `round` makes each report distinct.
async fn round(a: &TestApp, b: &TestApp, round: u32) {
    let t = now_ms() + round as i64;
    // Instance a: a stream with late frames (live), a missing video header,
    // a timestamp rollback; capped at 3 streams, so later streams overflow.
    post_ok(a, push_error(DOMAIN, APP, "late-1", t, late(&[3046, 2953], &[2917]))).await;
    post_ok(a, push_error(DOMAIN, APP, "codec-1", t, json!([{"type": 10, "count": 1}]))).await;
    post_ok(a, push_error(DOMAIN, APP, "rollback-1", t, json!([{"type": 1, "count": 1}]))).await;
    // A desc CSS might one day change: counted, but its gap is unreadable.
    post_ok(
        a,
        push_error(
            DOMAIN,
            APP,
            "rollback-1",
            t + 1,
            json!([{"type": 7, "count": 1, "detail": [{"desc": "audio late", "occur_time": t}]}]),
        ),
    )
    .await;
    if round > 0 {
        post_ok(a, push_error(DOMAIN, APP, &format!("extra-{round}"), t, json!([{"type": 5, "count": 1}]))).await;
        // Probing without the key.
        for _ in 0..3 {
            let probe = push_error(DOMAIN, APP, "probe", t, json!([{"type": 1, "count": 1}]));
            assert_eq!(a.post(probe.to_string()).await.0, 401);
        }
        // A CSS retry, and an event type nobody handles.
        let retry = signed_now(push_error(DOMAIN, APP, "codec-1", t, json!([{"type": 10, "count": 1}])), KEY);
        a.post(retry.to_string()).await;
        post_ok(b, json!({"event_type": 100, "stream_id": "rec"})).await;
    }
    // Instance b: two more streams of the same domain.
    post_ok(b, push_error(DOMAIN, APP, "b-1", t, json!([{"type": 5, "count": 3}]))).await;
    post_ok(b, push_error(DOMAIN, APP, "b-2", t, late(&[4000], &[]))).await;
}

#[actix_web::test]
#[ignore = "needs prometheus: bash .ci/run installs it"]
async fn every_dashboard_query_and_rule_returns_data() {
    let prometheus = tools::require("prometheus");
    let started = Instant::now();
    let a = spawn_app_real_clock(&["--callback-key", KEY, "--max-streams", "3"]).await;
    let b = spawn_app_real_clock(&["--callback-key", KEY]).await;
    let dead = format!("127.0.0.1:{}", tools::free_port());
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: [alerts.yml]\n\
         scrape_configs:\n\
         - job_name: css-push-exporter\n\
         \x20 static_configs: [{{targets: ['{}', '{}', '{dead}']}}]\n",
        target(&a),
        target(&b)
    );
    let rules = std::fs::read_to_string(tools::repo().join("prometheus/alerts.yml")).unwrap();
    let prom = Prometheus::start(&prometheus, &config, &[("alerts.yml", rules)]).await;
    prom.wait_scraped(3).await;

    // Lifecycle: late-1 is live on a; on b one stream is live, one ended.
    post_ok(&a, push_lifecycle(DOMAIN, APP, "late-1", "seq-late", None)).await;
    // On another CSS access node than the others: a node with a rest of the fleet.
    let mut live_b1 = push_lifecycle(DOMAIN, APP, "live-b1", "seq-b1", None);
    live_b1["node"] = "198.51.100.21".into();
    post_ok(&b, live_b1).await;
    post_ok(&b, push_lifecycle(DOMAIN, APP, "ended-b", "seq-e", None)).await;
    for r in 0..3 {
        round(&a, &b, r).await;
        actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    }
    post_ok(&b, push_lifecycle(DOMAIN, APP, "ended-b", "seq-e", Some((90_000, 1)))).await;

    // Everything that must return data, with its Grafana variables filled in.
    let all =
        [("job", ".*"), ("instance", ".*"), ("domain", ".*"), ("app", ".*"), ("stream_filter", ".*"), ("stream", ".*")];
    let one_stream = [
        ("job", ".*"),
        ("instance", ".*"),
        ("domain", DOMAIN),
        ("app", APP),
        ("stream_filter", ".*"),
        ("stream", "late-1"),
    ];
    let mut queries: Vec<(String, String)> = Vec::new();
    // Annotations must evaluate; they show events this test does not cause.
    let mut annotations: Vec<(String, String)> = Vec::new();
    // The SLO board reads windows of days: slo_rules.rs runs every one of its
    // panels against a real Prometheus with days of backfilled data.
    for name in DASHBOARDS.into_iter().filter(|&n| n != dashboards::SLO_DASHBOARD) {
        let d = dashboards::load(name);
        let vars: &[(&str, &str)] = if name.contains("stream") { &one_stream } else { &all };
        for (title, expr) in dashboards::expressions(&d) {
            queries.push((format!("{name}: {title}"), dashboards::substitute(&expr, vars)));
        }
        for (title, expr) in dashboards::annotation_expressions(&d) {
            annotations.push((format!("{name}: annotation {title}"), dashboards::substitute(&expr, vars)));
        }
        for v in d["templating"]["list"].as_array().unwrap() {
            if let Some(q) = v["definition"].as_str() {
                let expr = dashboards::variable_expression(q).unwrap_or_else(|| panic!("variable {q}"));
                // A label_values selector counts as data when any series matches.
                let expr = if q.starts_with("label_values(") { format!("count({expr})") } else { expr };
                queries.push((format!("{name}: variable {}", v["name"]), dashboards::substitute(&expr, vars)));
            }
        }
    }
    // Recording rules must return data; alerts need only evaluate (most
    // do not fire here: alerts_test.yml and alerting_e2e cover firing).
    let mut alerts = Vec::new();
    for (kind, name, expr) in dashboards::rules() {
        match kind.as_str() {
            "record" => queries.push((format!("record {name}"), expr)),
            _ => alerts.push((name, expr)),
        }
    }

    // Wait (bounded) for a scrape and a rule evaluation after the last post.
    let failures =
        prom.until_all_return_data(&queries, 30, Duration::from_millis(2500), Duration::from_millis(500)).await;
    assert!(failures.is_empty(), "{} of {} queries failed:\n{}", failures.len(), queries.len(), failures.join("\n"));
    for (name, expr) in alerts.iter().chain(&annotations) {
        prom.query(expr, None).await.unwrap_or_else(|e| panic!("{name}: {e} in {expr}"));
    }

    // Every rule evaluates cleanly.
    let groups = prom.api("/api/v1/rules", &[]).await.unwrap();
    for g in groups["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{r}");
        }
    }

    // Two instances behind one job: dashboard sums are the instances' sums.
    let overview = dashboards::load("css-push-overview.json");
    let exprs: BTreeMap<String, String> = dashboards::expressions(&overview).into_iter().collect();
    let at = tools::unix_now() - 1.0;
    let with_instance = |expr: &str, instance: &str| {
        dashboards::substitute(
            expr,
            &[
                ("job", ".*"),
                ("instance", instance),
                ("domain", ".*"),
                ("app", ".*"),
                ("stream_filter", ".*"),
                ("stream", ".*"),
            ],
        )
    };
    let (ta, tb) = (target(&a), target(&b));
    for title in [
        "Push errors /s (all domains) [A]",
        "Push error rate by domain [A]",
        "Push error rate by error type [A]",
        "Live streams (total) [A]",
        "Live streams [A]",
        "Streams tracked (all instances) [A]",
        "Dedup entries [A]",
        "Callbacks by outcome [A]",
        "Exporters up [A]",
    ] {
        let expr = exprs.get(title).unwrap_or_else(|| panic!("no panel {title}"));
        let total = by_labels(&prom, &with_instance(expr, ".*"), at).await;
        let part_a = by_labels(&prom, &with_instance(expr, &ta), at).await;
        let part_b = by_labels(&prom, &with_instance(expr, &tb), at).await;
        assert!(!total.is_empty(), "{title}: no data");
        for (labels, v) in &total {
            let sum = part_a.get(labels).unwrap_or(&0.0) + part_b.get(labels).unwrap_or(&0.0);
            assert!((v - sum).abs() <= 1e-9 * v.abs().max(1.0), "{title} {labels}: {v} != a + b = {sum}");
        }
    }
    let value = |title: &str| {
        let expr = dashboards::expressions(&overview).into_iter().find(|(t, _)| t == title).unwrap().1;
        with_instance(&expr, ".*")
    };
    assert_eq!(prom.value(&value("Streams tracked (all instances) [A]"), Some(at)).await, 3.0 + 4.0);
    assert_eq!(prom.value(&value("Exporters up [A]"), Some(at)).await, 2.0);
    assert_eq!(prom.value(&value("Exporters up [B]"), Some(at)).await, 1.0, "the dead target is down");
    let errors_a = prom.value(&format!("sum(rate(css_push_errors_total{{instance=\"{ta}\"}}[1m]))"), Some(at)).await;
    let errors_b = prom.value(&format!("sum(rate(css_push_errors_total{{instance=\"{tb}\"}}[1m]))"), Some(at)).await;
    assert!(errors_a > 0.0 && errors_b > 0.0, "both instances contribute: {errors_a} {errors_b}");
    // Live: late-1 on a, live-b1 on b (ended-b ended).
    assert_eq!(prom.value(&value("Live streams (total) [A]"), Some(at)).await, 2.0);

    // Since when: late-1 reported in each of 3 rounds, 1.1 s apart.
    let stream_board = dashboards::load("css-push-stream.json");
    let on_stream_board = |title: &str| {
        let expr = dashboards::expressions(&stream_board).into_iter().find(|(t, _)| t == title).unwrap().1;
        dashboards::substitute(&expr, &one_stream)
    };
    let first = prom.value(&on_stream_board("First error in range [A]"), Some(at)).await;
    let last = prom.value(&on_stream_board("Last error report [A]"), Some(at)).await;
    assert!(last - first >= 1500.0 && last - first < 10_000.0, "first {first} ms, last {last} ms");
    let span = by_labels(&prom, &with_instance(&exprs["Top streams by errors (5m), since when [D]"], ".*"), at).await;
    let late_1 = span.iter().find(|(labels, _)| labels.contains("late-1")).map(|(_, v)| *v);
    assert!(late_1.is_some_and(|v| (1.5..10.0).contains(&v)), "late-1 fails for {late_1:?} s: {span:?}");
    assert_eq!(prom.value(&on_stream_board("Health [B]"), Some(at)).await, 1.0, "late-1 is failing");

    // Recording rules over both instances, exactly.
    // late-1: 2 late video frames in each of 3 reports; a new series counts whole.
    assert_eq!(
        prom.value(
            r#"domain_app_stream_error:css_push_errors:increase5m{stream="late-1",error="video_frame_late"}"#,
            None
        )
        .await,
        6.0
    );
    // late-1, codec-1, rollback-1 on a; b-1, b-2 on b (overflow excluded).
    assert_eq!(
        prom.value(r#"domain_app:css_push_streams_with_errors:count5m{domain="push.example.com",app="live"}"#, None)
            .await,
        5.0
    );
    // Live: late-1 (errors) on a, live-b1 (none) on b.
    assert_eq!(
        prom.value(
            r#"domain_app:css_push_live_streams_with_errors:ratio5m{domain="push.example.com",app="live"}"#,
            None
        )
        .await,
        0.5
    );
    eprintln!("prometheus e2e: {} queries ok in {:?}", queries.len(), started.elapsed());
    a.stop().await;
    b.stop().await;
}

/// An instant query's result as labels (rendered) → value.
async fn by_labels(prom: &Prometheus, expr: &str, at: f64) -> BTreeMap<String, f64> {
    let result = prom.query(expr, Some(at)).await.unwrap_or_else(|e| panic!("{expr}: {e}"));
    result.iter().map(|s| (s["metric"].to_string(), tools::sample_value(s))).collect()
}
