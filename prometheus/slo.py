#!/usr/bin/env python3
"""Writes prometheus/slo_rules.yml (the push-health SLOs' recording rules,
multi-window multi-burn-rate pages and tickets, the accounting's saturation
ticket) and prometheus/slo_rules_test.yml (their promtool tests over
synthetic days) from the SLO file (the site's slo_file,
prometheus/slo.toml by default), with the site's selector and URLs. Run
`python3 tools/generate.py` (all generators) after editing either, commit the
outputs; `--check` fails when a committed file differs (CI). Python 3.11+,
standard library only. The design and its limits: docs/slo.md.

`--speedup N --output FILE` writes a test copy of the rules with every
duration divided by N (the end-to-end SLO alerting test); never deploy that."""
import json
import math
import pathlib
import re
import sys
import tomllib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import outputs  # noqa: E402
import shared  # noqa: E402

RULES, TESTS = pathlib.Path("prometheus", "slo_rules.yml"), pathlib.Path("prometheus", "slo_rules_test.yml")
DASHBOARD = shared.SLO
ALERT, EXHAUSTED = shared.SLO_PAGE_ALERT, "CSSPushErrorBudgetExhausted"
SATURATED = "CSSPushSloAccountingSaturated"

# Windows rated from the raw counters at every evaluation: the pages need
# them fresh.
RAW = ("5m", "30m", "1h")
# 5-minute slices, recorded every 5 minutes, tile every longer window: the
# 6h window and the SLOs' own are recorded from them; the tickets read 2h,
# 1d and 3d from them as they go (24, 288 and 864 samples a pair).
SLICE = "5m"
SLICED = ("6h",)
# The pages read the 6h recording, written every 5 minutes, as its latest
# sample within this (an evaluation between two writes must not miss it).
RECENT = "10m"
# A page needs its last 5 minutes still burning, without the pair's (or
# domain's) min_bad_streams - 1 worst streams: it never opens after the
# failure stopped, and one stream never pages.
NOW = "5m"

# The SRE Workbook's tiers (Sloth's 30-day table), as the share of the
# window's budget each tier lets burn within its long window; the burn-rate
# factor is share × window / long window: 14.4, 6, 3 and 1 for 30 days.
# (severity, long window, short window, budget share, paging).
TIERS = (
    ("critical", "1h", "5m", 0.02, True),
    ("critical", "6h", "30m", 0.05, True),
    ("warning", "1d", "2h", 0.10, False),
    ("warning", "3d", "6h", 0.10, False),
)
PAGES = tuple(t for t in TIERS if t[4])
TICKETS = tuple(t for t in TIERS if not t[4])

# The SLO's page stays quiet while alerts.yml's surge of the same domain is
# pending, and this long after it fired: the surge pages for that incident
# (and the surge is quiet while this page fires).
SURGE_HOLD = "15m"
# Tickets and the exhausted budget need a day of data for the pair (a
# slice between a day and a day and an hour old: a gap shorter than an hour
# is forgiven), and once open stay open at least an hour after their
# condition last held: no flapping.
DAY, DAY_SLACK = "1d", "1h"
TICKET_KEEP = "1h"
# The accounting's saturation ticket: reports dropped in this window.
SATURATION_WINDOW = "10m"

# The optional fields of an [[slo]] table and their defaults (as the
# exporter's src/slo/definition.rs).
OPTIONAL = {"min_bad_streams": 2, "reconnect_window": "5m"}
RECONNECT_MAX = "1h"


def num(x):
    """A number as PromQL and prose show it: 0.01, 14.4, 6."""
    return f"{x:.10g}"


class SloError(shared.SiteError):
    """An SLO file the rules cannot be built from; the message says why."""


def slo_path(site):
    """The site's SLO file: relative paths are the repository's."""
    return shared.ROOT / site["slo_file"]


def whole(x):
    return isinstance(x, int) and not isinstance(x, bool)


def load_slos(site):
    """The [[slo]] tables of the site's SLO file, checked as the exporter
    checks them, with the optional fields' defaults filled in."""
    path = slo_path(site)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SloError(f"{path}: {e}") from e
    slos = doc.get("slo")
    if not isinstance(slos, list) or not 1 <= len(slos) <= 4:
        raise SloError(f"{path}: 1 to 4 [[slo]] tables expected")
    keys = {"name", "objective", "window", "bad_error_types", "min_live_streams"}
    names = set()
    out = []
    for s in slos:
        where = f"{path}: slo {s.get('name', '?')!r}"
        if not keys <= set(s) <= keys | set(OPTIONAL):
            raise SloError(f"{where}: fields must be {sorted(keys)}, and optionally {sorted(OPTIONAL)}")
        s = OPTIONAL | s
        if not re.fullmatch(r"[a-z0-9_-]{1,32}", str(s["name"])) or s["name"] in names:
            raise SloError(f"{where}: name must be [a-z0-9_-], 1-32 chars, unique")
        names.add(s["name"])
        if not isinstance(s["objective"], float) or not 0 < s["objective"] < 1:
            raise SloError(f"{where}: objective must be a number between 0 and 1")
        longest = TIERS[-1][1]
        if not re.fullmatch(r"[1-9][0-9]*d", str(s["window"])) or shared.seconds(s["window"]) < shared.seconds(longest):
            raise SloError(f"{where}: window must be whole days, at least {longest} (the longest alert window)")
        types = s["bad_error_types"]
        if not types or len(set(types)) != len(types) or not all(whole(t) and 1 <= t <= 16 for t in types):
            raise SloError(f"{where}: bad_error_types must be distinct error types 1-16")
        if not whole(s["min_live_streams"]) or s["min_live_streams"] < 0:
            raise SloError(f"{where}: min_live_streams must be a whole number, 0 or more")
        if not whole(s["min_bad_streams"]) or s["min_bad_streams"] < 1:
            raise SloError(f"{where}: min_bad_streams must be a whole number, 1 or more")
        window = s["reconnect_window"]
        if (not re.fullmatch(r"[0-9]+[smh]", str(window))
                or shared.seconds(window) > shared.seconds(RECONNECT_MAX)):
            raise SloError(f"{where}: reconnect_window must be a duration such as \"5m\", at most {RECONNECT_MAX}")
        out.append(s)
    return out


def budget(slo):
    return 1 - slo["objective"]


def factor(slo, share, long_window):
    return round(share * shared.seconds(slo["window"]) / shared.seconds(long_window), 6)


def threshold(slo, f):
    """The error ratio burning the budget f times as fast as allowed."""
    return num(budget(slo) * f)


def slo_windows(slos):
    return sorted({s["window"] for s in slos}, key=shared.seconds)


def without_worst(s):
    """The breadth rule in prose."""
    k = s["min_bad_streams"] - 1
    return "" if k == 0 else " without its worst stream" if k == 1 else f" without its {k} worst streams"


# --- rule texts --------------------------------------------------------------

def rule(kind, name, expr, why=None, labels=None, for_=None, keep=None, annotations=None):
    out = []
    if why:
        out += [f"      # {line}" for line in why.splitlines()]
    out.append(f"      - {kind}: {name}")
    out.append("        expr: |")
    out += [f"          {line}" for line in expr.strip().splitlines()]
    if for_:
        out.append(f"        for: {for_}")
    if keep:
        out.append(f"        keep_firing_for: {keep}")
    if labels:
        out.append("        labels:")
        out += [f"          {k}: {json.dumps(v)}" for k, v in labels.items()]
    if annotations:
        out.append("        annotations:")
        out += [f"          {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in annotations.items()]
    return "\n".join(out)


def indent(text, n=2):
    return "\n".join(" " * n + line for line in text.splitlines())


def joined(op, parts):
    """Conditions joined by a set operator (`and on (...)`), one a block."""
    return f"\n{op}\n".join(parts)


PAIR, DOMAIN = "domain, app", "domain"


def ratio(bad, live, by):
    """bad over live stream-seconds of each pair, or domain (`bad` summed
    by domain already, `live` summed here), of the same SLO: live time
    differs by SLO (each counts outage gaps within its own reconnect
    window), so `slo` is kept on both sides. Absent (no data, not 0 % bad)
    while nothing is live."""
    if by == PAIR:
        return f"{bad}\n  / on (domain, app, slo)\n({live} > 0)"
    return f"{bad}\n  / on (domain, slo)\n(sum by (domain, slo) ({live}) > 0)"


def summed(bad, by):
    """A pair's bad stream-seconds, or the domain's (its apps summed)."""
    return bad if by == PAIR else f"sum by (domain, slo) ({bad})"


def slo_sel(s):
    return f'{{slo="{s["name"]}"}}'


def rate_of(kind, w, s):
    """The recorded rate of bad or live stream-seconds of SLO s over w."""
    name = f"slo:{kind}_seconds:rate{w}{slo_sel(s)}"
    return f"last_over_time({name}[{RECENT}])" if w in SLICED else name


def per_stream(site, s, by):
    """Each stream's bad stream-seconds per second over the last 5 minutes,
    and the sum of the min_bad_streams - 1 worst of each pair or domain."""
    streams = (f"sum by (domain, app, stream, slo) "
               f"(rate(css_push_stream_bad_seconds_total{{{site['selector']},slo=\"{s['name']}\"}}[{NOW}]))")
    group = f"{by}, slo"
    return f"sum by ({group}) (topk by ({group}) ({s['min_bad_streams'] - 1}, {streams}))"


def broad_record(s, by):
    """The recording of the bad stream-seconds per second over the last 5
    minutes without the min_bad_streams - 1 worst streams of each pair, or
    of each domain (one series a domain: its pages read it at every
    evaluation)."""
    return f"slo:{'' if by == PAIR else 'domain_'}broad_bad_seconds:rate{NOW}{slo_sel(s)}"


def broad_expr(site, s, by):
    bad = summed(f"slo:bad_seconds:rate{NOW}{slo_sel(s)}", by)
    if s["min_bad_streams"] == 1:
        return bad
    return (f"clamp_min(\n  {bad}\n    - on ({by}, slo)\n  (\n{indent(per_stream(site, s, by), 6)}\n"
            f"    or\n      0 * {bad}\n  ),\n  0\n)")


def page_scope(site, s, by):
    """The page tiers for each pair or each domain: a tier's burn over both
    its windows and the last 5 minutes still burning at its rate without
    the worst streams; and enough live streams now (the 5-minute average or
    the live gauge)."""
    key = f"{by}, slo"
    tiers = []
    for _, long_w, short_w, share, _ in PAGES:
        thr = threshold(s, factor(s, share, long_w))
        parts = [f"{ratio(summed(rate_of('bad', w, s), by), rate_of('live', w, s), by)}\n  > {thr}"
                 for w in (long_w, short_w)]
        parts.append(f"{ratio(broad_record(s, by), rate_of('live', NOW, s), by)}\n  > {thr}")
        tiers.append(joined(f"and on ({key})", [f"(\n{indent(p)}\n)" for p in parts]))
    m = s["min_live_streams"]
    live = (f"  sum by ({by}) ({rate_of('live', NOW, s)}) >= {m}\nor\n"
            f"  sum by ({by}) (css_push_streams_live{{{site['selector']}}}) >= {m}")
    burning = joined("or", [f"(\n{indent(t)}\n)" for t in tiers])
    return f"(\n{indent(burning)}\n)\nand on ({by})\n(\n{indent(live)}\n)"


def surge(state):
    return f'ALERTS{{alertname="{shared.SURGE_ALERT}", alertstate="{state}"}}'


def page(site, s):
    """One page per domain and SLO, whichever tier, app or the domain's apps
    together: one identity, so tiers and apps never hand over."""
    branches = [f"group by (domain, slo) (\n{indent(page_scope(site, s, by), 4)}\n)" for by in (PAIR, DOMAIN)]
    expr = (f"(\n{indent(joined('or', [indent(b, 2) for b in branches]), 2)}\n)\n"
            f"unless on (domain) {surge('pending')}\n"
            f"unless on (domain) max_over_time({surge('firing')}[{SURGE_HOLD}])")
    (_, l1, s1, sh1, _), (_, l2, s2, sh2, _) = PAGES
    why = (f"Page: {num(sh1 * 100)} % of the budget in {l1} (confirmed by {s1}) or {num(sh2 * 100)} % in {l2}\n"
           f"(confirmed by {s2}), for an app or a domain's apps together; the last {NOW} still\n"
           f"burning{without_worst(s)}; at least {s['min_live_streams']} live streams now. One alert per domain.\n"
           f"Quiet while {shared.SURGE_ALERT} of the domain is pending or fired within {SURGE_HOLD}.")
    return rule("alert", ALERT, expr, why=why, labels=page_labels(s), annotations=page_annotations(site, s))


def page_labels(s):
    return {"severity": "critical", "scope": "domain", "slo": s["name"]}


def objective_text(s):
    return f"the {s['name']} SLO ({num(s['objective'] * 100)} % error-free over {s['window']})"


def dashboard_link(site, variables):
    query = "&".join(f"var-{v}={{{{ $labels.{v} | urlquery }}}}" for v in variables)
    return f"{site['grafana_url'].rstrip('/')}/d/{DASHBOARD}/{DASHBOARD}?{query}"


def burning_apps(s):
    """Template: the apps of the alert's domain whose last 5 minutes burn at
    a page's rate, by name (at most 10)."""
    lowest = min(factor(s, t[3], t[1]) for t in PAGES)
    q = (f"topk(10, slo:bad_seconds:rate5m{{domain=%q,slo=%q}} / on (domain, app, slo) "
         f"slo:live_seconds:rate5m > {threshold(s, lowest)})")
    return ('{{ range $i, $a := query (printf "' + q.replace('"', '\\"') + '" $labels.domain $labels.slo)'
            ' | sortByLabel "app" }}{{ if $i }}, {{ end }}{{ $a.Labels.app }}'
            '{{ else }}none alone, the apps together{{ end }}')


def page_annotations(site, s):
    (_, l1, s1, sh1, _), (_, l2, s2, sh2, _) = PAGES
    f1, f2 = factor(s, sh1, l1), factor(s, sh2, l2)
    return {
        "summary": f"Domain {{{{ $labels.domain }}}}: {s['name']} error budget burning fast",
        "description": (
            f"Live stream-seconds of this domain went bad at {num(f1)} times or more the rate {objective_text(s)} "
            f"allows over both the last {l1} and {s1}, or at {num(f2)} times over both the last {l2} and {s2}; "
            f"still so over the last {NOW}{without_worst(s)}, with at least {s['min_live_streams']} live streams. "
            f"Apps burning now: {burning_apps(s)}. Viewers see stalls, freezes or broken playback now."),
        "runbook_url": f"{site['runbook_url']}#{ALERT.lower()}",
        "dashboard": dashboard_link(site, ("domain", "slo")),
    }


def sliced(series, w, s=None):
    return f"avg_over_time({series}{slo_sel(s) if s else ''}[{w}])"


def has_a_day(s):
    return f"present_over_time(slo:live_seconds:increase{SLICE}{slo_sel(s)}[{DAY_SLACK}] offset {DAY})"


def took_part(s, window):
    """Pairs whose last 5 minutes burned at a page's rate within `window`
    while a page of their domain fired or was pending: the page explains
    their burn (a strict SLO's 1d tier can burn at the first evaluation,
    while the surge is still pending)."""
    lowest = min(factor(s, t[3], t[1]) for t in PAGES)
    burn = f"{rate_of('bad', NOW, s)} / on (domain, app, slo) {rate_of('live', NOW, s)}"
    pages = f'ALERTS{{alertname=~"{shared.ALERT_PREFIX}.*", severity="critical", scope="domain"}}'
    return (f"max_over_time(({burn})[{window}:{SLICE}]) > {threshold(s, lowest)}\n"
            f"and on (domain)\nmax_over_time({pages}[{window}])")


def ticket(site, s, tier):
    _, long_w, short_w, share, _ = tier
    f = factor(s, share, long_w)
    parts = [f"{ratio(sliced('slo:broad_bad_seconds:increase5m', w, s), sliced('slo:live_seconds:increase5m', w, s), PAIR)}"
             f"\n  > {threshold(s, f)}" for w in (long_w, short_w)]
    expr = (joined("and on (domain, app, slo)", [f"(\n{indent(p)}\n)" for p in parts])
            + f"\nand on (domain, app, slo)\n{has_a_day(s)}\nunless on (domain, app, slo)\n(\n{indent(took_part(s, short_w))}\n)")
    why = (f"Ticket: {num(share * 100)} % of the budget in {long_w}, confirmed by {short_w},{without_worst(s)} (one\n"
           f"stream has its own ticket); after a day of data; not for pairs a page explains.")
    ann = ticket_annotations(site, s, tier)
    return rule("alert", ALERT, expr, why=why, labels=ticket_labels(s, tier), keep=TICKET_KEEP, annotations=ann)


def ticket_labels(s, tier):
    return {"severity": tier[0], "scope": "app", "slo": s["name"], "long_window": tier[1], "short_window": tier[2]}


def ticket_annotations(site, s, tier):
    _, long_w, short_w, share, _ = tier
    f = factor(s, share, long_w)
    return {
        "summary": f"{{{{ $labels.domain }}}}/{{{{ $labels.app }}}}: {s['name']} error budget burning {num(f)}× or faster ({long_w} and {short_w})",
        "description": (
            f"The app{without_worst(s)} spent bad stream-seconds at {num(f)} times or more the rate {objective_text(s)} "
            f"allows, over both the last {long_w} and the last {short_w}: {num(share * 100)} % of the window's error "
            f"budget in {long_w}, and the budget is gone in {num(shared.seconds(s['window']) / f / 86400)} days at this pace."),
        "runbook_url": f"{site['runbook_url']}#{ALERT.lower()}",
        "dashboard": dashboard_link(site, ("domain", "app", "slo")),
    }


def exhausted(site, s):
    w = s["window"]
    broad = f"{sliced('slo:broad_bad_seconds:increase5m', w, s)} / $SECONDS({SLICE})"
    expr = f"{ratio(broad, rate_of('live', w, s), PAIR)}\n  >= {num(budget(s))}\nand on (domain, app, slo)\n{has_a_day(s)}"
    return rule("alert", EXHAUSTED, expr, for_="15m", keep=TICKET_KEEP,
                why=f"Information: the window's budget is spent{without_worst(s)}; after a day of data.",
                labels=exhausted_labels(s), annotations=exhausted_annotations(site, s))


def exhausted_labels(s):
    return {"severity": "info", "scope": "app", "slo": s["name"]}


def exhausted_annotations(site, s):
    return {
        "summary": f"{{{{ $labels.domain }}}}/{{{{ $labels.app }}}}: {s['name']} error budget exhausted",
        "description": (f"Over the last {s['window']} (or all the data there is, see the dashboard's coverage) "
                        f"more than {num(budget(s) * 100)} % of the app's live stream-seconds were bad{without_worst(s)}: "
                        f"{objective_text(s)} is missed for this window."),
        "runbook_url": f"{site['runbook_url']}#{EXHAUSTED.lower()}",
        "dashboard": dashboard_link(site, ("domain", "app", "slo")),
    }


def saturated(site):
    dropped = f"css_push_slo_dropped_reports_total{{{site['selector']}}}"
    w = SATURATION_WINDOW
    expr = (f"sum by (job, instance, kind) (increase({dropped}[{w}])) > 0\n"
            f"or\nsum by (job, instance, kind) ({dropped} unless {dropped} offset {w}) > 0")
    return rule("alert", SATURATED, expr, labels={"severity": "warning", "scope": "exporter"},
                annotations=saturated_annotations(site),
                why="The SLO accounting is full: reports it had no room for (a counter born at N counts too).")


def saturated_annotations(site):
    w = SATURATION_WINDOW
    return {
        "summary": "{{ $labels.instance }}: the SLO accounting has no room for {{ $labels.kind }} streams",
        "description": (f"The SLO accounting dropped reports of {{{{ $labels.kind }}}} streams in the last {w}: "
                        "its stream table for them is full, so their bad seconds are not counted and the SLO reads "
                        "better than it is. report_only: a flood of reports of streams that never started "
                        "(unsigned callbacks, a misconfigured template); started: more live streams than "
                        "the exporter's limit."),
        "runbook_url": f"{site['runbook_url']}#{SATURATED.lower()}",
        "dashboard": f"{site['grafana_url'].rstrip('/')}/d/{DASHBOARD}/{DASHBOARD}",
    }


def short_rules(site, slos):
    sel = site["selector"]
    out = []
    for s in slos:
        lab = {"slo": s["name"], "window": s["window"]}
        out.append(rule("record", "slo:objective:ratio", f"vector({num(s['objective'])})", labels=lab,
                        why=f"SLO {s['name']}: {num(s['objective'] * 100)} % of live stream-seconds error-free over {s['window']}."))
        out.append(rule("record", "slo:error_budget:ratio", f"vector({num(budget(s))})", labels=lab))
        out.append(rule("record", "slo:window:seconds", f"vector({shared.seconds(s['window'])})", labels=lab,
                        why="The window's length: the dashboard's stream-hours and time to exhaustion."))
    for w in RAW:
        first = w == RAW[0]
        out.append(rule("record", f"slo:bad_seconds:rate{w}",
                        f"sum by (domain, app, slo) (rate(css_push_bad_seconds_total{{{sel}}}[{w}]))",
                        why="Bad stream-seconds per second; rate before sum (a restarted instance resets only its own counter)."
                        if first else None))
        out.append(rule("record", f"slo:live_seconds:rate{w}",
                        f"sum by (domain, app, slo) (rate(css_push_live_seconds_total{{{sel}}}[{w}]))",
                        why="Live stream-seconds per second: the average number of live streams, per SLO (each\n"
                            "counts outage gaps within its own reconnect window): divided by the same SLO's bad time."
                        if first else None))
    for s in slos:
        for by in (PAIR, DOMAIN):
            why = (f"{s['name']}: bad stream-seconds per second{without_worst(s)} (css_push_stream_bad_seconds_total),\n"
                   "of each pair, then of each domain: breadth. What one stream spends is its own ticket's.")
            out.append(rule("record", broad_record(s, by).split("{")[0], broad_expr(site, s, by),
                            why=why if by == PAIR else None))
    out += [page(site, s) for s in slos]
    out.append(saturated(site))
    return out


def long_rules(site, slos):
    sel = site["selector"]
    n = f"$SECONDS({SLICE})"
    out = [
        rule("record", f"slo:bad_seconds:increase{SLICE}",
             f"sum by (domain, app, slo) (increase(css_push_bad_seconds_total{{{sel}}}[{SLICE}]))",
             why=f"{SLICE} slices, one per evaluation of this group: they tile the long windows."),
        rule("record", f"slo:live_seconds:increase{SLICE}",
             f"sum by (domain, app, slo) (increase(css_push_live_seconds_total{{{sel}}}[{SLICE}]))"),
        rule("record", f"slo:broad_bad_seconds:increase{SLICE}", f"slo:broad_bad_seconds:rate{NOW} * {n}",
             why="The tickets' slices: bad seconds without the worst streams, as the short group last measured them."),
    ]
    for w in SLICED + tuple(slo_windows(slos)):
        why = ("Numerator and denominator averaged separately, the ratio after: averaging\n"
               "ratios would weigh a quiet hour like a busy one.") if w == SLICED[0] else None
        out.append(rule("record", f"slo:bad_seconds:rate{w}", f"{sliced(f'slo:bad_seconds:increase{SLICE}', w)} / {n}", why=why))
        out.append(rule("record", f"slo:live_seconds:rate{w}", f"{sliced(f'slo:live_seconds:increase{SLICE}', w)} / {n}"))
    for w in slo_windows(slos):
        out.append(rule("record", f"slo:data_coverage:ratio{w}",
                        f"count_over_time(slo:live_seconds:increase{SLICE}[{w}]) / {shared.seconds(w) // shared.seconds(SLICE)}",
                        why=f"Share of the {w} window with data: a fresh install is not \"100 % met\"."))
    for s in slos:
        out += [ticket(site, s, t) for t in TICKETS]
        out.append(exhausted(site, s))
    return out


def rules_yaml(site, slos, speedup=1):
    head = [
        f"# GENERATED by prometheus/slo.py from {site['slo_file']}; edit there, run",
        "# `python3 tools/generate.py` and commit. Design: docs/slo.md.",
        f"# Exporter selector: {site['selector']}",
        "# Check: promtool check rules prometheus/slo_rules.yml",
        "# Test:  promtool test rules prometheus/slo_rules_test.yml",
        "groups:",
        "  - name: css-push-slo",
        "    rules:",
    ]
    if speedup != 1:
        head.insert(0, f"# TEST COPY: every duration divided by {speedup:g}. Never deploy this.")
    body = "\n".join(short_rules(site, slos))
    tail = ["", "  - name: css-push-slo-long", f"    interval: {SLICE}", "    rules:"]
    text = "\n".join(head) + "\n" + body + "\n" + "\n".join(tail) + "\n" + "\n".join(long_rules(site, slos)) + "\n"
    if speedup != 1:
        text = shared.speed_up(text, speedup)
    return shared.fill_seconds(text)


# --- promtool tests ----------------------------------------------------------

STEP = 60  # seconds between synthetic samples
EVAL = 5  # minutes between evaluations in the tests (keeps days of them quick)
DAY_MIN = 1440


def series(name, labels, values):
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"      - series: '{name}{{{text}}}'\n        values: '{values}'"


def encode(values):
    """promtool's notation for one sample a minute (None: no sample)."""
    out, i = [], 0
    while i < len(values):
        j = i + 1
        if values[i] is None:
            while j < len(values) and values[j] is None:
                j += 1
            out.append(f"_x{j - i}")
        elif j < len(values) and values[j] is not None:
            d = values[j] - values[i]
            while j + 1 < len(values) and values[j + 1] is not None and abs(values[j + 1] - values[j] - d) < 1e-6:
                j += 1
            out.append(f"{num(values[i])}+{num(d)}x{j - i}")
            j += 1
        else:
            out.append(num(values[i]))
        i = j
    return " ".join(out)


def cumulative(born, increments, start=0.0):
    """A counter's samples: none before minute `born`, `start` at it, then
    one increment a minute."""
    values = [None] * born + [start]
    for x in increments:
        values.append(values[-1] + x)
    return values


def selector_labels(site):
    """The labels a synthetic series needs to match the site's selector:
    its equality matchers (a regex matcher must match these too)."""
    return dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', site["selector"]))


def pair(site, s, domain, app, phases, born=0, calm=()):
    """Input series of one (domain, app), born at minute `born`, from phases
    of (minutes, live streams, {stream: share of its time bad}) of SLO s,
    and of the SLOs `calm` with the same live time and none of it bad. A
    stream's bad-seconds counter is born at its first bad minute, as the
    exporter's. Like the exporter's, live and bad time are per SLO."""
    labels = selector_labels(site) | {"instance": "a:9321", "domain": domain, "app": app}
    minutes = [(live, bad) for m, live, bad in phases for _ in range(m)]
    names = sorted({name for _, _, bad in phases for name in bad})
    live_seconds = encode(cumulative(born, [live * STEP for live, _ in minutes]))
    out = [series("css_push_streams_live", labels, encode([None] * born + [minutes[0][0]] + [live for live, _ in minutes]))]
    for other, bad in [(s, [sum(bad.values()) * STEP for _, bad in minutes])] + [(c, [0] * len(minutes)) for c in calm]:
        out += [series("css_push_live_seconds_total", labels | {"slo": other["name"]}, live_seconds),
                series("css_push_bad_seconds_total", labels | {"slo": other["name"]}, encode(cumulative(born, bad)))]
    for name in names:
        increments = [bad.get(name, 0) * STEP for _, bad in minutes]
        first = next(i for i, x in enumerate(increments) if x > 0)
        values = cumulative(born + 1 + first, increments[first + 1:], start=increments[first])
        out.append(series("css_push_stream_bad_seconds_total", labels | {"stream": name, "slo": s["name"]}, encode(values)))
    return out


def spread(n, total, prefix="s"):
    """`total` streams' worth of bad time spread evenly over n streams."""
    return {f"{prefix}{i:02d}": total / n for i in range(n)}


def alerts_series(site, alertname, state, domain, minutes):
    """A firing or pending alert of alerts.yml, present in minutes [from, to)."""
    first, last, total = minutes
    labels = {"alertname": alertname, "alertstate": state, "domain": domain, "scope": "domain", "severity": "critical"}
    return series("ALERTS", labels, encode([None] * first + [1] * (last - first) + [None] * (total - last + 1)))


def test_case(title, inputs, checks, minutes, exprs=()):
    """One promtool test: `checks` are (minute, alert name, firing alerts);
    `exprs` (minute, PromQL, expected samples) for promql_expr_test."""
    lines = [f"  # {line}" for line in title.splitlines()]
    lines += [f"  - interval: {STEP // 60}m", "    input_series:"]
    lines += inputs
    if exprs:
        lines.append("    promql_expr_test:")
        for at, expr, samples in exprs:
            assert at <= minutes, (title, at, minutes)
            lines += [f"      - expr: {json.dumps(expr)}", f"        eval_time: {at}m"]
            if not samples:
                lines.append("        exp_samples: []")
                continue
            lines.append("        exp_samples:")
            for labels, value in samples:
                text = ",".join(f'{k}="{v}"' for k, v in labels.items())
                lines.append(f"          - {{labels: '{{{text}}}', value: {value}}}")
    if checks:
        lines.append("    alert_rule_test:")
    for at, name, firing in checks:
        assert at <= minutes and at % EVAL == 0, (title, at, minutes)
        if not firing:
            lines.append(f"      - {{eval_time: {at}m, alertname: {name}, exp_alerts: []}}")
            continue
        lines += [f"      - eval_time: {at}m", f"        alertname: {name}", "        exp_alerts:"]
        for labels, ann in firing:
            lines.append(f"          - exp_labels: {json.dumps(labels, ensure_ascii=False)}")
            lines.append(f"            exp_annotations: {json.dumps(ann, ensure_ascii=False)}")
    return "\n".join(lines)


def expand(templates, labels, filled=()):
    """Annotation templates as Prometheus fills them for `labels` (plain
    test values: urlquery changes nothing), and `filled` (template, text)."""
    out = {}
    for key, text in templates.items():
        for template, value in filled:
            text = text.replace(template, value)
        for name, value in labels.items():
            text = text.replace(f"{{{{ $labels.{name} | urlquery }}}}", value).replace(f"{{{{ $labels.{name} }}}}", value)
        out[key] = text
    return out


def page_alert(site, s, domain, apps):
    """The page of `domain`, listing the burning `apps`."""
    labels = page_labels(s) | {"domain": domain}
    return labels, expand(page_annotations(site, s), labels, [(burning_apps(s), ", ".join(apps))])


def ticket_alert(site, s, tier, domain, app):
    labels = ticket_labels(s, tier) | {"domain": domain, "app": app}
    return labels, expand(ticket_annotations(site, s, tier), labels)


def tickets_at(site, s, at, domain, app, long_windows):
    """One check: the tickets of `long_windows` fire for the pair at `at`, no other."""
    return (at, ALERT, [ticket_alert(site, s, t, domain, app) for t in TICKETS if t[1] in long_windows])


def exhausted_alert(site, s, domain, app):
    labels = exhausted_labels(s) | {"domain": domain, "app": app}
    return labels, expand(exhausted_annotations(site, s), labels)


def never(at, minutes, matchers):
    """No ALERTS sample matching `matchers` (pending or firing) in the last
    `minutes` before `at`."""
    return (at, f"count_over_time(ALERTS{{{matchers}}}[{minutes}m])", [])


def slo_alerts(extra=""):
    return f'alertname=~"{ALERT}|{EXHAUSTED}"' + extra


def factors(s):
    """The tiers' burn-rate factors: 1h, 6h, 1d, 3d (14.4, 6, 3, 1 for 30d).
    Whatever the window, 1h's is 2.4 times 6h's, 1d's twice 6h's and 3d's a
    third of 1d's: the scenarios below burn at multiples of them."""
    return [factor(s, t[3], t[1]) for t in TIERS]


def at_eval(minutes):
    """The first evaluation at or after `minutes`."""
    return EVAL * math.ceil(minutes / EVAL)


def broad_ratio(phases, k, at, window):
    """Oracle for the ticket scenarios: bad over live stream-seconds without
    each minute's k - 1 worst streams, in the `window` minutes before `at`."""
    minutes = [(live, sorted(bad.values(), reverse=True)) for m, live, bad in phases for _ in range(m)]
    span = minutes[max(0, at - window):at]
    bad = sum(sum(shares[k - 1:]) for _, shares in span)
    return bad / sum(live for live, _ in span)


def tickets_expected(s, phases, at):
    """The ticket tiers firing at `at` by the oracle; None when a window is
    within 10 % of its threshold (too close to call at this resolution)."""
    out = []
    for tier, f in zip(TIERS, factors(s)):
        if tier[4]:
            continue
        ratios = [broad_ratio(phases, s["min_bad_streams"], at, shared.seconds(w) // 60) / (f * budget(s))
                  for w in tier[1:3]]
        if any(0.9 < r < 1.1 for r in ratios):
            return None
        if all(r > 1 for r in ratios):
            out.append(tier[1])
    return tuple(out)


def page_tests(site, s):
    b, m, k = budget(s), s["min_live_streams"], s["min_bad_streams"]
    f1, f2, _, _ = factors(s)
    n = max(40, m, k)  # live streams of an app that pages
    calm = {"glitch": 0.1 * b * n}  # one-off glitches, a tenth of the budget
    # 100 % bad after calm days burns the 1h (or 6h) window's share: a page
    # after this many minutes (8.64 for 99 % over 30 days), and its rate lag.
    page_by = at_eval(min(60 * f1 * b, 360 * f2 * b) + 1)
    length = max(15, page_by + 5)
    out = []

    # Steady state: 3 calm days, then every stream bad for 15 minutes.
    i, r = 3 * DAY_MIN, 3 * DAY_MIN + length
    end = r + 8 * 60
    out.append(test_case(
        f"{s['name']}: 3 calm days, then {n} streams 100 % bad for {length} minutes: one page within {page_by} minutes,\n"
        f"resolved within 10 minutes of the recovery, nothing again for 8 hours; no ticket.",
        pair(site, s, "steady.example.com", "live", [(i, n, calm), (length, n, spread(n, n)), (end - r, n, calm)]),
        [(i, ALERT, []), (i + page_by, ALERT, [page_alert(site, s, "steady.example.com", ["live"])]), (r + 10, ALERT, [])],
        end, exprs=[never(end, end - r - 10, f'alertname="{ALERT}"'),
                    never(end, end, f'alertname="{ALERT}",severity!="critical"')]))

    # A new app, bad from its first second.
    born, r = 60, 60 + 120
    new = max(12, m, k)
    out.append(test_case(
        f"{s['name']}: a new {new}-stream app, 100 % bad from its first second for 2 hours: a page within\n"
        "10 minutes, no ticket ahead of it (none at all: tickets need a day of data); resolved after.",
        pair(site, s, "new.example.com", "app", [(120, new, spread(new, new)), (60, new, {})], born=born),
        [(born + 10, ALERT, [page_alert(site, s, "new.example.com", ["app"])]), (r + 10, ALERT, [])],
        r + 60, exprs=[never(r + 60, 50, f'alertname="{ALERT}"'),
                       never(r + 60, r + 60, f'alertname=~"{ALERT}|{EXHAUSTED}",severity!="critical"')]))

    # A 16-minute-old pair.
    born, i, r, end = 59, 60, 75, 75 + 8 * 60
    out.append(test_case(
        f"{s['name']}: a pair 1 minute old, then 100 % bad for 15 minutes: a page within 10 minutes, resolved\n"
        "within 10 minutes of the recovery, no second page (the 6h tier needs the last 5 minutes too), no ticket,\n"
        "no exhausted budget after 16 minutes of data.",
        pair(site, s, "young.example.com", "live", [(1, n, {}), (15, n, spread(n, n)), (end - r, n, {})], born=born),
        [(i + 10, ALERT, [page_alert(site, s, "young.example.com", ["live"])]), (r + 10, ALERT, [])],
        end, exprs=[never(end, end - r - 10, f'alertname="{ALERT}"'),
                    never(end, end, f'alertname=~"{ALERT}|{EXHAUSTED}",severity!="critical"')]))

    # The steady-state incident while alerts.yml's surge pages for the domain.
    i, r = DAY_MIN, DAY_MIN + length
    end = r + 60
    out.append(test_case(
        f"{s['name']}: the steady-state incident while {shared.SURGE_ALERT} of the domain is pending, then\n"
        f"firing until 5 minutes after the recovery: the surge pages, this page never fires (nor {SURGE_HOLD} after).",
        pair(site, s, "surge.example.com", "live", [(i, n, calm), (length, n, spread(n, n)), (end - r, n, calm)])
        + [alerts_series(site, shared.SURGE_ALERT, "pending", "surge.example.com", (i + 1, i + 6, end)),
           alerts_series(site, shared.SURGE_ALERT, "firing", "surge.example.com", (i + 6, r + 5, end))],
        [], end, exprs=[never(end, end - i + 5, f'alertname="{ALERT}"')]))

    # A medium burn between the two page tiers' factors: the 6h page only.
    medium = (f1 + f2) / 2
    big = max(100, m, 20 * k)
    i, r = 3 * DAY_MIN, 3 * DAY_MIN + 12 * 60
    out.append(test_case(
        f"{s['name']}: 3 calm days, then {num(medium * b * 100)} % bad ({num(medium)}× the budget rate) over 20 of {big}\n"
        "streams for 12 hours: the 6h/30m page (not after 3 hours: not the 1h/5m one); no ticket while and after\n"
        "it pages (it explains them).",
        pair(site, s, "medium.example.com", "live",
             [(i, big, {}), (12 * 60, big, spread(20, medium * b * big)), (8 * 60, big, {})]),
        [(i + 3 * 60, ALERT, []), (i + 6 * 60, ALERT, [page_alert(site, s, "medium.example.com", ["live"])]),
         (r - 5, ALERT, [page_alert(site, s, "medium.example.com", ["live"])]), (r + 10, ALERT, [])],
        r + 8 * 60, exprs=[never(r + 8 * 60, 16 * 60 + 10, f'alertname=~"{ALERT}|{EXHAUSTED}",severity="warning"')]))

    # Fast burn for hours: the budget goes.
    i = DAY_MIN
    out.append(test_case(
        f"{s['name']}: 100 % bad for 9 hours after a calm day: one page throughout, no ticket, the budget exhausted.",
        pair(site, s, "fast.example.com", "live", [(i, n, {}), (9 * 60, n, spread(n, n))]),
        [(i + page_by, ALERT, [page_alert(site, s, "fast.example.com", ["live"])]),
         (i + 8 * 60, ALERT, [page_alert(site, s, "fast.example.com", ["live"])]),
         (i + 8 * 60, EXHAUSTED, [exhausted_alert(site, s, "fast.example.com", "live")])],
        i + 9 * 60 - 5, exprs=[never(i + 9 * 60 - 5, i + 9 * 60 - 5, f'alertname="{ALERT}",severity="warning"')]))

    # Small apps: the domain's apps together.
    if m >= 3:
        tiny = m - 1
        apps = [f"a{j}" for j in range(10)]
        i = DAY_MIN
        inputs = [line for a in apps
                  for line in pair(site, s, "swarm.example.com", a, [(i, tiny, {}), (60, tiny, spread(tiny, tiny))])]
        out.append(test_case(
            f"{s['name']}: 10 apps of {tiny} streams each (fewer than {m}), all 100 % bad: no app pages alone,\n"
            "the domain's apps together do (one page, the same alert).",
            inputs,
            [(i - 5, ALERT, []), (i + page_by, ALERT, [page_alert(site, s, "swarm.example.com", apps)])],
            i + 60))
    return out


def ticket_tests(site, s):
    b, m, k = budget(s), s["min_live_streams"], s["min_bad_streams"]
    _, f2, f3, f4 = factors(s)
    big = max(100, m, 20 * k)
    spread_over = max(10, k + 1)
    kept = (spread_over - k + 1) / spread_over  # the share left without the worst streams
    out = []

    # A slow burn between the tickets' factors, spread over 10 streams: the
    # 3d/6h ticket after a day.
    slow = (f3 + f4) / 2 / kept
    exhausted = kept * slow > 1.1
    day_gate = at_eval(DAY_MIN + 5)
    out.append(test_case(
        f"{s['name']}: {num(slow * b * 100)} % bad ({num(slow)}× the budget rate) over {spread_over} of {big} streams for 3 days:\n"
        f"no ticket before a day of data, then the 3d/6h ticket only{', and the budget exhausted' if exhausted else ''}; "
        "never a page.",
        pair(site, s, "slow.example.com", "live", [(3 * DAY_MIN, big, spread(spread_over, slow * b * big))]),
        [tickets_at(site, s, 120, "slow.example.com", "live", ()),
         tickets_at(site, s, day_gate - 5, "slow.example.com", "live", ()),
         (day_gate - 5, EXHAUSTED, []),
         tickets_at(site, s, DAY_MIN + 120, "slow.example.com", "live", ("3d",)),
         (DAY_MIN + 120, EXHAUSTED, [exhausted_alert(site, s, "slow.example.com", "live")] if exhausted else []),
         tickets_at(site, s, 3 * DAY_MIN - 5, "slow.example.com", "live", ("3d",))],
        3 * DAY_MIN, exprs=[never(3 * DAY_MIN, 3 * DAY_MIN, 'severity="critical"')]))

    # Between the 1d ticket's factor and the 6h page's: both tickets; open
    # an hour after the burn stops.
    steady = (f3 + f2) / 2 / kept
    d = 2 * DAY_MIN
    # The 2h window drops below the 1d tier's factor this long after the stop.
    fails = at_eval(120 * (1 - f3 / (kept * steady)) + 1)
    out.append(test_case(
        f"{s['name']}: {num(steady * b * 100)} % bad over {spread_over} of {big} streams for 2 days: the 1d/2h and 3d/6h\n"
        f"tickets, no page; when it stops, the 1d/2h ticket's condition fails within {fails} minutes and the\n"
        f"ticket stays open {TICKET_KEEP} longer (no flapping), then resolves.",
        pair(site, s, "steady-burn.example.com", "live",
             [(d, big, spread(spread_over, steady * b * big)), (4 * 60, big, {})]),
        [tickets_at(site, s, DAY_MIN + 60, "steady-burn.example.com", "live", ("1d", "3d")),
         tickets_at(site, s, d + fails + 45, "steady-burn.example.com", "live", ("1d", "3d")),
         tickets_at(site, s, d + fails + shared.seconds(TICKET_KEEP) // 60 + 10, "steady-burn.example.com", "live", ("3d",))],
        d + 4 * 60, exprs=[never(d + 4 * 60, d + 4 * 60, 'severity="critical"')]))

    # Just below the smallest factor.
    below = 0.9 * f4 / kept
    quiet = f'alertname="{ALERT}"' if kept * below > 0.9 else slo_alerts()
    out.append(test_case(
        f"{s['name']}: just below the slowest tier ({num(below * b * 100)} % bad over {spread_over} streams) for 3 days: no alert.",
        pair(site, s, "below.example.com", "live", [(3 * DAY_MIN, big, spread(spread_over, below * b * big))]),
        [], 3 * DAY_MIN, exprs=[never(3 * DAY_MIN, 3 * DAY_MIN, quiet)]))

    # One stream: its own ticket (alerts.yml), never its app's, nor a page.
    if k >= 2:
        few, small = 10, max(5, m)
        glitch = {"stuck": 1.0, "glitch": 0.1 * b * few}
        out.append(test_case(
            f"{s['name']}: one stuck encoder for 3 days in an app of {few} streams ({num(100 / few)} % bad) and in one\n"
            f"of {small} ({num(100 / small)} %), with one-off glitches of another stream: no ticket, no page,\n"
            "no exhausted budget (one stream is its own ticket's, in alerts.yml).",
            pair(site, s, "one.example.com", "live", [(3 * DAY_MIN, few, glitch)])
            + pair(site, s, "one-small.example.com", "live", [(3 * DAY_MIN, small, glitch)]),
            [], 3 * DAY_MIN, exprs=[never(3 * DAY_MIN, 3 * DAY_MIN, slo_alerts())]))

    # A small app: tickets, never a page.
    if m >= 3 and m - 1 >= k:
        tiny = m - 1
        i = DAY_MIN
        phases = [(i, tiny, {}), (8 * 60 + 1, tiny, spread(tiny, tiny))]
        checks = [(at, tickets_expected(s, phases, at)) for at in (i + 30, i + 8 * 60)]
        out.append(test_case(
            f"{s['name']}: a {tiny}-stream app (fewer than {m}) 100 % bad for 8 hours after a calm day: no page\n"
            f"(neither its own nor the domain's), the tickets only.",
            pair(site, s, "small.example.com", "tiny", phases),
            [tickets_at(site, s, at, "small.example.com", "tiny", tiers) for at, tiers in checks if tiers is not None],
            i + 8 * 60 + 1, exprs=[never(i + 8 * 60, i + 8 * 60, 'severity="critical"')]))

    if b >= 0.01:
        # simulate --profile calm: 1 stream in 100 always bad, and one-off
        # glitches (≈ 1/19 more).
        g = 1 / 19
        out.append(test_case(
            f"{s['name']}: a calm fleet for 3 days, one stuck encoder per 100 streams and one-off glitches\n"
            "(simulate --profile calm): no page, no app ticket, no exhausted budget.",
            pair(site, s, "calm.example.com", "a", [(3 * DAY_MIN, 100, {"stuck": 1.0, "glitches": g})])
            + pair(site, s, "calm.example.com", "b", [(3 * DAY_MIN, 100, {"stuck": 1.0, "glitches": g})])
            + pair(site, s, "calm.example.com", "c", [(3 * DAY_MIN, 200, {"stuck1": 1.0, "stuck2": 1.0, "glitches": 2 * g})]),
            [], 3 * DAY_MIN, exprs=[never(3 * DAY_MIN, 3 * DAY_MIN, slo_alerts())]))

    # Uneven traffic: 23 quiet hours (10 streams, none bad), one busy hour
    # (1000 streams, 10 % bad). The day's error ratio is bad over live
    # stream-seconds, about 8.1 %; an average of hourly ratios would say 0.4 %.
    exact = 1000 * 0.1 * 60 / (10 * 23 * 60 + 1000 * 60)
    w = s["window"]
    day_ratio = f"{rate_of('bad', w, s)} / on (domain, app, slo) {rate_of('live', w, s)}"
    within = f"({day_ratio} > bool {num(exact * 0.97)}) * ({day_ratio} < bool {num(exact * 1.03)})"
    out.append(test_case(
        f"{s['name']}: the {w} ratio under uneven traffic is bad over live seconds, not a mean of ratios.",
        pair(site, s, "uneven.example.com", "live", [(22 * 60, 10, {}), (60, 1000, spread(100, 100)), (60, 10, {})]),
        [], DAY_MIN + 60,
        exprs=[(DAY_MIN, within, [({"domain": "uneven.example.com", "app": "live", "slo": s["name"]}, 1)])]))
    return out


def multi_slo_tests(site, slos):
    """Each SLO alone burning on a pair that every SLO of the file accounts
    for (their bad error types differ, so their bad time does): its page
    alone fires, and each SLO's ratio is its own bad over its own live time,
    never live time summed over SLOs. Only when the file has several SLOs."""
    out = []
    for s in slos if len(slos) > 1 else ():
        others = [o for o in slos if o is not s]
        b, m, k = budget(s), s["min_live_streams"], s["min_bad_streams"]
        f1, f2, _, _ = factors(s)
        n = max(40, m, k)
        page_by = at_eval(min(60 * f1 * b, 360 * f2 * b) + 1)
        i, length = 6 * 60, max(15, page_by + 5)
        end = i + length + 2 * 60
        domain = f"only-{s['name']}.example.com"
        labels = {"domain": domain, "app": "live"}

        def ratio_of(w, slo_matcher):
            return (f'slo:bad_seconds:rate{w}{{domain="{domain}",{slo_matcher}}} / on (domain, app, slo) '
                    f"slo:live_seconds:rate{w}")

        def near(expr, want):
            return f"({expr} > bool {num(0.97 * want)}) * ({expr} < bool {num(1.03 * want)})"
        mine, theirs = f'slo="{s["name"]}"', f'slo!="{s["name"]}"'
        w, share = s["window"], length / end
        zero = [(labels | {"slo": o["name"]}, 0) for o in others]
        types = "; ".join(f"{o['name']} counts error types {', '.join(map(str, o['bad_error_types']))}" for o in slos)
        out.append(test_case(
            f"Several SLOs on one pair ({types}): {n} streams 100 % bad for {length} minutes by\n"
            f"{s['name']}'s definition only, after 6 calm hours: {s['name']}'s page alone, within {page_by} minutes; no other\n"
            f"SLO's alert. Each SLO's ratio is its own bad over its own live time: {s['name']}'s 1 over 5 minutes and\n"
            f"{num(share)} over {w}, the others' 0.",
            pair(site, s, domain, "live", [(i, n, {}), (length, n, spread(n, n)), (end - i - length, n, {})], calm=others),
            [(i, ALERT, []), (i + page_by, ALERT, [page_alert(site, s, domain, ["live"])]), (end, ALERT, [])],
            end, exprs=[
                (i + page_by, near(ratio_of(NOW, mine), 1), [(labels | {"slo": s["name"]}, 1)]),
                (i + page_by, ratio_of(NOW, theirs), zero),
                (end, near(ratio_of(w, mine), share), [(labels | {"slo": s["name"]}, 1)]),
                (end, ratio_of(w, theirs), zero),
                never(end, end, f'alertname=~"{ALERT}|{EXHAUSTED}",{theirs}'),
                never(end, end, f'alertname=~"{ALERT}|{EXHAUSTED}",severity!="critical"')]))
    return out


def saturation_test(site):
    labels = selector_labels(site) | {"instance": "a:9321"}
    late = [None] * 30 + [500.0] * 91
    ann = {
        kind: {k: v.replace("{{ $labels.instance }}", "a:9321").replace("{{ $labels.kind }}", kind)
               for k, v in saturated_annotations(site).items()}
        for kind in ("report_only", "started")}
    alert = lambda kind: ({"severity": "warning", "scope": "exporter", **labels, "kind": kind}, ann[kind])
    return test_case(
        "The SLO accounting drops reports of never-started streams for 20 minutes, and once (a counter born at\n"
        "500) those of started streams: a ticket for each while it drops, gone 10 minutes after.",
        [series("css_push_slo_dropped_reports_total", labels | {"kind": "report_only"},
                encode(cumulative(0, [0] * 60 + [100.0] * 20 + [0] * 40))),
         series("css_push_slo_dropped_reports_total", labels | {"kind": "started"}, encode(late))],
        [(25, SATURATED, []), (35, SATURATED, [alert("started")]), (55, SATURATED, []),
         (70, SATURATED, [alert("report_only")]), (95, SATURATED, [])],
        120)


def tests_yaml(site, slos):
    out = [
        f"# GENERATED by prometheus/slo.py from {site['slo_file']} (the scenarios scale",
        "# with each SLO's budget). promtool test rules prometheus/slo_rules_test.yml",
        "rule_files:",
        "  - slo_rules.yml",
        f"evaluation_interval: {EVAL}m",
        "# The long group reads the short group's recordings of the same minute.",
        "group_eval_order: [css-push-slo, css-push-slo-long]",
        "tests:",
    ]
    for s in slos:
        out += page_tests(site, s) + ticket_tests(site, s)
    out += multi_slo_tests(site, slos)
    out.append(saturation_test(site))
    return "\n".join(out) + "\n"


def render(site, for_site):
    """The rules and their promtool tests, for the repository or a site's
    copy alike (the tests read the rules beside them)."""
    slos = load_slos(site)
    return {RULES: rules_yaml(site, slos), TESTS: tests_yaml(site, slos)}


def test_copy(site, speedup):
    """The rules alone, every duration divided by `speedup`."""
    return rules_yaml(site, load_slos(site), speedup)


if __name__ == "__main__":
    outputs.main(__doc__, render, test_copy)
