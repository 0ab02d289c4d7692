//! The stream page (`GET /streams/{domain}/{app}/{stream}`): one
//! server-rendered HTML document, inline CSS and no script (the exporter's
//! Content-Security-Policy holds), with a horizontal timeline of the
//! stream's push sessions and bad intervals, its state in words, the
//! sessions in a table and the support summary as plain text. Every name
//! goes through the status page's `escape`.
use super::view::{rfc3339, utc, words, SessionView, StreamHistory};
use crate::status_page::html::text::escape;
use crate::text::url::stream_page;
use std::fmt::Write;

const STYLE: &str = "
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--ok:#2f9e44;--warn:#e8590c;--bad:#c92a2a;--off:#adb5bd}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
header{background:#243b53;color:#fff;padding:14px 24px;display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 24px}
header h1{font-size:18px;margin:0;font-weight:600;overflow-wrap:anywhere}
header nav{margin-left:auto}header nav a{color:#fff;margin-left:16px;text-decoration:none;border-bottom:1px solid #829ab1}
main{max-width:1280px;margin:0 auto;padding:16px 24px 32px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin-bottom:16px;overflow-x:auto}
h2{font-size:15px;margin:0 0 8px}h2 small{font-weight:normal;color:var(--muted);margin-left:6px}
.state{font-size:16px;font-weight:600;border-left:6px solid var(--ok);padding:10px 14px;border-radius:6px;background:#ebfbee;margin:0 0 16px}
.state.bad{border-color:var(--bad);background:#fff5f5}.state.down{border-color:var(--warn);background:#fff4e6}
.lanes{display:grid;grid-template-columns:90px 1fr;gap:6px 10px;align-items:center}
.lane{position:relative;height:22px;background:var(--bg);border-radius:4px}
.lane div{position:absolute;top:2px;bottom:2px;min-width:3px;border-radius:3px}
.s-live{background:var(--ok)}.s-ended{background:#74c0fc}.s-cut{background:var(--warn)}.s-unknown{background:var(--off)}
.b{background:var(--bad)}
.axis{position:relative;height:18px;font-size:11.5px;color:var(--muted)}
.axis span{position:absolute;white-space:nowrap;transform:translateX(-50%)}.axis span:first-child{transform:none}.axis span:last-child{transform:translateX(-100%)}
.key{font-size:12px;color:var(--muted);margin-top:8px}.key i{display:inline-block;width:12px;height:10px;border-radius:2px;margin:0 4px 0 12px;vertical-align:middle}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.iv td{border-bottom-style:dashed;font-size:13px}tr.iv td:first-child{padding-left:24px}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px;overflow-wrap:anywhere}
.muted{color:var(--muted)}.nowrap{white-space:nowrap}
textarea{width:100%;font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;border:1px solid var(--line);border-radius:6px;padding:8px}
footer{color:var(--muted);font-size:12px;margin-top:8px}
";

/// The page of a stream with a history.
pub fn render(v: &StreamHistory) -> String {
    let mut out = String::with_capacity(8192 + 1024 * v.sessions.len());
    head(&mut out, &format!("{} / {} / {}", v.domain, v.app, v.stream), Some(v));
    let tone = if v.bad_since_ms.is_some() {
        "bad"
    } else if v.status.starts_with("down") {
        "down"
    } else {
        "ok"
    };
    let _ = write!(out, "<p class=\"state {tone}\" id=\"state\">{}</p>", capitalised(&v.status));
    timeline(&mut out, v);
    sessions(&mut out, v);
    let _ = write!(
        out,
        "<section id=\"support\"><h2>For a support ticket<small>plain text, times in UTC</small></h2>\
         <textarea readonly rows=\"{}\" aria-label=\"support summary\">{}</textarea></section>",
        (v.summary.lines().count() * 3 / 2).clamp(6, 60),
        // Line by line: the summary's own newlines stay (names have none left).
        v.summary.lines().map(escape).collect::<Vec<_>>().join("\n")
    );
    let _ = write!(
        out,
        "<footer>Kept per stream: at most {} push sessions and {} merged bad intervals over the last {} \
         (<code>--timeline-max-sessions</code>, <code>--timeline-max-intervals</code>, \
         <code>--timeline-max-age</code>; all streams together within <code>--timeline-max-bytes</code>, the \
         oldest dropped first). Reports whose spans are at most 1 s apart are one interval. Read at {} \
         (UTC, the exporter's clock).</footer></main></body></html>",
        v.limits.max_sessions,
        v.limits.max_intervals,
        words(v.limits.max_age_seconds * 1000),
        rfc3339(v.now_ms)
    );
    out
}

/// The page for a stream with no history: what is kept, and where to look.
pub fn not_found(domain: &str, app: &str, stream: &str) -> String {
    let mut out = String::with_capacity(4096);
    head(&mut out, &format!("{domain} / {app} / {stream}"), None);
    out.push_str(
        "<p class=\"state down\" id=\"state\">No recent history of this stream.</p><section><p>The exporter keeps a \
         stream's push sessions and bad intervals for <code>--timeline-max-age</code> after they happened, for \
         streams it received a push start, push end or push error callback of. Names are matched as the metrics \
         label them: cut to <code>--max-label-length</code> bytes, each one URL-encoded in the path.</p>\
         <p><a href=\"../../../\">The status page</a> links the streams it lists.</p></section></main></body></html>",
    );
    out
}

fn head(out: &mut String, title: &str, v: Option<&StreamHistory>) {
    let title = escape(title);
    let json = v.map_or_else(String::new, |v| {
        format!("<a href=\"../../../api/v1/{}\">JSON</a>", stream_page(&v.domain, &v.app, &v.stream))
    });
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}: stream history</title><style>{STYLE}</style></head><body>\
         <header><h1>{title}</h1><nav><a href=\"../../../\">Status page</a>{json}</nav></header><main>"
    );
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// Where a session's bar begins and ends: its start (else its end less
/// its duration, else its first report) to its end (else now while live,
/// else its last report).
fn extent(s: &SessionView, now_ms: u64) -> (u64, u64) {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "whole ms of a duration")]
    let before_end = s.end_ms.zip(s.duration_seconds).map(|(end, d)| end.saturating_sub((d * 1000.0) as u64));
    let first = s.bad_intervals.first().map(|iv| iv.from_ms);
    let last = s.bad_intervals.last().map(|iv| iv.to_ms);
    let from = s.start_ms.or(before_end).or(first).or(s.end_ms).unwrap_or(now_ms);
    let to = s.end_ms.or(s.live.then_some(now_ms)).or(last).unwrap_or(from);
    (from, to.max(from))
}

fn timeline(out: &mut String, v: &StreamHistory) {
    let firsts = v.sessions.iter().map(|s| {
        let ivs = s.bad_intervals.iter().map(|iv| iv.from_ms);
        ivs.chain([extent(s, v.now_ms).0]).min().unwrap_or(v.now_ms)
    });
    let begin = firsts.min().unwrap_or(v.now_ms).min(v.now_ms.saturating_sub(60_000));
    let span = (v.now_ms - begin).max(1);
    #[allow(clippy::cast_precision_loss, reason = "a position in percent")]
    let at = |t: u64| (t.saturating_sub(begin).min(span) as f64) * 100.0 / span as f64;
    let bar = |out: &mut String, class: &str, from: u64, to: u64, title: &str| {
        let _ = write!(
            out,
            "<div class=\"{class}\" style=\"left:{:.3}%;width:{:.3}%\" title=\"{}\"></div>",
            at(from),
            at(to) - at(from),
            escape(title)
        );
    };
    let _ = write!(
        out,
        "<section id=\"timeline\"><h2>Timeline<small>{} to now, UTC</small></h2><div class=\"lanes\">\
         <span class=\"muted\">sessions</span><div class=\"lane\" id=\"sessions-lane\">",
        utc(begin)
    );
    for s in &v.sessions {
        let (from, to) = extent(s, v.now_ms);
        let class = match (s.live, s.end_ms, s.cause) {
            (true, _, _) => "s-live",
            (_, Some(_), Some("pusher_stopped")) => "s-ended",
            (_, Some(_), _) => "s-cut",
            _ => "s-unknown",
        };
        bar(out, class, from, to, &session_title(s));
    }
    out.push_str("</div><span class=\"muted\">bad</span><div class=\"lane\" id=\"bad-lane\">");
    for iv in v.sessions.iter().flat_map(|s| &s.bad_intervals) {
        let errors: Vec<String> = iv.errors.iter().map(|e| format!("{} x {}", e.error, e.count)).collect();
        let title = format!("{} to {}: {}", utc(iv.from_ms), utc(iv.to_ms), errors.join(", "));
        bar(out, "b", iv.from_ms, iv.to_ms, &title);
    }
    out.push_str("</div><span></span><div class=\"axis\">");
    for i in 0..=4u64 {
        let t = begin + span * i / 4;
        let label = utc(t);
        // The date once the range spans days; the time of day otherwise.
        let shown = if span > 86_400_000 { label.get(5..16) } else { label.get(11..19) };
        let _ = write!(out, "<span style=\"left:{}%\">{}</span>", i * 25, shown.unwrap_or(&label));
    }
    out.push_str(
        "</div></div><p class=\"key\">Sessions:<i class=\"s-live\"></i>live<i class=\"s-ended\"></i>ended by the \
         pusher<i class=\"s-cut\"></i>cut off (abnormal end, or no end callback)<i class=\"s-unknown\"></i>start \
         or end not seen<i class=\"b\"></i>bad interval</p></section>",
    );
}

fn session_title(s: &SessionView) -> String {
    let mut t = format!("sequence {}", s.sequence.as_deref().unwrap_or("unknown"));
    if let Some(node) = s.node {
        let _ = write!(t, ", node {node}");
    }
    if let Some(start) = s.start_ms {
        let _ = write!(t, ", start {}", utc(start));
    }
    if let Some(end) = s.end_ms {
        let _ = write!(t, ", end {}", utc(end));
    }
    if let (Some(code), Some(cause)) = (s.errcode, s.cause) {
        let _ = write!(t, " (errcode {code}, {cause})");
    }
    t
}

fn sessions(out: &mut String, v: &StreamHistory) {
    let _ = write!(
        out,
        "<section id=\"sessions\"><h2>Push sessions<small>{} kept, oldest first; bad intervals under each</small></h2>\
         <table><tr><th>sequence</th><th>start</th><th>end</th><th>end cause</th><th class=\"num\">duration</th>\
         <th>access node</th></tr>",
        v.sessions.len()
    );
    for s in &v.sessions {
        let start = s.start_ms.map_or_else(|| "<span class=\"muted\">not seen</span>".to_owned(), utc);
        let end = match s.end_ms {
            Some(end) => utc(end),
            None if s.live => "<strong>live</strong>".to_owned(),
            None => "<span class=\"muted\">not seen</span>".to_owned(),
        };
        let cause = match (s.errcode, s.cause, s.cause_description) {
            (Some(code), Some(cause), Some(what)) => {
                format!("<span title=\"{}\">errcode {code}: {cause}</span>", escape(what))
            }
            _ if s.end_ms.is_some() => "<span class=\"muted\">no end callback; the next start closed it</span>".into(),
            _ => String::new(),
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "whole ms of a duration")]
        let duration = s.duration_seconds.map_or_else(String::new, |d| words((d * 1000.0) as u64));
        let node = match s.node {
            Some(node) => format!("{node} <span class=\"muted\">{}</span>", s.region),
            None => "<span class=\"muted\">unknown</span>".to_owned(),
        };
        let sequence = s.sequence.as_deref().map_or_else(|| "unknown".into(), escape);
        let _ = write!(
            out,
            "<tr class=\"session\"><td class=\"mono\">{sequence}</td><td class=\"nowrap\">{start}</td>\
             <td class=\"nowrap\">{end}</td><td>{cause}</td><td class=\"num\">{duration}</td><td class=\"mono\">{node}</td></tr>"
        );
        for iv in &s.bad_intervals {
            let errors: Vec<String> = iv
                .errors
                .iter()
                .map(|e| format!("{} <span class=\"muted\">({})</span> × {}", e.error, e.error_type, e.count))
                .collect();
            let gap = iv.worst_frame_gap_seconds.map_or_else(String::new, |g| format!("; worst frame gap {g:.3} s"));
            let _ = write!(
                out,
                "<tr class=\"iv\"><td colspan=\"2\" class=\"nowrap\">bad {} to {}</td><td colspan=\"3\">{}{gap}</td>\
                 <td class=\"num\">{}, {}</td></tr>",
                utc(iv.from_ms),
                utc(iv.to_ms).get(11..).unwrap_or_default(),
                errors.join(", "),
                words(iv.to_ms - iv.from_ms),
                super::view::reports(iv.reports)
            );
        }
    }
    out.push_str("</table></section>");
}

#[cfg(test)]
mod tests {
    use super::super::history::{Bad, Bounds, Facts, History};
    use super::super::view::build;
    use super::*;
    use crate::catalog::Region;
    use crate::state::streams::StreamId;

    const T: u64 = 1_764_000_000_000;

    const BOUNDS: Bounds =
        Bounds { max_sessions: 64, max_intervals: 512, max_age_ms: 86_400_000, live_ttl_ms: 1 << 40 };

    #[test]
    fn a_session_seen_only_by_its_end_is_drawn_from_its_duration() {
        let mut h = History::new(10);
        h.end(1, "q", T + 600_000, 13, Some(300_000));
        let page = render(&build(StreamId { domain: "d", app: "a", stream: "s" }, &h, &BOUNDS, T + 600_000));
        assert!(page.contains("<div class=\"s-cut\" style=\"left:0.000%;width:100.000%\""), "{page}");
        assert!(page.contains("Down since 2025-11-24T16:10:00Z"), "{page}");
    }

    #[test]
    fn names_are_text_and_the_page_has_no_script() {
        let evil = StreamId { domain: "d", app: "<script>alert(1)</script>", stream: "s\"><img src=x>" };
        let mut h = History::new(10);
        h.start(1, "<b>seq</b>", T, ("198.51.100.20".parse().ok(), Region::Mainland), None);
        let bad = Bad { from_ms: T + 1000, to_ms: T + 6000, errors: &[(6, 2)], worst_gap_ms: 3046 };
        h.report(1, "", &Facts::default(), &bad);
        let page = render(&build(evil, &h, &BOUNDS, T + 10_000));
        assert!(!page.contains("<script") && !page.contains("<img") && !page.contains("<b>seq"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
        assert!(page.contains("api/v1/streams/d/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/s%22%3E%3Cimg%20src%3Dx%3E"));
        assert!(page.contains("id=\"state\">Bad since 2025-11-24T16:00:01Z (9 s)</p>"), "{page}");
        assert_eq!(page.matches("<div class=\"b\"").count(), 1);
        assert!(page.contains("class=\"s-live\""));
    }
}
