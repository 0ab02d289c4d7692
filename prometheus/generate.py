#!/usr/bin/env python3
"""Writes prometheus/alerts.yml, and the alert table in prometheus/README.md and docs/alerts.md,
from the rules below and the site settings (tools/site.example.toml, or
`--config`). Run `python3 tools/generate.py` (all generators) after editing
this, commit the results; `--check` fails if a committed file differs (CI).
Python 3.11 standard library only.

`--speedup N --output FILE` writes a test copy with every duration divided
by N (the end-to-end alerting test); never deploy that."""
import json
import pathlib
import string
import sys
import textwrap

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import outputs  # noqa: E402
import shared  # noqa: E402
from shared import OVERVIEW, STREAM, STREAM_ERRORS  # noqa: E402


def callbacks_stopped(event_filter):
    """Nothing accepted (of the filtered event types) for an hour, when the
    same hour of each of the 3 previous days had a steady flow."""
    accepted = 'css_push_callbacks_total{$SEL,outcome="accepted"%s}' % event_filter
    days = "\n".join(f"and on () sum(increase({accepted}[1h] offset {d}d)) >= ${{steady_callbacks}}" for d in (1, 2, 3))
    return f"(sum(increase({accepted}[1h])) or vector(0)) == 0\n{days}"


def per_stream(errors, compare):
    """One stream's sustained problem, silent while its app or domain is in
    an incident: that is one page, not a ticket per stream (the count of
    alerts sent to Alertmanager stays bounded, not only their notifications)."""
    return f"""
        max by (domain, app, stream, error) (
          {STREAM_ERRORS}{{error=~"{errors}", stream!="__overflow__"}}
        ) {compare}
        unless on (domain, app) ($APP_INCIDENT == 1)
        unless on (domain) ($DOMAIN_INCIDENT == 1)"""


# The css-push pages of a domain firing now, the burn-rate pages of
# slo_rules.yml included: once one is out, the incident is known. Every page
# is a domain's (or the exporter's): the SLO pages once per domain, so no
# app-scoped page exists to mark an app's incident (a test keeps it so).
FIRING_DOMAIN_PAGES = (f'ALERTS{{alertname=~"{shared.ALERT_PREFIX}.*", alertstate="firing", severity="critical", '
                       'scope="domain"}')


# A large share of a domain's streams, and at least a minimum count, with
# errors in 5 minutes: CSSPushDomainErrorSurge pages on it, and it marks a
# domain incident at once (before the page's `for`).
DOMAIN_SURGE = """
    ($DOMAIN_STREAMS_WITH_ERRORS / $DOMAIN_STREAMS > ${surge_share})
    and on (domain)
    ($DOMAIN_STREAMS_WITH_ERRORS >= ${surge_min})"""

# Per-stream alerts keep firing this long after their condition last held,
# so an exporter restart or missed scrapes do not resolve a ticket and open
# a second one.
STREAM_KEEP_FIRING = "15m"


STREAM_LABELS = "{{ $labels.domain }}/{{ $labels.app }}/{{ $labels.stream }}"

# Recording rules: (name, why, expr).
RECORDS = [
    (STREAM_ERRORS,
     """Errors per stream and error type over the last 5 minutes. increase()
alone misses a series' first report (a counter born at N shows no
increase, and CSS often reports a problem only once), so a series that
did not exist 5 minutes ago, of a stream that reported within 5 minutes,
counts with its whole value (all of it is that new). Shared by the
overview's "top streams" panel and the stream alerts.""",
     """
        sum by (domain, app, stream, error_type, error) (
            (increase(css_push_errors_total{$SEL}[5m]) and css_push_errors_total{$SEL} offset 5m)
          or
            (
              (css_push_errors_total{$SEL} unless css_push_errors_total{$SEL} offset 5m)
              and on (job, instance, domain, app, stream)
              (time() - css_push_last_error_timestamp_seconds{$SEL} < $SECONDS(5m))
            )
        )"""),
    (shared.APP_STREAMS_WITH_ERRORS,
     "Distinct real streams (overflow bucket excluded) with errors in 5 minutes.",
     f"""
        count by (domain, app) (
          sum by (domain, app, stream) ({STREAM_ERRORS}{{stream!="__overflow__"}}) > 0
        )"""),
    (shared.APP_STREAMS_LIVE,
     "Streams pushing now, summed over all exporter instances.",
     "sum by (domain, app) (css_push_streams_live{$SEL})"),
    (shared.APP_LIVE_ERROR_RATIO,
     """Share (0..1) of live streams that had errors in the last 5 minutes;
0 for a domain/app with live streams and no errors, absent when
nothing is live.""",
     f"""
        (
            count by (domain, app) (
                (sum by (domain, app, stream) ({STREAM_ERRORS}{{stream!="__overflow__"}}) > 0)
              and on (domain, app, stream)
                (max by (domain, app, stream) (css_push_stream_live{{$SEL}}) == 1)
            )
          or
            $APP_STREAMS_LIVE * 0
        )
        / ($APP_STREAMS_LIVE > 0)"""),
    (shared.DOMAIN_STREAMS_WITH_ERRORS,
     "Distinct streams of a domain (all apps) with errors in 5 minutes.",
     "sum by (domain) ($APP_STREAMS_WITH_ERRORS)"),
    (shared.DOMAIN_STREAMS,
     """A domain's fleet: the larger of its live-stream count and the distinct
streams the exporter holds series for (pushing, or reported within
--stream-ttl; the live count also covers streams past --max-streams).
Without push start/end callbacks that is only the streams with errors.""",
     """
          sum by (domain) (css_push_streams_live{$SEL})
        > $KNOWN
        or
          $KNOWN""".replace("$KNOWN", """count by (domain) (
            group by (domain, app, stream) (
              {__name__=~"css_push_stream_live|css_push_last_error_timestamp_seconds", $SEL, stream!="__overflow__"}
            )
          )""")),
    (shared.DOMAIN_INCIDENT,
     """1 while a domain is in an incident: a surge now, or a domain-wide page
firing (the SLO's domain roll-up); else 0. Its per-stream alerts stay
silent meanwhile.""",
     f"""
        group by (domain) (
            {textwrap.indent(textwrap.dedent(DOMAIN_SURGE).strip(), "            ").strip()}
          or
            {FIRING_DOMAIN_PAGES}
        )
        or 0 * group by (domain) ($DOMAIN_STREAMS)"""),
    (shared.APP_INCIDENT,
     """1 while an app is in an incident: more than live_share of its live
streams, and at least live_min, with errors in 5 minutes; else 0. Its
per-stream alerts stay silent meanwhile (and while its domain is in an
incident, a page firing included: pages are per domain).""",
     """
        group by (domain, app) (
            ($APP_LIVE_ERROR_RATIO > ${live_share})
            and on (domain, app)
            ($APP_LIVE_ERROR_RATIO * $APP_STREAMS_LIVE >= ${live_min})
        )
        or 0 * group by (domain, app) ($APP_STREAMS_WITH_ERRORS or $APP_STREAMS_LIVE)"""),
]

# Alerts. panel: (dashboard uid, panel title or None, Grafana variables
# taken from the alert's labels). when/action: the README's alert table.
ALERTS = [
    dict(
        name=shared.SURGE_ALERT, severity="critical", scope="domain", for_="5m",
        why="A fleet-wide surge: a large share of a domain's streams (live or seen lately) fails at once;\nheld while the SLO's page of the domain fires (it pages for this incident already).",
        expr=DOMAIN_SURGE + f"""
    unless on (domain)
    ALERTS{{alertname="{shared.SLO_PAGE_ALERT}", alertstate="firing", severity="critical"}}""",
        summary="Domain {{ $labels.domain }}: {{ $value | humanizePercentage }} of its streams have push errors",
        description="{{ $value | humanizePercentage }} of the streams of {{ $labels.domain }} (at least ${surge_min} streams) reported push errors in the last 5 minutes, for 5 minutes. A shared cause (CSS, the ingest network, a common encoder setup) rather than one pusher.",
        panel=(OVERVIEW, "Push error rate by error type", ("domain",)),
        when="more than ${surge_share} of a domain's streams (live, or seen within `--stream-ttl`), and at least ${surge_min}, had errors in 5 minutes, for 5 minutes, unless the SLO's page of the domain fires already",
        action="a shared cause: check the error types, CSS status, the ingest network, a recent encoder rollout; the domain's SLO tickets and per-stream warnings are held meanwhile"),
    dict(
        name="CSSPushCallbacksStopped", severity="critical", scope="exporter", for_="5m",
        why="CSS sends nothing for healthy streams, so a broken callback path looks like no errors; only the usual flow tells them apart.",
        expr=callbacks_stopped(""),
        summary="No CSS callback accepted for an hour",
        description="No callback was accepted in the last hour, while the same hour on each of the 3 previous days had at least ${steady_callbacks}. The callback path is probably broken (ingress, TLS certificate in front of /callback, DNS, the callback template unbound from the domain, a key mismatch): push errors are not being counted.",
        panel=(OVERVIEW, "Callbacks by outcome", ()),
        when="no callback accepted for 1 hour, when the same hour of each of the 3 previous days had at least ${steady_callbacks}",
        action="check the callback path from outside: ingress, TLS certificate, DNS, the CSS callback template and its domain binding, the callback key"),
    dict(
        name="CSSPushLifecycleCallbacksStopped", severity="critical", scope="exporter", for_="5m",
        why="Push start/end stopped while streams are live: the live counts freeze and the SLO's live seconds with them.",
        expr=callbacks_stopped(',event_type=~"0|1"') + "\nand on () sum(css_push_streams_live{$SEL}) > 0",
        summary="No push start/end callback for an hour while streams are live",
        description="No push start or push end callback was accepted in the last hour, while the same hour on each of the 3 previous days had at least ${steady_callbacks} and streams are still counted live. The stream push/interruption callback URLs are probably unset or unreachable: live-stream counts are frozen, so the SLO's live seconds and the per-app incident share are wrong.",
        panel=(OVERVIEW, "Push starts and ends by errcode", ()),
        when="no push start/end accepted for 1 hour while streams are live, when the same hour of each of the 3 previous days had at least ${steady_callbacks}",
        action="check the stream push / interruption URLs of the CSS callback template; then as for CSSPushCallbacksStopped"),
    dict(
        name="CSSPushExporterDown", severity="critical", scope="exporter", for_="5m",
        why="A down instance loses the callbacks sent to it.",
        expr="up{$SEL} == 0",
        summary="css-push-exporter {{ $labels.instance }} is down",
        description="Prometheus cannot scrape {{ $labels.instance }}. CSS callbacks to it fail (CSS retries for a while, then drops them) and its push errors are not counted.",
        panel=(OVERVIEW, "Exporters up", ()),
        when="an instance's scrape fails (`up == 0`) for 5 minutes",
        action="check the process, its logs and its host; restart it"),
    dict(
        name="CSSPushExporterAbsent", severity="critical", scope="exporter", for_="5m",
        why="No exporter scraped at all (or the selector matches nothing): every other alert is silent.",
        expr="absent(up{$SEL})",
        summary="No css-push-exporter is scraped",
        description="Prometheus has no target matching the selector ${selector}: the exporter is not deployed, its service discovery broke, or the rules' selector does not match the scrape job. Every other css-push alert is silent meanwhile.",
        panel=(OVERVIEW, "Exporters up", ()),
        when="no scrape target matches the rules' selector for 5 minutes",
        action="check Prometheus' targets page and service discovery; if the job was renamed, regenerate the rules with the new selector"),
    dict(
        name="CSSPushStreamFramesLate", severity="warning", scope="stream", for_="10m",
        why="One stream's sustained stalls; a single report never fires.",
        expr=per_stream("video_frame_late|audio_frame_late", ">= ${late_frames}"),
        summary=f"Stream {STREAM_LABELS}: {{{{ $labels.error }}}} for 10 minutes",
        description="CSS reported {{ $value | printf \"%.0f\" }} {{ $labels.error }} errors in the last 5 minutes for this stream, and at least ${late_frames} in every 5 minutes for 10 minutes. Its viewers see stalls: the pusher's uplink or encoder is too slow.",
        panel=(STREAM, "Worst frame gap per report", ("domain", "app", "stream")),
        when="one stream had at least ${late_frames} late video or audio frames in every 5 minutes, for 10 minutes",
        action="ticket to the stream's owner: uplink bandwidth, encoder CPU, bitrate"),
    dict(
        name="CSSPushCodecHeaderMissing", severity="warning", scope="stream", for_="10m",
        why="One stream keeps sending frames before any codec header; a one-off report never fires.",
        expr=per_stream("video_codec_header_missing|audio_codec_header_missing", "> 0"),
        summary=f"Stream {STREAM_LABELS}: {{{{ $labels.error }}}} for 10 minutes",
        description="Frames arrive before any codec (sequence) header in every 5 minutes, for 10 minutes: players cannot decode this stream. The encoder or a relay must send the AVC/AAC sequence header first.",
        panel=(STREAM, "Error types over time", ("domain", "app", "stream")),
        when="one stream reported a missing video or audio codec header in every 5 minutes, for 10 minutes",
        action="ticket to the stream's owner: fix the encoder or relay that strips the sequence header; restart the push"),
    dict(
        name="CSSPushTimestampRollback", severity="warning", scope="stream", for_="10m",
        why="One stream's timestamps keep going backwards; a one-off report never fires.",
        expr=per_stream("video_timestamp_rollback|audio_timestamp_rollback", "> 0"),
        summary=f"Stream {STREAM_LABELS}: {{{{ $labels.error }}}} for 10 minutes",
        description="Timestamps went backwards in every 5 minutes, for 10 minutes ({{ $value | printf \"%.0f\" }} times in the last 5): players freeze, skip or desync; recordings break. Usually an encoder restarting inside one session, or a faulty relay.",
        panel=(STREAM, "Error types over time", ("domain", "app", "stream")),
        when="one stream reported timestamps going backwards in every 5 minutes, for 10 minutes",
        action="ticket to the stream's owner: restart the push cleanly; fix the relay or encoder"),
    dict(
        name="CSSPushCallbacksRejected", severity="warning", scope="exporter", for_="5m",
        why="Refused callbacks are lost: CSS changed its format, the key differs, clocks drift, or someone else posts.",
        expr="""
            (
                sum by (outcome) (increase(css_push_callbacks_total{$SEL,$REFUSED}[15m]))
              / on () group_left
                sum(increase(css_push_callbacks_total{$SEL}[15m]))
            ) > ${rejected_share}
            and
            sum by (outcome) (increase(css_push_callbacks_total{$SEL,$REFUSED}[15m])) >= ${rejected_min}""",
        summary="{{ $value | humanizePercentage }} of callbacks refused as {{ $labels.outcome }}",
        description="{{ $value | humanizePercentage }} of all callbacks in the last 15 minutes were refused as {{ $labels.outcome }}. malformed: CSS changed its format, or someone else posts. unauthorized: the CSS console key and --callback-key differ (genuine errors are lost), or probing. expired: clock skew or replays. too_large: not CSS. timeout: bodies that stall (a slow or broken proxy, an overloaded exporter, or a slow client holding connections).",
        panel=(OVERVIEW, "Rejected callbacks by outcome", ()),
        when="more than ${rejected_share} of all callbacks, and at least ${rejected_min}, refused with one outcome in 15 minutes, for 5 minutes",
        action="read the exporter's log for the refusal reasons; compare the CSS callback key with `--callback-key`; check the host clock; for `timeout`, the proxy in front and the exporter's CPU; block foreign posters"),
    dict(
        name="CSSPushDedupEvicting", severity="warning", scope="exporter", for_="5m",
        why="Identities evicted inside the window: a CSS retry of them counts twice.",
        expr="sum by (job, instance) (increase(css_push_dedup_evicted_total{$SEL}[15m])) > 0",
        summary="{{ $labels.instance }}: de-duplication evicts inside its window",
        description="{{ $value | printf \"%.0f\" }} remembered callbacks were dropped in 15 minutes before --dedup-window ended because --dedup-capacity is full: CSS retries of them are counted twice.",
        panel=(OVERVIEW, "Overflow, expiry, dedup evictions", ()),
        when="de-duplication dropped remembered callbacks before `--dedup-window` ended, in 15 minutes, for 5 minutes",
        action="raise `--dedup-capacity` to callbacks per second × window (about 40 bytes each)"),
    dict(
        name="CSSPushStreamOverflow", severity="warning", scope="exporter", for_="5m",
        why="Streams beyond a cap fold into __overflow__ (or go untracked): per-stream alerts are blind to them.",
        # Any of the caps: streams and (domain, app) pairs, series, live-stream
        # tracking (one at a time: increase() over a name regex would leave
        # same-labelled series in Prometheus 2.x).
        expr="""
            sum by (job, instance) (increase(css_push_stream_overflow_total{$SEL}[10m])) > 0
            or sum by (job, instance) (increase(css_push_series_overflow_total{$SEL}[10m])) > 0
            or sum by (job, instance) (increase(css_push_live_stream_overflow_total{$SEL}[10m])) > 0
        """,
        summary="{{ $labels.instance }}: a cap is reached, errors fold into __overflow__",
        description="{{ $value | printf \"%.0f\" }} callbacks in 10 minutes were counted under \"__overflow__\" (or, for push start/end, not tracked) because --max-streams, --max-apps, --max-series or --max-live-streams was reached. Per-stream alerts are blind for those streams.",
        panel=(OVERVIEW, "Streams tracked vs cap, per instance", ()),
        when="callbacks were folded into `__overflow__` (or push start/end went untracked) in 10 minutes, for 5 minutes",
        action="see which of `css_push_stream_overflow_total`, `css_push_series_overflow_total`, `css_push_live_stream_overflow_total` moves; raise that cap (`--max-streams`/`--max-apps`, `--max-series`, `--max-live-streams`) if memory and Prometheus can take it, or shorten `--stream-ttl`"),
    dict(
        name="CSSPushStateSnapshotsFailing", severity="warning", scope="exporter", for_="5m",
        why="Without a fresh snapshot a restart loses what only snapshots keep (the journal keeps starts and ends).",
        expr="""
            (
                sum by (job, instance) (increase(css_push_state_snapshots_total{$SEL,result="error"}[15m])) > 0
              unless on (job, instance)
                sum by (job, instance) (increase(css_push_state_snapshots_total{$SEL,result="ok"}[15m])) > 0
            )
            or
            (
                time() - max by (job, instance) (css_push_state_last_snapshot_timestamp_seconds{$SEL})
              > ${stale_intervals} * max by (job, instance) (css_push_state_snapshot_interval_seconds{$SEL})
              and on (job, instance)
                time() - max by (job, instance) (process_start_time_seconds{$SEL})
              > ${stale_intervals} * max by (job, instance) (css_push_state_snapshot_interval_seconds{$SEL})
            )""",
        summary="{{ $labels.instance }}: state snapshots fail or are stale",
        description="State snapshot writes failed with no success in 15 minutes, or the last good snapshot is older than ${stale_intervals} snapshot intervals. Push starts and ends are still journalled (PATH.journal, compacted while snapshots fail), so a restart keeps which streams are live; it takes the de-duplication memory (CSS retries count twice), the per-stream gauges and the stream histories back to the last good snapshot. Once the journal is full even compacted (an error in the log), the starts and ends since wait in memory and a restart loses them too.",
        panel=(OVERVIEW, None, ()),
        when="snapshot writes failed with no success in 15 minutes, or the last good one is older than ${stale_intervals} × `--state-interval`, for 5 minutes",
        action="read the exporter's log: disk full, permissions, read-only volume; fix and watch `css_push_state_snapshots_total`"),
]

# CSS access nodes (issue 25): the node breakdown's rules. Shares are of
# live stream-seconds over 15 minutes, summed over exporter instances.
NODE_RECORDS = [
    (shared.NODE_LIVE,
     "Live stream-seconds per CSS access node and region in 15 minutes.",
     "sum by (node, region) (increase(css_push_node_live_seconds_total{$SEL}[15m]))"),
    (shared.NODE_BAD,
     "Bad stream-seconds per CSS access node, region and SLO in 15 minutes.",
     "sum by (node, region, slo) (increase(css_push_node_bad_seconds_total{$SEL}[15m]))"),
    (shared.NODE_BAD_SHARE,
     "A node's bad share (0..1) of its live time in 15 minutes; absent without live time.",
     "$NODE_BAD / on (node, region) group_left () ($NODE_LIVE > 0)"),
    (shared.NODE_REST_BAD_SHARE,
     """The bad share of the rest of the fleet: every node but this one
(unknown and other included). Absent when the rest had no live time.""",
     """
        (sum by (slo) ($NODE_BAD) - on (slo) group_right $NODE_BAD)
        / on (node, region) group_left ()
        ((sum($NODE_LIVE) - on () group_right $NODE_LIVE) > 0)"""),
    (shared.FLEET_BAD_SHARE,
     "The whole fleet's bad share in 15 minutes, per SLO: the overview's reference line.",
     "sum by (slo) ($NODE_BAD) / on () group_left () (sum($NODE_LIVE) > 0)"),
    (shared.NODE_STREAMS_LIVE,
     "Streams pushing through each node now, summed over exporter instances.",
     "sum by (node, region) (css_push_node_streams_live{$SEL})"),
]

CSS_INTERNAL = 'css_push_node_stream_ends_total{$SEL,cause="css_internal"}'

NODE_ALERTS = [
    dict(
        name="CSSPushNodeDegraded", severity="warning", scope="node", for_="5m",
        why="One CSS access node far worse than the rest of the fleet: CSS, not the pushers (who spread over nodes).",
        expr="""
            (
                $NODE_BAD_SHARE{node!~"unknown|other"}
              >= ${node_factor} * $NODE_REST_BAD_SHARE
            )
            and $NODE_BAD_SHARE >= ${node_min_share}
            and on (node, region) ($NODE_LIVE >= ${node_min_live} * $SECONDS(15m))""",
        summary="CSS access node {{ $labels.node }} ({{ $labels.region }}): {{ $value | humanizePercentage }} of its push time bad",
        description="{{ $value | humanizePercentage }} of the live stream time pushed through CSS access node {{ $labels.node }} ({{ $labels.region }}) in the last 15 minutes was bad ({{ $labels.slo }}), at least ${node_factor} times the rest of the fleet's share, with at least ${node_min_live} live streams on it on average. The node, not the pushers: open a Tencent Cloud support ticket with the node IP, the affected streams and the time range, and steer new pushes away from it.",
        panel=(OVERVIEW, "Top nodes by bad share (15m), against the fleet", ()),
        when="a CSS access node's bad share of live time over 15 minutes is at least ${node_factor} × the rest of the fleet's and at least ${node_min_share}, with at least ${node_min_live} live streams on it on average, for 5 minutes",
        action="ticket to Tencent Cloud support with the node IP, affected streams and time range; steer pushers away from the node (re-resolve the push domain, or a backup push domain)"),
    dict(
        name="CSSPushCSSInternalEnds", severity="warning", scope="region", for_="10m",
        why="CSS ending pushes with internal errors (errcode 5, 9, 11, 18) at a rising share: CSS's fault, normally near zero.",
        expr=f"""
            (
                sum by (region) (increase({CSS_INTERNAL}[30m]))
              / sum by (region) (increase(css_push_node_stream_ends_total{{$SEL}}[30m]))
            ) > ${{css_internal_share}}
            and sum by (region) (increase({CSS_INTERNAL}[30m])) >= ${{css_internal_min}}""",
        summary="{{ $value | humanizePercentage }} of push ends in {{ $labels.region }} are CSS internal errors",
        description="{{ $value | humanizePercentage }} of the push ends in region {{ $labels.region }} in the last 30 minutes (at least ${css_internal_min}) were CSS internal errors (errcode 5, 9, 11 or 18): CSS cut the pushes off. See which nodes they came from on the overview's \"Push ends by cause per node\"; open a Tencent Cloud support ticket with those node IPs and the time range.",
        panel=(OVERVIEW, "Push ends by cause per node", ()),
        when="more than ${css_internal_share} of a region's push ends in 30 minutes, and at least ${css_internal_min}, are CSS internal errors, for 10 minutes",
        action="see the nodes on the overview's \"Push ends by cause per node\"; ticket to Tencent Cloud support with the node IPs and time range; steer pushers away from those nodes"),
]
RECORDS += NODE_RECORDS
ALERTS += NODE_ALERTS

SEVERITY_ORDER = {"critical": 0, "warning": 1}


# Shared names the rule expressions use as $NAME: the refusal
# matcher, the recorded series.
NAMES = {name: getattr(shared, name) for name in (
    "REFUSED", "APP_STREAMS_WITH_ERRORS", "APP_STREAMS_LIVE", "APP_LIVE_ERROR_RATIO",
    "DOMAIN_STREAMS_WITH_ERRORS", "DOMAIN_STREAMS", "DOMAIN_INCIDENT", "APP_INCIDENT",
    "NODE_LIVE", "NODE_BAD", "NODE_BAD_SHARE", "NODE_REST_BAD_SHARE", "NODE_STREAMS_LIVE")}


def fill_expr(expr, site, speedup):
    expr = textwrap.dedent(expr).strip()
    expr = string.Template(expr).substitute(SEL=site["selector"], SECONDS="$SECONDS", **NAMES, **site["thresholds"])
    if speedup != 1:
        expr = shared.speed_up(expr, speedup)
    return shared.fill_seconds(expr)


def fill_text(text, site):
    """Thresholds in prose: shares as percentages."""
    return string.Template(text).safe_substitute(selector=site["selector"], **shared.shown(site["thresholds"]))


def panel_ids(site):
    """{(dashboard uid, panel title): panel id} of the dashboards the site gets."""
    out = {}
    for uid, dashboard in shared.generator("grafana").dashboards(site).items():
        todo = list(dashboard["panels"])
        while todo:
            p = todo.pop()
            out[(uid, p["title"])] = p["id"]
            todo.extend(p.get("panels", []))
    return out


def dashboard_link(panel, site, ids):
    uid, title, variables = panel
    url = f"{site['grafana_url'].rstrip('/')}/d/{uid}/{uid}"
    query = []
    if title is not None:
        if (uid, title) not in ids:
            raise shared.GeneratorError(f"prometheus/generate.py: no panel {title!r} in the dashboard {uid}")
        query.append(f"viewPanel={ids[(uid, title)]}")
    query += [f"var-{v}={{{{ $labels.{v} | urlquery }}}}" for v in variables]
    return url + ("?" + "&".join(query) if query else "")


def block(key, expr, indent):
    pad = " " * indent
    body = "\n".join(pad + "  " + line for line in expr.splitlines())
    return f"{pad}{key}: |\n{body}"


def comment(text, indent):
    return "\n".join(" " * indent + "# " + line for line in text.splitlines())


def rules_yaml(site, speedup=1):
    ids = panel_ids(site)
    out = [
        "# GENERATED by tools/generate.py from prometheus/generate.py and the site",
        "# settings (tools/site.example.toml, or a site file given with --config);",
        "# edit those, regenerate and commit.",
        f"# Exporter selector: {site['selector']}",
        "# Check: promtool check rules prometheus/alerts.yml",
        "# Test:  promtool test rules prometheus/alerts_test.yml",
        "#",
        "# Severity model (prometheus/README.md): critical pages a human now and",
        "# means many viewers at once (a fleet-wide surge here, an app burning its",
        "# error budget in slo_rules.yml) or the exporter or callback path down;",
        "# warning is one stream's sustained problem (a ticket to its pusher's",
        "# owner, silent while its app or domain is in an incident) or an",
        "# exporter problem that loses no data yet; a one-off per-stream report",
        "# fires nothing and shows on the dashboards.",
    ]
    if speedup != 1:
        out.insert(0, f"# TEST COPY: every duration divided by {speedup:g}. Never deploy this.")
    out += ["groups:", "  - name: css-push-recording", "    rules:"]
    for name, why, expr in RECORDS:
        out += [comment(why, 6), f"      - record: {name}", block("expr", fill_expr(expr, site, speedup), 8)]
    out += ["", "  - name: css-push-alerts", "    rules:"]
    for a in ALERTS:
        expr = fill_expr(a["expr"], site, speedup)
        durations = [f"for: {a['for_']}"]
        if a["scope"] == "stream":
            durations.append(f"keep_firing_for: {STREAM_KEEP_FIRING}")
        if speedup != 1:
            durations = [shared.speed_up(d, speedup) for d in durations]
        out += [
            comment(a["why"], 6),
            f"      - alert: {a['name']}",
            block("expr", expr, 8),
            *(f"        {d}" for d in durations),
            "        labels:",
            f"          severity: {a['severity']}",
            f"          scope: {a['scope']}",
            "        annotations:",
            f"          summary: {json.dumps(fill_text(a['summary'], site), ensure_ascii=False)}",
            f"          description: {json.dumps(fill_text(a['description'], site), ensure_ascii=False)}",
            f"          runbook_url: {json.dumps(site['runbook_url'] + '#' + a['name'].lower())}",
            f"          dashboard: {json.dumps(dashboard_link(a['panel'], site, ids))}",
        ]
    return "\n".join(out) + "\n"


TABLE_BEGIN = "<!-- alert table: generated by generate.py, edit there -->"
TABLE_END = "<!-- end of alert table -->"


def readme_with_table(readme, site, runbook):
    rows = ["| alert | severity | scope | fires when | what the on-call engineer does |", "| --- | --- | --- | --- | --- |"]
    for a in sorted(ALERTS, key=lambda a: SEVERITY_ORDER[a["severity"]]):
        rows.append(f"| [`{a['name']}`]({runbook}#{a['name'].lower()}) | {a['severity']} | {a['scope']} | "
                    f"{fill_text(a['when'], site)} | {fill_text(a['action'], site)} |")
    begin, end = readme.index(TABLE_BEGIN) + len(TABLE_BEGIN), readme.index(TABLE_END)
    return readme[:begin] + "\n" + "\n".join(rows) + "\n" + readme[end:]


RULES = pathlib.Path("prometheus", "alerts.yml")
# The alert table stands in this folder's README and in the project's
# alerts page, each linking the runbook relative to itself.
READMES = ((pathlib.Path("prometheus", "README.md"), "RUNBOOK.md"), (pathlib.Path("docs", "alerts.md"), "../prometheus/RUNBOOK.md"))


def render(site, for_site):
    files = {RULES: rules_yaml(site)}
    if not for_site:
        for readme, runbook in READMES:
            text = (shared.ROOT / readme).read_text(encoding="utf-8")
            files[readme] = readme_with_table(text, site, runbook)
    return files


def main():
    outputs.main(__doc__, render, rules_yaml)


if __name__ == "__main__":
    outputs.exit_on_error(main)
