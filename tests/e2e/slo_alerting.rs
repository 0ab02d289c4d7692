//! The SLO's alert shape on the real thing (issue 24): a real Prometheus on
//! 3½ days of backfilled history of a synthetic fleet (tests/e2e/slo_fleet.rs),
//! then scraping it; the shipped rules, slo_rules.yml and alerts.yml, as TEST
//! COPIES with every duration divided by 30 (`--speedup 30` of their
//! generators: a 5-minute window is 10 s here, a rule minute 2 s); the real
//! Alertmanager with the shipped alertmanager.yml, its receivers pointed at a
//! webhook here and its waits divided alike. Notifications are counted per
//! receiver and domain. The durations themselves are promtool's to check
//! (prometheus/slo_rules_test.yml).
//!
//! - app.example.com: one app's 40 streams (of 340) 100 % bad for 15 minutes
//!   after 3½ calm days: one page within 10 minutes, resolved within 10 of the
//!   recovery, nothing again for 45 minutes, no ticket.
//! - domain.example.com: 4 apps × 15 streams bad together: alerts.yml's surge
//!   and the SLO's page hold each other back: one page, resolved once.
//! - calm.example.com: one stuck encoder per 100 streams, and glitches: no
//!   page, no app ticket; each stuck stream has its own stream ticket.
//! - new.example.com: a new 12-stream app, 100 % bad from its first second:
//!   a page within 10 minutes (the live gate reads the live streams now).
//! - fresh.example.com: a pair 1 minute old, then 40 streams bad for 15
//!   minutes: a page within 10 minutes, no ticket ahead of it (none at all),
//!   resolved within 10 minutes, nothing again.
//! - The SLO accounting drops reports for 10 minutes: one saturation ticket.
use crate::alerting_e2e::{alertmanager_config, start_alertmanager, webhook, Received};
use crate::slo_fleet::{self, Fleet, Pair};
use crate::tools::{self, Prometheus};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SPEEDUP: f64 = 30.0;

/// Real seconds of `minutes` of rule time.
fn minutes(minutes: f64) -> f64 {
    minutes * 60.0 / SPEEDUP
}

/// A duration of the shipped configs divided by SPEEDUP, as Prometheus writes it.
fn fast(duration: &str) -> String {
    let (n, unit) = duration.split_at(duration.len() - 1);
    let seconds = n.parse::<f64>().unwrap()
        * match unit {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => panic!("{duration}"),
        };
    let ms = (seconds / SPEEDUP * 1000.0).round().max(1.0);
    format!("{ms}ms")
}

/// A rules test copy written by `generator --speedup 30`.
fn test_copy(python: &Path, generator: &str, dir: &Path, name: &'static str) -> (&'static str, String) {
    let path = dir.join(name);
    let speedup = SPEEDUP.to_string();
    tools::run_ok(python, &[generator, "--speedup", &speedup, "--output", path.to_str().unwrap()]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# TEST COPY"), "{generator}: {text}");
    (name, text)
}

/// The fleet's calm history: every pair born 3½ days (of rule time) ago.
fn calm_pairs(born: f64) -> Vec<Pair> {
    let glitchy = [0.02];
    let stuck = 1.0 / 19.0;
    let mut pairs = vec![
        Pair::new("app.example.com", "live", 40, born, &glitchy),
        Pair::new("app.example.com", "other", 300, born, &glitchy),
        Pair::new("calm.example.com", "a", 100, born, &[1.0, stuck]),
        Pair::new("calm.example.com", "b", 100, born, &[1.0, stuck]),
        Pair::new("calm.example.com", "c", 200, born, &[1.0, 1.0, 2.0 * stuck]),
        Pair::new("new.example.com", "big", 200, born, &glitchy),
        Pair::new("fresh.example.com", "big", 300, born, &glitchy),
    ];
    pairs.extend((0..4).map(|i| Pair::new("domain.example.com", &format!("a{i}"), 15, born, &glitchy)));
    pairs
}

/// Notifications the webhook got on `path`: (group's domain or "", status,
/// alert names, Unix time).
fn notifications(received: &Received, path: &str, clock: (Instant, f64)) -> Vec<(String, String, Vec<Value>, f64)> {
    let got = received.lock().unwrap();
    got.iter()
        .filter(|(p, ..)| p == path)
        .map(|(_, body, at)| {
            let domain = body["groupLabels"]["domain"].as_str().unwrap_or("").to_owned();
            let status = body["status"].as_str().unwrap().to_owned();
            let when = clock.1 + at.duration_since(clock.0).as_secs_f64();
            (domain, status, body["alerts"].as_array().cloned().unwrap_or_default(), when)
        })
        .collect()
}

/// The first and last evaluation (Unix seconds) at which a critical alert
/// of `domain` fired, within the last `span` seconds.
async fn firing_span(prom: &Prometheus, domain: &str, span: f64) -> Option<(f64, f64)> {
    let alerts = format!(r#"timestamp(ALERTS{{domain="{domain}",severity="critical",alertstate="firing"}})"#);
    let range = format!("[{}s:500ms]", span.ceil());
    let first = prom.query(&format!("min(min_over_time({alerts}{range}))"), None).await.unwrap();
    let last = prom.query(&format!("max(max_over_time({alerts}{range}))"), None).await.unwrap();
    Some((tools::sample_value(first.first()?), tools::sample_value(last.first()?)))
}

#[actix_web::test]
#[ignore = "needs prometheus, promtool, prometheus-alertmanager and python3: bash .ci/run installs them"]
async fn slo_pages_once_per_incident_on_days_of_history_through_alertmanager() {
    let bins = tools::require_all(&["prometheus", "promtool", "prometheus-alertmanager", "python3"]);
    let started = Instant::now();
    let day = minutes(1440.0);
    let born = tools::unix_now() - 3.5 * day;
    let slice = minutes(5.0);

    // History: 3½ calm days of slices, 75 minutes of raw series.
    let dir = tempfile::tempdir().unwrap();
    let mut history = Fleet::new(calm_pairs(born), slice);
    history.stream_series = true;
    let end = slo_fleet::backfill(&bins[1], dir.path(), &history, minutes(75.0), 3.5 * day, 0.5);

    // What follows, from 10 minutes on: the incidents, two new pairs, the
    // accounting dropping reports.
    let at = end + minutes(10.0);
    let recovery = at + minutes(15.0);
    let mut pairs = calm_pairs(born);
    for p in pairs.iter_mut().filter(|p| p.domain == "domain.example.com" || p.app == "live") {
        *p = p.clone().incident(at, recovery);
    }
    pairs.push(Pair::new("new.example.com", "app", 12, at, &[]).incident(at, recovery));
    pairs.push(Pair::new("fresh.example.com", "live", 40, at - minutes(1.0), &[]).incident(at, recovery));
    let mut fleet = Fleet::new(pairs, slice);
    fleet.stream_series = true;
    fleet.dropping = Some((at, at + minutes(10.0)));
    let (target, server) = slo_fleet::serve(Arc::new(fleet));

    let (hook, received, hook_handle) = webhook();
    let waits = [
        ("group_wait: 30s", format!("group_wait: {}", fast("30s"))),
        ("group_interval: 5m", format!("group_interval: {}", fast("5m"))),
        ("repeat_interval: 24h", format!("repeat_interval: {}", fast("24h"))),
        ("repeat_interval: 1h", format!("repeat_interval: {}", fast("1h"))),
    ];
    let waits: Vec<(&str, &str)> = waits.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let (mut am, am_base) = start_alertmanager(&bins[2], alertmanager_config(&hook, &waits)).await;
    let rules = tempfile::tempdir().unwrap();
    let files = [
        test_copy(&bins[3], "prometheus/generate.py", rules.path(), "alerts.yml"),
        test_copy(&bins[3], "prometheus/slo.py", rules.path(), "slo_rules.yml"),
    ];
    let tick = fast("15s");
    let config = format!(
        "global: {{scrape_interval: {tick}, scrape_timeout: {tick}, evaluation_interval: {tick}}}\n\
         rule_files: [alerts.yml, slo_rules.yml]\n\
         alerting:\n  alertmanagers: [{{static_configs: [{{targets: ['{}']}}]}}]\n{}",
        am_base.trim_start_matches("http://"),
        slo_fleet::scrape_config(&target, &tick)
    );
    let patience = (Duration::from_secs(60), Duration::from_secs(30));
    let mut prom = Prometheus::start_in(&bins[0], dir, &config, &files, patience).await;
    let clock = (Instant::now(), tools::unix_now());
    eprintln!("slo alerting e2e: ready {:?} in, incidents in {:.0} s", started.elapsed(), at - clock.1);
    assert!(at - clock.1 > minutes(2.0), "Prometheus took most of the 10 calm minutes to start: a machine too slow");

    // Run the scenario: 15 minutes of incidents, 45 minutes after.
    let done = recovery + minutes(45.0);
    while tools::unix_now() < done {
        am.assert_running();
        prom.process.assert_running();
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
    let groups = prom.api("/api/v1/rules", &[]).await.unwrap();
    for g in groups["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{r}");
        }
    }

    let rule_minutes = |seconds: f64| seconds * SPEEDUP / 60.0;
    let pager = notifications(&received, "/pager", clock);
    let mut report = Vec::new();
    for domain in ["app.example.com", "domain.example.com", "new.example.com", "fresh.example.com"] {
        let since = at;
        let got: Vec<_> = pager.iter().filter(|(d, ..)| d == domain).collect();
        let statuses: Vec<&str> = got.iter().map(|(_, s, ..)| s.as_str()).collect();
        assert_eq!(statuses, ["firing", "resolved"], "{domain}: one page and its resolution: {got:#?}");
        let names: BTreeSet<&str> =
            got.iter().flat_map(|(_, _, a, _)| a).map(|a| a["labels"]["alertname"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 1, "{domain}: one alert throughout: {names:?}");
        let paged = rule_minutes(got[0].3 - since);
        // Within 10 minutes, and Alertmanager's group_wait.
        assert!(paged <= 10.5, "{domain}: paged {paged:.1} minutes in");
        let (first, last) = firing_span(&prom, domain, done - clock.1 + 5.0).await.expect("no firing page");
        let resolved = rule_minutes(last - recovery);
        assert!(resolved <= 10.0, "{domain}: the page fired until {resolved:.1} minutes after the recovery");
        let notified = rule_minutes(got[1].3 - recovery);
        report.push(format!(
            "{domain}: {} fired at {:.1} min, notified at {paged:.1}, last fired {resolved:.1} min after the \
             recovery, resolution notified at {notified:.1}",
            names.first().unwrap(),
            rule_minutes(first - since)
        ));
        if domain != "domain.example.com" {
            assert_eq!(names.first(), Some(&"CSSPushErrorBudgetBurn"), "{domain}");
        }
    }
    let incidents = ["app.example.com", "domain.example.com", "new.example.com", "fresh.example.com"];
    let others: Vec<_> = pager.iter().filter(|(d, ..)| !incidents.contains(&d.as_str())).collect();
    assert!(others.is_empty(), "pages beyond the incidents: {others:#?}");
    let app = pager.iter().find(|(d, s, ..)| d == "app.example.com" && s == "firing").unwrap();
    let description = app.2[0]["annotations"]["description"].as_str().unwrap();
    assert!(description.contains("Apps burning now: live."), "{description}");

    // Tickets: the saturation only for the operator; the stuck encoders'
    // own for their pushers.
    let tickets = notifications(&received, "/exporter-tickets", clock);
    let mut names: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (_, status, alerts, _) in &tickets {
        for a in alerts {
            names.entry(a["labels"]["alertname"].as_str().unwrap().to_owned()).or_default().push(status);
        }
    }
    assert_eq!(names.keys().collect::<Vec<_>>(), ["CSSPushSloAccountingSaturated"], "operator tickets: {tickets:#?}");
    assert_eq!(names["CSSPushSloAccountingSaturated"], ["firing", "resolved"], "{tickets:#?}");
    let pushers = notifications(&received, "/pusher-tickets", clock);
    let streams: BTreeSet<String> = pushers
        .iter()
        .flat_map(|(_, _, alerts, _)| alerts)
        .map(|a| {
            let l = &a["labels"];
            assert_eq!(l["alertname"], "CSSPushStreamFramesLate", "{a}");
            format!(
                "{}/{}/{}",
                l["domain"].as_str().unwrap(),
                l["app"].as_str().unwrap(),
                l["stream"].as_str().unwrap()
            )
        })
        .collect();
    let stuck =
        ["calm.example.com/a/s000", "calm.example.com/b/s000", "calm.example.com/c/s000", "calm.example.com/c/s001"];
    assert_eq!(streams.iter().map(String::as_str).collect::<Vec<_>>(), stuck, "stream tickets");

    for line in &report {
        eprintln!("slo alerting e2e: {line}");
    }
    eprintln!(
        "slo alerting e2e: {} pager, {} operator and {} pusher notifications in {:?}",
        pager.len(),
        tickets.len(),
        pushers.len(),
        started.elapsed()
    );
    server.stop(false).await;
    hook_handle.stop(false).await;
}
