//! A stream's history as the API and the page show it: times as Unix ms
//! and RFC 3339 UTC, whether (and since when) the stream is bad in words,
//! and a plain-text summary to paste into a support ticket. Built from the
//! names the request gave (capped as labels) and the stored history; what
//! a callback's sender chose is never echoed beyond those names, and
//! `user_ip` and `stream_param` are never stored at all.
use super::history::{Bounds, History, Interval, Session};
use crate::catalog::{self, EndCause};
use crate::state::streams::StreamId;
use crate::status_page::html::text::hidden;
use crate::status_page::ErrorCount;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt::Write;
use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

/// A stream whose last bad report is at most this old is bad now (as
/// the stream dashboard's `failing_seconds` default).
pub const ONGOING_MS: u64 = 60_000;

/// `GET /api/v1/streams/{domain}/{app}/{stream}`.
#[derive(Debug, Serialize)]
pub struct StreamHistory {
    pub domain: String,
    pub app: String,
    pub stream: String,
    /// When this was read, by the exporter's clock.
    pub now_ms: u64,
    pub now: String,
    /// The start of the bad spell that goes on (bad intervals less than
    /// [`ONGOING_MS`] apart, the last within it of now); `None` when the
    /// stream is not bad now.
    pub bad_since_ms: Option<u64>,
    pub bad_since: Option<String>,
    /// The stream's state in words.
    pub status: String,
    /// Oldest first.
    pub sessions: Vec<SessionView>,
    pub limits: Limits,
    /// The whole story as plain text, UTC times.
    pub summary: String,
}

/// What is kept per stream (`--timeline-*`).
#[derive(Debug, Serialize)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_intervals: usize,
    pub max_age_seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct SessionView {
    /// As sent (cut to 128 bytes); `None` if no callback of it named one.
    pub sequence: Option<String>,
    /// Its start was seen and its end was not.
    pub live: bool,
    /// `None`: no start callback seen.
    pub start_ms: Option<u64>,
    pub start: Option<String>,
    pub end_ms: Option<u64>,
    pub end: Option<String>,
    /// The end callback's `errcode`; `None` with an end: the next session's start closed it.
    pub errcode: Option<i64>,
    pub cause: Option<&'static str>,
    pub cause_description: Option<&'static str>,
    /// The CSS access node (an IP address) and its region.
    pub node: Option<IpAddr>,
    pub region: &'static str,
    /// `push_duration` of its end, else its end (or now) minus its start.
    pub duration_seconds: Option<f64>,
    pub bad_intervals: Vec<IntervalView>,
}

#[derive(Debug, Serialize)]
pub struct IntervalView {
    pub from_ms: u64,
    pub from: String,
    pub to_ms: u64,
    pub to: String,
    pub reports: u32,
    pub errors: Vec<ErrorCount>,
    pub worst_frame_gap_seconds: Option<f64>,
}

/// RFC 3339, UTC, to the millisecond.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// RFC 3339, UTC, to the second: for people.
pub fn utc(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A length of time in words: "45 s", "3 min 50 s", "2 h 5 min", "1 d 3 h".
pub fn words(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => two(s / 60, "min", s % 60, "s"),
        3600..86_400 => two(s / 3600, "h", s % 3600 / 60, "min"),
        _ => two(s / 86_400, "d", s % 86_400 / 3600, "h"),
    }
}

fn two(a: u64, a_unit: &str, b: u64, b_unit: &str) -> String {
    if b == 0 {
        format!("{a} {a_unit}")
    } else {
        format!("{a} {a_unit} {b} {b_unit}")
    }
}

pub fn build(id: StreamId<'_>, h: &History, bounds: &Bounds, now_ms: u64) -> StreamHistory {
    let sessions: Vec<SessionView> = h.sessions().map(|s| session(s, now_ms)).collect();
    let bad_since_ms = bad_since(h, now_ms);
    let status = status(h, bad_since_ms, bounds, now_ms);
    let limits = Limits {
        max_sessions: bounds.max_sessions,
        max_intervals: bounds.max_intervals,
        max_age_seconds: bounds.max_age_ms / 1000,
    };
    let mut view = StreamHistory {
        domain: id.domain.to_owned(),
        app: id.app.to_owned(),
        stream: id.stream.to_owned(),
        now_ms,
        now: rfc3339(now_ms),
        bad_since_ms,
        bad_since: bad_since_ms.map(rfc3339),
        status,
        sessions,
        limits,
        summary: String::new(),
    };
    view.summary = summary(&view);
    view
}

fn session(s: &Session, now_ms: u64) -> SessionView {
    let live = s.start_ms.is_some() && s.end.is_none();
    let cause = s.end.and_then(|e| e.errcode).map(EndCause::of);
    let measured = s.start_ms.map(|start| s.end.map_or(now_ms, |e| e.at_ms).saturating_sub(start));
    #[allow(clippy::cast_precision_loss, reason = "seconds for people")]
    let duration_seconds = s.duration_ms.or(measured).map(|ms| ms as f64 / 1000.0);
    SessionView {
        sequence: (!s.sequence.is_empty()).then(|| s.sequence.to_string()),
        live,
        start_ms: s.start_ms,
        start: s.start_ms.map(rfc3339),
        end_ms: s.end.map(|e| e.at_ms),
        end: s.end.map(|e| rfc3339(e.at_ms)),
        errcode: s.end.and_then(|e| e.errcode),
        cause: cause.map(EndCause::label),
        cause_description: cause.map(EndCause::description),
        node: s.node,
        region: s.region.label(),
        duration_seconds,
        bad_intervals: s.intervals.iter().map(interval).collect(),
    }
}

fn interval(iv: &Interval) -> IntervalView {
    IntervalView {
        from_ms: iv.from_ms,
        from: rfc3339(iv.from_ms),
        to_ms: iv.to_ms,
        to: rfc3339(iv.to_ms),
        reports: iv.reports,
        errors: iv
            .errors
            .as_slice()
            .iter()
            .map(|&(code, count)| ErrorCount {
                error_type: catalog::error_type_label(code),
                error: catalog::error_name(code),
                count: u64::from(count),
            })
            .collect(),
        worst_frame_gap_seconds: (iv.worst_gap_ms > 0).then(|| f64::from(iv.worst_gap_ms) / 1000.0),
    }
}

/// The start of the bad spell that goes on: the latest interval ends
/// within [`ONGOING_MS`] of now, and so on back while intervals (of any
/// session: a reconnect does not end the spell) are less than that apart.
fn bad_since(h: &History, now_ms: u64) -> Option<u64> {
    let mut spans: Vec<(u64, u64)> =
        h.sessions().flat_map(|s| s.intervals.iter().map(|iv| (iv.from_ms, iv.to_ms))).collect();
    spans.sort_unstable();
    let &(mut since, last) = spans.last()?;
    if now_ms.saturating_sub(last) > ONGOING_MS {
        return None;
    }
    for &(from, to) in spans.iter().rev().skip(1) {
        if since.saturating_sub(to) > ONGOING_MS {
            break;
        }
        since = since.min(from);
    }
    Some(since)
}

fn status(h: &History, bad_since: Option<u64>, bounds: &Bounds, now_ms: u64) -> String {
    if let Some(since) = bad_since {
        return format!("bad since {} ({})", utc(since), words(now_ms.saturating_sub(since)));
    }
    let latest = h.sessions().filter(|s| s.start_ms.is_some() || s.end.is_some()).max_by_key(|s| s.last_ms);
    if let Some((end, errcode)) = latest.and_then(|s| s.end.and_then(|e| e.errcode.map(|c| (e, c)))) {
        let cause = EndCause::of(errcode);
        if cause.is_abnormal() {
            return format!(
                "down since {} ({}): the push ended with errcode {errcode} ({}) and has not started again",
                utc(end.at_ms),
                words(now_ms.saturating_sub(end.at_ms)),
                cause.label()
            );
        }
    }
    let last_bad = h.sessions().flat_map(|s| s.intervals.iter()).max_by_key(|iv| iv.to_ms);
    match last_bad {
        Some(iv) => format!(
            "not bad now; the last bad interval ended {} ({} ago)",
            utc(iv.to_ms),
            words(now_ms.saturating_sub(iv.to_ms))
        ),
        None => format!("no bad interval in the last {}", words(bounds.max_age_ms)),
    }
}

/// `s` with the characters that show nothing or reorder text (a newline
/// too) written out as `\u{202E}`, as the status page shows names: a name
/// cannot add a line to the summary or disguise itself.
fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if hidden(c) {
            let _ = write!(out, "\\u{{{:04X}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The story as plain text for a support ticket: UTC times, nodes, errors.
fn summary(v: &StreamHistory) -> String {
    let mut out = String::with_capacity(512 + 256 * v.sessions.len());
    let (domain, app, stream) = (visible(&v.domain), visible(&v.app), visible(&v.stream));
    let _ = writeln!(out, "Stream: {domain} / {app} / {stream}");
    let _ = writeln!(out, "As of: {} (UTC, the exporter's clock)", utc(v.now_ms));
    let _ = writeln!(out, "Status: {}", v.status);
    let _ = writeln!(out, "Push sessions, oldest first ({}):", v.sessions.len());
    for (i, s) in v.sessions.iter().enumerate() {
        let _ = write!(out, "{}. sequence {}", i + 1, visible(s.sequence.as_deref().unwrap_or("unknown")));
        match s.node {
            Some(node) => {
                let _ = writeln!(out, ", node {node} ({})", s.region);
            }
            None => out.push_str(", node unknown\n"),
        }
        let start = s.start_ms.map_or_else(|| "not seen".to_owned(), utc);
        let _ = write!(out, "   start {start}");
        match (s.end_ms, s.errcode, s.cause) {
            (Some(end), Some(errcode), Some(cause)) => {
                let _ = write!(out, ", end {} with errcode {errcode} ({cause})", utc(end));
            }
            (Some(end), _, _) => {
                let _ = write!(out, ", ended by {} (no end callback)", utc(end));
            }
            _ if s.live => out.push_str(", live"),
            _ => out.push_str(", end not seen"),
        }
        if let Some(d) = s.duration_seconds {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "whole ms of a duration")]
            let _ = write!(out, ", {}", words((d * 1000.0) as u64));
        }
        out.push('\n');
        for iv in &s.bad_intervals {
            let _ = write!(
                out,
                "   bad {} to {} ({}, {}): ",
                utc(iv.from_ms),
                utc(iv.to_ms),
                words(iv.to_ms - iv.from_ms),
                reports(iv.reports)
            );
            for (j, e) in iv.errors.iter().enumerate() {
                let sep = if j > 0 { ", " } else { "" };
                let _ = write!(out, "{sep}{} (type {}) x {}", e.error, e.error_type, e.count);
            }
            if let Some(gap) = iv.worst_frame_gap_seconds {
                let _ = write!(out, "; worst frame gap {gap:.3} s");
            }
            out.push('\n');
        }
    }
    out
}

/// "1 report", "3 reports".
pub fn reports(n: u32) -> String {
    format!("{n} report{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::super::history::{Bad, Facts};
    use super::*;
    use crate::catalog::Region;

    const T: u64 = 1_764_000_000_000;
    const BOUNDS: Bounds =
        Bounds { max_sessions: 64, max_intervals: 512, max_age_ms: 86_400_000, live_ttl_ms: 1 << 40 };
    const ID: StreamId<'static> = StreamId { domain: "push.example.com", app: "live", stream: "room-1001" };

    fn report(h: &mut History, session: u64, from_s: u64, errors: &[(u8, u64)], gap_ms: u32) {
        let bad = Bad { from_ms: T + from_s * 1000, to_ms: T + (from_s + 5) * 1000, errors, worst_gap_ms: gap_ms };
        h.report(session, "seq", &Facts::default(), &bad);
    }

    #[test]
    fn names_cannot_add_lines_to_the_summary() {
        let mut h = History::new(10);
        h.start(1, "q\nStatus: fine", T, (None, Region::Unknown), None);
        let id = StreamId { domain: "d", app: "a", stream: "s\u{202E}\nStatus: fine" };
        let v = build(id, &h, &BOUNDS, T);
        assert_eq!(v.summary.lines().filter(|l| l.starts_with("Status:")).count(), 1, "{}", v.summary);
        assert!(v.summary.contains("Stream: d / a / s\\u{202E}\\u{000A}Status: fine\n"), "{}", v.summary);
        assert!(v.summary.contains("1. sequence q\\u{000A}Status: fine,"), "{}", v.summary);
    }

    #[test]
    fn words_read_naturally() {
        assert_eq!(words(45_900), "45 s");
        assert_eq!(words(230_000), "3 min 50 s");
        assert_eq!(words(3_600_000), "1 h");
        assert_eq!(words(7_500_000), "2 h 5 min");
        assert_eq!(words(97_200_000), "1 d 3 h");
    }

    #[test]
    fn bad_since_spans_short_pauses_and_reconnects_and_ends_with_the_errors() {
        let mut h = History::new(10);
        h.start(1, "one", T, ("198.51.100.20".parse().ok(), Region::Mainland), None);
        report(&mut h, 1, 100, &[(6, 2)], 3046);
        report(&mut h, 1, 150, &[(6, 1)], 0);
        h.end(1, "one", T + 160_000, 13, None);
        h.start(2, "two", T + 170_000, (None, Region::Unknown), None);
        report(&mut h, 2, 180, &[(7, 1)], 0);
        let v = build(ID, &h, &BOUNDS, T + 200_000);
        assert_eq!(v.bad_since_ms, Some(T + 100_000), "{v:#?}");
        assert_eq!(v.status, "bad since 2025-11-24T16:01:40Z (1 min 40 s)");
        // Quiet for more than a minute: not bad now.
        let v = build(ID, &h, &BOUNDS, T + 246_000);
        assert_eq!(
            (v.bad_since_ms, v.status.as_str()),
            (None, "not bad now; the last bad interval ended 2025-11-24T16:03:05Z (1 min 1 s ago)")
        );
        let first = &v.sessions[0];
        assert_eq!(
            (first.errcode, first.cause, first.duration_seconds),
            (Some(13), Some("pusher_network"), Some(160.0))
        );
        assert_eq!(first.bad_intervals[0].worst_frame_gap_seconds, Some(3.046));
        assert_eq!(first.bad_intervals[0].from, "2025-11-24T16:01:40.000Z");
        assert!(v.sessions[1].live && v.sessions[1].end.is_none());
    }

    #[test]
    fn an_abnormal_end_without_a_restart_is_down() {
        let mut h = History::new(10);
        h.start(1, "one", T, (None, Region::Unknown), None);
        h.end(1, "one", T + 60_000, 8, Some(60_000));
        let v = build(ID, &h, &BOUNDS, T + 660_000);
        assert_eq!(
            v.status,
            "down since 2025-11-24T16:01:00Z (10 min): the push ended with errcode 8 (no_data) and has not started again"
        );
        let mut quiet = History::new(10);
        quiet.start(1, "one", T, (None, Region::Unknown), None);
        assert_eq!(build(ID, &quiet, &BOUNDS, T).status, "no bad interval in the last 1 d");
    }

    #[test]
    fn the_summary_tells_the_whole_story_in_utc() {
        let mut h = History::new(10);
        h.start(1, "2397382934793123847", T, ("198.51.100.20".parse().ok(), Region::Mainland), None);
        report(&mut h, 1, 10, &[(6, 4), (7, 1)], 3046);
        h.end(1, "2397382934793123847", T + 30_000, 13, Some(30_000));
        report(&mut h, 9, 40, &[(1, 1)], 0);
        let v = build(ID, &h, &BOUNDS, T + 50_000);
        assert_eq!(
            v.summary,
            "Stream: push.example.com / live / room-1001\n\
             As of: 2025-11-24T16:00:50Z (UTC, the exporter's clock)\n\
             Status: bad since 2025-11-24T16:00:10Z (40 s)\n\
             Push sessions, oldest first (2):\n\
             1. sequence 2397382934793123847, node 198.51.100.20 (mainland)\n   \
             start 2025-11-24T16:00:00Z, end 2025-11-24T16:00:30Z with errcode 13 (pusher_network), 30 s\n   \
             bad 2025-11-24T16:00:10Z to 2025-11-24T16:00:15Z (5 s, 1 report): video_frame_late (type 6) x 4, \
             audio_frame_late (type 7) x 1; worst frame gap 3.046 s\n\
             2. sequence seq, node unknown\n   \
             start not seen, end not seen\n   \
             bad 2025-11-24T16:00:40Z to 2025-11-24T16:00:45Z (5 s, 1 report): video_timestamp_rollback (type 1) x 1\n"
        );
    }
}
