//! The status page as one server-rendered HTML document: inline CSS, no
//! JavaScript, refreshing itself. Every sender-controlled value (stream
//! names, reasons) goes through [`escape`]; how values are written
//! as text is in [`text`].
use super::refusals::GROUPS_KEPT;
use super::slo::{SloView, TOP_BAD_STREAMS};
use super::window::{MAX_TRACKED, RECENT_SECS};
use super::{Bound, StatusPage, REPORTS_SHOWN, TOP_STREAMS};
use crate::ingest::outcome::OutcomeKind;
use std::fmt::Write;
use std::time::Duration;
use text::{ago, count, escape, percent, thousands, time};

pub(crate) mod text;

/// Seconds between the page's own refreshes.
pub const REFRESH_SECS: u32 = 5;
/// (domain, app) pairs listed in the summary, the most troubled first.
const APPS_SHOWN: usize = 50;
/// CSS access nodes listed, the worst bad share first.
const NODES_SHOWN: usize = 20;

const STYLE: &str = "
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--ok:#2f9e44;--warn:#e8590c;--bad:#c92a2a;--info:#1c7ed6}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
header{background:#243b53;color:#fff;padding:14px 24px;display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 24px}
header h1{font-size:20px;margin:0;font-weight:600}
header .meta{color:#bcccdc}
header nav{margin-left:auto}
header nav a{color:#fff;margin-left:16px;text-decoration:none;border-bottom:1px solid #829ab1}
main{max-width:1280px;margin:0 auto;padding:16px 24px 32px}
.banner{border-radius:6px;padding:10px 14px;margin:0 0 14px;border-left:5px solid}
.banner.warn{background:#fff4e6;border-color:var(--warn)}
.banner.info{background:#e7f5ff;border-color:var(--info)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin-bottom:16px;overflow-x:auto}
h2{font-size:15px;margin:0 0 8px}
h2 small{font-weight:normal;color:var(--muted);margin-left:6px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
tr:last-child td{border-bottom:none}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:var(--muted)}
.empty{color:var(--muted);font-style:italic;padding:6px 0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
.mono{overflow-wrap:anywhere}
.nowrap,th{white-space:nowrap}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff;background:var(--muted)}
.badge.ok{background:var(--ok)}.badge.info{background:var(--info)}.badge.neutral{background:#868e96}
.badge.warn{background:var(--warn)}.badge.bad{background:var(--bad)}
.bar{height:10px;background:var(--line);border-radius:5px;overflow:hidden;min-width:120px;flex:1}
.gauge{display:flex;align-items:center;gap:8px}.gauge span{width:48px;text-align:right;font-size:12px;color:var(--muted)}
dl.legend{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:10px 0 0;font-size:12.5px;color:var(--muted)}dl.legend dt{font-weight:600}dl.legend dd{margin:0}
.bar div{height:100%;background:var(--ok)}
a.stream{color:inherit;text-decoration:none;border-bottom:1px dotted var(--muted)}
.bar div.high{background:var(--warn)}.bar div.full{background:var(--bad)}
footer{color:var(--muted);font-size:12px;margin-top:8px}
";

/// The whole page.
pub fn render(s: &StatusPage) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>CSS Push Exporter status</title><style>{STYLE}</style></head><body>\
         <header><h1>CSS Push Exporter</h1><span class=\"meta\">version {} · up {}</span>\
         <nav><a href=\"metrics\">Metrics</a><a href=\"-/healthy\">Health</a><a href=\"-/ready\">Ready</a>\
         <a href=\"api/v1/status\">JSON</a></nav></header><main>",
        escape(s.version),
        humantime::format_duration(Duration::from_secs(s.uptime_seconds)),
    );
    banners(&mut out, s);
    slo_banner(&mut out, &s.slo);
    // What an incident needs first: who is affected, and the worst streams.
    out.push_str("<div class=\"grid\">");
    apps(&mut out, s);
    top_streams(&mut out, s);
    out.push_str("</div><div class=\"grid\">");
    top_bad_streams(&mut out, &s.slo, super::SLO_SPAN_SECS);
    slo_accounting(&mut out, &s.slo);
    out.push_str("</div>");
    // Then "is it CSS or us?": the access nodes the pushes went through.
    nodes(&mut out, s);
    refused(&mut out, s);
    callbacks(&mut out, s);
    reports(&mut out, s);
    out.push_str("<div class=\"grid\">");
    listeners(&mut out, s);
    bounds(&mut out, &s.bounds);
    out.push_str("</div>");
    let _ = writeln!(
        out,
        "<footer>Refreshes every {REFRESH_SECS} s. Times are UTC by the exporter's clock ({}).</footer>\
         </main></body></html>",
        time(s.now)
    );
    out
}

fn banners(out: &mut String, s: &StatusPage) {
    if !s.callbacks_authenticated {
        out.push_str(
            "<p class=\"banner warn\" id=\"unauthenticated\"><strong>Callbacks are not authenticated.</strong> \
             No <code>--callback-key</code> is set, so anyone who can reach <code>/callback</code> can post \
             errors. Set the callback key from the CSS console (<code>CSS_PUSH_CALLBACK_KEY</code>).</p>",
        );
    }
    if s.callbacks.is_empty() {
        out.push_str(
            "<p class=\"banner info\"><strong>No callback has arrived yet.</strong> Check that the CSS callback \
             template points at <code>http://&lt;this host&gt;/callback</code> on the callback listener below, is \
             bound to your push domain, and that nothing in between (firewall, proxy) blocks it.</p>",
        );
    }
}

fn listeners(out: &mut String, s: &StatusPage) {
    out.push_str("<section><h2>Listeners</h2><table><tr><th>address</th><th>serves</th><th>protection</th></tr>");
    for l in &s.listeners {
        let protection = match (l.tls, l.basic_auth) {
            (true, true) => "TLS; basic auth (not on /callback)",
            (true, false) => "TLS",
            (false, true) => "basic auth (not on /callback)",
            (false, false) => "none",
        };
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{protection}</td></tr>",
            l.address,
            l.serves.join(" ")
        );
    }
    let auth = if s.callbacks_authenticated { "signature checked (callback key set)" } else { "not checked" };
    let _ = write!(out, "</table><p class=\"muted\">Callbacks: {auth}.</p>");
    match &s.state_file {
        None => out.push_str("<p class=\"muted\">State file: none (<code>--state-file</code> unset): a restart forgets live streams and the callback memory.</p>"),
        Some(f) => {
            let last = match f.last_write {
                Some(t) => format!("last written {}", ago(s.now.saturating_sub(t))),
                None => "not written yet".to_owned(),
            };
            let _ = write!(
                out,
                "<p class=\"muted\" id=\"state-file\">State file <code>{}</code>: {last}, every {} s; {}, {} failed; {} restored at start.</p>",
                escape(&f.path),
                f.interval_seconds,
                count(f.writes_ok, "write", "writes"),
                thousands(f.writes_failed),
                count(f.restored_streams, "stream", "streams")
            );
        }
    }
    out.push_str("</section>");
}

fn bounds(out: &mut String, bounds: &[Bound]) {
    out.push_str("<section><h2>Bounds<small>how full each limit is</small></h2><table>");
    out.push_str("<tr><th>what</th><th class=\"num\">used</th><th class=\"num\">limit</th><th></th></tr>");
    for b in bounds {
        #[allow(clippy::cast_precision_loss, reason = "a percentage for a bar")]
        let percent = if b.limit == 0 { 100.0 } else { (b.used as f64 * 100.0 / b.limit as f64).min(100.0) };
        // Anything in use shows as a sliver.
        let width = if b.used > 0 { percent.max(1.0) } else { 0.0 };
        let level = if percent >= 100.0 {
            "full"
        } else if percent >= 80.0 {
            "high"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr><td>{} <span class=\"muted mono nowrap\">{}</span></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td><div class=\"gauge\"><div class=\"bar\"><div class=\"{level}\" style=\"width:{width:.1}%\"></div></div>\
             <span>{percent:.1}%</span></div></td></tr>",
            escape(b.name),
            escape(b.flag),
            thousands(b.used),
            thousands(b.limit)
        );
    }
    out.push_str("</table></section>");
}

fn callbacks(out: &mut String, s: &StatusPage) {
    out.push_str(
        "<section><h2>Callbacks<small>by event type and outcome, since start</small></h2>\
         <table><tr><th>event type</th><th>outcome</th><th class=\"num\">count</th><th>last seen</th></tr>",
    );
    for c in &s.callbacks {
        let _ = write!(
            out,
            "<tr><td><span class=\"mono\">{}</span> <span class=\"muted\">{}</span></td><td>{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            c.event_type.label(),
            c.event,
            badge(c.outcome),
            thousands(c.count),
            ago(c.seconds_ago)
        );
    }
    end_table(out, s.callbacks.len(), "None yet.");
    out.push_str("</section>");
}

fn refused(out: &mut String, s: &StatusPage) {
    let _ = write!(
        out,
        "<section id=\"refused\"><h2>Refused callbacks<small>by peer, outcome and reason (at most {GROUPS_KEPT}), \
         latest first; the peer is the TCP sender, or with <code>--trusted-proxy</code> the client a trusted \
         proxy forwarded for</small></h2><table><tr><th>last seen</th><th>peer</th><th>event type</th><th>outcome</th>\
         <th class=\"num\">count</th><th>reason</th></tr>",
    );
    for r in &s.refused {
        let peer = r.peer.map(|p| p.to_string()).unwrap_or_else(|| "?".to_owned());
        let _ = write!(
            out,
            "<tr><td class=\"nowrap\">{}</td><td class=\"mono\">{peer}</td><td class=\"mono\">{}</td><td>{}</td>\
             <td class=\"num\" title=\"since {}\">{}</td><td class=\"mono\">{}</td></tr>",
            when(r.last_seen, r.seconds_ago),
            r.event_type.label(),
            badge(r.outcome),
            time(r.first_seen),
            thousands(r.count),
            escape(&r.reason)
        );
    }
    end_table(out, s.refused.len(), "None refused.");
    if s.refused_groups_evicted > 0 {
        let n = s.refused_groups_evicted;
        let groups = if n == 1 { "older group was" } else { "older groups were" };
        let _ = write!(out, "<p class=\"muted\">{} {groups} replaced by newer ones.</p>", thousands(n));
    }
    if !s.refused.is_empty() {
        refusal_legend(out);
    }
    out.push_str("</section>");
}

fn reports(out: &mut String, s: &StatusPage) {
    let _ = write!(
        out,
        "<section id=\"reports\"><h2>Accepted push error reports<small>the last {REPORTS_SHOWN}, newest first\
         </small></h2><table><tr><th>time</th><th>domain / app / stream</th><th>errors</th>\
         <th class=\"num\">worst frame gap</th></tr>",
    );
    for r in &s.reports {
        let _ = write!(
            out,
            "<tr><td class=\"nowrap\">{}</td><td class=\"mono\">{}</td><td>",
            when(r.time, r.seconds_ago),
            path(&r.domain, &r.app, &r.stream, &r.page)
        );
        for (i, e) in r.errors.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            let _ = write!(out, "{sep}{} <span class=\"muted\">({})</span> × {}", e.error, e.error_type, e.count);
        }
        match r.worst_frame_gap_seconds {
            Some(gap) => {
                let _ = write!(out, "</td><td class=\"num\">{gap:.3} s</td></tr>");
            }
            None => out.push_str("</td><td class=\"num muted\">–</td></tr>"),
        }
    }
    end_table(out, s.reports.len(), "None accepted yet.");
    out.push_str("</section>");
}

fn top_streams(out: &mut String, s: &StatusPage) {
    let t = &s.top_streams;
    let _ = write!(
        out,
        "<section id=\"top\"><h2>Streams with the most errors<small>top {TOP_STREAMS} of {} over the last {} min\
         </small></h2><table><tr><th>domain / app / stream</th><th class=\"num\">errors</th>\
         <th class=\"num\">reports</th><th>last report</th></tr>",
        thousands(t.streams_with_errors as u64),
        t.window_seconds / 60
    );
    for st in &t.streams {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"nowrap\" title=\"first in the window: {}\">{}</td></tr>",
            path(&st.domain, &st.app, &st.stream, &st.page),
            thousands(st.errors),
            thousands(st.reports),
            time(st.first_seen),
            ago(st.seconds_ago)
        );
    }
    end_table(out, t.streams.len(), "No errors reported in the window.");
    if t.dropped_reports > 0 {
        let _ = write!(
            out,
            "<p class=\"banner warn\" id=\"dropped\">{} ({}) of further streams in the window {} not counted \
             here: at most {MAX_TRACKED} streams are tracked. <code>css_push_errors_total</code> counts them all.</p>",
            count(t.dropped_reports, "report", "reports"),
            count(t.dropped_errors, "error", "errors"),
            if t.dropped_reports == 1 { "is" } else { "are" }
        );
    }
    out.push_str("</section>");
}

/// The incident summary: per (domain, app), how many streams had errors.
fn apps(out: &mut String, s: &StatusPage) {
    let troubled = s.apps.iter().filter(|a| a.streams_with_errors > 0).count();
    let streams: u64 = s.apps.iter().map(|a| a.streams_with_errors).sum();
    let _ = write!(
        out,
        "<section id=\"apps\"><h2>Incident summary<small>streams with errors in the last {} min, per (domain, \
         app); live streams from push start and end callbacks</small></h2>",
        RECENT_SECS / 60
    );
    if troubled > 0 {
        let _ = write!(
            out,
            "<p id=\"summary\"><strong>{} in {} had errors in the last {} minutes.</strong></p>",
            count(streams, "stream", "streams"),
            count(troubled as u64, "(domain, app) pair", "(domain, app) pairs"),
            RECENT_SECS / 60
        );
    }
    let _ = write!(
        out,
        "<table><tr><th>domain / app</th><th>had errors</th><th>share of live</th>\
         <th class=\"num\">error-free, {} min</th></tr>",
        super::SLO_SPAN_SECS / 60
    );
    for a in s.apps.iter().take(APPS_SHOWN) {
        let share = if a.live > 0 {
            #[allow(clippy::cast_precision_loss, reason = "a percentage for a bar")]
            let percent = (a.streams_with_errors as f64 * 100.0 / a.live as f64).min(100.0);
            let level = if percent >= 50.0 { "full" } else { "high" };
            format!(
                "<div class=\"gauge\"><div class=\"bar\"><div class=\"{level}\" style=\"width:{:.1}%\"></div></div>\
                 <span>{percent:.0}%</span></div>",
                if a.streams_with_errors > 0 { percent.max(1.0) } else { 0.0 }
            )
        } else {
            String::new()
        };
        // "None seen live" means no start or end came (docs/status-page.md:
        // lifecycle callbacks not configured), not that every push ended.
        let what = match (a.streams_with_errors, a.live, a.lifecycle_seen) {
            (n, 0, false) => format!("{}; none seen live", count(n, "stream", "streams")),
            (n, 0, true) => format!("{}; none live now", count(n, "stream", "streams")),
            (n, live, _) => format!("{} of {}", thousands(n), count(live, "live stream", "live streams")),
        };
        // Time, not errors: the SLO's error-free share of live stream-seconds.
        let error_free = match a.slo.as_ref().and_then(|s| s.error_free.map(|f| (f, s.bad_seconds, s.outage_seconds))) {
            Some((share, bad, 0)) => {
                format!("{:.2}% <span class=\"muted\">({} s bad)</span>", share * 100.0, thousands(bad))
            }
            Some((share, bad, outage)) => format!(
                "{:.2}% <span class=\"muted\">({} s bad, {} s of it outage)</span>",
                share * 100.0,
                thousands(bad),
                thousands(outage)
            ),
            None => "<span class=\"muted\">no live time</span>".to_owned(),
        };
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{} / {}</td><td>{what}</td><td>{share}</td><td class=\"num\">{error_free}</td></tr>",
            escape(&a.domain),
            escape(&a.app),
        );
    }
    end_table(
        out,
        s.apps.len(),
        "No live stream and no error seen (live streams need the push and interruption callback URLs too).",
    );
    if let Some(more) = s.apps.len().checked_sub(APPS_SHOWN).filter(|&n| n > 0) {
        let more = count(more as u64, "more pair", "more pairs");
        let _ = write!(out, "<p class=\"muted\">and {more}: see <code>css_push_streams_live</code>.</p>");
    }
    if s.top_streams.dropped_reports > 0 {
        out.push_str(
            "<p class=\"muted\">These are at least the counts: some streams were past the tracking limit.</p>",
        );
    }
    out.push_str("</section>");
}

/// A warning while the accounting drops reports.
fn slo_banner(out: &mut String, v: &SloView) {
    let dropped: u64 = v.saturation.iter().map(|r| r.dropped_reports).sum();
    if dropped > 0 {
        let _ = write!(
            out,
            "<p class=\"banner warn\" id=\"slo-saturated\"><strong>The SLO accounting had no room for {} bad \
             reports.</strong> Their time is in neither side of the error-free share (see SLO accounting below, \
             <code>css_push_slo_dropped_reports_total</code>): raise <code>--max-live-streams</code>, or find who \
             sends reports of streams that never started.</p>",
            thousands(dropped)
        );
    }
}

/// The accounting's rooms and the push ends by cause.
fn slo_accounting(out: &mut String, v: &SloView) {
    out.push_str(
        "<section id=\"slo\"><h2>SLO accounting<small>rooms for bad time, and what found none, since start</small></h2>\
         <table><tr><th>streams</th><th class=\"num\">held</th><th class=\"num\">limit</th>\
         <th class=\"num\">reports dropped</th></tr>",
    );
    for r in &v.saturation {
        let level = if r.dropped_reports > 0 { " class=\"full\"" } else { "" };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\"><span{level}>{}</span></td></tr>",
            escape(r.kind),
            thousands(r.tracked as u64),
            thousands(r.limit as u64),
            thousands(r.dropped_reports)
        );
    }
    out.push_str(
        "</table><h3>Push ends by cause</h3><table><tr><th>cause</th><th>what</th><th class=\"num\">ends</th></tr>",
    );
    for c in &v.end_causes {
        let outage = if c.abnormal { " <span class=\"muted\">(outage if it comes back)</span>" } else { "" };
        let _ = write!(
            out,
            "<tr><td class=\"mono nowrap\">{}</td><td>{}{outage}</td><td class=\"num\">{}</td></tr>",
            escape(c.cause),
            escape(c.description),
            thousands(c.ends)
        );
    }
    out.push_str("</table></section>");
}

/// The streams with the most bad time.
fn top_bad_streams(out: &mut String, v: &SloView, span_secs: u64) {
    let _ = write!(
        out,
        "<section id=\"top-bad\"><h2>Streams with the most bad time<small>top {TOP_BAD_STREAMS} over the last {} \
         min, reports and outages, per SLO</small></h2><table><tr><th>stream</th><th>slo</th>\
         <th class=\"num\">bad seconds</th></tr>",
        span_secs / 60
    );
    for b in &v.top_bad_streams {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{} / {} / {}</td><td>{}</td><td class=\"num\">{:.1}</td></tr>",
            escape(&b.domain),
            escape(&b.app),
            escape(&b.stream),
            escape(&b.slo),
            b.bad_seconds
        );
    }
    end_table(out, v.top_bad_streams.len(), "No stream had bad time lately.");
    out.push_str("</section>");
}

/// Per CSS access node: live streams, bad share over the SLO span against
/// the rest of the fleet, and the last bad second.
fn nodes(out: &mut String, s: &StatusPage) {
    let (bad, live) = s.nodes.iter().fold((0, 0), |(b, l), n| (b + n.bad_seconds, l + n.live_seconds));
    let _ = write!(
        out,
        "<section id=\"nodes\"><h2>CSS access nodes<small>the node and region of each push session (from its push \
         start); bad share of live stream time over {} min, first SLO</small></h2>",
        super::SLO_SPAN_SECS / 60
    );
    if live > 0 {
        let _ = write!(out, "<p>Fleet: <strong>{}</strong> bad.</p>", percent(bad, live));
    }
    out.push_str(
        "<table><tr><th>node</th><th>region</th><th class=\"num\">live streams</th><th class=\"num\">bad share</th>\
         <th class=\"num\">vs the rest</th><th>last bad second</th><th>worst streams on it now</th></tr>",
    );
    for n in s.nodes.iter().take(NODES_SHOWN) {
        let share = if n.live_seconds > 0 {
            format!(
                "{} <span class=\"muted\">({} s of {} s)</span>",
                percent(n.bad_seconds, n.live_seconds),
                thousands(n.bad_seconds),
                thousands(n.live_seconds)
            )
        } else {
            "<span class=\"muted\">no live time</span>".to_owned()
        };
        // The node against the fleet without it: what the degraded-node ticket compares.
        let (rest_bad, rest_live) = (bad - n.bad_seconds, live - n.live_seconds);
        let ratio = match (n.live_seconds, rest_live, rest_bad) {
            (0, ..) | (_, 0, _) => String::new(),
            (_, _, 0) if n.bad_seconds > 0 => "rest: none bad".to_owned(),
            (_, _, 0) => String::new(),
            #[allow(clippy::cast_precision_loss, reason = "a ratio shown")]
            _ => {
                format!("{:.1}×", (n.bad_seconds as f64 / n.live_seconds as f64) / (rest_bad as f64 / rest_live as f64))
            }
        };
        let last_bad = match (n.last_bad, n.last_bad_seconds_ago) {
            (Some(t), Some(ago)) => when(t, ago),
            _ => "<span class=\"muted\">none</span>".to_owned(),
        };
        let streams: Vec<String> = n
            .streams
            .iter()
            .map(|st| {
                format!(
                    "<span class=\"mono\">{}</span> <span class=\"muted\">{} s</span>",
                    path(&st.domain, &st.app, &st.stream, &st.page),
                    thousands(st.bad_seconds)
                )
            })
            .collect();
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{share}</td>\
             <td class=\"num\">{ratio}</td><td>{last_bad}</td><td>{}</td></tr>",
            escape(&n.node),
            n.region,
            thousands(n.live_streams),
            streams.join("<br>"),
        );
    }
    end_table(out, s.nodes.len(), "No push session seen yet (the node comes from push start callbacks).");
    if let Some(more) = s.nodes.len().checked_sub(NODES_SHOWN).filter(|&n| n > 0) {
        let _ =
            write!(out, "<p class=\"muted\">and {more} more nodes: see <code>css_push_node_streams_live</code>.</p>");
    }
    out.push_str("</section>");
}

/// Closes a section's table, saying `when_empty` if it had no rows.
fn end_table(out: &mut String, rows: usize, when_empty: &str) {
    out.push_str("</table>");
    if rows == 0 {
        let _ = write!(out, "<p class=\"empty\">{when_empty}</p>");
    }
}

/// What to check for each kind of refusal, when setting up the callback:
/// every refusal outcome, from the vocabulary.
fn refusal_legend(out: &mut String) {
    out.push_str("<dl class=\"legend\">");
    for kind in OutcomeKind::ALL.into_iter().filter(|k| k.is_refusal()) {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", kind.label(), escape(kind.meaning()));
    }
    out.push_str("</dl>");
}

/// The names, linking the stream's page (its history).
fn path(domain: &str, app: &str, stream: &str, page: &str) -> String {
    format!(
        "<a class=\"stream\" href=\"{}\">{} / {} / <strong>{}</strong></a>",
        escape(page),
        escape(domain),
        escape(app),
        escape(stream)
    )
}

fn badge(outcome: OutcomeKind) -> String {
    // Exhaustive: a new outcome cannot go without its colour.
    let tone = match outcome {
        OutcomeKind::Accepted => "ok",
        OutcomeKind::Duplicate => "info",
        OutcomeKind::Ignored => "neutral",
        OutcomeKind::Malformed | OutcomeKind::TooLarge | OutcomeKind::Timeout => "warn",
        OutcomeKind::Unauthorized | OutcomeKind::Expired => "bad",
    };
    format!("<span class=\"badge {tone}\">{}</span>", outcome.label())
}

/// A time of day (UTC) and how long ago.
fn when(unix_secs: u64, seconds_ago: u64) -> String {
    let time = time(unix_secs);
    // "2025-11-24T16:00:00Z": the time of day, the full date on hover.
    let clock = time.get(11..19).unwrap_or(&time);
    format!("<span title=\"{time}\">{clock}</span> <span class=\"muted\">{}</span>", ago(seconds_ago))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::{Observer, ReportAccepted};
    use crate::observe::callbacks::CallbackTallies;
    use crate::state::key::StreamKey;
    use crate::state::streams::StreamId;
    use crate::status_page::{LiveStreams, PageInputs, Recent};
    use std::sync::Arc;

    #[test]
    fn sender_controlled_text_is_escaped() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
        let s = Recent::new(0, Arc::new(CallbackTallies::new()));
        let evil = "<script>alert(1)</script>";
        let sent = StreamId { domain: evil, app: "a", stream: "s\"><img src=x>" };
        let key = StreamKey::new(sent, 64);
        s.report(&ReportAccepted {
            frame_max: [Some(3.0), None],
            ..ReportAccepted::for_test(sent, &key, &[(6, 1)], 0)
        });
        let bad = crate::slo::BadStream { labels: key.as_str().to_owned(), slo: "push-health".into(), bad_secs: 5.0 };
        let view = PageInputs { slo_top_streams: vec![bad], ..PageInputs::default() };
        let page = render(&s.page(10, view));
        assert!(page.contains("<section id=\"top-bad\">"), "the ranking by bad time is shown");
        assert!(!page.contains("<script") && !page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("id=\"unauthenticated\""));
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
    }

    fn report_from(s: &Recent, app: &str, stream: &str) {
        let id = StreamId { domain: "d", app, stream };
        let key = StreamKey::new(id, 64);
        s.report(&ReportAccepted::for_test(id, &key, &[(6, 1)], 0));
    }

    fn page_with(live: &[(&str, u64)], s: &Recent) -> String {
        let live_streams = live.iter().map(|&(app, live)| LiveStreams { domain: "d".into(), app: app.into(), live });
        let view = PageInputs { authenticated: true, live_streams: live_streams.collect(), ..PageInputs::default() };
        render(&s.page(10, view))
    }

    #[test]
    fn counts_agree_with_their_nouns_and_ended_pushes_are_not_unseen_ones() {
        let s = Recent::new(0, Arc::new(CallbackTallies::new()));
        for (app, stream) in [("one", "a"), ("ended", "b"), ("unseen", "c"), ("unseen", "d")] {
            report_from(&s, app, stream);
        }
        let page = page_with(&[("one", 1), ("ended", 0)], &s);
        assert!(page.contains("<td>1 of 1 live stream</td>"), "{page}");
        assert!(page.contains("<td>1 stream; none live now</td>"), "starts and ends came: {page}");
        assert!(page.contains("<td>2 streams; none seen live</td>"), "no start or end came: {page}");
        assert!(page.contains("4 streams in 3 (domain, app) pairs had errors"), "{page}");
        let s = Recent::new(0, Arc::new(CallbackTallies::new()));
        report_from(&s, "one", "a");
        let page = page_with(&[("one", 40)], &s);
        assert!(page.contains("1 stream in 1 (domain, app) pair had errors"), "{page}");
        assert!(page.contains("<td>1 of 40 live streams</td>"), "{page}");
        assert_eq!(
            (count(0, "x", "xs"), count(1, "x", "xs"), count(1000, "x", "xs")),
            ("0 xs".into(), "1 x".into(), "1\u{202f}000 xs".into())
        );
    }
}
