"""Names and settings the generators share (prometheus/, grafana/,
deploy/kubernetes/): the dashboards' uids, the recorded series, the
callback outcomes that are not refusals, and the site settings (selector,
URLs, thresholds) read from tools/site.example.toml and a team's own file."""
import importlib.util
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULTS = ROOT / "tools" / "site.example.toml"

# Dashboard uids: also their file names, and the targets of every link.
OVERVIEW, STREAM, SLO = "css-push-overview", "css-push-stream", "css-push-slo"
DASHBOARDS = (OVERVIEW, STREAM, SLO)

# Every alert's name starts with this (the dashboards annotate them).
ALERT_PREFIX = "CSSPush"

# Recorded series (prometheus/generate.py writes them, the dashboards read
# them). They sum over exporter instances: no job or instance label.
STREAM_ERRORS = "domain_app_stream_error:css_push_errors:increase5m"
APP_STREAMS_WITH_ERRORS = "domain_app:css_push_streams_with_errors:count5m"
APP_STREAMS_LIVE = "domain_app:css_push_streams_live:sum"
APP_LIVE_ERROR_RATIO = "domain_app:css_push_live_streams_with_errors:ratio5m"
DOMAIN_STREAMS_WITH_ERRORS = "domain:css_push_streams_with_errors:count5m"
DOMAIN_STREAMS = "domain:css_push_streams:count"
# 1 while a domain, or one of its apps, is in an incident: the per-stream
# alerts of that domain/app stay silent meanwhile (prometheus/README.md,
# "One incident, one page").
DOMAIN_INCIDENT = "domain:css_push_incident:bool"
APP_INCIDENT = "domain_app:css_push_incident:bool"
# Per CSS access node (and region), over 15 minutes, summed over instances
# (prometheus/generate.py, "CSS access nodes"): live and bad stream-seconds,
# the node's bad share, the rest of the fleet's (the fleet without that
# node), the fleet's, and live streams now.
NODE_LIVE = "node_region:css_push_node_live_seconds:increase15m"
NODE_BAD = "node_region_slo:css_push_node_bad_seconds:increase15m"
NODE_BAD_SHARE = "node_region_slo:css_push_node_bad:ratio15m"
NODE_REST_BAD_SHARE = "node_region_slo:css_push_node_rest_bad:ratio15m"
FLEET_BAD_SHARE = "slo:css_push_node_bad:ratio15m"
NODE_STREAMS_LIVE = "node_region:css_push_node_streams_live:sum"

# Outcomes of css_push_callbacks_total that keep a callback (answered 200).
# Refusals are selected as "none of these", so an outcome added on the Rust
# side is counted as refused everywhere without touching a rule or panel.
KEPT_OUTCOMES = ("accepted", "duplicate", "ignored")
REFUSED = 'outcome!~"' + "|".join(KEPT_OUTCOMES) + '"'


# alerts.yml's domain-wide surge (prometheus/generate.py) and the SLO's
# domain page (prometheus/slo.py) hold each other back: one page per
# domain incident, whichever comes first.
SURGE_ALERT = "CSSPushDomainErrorSurge"
SLO_PAGE_ALERT = "CSSPushErrorBudgetBurn"


def seconds(duration):
    """A Prometheus duration of one unit ("90s", "5m", "1h", "30d") in seconds."""
    n, unit = int(duration[:-1]), duration[-1]
    return n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


DURATION = r"\d+[smhd]"


def speed_up(text, speedup):
    """Rule text with every duration ([5m], [6h:5m], offset 1d, for: 10m,
    keep_firing_for: 1h, interval: 5m, $SECONDS(5m)) divided by speedup, in
    whole seconds (at least 1): the test copies of the end-to-end tests."""
    def fast(d):
        return f"{max(1, round(seconds(d) / speedup))}s"
    text = re.sub(rf"(\[|offset |for: |interval: )({DURATION})\b(?!:)", lambda m: m.group(1) + fast(m.group(2)), text)
    text = re.sub(rf"\[({DURATION}):({DURATION})\]", lambda m: f"[{fast(m.group(1))}:{fast(m.group(2))}]", text)
    return re.sub(rf"\$SECONDS\(({DURATION})\)", lambda m: "$SECONDS(" + fast(m.group(1)) + ")", text)


def fill_seconds(text):
    """$SECONDS(5m) as the number of seconds, 300 (after any speed-up)."""
    return re.sub(rf"\$SECONDS\(({DURATION})\)", lambda m: str(seconds(m.group(1))), text)


KINDS = {str: "a string", int: "an integer", float: "a number"}


class GeneratorError(Exception):
    """Why a generator cannot write its files; the message says it. Library
    functions raise it; only entry points exit (outputs.exit_on_error)."""


class SiteError(GeneratorError):
    """A site file that cannot be used; the message says why."""


def _merge(defaults, given, where):
    out = dict(defaults)
    for key, value in given.items():
        name = f"{where}{key}"
        if key not in defaults:
            raise SiteError(f"unknown setting {name} (known: {', '.join(sorted(defaults))})")
        default = defaults[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise SiteError(f"{name} must be a table")
            out[key] = _merge(default, value, name + ".")
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            out[key] = float(value)
        elif type(value) is not type(default):
            raise SiteError(f"{name} must be {KINDS[type(default)]}, got {value!r}")
        else:
            out[key] = value
    return out


def load_site(path=None):
    """The repository's defaults, overridden by the site file at `path`."""
    with open(DEFAULTS, "rb") as f:
        site = tomllib.load(f)
    if path is not None:
        try:
            with open(path, "rb") as f:
                given = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise SiteError(f"{path}: {e}") from e
        site = _merge(site, given, "")
    if not site["slo_file"].strip():
        raise SiteError("slo_file must not be empty")
    if not site["selector"].strip():
        raise SiteError("selector must not be empty")
    if not site["exporter_url"].startswith(("http://", "https://")):
        raise SiteError(f"exporter_url must be an http:// or https:// URL, got {site['exporter_url']!r}")
    for key, value in site["thresholds"].items():
        if value < 0 or (key.endswith("_share") and value > 1):
            raise SiteError(f"thresholds.{key} out of range: {value}")
    return site


def shown(thresholds):
    """Thresholds as prose shows them: shares as percentages."""
    return {k: (f"{v * 100:g} %" if k.endswith("_share") else f"{v:g}") for k, v in thresholds.items()}


# The generators, in the order their outputs are written. Each renders in
# memory from the site settings (the rules' dashboard links read the
# dashboards' panel ids, the SLO dashboard and interop specs reuse the SLO
# rules' windows and tiers, the Kubernetes objects embed rules and
# dashboards), so none reads another's files and any subset can run alone.
GENERATORS = {
    "prometheus": ROOT / "prometheus" / "generate.py",
    "slo_rules": ROOT / "prometheus" / "slo.py",
    "grafana": ROOT / "grafana" / "generate.py",
    "slo_dashboard": ROOT / "grafana" / "slo.py",
    "slo_interop": ROOT / "prometheus" / "interop.py",
    "kubernetes": ROOT / "deploy" / "kubernetes" / "generate.py",
}


def generator(name):
    """The module of GENERATORS[name] (scripts, several named generate.py,
    so they are loaded by path)."""
    module_name = f"{name}_generate"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, GENERATORS[name])
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]
