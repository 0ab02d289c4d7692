//! How the page's sections are built from what the rings and the
//! exporter hold: the top streams, the (domain, app) pairs, the nodes, and
//! the names and links they show.
use super::content::{AppSummary, LiveStreams, NodeStream, NodeSummary, SloSummary, StreamErrors, TopStreams};
use super::window::{self, WindowView};
use crate::nodes::NodeHealth;
use crate::slo::AppHealth;
use crate::text::quote::{push_capped, QUOTE_BYTES};
use crate::text::{parse_labels, url};
use std::borrow::Cow;

/// Streams listed by errors over [`window::WINDOW_SECS`].
pub const TOP_STREAMS: usize = 10;

/// The page of the stream keyed `labels` (`domain="..",app="..",stream=".."`).
pub(super) fn page(labels: &str) -> String {
    let values: Vec<String> = parse_labels(labels).into_iter().map(|(_, v)| v).collect();
    match &values[..] {
        [domain, app, stream] => url::stream_page(domain, app, stream),
        _ => String::new(),
    }
}

/// A name as shown: cut short, borrowed unless it had to be cut.
#[inline]
pub(super) fn cut(value: &str) -> Cow<'_, str> {
    if value.len() <= QUOTE_BYTES {
        return Cow::Borrowed(value);
    }
    let mut out = String::new();
    push_capped(&mut out, value, QUOTE_BYTES);
    Cow::Owned(out)
}

/// The streams with the most errors in the window.
pub(super) fn top_streams(window: WindowView, now_secs: u64) -> TopStreams {
    let tracked = window.streams.len();
    let mut streams: Vec<StreamErrors> = window
        .streams
        .into_iter()
        .filter(|s| s.totals.errors > 0)
        .map(|s| StreamErrors {
            first_seen: s.totals.first_secs.unwrap_or(s.last_secs),
            last_seen: s.last_secs,
            seconds_ago: now_secs.saturating_sub(s.last_secs),
            domain: s.key.domain,
            app: s.key.app,
            stream: s.key.stream,
            errors: s.totals.errors,
            reports: s.totals.reports,
            page: page(&s.key_labels),
        })
        .collect();
    streams.sort_by(|a, b| {
        b.errors.cmp(&a.errors).then_with(|| (&a.domain, &a.app, &a.stream).cmp(&(&b.domain, &b.app, &b.stream)))
    });
    let streams_with_errors = streams.len();
    streams.truncate(TOP_STREAMS);
    TopStreams {
        window_seconds: window::WINDOW_SECS,
        streams_tracked: tracked,
        streams_tracked_limit: window::MAX_TRACKED,
        streams_with_errors,
        dropped_reports: window.dropped.reports,
        dropped_errors: window.dropped.errors,
        streams,
    }
}

/// Per (domain, app): its live streams and those with recent errors, the
/// pairs with the most streams in trouble first.
pub(super) fn apps(live: Vec<LiveStreams>, health: &[AppHealth], window: &WindowView) -> Vec<AppSummary> {
    let mut recent = window.recent_errors.clone();
    let slo = |domain: &str, app: &str| {
        let h = health.iter().find(|h| h.domain == domain && h.app == app)?;
        let &(_, bad, live) = h.slos.first()?;
        Some(SloSummary {
            bad_seconds: bad,
            live_seconds: live,
            outage_seconds: h.outage_secs,
            error_free: h.error_free(0),
        })
    };
    let mut out: Vec<AppSummary> = live
        .into_iter()
        .map(|l| {
            let streams_with_errors = recent.remove(&(l.domain.clone(), l.app.clone())).unwrap_or(0);
            let slo = slo(&l.domain, &l.app);
            AppSummary { domain: l.domain, app: l.app, live: l.live, lifecycle_seen: true, streams_with_errors, slo }
        })
        .collect();
    // Pairs with errors and no push start or end remembered.
    out.extend(recent.into_iter().map(|((domain, app), n)| {
        let slo = slo(&domain, &app);
        AppSummary { domain, app, live: 0, lifecycle_seen: false, streams_with_errors: n, slo }
    }));
    out.sort_by(|a, b| {
        (b.streams_with_errors, b.live)
            .cmp(&(a.streams_with_errors, a.live))
            .then_with(|| (&a.domain, &a.app).cmp(&(&b.domain, &b.app)))
    });
    out
}

/// Live streams per (domain, app) from `domain="..",app=".."` label sets,
/// most live first.
pub fn live_streams(per_app: hashbrown::HashMap<String, u64>) -> Vec<LiveStreams> {
    let mut out: Vec<LiveStreams> = per_app
        .into_iter()
        .map(|(labels, live)| {
            let mut values = parse_labels(&labels).into_iter().map(|(_, value)| value);
            let domain = values.next().unwrap_or_default();
            LiveStreams { domain, app: values.next().unwrap_or_default(), live }
        })
        .collect();
    out.sort_by(|a, b| b.live.cmp(&a.live).then_with(|| (&a.domain, &a.app).cmp(&(&b.domain, &b.app))));
    out
}

/// The nodes as the page shows them.
pub(super) fn nodes(health: Vec<NodeHealth>, now_secs: u64) -> Vec<NodeSummary> {
    health
        .into_iter()
        .map(|h| NodeSummary {
            bad_share: h.bad_share(),
            last_bad_seconds_ago: h.last_bad_secs.map(|t| now_secs.saturating_sub(t)),
            last_bad: h.last_bad_secs,
            node: h.node,
            region: h.region,
            live_streams: h.live_streams,
            bad_seconds: h.bad_secs,
            live_seconds: h.live_secs,
            streams: h.streams.into_iter().map(|(labels, bad_seconds)| node_stream(&labels, bad_seconds)).collect(),
        })
        .collect()
}

/// A stream of a node, from its label set.
fn node_stream(labels: &str, bad_seconds: u64) -> NodeStream {
    let mut values = parse_labels(labels).into_iter().map(|(_, value)| value);
    let mut next = || values.next().unwrap_or_default();
    let (domain, app, stream) = (next(), next(), next());
    // The page is named by the whole label values; the table shows them cut.
    let page = url::stream_page(&domain, &app, &stream);
    let shown = |value: &str| cut(value).into_owned();
    NodeStream { domain: shown(&domain), app: shown(&app), stream: shown(&stream), bad_seconds, page }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::streams::StreamId;
    use crate::status_page::tests::{id, inputs, recent, report};
    use crate::status_page::PageInputs;

    #[test]
    fn each_pair_shows_its_error_free_share_or_no_data() {
        let health = |app: &str, bad, live| AppHealth {
            domain: "d".into(),
            app: app.into(),
            live_streams: 1,
            slos: vec![("push-health".into(), bad, live)],
            outage_secs: 0,
        };
        let live = |app: &str| LiveStreams { domain: "d".into(), app: app.into(), live: 1 };
        let page = recent(0).page(
            0,
            PageInputs {
                live_streams: vec![live("live"), live("new")],
                slo_health: vec![health("live", 90, 900), health("new", 0, 0)],
                ..inputs()
            },
        );
        let got: Vec<_> =
            page.apps.iter().map(|a| (a.app.as_str(), a.slo.as_ref().map(|s| (s.bad_seconds, s.error_free)))).collect();
        assert_eq!(got, [("live", Some((90, Some(0.9)))), ("new", Some((0, None)))]);
    }

    #[test]
    fn top_streams_count_the_window_only() {
        let s = recent(0);
        report(&s, 0, id("old-and-loud"), &[(6, 1000)], [None, None]);
        for (t, stream, n) in [(1000, "a", 5), (1001, "b", 7), (1002, "a", 5), (1003, "c", 1), (1004, "d", 0)] {
            report(&s, t, id(stream), &[(1, n)], [None, None]);
        }
        let top = s.page(1000 + 60, inputs()).top_streams;
        let got: Vec<_> = top.streams.iter().map(|t| (t.stream.as_str(), t.errors, t.reports, t.first_seen)).collect();
        assert_eq!(got, [("a", 10, 2, 1000), ("b", 7, 1, 1001), ("c", 1, 1, 1003)]);
        assert_eq!((top.streams_tracked, top.streams_with_errors, top.dropped_reports), (4, 3, 0));
    }

    #[test]
    fn apps_say_how_many_streams_had_errors_lately() {
        let s = recent(0);
        for stream in ["a", "b"] {
            report(&s, 100, id(stream), &[(6, 1)], [None, None]);
        }
        report(&s, 100, StreamId { domain: "d", app: "no-lifecycle", stream: "x" }, &[(6, 1)], [None, None]);
        let live = |app: &str, live| LiveStreams { domain: "d".into(), app: app.into(), live };
        let page = s.page(120, PageInputs { live_streams: vec![live("quiet", 9), live("live", 40)], ..inputs() });
        let got: Vec<_> = page.apps.iter().map(|a| (a.app.as_str(), a.streams_with_errors, a.live)).collect();
        assert_eq!(got, [("live", 2, 40), ("no-lifecycle", 1, 0), ("quiet", 0, 9)]);
    }

    #[test]
    fn live_streams_are_read_back_from_label_sets() {
        let mut per_app = hashbrown::HashMap::new();
        per_app.insert(r#"domain="d",app="x\",stream=\"\\n""#.to_owned(), 2);
        per_app.insert(r#"domain="d",app="live""#.to_owned(), 5);
        let got: Vec<_> = live_streams(per_app).into_iter().map(|l| (l.domain, l.app, l.live)).collect();
        assert_eq!(got, [("d".into(), "live".into(), 5), ("d".into(), "x\",stream=\"\\n".into(), 2)]);
    }
}
