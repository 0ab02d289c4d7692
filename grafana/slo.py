#!/usr/bin/env python3
"""Writes grafana/dashboards/css-push-slo.json, the "CSS push health SLO"
dashboard, from the site's SLO file and the recording rules of
prometheus/slo.py (whose windows, tiers and names it reuses), with the panel
layout of grafana/generate.py. Run `python3 tools/generate.py` (all
generators) after editing this, commit both; `--check` fails when the
committed JSON differs. Python 3.11+, standard library only."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import outputs  # noqa: E402
import shared  # noqa: E402
from shared import OVERVIEW, STREAM  # noqa: E402

rules = shared.generator("slo_rules")
grafana = shared.generator("grafana")
Board, DS, JOB, target, steps = grafana.Board, grafana.DS, grafana.JOB, grafana.target, grafana.steps
OUT = pathlib.Path("grafana", "dashboards", shared.SLO + ".json")
RAW = JOB + ',domain=~"$domain",app=~"$app"'
# Recorded series sum over exporter instances: no job or instance.
LIVE = 'domain=~"$domain",app=~"$app"'
BAD = LIVE + ',slo="$slo"'
ONE_SLO = 'slo="$slo"'


def variables(site, slos):
    """The other boards' data source, job, instance, domain and app, then
    the SLO and its window (hidden: it follows the SLO) in place of the
    stream choice."""
    common = [v for v in grafana.variables(site, stream_multi=False)["list"]
              if v["name"] not in ("stream_filter", "stream")]
    app = common[-1]

    def one(name, label, q, value, hide):
        return app | {"name": name, "label": label, "query": app["query"] | {"query": q}, "definition": q,
                      "multi": False, "includeAll": False, "hide": hide,
                      "current": {"selected": True, "text": value, "value": value}}
    first = slos[0]
    return {"list": common + [
        one("slo", "SLO", "label_values(slo:objective:ratio, slo)", first["name"], 0),
        one("window", "Window", 'label_values(slo:objective:ratio{slo="$slo"}, window)', first["window"], 2),
    ]}


def error_ratio(window):
    """Bad over live stream-seconds of the selection over `window` (a
    recording's suffix): numerator and denominator summed apart."""
    return f"(sum(slo:bad_seconds:rate{window}{{{BAD}}}) / sum(slo:live_seconds:rate{window}{{{LIVE}}}))"


BUDGET = f"scalar(slo:error_budget:ratio{{{ONE_SLO}}})"
WINDOW_S = f"scalar(slo:window:seconds{{{ONE_SLO}}})"
REMAINING = f"(1 - {error_ratio('$window')} / {BUDGET})"


def per_slo(slos, make):
    """make(slo) for the selected SLO: one expression when the file has one
    SLO, else each guarded by `$slo` being that SLO."""
    if len(slos) == 1:
        return make(slos[0])
    return " or ".join(f'({make(s)} and on () slo:objective:ratio{{{ONE_SLO},slo="{s["name"]}"}})' for s in slos)


def bad_types(s):
    return 'error_type=~"' + "|".join(str(t) for t in s["bad_error_types"]) + '"'


def tier_table():
    """Every tier of the burn alert, with how many alerts fire in it (0 when
    none: a constant row per tier, so the table never reads as empty)."""
    rows = []
    for severity, long_w, short_w, share, paging in rules.TIERS:
        rows.append(
            'label_replace(label_replace(label_replace(vector(0), "severity", "%s", "", ""), "long_window", "%s", "", ""), '
            '"short_window", "%s", "", "")' % (severity, long_w, short_w))
    firing = ('count by (severity, long_window, short_window) '
              f'(ALERTS{{alertname="{rules.ALERT}",alertstate="firing",{ONE_SLO},domain=~"$domain"}})')
    pending = firing.replace('"firing"', '"pending"')
    constants = " or ".join(rows)
    return [target(f"{firing} or {constants}", "", instant=True, fmt="table"),
            target(f"{pending} or {constants}", "", instant=True, fmt="table")]


def board(site, slos):
    first = slos[0]
    objective, b = first["objective"], rules.budget(first)
    factors = [(t, rules.factor(first, t[3], t[1])) for t in rules.TIERS]
    windows = [*rules.SHORT, *rules.LONG]
    g = Board()
    g.row("Objective")
    g.panel("stat", "Error-free over the window", f"Share of the selected apps' live stream-seconds that were not bad over the SLO's window (1 - bad / live stream-seconds, summed over apps before dividing), against the objective. Red below {rules.num(objective * 100)} % (the {first['name']} objective). Read with the data coverage: a window only partly covered says nothing about the rest.",
            "percentunit", [target(f"1 - {error_ratio('$window')}", "error-free"),
                            target(f"max(slo:objective:ratio{{{ONE_SLO}}})", "objective")],
            w=6, h=5, thresholds=steps(("red", None), ("green", objective)), defaults={"decimals": 3})
    g.panel("stat", "Error budget remaining", "Share of the window's error budget (1 - objective of live stream-seconds) not yet spent; negative: overspent, the SLO is missed for this window.",
            "percentunit", [target(REMAINING, "remaining")], w=5, h=5,
            thresholds=steps(("red", None), ("orange", 0), ("green", 0.25)))
    g.panel("stat", "Budget remaining (stream-hours)", "The error budget left in stream-hours at the window's average traffic: (budget × live − bad) stream-seconds per second × the window's length. How many more hours of bad push one stream (or N streams for 1/N of it) may have.",
            "h", [target(f"({BUDGET} * sum(slo:live_seconds:rate$window{{{LIVE}}}) - sum(slo:bad_seconds:rate$window{{{BAD}}})) * {WINDOW_S} / 3600", "stream-hours")],
            w=5, h=5, thresholds=steps(("red", None), ("green", 0)))
    g.panel("stat", "Time to exhaustion at the current burn", "How long the remaining budget lasts if the last hour's burn rate continues: remaining × window / burn rate (1h). 0: already spent; empty or infinite: nothing burns now.",
            "s", [target(f"clamp_min({REMAINING}, 0) * {WINDOW_S} / ({error_ratio('1h')} / {BUDGET})", "left")],
            w=4, h=5, thresholds=steps(("red", None), ("orange", 86400), ("green", 7 * 86400)))
    g.panel("stat", "Data coverage", "Days of data in the window (the share of 5-minute slices recorded, best-covered selected app): after a fresh install, or with no push start/end callbacks, the window is short and the SLO figures cover only that.",
            "d", [target(f"max(slo:data_coverage:ratio$window{{{LIVE}}}) * {WINDOW_S} / 86400", "days")],
            w=4, h=5, thresholds=steps(("orange", None), ("green", 7)), defaults={"decimals": 1})
    g.panel("timeseries", "Error-free over the window vs objective", "The window's error-free share as it moved (recorded every 5 minutes), with the objective.",
            "percentunit", [target(f"1 - {error_ratio('$window')}", "error-free"),
                            target(f"max(slo:objective:ratio{{{ONE_SLO}}})", "objective")])
    g.panel("timeseries", "Error budget burndown", "Share of the window's budget left, over time: a steady slope down is burn; a cliff, an incident; below 0 the SLO is missed for the window.",
            "percentunit", [target(REMAINING, "remaining")],
            defaults={"thresholds": steps(("red", None), ("green", 0)),
                      "custom": {"drawStyle": "line", "fillOpacity": 20, "showPoints": "never",
                                 "thresholdsStyle": {"mode": "line"}}})
    g.row("Burn rate and alerts")
    g.panel("timeseries", "Burn rate per window", "How fast the budget burns over each window (1 = exactly the budget over the whole window), with the alert thresholds of "
            + first["name"] + ": " + ", ".join(f"{rules.num(f)}× ({t[1]}/{t[2]})" for t, f in factors)
            + ". A tier fires when both its long and short windows are above its line.",
            "short", [target(f"{error_ratio(w)} / {BUDGET}", w) for w in windows], w=16, h=9,
            defaults={"thresholds": steps(("green", None), *[("red" if t[4] else "orange", f) for t, f in sorted(factors, key=lambda x: x[1])]),
                      "custom": {"drawStyle": "line", "fillOpacity": 0, "showPoints": "never",
                                 "thresholdsStyle": {"mode": "dashed"}, "scaleDistribution": {"type": "log", "log": 10}}})
    g.panel("table", "Alert tiers and their state", f"Each tier of {rules.ALERT} (critical pages, warning tickets) and how many apps or domains are firing (A) and pending (B) in it now.",
            "short", tier_table(), w=8, h=9,
            transformations=[{"id": "merge", "options": {}},
                             {"id": "organize", "options": {"excludeByName": {"Time": True},
                                                            "renameByName": {"Value #A": "firing", "Value #B": "pending"}}}])
    g.panel("table", "Worst apps by budget remaining", "The 20 apps with least error budget left in the window (recorded slo:error_budget_remaining:ratio). Click for the app on the overview, or its streams.",
            "percentunit", [target(f"bottomk(20, slo:error_budget_remaining:ratio{{{BAD}}})", "", instant=True, fmt="table")],
            w=24, h=8,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True},
                                                            "renameByName": {"Value": "budget remaining"}}}],
            defaults={"links": [
                {"title": "Overview of this app", "url": f"/d/{OVERVIEW}/{OVERVIEW}?${{__url_time_range}}&var-datasource=${{datasource}}&var-domain=${{__data.fields.domain}}&var-app=${{__data.fields.app}}"},
                {"title": "Streams of this app", "url": f"/d/{STREAM}/{STREAM}?${{__url_time_range}}&var-datasource=${{datasource}}&var-domain=${{__data.fields.domain}}&var-app=${{__data.fields.app}}"}]})
    g.row("What is burning")
    g.panel("timeseries", "Bad error types", "Push errors per second of the error types the selected SLO counts as bad, by type: which problem spends the budget.",
            "cps", [target(per_slo(slos, lambda s: f"sum by (error) (rate(css_push_errors_total{{{RAW},{bad_types(s)}}}[$__rate_interval]))"), "{{error}}")])
    g.panel("timeseries", "Live and bad streams", "Average live streams and average bad streams (bad stream-seconds per second) of the selection over 5 minutes.",
            "short", [target(f"sum(slo:live_seconds:rate5m{{{LIVE}}})", "live"),
                      target(f"sum(slo:bad_seconds:rate5m{{{BAD}}})", "bad")])
    g.panel("table", "Top streams by bad error reports", "The 10 streams with most errors of the bad types in the time range. Click a stream for its drill-down.",
            "short", [target(per_slo(slos, lambda s: f"topk(10, sum by (domain, app, stream) (increase(css_push_errors_total{{{RAW},{bad_types(s)}}}[$__range])))"), "", instant=True, fmt="table")],
            w=16,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": {"Value": "bad errors"}}}],
            defaults={"links": [{"title": "Stream drill-down",
                                 "url": f"/d/{STREAM}/{STREAM}?${{__url_time_range}}&var-datasource=${{datasource}}&var-domain=${{__data.fields.domain}}&var-app=${{__data.fields.app}}&var-stream=${{__data.fields.stream}}"},
                                grafana.stream_page_link(site, grafana.FIELDS)]})
    g.panel("stat", "Unattributed share", "Bad-reported seconds of streams with no known push session (no push start seen, or no lifecycle callbacks), as a share of all bad-reported seconds in the time range. They count on neither side of the SLO: a high share means the SLO sees only part of the fleet.",
            "percentunit", [target(f"sum(rate(css_push_slo_unattributed_seconds_total{{{RAW},{ONE_SLO}}}[$__range])) / (sum(rate(css_push_slo_unattributed_seconds_total{{{RAW},{ONE_SLO}}}[$__range])) + sum(rate(css_push_bad_seconds_total{{{RAW},{ONE_SLO}}}[$__range])))", "unattributed")],
            w=8, thresholds=steps(("green", None), ("orange", 0.1), ("red", 0.5)))
    return g.panels


def dashboard(site, slos):
    return {
        "uid": shared.SLO, "title": "CSS push health SLO",
        "description": "Error-free push time per domain and app against the push-health SLO: budget, burn, alerts, what burns (css-push-exporter).",
        "tags": ["css-push-exporter", "tencent-cloud-css", "slo"],
        "editable": True, "graphTooltip": 1, "refresh": "1m", "schemaVersion": 39, "version": 1,
        "time": {"from": "now-7d", "to": "now"}, "timezone": "",
        "templating": variables(site, slos),
        "annotations": {"list": []},
        "links": [{"title": "Overview", "type": "link", "url": f"/d/{OVERVIEW}/{OVERVIEW}", "keepTime": True, "includeVars": True},
                  {"title": "Runbook", "type": "link", "url": site["runbook_url"], "targetBlank": True}],
        "panels": board(site, slos),
    }


def render(site, for_site):
    """The same file for the repository and for a site's copy."""
    return {OUT: json.dumps(dashboard(site, rules.load_slos(site)), indent=2, ensure_ascii=False) + "\n"}


if __name__ == "__main__":
    outputs.run(outputs.parser(__doc__).parse_args(), render)
