//! End to end through Alertmanager: `simulate` (a real child process) →
//! exporter → Prometheus → Alertmanager (the example config, receivers
//! pointed at a webhook inside this test).
//!
//! The rules are a TEST COPY written by `prometheus/generate.py --speedup
//! 15`: the shipped rules with every duration divided by 15 (5-minute windows
//! become 20 s, `for: 10m` 40 s), so 75 s here are about 19 minutes of rule
//! time. The real durations are covered by `promtool test rules`
//! (prometheus/alerts_test.yml).
//!
//! 1. Calm: 200 live streams, `simulate --profile calm`: one troubled
//!    stream, rare one-off glitches of every type. No critical may fire; the
//!    troubled stream's warning reaches the pusher's ticket receiver.
//! 2. Incident: a busy `simulate` on the same domain (2 apps), most streams
//!    failing together. One page: every notification the pager gets is of
//!    one group (the domain), led by the domain-wide surge; no per-stream
//!    alert fires (the rules hold them back in PromQL, so Alertmanager is
//!    not sent one per failing stream), and no ticket goes out.
//!
//! The routing and inhibition of the SLO's alerts (slo_rules.yml) are shown
//! by posting their alerts to the same Alertmanager config
//! (`a_domain_incident_with_slo_pages_is_one_notification`).
use crate::dashboards;
use crate::helpers::*;
use crate::tools::{self, ChildGuard, Prometheus};
use actix_web::{web, App, HttpServer};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SPEEDUP: &str = "15";
const DOMAIN: &str = "demo.example.com";
const CALM: Duration = Duration::from_secs(75);

/// (path, body, when) of every POST the webhook received.
pub type Received = Arc<Mutex<Vec<(String, Value, Instant)>>>;

/// A webhook receiver on 127.0.0.1.
pub fn webhook() -> (String, Received, actix_web::dev::ServerHandle) {
    let received: Received = Arc::default();
    let state = web::Data::new(received.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).default_service(web::to(
            |req: actix_web::HttpRequest, body: web::Bytes, got: web::Data<Received>| async move {
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                got.lock().unwrap().push((req.path().to_owned(), json, Instant::now()));
                actix_web::HttpResponse::Ok().finish()
            },
        ))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), received, handle)
}

/// The group keys of the notifications the webhook got on `path`.
fn group_keys(received: &Received, path: &str) -> Vec<String> {
    let got = received.lock().unwrap();
    got.iter().filter(|(p, ..)| p == path).map(|(_, body, _)| body["groupKey"].to_string()).collect()
}

/// Firing alerts the webhook got on `path`, with when they arrived.
pub fn firing(received: &Received, path: &str) -> Vec<(Value, Instant)> {
    let got = received.lock().unwrap();
    let mut out = Vec::new();
    for (_, body, at) in got.iter().filter(|(p, ..)| p == path) {
        for a in body["alerts"].as_array().into_iter().flatten().filter(|a| a["status"] == "firing") {
            out.push((a.clone(), *at));
        }
    }
    out
}

/// The example alertmanager.yml, receivers at `hook`, each `(setting,
/// value)` of `waits` replacing the example's.
pub fn alertmanager_config(hook: &str, waits: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(tools::repo().join("prometheus/alertmanager.yml")).unwrap();
    let mut out = text.replace("http://alert-receiver.example.internal:5001", hook);
    for (from, to) in waits {
        assert!(out.contains(from), "the example config changed shape, no {from}:\n{out}");
        out = out.replace(from, to);
    }
    assert!(out.contains(hook), "the example config changed shape:\n{out}");
    out
}

/// The example alertmanager.yml, receivers at `hook`, waits of 1 s.
fn fast_alertmanager_config(hook: &str) -> String {
    alertmanager_config(hook, &[("group_wait: 30s", "group_wait: 1s"), ("group_interval: 5m", "group_interval: 1s")])
}

/// A real Alertmanager on `config`; (its guard, its base URL).
pub async fn start_alertmanager(binary: &Path, config: String) -> (ChildGuard, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
    let port = tools::free_port();
    let args = [
        "--config.file=alertmanager.yml".to_owned(),
        "--storage.path=data".to_owned(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=".to_owned(),
        "--log.level=warn".to_owned(),
    ];
    let mut am = ChildGuard::spawn("alertmanager", binary, &args, dir);
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::default();
    let started = Instant::now();
    loop {
        am.assert_running();
        if let Ok(res) = client.get(format!("{base}/-/ready")).send().await {
            if res.status().is_success() {
                return (am, base);
            }
        }
        assert!(started.elapsed() < Duration::from_secs(20), "alertmanager not ready:\n{}", am.log_tail());
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `css-push-exporter simulate` as a child process.
fn simulate(target: &str, flags: &[&str]) -> ChildGuard {
    // CSS's report interval (5 s) at the rules' speed-up.
    let mut args: Vec<String> = ["simulate", "--target", target, "--domain", DOMAIN, "--streams", "200", "--apps", "2"]
        .iter()
        .chain(&["--report-interval", "333ms"])
        .map(|s| s.to_string())
        .collect();
    args.extend(flags.iter().map(|s| s.to_string()));
    ChildGuard::spawn(
        "simulate",
        Path::new(env!("CARGO_BIN_EXE_css-push-exporter")),
        &args,
        tempfile::tempdir().unwrap(),
    )
}

#[actix_web::test]
#[ignore = "needs prometheus, prometheus-alertmanager and python3: bash .ci/run installs them"]
async fn a_calm_fleet_pages_nobody_and_a_domain_incident_pages_once() {
    let bins = tools::require_all(&["prometheus", "prometheus-alertmanager", "python3"]);
    let started = Instant::now();
    let (hook, received, hook_handle) = webhook();
    let (mut am, am_base) = start_alertmanager(&bins[1], fast_alertmanager_config(&hook)).await;

    let rules = tools::sped_up_rules(&bins[2], SPEEDUP);
    assert!(rules.contains("[20s]"), "{rules}");

    let app = spawn_app_real_clock(&[]).await;
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: [alerts.yml]\n\
         alerting:\n\
         \x20 alertmanagers: [{{static_configs: [{{targets: ['{}']}}]}}]\n\
         scrape_configs:\n\
         - job_name: css-push-exporter\n\
         \x20 static_configs: [{{targets: ['{}']}}]\n",
        am_base.trim_start_matches("http://"),
        app.metrics_base.trim_start_matches("http://")
    );
    let prom = Prometheus::start(&bins[0], &config, &[("alerts.yml", rules)]).await;
    prom.wait_scraped(1).await;

    // 1. Calm: the troubled stream (room-00000) reports about every 5 s of
    // rule time, 1 callback in 20 is a glitch: a dozen over the calm phase.
    let target = format!("{}/callback", app.base);
    let mut calm = simulate(
        &target,
        &["--profile", "calm", "--lifecycle", "--rate", "3.2", "--duration", "200s", "--concurrency", "2"],
    );
    let calm_started = Instant::now();
    while calm_started.elapsed() < CALM {
        calm.assert_running();
        am.assert_running();
        assert_eq!(firing(&received, "/pager"), vec![], "a calm fleet paged");
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
    let secs = CALM.as_secs() + 5;
    // (CSSPushExporterAbsent is pending for a second before the first scrape.)
    let critical = prom
        .query(&format!("count_over_time(ALERTS{{severity=\"critical\",alertstate=\"firing\"}}[{secs}s])"), None)
        .await
        .unwrap();
    assert!(critical.is_empty(), "critical alerts fired in a calm fleet: {critical:?}");
    // A calm fleet indeed: 200 live, few streams with errors
    // in any window, glitches of many types (codec headers included).
    assert_eq!(prom.value("sum(css_push_streams_live)", None).await, 200.0);
    let with_errors =
        prom.value(&format!("max_over_time(sum(domain:css_push_streams_with_errors:count5m)[{secs}s:1s])"), None).await;
    assert!((1.0..=12.0).contains(&with_errors), "streams with errors in a window: {with_errors}");
    let glitched = prom.value("count(count by (stream) (css_push_errors_total{stream!=\"room-00000\"}))", None).await;
    assert!((5.0..=30.0).contains(&glitched), "one-off glitches: {glitched}");
    let codec = prom.query("css_push_errors_total{error=~\".*codec_header_missing\"}", None).await.unwrap();
    assert!(!codec.is_empty(), "no codec header glitch in the calm phase; change the seed");
    // The troubled stream's sustained late frames: a ticket for its owner.
    let tickets = firing(&received, "/pusher-tickets");
    assert!(
        !tickets.is_empty(),
        "the troubled stream's warning never arrived; prometheus alerts: {:?}",
        prom.api("/api/v1/alerts", &[]).await
    );
    for (a, _) in &tickets {
        assert_eq!(a["labels"]["alertname"], "CSSPushStreamFramesLate", "{a}");
        assert_eq!(a["labels"]["stream"], "room-00000", "{a}");
        assert_eq!(a["labels"]["severity"], "warning", "{a}");
        assert!(
            a["annotations"]["runbook_url"].as_str().unwrap().ends_with("RUNBOOK.md#csspushstreamframeslate"),
            "{a}"
        );
        assert!(a["annotations"]["dashboard"].as_str().unwrap().contains("var-stream=room-00000"), "{a}");
    }

    // 2. Incident: most streams of the domain fail together.
    let _incident = simulate(&target, &["--profile", "busy", "--rate", "40", "--duration", "90s", "--seed", "2"]);
    let incident_started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(90);
    let paged_at = loop {
        let pages = firing(&received, "/pager");
        for (a, _) in &pages {
            assert_eq!(a["labels"]["scope"], "domain", "only the domain-wide criticals page: {a}");
        }
        if let Some((a, at)) = pages.iter().find(|(a, _)| a["labels"]["alertname"] == "CSSPushDomainErrorSurge") {
            assert_eq!(a["labels"]["domain"], DOMAIN, "{a}");
            assert!(a["annotations"]["runbook_url"].as_str().unwrap().ends_with("#csspushdomainerrorsurge"), "{a}");
            break *at;
        }
        am.assert_running();
        assert!(
            Instant::now() < deadline,
            "no page within 90 s; prometheus alerts: {:?}\nalertmanager log:\n{}",
            prom.api("/api/v1/alerts", &[]).await,
            am.log_tail()
        );
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("alerting e2e: paged {:?} into the incident", paged_at.duration_since(calm_started) - CALM);

    // The dashboards mark it: the overview's "Firing alerts" annotation has
    // the page; the stream board's has it too (no stream label), and of the
    // per-stream alerts only its own stream's.
    let annotation = |board: &str, vars: &[(&str, &str)]| {
        let d = dashboards::load(board);
        let (_, expr) = dashboards::annotation_expressions(&d).into_iter().find(|(n, _)| n == "Firing alerts").unwrap();
        dashboards::substitute(&expr, vars)
    };
    let on_overview = prom.query(&annotation("css-push-overview.json", &[]), None).await.unwrap();
    assert!(on_overview.iter().any(|a| a["metric"]["alertname"] == "CSSPushDomainErrorSurge"), "{on_overview:?}");
    let on_stream = prom
        .query(&annotation("css-push-stream.json", &[("domain", DOMAIN), ("stream", "room-00000")]), None)
        .await
        .unwrap();
    assert!(on_stream.iter().any(|a| a["metric"]["alertname"] == "CSSPushDomainErrorSurge"), "{on_stream:?}");
    for a in &on_stream {
        let stream = &a["metric"]["stream"];
        assert!(stream.is_null() || *stream == "room-00000", "another stream's alert on the stream board: {a}");
    }

    // One page, and no per-stream alert beyond the calm phase's troubled
    // stream (kept firing for a while, held back by the page), once the
    // incident has lasted longer than the stream alerts' `for` (40 s here).
    let settled = incident_started + Duration::from_secs(50);
    actix_web::rt::time::sleep(settled.saturating_duration_since(Instant::now()).max(Duration::from_secs(5))).await;
    let pager = group_keys(&received, "/pager");
    let mut groups = pager.clone();
    groups.sort();
    groups.dedup();
    assert_eq!(groups.len(), 1, "more than one page for one incident: {:?}", firing(&received, "/pager"));
    let incident_secs = incident_started.elapsed().as_secs();
    let stream_alerts = prom
        .query(
            &format!("count by (stream, alertstate) (count_over_time(ALERTS{{scope=\"stream\"}}[{incident_secs}s]))"),
            None,
        )
        .await
        .unwrap();
    for a in &stream_alerts {
        let m = &a["metric"];
        assert!(m["alertstate"] == "pending" || m["stream"] == "room-00000", "a per-stream alert fired: {a}");
    }
    let client = awc::Client::default();
    let alerts: Value =
        client.get(format!("{am_base}/api/v2/alerts")).send().await.unwrap().json().limit(16 << 20).await.unwrap();
    let in_am = alerts.as_array().unwrap();
    for a in in_am.iter().filter(|a| a["labels"]["scope"] == "stream") {
        assert_eq!(a["labels"]["stream"], "room-00000", "{a}");
        assert_eq!(a["status"]["state"], "suppressed", "{a}");
    }
    assert!(in_am.len() <= 3, "alerts in Alertmanager: {alerts}");
    let late = firing(&received, "/pusher-tickets")
        .into_iter()
        .filter(|(_, at)| *at > paged_at + Duration::from_secs(2))
        .count();
    assert_eq!(late, 0, "per-stream warnings notified during the domain-wide critical");
    let metrics = client.get(format!("{am_base}/metrics")).send().await.unwrap().body().await.unwrap();
    let received_total: f64 = String::from_utf8_lossy(&metrics)
        .lines()
        .filter(|l| l.starts_with("alertmanager_alerts_received_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    eprintln!(
        "alerting e2e: {} pager notification(s) in 1 group; {} alerts in Alertmanager; {} alerts posted to it in all; \
         per-stream alerts active in the incident: {} pending, {} firing; {:?} in all",
        pager.len(),
        in_am.len(),
        received_total,
        stream_alerts.iter().filter(|a| a["metric"]["alertstate"] == "pending").count(),
        stream_alerts.iter().filter(|a| a["metric"]["alertstate"] == "firing").count(),
        started.elapsed()
    );
    app.stop().await;
    hook_handle.stop(false).await;
}

#[test]
#[ignore = "needs python3: bash .ci/run installs it"]
fn generated_files_are_what_generate_py_writes() {
    let python = tools::require("python3");
    let generator = tools::repo().join("tools/generate.py");
    tools::run_ok(&python, &[generator.to_str().unwrap(), "--check"]);
}

/// An alert as Prometheus posts it to Alertmanager.
fn alert(labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
    serde_json::json!({"labels": labels, "annotations": {}})
}

/// The SLO's page of a domain (slo_rules.yml: `CSSPushErrorBudgetBurn`,
/// one per domain) arrives with the surge (the rules hold one back while the
/// other pages; here both, as a race would leave them), the SLO's tickets of
/// the domain's apps and a stream's ticket; an exporter is down meanwhile.
/// The example config makes that two pages, one per incident (the
/// domain's, the exporters' down instance), and sends no ticket.
#[actix_web::test]
#[ignore = "needs prometheus-alertmanager: bash .ci/run installs it"]
async fn a_domain_incident_with_slo_pages_is_one_notification() {
    let am_bin = tools::require("prometheus-alertmanager");
    let (hook, received, hook_handle) = webhook();
    let (mut am, am_base) = start_alertmanager(&am_bin, fast_alertmanager_config(&hook)).await;
    let ticket = |app, long, short| {
        alert(&[
            ("alertname", "CSSPushErrorBudgetBurn"),
            ("severity", "warning"),
            ("scope", "app"),
            ("slo", "push-health"),
            ("domain", DOMAIN),
            ("app", app),
            ("long_window", long),
            ("short_window", short),
        ])
    };
    let alerts = Value::from(vec![
        alert(&[
            ("alertname", "CSSPushDomainErrorSurge"),
            ("severity", "critical"),
            ("scope", "domain"),
            ("domain", DOMAIN),
        ]),
        alert(&[
            ("alertname", "CSSPushErrorBudgetBurn"),
            ("severity", "critical"),
            ("scope", "domain"),
            ("slo", "push-health"),
            ("domain", DOMAIN),
        ]),
        ticket("live", "1d", "2h"),
        ticket("vod", "3d", "6h"),
        alert(&[
            ("alertname", "CSSPushErrorBudgetExhausted"),
            ("severity", "info"),
            ("scope", "app"),
            ("slo", "push-health"),
            ("domain", DOMAIN),
            ("app", "live"),
        ]),
        alert(&[
            ("alertname", "CSSPushStreamFramesLate"),
            ("severity", "warning"),
            ("scope", "stream"),
            ("domain", DOMAIN),
            ("app", "live"),
            ("stream", "room-1"),
            ("error", "video_frame_late"),
        ]),
        // Another domain's stream while an exporter is down: held too.
        alert(&[
            ("alertname", "CSSPushStreamFramesLate"),
            ("severity", "warning"),
            ("scope", "stream"),
            ("domain", "other.example.com"),
            ("app", "live"),
            ("stream", "room-2"),
            ("error", "video_frame_late"),
        ]),
        alert(&[
            ("alertname", "CSSPushExporterDown"),
            ("severity", "critical"),
            ("scope", "exporter"),
            ("job", "css-push-exporter"),
            ("instance", "b:9321"),
        ]),
        alert(&[
            ("alertname", "CSSPushStateSnapshotsFailing"),
            ("severity", "warning"),
            ("scope", "exporter"),
            ("job", "css-push-exporter"),
            ("instance", "b:9321"),
        ]),
    ]);
    let client = awc::Client::default();
    let res = client.post(format!("{am_base}/api/v2/alerts")).send_json(&alerts).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    // group_wait and group_interval are 1 s: 4 s is several flushes.
    actix_web::rt::time::sleep(Duration::from_secs(4)).await;
    am.assert_running();
    let pages = firing(&received, "/pager");
    let names: Vec<(String, String)> = pages
        .iter()
        .map(|(a, _)| (a["labels"]["alertname"].as_str().unwrap().to_owned(), a["labels"]["instance"].to_string()))
        .collect();
    let mut groups = group_keys(&received, "/pager");
    groups.sort();
    groups.dedup();
    // The domain's group and the exporters' group: one page per incident.
    assert_eq!(groups.len(), 2, "{names:?}");
    assert_eq!(group_keys(&received, "/pager").len(), 2, "one notification per group: {names:?}");
    let pages = ["CSSPushDomainErrorSurge", "CSSPushErrorBudgetBurn", "CSSPushExporterDown"];
    assert!(names.iter().all(|(n, _)| pages.contains(&n.as_str())), "{names:?}");
    assert_eq!(firing(&received, "/pusher-tickets"), vec![], "a stream ticket went out");
    assert_eq!(firing(&received, "/exporter-tickets"), vec![], "a ticket went out");
    hook_handle.stop(false).await;
}
