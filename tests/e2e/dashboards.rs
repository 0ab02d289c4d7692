//! The Grafana dashboards (lint) and the Prometheus rules (promtool).
use crate::tools;
use serde_json::Value;
use std::collections::HashSet;

pub const DASHBOARDS: [&str; 2] = ["css-push-overview.json", "css-push-stream.json"];

/// A dashboard file, parsed.
pub fn load(name: &str) -> Value {
    let path = tools::repo().join("grafana/dashboards").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every panel, rows' nested panels included.
pub fn panels(dashboard: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p.clone());
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested.iter().cloned());
        }
    }
    out
}

/// (panel title, expression) for every query of every panel.
pub fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = format!("{} [{}]", p["title"].as_str().unwrap_or("?"), t["refId"].as_str().unwrap_or("?"));
            out.push((title, t["expr"].as_str().expect("target expr").to_owned()));
        }
    }
    out
}

/// Grafana's variable interpolation for a query sent to Prometheus:
/// `vars` are (name, regex value) pairs; `$__rate_interval` and friends get
/// what Grafana would give them with a 1 s scrape interval over a 1 h range.
pub fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let mut all: Vec<(String, String)> = vec![
        ("__rate_interval".into(), "1m".into()),
        ("__interval".into(), "15s".into()),
        ("__range".into(), "1h".into()),
    ];
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    // Longest names first, so $instance is not cut by a shorter name.
    all.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut s = expr.to_owned();
    for (k, v) in &all {
        s = s.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
    }
    assert!(!s.contains('$'), "uninterpolated variable in {s}");
    s
}

/// The rule groups of prometheus/alerts.yml: (kind "record"/"alert", name, expr).
pub fn rules() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(tools::repo().join("prometheus/alerts.yml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let mut out = Vec::new();
    for g in doc["groups"].as_sequence().unwrap() {
        for r in g["rules"].as_sequence().unwrap() {
            let expr = r["expr"].as_str().unwrap().to_owned();
            if let Some(name) = r["record"].as_str() {
                out.push(("record".into(), name.to_owned(), expr));
            } else {
                out.push(("alert".into(), r["alert"].as_str().unwrap().to_owned(), expr));
            }
        }
    }
    out
}

#[test]
fn dashboards_are_consistent() {
    let mut uids = HashSet::new();
    for name in DASHBOARDS {
        let d = load(name);
        let uid = d["uid"].as_str().expect("dashboard uid");
        assert!(uids.insert(uid.to_owned()), "{name}: uid {uid} used twice");
        assert_eq!(uid, name.trim_end_matches(".json"), "{name}: the uid is the file name (stable links)");
        let vars: Vec<&str> =
            d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(vars, ["datasource", "job", "instance", "domain", "app", "stream"], "{name}");
        assert_eq!(d["templating"]["list"][0]["type"], "datasource");

        let mut ids = HashSet::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            let id = p["id"].as_u64().unwrap_or_else(|| panic!("{name}/{title}: no id"));
            assert!(ids.insert(id), "{name}/{title}: panel id {id} used twice");
            if p["type"] == "row" {
                continue;
            }
            let ctx = format!("{name}/{title}");
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{ctx}: panel datasource");
            assert!(p["description"].as_str().is_some_and(|s| s.len() > 10), "{ctx}: description");
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
            assert!(!unit.is_empty(), "{ctx}: unit");
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{ctx}: targets"));
            assert!(!targets.is_empty(), "{ctx}: no query");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{ctx}: target datasource");
                let expr = t["expr"].as_str().unwrap();
                lint_expr(&ctx, expr);
            }
        }
    }
}

fn lint_expr(ctx: &str, expr: &str) {
    // No hard-coded job or instance: only the variables.
    for label in ["job", "instance"] {
        for op in ["=\"", "=~\"", "!=\"", "!~\""] {
            let needle = format!("{label}{op}");
            for (i, _) in expr.match_indices(&needle) {
                let before = expr[..i].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue; // e.g. "xjob=" is another label
                }
                let value = &expr[i + needle.len()..];
                assert!(value.starts_with(&format!("${label}\"")), "{ctx}: hard-coded {label} in {expr}");
            }
        }
    }
    // Raw (not recorded) per-exporter series are filtered by $job and $instance.
    if expr.contains("css_push_") && !expr.contains(":css_push_") || expr.contains("up{") {
        assert!(
            expr.contains("job=~\"$job\"") && expr.contains("instance=~\"$instance\""),
            "{ctx}: not filtered by $job/$instance: {expr}"
        );
    }
    // Range selectors: $__rate_interval (or $__range for whole-range stats).
    for (i, _) in expr.match_indices("}[") {
        let rest = &expr[i + 2..];
        assert!(rest.starts_with("$__rate_interval]") || rest.starts_with("$__range]"), "{ctx}: fixed range in {expr}");
    }
}

#[test]
fn provisioning_points_at_the_dashboards() {
    let text = std::fs::read_to_string(tools::repo().join("grafana/provisioning/dashboards/css-push.yml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(doc["providers"][0]["type"].as_str(), Some("file"));
    let text = std::fs::read_to_string(tools::repo().join("grafana/provisioning/datasources/prometheus.yml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(doc["datasources"][0]["type"].as_str(), Some("prometheus"));
}

#[test]
#[ignore = "needs promtool: bash .ci/run installs it"]
fn promtool_checks_and_unit_tests_pass() {
    let promtool = tools::require("promtool");
    let out = tools::run_ok(&promtool, &["check", "rules", "prometheus/alerts.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = tools::run_ok(&promtool, &["test", "rules", "prometheus/alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    tools::run_ok(&promtool, &["check", "config", "prometheus/prometheus.yml"]);
    // Every alert has its tests.
    let tests = std::fs::read_to_string(tools::repo().join("prometheus/alerts_test.yml")).unwrap();
    for (kind, name, _) in rules() {
        if kind == "alert" {
            assert!(tests.matches(&format!("alertname: {name}")).count() >= 2, "{name}: tested firing and not firing?");
        }
    }
}

#[test]
#[ignore = "needs amtool: bash .ci/run installs it"]
fn alertmanager_example_config_is_valid() {
    let amtool = tools::require("amtool");
    tools::run_ok(&amtool, &["check-config", "prometheus/alertmanager.yml"]);
}

#[test]
fn the_lint_catches_hard_coded_labels_and_fixed_ranges() {
    let ok = r#"sum(rate(css_push_errors_total{job=~"$job",instance=~"$instance"}[$__rate_interval]))"#;
    lint_expr("ok", ok);
    for bad in [
        r#"sum(rate(css_push_errors_total{job="css-push-exporter",instance=~"$instance"}[$__rate_interval]))"#,
        r#"sum(rate(css_push_errors_total{job=~"$job",instance="10.0.0.1:9321"}[$__rate_interval]))"#,
        r#"sum(rate(css_push_errors_total{job=~"$job",instance=~"$instance"}[5m]))"#,
        r#"sum(css_push_streams)"#,
    ] {
        let caught = std::panic::catch_unwind(|| lint_expr("bad", bad)).is_err();
        assert!(caught, "lint let through {bad}");
    }
}
