//! The Grafana dashboards (lint) and the Prometheus rules (promtool).
use crate::tools;
use css_push_exporter::ingest::outcome::OutcomeKind;
use serde_json::{json, Value};
use std::collections::HashSet;

pub const DASHBOARDS: [&str; 3] = ["css-push-overview.json", "css-push-stream.json", SLO_DASHBOARD];
/// The push-health SLO's board (grafana/slo.py): an SLO and window to pick
/// instead of a stream.
pub const SLO_DASHBOARD: &str = "css-push-slo.json";

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

/// (annotation name, expression) of every annotation query.
pub fn annotation_expressions(dashboard: &Value) -> Vec<(String, String)> {
    let list = dashboard["annotations"]["list"].as_array().expect("annotations");
    list.iter().map(|a| (a["name"].as_str().unwrap().to_owned(), a["expr"].as_str().unwrap().to_owned())).collect()
}

/// The PromQL a query variable runs: `label_values(selector, label)` is a
/// series lookup of `selector`; `query_result(expr)` an instant query.
pub fn variable_expression(definition: &str) -> Option<String> {
    if let Some(inner) = definition.strip_prefix("query_result(").and_then(|d| d.strip_suffix(')')) {
        return Some(inner.to_owned());
    }
    let inner = definition.strip_prefix("label_values(")?.strip_suffix(')')?;
    inner.rsplit_once(',').map(|(selector, _)| selector.to_owned())
}

/// Grafana's variable interpolation for a query sent to Prometheus:
/// `vars` are (name, regex value) pairs; `$__rate_interval` and friends get
/// what Grafana would give them with a 1 s scrape interval over the last hour.
pub fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let from = (tools::unix_now() - 3600.0).floor();
    let mut all: Vec<(String, String)> = vec![
        ("__rate_interval".into(), "1m".into()),
        ("__interval".into(), "15s".into()),
        ("__range".into(), "1h".into()),
        ("__from:date:seconds".into(), format!("{from}")),
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
        let last = if name == SLO_DASHBOARD { ["slo", "window"] } else { ["stream_filter", "stream"] };
        assert_eq!(vars, ["datasource", "job", "instance", "domain", "app", last[0], last[1]], "{name}");
        assert_eq!(d["templating"]["list"][0]["type"], "datasource");
        lint_variables(name, &d);
        for (what, expr) in annotation_expressions(&d) {
            lint_expr(&format!("{name}/annotation {what}"), &expr);
        }

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
            if p["type"] == "stat" {
                lint_stat(&ctx, &p);
            }
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{ctx}: targets"));
            assert!(!targets.is_empty(), "{ctx}: no query");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{ctx}: target datasource");
                let expr = t["expr"].as_str().unwrap();
                lint_expr(&ctx, expr);
                if title.contains("(all ") {
                    for var in ["$domain", "$app", "$stream"] {
                        assert!(!expr.contains(var), "{ctx}: says all, yet filtered by {var}: {expr}");
                    }
                }
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
    lint_ranges(ctx, expr);
}

/// Ranges and subqueries: $__rate_interval (or $__range for whole-range
/// stats), never a fixed duration, but over the SLO's 5-minute slices.
fn lint_ranges(ctx: &str, expr: &str) {
    for (i, _) in expr.match_indices('[') {
        let rest = &expr[i + 1..];
        assert!(
            ["$__rate_interval]", "$__range]", "$__range:]"].iter().any(|ok| rest.starts_with(ok))
                || over_slices(expr, i),
            "{ctx}: fixed range in {expr}"
        );
    }
}

/// Whether the range opening at `expr[i]` reads the SLO rules' 5-minute
/// slices (`slo:…:increase5m{…}[1d]`): a fixed window of a few hundred
/// recorded samples, what the slices are for (an SLO window is fixed).
pub fn over_slices(expr: &str, i: usize) -> bool {
    let Some(open) = expr[..i].strip_suffix('}').and_then(|b| b.rfind('{')) else { return false };
    let head = &expr[..open];
    let start = head.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).map_or(0, |p| p + 1);
    let name = &head[start..];
    name.starts_with("slo:") && name.ends_with(":increase5m")
}

/// Grafana's own variables the dashboards may use.
const BUILTIN_VARIABLES: [&str; 8] =
    ["__rate_interval", "__interval", "__range", "__from", "__url_time_range", "__data", "__field", "__all"];

/// Every `$name`, `${name}`, `${name:format}` and `${name.field}` in `text`.
fn variable_references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices('$') {
        let rest = text[i + 1..].strip_prefix('{').unwrap_or(&text[i + 1..]);
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        out.push(name);
    }
    out
}

/// Variables: every reference anywhere in the dashboard (queries,
/// annotations, links, variable queries) names a defined variable or one of
/// Grafana's; the stream drop-down is bounded, not every stream with a series.
fn lint_variables(name: &str, d: &Value) {
    let defined: HashSet<&str> =
        d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    let text = d.to_string();
    for var in variable_references(&text) {
        assert!(
            defined.contains(var.as_str()) || BUILTIN_VARIABLES.contains(&var.as_str()),
            "{name}: unknown variable ${var}"
        );
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            // (The job drop-down may name the site's selector: no lint_expr.)
            let expr = variable_expression(q).unwrap_or_else(|| panic!("{name}: variable {}: {q}", v["name"]));
            lint_ranges(&format!("{name}/variable {}", v["name"]), &expr);
        }
    }
    // (dashboards_are_consistent says which boards have one.)
    let Some(stream) = d["templating"]["list"].as_array().unwrap().iter().find(|v| v["name"] == "stream") else {
        return;
    };
    let q = stream["definition"].as_str().unwrap();
    assert!(q.starts_with("query_result(topk("), "{name}: the stream drop-down must be bounded: {q}");
    assert!(q.contains("$stream_filter"), "{name}: the stream drop-down ignores the filter: {q}");
}

/// A stat's colour is a status only by explicit thresholds (Grafana's
/// implicit default turns red at 80, whatever the unit): a base step and
/// ascending values; one step (no status) shows no colour.
fn lint_stat(ctx: &str, p: &Value) {
    let th = &p["fieldConfig"]["defaults"]["thresholds"];
    assert_eq!(th["mode"], "absolute", "{ctx}: explicit thresholds");
    let steps = th["steps"].as_array().unwrap_or_else(|| panic!("{ctx}: threshold steps"));
    assert!(steps.first().is_some_and(|s| s["value"].is_null()), "{ctx}: thresholds need a base step");
    let values: Vec<f64> = steps[1..].iter().map(|s| s["value"].as_f64().expect("step value")).collect();
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{ctx}: threshold steps not ascending");
    if steps.len() == 1 {
        assert_eq!(p["options"]["colorMode"], "none", "{ctx}: one threshold step, yet coloured");
    }
}

/// Every `outcome` matcher of `expr`: (operator, value).
fn outcome_matchers(expr: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    for (i, _) in expr.match_indices("outcome") {
        if expr[..i].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = expr[i + "outcome".len()..].trim_start();
        let Some(op) = ["!~", "=~", "!=", "="].into_iter().find(|op| rest.starts_with(op)) else { continue };
        let rest = rest[op.len()..].trim_start();
        let Some(value) = rest.strip_prefix('"').and_then(|r| r.split_once('"')).map(|(v, _)| v) else { continue };
        out.push((op, value));
    }
    out
}

/// The outcome vocabulary against `expr`: every value named is an outcome
/// the exporter has; refusals are "none of the kept outcomes" (`!~`), never
/// a hand-listed set that misses the next refusal outcome. Returns the kept
/// set a negative matcher names, if any.
fn lint_outcomes(ctx: &str, expr: &str) -> Option<Vec<String>> {
    let outcomes: Vec<&str> = OutcomeKind::ALL.iter().map(|o| o.label()).collect();
    let mut kept = None;
    for (op, value) in outcome_matchers(expr) {
        let values: Vec<&str> = value.split('|').collect();
        for v in &values {
            assert!(outcomes.contains(v), "{ctx}: outcome {v:?} does not exist ({outcomes:?}): {expr}");
        }
        match op {
            "=~" => assert!(
                values.len() == 1,
                "{ctx}: a hand-listed outcome set {value:?}; select refusals with !~: {expr}"
            ),
            "!~" | "!=" => kept = Some(values.iter().map(|v| v.to_string()).collect()),
            _ => {}
        }
    }
    kept
}

#[test]
fn outcome_matchers_use_the_exporters_vocabulary() {
    let mut exprs: Vec<(String, String)> = Vec::new();
    for name in DASHBOARDS {
        let d = load(name);
        exprs.extend(expressions(&d).into_iter().map(|(t, e)| (format!("{name}/{t}"), e)));
        exprs.extend(annotation_expressions(&d).into_iter().map(|(t, e)| (format!("{name}/{t}"), e)));
    }
    exprs.extend(rules().into_iter().map(|(_, name, e)| (name, e)));
    let mut kept_sets = HashSet::new();
    let mut refusal_selectors = Vec::new();
    for (ctx, expr) in &exprs {
        if let Some(kept) = lint_outcomes(ctx, expr) {
            kept_sets.insert(kept);
            refusal_selectors.push(ctx.clone());
        }
    }
    // One definition of what is kept, shared by the rule and both panels.
    assert_eq!(kept_sets.len(), 1, "different kept-outcome sets: {kept_sets:?}");
    for ctx in ["CSSPushCallbacksRejected", "Refused callbacks (share)", "Rejected callbacks by outcome"] {
        assert!(refusal_selectors.iter().any(|c| c.contains(ctx)), "{ctx} selects no refusals: {refusal_selectors:?}");
    }
    // ... and it is exactly what the exporter does not count as a refusal.
    let kept = kept_sets.into_iter().next().unwrap();
    let not_refused: Vec<String> =
        OutcomeKind::ALL.iter().filter(|o| !o.is_refusal()).map(|o| o.label().to_owned()).collect();
    assert_eq!(kept, not_refused, "the kept set differs from the exporter's");
}

#[test]
fn the_outcome_lint_catches_unknown_and_hand_listed_outcomes() {
    let ok = r#"sum(rate(css_push_callbacks_total{job=~"$job",outcome!~"accepted|duplicate|ignored"}[1m]))"#;
    assert_eq!(lint_outcomes("ok", ok), Some(vec!["accepted".into(), "duplicate".into(), "ignored".into()]));
    assert_eq!(lint_outcomes("ok", r#"x{outcome="accepted"}"#), None);
    for bad in [
        r#"x{outcome=~"malformed|unauthorized|expired|too_large"}"#,
        r#"x{outcome="rejected"}"#,
        r#"x{outcome!~"accepted|dup"}"#,
        r#"x{ outcome = "nope" }"#,
    ] {
        let caught = std::panic::catch_unwind(|| lint_outcomes("bad", bad)).is_err();
        assert!(caught, "outcome lint let through {bad}");
    }
}

/// The data link to a stream's page on the exporter (docs/status-page.md, "A stream's story").
const STREAM_PAGE_LINK: &str = "Stream history (exporter)";
/// Every query of a panel that names one stream per series keeps these labels.
const BY_STREAM: &str = "by (domain, app, stream";

/// `exporter_url` of the repository's site file: where the links go.
fn exporter_url() -> String {
    let text = std::fs::read_to_string(tools::repo().join("tools/site.example.toml")).unwrap();
    let site: toml::Table = toml::from_str(&text).unwrap();
    site["exporter_url"].as_str().expect("exporter_url").trim_end_matches('/').to_owned()
}

/// Whether the panel links its stream's page on the exporter at `base`,
/// and must: a panel whose every query keeps a stream's labels (each
/// series, or table row, is one stream) links it, through those labels
/// (a table's fields), each percent-encoded; a panel without them must
/// not (its link would name no stream). `every` demands the link.
fn lint_stream_link(ctx: &str, p: &Value, base: &str, every: bool) -> bool {
    let exprs: Vec<&str> = p["targets"].as_array().into_iter().flatten().filter_map(|t| t["expr"].as_str()).collect();
    let per_stream = !exprs.is_empty() && exprs.iter().all(|e| e.contains(BY_STREAM));
    let links = p["fieldConfig"]["defaults"]["links"].as_array().cloned().unwrap_or_default();
    let link = links.iter().find(|l| l["title"] == STREAM_PAGE_LINK);
    assert!(!every || per_stream, "{ctx}: a query drops the stream's labels (keep {BY_STREAM}...): {exprs:?}");
    let Some(link) = link else {
        assert!(!per_stream, "{ctx}: shows streams, yet no {STREAM_PAGE_LINK:?} data link");
        return false;
    };
    assert!(per_stream, "{ctx}: links a stream page, yet its series name no stream: {exprs:?}");
    let names = if p["type"] == "table" { "__data.fields" } else { "__field.labels" };
    let segments: Vec<String> =
        ["domain", "app", "stream"].iter().map(|l| format!("${{{names}.{l}:percentencode}}")).collect();
    assert_eq!(link["url"].as_str(), Some(format!("{base}/streams/{}", segments.join("/")).as_str()), "{ctx}");
    assert_eq!(link["targetBlank"], true, "{ctx}: the exporter is another site");
    true
}

#[test]
fn stream_panels_link_the_exporters_stream_page() {
    let base = exporter_url();
    for name in DASHBOARDS {
        let d = load(name);
        let mut linked = 0;
        for p in panels(&d).iter().filter(|p| p["type"] != "row") {
            let ctx = format!("{name}/{}", p["title"].as_str().unwrap_or("?"));
            // The stream board shows one stream in every panel.
            linked += usize::from(lint_stream_link(&ctx, p, &base, name == "css-push-stream.json"));
        }
        assert!(linked > 0, "{name}: no panel links a stream's page");
    }
}

#[test]
fn the_stream_link_lint_catches_missing_broken_and_stray_links() {
    let base = "https://exporter.test";
    let link = |url: &str| json!([{"title": STREAM_PAGE_LINK, "url": url, "targetBlank": true}]);
    let good = format!("{base}/streams/${{__field.labels.domain:percentencode}}/${{__field.labels.app:percentencode}}/${{__field.labels.stream:percentencode}}");
    let panel = |expr: &str, links: Value| json!({"type": "timeseries", "targets": [{"expr": expr}], "fieldConfig": {"defaults": {"links": links}}});
    let per_stream = "max by (domain, app, stream) (x)";
    assert!(lint_stream_link("ok", &panel(per_stream, link(&good)), base, true));
    assert!(!lint_stream_link("ok", &panel("sum(x)", json!([])), base, false));
    for (what, p, every) in [
        ("missing", panel(per_stream, json!([])), false),
        ("unencoded", panel(per_stream, link(&good.replace(":percentencode", ""))), false),
        ("another host", panel(per_stream, link(&good.replace(base, "https://elsewhere.test"))), false),
        ("stray", panel("sum(x)", link(&good)), false),
        ("labels dropped on the stream board", panel("max(x)", json!([])), true),
    ] {
        let caught = std::panic::catch_unwind(|| lint_stream_link(what, &p, base, every)).is_err();
        assert!(caught, "the stream link lint let through: {what}");
    }
}

#[test]
fn the_variable_lint_finds_every_reference() {
    assert_eq!(
        variable_references(r#"{a=~"$job",b=~"${instance}"} > ${__from:date:seconds} ${__data.fields.stream}"#),
        ["job", "instance", "__from", "__data"]
    );
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
    // The CSS access node alerts have their own scenarios (prometheus/nodes_test.yml).
    let mut tests = String::new();
    for file in ["prometheus/alerts_test.yml", "prometheus/nodes_test.yml"] {
        let out = tools::run_ok(&promtool, &["test", "rules", file]);
        assert!(out.contains("SUCCESS"), "{file}: {out}");
        tests += &std::fs::read_to_string(tools::repo().join(file)).unwrap();
    }
    tools::run_ok(&promtool, &["check", "config", "prometheus/prometheus.yml"]);
    // Every alert has its tests.
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
    lint_expr("slices", r#"sum(avg_over_time(slo:live_seconds:increase5m{domain=~"$domain"}[1d]))"#);
    for bad in [
        r#"sum(avg_over_time(slo:live_seconds:rate5m{domain=~"$domain"}[1d]))"#,
        r#"sum(avg_over_time(xslo:live_seconds:increase5m{domain=~"$domain"}[1d]))"#,
        r#"sum(rate(css_push_errors_total{job="css-push-exporter",instance=~"$instance"}[$__rate_interval]))"#,
        r#"sum(rate(css_push_errors_total{job=~"$job",instance="10.0.0.1:9321"}[$__rate_interval]))"#,
        r#"sum(rate(css_push_errors_total{job=~"$job",instance=~"$instance"}[5m]))"#,
        r#"sum(css_push_streams)"#,
        r#"min_over_time(css_push_streams{job=~"$job",instance=~"$instance"}[1h:])"#,
    ] {
        let caught = std::panic::catch_unwind(|| lint_expr("bad", bad)).is_err();
        assert!(caught, "lint let through {bad}");
    }
}

/// A team's own site file (tools/site.example.toml's keys, some changed).
const SITE: &str = r#"
selector = 'job="css-live",env="prod"'
runbook_url = "https://wiki.acme.test/css/RUNBOOK.md"
grafana_url = "https://grafana.acme.test/"
exporter_url = "https://css-exporter.acme.test:9322/"
[thresholds]
live_share = 0.35
rejected_share = 0.05
failing_seconds = 90
"#;

/// Checks a site's rule file (parsed): every raw series selected by
/// `selector`, every alert linking the site's runbook and a dashboard whose
/// path starts with `dashboard`; returns how many alerts it has.
fn site_alerts(rules: &serde_norway::Value, selector: &str, dashboard: &str) -> usize {
    let mut alerts = 0;
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices('{') {
                let before = expr[..i].trim_end_matches(|c: char| c.is_alphanumeric() || "_:".contains(c));
                let name = &expr[before.len()..i];
                // ALERTS is Prometheus' own series (the incident rules read the pages).
                if !name.contains(':') && name != "ALERTS" {
                    assert!(expr[i..].split('}').next().unwrap().contains(selector), "selector missing: {expr}");
                }
            }
            if let Some(a) = rule["annotations"].as_mapping() {
                alerts += 1;
                let get = |k: &str| a.get(k).and_then(|v| v.as_str()).unwrap();
                assert!(get("runbook_url").starts_with("https://wiki.acme.test/css/RUNBOOK.md#csspush"), "{a:?}");
                let link = format!("https://grafana.acme.test/d/{dashboard}");
                assert!(get("dashboard").starts_with(&link), "{a:?}");
            }
        }
    }
    alerts
}

/// Every YAML document of `text`.
fn yaml_docs(text: &str) -> Vec<serde_norway::Value> {
    serde_norway::Deserializer::from_str(text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect()
}

/// `tools/generate.py` (its stdout and stderr), expected to fail.
fn generate_fails(python: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(python)
        .arg(tools::repo().join("tools/generate.py"))
        .args(args)
        .current_dir(tools::repo())
        .output()
        .unwrap();
    assert!(!out.status.success(), "generate.py {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// With a site file and --output-dir, the selector, the URLs and the
/// thresholds reach the rules, the dashboards and the kustomize component,
/// which kubectl applies over the repository's base; the defaults write
/// exactly the committed files.
#[test]
#[ignore = "needs python3, promtool and kubectl: bash .ci/run installs them"]
fn a_site_file_reaches_every_output_and_the_defaults_reproduce_the_repository() {
    let bins = tools::require_all(&["python3", "promtool", "kubectl"]);
    let (python, promtool, kubectl) = (&bins[0], &bins[1], &bins[2]);
    let generate = tools::repo().join("tools/generate.py");
    let generate = generate.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.toml");
    std::fs::write(&site, SITE).unwrap();
    let out = dir.path().join("out");
    tools::run_ok(python, &[generate, "--config", site.to_str().unwrap(), "--output-dir", out.to_str().unwrap()]);
    let read = |rel: &str| std::fs::read_to_string(out.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));

    // The rules, the SLO's too: every raw series through the selector,
    // links to the site.
    let rules_text = read("prometheus/alerts.yml");
    let rules = &yaml_docs(&rules_text)[0];
    let selector = r#"job="css-live",env="prod""#;
    assert!(site_alerts(rules, selector, "css-push-") > 10);
    assert!(rules_text.contains("ratio5m > 0.35") && rules_text.contains(") > 0.05"), "thresholds: {rules_text}");
    let slo_rules = &yaml_docs(&read("prometheus/slo_rules.yml"))[0];
    assert!(site_alerts(slo_rules, selector, "css-push-slo/") >= 4);
    for rel in ["prometheus/alerts.yml", "prometheus/slo_rules.yml"] {
        tools::run_ok(promtool, &["check", "rules", out.join(rel).to_str().unwrap()]);
    }
    for name in ["sloth", "pyrra", "openslo"] {
        let text = read(&format!("prometheus/interop/{name}.yml"));
        assert!(text.contains(selector) && !text.contains("css-push-exporter\""), "interop/{name}.yml: {text}");
    }

    // The dashboards: the selector in the job drop-down, the runbook
    // linked, the thresholds drawn.
    let mut dashboard_texts = BTreeMapOf::new();
    for name in DASHBOARDS {
        let text = read(&format!("grafana/dashboards/{name}"));
        let d: Value = serde_json::from_str(&text).unwrap();
        let job = &d["templating"]["list"].as_array().unwrap()[1];
        assert!(job["definition"].as_str().unwrap().contains(selector), "{name}: {job}");
        assert!(d["links"].as_array().unwrap().iter().any(|l| l["url"] == "https://wiki.acme.test/css/RUNBOOK.md"));
        assert!(
            text.contains("\"https://css-exporter.acme.test:9322/streams/${__"),
            "{name}: stream pages on the site's exporter"
        );
        dashboard_texts.insert(name.to_owned(), Value::String(text));
    }
    let overview = &dashboard_texts["css-push-overview.json"];
    let stream = &dashboard_texts["css-push-stream.json"];
    assert!(
        overview.as_str().unwrap().contains("\"value\": 0.35")
            && overview.as_str().unwrap().contains("\"value\": 0.05")
    );
    assert!(stream.as_str().unwrap().contains("< bool 90") && stream.as_str().unwrap().contains("\"value\": 90"));
    for text in dashboard_texts.values().map(|v| v.as_str().unwrap()).chain([rules_text.as_str()]) {
        assert!(!text.contains("example.internal") && !text.contains(r#"job="css-push-exporter""#));
    }

    // The component replaces the base's objects with the site's.
    let overlay = dir.path().join("overlay");
    std::fs::create_dir(&overlay).unwrap();
    let up = "../".repeat(overlay.components().count() - 1);
    let base =
        format!("{up}{}", tools::repo().join("deploy/kubernetes/base").display().to_string().trim_start_matches('/'));
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!("resources: [{base}]\ncomponents: [../out/kubernetes]\n"),
    )
    .unwrap();
    let rendered = tools::run_ok(kubectl, &["kustomize", overlay.to_str().unwrap()]);
    let objects = yaml_docs(&rendered);
    let object = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    assert_eq!(object("PrometheusRule", "css-push-exporter")["spec"], *rules, "the PrometheusRule is the site's");
    assert_eq!(object("PrometheusRule", "css-push-exporter-slo")["spec"], *slo_rules, "the SLO's are the site's");
    let data: serde_json::Map<String, Value> =
        serde_json::to_value(&object("ConfigMap", "css-push-exporter-dashboards")["data"])
            .unwrap()
            .as_object()
            .unwrap()
            .clone();
    assert_eq!(data.into_iter().collect::<BTreeMapOf>(), dashboard_texts, "the dashboards ConfigMap is the site's");

    // The defaults, written elsewhere, are the committed files.
    let defaults = dir.path().join("defaults");
    tools::run_ok(
        python,
        &[generate, "--config", "tools/site.example.toml", "--output-dir", defaults.to_str().unwrap()],
    );
    let mut pairs = vec![
        ("kubernetes/prometheusrule.yaml".to_owned(), "deploy/kubernetes/base/prometheusrule.yaml".to_owned()),
        ("kubernetes/prometheusrule-slo.yaml".into(), "deploy/kubernetes/base/prometheusrule-slo.yaml".into()),
        ("kubernetes/dashboards-configmap.yaml".into(), "deploy/kubernetes/base/dashboards-configmap.yaml".into()),
    ];
    let rule_files = ["alerts.yml", "slo_rules.yml", "slo_rules_test.yml"];
    let same = rule_files
        .into_iter()
        .chain(["interop/sloth.yml", "interop/pyrra.yml", "interop/openslo.yml"])
        .map(|n| format!("prometheus/{n}"))
        .chain(DASHBOARDS.map(|n| format!("grafana/dashboards/{n}")));
    pairs.extend(same.map(|n| (n.clone(), n)));
    for (written, committed) in pairs {
        let a = std::fs::read_to_string(defaults.join(&written)).unwrap();
        let b = std::fs::read_to_string(tools::repo().join(&committed)).unwrap();
        assert!(a == b, "{committed} is not what the defaults write: run python3 tools/generate.py");
    }
    tools::run_ok(python, &[generate, "--check"]);

    // Mistakes are errors, not silent defaults.
    assert!(generate_fails(python, &["--chek"]).contains("unrecognized arguments: --chek"));
    for (text, error) in [
        ("[thresholds]\nlive_shares = 0.3\n", "unknown setting thresholds.live_shares"),
        ("[thresholds]\nlive_min = \"5\"\n", "thresholds.live_min must be an integer"),
        ("[thresholds]\nlive_share = 20\n", "thresholds.live_share out of range"),
        ("selector = \" \"\n", "selector must not be empty"),
        // The SLO file's errors too, as a message, not a traceback.
        ("exporter_url = \"exporter:9322\"\n", "exporter_url must be an http:// or https:// URL"),
        ("slo_file = \"no/such.toml\"\n", "no/such.toml: [Errno 2]"),
        ("slo_file = \"tools/site.example.toml\"\n", "1 to 4 [[slo]] tables expected"),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, text).unwrap();
        let stderr = generate_fails(python, &["--check", "--config", bad.to_str().unwrap()]);
        assert!(stderr.contains(error), "{text:?}: {stderr}");
    }
}

type BTreeMapOf = std::collections::BTreeMap<String, Value>;
