#!/usr/bin/env python3
"""Writes grafana/dashboards/*.json. Edit this, run `python3 grafana/generate.py`,
commit both; `--check` fails when the committed JSON differs (CI runs it), so
a change made in Grafana belongs in this file. tests/api/dashboards.rs lints the result."""
import json
import os
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
JOB = 'job=~"$job",instance=~"$instance"'
APP = JOB + ',domain=~"$domain",app=~"$app"'
STREAM = APP + ',stream=~"$stream"'
# Recorded series carry no job/instance (they sum over exporter instances).
REC_APP = 'domain=~"$domain",app=~"$app"'
REC_STREAM = REC_APP + ',stream=~"$stream"'
LATE = 'error=~"video_frame_late|audio_frame_late"'


def target(expr, legend="", ref="A", instant=False, fmt=None):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t["instant"] = True
        t["range"] = False
    if fmt:
        t["format"] = fmt
    return t


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

    def panel(self, kind, title, description, unit, targets, w=12, h=8, **extra):
        if self.x + w > 24:
            self.newline()
        refs = "ABCDEFGH"
        for i, t in enumerate(targets):
            t["refId"] = refs[i]
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
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "value", "graphMode": "area", "textMode": "auto"}
        for k, v in extra.items():
            if k == "defaults":
                p["fieldConfig"]["defaults"].update(v)
            else:
                p[k] = v
        self.panels.append(p)
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        return p


def variables(stream_multi):
    def query(name, label, q, multi=True, include_all=True):
        return {"name": name, "label": label, "type": "query", "datasource": DS,
                "query": {"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "definition": q, "refresh": 2, "sort": 1, "multi": multi, "includeAll": include_all,
                "allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]}
                if include_all else {}}
    series = '{__name__=~"css_push_errors_total|css_push_streams_live|css_push_stream_live",' + JOB
    stream = query("stream", "Stream",
                   'label_values({__name__=~"css_push_last_error_timestamp_seconds|css_push_stream_live",' + APP + '}, stream)',
                   multi=stream_multi, include_all=stream_multi)
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "regex": "", "includeAll": False, "multi": False},
        query("job", "Job", "label_values(css_push_exporter_build_info, job)"),
        query("instance", "Instance", 'label_values(css_push_exporter_build_info{job=~"$job"}, instance)'),
        query("domain", "Domain", "label_values(" + series + "}, domain)"),
        query("app", "App", "label_values(" + series + ',domain=~"$domain"}, app)'),
        stream,
    ]}


def dashboard(uid, title, description, board, stream_multi, links):
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["css-push-exporter", "tencent-cloud-css"],
        "editable": True, "graphTooltip": 1, "refresh": "30s", "schemaVersion": 39, "version": 1,
        "time": {"from": "now-6h", "to": "now"}, "timezone": "",
        "templating": variables(stream_multi),
        "annotations": {"list": []},
        "links": links,
        "panels": board.panels,
    }


def overview():
    b = Board()
    b.row("Push errors")
    b.panel("stat", "Push errors /s (all domains)", "Push errors CSS reported, summed over every exporter instance, per second.",
            "cps", [target(f"sum(rate(css_push_errors_total{{{STREAM}}}[$__rate_interval]))", "errors/s")], w=6, h=5)
    b.panel("stat", "Streams with errors (5m)", "Distinct streams (overflow bucket excluded) with push errors in the last 5 minutes. Recorded rule, all exporter instances.",
            "short", [target(f"sum(domain_app:css_push_streams_with_errors:count5m{{{REC_APP}}})", "streams")], w=6, h=5)
    b.panel("stat", "Live streams (total)", "Streams pushing now (push start seen, no push end), summed over exporter instances.",
            "short", [target(f"sum(css_push_streams_live{{{APP}}})", "live")], w=6, h=5)
    b.panel("stat", "% of live streams with errors (5m)", "Share of live streams that had push errors in the last 5 minutes. The CSSPushLiveStreamsWithErrors alert fires above 20 %.",
            "percentunit", [target(f"sum(domain_app:css_push_live_streams_with_errors:ratio5m{{{REC_APP}}} * domain_app:css_push_streams_live:sum) / sum(domain_app:css_push_streams_live:sum{{{REC_APP}}})", "share")], w=6, h=5,
            defaults={"min": 0, "max": 1, "thresholds": {"mode": "absolute", "steps": [
                {"color": "green", "value": None}, {"color": "red", "value": 0.2}]}})
    b.panel("timeseries", "Push error rate by error type", "Push errors per second by error (the stable name of CSS's error type), all selected domains and streams.",
            "cps", [target(f"sum by (error) (rate(css_push_errors_total{{{STREAM}}}[$__rate_interval]))", "{{error}}")])
    b.panel("timeseries", "Push error rate by domain", "Push errors per second by push domain, summed over apps, streams and exporter instances.",
            "cps", [target(f"sum by (domain) (rate(css_push_errors_total{{{STREAM}}}[$__rate_interval]))", "{{domain}}")])
    b.panel("table", "Top streams by errors (5m)", "The 10 streams with most push errors in the last 5 minutes (recorded rule domain_app_stream_error:css_push_errors:increase5m, all instances). Click a stream for its drill-down.",
            "short", [target(f"topk(10, sum by (domain, app, stream) (domain_app_stream_error:css_push_errors:increase5m{{{REC_STREAM}}}))", "", instant=True, fmt="table")],
            w=24, h=8,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": {"Value": "errors (5m)"}}}],
            defaults={"links": [{"title": "Stream drill-down",
                                 "url": "/d/css-push-stream/css-push-stream?${__url_time_range}&var-datasource=${datasource}&var-domain=${__data.fields.domain}&var-app=${__data.fields.app}&var-stream=${__data.fields.stream}"}]})
    b.row("Frame gaps")
    b.panel("heatmap", "Frame gap distribution", "Frame arrival gaps CSS reported (late video and audio frames, error types 6 and 7), per interval and gap-length bucket.",
            "s", [target(f"sum by (le) (increase(css_push_frame_interval_seconds_bucket{{{APP}}}[$__rate_interval]))", "{{le}}", fmt="heatmap")],
            options={"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1, "color": {"scheme": "Oranges", "mode": "scheme"}})
    b.panel("timeseries", "Frame gap p50 / p95 / p99", "Quantiles of the reported frame arrival gaps, by media (video, audio). Estimated from the histogram buckets (1 s to 60 s).",
            "s", [target(f"histogram_quantile({q}, sum by (le, media) (rate(css_push_frame_interval_seconds_bucket{{{APP}}}[$__rate_interval])))", f"p{int(q*100)} {{{{media}}}}")
                  for q in (0.5, 0.95, 0.99)])
    b.panel("timeseries", "Late frames: video vs audio", "Share of late-frame errors (video_frame_late, audio_frame_late) that are video and audio.",
            "percentunit", [target(f"sum by (error) (rate(css_push_errors_total{{{STREAM},{LATE}}}[$__rate_interval])) / ignoring (error) group_left sum(rate(css_push_errors_total{{{STREAM},{LATE}}}[$__rate_interval]))", "{{error}}")],
            defaults={"min": 0, "max": 1, "custom": {"drawStyle": "line", "fillOpacity": 60, "showPoints": "never", "stacking": {"mode": "normal", "group": "A"}}})
    b.panel("timeseries", "Largest frame gap now, top 10 streams", "Largest frame gap in each stream's latest push error report (css_push_frame_interval_max_seconds), 10 worst streams.",
            "s", [target(f"topk(10, max by (domain, app, stream, media) (css_push_frame_interval_max_seconds{{{STREAM}}}))", "{{stream}} {{media}}")])
    b.row("Live streams")
    b.panel("timeseries", "Live streams", "Streams pushing now (push start seen, no end yet) by domain and app, summed over exporter instances.",
            "short", [target(f"sum by (domain, app) (css_push_streams_live{{{APP}}})", "{{domain}}/{{app}}")])
    b.panel("timeseries", "% of live streams with errors", "Share of live streams with push errors in the last 5 minutes, by domain and app (recorded rule). Alert threshold: 20 %.",
            "percentunit", [target(f"domain_app:css_push_live_streams_with_errors:ratio5m{{{REC_APP}}}", "{{domain}}/{{app}}")],
            defaults={"min": 0, "max": 1, "thresholds": {"mode": "absolute", "steps": [
                {"color": "green", "value": None}, {"color": "red", "value": 0.2}]},
                "custom": {"drawStyle": "line", "fillOpacity": 10, "showPoints": "never", "thresholdsStyle": {"mode": "dashed"}}})
    b.panel("timeseries", "Push starts and ends by errcode", "Push start callbacks per second, and push end callbacks per second by errcode (why the push ended; 0 is a normal stop).",
            "cps", [target(f"sum(rate(css_push_stream_starts_total{{{APP}}}[$__rate_interval]))", "starts"),
                    target(f"sum by (errcode) (rate(css_push_stream_ends_total{{{APP}}}[$__rate_interval]))", "ends errcode={{errcode}}")])
    b.panel("timeseries", "Push session duration p50 / p95", "Length of push sessions that ended (push_duration of push end callbacks), quantiles.",
            "s", [target(f"histogram_quantile({q}, sum by (le) (rate(css_push_session_duration_seconds_bucket{{{APP}}}[$__rate_interval])))", f"p{int(q*100)}")
                  for q in (0.5, 0.95)])
    b.row("Callbacks")
    b.panel("timeseries", "Callbacks by outcome", "Callbacks received per second by event type and outcome (accepted, duplicate = CSS retry, ignored, malformed, unauthorized, expired, too_large).",
            "cps", [target(f"sum by (event_type, outcome) (rate(css_push_callbacks_total{{{JOB}}}[$__rate_interval]))", "{{event_type}} {{outcome}}")], w=8)
    b.panel("timeseries", "Callback delivery delay p50 / p95 / p99", "Receive time minus the push error callback's data_time: how late CSS delivers (retries arrive minutes late).",
            "s", [target(f"histogram_quantile({q}, sum by (le) (rate(css_push_callback_delay_seconds_bucket{{{JOB}}}[$__rate_interval])))", f"p{int(q*100)}")
                  for q in (0.5, 0.95, 0.99)], w=8)
    b.panel("timeseries", "Unreadable frame-gap details", "Frame-gap details (types 6, 7) whose desc had no readable interval, per second. Non-zero means CSS changed its text: the gap histogram misses them.",
            "cps", [target(f"sum by (error_type) (rate(css_push_unparsed_details_total{{{JOB}}}[$__rate_interval]))", "type {{error_type}}")], w=8)
    b.row("Exporter health")
    b.panel("stat", "Exporters up", "Scrape targets of the selected job(s) that answer.",
            "short", [target(f"sum(up{{{JOB}}})", "up")], w=4, h=5)
    b.panel("stat", "Streams tracked (all instances)", "Streams holding per-stream series, summed over exporter instances.",
            "short", [target(f"sum(css_push_streams{{{JOB}}})", "streams")], w=4, h=5)
    b.panel("stat", "Rejected callbacks /s", "Callbacks refused (malformed, unauthorized, expired, too_large) per second, all instances.",
            "cps", [target(f'sum(rate(css_push_callbacks_total{{{JOB},outcome=~"malformed|unauthorized|expired|too_large"}}[$__rate_interval]))', "rejected/s")], w=4, h=5)
    b.panel("stat", "Build", "Exporter versions running (css_push_exporter_build_info), number of instances each.",
            "short", [target(f"count by (version) (css_push_exporter_build_info{{{JOB}}})", "{{version}}")], w=4, h=5)
    b.panel("stat", "Memory (resident)", "Resident memory of the exporter processes, summed.",
            "bytes", [target(f"sum(process_resident_memory_bytes{{{JOB}}})", "rss")], w=4, h=5)
    b.panel("stat", "Dedup entries", "Callback identities remembered to recognise CSS retries, summed over instances.",
            "short", [target(f"sum(css_push_dedup_entries{{{JOB}}})", "entries")], w=4, h=5)
    b.panel("timeseries", "Streams tracked vs cap, per instance", "css_push_streams against the --max-streams cap (css_push_streams_limit) of each instance. At the cap, new streams fold into __overflow__.",
            "short", [target(f"sum by (instance) (css_push_streams{{{JOB}}})", "tracked {{instance}}"),
                      target(f"max by (instance) (css_push_streams_limit{{{JOB}}})", "cap {{instance}}")], w=8)
    b.panel("timeseries", "Overflow, expiry, dedup evictions", "Per second: callbacks folded into __overflow__ (cap hit), streams expired after --stream-ttl, dedup identities evicted early (--dedup-capacity too small).",
            "cps", [target(f"sum(rate(css_push_stream_overflow_total{{{JOB}}}[$__rate_interval]))", "overflow"),
                    target(f"sum(rate(css_push_streams_expired_total{{{JOB}}}[$__rate_interval]))", "expired"),
                    target(f"sum(rate(css_push_dedup_evicted_total{{{JOB}}}[$__rate_interval]))", "dedup evicted")], w=8)
    b.panel("timeseries", "Rejected callbacks by outcome", "Refused callbacks per second by outcome. unauthorized: bad signature (probing, or a key mismatch after rotation); expired: t in the past (replay or clock skew).",
            "cps", [target(f'sum by (outcome) (rate(css_push_callbacks_total{{{JOB},outcome=~"malformed|unauthorized|expired|too_large"}}[$__rate_interval]))', "{{outcome}}")], w=8)
    return dashboard("css-push-overview", "CSS push errors: overview",
                     "Tencent Cloud CSS push errors, live streams and exporter health (css-push-exporter).",
                     b, True, [{"title": "Stream drill-down", "type": "link", "url": "/d/css-push-stream/css-push-stream", "keepTime": True, "includeVars": True}])


def stream():
    b = Board()
    b.panel("stat", "Pushing now", "1 while the stream is pushing (push start seen), 0 after its push end; empty without lifecycle callbacks.",
            "short", [target(f"max(css_push_stream_live{{{STREAM}}})", "live")], w=6, h=5,
            defaults={"mappings": [{"type": "value", "options": {"0": {"text": "ended", "color": "orange"}, "1": {"text": "pushing", "color": "green"}}}]})
    b.panel("stat", "Last error report", "data_time of the stream's latest push error report.",
            "dateTimeAsIso", [target(f"max(css_push_last_error_timestamp_seconds{{{STREAM}}}) * 1000", "last error")], w=6, h=5)
    b.panel("stat", "Since last error report", "Time since the stream's latest push error report (CSS sends one per 5 s interval with errors).",
            "s", [target(f"time() - max(css_push_last_error_timestamp_seconds{{{STREAM}}})", "ago")], w=6, h=5)
    b.panel("stat", "Worst frame gap in range", "Largest frame arrival gap in any of the stream's reports in the time range (sampled at scrapes).",
            "s", [target(f"max(max_over_time(css_push_frame_interval_max_seconds{{{STREAM}}}[$__range]))", "max gap")], w=6, h=5)
    b.panel("timeseries", "Error types over time", "This stream's push errors per second by error type.",
            "cps", [target(f"sum by (error) (rate(css_push_errors_total{{{STREAM}}}[$__rate_interval]))", "{{error}}")], w=24)
    b.panel("timeseries", "Worst frame gap per report", "Largest video and audio frame gap in the stream's latest push error report.",
            "s", [target(f"max by (media) (css_push_frame_interval_max_seconds{{{STREAM}}})", "{{media}}")])
    b.panel("bargauge", "Errors in the last 5 minutes by type", "Push errors of this stream in the last 5 minutes by error type (recorded rule; counts a stream's first report too).",
            "short", [target(f"sum by (error) (domain_app_stream_error:css_push_errors:increase5m{{{REC_STREAM}}})", "{{error}}", instant=True)],
            options={"displayMode": "gradient", "orientation": "horizontal",
                     "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}})
    return dashboard("css-push-stream", "CSS push errors: stream",
                     "One push stream: its error types, frame gaps and when it last reported errors.",
                     b, False, [{"title": "Overview", "type": "link", "url": "/d/css-push-overview/css-push-overview", "keepTime": True, "includeVars": True}])


def main():
    """Writes the dashboards; with --check, only says whether the committed ones match."""
    check = sys.argv[1:] == ["--check"]
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")
    stale = []
    for name, d in (("css-push-overview.json", overview()), ("css-push-stream.json", stream())):
        text = json.dumps(d, indent=2) + "\n"
        path = os.path.join(here, name)
        if check:
            with open(path) as f:
                if f.read() != text:
                    stale.append(path)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        sys.exit("out of date, run python3 grafana/generate.py and commit: " + ", ".join(stale))


if __name__ == "__main__":
    main()
