//! The overview's "CSS access nodes" row and the node rules through a real
//! Prometheus: an exporter fed pushes on four access nodes (one of them bad
//! throughout, one overseas), scraped every second, with the rules of
//! `prometheus/generate.py --speedup 60` (15-minute windows of 15 s), so
//! every panel of the row is queried as Grafana would and must show what
//! the traffic implies, and the degraded-node alert's condition names the
//! bad node only.
use crate::dashboards;
use crate::helpers::*;
use crate::tools::{self, Prometheus};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const DOMAIN: &str = "push.example.com";
/// (node, set_id): three mainland nodes, one overseas; the first is bad.
const NODES: [(&str, i64); 4] = [("198.51.100.1", 2), ("198.51.100.2", 2), ("198.51.100.3", 2), ("198.51.100.4", 50)];
const STREAMS_PER_NODE: usize = 5;
const SPEEDUP: &str = "60";

fn stream(node: usize, i: usize) -> String {
    format!("n{node}-s{i}")
}

async fn post_ok(app: &TestApp, body: Value) {
    let (status, answer) = app.post(body.to_string()).await;
    assert_eq!(status, 200, "{answer}: {body}");
}

/// A report of late video frames (bad) of the stream's session, covering
/// the last second.
fn bad_second(stream: &str) -> Value {
    let mut body = push_error(DOMAIN, "live", stream, now_ms(), json!([{"type": 6, "count": 1}]));
    body["sequence"] = format!("q-{stream}").into();
    body["report_interval"] = 1000.into();
    body
}

#[actix_web::test]
#[ignore = "needs prometheus and python3: bash .ci/run installs them"]
async fn the_access_node_row_and_rules_show_the_bad_node() {
    let bins = tools::require_all(&["prometheus", "python3"]);
    let started = Instant::now();
    let rules = tools::sped_up_rules(&bins[1], SPEEDUP);
    assert!(rules.contains("css_push_node_live_seconds_total{job=\"css-push-exporter\"}[15s]"), "{rules}");

    let app = spawn_app_real_clock(&[]).await;
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: [alerts.yml]\n\
         scrape_configs:\n\
         - job_name: css-push-exporter\n\
         \x20 static_configs: [{{targets: ['{}']}}]\n",
        app.metrics_base.trim_start_matches("http://")
    );
    let prom = Prometheus::start(&bins[0], &config, &[("alerts.yml", rules)]).await;
    prom.wait_scraped(1).await;

    for (n, (node, set_id)) in NODES.iter().enumerate() {
        for i in 0..STREAMS_PER_NODE {
            let s = stream(n, i);
            let mut start = push_lifecycle(DOMAIN, "live", &s, &format!("q-{s}"), None);
            start["node"] = (*node).into();
            start["set_id"] = (*set_id).into();
            post_ok(&app, start).await;
        }
    }
    // 20 s: node 0's streams bad every second; one stream of node 1 bad one
    // second in five (a calm node's glitches).
    for second in 0..20 {
        for i in 0..STREAMS_PER_NODE {
            post_ok(&app, bad_second(&stream(0, i))).await;
        }
        if second % 5 == 0 {
            post_ok(&app, bad_second(&stream(1, 0))).await;
        }
        actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    }
    // Ends: a CSS internal error on node 2, a pusher network error overseas, a normal stop on node 1.
    for (n, errcode) in [(2, 5), (3, 13), (1, 1)] {
        let s = stream(n, STREAMS_PER_NODE - 1);
        post_ok(&app, push_lifecycle(DOMAIN, "live", &s, &format!("q-{s}"), Some((20_000, errcode)))).await;
    }
    // Read at one time, a few scrapes and rule evaluations after the last callback.
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    let at = tools::unix_now();

    let overview = dashboards::load("css-push-overview.json");
    let vars =
        [("job", ".*"), ("instance", ".*"), ("domain", ".*"), ("app", ".*"), ("stream_filter", ".*"), ("stream", ".*")];
    let row: BTreeMap<String, String> =
        row_panels(&overview).into_iter().map(|(title, expr)| (title, dashboards::substitute(&expr, &vars))).collect();
    assert_eq!(row.len(), 8, "{:?}", row.keys());
    let queries: Vec<(String, String)> = row.iter().map(|(t, e)| (t.clone(), e.clone())).collect();
    let failures =
        prom.until_all_return_data(&queries, 30, Duration::from_millis(2500), Duration::from_millis(500)).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let q = |title: &str| row.get(title).unwrap_or_else(|| panic!("no panel {title}")).clone();
    let by = |result: Vec<Value>, label: &str| -> BTreeMap<String, f64> {
        result.iter().map(|s| (s["metric"][label].as_str().unwrap_or("").to_owned(), tools::sample_value(s))).collect()
    };

    // The top nodes: node 0 all bad, node 1 a little, above the fleet's line.
    let top =
        by(prom.query(&q("Top nodes by bad share (15m), against the fleet [A]"), Some(at)).await.unwrap(), "node");
    let fleet = prom.value(&q("Top nodes by bad share (15m), against the fleet [B]"), Some(at)).await;
    let bad_node = top[NODES[0].0];
    assert!(bad_node > 0.5 && bad_node <= 1.0, "{top:?}");
    assert!(top[NODES[1].0] > 0.0 && top[NODES[1].0] < 0.1, "{top:?}");
    assert!(fleet > top[NODES[1].0] && fleet < bad_node, "fleet {fleet}: {top:?}");
    // The table: node 0 many times the rest; live streams now.
    let ratio = by(prom.query(&q("Nodes by bad share (15m) [B]"), Some(at)).await.unwrap(), "node");
    assert!(ratio[NODES[0].0] > 5.0, "{ratio:?}");
    assert!(ratio[NODES[1].0] < 1.0, "{ratio:?}");
    let live = by(prom.query(&q("Nodes by bad share (15m) [C]"), Some(at)).await.unwrap(), "node");
    assert_eq!(live[NODES[0].0], 5.0);
    assert_eq!(live[NODES[2].0], 4.0, "one stream ended: {live:?}");
    // Ends by cause per node: on each session's node.
    let ends = prom.query(&q("Push ends by cause per node [A]"), Some(at)).await.unwrap();
    let mut moving: Vec<(String, String)> = ends
        .iter()
        .filter(|s| tools::sample_value(s) > 0.0)
        .map(|s| (s["metric"]["node"].as_str().unwrap().to_owned(), s["metric"]["cause"].as_str().unwrap().to_owned()))
        .collect();
    moving.sort();
    let expected = [(NODES[1].0, "pusher_stopped"), (NODES[2].0, "css_internal"), (NODES[3].0, "pusher_network")];
    assert_eq!(moving, expected.map(|(n, c)| (n.to_owned(), c.to_owned())));
    // Regions.
    let regions = by(prom.query(&q("Live streams by region [A]"), Some(at)).await.unwrap(), "region");
    assert_eq!(regions, BTreeMap::from([("mainland".to_owned(), 13.0), ("overseas".to_owned(), 4.0)]));
    let shares = by(prom.query(&q("Bad share by region (15m) [A]"), Some(at)).await.unwrap(), "region");
    assert!(shares["mainland"] > 0.2 && shares["overseas"] == 0.0, "{shares:?}");

    // The degraded-node ticket's condition holds for node 0 alone.
    let (_, _, degraded) = dashboards::rules().into_iter().find(|(_, name, _)| name == "CSSPushNodeDegraded").unwrap();
    // As in the test copy: 3 live streams over a window of 15 s, not 15 min.
    assert!(degraded.contains("3 * 900"), "{degraded}");
    let firing = by(prom.query(&degraded.replace("3 * 900", "3 * 15"), Some(at)).await.unwrap(), "node");
    assert_eq!(firing.keys().collect::<Vec<_>>(), [NODES[0].0], "{firing:?}");
    eprintln!("nodes e2e: {} panel queries ok in {:?}", queries.len(), started.elapsed());
    app.stop().await;
}

/// (panel title [refId], expression) of the "CSS access nodes" row.
fn row_panels(d: &Value) -> Vec<(String, String)> {
    let panels = d["panels"].as_array().unwrap();
    let at = panels.iter().position(|p| p["type"] == "row" && p["title"] == "CSS access nodes").expect("the row");
    let mut out = Vec::new();
    for p in panels[at + 1..].iter().take_while(|p| p["type"] != "row") {
        for t in p["targets"].as_array().unwrap() {
            let title = format!("{} [{}]", p["title"].as_str().unwrap(), t["refId"].as_str().unwrap());
            out.push((title, t["expr"].as_str().unwrap().to_owned()));
        }
    }
    out
}
