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
# Recorded series sum over exporter instances: no job or instance. Live
# time is per SLO as bad time is (each counts outage gaps within its own
# reconnect window): both are read for the selected SLO.
REC = 'domain=~"$domain",app=~"$app",slo="$slo"'
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


def error_ratio(window, bad="bad_seconds"):
    """Bad over live stream-seconds of the selection over `window` (a
    recording's suffix): numerator and denominator summed apart."""
    return f"(sum(slo:{bad}:rate{window}{{{REC}}}) / sum(slo:live_seconds:rate{window}{{{REC}}}))"


def sliced_ratio(window, bad="bad_seconds"):
    """The same from the 5-minute slices, for windows with no recording
    (2h, 1d, 3d: what the tickets read)."""
    return (f"(sum(avg_over_time(slo:{bad}:increase{rules.SLICE}{{{REC}}}[{window}])) / "
            f"sum(avg_over_time(slo:live_seconds:increase{rules.SLICE}{{{REC}}}[{window}])))")


BUDGET = f"scalar(slo:error_budget:ratio{{{ONE_SLO}}})"
WINDOW_S = f"scalar(slo:window:seconds{{{ONE_SLO}}})"
REMAINING = f"(1 - {error_ratio('$window')} / {BUDGET})"
# Every window the alerts read, as the tiers read them: the pages the raw
# rates and the 6h recording, the tickets the slices without the worst
# streams (which also gate the pages over the last 5 minutes).
RECORDED = (*rules.RAW, *rules.SLICED)
TICKET_WINDOWS = tuple(sorted({w for t in rules.TICKETS for w in t[1:3]} - set(RECORDED), key=shared.seconds))


def per_slo(slos, make):
    """make(slo) for the selected SLO: one expression when the file has one
    SLO, else each guarded by `$slo` being that SLO."""
    if len(slos) == 1:
        return make(slos[0])
    return " or ".join(f'({make(s)} and on () slo:objective:ratio{{{ONE_SLO},slo="{s["name"]}"}})' for s in slos)


def bad_types(s):
    return 'error_type=~"' + "|".join(str(t) for t in s["bad_error_types"]) + '"'


def named(expr, window):
    return f'label_replace({expr}, "window", "{window}", "", "")'


def burn_now():
    """The selection's burn over every window the alerts read, now: all
    bad seconds (A), and without each pair's worst streams (B)."""
    every = [named(f"{error_ratio(w)} / {BUDGET}", w) for w in RECORDED]
    every += [named(f"{sliced_ratio(w)} / {BUDGET}", w) for w in TICKET_WINDOWS]
    every.append(named(f"{error_ratio('$window')} / {BUDGET}", "$window"))
    broad = [named(f"{error_ratio(rules.NOW, 'broad_bad_seconds')} / {BUDGET}", rules.NOW)]
    broad += [named(f"{sliced_ratio(w, 'broad_bad_seconds')} / {BUDGET}", w)
              for w in sorted(set(TICKET_WINDOWS) | set(rules.SLICED), key=shared.seconds)]
    return [target(" or ".join(every), "{{window}}", instant=True),
            target(" or ".join(broad), "{{window}} without the worst streams", instant=True)]


def board(site, slos):
    first = slos[0]
    objective = first["objective"]
    factors = [(t, rules.factor(first, t[3], t[1])) for t in rules.TIERS]
    worst = rules.without_worst(first).strip() or "with every stream"
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
            "h", [target(f"({BUDGET} * sum(slo:live_seconds:rate$window{{{REC}}}) - sum(slo:bad_seconds:rate$window{{{REC}}})) * {WINDOW_S} / 3600", "stream-hours")],
            w=5, h=5, thresholds=steps(("red", None), ("green", 0)))
    g.panel("stat", "Time to exhaustion at the current burn", "How long the remaining budget lasts if the last hour's burn rate continues: remaining × window / burn rate (1h). 0: already spent; empty or infinite: nothing burns now.",
            "s", [target(f"clamp_min({REMAINING}, 0) * {WINDOW_S} / ({error_ratio('1h')} / {BUDGET})", "left")],
            w=4, h=5, thresholds=steps(("red", None), ("orange", 86400), ("green", 7 * 86400)))
    g.panel("stat", "Data coverage", "Days of data in the window (the share of 5-minute slices recorded, best-covered selected app): after a fresh install, or with no push start/end callbacks, the window is short and the SLO figures cover only that. Tickets wait for a day of data.",
            "d", [target(f"max(slo:data_coverage:ratio$window{{{REC}}}) * {WINDOW_S} / 86400", "days")],
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
    g.panel("timeseries", "Burn rate per window", "How fast the budget burns over each recorded window (1 = exactly the budget over the whole window), with the alert thresholds of "
            + first["name"] + ": " + ", ".join(f"{rules.num(f)}× ({t[1]}/{t[2]})" for t, f in factors)
            + ". A page needs both windows of its tier above its line and the last 5 minutes too, " + worst
            + "; a ticket reads its windows " + worst + " (next panel).",
            "short", [target(f"{error_ratio(w)} / {BUDGET}", w) for w in (*RECORDED, "$window")], w=16, h=9,
            defaults={"thresholds": steps(("green", None), *[("red" if t[4] else "orange", f) for t, f in sorted(factors, key=lambda x: x[1])]),
                      "custom": {"drawStyle": "line", "fillOpacity": 0, "showPoints": "never",
                                 "thresholdsStyle": {"mode": "dashed"}, "scaleDistribution": {"type": "log", "log": 10}}})
    g.panel("bargauge", "Burn rate now, every window", "The selection's burn rate now over every window an alert reads, with all bad seconds and " + worst + " (the breadth the pages' last 5 minutes and the tickets use: one stream's time is its own ticket's). The 2h, 1d and 3d windows come from the 5-minute slices.",
            "short", burn_now(), w=8, h=9,
            options={"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True,
                     "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
            thresholds=steps(("green", None), *[("red" if t[4] else "orange", f) for t, f in sorted(factors, key=lambda x: x[1])]))
    g.panel("table", "SLO alerts now", f"Firing and pending {rules.ALERT} (a page per domain, critical; tickets per app, warning), {rules.EXHAUSTED} and {rules.SATURATED} for the selected domains.",
            "short", [target(f'ALERTS{{alertname=~"{rules.ALERT}|{rules.EXHAUSTED}",{ONE_SLO},domain=~"$domain"}} or ALERTS{{alertname="{rules.SATURATED}"}}', "", instant=True, fmt="table")],
            w=24, h=6,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True, "Value": True}}}])
    remaining = (f"1 - slo:bad_seconds:rate$window{{{REC}}} / on (domain, app, slo) "
                 f"slo:live_seconds:rate$window{{{REC}}} / on (slo) group_left () slo:error_budget:ratio{{{ONE_SLO}}}")
    g.panel("table", "Worst apps by budget remaining", "The 20 apps with least error budget left in the window (1 - bad / live stream-seconds / budget). Click for the app on the overview, or its streams.",
            "percentunit", [target(f"bottomk(20, {remaining})", "", instant=True, fmt="table")],
            w=24, h=8,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True},
                                                            "renameByName": {"Value": "budget remaining"}}}],
            defaults={"links": [
                {"title": "Overview of this app", "url": f"/d/{OVERVIEW}/{OVERVIEW}?${{__url_time_range}}&var-datasource=${{datasource}}&var-domain=${{__data.fields.domain}}&var-app=${{__data.fields.app}}"},
                {"title": "Streams of this app", "url": f"/d/{STREAM}/{STREAM}?${{__url_time_range}}&var-datasource=${{datasource}}&var-domain=${{__data.fields.domain}}&var-app=${{__data.fields.app}}"}]})
    g.row("What is burning")
    stream_bad = f"css_push_stream_bad_seconds_total{{{RAW},{ONE_SLO}}}"
    g.panel("table", "Top streams by bad seconds", "The 10 streams with most bad stream-seconds of the selected SLO in the time range (css_push_stream_bad_seconds_total; outage gaps included). Click a stream for its drill-down.",
            "s", [target(f"topk(10, sum by (domain, app, stream) (increase({stream_bad}[$__range])))", "", instant=True, fmt="table")],
            w=16,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": {"Value": "bad seconds"}}}],
            options={"sortBy": [{"displayName": "bad seconds", "desc": True}]},
            defaults={"links": [{"title": "Stream drill-down",
                                 "url": f"/d/{STREAM}/{STREAM}?${{__url_time_range}}&var-datasource=${{datasource}}&var-domain=${{__data.fields.domain}}&var-app=${{__data.fields.app}}&var-stream=${{__data.fields.stream}}"},
                                grafana.stream_page_link(site, grafana.FIELDS)]})
    g.panel("stat", "Unattributed share", "Bad-reported seconds of streams with no known push session (no push start seen, or no lifecycle callbacks), as a share of all bad-reported seconds in the time range. They count on neither side of the SLO: a high share means the SLO sees only part of the fleet.",
            "percentunit", [target(f"sum(rate(css_push_slo_unattributed_seconds_total{{{RAW},{ONE_SLO}}}[$__range])) / (sum(rate(css_push_slo_unattributed_seconds_total{{{RAW},{ONE_SLO}}}[$__range])) + sum(rate(css_push_bad_seconds_total{{{RAW},{ONE_SLO}}}[$__range])))", "unattributed")],
            w=8, thresholds=steps(("green", None), ("orange", 0.1), ("red", 0.5)))
    g.panel("timeseries", "Live and bad streams", "Average live streams, average bad streams (bad stream-seconds per second), and the same " + worst + ", of the selection over 5 minutes; and how many distinct streams had bad seconds.",
            "short", [target(f"sum(slo:live_seconds:rate5m{{{REC}}})", "live"),
                      target(f"sum(slo:bad_seconds:rate5m{{{REC}}})", "bad"),
                      target(f"sum(slo:broad_bad_seconds:rate5m{{{REC}}})", "bad " + worst),
                      target(f"count(sum by (domain, app, stream) (increase({stream_bad}[$__rate_interval])) > 0)", "streams with bad seconds")])
    g.panel("timeseries", "Bad error types", "Push errors per second of the error types the selected SLO counts as bad, by type: which problem spends the budget.",
            "cps", [target(per_slo(slos, lambda s: f"sum by (error) (rate(css_push_errors_total{{{RAW},{bad_types(s)}}}[$__rate_interval]))"), "{{error}}")])
    g.panel("timeseries", "Push ends by cause", "Push ends per second by cause (CSS's errcode, grouped): pusher_stopped is the normal end; every other cause is abnormal, and the gap until the same stream starts again (within the SLO's reconnect window) counts as live and bad.",
            "cps", [target(f"sum by (cause) (rate(css_push_stream_ends_total{{{RAW}}}[$__rate_interval]))", "{{cause}}")])
    g.panel("timeseries", "Outage time", "Stream-seconds between an abnormal push end and the same stream's next start (within the longest reconnect window), per second: the average number of streams down, counted when they come back. They are live and bad seconds of each SLO whose reconnect window covers the gap.",
            "short", [target(f"sum by (domain, app) (rate(css_push_outage_seconds_total{{{RAW}}}[$__rate_interval]))", "{{domain}}/{{app}}")])
    g.row("Accounting")
    g.panel("timeseries", "Streams the SLO tracks", "Streams in the SLO accounting against its limits, per instance: started streams (push start seen) and streams known only from reports, each in its own room so the second cannot crowd out the first.",
            "short", [target(f"sum by (instance, kind) (css_push_slo_streams_tracked{{{JOB}}})", "{{instance}} {{kind}}"),
                      target(f"sum by (instance, kind) (css_push_slo_streams_limit{{{JOB}}})", "{{instance}} {{kind}} limit")])
    g.panel("timeseries", "Reports the SLO had no room for", f"Reports per second the SLO accounting dropped, by kind of stream: their bad seconds are not counted. {rules.SATURATED} opens a ticket while this is above 0.",
            "cps", [target(f"sum by (instance, kind) (rate(css_push_slo_dropped_reports_total{{{JOB}}}[$__rate_interval]))", "{{instance}} {{kind}}")],
            defaults={"thresholds": steps(("green", None), ("red", 0.000001)),
                      "custom": {"drawStyle": "line", "fillOpacity": 10, "showPoints": "never",
                                 "thresholdsStyle": {"mode": "line"}}})
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
    outputs.main(__doc__, render)
