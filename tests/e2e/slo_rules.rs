//! The push-health SLO's rules and dashboard (prometheus/slo.py,
//! grafana/slo.py): the generated files are up to date, promtool checks
//! them and runs their unit tests over synthetic days; and a real
//! Prometheus, started on a synthetic TSDB (two days of exporter series
//! backfilled with `promtool tsdb create-blocks-from openmetrics`),
//! evaluates every SLO rule and every panel of the SLO dashboard with data,
//! with the values the synthetic traffic implies.
use crate::dashboards;
use crate::slo_fleet::{self, Fleet, Pair, SLO};
use crate::tools;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RULES: &str = "prometheus/slo_rules.yml";
const TESTS: &str = "prometheus/slo_rules_test.yml";

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
    // The end-to-end test's sped-up copy is valid too.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("slo_rules.yml");
    tools::run_ok(python, &["prometheus/slo.py", "--speedup", "30", "--output", copy.to_str().unwrap()]);
    assert!(tools::run_ok(promtool, &["check", "rules", copy.to_str().unwrap()]).contains("SUCCESS"));
    // Every alert is shown firing and, elsewhere, silent: the page (one per
    // domain), each ticket tier, exhaustion and saturation.
    let tests = std::fs::read_to_string(tools::repo().join(TESTS)).unwrap();
    for (long, short) in [("1d", "2h"), ("3d", "6h")] {
        let firing = format!("\"long_window\": \"{long}\", \"short_window\": \"{short}\"");
        assert!(tests.contains(&firing), "ticket {long}/{short} never tested firing");
    }
    assert!(tests.contains("{\"severity\": \"critical\", \"scope\": \"domain\""), "the page never tested firing");
    for alert in ["CSSPushErrorBudgetBurn", "CSSPushErrorBudgetExhausted", "CSSPushSloAccountingSaturated"] {
        assert!(tests.contains(&format!("alertname: {alert}, exp_alerts: []")), "{alert} never tested silent");
        assert!(tests.contains(&format!("alertname: {alert}\n")), "{alert} never tested firing");
    }
    // "Never fired in this span" checks: after recoveries, in calm fleets.
    assert!(tests.matches("count_over_time(ALERTS{").count() >= 10);
}

/// Another SLO file (a stricter objective over 7 days, 3 bad streams for a
/// page, 10 live streams): the rules follow it and their generated promtool
/// tests, scaled to its budget and factors, pass; mistakes in its optional
/// fields are errors.
#[test]
#[ignore = "needs python3 and promtool: bash .ci/run installs them"]
fn another_slo_file_scales_the_rules_and_their_tests() {
    let found = tools::require_all(&["python3", "promtool"]);
    let (python, promtool) = (&found[0], &found[1]);
    let dir = tempfile::tempdir().unwrap();
    let slo = dir.path().join("slo.toml");
    let site = dir.path().join("site.toml");
    let write = |fields: &str| {
        let text = "[[slo]]\nname = \"strict\"\nobjective = 0.999\nwindow = \"7d\"\nbad_error_types = [6, 7]\n";
        std::fs::write(&slo, format!("{text}{fields}")).unwrap();
    };
    std::fs::write(&site, format!("slo_file = \"{}\"\n", slo.display())).unwrap();
    let out = dir.path().join("out");
    let generate = |out: &Path| {
        std::process::Command::new(python)
            .args(["prometheus/slo.py", "--config", site.to_str().unwrap(), "--output-dir", out.to_str().unwrap()])
            .current_dir(tools::repo())
            .output()
            .unwrap()
    };
    write("min_live_streams = 10\nmin_bad_streams = 3\nreconnect_window = \"10m\"\n");
    assert!(generate(&out).status.success());
    let rules = std::fs::read_to_string(out.join(RULES)).unwrap();
    assert!(rules.contains("topk by (domain, app, slo) (2, "), "the 2 worst streams left out: {rules}");
    assert!(rules.contains(") >= 10\n"), "10 live streams: {rules}");
    let tests = out.join(TESTS);
    assert!(tools::run_ok(promtool, &["test", "rules", tests.to_str().unwrap()]).contains("SUCCESS"));
    for (fields, error) in [
        ("min_live_streams = 10\nmin_bad_streams = 0\n", "min_bad_streams must be a whole number, 1 or more"),
        ("min_live_streams = 10\nreconnect_window = \"2h\"\n", "reconnect_window must be a duration"),
        ("min_live_streams = 10\nreconnect_window = 300\n", "reconnect_window must be a duration"),
        ("min_live_streams = 10\nmin_bad = 2\n", "fields must be"),
    ] {
        write(fields);
        let run = generate(&dir.path().join("bad"));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && stderr.contains(error), "{fields:?}: {stderr}");
    }
}

/// Two SLOs with different bad error types in one file: live time is per
/// SLO, as the exporter exposes it, so every rule keeps `slo` where it
/// divides bad by live time; the generated scenarios of each SLO alone
/// burning on a pair both account for (its page alone, in time; each
/// ratio its own) pass in promtool. On rules that summed live time over
/// SLOs the burning SLO's ratio halved and its page came late. (The other
/// scenarios read one SLO each: `another_slo_file_...` runs them.)
#[test]
#[ignore = "needs python3 and promtool: bash .ci/run installs them"]
fn two_slos_on_one_pair_keep_their_own_ratios() {
    let found = tools::require_all(&["python3", "promtool"]);
    let (python, promtool) = (&found[0], &found[1]);
    let dir = tempfile::tempdir().unwrap();
    let (slo, site, out) = (dir.path().join("slo.toml"), dir.path().join("site.toml"), dir.path().join("out"));
    let shipped = std::fs::read_to_string(tools::repo().join("prometheus/slo.toml")).unwrap();
    let codec = "\n[[slo]]\nname = \"codec\"\nobjective = 0.995\nwindow = \"7d\"\nbad_error_types = [5, 8, 9]\n\
                 min_live_streams = 10\nmin_bad_streams = 3\nreconnect_window = \"10m\"\n";
    std::fs::write(&slo, format!("{shipped}{codec}")).unwrap();
    std::fs::write(&site, format!("slo_file = \"{}\"\n", slo.display())).unwrap();
    let args = ["prometheus/slo.py", "--config", site.to_str().unwrap(), "--output-dir", out.to_str().unwrap()];
    tools::run_ok(python, &args);
    let rules = std::fs::read_to_string(out.join(RULES)).unwrap();
    assert!(rules.contains("sum by (domain, app, slo) (rate(css_push_live_seconds_total{"), "{rules}");
    assert!(rules.contains("sum by (domain, app, slo) (increase(css_push_live_seconds_total{"), "{rules}");
    assert!(!rules.contains("group_left"), "a division that drops slo on one side: {rules}");
    let mut doc: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(out.join(TESTS)).unwrap()).unwrap();
    let several = |case: &serde_norway::Value| {
        let inputs = case["input_series"].as_sequence().unwrap();
        inputs.iter().any(|s| s["series"].as_str().unwrap().contains("domain=\"only-"))
    };
    let cases = doc["tests"].as_sequence_mut().unwrap();
    cases.retain(several);
    assert_eq!(cases.len(), 2, "one scenario per SLO burning alone");
    let tests = out.join("prometheus/several_slos_test.yml");
    std::fs::write(&tests, serde_norway::to_string(&doc).unwrap()).unwrap();
    assert!(tools::run_ok(promtool, &["test", "rules", tests.to_str().unwrap()]).contains("SUCCESS"));
}

/// Every page is a domain's or the exporter's: alerts.yml's incident
/// roll-ups read firing pages by `scope="domain"` (a page marks its
/// domain's incident) and nothing reads an app-scoped page, so one would
/// silence none of its streams' tickets.
#[test]
fn every_page_is_scoped_to_a_domain_or_the_exporter() {
    let mut pages = 0;
    for file in ["prometheus/alerts.yml", RULES] {
        let doc: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(tools::repo().join(file)).unwrap()).unwrap();
        for r in doc["groups"].as_sequence().unwrap().iter().flat_map(|g| g["rules"].as_sequence().unwrap()) {
            if r["labels"]["severity"].as_str() == Some("critical") {
                let scope = r["labels"]["scope"].as_str().unwrap_or("");
                assert!(["domain", "exporter"].contains(&scope), "{file}: {:?} pages for scope {scope:?}", r["alert"]);
                pages += 1;
            }
            let expr = r["expr"].as_str().unwrap();
            if r["record"].as_str().is_some_and(|n| n.ends_with(":css_push_incident:bool")) && expr.contains("ALERTS") {
                assert!(expr.contains("severity=\"critical\", scope=\"domain\"}"), "{:?}: {expr}", r["record"]);
            }
        }
    }
    assert!(pages >= 5, "{pages} pages found");
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
        for t in p["targets"].as_array().unwrap() {
            // Long windows come from recordings, or from the 5-minute
            // slices at one instant (a range query would read them again
            // at every step); other ranges only from Grafana.
            let expr = t["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices('[') {
                let rest = &expr[i + 1..];
                if dashboards::over_slices(expr, i) {
                    assert_eq!(t["instant"], true, "{title}: slices over a range query: {expr}");
                    continue;
                }
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

/// A real Prometheus on `dir`'s backfilled `data/`, scraping the fleet's
/// `target` every `scrape`, loading `rules` with the long-window group
/// evaluated every `long_interval` so a test need not wait 5 minutes for
/// its first evaluation.
async fn start_prometheus(
    prometheus: &Path,
    dir: tempfile::TempDir,
    rules: &str,
    (target, scrape): (&str, &str),
    long_interval: &str,
) -> tools::Prometheus {
    let config = format!(
        "global: {{evaluation_interval: 1s}}\nrule_files: [slo_rules.yml]\n{}",
        slo_fleet::scrape_config(target, scrape)
    );
    let files = [rule_file(rules, long_interval)];
    let patience = (Duration::from_secs(60), Duration::from_secs(30));
    tools::Prometheus::start_in(prometheus, dir, &config, &files, patience).await
}

/// The SLO rules as `start_prometheus` loads them.
fn rule_file(rules: &str, long_interval: &str) -> (&'static str, String) {
    ("slo_rules.yml", rules.replace("    interval: 5m\n", &format!("    interval: {long_interval}\n")))
}

fn shipped_rules() -> String {
    std::fs::read_to_string(tools::repo().join(RULES)).unwrap()
}

#[actix_web::test]
#[ignore = "needs prometheus and promtool: bash .ci/run installs them"]
async fn every_slo_rule_and_panel_returns_data_in_a_real_prometheus() {
    let found = tools::require_all(&["prometheus", "promtool"]);
    let born = tools::unix_now() - 3.0 * 86400.0;
    let mut fleet = Fleet::new(
        vec![
            // 2 % bad over 4 streams: 1.5 % without the worst.
            Pair::new("push.example.com", "live", 20, born, &[0.1; 4]),
            Pair::new("push.example.com", "small", 2, born, &[]),
            // 0.5 %, all of it one stream's.
            Pair::new("other.example.com", "live", 10, born, &[0.05]),
        ],
        300.0,
    );
    fleet.stream_series = true;
    fleet.accounting_series = true;
    let fleet = Arc::new(fleet);
    let dir = tempfile::tempdir().unwrap();
    // Two hours of raw series every 15 s and 2 days of 5-minute slices,
    // ending now; then the fleet scraped every second.
    slo_fleet::backfill(&found[1], dir.path(), &fleet, 2.0 * 3600.0, 2.0 * 86400.0, 15.0);
    let (target, server) = slo_fleet::serve(fleet.clone());
    let prom = start_prometheus(&found[0], dir, &shipped_rules(), (&target, "1s"), "1s").await;

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
    let doc: serde_norway::Value = serde_norway::from_str(&shipped_rules()).unwrap();
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

    // Bounded wait for the first evaluations of both groups (and the
    // alerts the "SLO alerts now" table shows).
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
    // twice the 1 % budget, over every window, 1.5 % without its worst
    // stream; 0.5 % on the other app, none without its one stream.
    let near = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() <= 0.03 * want.abs().max(0.01), "{what}: {got}, expected about {want}")
    };
    let live = r#"{domain="push.example.com",app="live"}"#;
    let other = r#"{domain="other.example.com",app="live"}"#;
    let ratio = |bad: &str, w: &str, pair: &str| {
        format!("slo:{bad}:rate{w}{pair} / on (domain, app, slo) slo:live_seconds:rate{w}{pair}")
    };
    for w in ["5m", "30m", "1h", "6h", "30d"] {
        near(prom.value(&ratio("bad_seconds", w, live), None).await, 0.02, w);
        near(prom.value(&ratio("bad_seconds", w, other), None).await, 0.005, w);
    }
    near(prom.value(&ratio("broad_bad_seconds", "5m", live), None).await, 0.015, "5m without the worst");
    near(prom.value(&ratio("broad_bad_seconds", "5m", other), None).await, 0.0, "5m without the worst");
    for w in ["2h", "1d", "3d"] {
        let sliced = |series: &str| format!("avg_over_time(slo:{series}:increase5m{live}[{w}])");
        let expr = format!("{} / on (domain, app, slo) {}", sliced("broad_bad_seconds"), sliced("live_seconds"));
        near(prom.value(&expr, None).await, 0.015, w);
    }
    near(prom.value(&format!("slo:live_seconds:rate1h{live}"), None).await, 20.0, "live streams");
    // Two days of slices in a 30-day window (and the test's own 1 s slices).
    let days = prom.value(&format!("slo:data_coverage:ratio30d{live}"), None).await * 30.0;
    assert!((2.0..2.3).contains(&days), "coverage: {days} days");
    // The 3d/6h ticket (1.5 % without the worst stream: burn 1.5 > 1)
    // fires for that app only; the exhaustion alert waits its 15 minutes;
    // nothing pages. (Bounded wait: the alerts follow the recordings.)
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
    let top = prom.query(&title("Top streams by bad seconds [A]"), None).await.unwrap();
    assert_eq!(top.len(), 5, "streams with bad seconds: {top:?}");
    eprintln!("slo e2e: {} queries with data", queries.len());
    server.stop(false).await;
}

/// BENCHMARKS.md, "SLO rule evaluation": series, samples per evaluation and
/// evaluation time of both SLO rule groups for 1 000 (domain, app) pairs
/// (50 domains of 20 apps, 10 live streams, 1 % bad over 2 streams) in a
/// real Prometheus: 6 hours of raw series every 15 s and `SLO_BENCH_DAYS`
/// (default 3) days of 5-minute slices backfilled, then the fleet scraped
/// every 15 s. `SLO_BENCH_RULES=old.yml:new.yml` measures each rules file
/// in turn on the same data, reloading Prometheus in between (an older
/// commit's: `git show REV:prometheus/slo_rules.yml > old.yml`); by default
/// the shipped file. Minutes of backfill, so ignored; run with `cargo test
/// --test e2e slo_rules::rule_evaluation -- --ignored --nocapture`
/// (`.ci/run` skips it: a measurement, not a check). The backfilled live
/// slices follow the rules' shape (with `slo` since live time is per SLO),
/// so files of both shapes are measured in separate runs.
#[actix_web::test]
#[ignore = "benchmark: backfills 1000 pairs, minutes"]
async fn rule_evaluation_time_for_1000_pairs() {
    let found = tools::require_all(&["prometheus", "promtool"]);
    let days: f64 = std::env::var("SLO_BENCH_DAYS").ok().and_then(|d| d.parse().ok()).unwrap_or(3.0);
    let rule_sets: Vec<(String, String)> = match std::env::var("SLO_BENCH_RULES") {
        Ok(list) => list
            .split(':')
            .map(|path| (path.to_owned(), std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))))
            .collect(),
        Err(_) => vec![(RULES.to_owned(), shipped_rules())],
    };
    let born = tools::unix_now() - (days + 1.0) * 86400.0;
    let pairs = (0..1000)
        .map(|i| Pair::new(&format!("d{}.example.com", i / 20), &format!("app{i}"), 10, born, &[0.06, 0.04]))
        .collect();
    let by_slo = |rules: &str| rules.contains("sum by (domain, app, slo) (increase(css_push_live_seconds_total");
    let shape = by_slo(&rule_sets[0].1);
    for (name, rules) in &rule_sets {
        assert_eq!(by_slo(rules), shape, "{name}: live slices of another shape than {}'s", rule_sets[0].0);
    }
    let mut fleet = Fleet::new(pairs, 300.0);
    fleet.live_slices_by_slo = shape;
    let fleet = Arc::new(fleet);
    let dir = tempfile::tempdir().unwrap();
    slo_fleet::backfill(&found[1], dir.path(), &fleet, 6.0 * 3600.0, days * 86400.0, 15.0);
    let (target, server) = slo_fleet::serve(fleet.clone());
    let prom = start_prometheus(&found[0], dir, &rule_sets[0].1, (&target, "15s"), "5s").await;
    for (i, (name, rules)) in rule_sets.iter().enumerate() {
        if i > 0 {
            prom.reload(&[rule_file(rules, "5s")]).await;
        }
        eprintln!("== {name} ({days} days of slices)");
        measure_rules(&prom, rules).await;
    }
    server.stop(false).await;
}

/// Ten evaluations of each group of `rules` (bounded: 180 s): their wall
/// times, Prometheus' CPU meanwhile, the samples each rule reads and the
/// series the recording rules write for the 1 000 pairs.
async fn measure_rules(prom: &tools::Prometheus, rules: &str) {
    let doc: serde_norway::Value = serde_norway::from_str(rules).unwrap();
    let expected: Vec<usize> =
        doc["groups"].as_sequence().unwrap().iter().map(|g| g["rules"].as_sequence().unwrap().len()).collect();
    let mut seen: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    // Each rule's evaluation times, by (group, position).
    let mut rule_times: std::collections::BTreeMap<(String, usize), Vec<f64>> = Default::default();
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    let cpu_before = prom.cpu_seconds().await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(180) && !(seen.len() == 2 && seen.values().all(|v| v.len() >= 10)) {
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        let groups = prom.api("/api/v1/rules", &[]).await.unwrap();
        let groups = groups["groups"].as_array().unwrap();
        // (After a reload, only once the new rules are in.)
        let loaded: Vec<usize> = groups.iter().map(|g| g["rules"].as_array().unwrap().len()).collect();
        if loaded != expected {
            continue;
        }
        for g in groups {
            let (name, at) = (g["name"].as_str().unwrap().to_owned(), g["lastEvaluation"].to_string());
            if g["evaluationTime"].as_f64().unwrap_or(0.0) > 0.0 && last.get(&name) != Some(&at) {
                seen.entry(name.clone()).or_default().push(g["evaluationTime"].as_f64().unwrap());
                for (i, r) in g["rules"].as_array().unwrap().iter().enumerate() {
                    let t = r["evaluationTime"].as_f64().unwrap_or(0.0);
                    rule_times.entry((name.clone(), i)).or_default().push(t);
                }
                last.insert(name, at);
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let (cpu, wall) = (prom.cpu_seconds().await - cpu_before, started.elapsed().as_secs_f64());
    eprintln!(
        "prometheus CPU: {cpu:.1} s in {wall:.1} s ({:.0} % of one core), evaluations {:?}",
        100.0 * cpu / wall,
        seen.iter().map(|(g, v)| (g, v.len())).collect::<Vec<_>>()
    );
    for (group, times) in seen {
        let max = times.iter().copied().fold(0.0, f64::max);
        eprintln!(
            "{group}: {} evaluations, median {:.1} ms, max {:.1} ms",
            times.len(),
            median(times.clone()) * 1e3,
            max * 1e3
        );
    }
    // Samples each rule reads (the query API's statistics for its
    // expression, evaluated now), summed per group; the series the
    // recording rules write.
    let groups = prom.api("/api/v1/rules", &[]).await.unwrap();
    let mut recorded = std::collections::BTreeSet::new();
    for g in groups["groups"].as_array().unwrap() {
        let mut total = 0.0;
        let group = g["name"].as_str().unwrap();
        for (i, r) in g["rules"].as_array().unwrap().iter().enumerate() {
            let expr = r["query"].as_str().unwrap();
            let data = prom.api("/api/v1/query", &[("query", expr), ("stats", "all")]).await.unwrap();
            let samples = data["stats"]["samples"]["totalQueryableSamples"].as_f64().unwrap();
            total += samples;
            let ms = median(rule_times.remove(&(group.to_owned(), i)).unwrap_or_default()) * 1e3;
            let name = r["name"].as_str().unwrap();
            eprintln!("  {ms:7.1} ms {samples:11.0} samples  {name}");
            if r["type"] == "recording" {
                recorded.insert(name.to_owned());
            }
        }
        eprintln!("{}: {} rules, {total:.0} samples per evaluation", g["name"], g["rules"].as_array().unwrap().len());
    }
    let mut series = 0.0;
    for name in &recorded {
        let count = prom.query(&format!("count({name}{{domain!=\"\"}})"), None).await.unwrap();
        series += count.first().map_or(0.0, tools::sample_value);
    }
    eprintln!("recorded series of the pairs: {series} ({} per pair)", series / 1000.0);
    assert!(series >= 1000.0, "the rules recorded nothing for the pairs");
}
