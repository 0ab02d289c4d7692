#!/usr/bin/env python3
"""Writes prometheus/slo_rules.yml (the push-health SLOs' recording rules and
multi-window multi-burn-rate alerts) and prometheus/slo_rules_test.yml (their
promtool tests over synthetic days) from the SLO file (the site's slo_file,
prometheus/slo.toml by default), with the site's selector and URLs. Run
`python3 tools/generate.py` (all generators) after editing either, commit the
outputs; `--check` fails when a committed file differs (CI). Python 3.11+,
standard library only. The design and its limits: README.md, "Push-health
SLO"."""
import json
import pathlib
import re
import sys
import tomllib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import outputs  # noqa: E402
import shared  # noqa: E402

RULES, TESTS = pathlib.Path("prometheus", "slo_rules.yml"), pathlib.Path("prometheus", "slo_rules_test.yml")
DASHBOARD = shared.SLO
ALERT, EXHAUSTED = "CSSPushErrorBudgetBurn", "CSSPushErrorBudgetExhausted"

# Short windows: rated from the raw counters every evaluation (the page
# tiers need them fresh). Long windows (1d, 3d, the SLO's): averaged from
# 5-minute slices recorded every 5 minutes, so 30 days read 8 640 samples a
# series instead of 172 800 at a 15 s evaluation interval.
SHORT = ("5m", "30m", "1h", "2h", "6h")
LONG = ("1d", "3d")
SLICE = "5m"

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


def seconds(duration):
    n, unit = int(duration[:-1]), duration[-1]
    return n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def num(x):
    """A number as PromQL and prose show it: 0.01, 14.4, 6."""
    return f"{x:.10g}"


class SloError(shared.SiteError):
    """An SLO file the rules cannot be built from; the message says why."""


def slo_path(site):
    """The site's SLO file: relative paths are the repository's."""
    return shared.ROOT / site["slo_file"]


def load_slos(site):
    """The [[slo]] tables of the site's SLO file, checked as the exporter
    checks them."""
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
    for s in slos:
        where = f"{path}: slo {s.get('name', '?')!r}"
        if set(s) != keys:
            raise SloError(f"{where}: fields must be exactly {sorted(keys)}")
        if not re.fullmatch(r"[a-z0-9_-]{1,32}", str(s["name"])) or s["name"] in names:
            raise SloError(f"{where}: name must be [a-z0-9_-], 1-32 chars, unique")
        names.add(s["name"])
        if not isinstance(s["objective"], float) or not 0 < s["objective"] < 1:
            raise SloError(f"{where}: objective must be a number between 0 and 1")
        if not re.fullmatch(r"[1-9][0-9]*d", str(s["window"])) or seconds(s["window"]) < seconds(LONG[-1]):
            raise SloError(f"{where}: window must be whole days, at least {LONG[-1]} (the longest alert window)")
        types = s["bad_error_types"]
        if not types or len(set(types)) != len(types) or not all(isinstance(t, int) and 1 <= t <= 16 for t in types):
            raise SloError(f"{where}: bad_error_types must be distinct error types 1-16")
        if not isinstance(s["min_live_streams"], int) or s["min_live_streams"] < 0:
            raise SloError(f"{where}: min_live_streams must be a whole number, 0 or more")
    return slos


def budget(slo):
    return 1 - slo["objective"]


def factor(slo, share, long_window):
    return round(share * seconds(slo["window"]) / seconds(long_window), 6)


def long_windows(slos):
    return sorted(set(LONG) | {s["window"] for s in slos}, key=seconds)


# --- rule texts --------------------------------------------------------------

def rule(kind, name, expr, why=None, labels=None, for_=None, annotations=None):
    out = []
    if why:
        out += [f"      # {line}" for line in why.splitlines()]
    out.append(f"      - {kind}: {name}")
    out.append("        expr: |")
    out += [f"          {line}" for line in expr.strip().splitlines()]
    if for_:
        out.append(f"        for: {for_}")
    if labels:
        out.append("        labels:")
        out += [f"          {k}: {json.dumps(v)}" for k, v in labels.items()]
    if annotations:
        out.append("        annotations:")
        out += [f"          {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in annotations.items()]
    return "\n".join(out)


def ratio(bad, live, by="domain, app"):
    """bad / live per pair; absent (no data, not 0 % bad) while nothing is live."""
    return f"{bad}\n  / on ({by}) group_left ()\n({live} > 0)"


def short_rules(site, slos):
    sel = site["selector"]
    out = []
    for s in slos:
        lab = {"slo": s["name"], "window": s["window"]}
        out.append(rule("record", "slo:objective:ratio", f"vector({num(s['objective'])})", labels=lab,
                        why=f"SLO {s['name']}: {num(s['objective'] * 100)} % of live stream-seconds error-free over {s['window']}."))
        out.append(rule("record", "slo:error_budget:ratio", f"vector({num(budget(s))})", labels=lab))
        out.append(rule("record", "slo:window:seconds", f"vector({seconds(s['window'])})", labels=lab,
                        why="The window's length: the dashboard's stream-hours and time to exhaustion."))
    for w in SHORT:
        out.append(rule("record", f"slo:bad_seconds:rate{w}",
                        f"sum by (domain, app, slo) (rate(css_push_bad_seconds_total{{{sel}}}[{w}]))",
                        why="Bad stream-seconds per second; rate before sum (a restarted instance resets only its own counter)."
                        if w == SHORT[0] else None))
        out.append(rule("record", f"slo:live_seconds:rate{w}",
                        f"sum by (domain, app) (rate(css_push_live_seconds_total{{{sel}}}[{w}]))",
                        why="Live stream-seconds per second: the average number of live streams." if w == SHORT[0] else None))
        out += error_and_burn(w)
    for s in slos:
        out += [page(site, s, t) for t in TIERS if t[4]]
        out += [rollup(site, s, t) for t in TIERS if t[4]]
    return out


def error_and_burn(w):
    return [
        rule("record", f"slo:sli_error:ratio_rate{w}", ratio(f"slo:bad_seconds:rate{w}", f"slo:live_seconds:rate{w}"),
             why="Share of live stream-seconds that were bad." if w == SHORT[0] else None),
        rule("record", f"slo:burn_rate:ratio_rate{w}",
             f"slo:sli_error:ratio_rate{w}\n  / on (slo) group_left ()\nslo:error_budget:ratio",
             why="How fast the budget burns: 1 spends exactly the budget over the window." if w == SHORT[0] else None),
    ]


def long_rules(site, slos):
    sel = site["selector"]
    n = seconds(SLICE)
    out = [
        rule("record", f"slo:bad_seconds:increase{SLICE}",
             f"sum by (domain, app, slo) (increase(css_push_bad_seconds_total{{{sel}}}[{SLICE}]))",
             why=f"{SLICE} slices, one per evaluation of this group: they tile the long windows."),
        rule("record", f"slo:live_seconds:increase{SLICE}",
             f"sum by (domain, app) (increase(css_push_live_seconds_total{{{sel}}}[{SLICE}]))"),
    ]
    for w in long_windows(slos):
        why = ("Numerator and denominator averaged separately, the ratio after: averaging\n"
               "ratios would weigh a quiet hour like a busy one.") if w == LONG[0] else None
        out.append(rule("record", f"slo:bad_seconds:rate{w}",
                        f"avg_over_time(slo:bad_seconds:increase{SLICE}[{w}]) / {n}", why=why))
        out.append(rule("record", f"slo:live_seconds:rate{w}",
                        f"avg_over_time(slo:live_seconds:increase{SLICE}[{w}]) / {n}"))
        out += error_and_burn(w)
    for w in sorted({s["window"] for s in slos}, key=seconds):
        out.append(rule("record", f"slo:data_coverage:ratio{w}",
                        f"count_over_time(slo:live_seconds:increase{SLICE}[{w}]) / {seconds(w) // n}",
                        why=f"Share of the {w} window with data: a fresh install is not \"100 % met\"."))
    for s in slos:
        out.append(rule("record", "slo:error_budget_remaining:ratio",
                        f"1 - slo:burn_rate:ratio_rate{s['window']}{{slo=\"{s['name']}\"}}",
                        why=f"Share of {s['name']}'s {s['window']} budget left (negative: overspent)."))
    for s in slos:
        out += [ticket(site, s, t) for t in TIERS if not t[4]]
        out.append(exhausted(site, s))
    return out


# --- alerts -----------------------------------------------------------------

def burn_over(s, w, f, by):
    """The pair's (or domain's) burn rate over w above f."""
    name = s["name"]
    if by == "domain, app":
        return f'slo:burn_rate:ratio_rate{w}{{slo="{name}"}} > {num(f)}'
    bad = f'sum by (domain, slo) (slo:bad_seconds:rate{w}{{slo="{name}"}})'
    live = f"sum by (domain) (slo:live_seconds:rate{w})"
    return f"(\n  {bad}\n    / on (domain) group_left ()\n  ({live} > 0)\n) / {num(budget(s))} > {num(f)}"


def both_windows(s, tier, by):
    _, long_w, short_w, share, _ = tier
    f = factor(s, share, long_w)
    key = "domain, app, slo" if by == "domain, app" else "domain, slo"
    return f"(\n{burn_over(s, long_w, f, by)}\n)\nand on ({key})\n(\n{burn_over(s, short_w, f, by)}\n)"


def gate(s, tier, by):
    group = "" if by == "domain, app" else "sum by (domain) "
    return f"and on ({by})\n{group}(slo:live_seconds:rate{tier[1]}) >= {s['min_live_streams']}"


def tier_labels(s, tier, scope):
    return {"severity": tier[0], "scope": scope, "slo": s["name"], "long_window": tier[1], "short_window": tier[2]}


def annotations(site, s, tier, who, what):
    severity, long_w, short_w, share, paging = tier
    f = factor(s, share, long_w)
    spent = num(share * 100)
    return {
        "summary": f"{who}: {s['name']} error budget burning {num(f)}× or faster ({long_w} and {short_w})",
        "description": (
            f"{what} spent bad stream-seconds at {num(f)} times or more the rate the {s['name']} SLO "
            f"({num(s['objective'] * 100)} % error-free over {s['window']}) allows, over both the last {long_w} "
            f"and the last {short_w}: {spent} % of the window's error budget in {long_w}"
            + (", and the budget is gone in " + num(seconds(s['window']) / f / 86400) + " days at this pace."
               if not paging else ". Viewers see stalls, freezes or broken playback now.")),
        "runbook_url": f"{site['runbook_url']}#{ALERT.lower()}",
    }


def dashboard_link(site, variables):
    query = "&".join(f"var-{v}={{{{ $labels.{v} | urlquery }}}}" for v in variables)
    return f"{site['grafana_url'].rstrip('/')}/d/{DASHBOARD}/{DASHBOARD}?{query}"


def burn_annotations(site, s, tier, scope):
    """The annotation templates of a burn alert of `scope` (app or domain)."""
    if scope == "app":
        ann = annotations(site, s, tier, "{{ $labels.domain }}/{{ $labels.app }}", "The app")
        return ann | {"dashboard": dashboard_link(site, ("domain", "app", "slo"))}
    ann = annotations(site, s, tier, "Domain {{ $labels.domain }}", "The domain's apps together")
    return ann | {"dashboard": dashboard_link(site, ("domain", "slo"))}


def page(site, s, tier):
    expr = f"{both_windows(s, tier, 'domain, app')}\n{gate(s, tier, 'domain, app')}"
    ann = burn_annotations(site, s, tier, "app")
    why = (f"Page: {num(tier[3] * 100)} % of the budget in {tier[1]}, confirmed by the last {tier[2]}; only for\n"
           f"pairs that averaged at least {s['min_live_streams']} live streams over {tier[1]}.")
    return rule("alert", ALERT, expr, why=why, labels=tier_labels(s, tier, "app"), annotations=ann)


def rollup(site, s, tier):
    pairs = f"{both_windows(s, tier, 'domain, app')}\n{gate(s, tier, 'domain, app')}"
    expr = (f"(\n{both_windows(s, tier, 'domain')}\n{gate(s, tier, 'domain')}\n)\n"
            f"unless on (domain, slo)\n(\n{pairs}\n)")
    ann = burn_annotations(site, s, tier, "domain")
    why = ("Domain roll-up: many apps too small to page alone, failing together.\n"
           "Silent while an app of the domain pages for the same tier: one page per incident.")
    return rule("alert", ALERT, expr, why=why, labels=tier_labels(s, tier, "domain"), annotations=ann)


def ticket(site, s, tier):
    ann = burn_annotations(site, s, tier, "app")
    why = f"Ticket: {num(tier[3] * 100)} % of the budget in {tier[1]}; every app, however small."
    return rule("alert", ALERT, both_windows(s, tier, "domain, app"), why=why,
                labels=tier_labels(s, tier, "app"), annotations=ann)


def exhausted_annotations(site, s):
    return {
        "summary": f"{{{{ $labels.domain }}}}/{{{{ $labels.app }}}}: {s['name']} error budget exhausted",
        "description": (f"Over the last {s['window']} (or all the data there is, see the dashboard's coverage) "
                        f"more than {num(budget(s) * 100)} % of the app's live stream-seconds were bad: "
                        f"the {s['name']} SLO ({num(s['objective'] * 100)} %) is missed for this window."),
        "runbook_url": f"{site['runbook_url']}#{EXHAUSTED.lower()}",
        "dashboard": dashboard_link(site, ("domain", "app", "slo")),
    }


def exhausted(site, s):
    ann = exhausted_annotations(site, s)
    return rule("alert", EXHAUSTED, f'slo:error_budget_remaining:ratio{{slo="{s["name"]}"}} <= 0', for_="15m",
                why="Information: the window's budget is spent; the burn alerts say how fast.",
                labels={"severity": "info", "scope": "app", "slo": s["name"]}, annotations=ann)


def rules_yaml(site, slos):
    head = [
        f"# GENERATED by prometheus/slo.py from {site['slo_file']}; edit there, run",
        "# `python3 tools/generate.py` and commit. Design: README.md, \"Push-health SLO\".",
        f"# Exporter selector: {site['selector']}",
        "# Check: promtool check rules prometheus/slo_rules.yml",
        "# Test:  promtool test rules prometheus/slo_rules_test.yml",
        "groups:",
        "  - name: css-push-slo",
        "    rules:",
    ]
    body = "\n".join(short_rules(site, slos))
    tail = ["", "  - name: css-push-slo-long", f"    interval: {SLICE}", "    rules:"]
    return "\n".join(head) + "\n" + body + "\n" + "\n".join(tail) + "\n" + "\n".join(long_rules(site, slos)) + "\n"


# --- promtool tests ----------------------------------------------------------

STEP = 60  # seconds between synthetic samples
EVAL = 5  # minutes between evaluations in the tests (keeps days of them quick)


def series(name, labels, values):
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"      - series: '{name}{{{text}}}'\n        values: '{values}'"


def counter(phases):
    """A counter's promtool values from (minutes, increase per minute) phases."""
    parts, value, first = [], 0.0, True
    for minutes, per_min in phases:
        start = value if first else value + per_min
        count = minutes if first else minutes - 1
        parts.append(f"{num(start)}+{num(per_min)}x{count}")
        value = start + per_min * count
        first = False
    return " ".join(parts)


def selector_labels(site):
    """The labels a synthetic series needs to match the site's selector:
    its equality matchers (a regex matcher must match these too)."""
    return dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', site["selector"]))


def pair(site, s, domain, app, streams, phases):
    """Input series of one (domain, app) from (minutes, bad streams) phases
    (fractional: a share of the time); `streams` are live throughout, or per
    phase when a list."""
    labels = selector_labels(site) | {"instance": "a:9321", "domain": domain, "app": app}
    live = streams if isinstance(streams, list) else [streams] * len(phases)
    return [
        series("css_push_live_seconds_total", labels, counter([(m, n * STEP) for (m, _), n in zip(phases, live)])),
        series("css_push_bad_seconds_total", labels | {"slo": s["name"]},
               counter([(m, bad * STEP) for m, bad in phases])),
    ]


def test_case(title, inputs, checks, minutes, exprs=()):
    """One promtool test: `checks` are (minute, alert name, firing alerts);
    `exprs` (minute, PromQL, expected samples) for promql_expr_test."""
    lines = [f"  # {line}" for line in title.splitlines()]
    lines += [f"  - interval: {STEP // 60}m", "    input_series:"]
    lines += inputs
    if exprs:
        lines.append("    promql_expr_test:")
        for at, expr, samples in exprs:
            lines += [f"      - expr: {json.dumps(expr)}", f"        eval_time: {at}m", "        exp_samples:"]
            for labels, value in samples:
                text = ",".join(f'{k}="{v}"' for k, v in labels.items())
                lines.append(f"          - {{labels: '{{{text}}}', value: {value}}}")
    if checks:
        lines.append("    alert_rule_test:")
    for at, name, firing in checks:
        assert at < minutes and at % EVAL == 0, (title, at, minutes)
        if not firing:
            lines.append(f"      - {{eval_time: {at}m, alertname: {name}, exp_alerts: []}}")
            continue
        lines += [f"      - eval_time: {at}m", f"        alertname: {name}", "        exp_alerts:"]
        for labels, ann in firing:
            lines.append(f"          - exp_labels: {json.dumps(labels, ensure_ascii=False)}")
            lines.append(f"            exp_annotations: {json.dumps(ann, ensure_ascii=False)}")
    return "\n".join(lines)


def expand(templates, labels):
    """Annotation templates as Prometheus fills them for `labels` (plain
    test values: urlquery changes nothing)."""
    out = {}
    for key, text in templates.items():
        for name, value in labels.items():
            text = text.replace(f"{{{{ $labels.{name} | urlquery }}}}", value).replace(f"{{{{ $labels.{name} }}}}", value)
        out[key] = text
    return out


def tier_alert(site, s, tier, domain, app=None):
    """(labels, annotations) of the burn alert of `tier` for a pair, or the
    domain roll-up when app is None."""
    scope = "app" if app else "domain"
    labels = tier_labels(s, tier, scope) | {"domain": domain} | ({"app": app} if app else {})
    return labels, expand(burn_annotations(site, s, tier, scope), labels)


def exhausted_alert(site, s, domain, app):
    labels = {"severity": "info", "scope": "app", "slo": s["name"], "domain": domain, "app": app}
    return labels, expand(exhausted_annotations(site, s), labels)


def tiers_at(site, s, at, domain, app, firing_tiers):
    """One check per tier row: ALERT at `at` fires exactly `firing_tiers`."""
    firing = [tier_alert(site, s, t, domain, app) for t in TIERS if t[1] in firing_tiers]
    return (at, ALERT, firing)


def tests_yaml(site, slos):
    day = 1440
    out = [
        f"# GENERATED by prometheus/slo.py from {site['slo_file']} (the scenarios scale",
        "# with each SLO's budget). promtool test rules prometheus/slo_rules_test.yml",
        "rule_files:",
        "  - slo_rules.yml",
        f"evaluation_interval: {EVAL}m",
        "tests:",
    ]
    for s in slos:
        b = budget(s)
        n = 100  # live streams of a paging-sized app
        # Fast burn: one calm day, then every stream bad.
        out.append(test_case(f"{s['name']}: fast burn, 100 % bad after a calm day: the 1h/5m page within\n"
                                f"minutes, then 6h/30m; the tickets later; the budget exhausted.",
                             pair(site, s, "d", "big", n, [(day, 0), (9 * 60, n)]),
                             [tiers_at(site, s, day - 5, "d", "big", ()),
                              tiers_at(site, s, day + 5, "d", "big", ()),
                              tiers_at(site, s, day + 10, "d", "big", ("1h",)),
                              tiers_at(site, s, day + 8 * 60, "d", "big", ("1h", "6h", "1d", "3d")),
                              (day + 8 * 60, EXHAUSTED, [exhausted_alert(site, s, "d", "big")])],
                             day + 9 * 60))
        # Medium burn: 8 budgets' worth: the 6h page, never the 1h one.
        out.append(test_case(f"{s['name']}: {num(8 * b * 100)} % bad (8× the budget rate): the 6h/30m page and the 1d/2h\n"
                                f"ticket, never the 1h/5m page.",
                             pair(site, s, "d", "big", n, [(day, 0), (day, 8 * b * n)]),
                             [tiers_at(site, s, day + 3 * 60, "d", "big", ()),
                              tiers_at(site, s, day + 6 * 60, "d", "big", ("6h", "3d")),
                              tiers_at(site, s, day + 20 * 60, "d", "big", ("6h", "1d", "3d"))],
                             2 * day))
        # Slow burn: twice the budget rate for 3 days: only the 3d/6h ticket.
        out.append(test_case(f"{s['name']}: slow burn, {num(2 * b * 100)} % bad (2× the budget rate) for 3 days: only the\n"
                                f"3d/6h ticket, never a page.",
                             pair(site, s, "d", "big", n, [(3 * day, 2 * b * n)]),
                             [tiers_at(site, s, 2 * 60, "d", "big", ("3d",)),
                              tiers_at(site, s, 3 * day - 5, "d", "big", ("3d",))],
                             3 * day))
        # Just below the budget rate: nothing, ever.
        out.append(test_case(f"{s['name']}: just below the budget rate ({num(0.9 * b * 100)} % bad) for 3 days: nothing fires.",
                             pair(site, s, "d", "big", n, [(3 * day, 0.9 * b * n)]),
                             [tiers_at(site, s, at, "d", "big", ()) for at in (60, 6 * 60, day, 2 * day, 3 * day - 5)]
                             + [(3 * day - 5, EXHAUSTED, [])],
                             3 * day))
        # A tiny app below min_live_streams: tickets, never a page.
        tiny = max(1, s["min_live_streams"] - 2)
        out.append(test_case(f"{s['name']}: a {tiny}-stream app (fewer than {s['min_live_streams']}) 100 % bad for 8 hours: no page\n"
                                f"(neither its own nor the domain roll-up), the tickets only.",
                             pair(site, s, "small", "tiny", tiny, [(day, 0), (8 * 60 + 1, tiny)]),
                             [tiers_at(site, s, day + 30, "small", "tiny", ("3d",)),
                              tiers_at(site, s, day + 8 * 60, "small", "tiny", ("1d", "3d"))],
                             day + 8 * 60 + 1))
        # Many small apps of one domain failing together: the roll-up pages.
        apps = 10
        inputs = []
        for i in range(apps):
            inputs += pair(site, s, "swarm", f"a{i}", tiny, [(2 * day, 0), (60, tiny)])
        out.append(test_case(f"{s['name']}: {apps} apps of {tiny} streams each, all 100 % bad: no app pages,\n"
                                f"the domain roll-up does.",
                             inputs,
                             [(2 * day - 5, ALERT, []),
                              (2 * day + 15, ALERT, [tier_alert(site, s, t, "swarm") for t in TIERS if t[1] == "1h"])],
                             2 * day + 60))
        # Uneven traffic: 23 quiet hours (10 streams, none bad), one busy hour
        # (1000 streams, 10 % bad). The day's error ratio is bad over live
        # stream-seconds, about 8.1 %; an average of hourly ratios would say 0.4 %.
        exact = 1000 * 0.1 * 60 / (10 * 23 * 60 + 1000 * 60)
        day_ratio = 'slo:sli_error:ratio_rate1d{slo="%s"}' % s["name"]
        within = f"({day_ratio} > bool {num(exact * 0.97)}) * ({day_ratio} < bool {num(exact * 1.03)})"
        out.append(test_case(f"{s['name']}: the 1d ratio under uneven traffic is bad over live seconds, not a mean of ratios.",
                             pair(site, s, "uneven", "live", [10, 1000, 10], [(22 * 60, 0), (60, 100), (60, 0)]),
                             [], day + 60,
                             exprs=[(day, within, [({"domain": "uneven", "app": "live", "slo": s["name"]}, 1)])]))
        if b >= 0.01:
            # simulate --profile calm: 1 stream in 200 bad all the time, and a
            # one-off 5-second glitch in 1 report in 20 (≈ 1/19 more).
            calm = 1 + 1 / 19
            out.append(test_case(f"{s['name']}: a calm fleet (simulate --profile calm: 1 stream in 200 always bad,\n"
                                    f"one-off glitches) for 3 days stays below every tier.",
                                 pair(site, s, "calm", "live", 200, [(3 * day, calm)]),
                                 [tiers_at(site, s, at, "calm", "live", ()) for at in (30, 6 * 60, day, 3 * day - 5)]
                                 + [(3 * day - 5, EXHAUSTED, [])],
                                 3 * day))
    return "\n".join(out) + "\n"


def render(site, for_site):
    """The rules and their promtool tests, for the repository or a site's
    copy alike (the tests read the rules beside them)."""
    slos = load_slos(site)
    return {RULES: rules_yaml(site, slos), TESTS: tests_yaml(site, slos)}


if __name__ == "__main__":
    outputs.main(__doc__, render)
