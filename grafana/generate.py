#!/usr/bin/env python3
"""Writes grafana/dashboards/*.json from the site settings (thresholds, the
exporter selector, the runbook URL). Run `python3 tools/generate.py` (all
generators) after editing this, commit both; `--check` fails when the
committed JSON differs (CI), so a change made in Grafana belongs here.
tests/e2e/dashboards.rs lints the result."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import outputs  # noqa: E402
import shared  # noqa: E402
from shared import OVERVIEW, STREAM, REFUSED  # noqa: E402

DS = {"type": "prometheus", "uid": "${datasource}"}
JOB = 'job=~"$job",instance=~"$instance"'
APP = JOB + ',domain=~"$domain",app=~"$app"'
# The overview's streams: the drop-down's choice (All by default) narrowed
# by the free-text filter, so "All" with a filter means all that match.
STREAMS = APP + ',stream=~"$stream_filter",stream=~"$stream"'
# The stream board's one stream.
ONE = APP + ',stream=~"$stream"'
# Recorded series carry no job/instance (they sum over exporter instances).
REC_APP = 'domain=~"$domain",app=~"$app"'
REC_STREAMS = REC_APP + ',stream=~"$stream_filter",stream=~"$stream"'
REC_ONE = REC_APP + ',stream=~"$stream"'
LATE = 'error=~"video_frame_late|audio_frame_late"'
LAST_ERROR = "css_push_last_error_timestamp_seconds"
# The dashboard range's start, in seconds, for expressions that must ignore
# what happened before it.
RANGE_START = "${__from:date:seconds}"
# Most streams a stream drop-down lists: a fleet of 50 000 stays usable.
STREAM_CHOICES = 100
# Stat panels that show a quantity, not a status: one neutral colour.
NEUTRAL = {"mode": "absolute", "steps": [{"color": "text", "value": None}]}


def steps(*pairs):
    """Thresholds from (colour, from value) pairs; the first starts at -inf."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in pairs]}


def target(expr, legend="", instant=False, fmt=None):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": "A"}
    if instant:
        t["instant"] = True
        t["range"] = False
    if fmt:
        t["format"] = fmt
    return t


def first_error_in_range(selector):
    """Per stream, the data_time of its first push error report inside the
    dashboard's range (the last-error gauge's smallest value not older than
    the range), seconds."""
    return (f"min by (domain, app, stream) (min_over_time(({LAST_ERROR}{{{selector}}} >= {RANGE_START})"
            "[$__range:]))")


def last_error(selector):
    return f"max by (domain, app, stream) ({LAST_ERROR}{{{selector}}})"


# Where a panel's data link finds a stream's names: series labels, or a
# table's fields.
LABELS, FIELDS = "__field.labels", "__data.fields"
# The labels that name a stream, kept by every query of a linked panel.
BY_STREAM = "by (domain, app, stream"
STREAM_PAGE_LINK = "Stream history (exporter)"


def stream_page_link(site, names=LABELS):
    """A data link to the exporter's page of the stream a value belongs to
    (docs/status-page.md, "A stream's story"), each name one percent-encoded segment."""
    segments = "/".join(f"${{{names}.{label}:percentencode}}" for label in ("domain", "app", "stream"))
    return {"title": STREAM_PAGE_LINK, "url": f"{site['exporter_url'].rstrip('/')}/streams/{segments}",
            "targetBlank": True}


def by_name(name, **props):
    """A field override: `props` for the field displayed as `name`."""
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": k, "value": v} for k, v in props.items()]}


def states(**texts):
    """Value mappings of a 0/1 series: {value: (text, colour)}."""
    return [{"type": "value", "options": {v: {"text": t, "color": c} for v, (t, c) in texts.items()}}]


class Board:
    def __init__(self):
        self.panels = []
        self.next_id = 1
        self.y = 0
        self.x = 0
        self.row_h = 0

    def row(self, title):
        self.newline()
        self.panels.append({"type": "row", "id": self.next_id, "title": title, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.next_id += 1
        self.y += 1

    def newline(self):
        if self.x:
            self.y += self.row_h
            self.x = 0
            self.row_h = 0

    def panel(self, kind, title, description, unit, targets, w=12, h=8, thresholds=None, **extra):
        """A panel; stat panels need `thresholds` (NEUTRAL when the value is
        no status: Grafana's implicit default turns red at 80)."""
        if self.x + w > 24:
            self.newline()
        for i, t in enumerate(targets):
            t["refId"] = "ABCDEFGH"[i]
        p = {"type": kind, "id": self.next_id, "title": title, "description": description,
             "datasource": DS, "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
             "targets": targets,
             "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
             "options": {}}
        if kind == "timeseries":
            p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "fillOpacity": 10, "showPoints": "never"}
            p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
        if kind == "stat":
            if thresholds is None:
                raise shared.GeneratorError(f"grafana/generate.py: stat panel {title!r} without thresholds")
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "none" if thresholds is NEUTRAL else "value",
                            "graphMode": "area", "textMode": "auto"}
        if thresholds is not None:
            p["fieldConfig"]["defaults"]["thresholds"] = thresholds
        for k, v in extra.items():
            if k == "defaults":
                p["fieldConfig"]["defaults"].update(v)
            elif k == "overrides":
                p["fieldConfig"]["overrides"] = v
            else:
                p[k] = v
        self.panels.append(p)
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        return p


def variables(site, stream_multi):
    def query(name, label, q, multi=True, include_all=True, regex=""):
        return {"name": name, "label": label, "type": "query", "datasource": DS,
                "query": {"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "definition": q, "refresh": 2, "sort": 1, "multi": multi, "includeAll": include_all,
                "allValue": ".*", "regex": regex,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {}}
    build = "css_push_exporter_build_info{" + site["selector"]
    series = '{__name__=~"css_push_errors_total|css_push_streams_live|css_push_stream_live",' + JOB
    # Not label_values over every stream with a series (up to --max-streams
    # values): the streams with errors in the range that match the filter,
    # latest error first, at most STREAM_CHOICES of them.
    recent = (f"topk({STREAM_CHOICES}, max by (stream) (max_over_time({LAST_ERROR}{{{APP},stream=~\"$stream_filter\"}}"
              f"[$__range])) >= {RANGE_START})")
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "regex": "", "includeAll": False, "multi": False},
        query("job", "Job", "label_values(" + build + "}, job)"),
        query("instance", "Instance", "label_values(" + build + ',job=~"$job"}, instance)'),
        query("domain", "Domain", "label_values(" + series + "}, domain)"),
        query("app", "App", "label_values(" + series + ',domain=~"$domain"}, app)'),
        {"name": "stream_filter", "label": "Stream filter (regex)", "type": "textbox", "query": ".*",
         "current": {"text": ".*", "value": ".*"}, "hide": 0,
         "description": "Regular expression on the stream name: narrows the stream drop-down (and, on the overview, every per-stream panel)."},
        query("stream", "Stream", f"query_result({recent})", multi=stream_multi, include_all=stream_multi,
              regex='/stream="([^"]*)"/'),
    ]}


def annotations(alert_filter):
    return {"list": [
        {"name": "Exporter restarts", "datasource": DS, "enable": True, "iconColor": "orange",
         "expr": f"changes(process_start_time_seconds{{{JOB}}}[$__rate_interval]) > 0",
         "titleFormat": "exporter restarted", "textFormat": "{{instance}}", "tagKeys": "instance"},
        {"name": "Firing alerts", "datasource": DS, "enable": True, "iconColor": "red",
         "expr": f'ALERTS{{alertstate="firing",alertname=~"{shared.ALERT_PREFIX}.*"{alert_filter}}}',
         "titleFormat": "{{alertname}}", "textFormat": "{{severity}} {{domain}} {{app}} {{stream}} {{instance}}",
         "tagKeys": "severity,scope"},
    ]}


def dashboard(site, uid, title, description, board, stream_multi, links, alert_filter=""):
    links = links + [{"title": "Runbook", "type": "link", "url": site["runbook_url"], "targetBlank": True}]
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["css-push-exporter", "tencent-cloud-css"],
        "editable": True, "graphTooltip": 1, "refresh": "30s", "schemaVersion": 39, "version": 1,
        "time": {"from": "now-6h", "to": "now"}, "timezone": "",
        "templating": variables(site, stream_multi),
        "annotations": annotations(alert_filter),
        "links": links,
        "panels": board.panels,
    }


def top_streams_table(site, b):
    """The 10 streams with most errors in 5 minutes, with since when they
    fail: first error report in the range, latest one, and the span."""
    top = f"topk(10, sum by (domain, app, stream) ({shared.STREAM_ERRORS}{{{REC_STREAMS}}}))"
    first, last = first_error_in_range(STREAMS), last_error(STREAMS)
    only_top = f" and on (domain, app, stream) {top}"
    columns = [(top, "errors (5m)", "short"),
               (f"{first} * 1000{only_top}", "first error in range", "dateTimeAsIso"),
               (f"{last} * 1000{only_top}", "last error", "dateTimeAsIso"),
               (f"({last} - {first}){only_top}", "errors for", "s")]
    b.panel("table", "Top streams by errors (5m), since when",
            "The 10 streams with most push errors in the last 5 minutes (recorded rule "
            f"{shared.STREAM_ERRORS}, all instances); when each first reported an error inside the time range, "
            "its latest report, and the time between them. Click a stream for its drill-down.",
            "short", [target(expr, "", instant=True, fmt="table") for expr, _, _ in columns],
            w=24, h=8,
            transformations=[
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": {f"Value #{'ABCD'[i]}": name for i, (_, name, _) in enumerate(columns)}}}],
            options={"sortBy": [{"displayName": "errors (5m)", "desc": True}]},
            defaults={"links": [{"title": "Stream drill-down",
                                 "url": f"/d/{STREAM}/{STREAM}?${{__url_time_range}}&var-datasource=${{datasource}}&var-domain=${{__data.fields.domain}}&var-app=${{__data.fields.app}}&var-stream=${{__data.fields.stream}}"},
                                stream_page_link(site, FIELDS)]},
            overrides=[by_name(name, unit=unit) for _, name, unit in columns[1:]])


def access_nodes(b, th):
    """The "CSS access nodes" row: is it CSS or us? Per access node (the
    push start's node) and region; every domain and app (node series have
    neither), summed over the selected instances. Last on the board, so
    the ids of the panels above (alert links, bookmarks) stay put."""
    shown = shared.shown(th)
    b.row("CSS access nodes")
    b.panel("timeseries", "Top nodes by bad share (15m), against the fleet",
            f"The 10 CSS access nodes with the largest bad share of their live stream time over 15 minutes (recorded rule, all domains, all instances), and the whole fleet's share (dashed). CSSPushNodeDegraded fires for a node at least {shown['node_factor']}× the rest of the fleet and at least {shown['node_min_share']}, with {shown['node_min_live']} or more live streams.",
            "percentunit", [target(f"topk(10, {shared.NODE_BAD_SHARE})", "{{node}} {{region}} {{slo}}"),
                            target(shared.FLEET_BAD_SHARE, "fleet {{slo}}")],
            defaults={"min": 0},
            overrides=[{"matcher": {"id": "byRegexp", "options": "fleet.*"},
                        "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                                       {"id": "color", "value": {"mode": "fixed", "fixedColor": "text"}}]}])
    columns = [(f"topk(20, {shared.NODE_BAD_SHARE})", "bad share (15m)", "percentunit"),
               (f"{shared.NODE_BAD_SHARE} / {shared.NODE_REST_BAD_SHARE}", "vs the rest", "suffix:×"),
               (f"{shared.NODE_STREAMS_LIVE} * on (node, region) group_right {shared.NODE_BAD_SHARE} ^ 0", "live streams", "short")]
    only_top = f" and on (node, region, slo) topk(20, {shared.NODE_BAD_SHARE})"
    b.panel("table", "Nodes by bad share (15m)",
            "The 20 nodes with the largest bad share over 15 minutes: the share, how many times the rest of the fleet's it is (+Inf: the rest had no bad time), and the streams on it now. All domains and instances. node=\"unknown\": sessions whose start was not seen; \"other\": nodes past --max-nodes.",
            "short", [target(expr if i == 0 else expr + only_top, "", instant=True, fmt="table") for i, (expr, _, _) in enumerate(columns)],
            transformations=[
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": {f"Value #{'ABC'[i]}": name for i, (_, name, _) in enumerate(columns)}}}],
            options={"sortBy": [{"displayName": "bad share (15m)", "desc": True}]},
            overrides=[by_name(name, unit=unit) for _, name, unit in columns])
    b.panel("timeseries", "Push ends by cause per node", "Push ends per second by access node and cause, on the node of the session they end (node=\"unknown\": no start seen). One node with css_internal or proxy_interrupted ends the others lack points at it; pusher_stopped is the normal end.",
            "cps", [target(f"sum by (node, cause) (rate(css_push_node_stream_ends_total{{{JOB}}}[$__rate_interval]))", "{{node}} {{cause}}")], w=8)
    b.panel("timeseries", "Live streams by region", "Streams pushing now by region of their access node (mainland: set_id 1-6, overseas: 7-200), all domains, summed over the selected instances.",
            "short", [target(f"sum by (region) (css_push_node_streams_live{{{JOB}}})", "{{region}}")], w=8)
    b.panel("timeseries", "Bad share by region (15m)", "Bad share of live stream time over 15 minutes by region (recorded rules, all domains and instances).",
            "percentunit", [target(f"sum by (region, slo) ({shared.NODE_BAD}) / on (region) group_left sum by (region) ({shared.NODE_LIVE})", "{{region}} {{slo}}")],
            w=8, defaults={"min": 0})


def overview(site):
    th = site["thresholds"]
    b = Board()
    b.row("Push errors")
    b.panel("stat", "Push errors /s (all domains)", "Push errors CSS reported for every domain, app and stream, summed over the selected exporter instances, per second.",
            "cps", [target(f"sum(rate(css_push_errors_total{{{JOB}}}[$__rate_interval]))", "errors/s")], w=6, h=5,
            thresholds=NEUTRAL)
    b.panel("stat", "Streams with errors (5m)", "Distinct streams (overflow bucket excluded) with push errors in the last 5 minutes. Recorded rule, all exporter instances.",
            "short", [target(f"sum({shared.APP_STREAMS_WITH_ERRORS}{{{REC_APP}}})", "streams")], w=6, h=5,
            thresholds=NEUTRAL)
    b.panel("stat", "Live streams (total)", "Streams pushing now (push start seen, no push end), summed over exporter instances.",
            "short", [target(f"sum(css_push_streams_live{{{APP}}})", "live")], w=6, h=5, thresholds=NEUTRAL)
    b.panel("stat", "% of live streams with errors (5m)", f"Share of live streams that had push errors in the last 5 minutes. Above {shared.shown(th)['live_share']} the app is in an incident: its per-stream alerts stay silent.",
            "percentunit", [target(f"sum({shared.APP_LIVE_ERROR_RATIO}{{{REC_APP}}} * {shared.APP_STREAMS_LIVE}) / sum({shared.APP_STREAMS_LIVE}{{{REC_APP}}})", "share")], w=6, h=5,
            thresholds=steps(("green", None), ("red", th["live_share"])), defaults={"min": 0, "max": 1})
    b.panel("timeseries", "Push error rate by error type", "Push errors per second by error (the stable name of CSS's error type), all selected domains and streams.",
            "cps", [target(f"sum by (error) (rate(css_push_errors_total{{{STREAMS}}}[$__rate_interval]))", "{{error}}")])
    b.panel("timeseries", "Push error rate by domain", "Push errors per second by push domain, summed over apps, streams and exporter instances.",
            "cps", [target(f"sum by (domain) (rate(css_push_errors_total{{{STREAMS}}}[$__rate_interval]))", "{{domain}}")])
    top_streams_table(site, b)
    b.row("Frame gaps")
    b.panel("heatmap", "Frame gap distribution", "Frame arrival gaps CSS reported (late video and audio frames, error types 6 and 7), per interval and gap-length bucket.",
            "s", [target(f"sum by (le) (increase(css_push_frame_interval_seconds_bucket{{{APP}}}[$__rate_interval]))", "{{le}}", fmt="heatmap")],
            options={"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1, "color": {"scheme": "Oranges", "mode": "scheme"}})
    b.panel("timeseries", "Frame gap p50 / p95 / p99", "Quantiles of the reported frame arrival gaps, by media (video, audio). Estimated from the histogram buckets (1 s to 60 s).",
            "s", [target(f"histogram_quantile({q}, sum by (le, media) (rate(css_push_frame_interval_seconds_bucket{{{APP}}}[$__rate_interval])))", f"p{int(q*100)} {{{{media}}}}")
                  for q in (0.5, 0.95, 0.99)])
    b.panel("timeseries", "Late frames: video vs audio", "Share of late-frame errors (video_frame_late, audio_frame_late) that are video and audio.",
            "percentunit", [target(f"sum by (error) (rate(css_push_errors_total{{{STREAMS},{LATE}}}[$__rate_interval])) / ignoring (error) group_left sum(rate(css_push_errors_total{{{STREAMS},{LATE}}}[$__rate_interval]))", "{{error}}")],
            defaults={"min": 0, "max": 1, "custom": {"drawStyle": "line", "fillOpacity": 60, "showPoints": "never", "stacking": {"mode": "normal", "group": "A"}}})
    b.panel("timeseries", "Largest frame gap now, top 10 streams", "Largest frame gap in each stream's latest push error report (css_push_frame_interval_max_seconds), 10 worst streams. Click a series for the stream's history on the exporter.",
            "s", [target(f"topk(10, max {BY_STREAM}, media) (css_push_frame_interval_max_seconds{{{STREAMS}}}))", "{{stream}} {{media}}")],
            defaults={"links": [stream_page_link(site)]})
    b.row("Live streams")
    b.panel("timeseries", "Live streams", "Streams pushing now (push start seen, no end yet) by domain and app, summed over exporter instances.",
            "short", [target(f"sum by (domain, app) (css_push_streams_live{{{APP}}})", "{{domain}}/{{app}}")])
    b.panel("timeseries", "% of live streams with errors", f"Share of live streams with push errors in the last 5 minutes, by domain and app (recorded rule). Above {shared.shown(th)['live_share']} the app is in an incident (per-stream alerts silent).",
            "percentunit", [target(f"{shared.APP_LIVE_ERROR_RATIO}{{{REC_APP}}}", "{{domain}}/{{app}}")],
            thresholds=steps(("green", None), ("red", th["live_share"])),
            defaults={"min": 0, "max": 1,
                      "custom": {"drawStyle": "line", "fillOpacity": 10, "showPoints": "never", "thresholdsStyle": {"mode": "dashed"}}})
    b.panel("timeseries", "Push starts and ends by errcode", "Push start callbacks per second, and push end callbacks per second by errcode and its cause (why the push ended). Only errcode 1-4 (cause pusher_stopped) is a normal end; every other code is abnormal, 0 included (no reason given: cause unknown).",
            "cps", [target(f"sum(rate(css_push_stream_starts_total{{{APP}}}[$__rate_interval]))", "starts"),
                    target(f"sum by (errcode, cause) (rate(css_push_stream_ends_total{{{APP}}}[$__rate_interval]))", "ends errcode={{errcode}} {{cause}}")])
    b.panel("timeseries", "Push session duration p50 / p95", "Length of push sessions that ended (push_duration of push end callbacks), quantiles.",
            "s", [target(f"histogram_quantile({q}, sum by (le) (rate(css_push_session_duration_seconds_bucket{{{APP}}}[$__rate_interval])))", f"p{int(q*100)}")
                  for q in (0.5, 0.95)])
    b.row("Callbacks")
    b.panel("timeseries", "Callbacks by outcome", "Callbacks received per second by event type and outcome (accepted, duplicate = CSS retry, ignored; every other outcome is a refusal).",
            "cps", [target(f"sum by (event_type, outcome) (rate(css_push_callbacks_total{{{JOB}}}[$__rate_interval]))", "{{event_type}} {{outcome}}")], w=8)
    b.panel("timeseries", "Callback delivery delay p50 / p95 / p99", "Receive time minus the push error callback's data_time: how late CSS delivers (retries arrive minutes late).",
            "s", [target(f"histogram_quantile({q}, sum by (le) (rate(css_push_callback_delay_seconds_bucket{{{JOB}}}[$__rate_interval])))", f"p{int(q*100)}")
                  for q in (0.5, 0.95, 0.99)], w=8)
    b.panel("timeseries", "Unreadable frame-gap details", "Frame-gap details (types 6, 7) whose desc had no readable interval, per second. Non-zero means CSS changed its text: the gap histogram misses them.",
            "cps", [target(f"sum by (error_type) (rate(css_push_unparsed_details_total{{{JOB}}}[$__rate_interval]))", "type {{error_type}}")], w=8)
    b.row("Exporter health")
    b.panel("stat", "Exporters up", "Scrape targets of the selected job(s) that answer, and those that do not (red from one).",
            "short", [target(f"sum(up{{{JOB}}})", "up"), target(f"sum(1 - up{{{JOB}}})", "down")], w=4, h=5,
            thresholds=steps(("red", None), ("green", 1)),
            overrides=[by_name("down", thresholds=steps(("green", None), ("red", 1)))])
    b.panel("stat", "Streams tracked (all instances)", "Streams holding per-stream series, summed over exporter instances.",
            "short", [target(f"sum(css_push_streams{{{JOB}}})", "streams")], w=4, h=5, thresholds=NEUTRAL)
    b.panel("stat", "Refused callbacks (share)", f"Share of callbacks refused (any outcome but accepted, duplicate, ignored), all instances; red from {shared.shown(th)['rejected_share']}, where CSSPushCallbacksRejected fires for one outcome.",
            "percentunit", [target(f"sum(rate(css_push_callbacks_total{{{JOB},{REFUSED}}}[$__rate_interval])) / sum(rate(css_push_callbacks_total{{{JOB}}}[$__rate_interval]))", "refused")], w=4, h=5,
            thresholds=steps(("green", None), ("red", th["rejected_share"])))
    b.panel("stat", "Build", "Exporter versions running (css_push_exporter_build_info), number of instances each.",
            "short", [target(f"count by (version) (css_push_exporter_build_info{{{JOB}}})", "{{version}}")], w=4, h=5,
            thresholds=NEUTRAL)
    b.panel("stat", "Memory (resident)", "Resident memory of the exporter processes, summed.",
            "bytes", [target(f"sum(process_resident_memory_bytes{{{JOB}}})", "rss")], w=4, h=5, thresholds=NEUTRAL)
    b.panel("stat", "Dedup entries", "Callback identities remembered to recognise CSS retries, summed over instances.",
            "short", [target(f"sum(css_push_dedup_entries{{{JOB}}})", "entries")], w=4, h=5, thresholds=NEUTRAL)
    b.panel("timeseries", "Streams tracked vs cap, per instance", "css_push_streams against the --max-streams cap (css_push_streams_limit) of each instance. At the cap, new streams fold into __overflow__.",
            "short", [target(f"sum by (instance) (css_push_streams{{{JOB}}})", "tracked {{instance}}"),
                      target(f"max by (instance) (css_push_streams_limit{{{JOB}}})", "cap {{instance}}")], w=8)
    b.panel("timeseries", "Overflow, expiry, dedup evictions", "Per second: callbacks folded into __overflow__ (cap hit), streams expired after --stream-ttl, dedup identities evicted early (--dedup-capacity too small).",
            "cps", [target(f"sum(rate(css_push_stream_overflow_total{{{JOB}}}[$__rate_interval]))", "overflow"),
                    target(f"sum(rate(css_push_streams_expired_total{{{JOB}}}[$__rate_interval]))", "expired"),
                    target(f"sum(rate(css_push_dedup_evicted_total{{{JOB}}}[$__rate_interval]))", "dedup evicted")], w=8)
    b.panel("timeseries", "Rejected callbacks by outcome", "Refused callbacks per second by outcome (every outcome but accepted, duplicate, ignored). unauthorized: bad signature (probing, or a key mismatch after rotation); expired: t in the past (replay or clock skew); timeout: body not received within --read-timeout.",
            "cps", [target(f"sum by (outcome) (rate(css_push_callbacks_total{{{JOB},{REFUSED}}}[$__rate_interval]))", "{{outcome}}")], w=8)
    access_nodes(b, th)
    return dashboard(site, OVERVIEW, "CSS push errors: overview",
                     "Tencent Cloud CSS push errors, live streams and exporter health (css-push-exporter).",
                     b, True, [{"title": "Stream drill-down", "type": "link", "url": f"/d/{STREAM}/{STREAM}", "keepTime": True, "includeVars": True}])


def stream(site):
    failing = site["thresholds"]["failing_seconds"]
    b = Board()
    b.panel("stat", "Pushing now", "1 while the stream is pushing (push start seen), 0 after its push end; empty without lifecycle callbacks.",
            "short", [target(f"max {BY_STREAM}) (css_push_stream_live{{{ONE}}})", "live")], w=6, h=5, thresholds=NEUTRAL,
            defaults={"mappings": states(**{"0": ("ended", "orange"), "1": ("pushing", "green")})})
    b.panel("stat", "First error in range", "data_time of the stream's first push error report inside the time range: since when it fails (if it still does, see the health timeline).",
            "dateTimeAsIso", [target(f"{first_error_in_range(ONE)} * 1000", "first error")], w=6, h=5,
            thresholds=NEUTRAL)
    b.panel("stat", "Last error report", "data_time of the stream's latest push error report.",
            "dateTimeAsIso", [target(f"max {BY_STREAM}) ({LAST_ERROR}{{{ONE}}}) * 1000", "last error")], w=6, h=5,
            thresholds=NEUTRAL)
    b.panel("stat", "Since last error report", f"Time since the stream's latest push error report (CSS sends one per report interval with errors): red while under {failing:g} s, the stream still failing.",
            "s", [target(f"time() - max {BY_STREAM}) ({LAST_ERROR}{{{ONE}}})", "ago")], w=6, h=5,
            thresholds=steps(("red", None), ("green", failing)))
    b.panel("state-timeline", "Health", f"Pushing: push start seen and no push end (css_push_stream_live). Errors: a push error report within the last {failing:g} s. Read across: since when the stream fails, and whether it was pushing then.",
            "short", [target(f"max {BY_STREAM}) (css_push_stream_live{{{ONE}}})", "pushing"),
                      target(f"time() - max {BY_STREAM}) ({LAST_ERROR}{{{ONE}}}) < bool {failing:g}", "errors")], w=24, h=5,
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8, "legend": {"showLegend": False}},
            overrides=[by_name("pushing", mappings=states(**{"0": ("ended", "orange"), "1": ("pushing", "green")})),
                       by_name("errors", mappings=states(**{"0": ("no errors", "green"), "1": ("errors", "red")}))])
    b.panel("stat", "Worst frame gap in range", "Largest frame arrival gap in any of the stream's reports in the time range (sampled at scrapes).",
            "s", [target(f"max {BY_STREAM}) (max_over_time(css_push_frame_interval_max_seconds{{{ONE}}}[$__range]))", "max gap")], w=6, h=5,
            thresholds=NEUTRAL)
    b.panel("timeseries", "Error types over time", "This stream's push errors per second by error type.",
            "cps", [target(f"sum {BY_STREAM}, error) (rate(css_push_errors_total{{{ONE}}}[$__rate_interval]))", "{{error}}")], w=18, h=5)
    b.panel("timeseries", "Worst frame gap per report", "Largest video and audio frame gap in the stream's latest push error report.",
            "s", [target(f"max {BY_STREAM}, media) (css_push_frame_interval_max_seconds{{{ONE}}})", "{{media}}")])
    b.panel("bargauge", "Errors in the last 5 minutes by type", "Push errors of this stream in the last 5 minutes by error type (recorded rule; counts a stream's first report too).",
            "short", [target(f"sum {BY_STREAM}, error) ({shared.STREAM_ERRORS}{{{REC_ONE}}})", "{{error}}", instant=True)],
            options={"displayMode": "gradient", "orientation": "horizontal",
                     "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}})
    # Every panel shows the one stream, by its labels: each links its history
    # on the exporter.
    for p in b.panels:
        p["fieldConfig"]["defaults"]["links"] = [stream_page_link(site)]
    # The stream's own alerts, and those without a stream (domain-wide, the
    # exporter's).
    return dashboard(site, STREAM, "CSS push errors: stream",
                     "One push stream: since when it fails, its error types, frame gaps and push sessions.",
                     b, False, [{"title": "Overview", "type": "link", "url": f"/d/{OVERVIEW}/{OVERVIEW}", "keepTime": True, "includeVars": True}],
                     alert_filter=',domain=~"$domain|",stream=~"$stream|"')


def dashboards(site):
    """{uid: dashboard}."""
    return {OVERVIEW: overview(site), STREAM: stream(site)}


def texts(site):
    """{file name: JSON text} of every dashboard."""
    return {uid + ".json": json.dumps(d, indent=2, ensure_ascii=False) + "\n" for uid, d in dashboards(site).items()}


def render(site, for_site):
    """The same files for the repository and for a site's copy."""
    return {pathlib.Path("grafana", "dashboards", name): text for name, text in texts(site).items()}


if __name__ == "__main__":
    outputs.main(__doc__, render)
