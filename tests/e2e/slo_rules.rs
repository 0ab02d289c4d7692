//! The push-health SLO's rules and dashboard (prometheus/slo.py,
//! grafana/slo.py): the generated files are up to date, promtool checks
//! them and runs their unit tests over synthetic days; and a real
//! Prometheus, started on a synthetic TSDB (two days of exporter series
//! backfilled with `promtool tsdb create-blocks-from openmetrics`),
//! evaluates every SLO rule and every panel of the SLO dashboard with data,
//! with the values the synthetic traffic implies.
use crate::dashboards;
use crate::tools;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const RULES: &str = "prometheus/slo_rules.yml";
const TESTS: &str = "prometheus/slo_rules_test.yml";
const JOB: &str = "css-push-exporter";
const SLO: &str = "push-health";

#[test]
#[ignore = "needs python3 and promtool: bash .ci/run installs them"]
fn slo_files_are_up_to_date_valid_and_unit_tested() {
    let found = tools::require_all(&["python3", "promtool"]);
    let (python, promtool) = (&found[0], &found[1]);
    // Each runs alone too (tools/generate.py runs them all).
    tools::run_ok(python, &["prometheus/slo.py", "--check"]);
    tools::run_ok(python, &["grafana/slo.py", "--check"]);
    tools::run_ok(python, &["prometheus/interop.py", "--check"]);
    assert!(tools::run_ok(promtool, &["check", "rules", RULES]).contains("SUCCESS"));
    assert!(tools::run_ok(promtool, &["test", "rules", TESTS]).contains("SUCCESS"));
    // Every tier is shown firing and, elsewhere, silent; so is exhaustion.
    let tests = std::fs::read_to_string(tools::repo().join(TESTS)).unwrap();
    for (long, short) in [("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")] {
        let firing = format!("\"long_window\": \"{long}\", \"short_window\": \"{short}\"");
        assert!(tests.contains(&firing), "tier {long}/{short} never tested firing");
    }
    assert!(tests.contains("\"scope\": \"domain\""), "the domain roll-up never tested firing");
    assert!(tests.contains("alertname: CSSPushErrorBudgetExhausted, exp_alerts: []"));
    assert!(tests.contains("alertname: CSSPushErrorBudgetExhausted\n"));
    assert!(tests.matches("alertname: CSSPushErrorBudgetBurn, exp_alerts: []").count() >= 10);
}

/// The SLO dashboard's own invariants (dashboards::DASHBOARDS lists it, so
/// the shared lint covers its style).
#[test]
fn slo_dashboard_links_and_sections() {
    let d = dashboards::load("css-push-slo.json");
    assert_eq!(d["uid"], "css-push-slo");
    let vars: Vec<&str> =
        d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(vars, ["datasource", "job", "instance", "domain", "app", "slo", "window"]);
    let text = d.to_string();
    for needle in ["/d/css-push-overview/css-push-overview?", "/d/css-push-stream/css-push-stream?", "ALERTS{"] {
        assert!(text.contains(needle), "no {needle}");
    }
    for p in dashboards::panels(&d).iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap();
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        assert!(p["description"].as_str().is_some_and(|s| s.len() > 10), "{title}: description");
        assert!(p["fieldConfig"]["defaults"]["unit"].as_str().is_some_and(|u| !u.is_empty()), "{title}: unit");
        for (_, expr) in dashboards::expressions(&serde_json::json!({"panels": [p]})) {
            // Long windows come from recordings; ranges only from Grafana.
            for (i, _) in expr.match_indices('[') {
                let rest = &expr[i + 1..];
                assert!(rest.starts_with("$__rate_interval]") || rest.starts_with("$__range]"), "{title}: {expr}");
            }
        }
    }
    // The burn-rate panel draws every tier's threshold.
    let burn = dashboards::panels(&d).into_iter().find(|p| p["title"] == "Burn rate per window").unwrap();
    let lines: Vec<f64> = burn["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["value"].as_f64())
        .collect();
    assert_eq!(lines, [1.0, 3.0, 6.0, 14.4]);
}

/// One (domain, app) of the synthetic fleet.
struct Pair {
    domain: String,
    app: String,
    streams: f64,
    bad_share: f64,
}

impl Pair {
    fn new(domain: &str, app: &str, streams: f64, bad_share: f64) -> Self {
        Self { domain: domain.to_owned(), app: app.to_owned(), streams, bad_share }
    }
}

/// Writes OpenMetrics text of `hours` of exporter series for `pairs`, every
/// `step` seconds up to `end`, and the long-window group's 5-minute slices
/// for `slice_days` (what Prometheus would have recorded meanwhile).
fn synthetic(out: &mut impl Write, pairs: &[Pair], end: i64, hours: i64, step: i64, slice_days: i64) {
    let start = end - hours * 3600;
    let mut series = |name: &str, labels: &str, from: i64, every: i64, value: &dyn Fn(i64) -> f64| {
        let mut t = from;
        while t <= end {
            writeln!(out, "{name}{{{labels}}} {} {t}", value(t)).unwrap();
            t += every;
        }
    };
    let job = format!("job=\"{JOB}\",instance=\"a:9321\"");
    series("css_push_exporter_build_info", &format!("{job},version=\"test\""), start, step, &|_| 1.0);
    for (i, p) in pairs.iter().enumerate() {
        let pair = format!("domain=\"{}\",app=\"{}\"", p.domain, p.app);
        let live = move |t: i64| p.streams * (t - start) as f64;
        series("css_push_live_seconds_total", &format!("{job},{pair}"), start, step, &live);
        let bad = move |t: i64| p.bad_share * live(t);
        series("css_push_bad_seconds_total", &format!("{job},{pair},slo=\"{SLO}\""), start, step, &bad);
        if p.bad_share > 0.0 {
            let unattributed = move |t: i64| 0.1 * bad(t);
            series(
                "css_push_slo_unattributed_seconds_total",
                &format!("{job},{pair},slo=\"{SLO}\""),
                start,
                step,
                &unattributed,
            );
            // Late video frames (a bad type): one a second from one stream.
            let stream = format!("{job},{pair},stream=\"s{i}\",error_type=\"6\",error=\"video_frame_late\"");
            series("css_push_errors_total", &stream, start, step, &|t| (t - start) as f64);
        }
        let slices = end - slice_days * 86400;
        let live_slice = p.streams * 300.0;
        series("slo:live_seconds:increase5m", &pair, slices, 300, &|_| live_slice);
        series("slo:bad_seconds:increase5m", &format!("{pair},slo=\"{SLO}\""), slices, 300, &|_| {
            p.bad_share * live_slice
        });
    }
    writeln!(out, "# EOF").unwrap();
}

/// Backfills `dir`/data (TSDB blocks) with what `write` writes as OpenMetrics.
fn backfill(promtool: &Path, dir: &Path, write: impl FnOnce(&mut BufWriter<File>)) {
    let input = dir.join("input.om");
    let mut out = BufWriter::new(File::create(&input).unwrap());
    write(&mut out);
    out.flush().unwrap();
    drop(out);
    let data = dir.join("data");
    tools::run_ok(
        promtool,
        &["tsdb", "create-blocks-from", "openmetrics", input.to_str().unwrap(), data.to_str().unwrap()],
    );
    std::fs::remove_file(input).unwrap();
}

/// A real Prometheus on `dir`'s backfilled `data/`, loading the SLO rules
/// with the long-window group evaluated every `long_interval` so a test need
/// not wait 5 minutes for its first evaluation.
async fn start_prometheus(prometheus: &Path, dir: tempfile::TempDir, long_interval: &str) -> tools::Prometheus {
    let rules = std::fs::read_to_string(tools::repo().join(RULES)).unwrap();
    let rules = rules.replace("    interval: 5m\n", &format!("    interval: {long_interval}\n"));
    let config = "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [slo_rules.yml]\n";
    let files = [("slo_rules.yml", rules)];
    let patience = (Duration::from_secs(60), Duration::from_secs(30));
    tools::Prometheus::start_in(prometheus, dir, config, &files, patience).await
}

#[actix_web::test]
#[ignore = "needs prometheus and promtool: bash .ci/run installs them"]
async fn every_slo_rule_and_panel_returns_data_in_a_real_prometheus() {
    let found = tools::require_all(&["prometheus", "promtool"]);
    let fleet = [
        Pair::new("push.example.com", "live", 20.0, 0.02),
        Pair::new("push.example.com", "small", 2.0, 0.0),
        Pair::new("other.example.com", "live", 10.0, 0.005),
    ];
    let dir = tempfile::tempdir().unwrap();
    // Two days of raw series every 15 s, and 2 days of 5-minute slices,
    // ending just now: rates over 5 minutes see the last samples.
    let end = crate::helpers::now_ms() / 1000 - 5;
    backfill(&found[1], dir.path(), |out| synthetic(out, &fleet, end, 48, 15, 2));
    let prom = start_prometheus(&found[0], dir, "1s").await;

    let vars = [("job", ".*"), ("instance", ".*"), ("domain", ".*"), ("app", ".*"), ("slo", SLO), ("window", "30d")];
    let board = dashboards::load("css-push-slo.json");
    let mut queries: Vec<(String, String)> = dashboards::expressions(&board)
        .into_iter()
        .map(|(title, expr)| (title, dashboards::substitute(&expr, &vars)))
        .collect();
    for v in board["templating"]["list"].as_array().unwrap() {
        let definition = v["definition"].as_str().unwrap_or("");
        if let Some((selector, _)) = definition.strip_prefix("label_values(").and_then(|d| d.rsplit_once(',')) {
            queries.push((
                format!("variable {}", v["name"]),
                format!("count({})", dashboards::substitute(selector, &vars)),
            ));
        }
    }
    let rules = std::fs::read_to_string(tools::repo().join(RULES)).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&rules).unwrap();
    let mut alerts = Vec::new();
    for g in doc["groups"].as_sequence().unwrap() {
        for r in g["rules"].as_sequence().unwrap() {
            let expr = r["expr"].as_str().unwrap().to_owned();
            match r["record"].as_str() {
                Some(name) => queries.push((format!("record {name}"), expr)),
                None => alerts.push(expr),
            }
        }
    }

    // Bounded wait for the first evaluations of both groups.
    let pause = Duration::from_millis(500);
    let failures = prom.until_all_return_data(&queries, 60, pause, pause).await;
    assert!(failures.is_empty(), "{} of {} queries failed:\n{}", failures.len(), queries.len(), failures.join("\n"));
    for expr in &alerts {
        prom.query(expr, None).await.unwrap_or_else(|e| panic!("{e} in {expr}"));
    }
    let groups = prom.api("/api/v1/rules", &[]).await.unwrap();
    for g in groups["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{r}");
        }
    }

    // The values the traffic implies: 2 % bad on push.example.com/live is
    // twice the 1 % budget, over every window; 0.5 % on the other app.
    let near = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() <= 0.03 * want.abs().max(0.01), "{what}: {got}, expected about {want}")
    };
    let live = r#"{domain="push.example.com",app="live"}"#;
    let other = r#"{domain="other.example.com",app="live"}"#;
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        near(prom.value(&format!("slo:sli_error:ratio_rate{w}{live}"), None).await, 0.02, w);
        near(prom.value(&format!("slo:burn_rate:ratio_rate{w}{other}"), None).await, 0.5, w);
    }
    near(prom.value(&format!("slo:live_seconds:rate1h{live}"), None).await, 20.0, "live streams");
    near(prom.value(&format!("slo:error_budget_remaining:ratio{live}"), None).await, -1.0, "remaining");
    near(prom.value(&format!("slo:error_budget_remaining:ratio{other}"), None).await, 0.5, "remaining");
    // Two days of slices in a 30-day window (and the test's own 1 s slices).
    let days = prom.value(&format!("slo:data_coverage:ratio30d{live}"), None).await * 30.0;
    assert!((2.0..2.3).contains(&days), "coverage: {days} days");
    // The 3d/6h ticket (burn 2 > 1) fires for the 2 % app only; the
    // exhaustion alert waits its 15 minutes; nothing pages. (Bounded wait:
    // the alerts follow the recordings by an evaluation.)
    let expected = [r#""push.example.com"/"live" "3d" "firing""#, r#""push.example.com"/"live" null "pending""#];
    let mut alerts = Vec::new();
    for _ in 0..40 {
        let all = prom.query(r#"ALERTS{alertname=~"CSSPushErrorBudget.*"}"#, None).await.unwrap();
        alerts = all
            .iter()
            .map(|a| {
                let m = &a["metric"];
                format!("{}/{} {} {}", m["domain"], m["app"], m["long_window"], m["alertstate"])
            })
            .collect();
        alerts.sort();
        if alerts == expected {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(alerts, expected);
    // The dashboard's stats over the selection (both domains).
    let title = |t: &str| queries.iter().find(|(q, _)| q == t).unwrap().1.clone();
    let error_free = prom.value(&title("Error-free over the window [A]"), None).await;
    near(1.0 - error_free, (0.02 * 20.0 + 0.005 * 10.0) / 32.0, "error-free");
    near(prom.value(&title("Unattributed share [A]"), None).await, 0.1 / 1.1, "unattributed");
    eprintln!("slo e2e: {} queries with data", queries.len());
}

/// BENCHMARKS.md, "SLO rule evaluation": the evaluation time of both SLO
/// rule groups for 1 000 (domain, app) pairs (50 domains of 20 apps) in a
/// real Prometheus, with 6 hours of raw series and `SLO_BENCH_DAYS` (default
/// 3) days of 5-minute slices. Minutes of backfill, so ignored; run with
/// `cargo test --test e2e slo_rules::rule_evaluation -- --ignored --nocapture`
/// (`.ci/run` skips it: a measurement, not a check).
#[actix_web::test]
#[ignore = "benchmark: backfills 1000 pairs, minutes"]
async fn rule_evaluation_time_for_1000_pairs() {
    let found = tools::require_all(&["prometheus", "promtool"]);
    let days: i64 = std::env::var("SLO_BENCH_DAYS").ok().and_then(|d| d.parse().ok()).unwrap_or(3);
    let pairs: Vec<Pair> =
        (0..1000).map(|i| Pair::new(&format!("d{}.example.com", i / 20), &format!("app{i}"), 10.0, 0.01)).collect();
    let dir = tempfile::tempdir().unwrap();
    let end = crate::helpers::now_ms() / 1000 - 5;
    let started = Instant::now();
    backfill(&found[1], dir.path(), |out| synthetic(out, &pairs, end, 6, 60, days));
    eprintln!("backfill: {:?}", started.elapsed());
    let prom = start_prometheus(&found[0], dir, "5s").await;
    // Ten evaluations of each group (bounded: 120 s).
    let mut seen: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    let cpu_before = prom.cpu_seconds().await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) && !(seen.len() == 2 && seen.values().all(|v| v.len() >= 10)) {
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        let groups = prom.api("/api/v1/rules", &[]).await.unwrap();
        for g in groups["groups"].as_array().unwrap() {
            let (name, at) = (g["name"].as_str().unwrap().to_owned(), g["lastEvaluation"].to_string());
            if g["evaluationTime"].as_f64().unwrap_or(0.0) > 0.0 && last.get(&name) != Some(&at) {
                seen.entry(name.clone()).or_default().push(g["evaluationTime"].as_f64().unwrap());
                last.insert(name, at);
            }
        }
    }
    let (cpu, wall) = (prom.cpu_seconds().await - cpu_before, started.elapsed().as_secs_f64());
    eprintln!(
        "prometheus CPU: {cpu:.1} s in {wall:.1} s ({:.0} % of one core), evaluations {:?}",
        100.0 * cpu / wall,
        seen.iter().map(|(g, v)| (g, v.len())).collect::<Vec<_>>()
    );
    for (group, mut times) in seen {
        times.sort_by(f64::total_cmp);
        eprintln!(
            "{group}: {} evaluations, median {:.1} ms, max {:.1} ms ({days} days of slices)",
            times.len(),
            times[times.len() / 2] * 1e3,
            times[times.len() - 1] * 1e3
        );
    }
    // Every pair evaluated (the raw series end at the backfill's start, so
    // after a slow backfill the 5m and 30m windows may already be empty).
    assert_eq!(prom.query("slo:sli_error:ratio_rate30d", None).await.unwrap().len(), 1000);
    assert_eq!(prom.query("slo:sli_error:ratio_rate6h", None).await.unwrap().len(), 1000);
    let groups = prom.api("/api/v1/rules", &[]).await.unwrap();
    for g in groups["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            let ms = r["evaluationTime"].as_f64().unwrap_or(0.0) * 1e3;
            if ms >= 5.0 {
                eprintln!("  {:.1} ms  {}", ms, r["name"].as_str().unwrap_or("?"));
            }
        }
    }
}
