//! Restoring a decoded snapshot: each record put back through the same
//! caps as a callback, then the journal replayed after the cut.
use super::decode::StateSnapshot;
use super::format::after_cut;
use super::keys::key_parts;
use crate::state::dedup::Dedup;
use crate::state::journal::Transition;
use crate::state::key::StreamKey;
use crate::state::lifecycle::{Change, Lifecycle};
use crate::state::streams::{StreamGauges, StreamId};
use crate::state::{State, FUTURE_TOLERANCE, OVERFLOW};
use crate::text::cap;

/// What a snapshot gave back, expired entries left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Distinct streams with a lifecycle or per-stream gauges.
    pub streams: usize,
    pub live: usize,
    pub dedup_entries: usize,
    /// Pairs, lifecycles and streams past today's `--max-apps`,
    /// `--max-live-streams`, `--max-streams` or `--max-series`.
    pub over_bounds: usize,
    /// Records that could not have been written by an exporter: a key that
    /// is not exactly `domain="..",app="..",stream=".."`, a gauge value that
    /// is not a finite non-negative number. Dropped.
    pub invalid: usize,
    /// Journalled starts and ends applied after the snapshot.
    pub replayed: usize,
    /// Streams whose history (section 6) came back: the exporter restores
    /// those through their owner and fills this in.
    pub histories: usize,
}

impl StateSnapshot {
    /// Puts it all back into a fresh state and a memory built with
    /// [`Self::dedup_seed`], as if each record had arrived in a callback,
    /// then replays the journalled transitions after the cut, in order;
    /// what has expired by `now` is dropped.
    pub fn restore(self, state: &State, dedup: &Dedup, now_secs: u64, journal: &[Transition]) -> Restored {
        debug_assert_eq!(dedup.seed(), self.dedup_seed, "identities keyed with another seed never match");
        let mut entries = self.dedup;
        entries.retain(|&(_, expires)| expires > now_secs);
        // The memory shares nothing with the rest: filled beside it.
        let mut r = std::thread::scope(|scope| {
            scope.spawn(|| dedup.restore_all(entries, now_secs));
            restore_streams(self.apps, self.lifecycles, self.streams, state, now_secs)
        });
        let mut next_seq = self.cuts.as_deref().and_then(|c| c.iter().max().copied()).unwrap_or(0);
        let mut replay: Vec<&Transition> = journal.iter().filter(|t| after_cut(self.cuts.as_deref(), t)).collect();
        replay.sort_by_key(|t| t.seq);
        for t in replay {
            next_seq = next_seq.max(t.seq + 1);
            match key_parts(&t.key) {
                Some(parts) => replay_one(state, parts.id(), t, now_secs),
                None => r.invalid += 1,
            }
            r.replayed += 1;
        }
        if let Some(journal) = state.lifecycles.journal() {
            journal.continue_after(next_seq);
        }
        state.expire(now_secs, |_, _, _| {});
        // A stream's lifecycle is in the shard of the same number: looked up there, its lock held.
        let mut series_only = 0;
        for (lifecycles, streams) in state.lifecycles.shards().each_with(state.streams.shards()) {
            r.live += lifecycles.values().filter(|t| t.lifecycle.live).count();
            series_only +=
                streams.iter().filter(|(key, s)| !s.gauges().overflow && !lifecycles.contains_key(*key)).count();
        }
        r.streams = state.lifecycles.tracked() + series_only;
        r.dedup_entries = dedup.len();
        r
    }
}

/// The pairs, lifecycles and per-stream gauges put back, as callbacks
/// would have made them.
fn restore_streams(
    apps: Vec<(Box<str>, Box<str>, u64)>,
    lifecycles: Vec<(Box<str>, Lifecycle)>,
    streams: Vec<(Box<str>, StreamGauges)>,
    state: &State,
    now_secs: u64,
) -> Restored {
    let mut r = Restored::default();
    let max = state.max_label_bytes;
    state.lifecycles.shards().reserve(lifecycles.len().min(state.lifecycles.max()));
    state.streams.shards().reserve(streams.len().min(state.streams.max_streams()));
    for (domain, app, last_seen) in &apps {
        r.over_bounds += usize::from(!state.apps.restore(cap(domain, max), cap(app, max), (*last_seen).min(now_secs)));
    }
    for (key, mut l) in lifecycles {
        let Some(parts) = key_parts(&key) else {
            r.invalid += 1;
            continue;
        };
        l.last_seen = l.last_seen.min(now_secs);
        l.folded = folded(state, parts.id(), l.folded, l.last_seen);
        l.record.start_ms = l.record.start_ms.min(now_secs.saturating_mul(1000));
        r.over_bounds += usize::from(!state.lifecycles.restore(&StreamKey::new(parts.id(), max), l));
    }
    for (key, g) in streams {
        match (key_parts(&key), gauges(g, now_secs)) {
            (Some(parts), Some(g)) => r.over_bounds += usize::from(!restore_stream(state, parts.id(), g)),
            _ => r.invalid += 1,
        }
    }
    r
}

/// Whether a stream's lifecycle counts under `__overflow__`: if it did when
/// written, or if its (domain, app) pair has no labels of its own now
/// (admitted again if today's `--max-apps` allows).
fn folded(state: &State, id: StreamId, was: bool, last_seen: u64) -> bool {
    let max = state.max_label_bytes;
    was || !state.apps.restore(cap(id.domain, max), cap(id.app, max), last_seen)
}

/// The gauges as a callback could have set them, or `None`: times clamped
/// to now (a report time as far ahead as ingest allows), values finite.
fn gauges(mut g: StreamGauges, now_secs: u64) -> Option<StreamGauges> {
    let sane = |v: &Option<f64>| v.is_none_or(|v| v.is_finite() && v >= 0.0);
    if !sane(&g.latest_report) || !g.frame_max.iter().all(sane) {
        return None;
    }
    #[allow(clippy::cast_precision_loss, reason = "Unix seconds fit an f64's mantissa")]
    let latest = (now_secs + FUTURE_TOLERANCE.as_secs()) as f64;
    g.latest_report = g.latest_report.map(|t| t.min(latest));
    g.last_seen = g.last_seen.min(now_secs);
    Some(g)
}

/// Puts back a stream's gauges if its (domain, app) pair is back (a stream
/// of a pair without labels of its own has no series of its own); its
/// liveness is its restored lifecycle's, not what the record says.
fn restore_stream(state: &State, id: StreamId, mut g: StreamGauges) -> bool {
    let max = state.max_label_bytes;
    let (domain, app) = (cap(id.domain, max), cap(id.app, max));
    let pair_back =
        (domain == OVERFLOW && app == OVERFLOW && id.stream == OVERFLOW) || state.apps.contains(domain, app);
    if !pair_back {
        return false;
    }
    let id = StreamId { domain, app, stream: id.stream };
    let key = StreamKey::new(id, max);
    if g.live.is_some() {
        let lifecycle = state.lifecycles.get(key.as_str());
        g.live = lifecycle.filter(|l| !l.folded).map(|l| l.live);
    }
    state.streams.restore(&key, g)
}

/// Applies one journalled start or end as the pipeline did, its pair
/// admitted again and its time clamped to now.
fn replay_one(state: &State, id: StreamId, t: &Transition, now_secs: u64) {
    let change = Change { at_ms: t.change.at_ms.min(now_secs.saturating_mul(1000)), ..t.change };
    let t = Transition { change, ..t.clone() };
    let at = t.at_secs();
    let folded = folded(state, id, change.folded, at);
    let key = StreamKey::new(id, state.max_label_bytes);
    state.lifecycles.replay(&key, &t, folded, |live| {
        if !folded {
            state.streams.set_live(&key, live, at);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Config;
    use crate::state::codec::{push_str, section};
    use crate::state::lifecycle::{Lifecycle, SessionRecord};
    use crate::state::sharded::STREAM_SHARDS;
    use crate::state::snapshot::encode;
    use crate::state::snapshot::encode::{push_gauges, push_lifecycle};
    use crate::state::snapshot::format::{APPS, CUTS, DEDUP, LIFECYCLES, MAGIC, STREAMS, TIMELINES, VERSION};
    use crate::state::snapshot::tests::filled;

    #[test]
    fn what_expired_meanwhile_is_not_restored() {
        let (state, dedup) = filled();
        let snapshot = StateSnapshot::decode(&encode(&state, &dedup, 1001, 0).bytes).unwrap();
        let fresh = State::new(&Config::from_flags(["--max-streams", "2"]).unwrap().limits());
        let memory = Dedup::with_seed(900, 100, snapshot.dedup_seed());
        // An hour later: only the live stream is left, and nothing to de-duplicate.
        let restored = snapshot.restore(&fresh, &memory, 1000 + 3600, &[]);
        assert_eq!(restored, Restored { streams: 1, live: 1, ..Restored::default() });
    }

    #[test]
    fn what_no_longer_fits_the_bounds_is_counted() {
        let (state, dedup) = filled();
        let snapshot = StateSnapshot::decode(&encode(&state, &dedup, 1001, 0).bytes).unwrap();
        let config = Config::from_flags(["--max-streams", "1", "--max-live-streams", "1"]).unwrap();
        let smaller = State::new(&config.limits());
        let memory = Dedup::with_seed(900, 100, snapshot.dedup_seed());
        assert_eq!(snapshot.restore(&smaller, &memory, 1001, &[]).over_bounds, 2, "a lifecycle and a stream");
    }

    /// A file whose checksum matches but whose records were written by
    /// hand: `records` replace the lifecycles and streams sections.
    fn crafted(lifecycles: &[(&str, Lifecycle)], streams: &[(&str, StreamGauges)]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&1000u64.to_le_bytes());
        section(&mut out, DEDUP, |out| out.extend_from_slice(&7u64.to_le_bytes()));
        section(&mut out, APPS, |out| {
            push_str(out, "d");
            push_str(out, "a");
            out.extend_from_slice(&1000u64.to_le_bytes());
        });
        section(&mut out, LIFECYCLES, |out| lifecycles.iter().for_each(|(k, l)| push_lifecycle(out, k, l)));
        section(&mut out, STREAMS, |out| streams.iter().for_each(|(k, g)| push_gauges(out, k, g)));
        section(&mut out, CUTS, |out| out.extend_from_slice(&[0; STREAM_SHARDS * 8]));
        section(&mut out, TIMELINES, |_| {});
        let checksum = xxhash_rust::xxh3::xxh3_64(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    fn rendered(state: &State) -> String {
        let mut page = String::new();
        crate::expose::Collector::encode(state, &mut crate::expose::Encoder::new(&mut page));
        page
    }

    #[test]
    fn a_crafted_file_is_restored_as_callbacks_would_have_made_it() {
        let live = Lifecycle {
            live: true,
            session: 1,
            ended_session: None,
            last_seen: u64::MAX,
            folded: false,
            record: SessionRecord { start_ms: u64::MAX, ..SessionRecord::default() },
            previous: None,
        };
        let g = StreamGauges {
            frame_max: [None; 2],
            latest_report: None,
            live: Some(true),
            last_seen: 1000,
            overflow: false,
        };
        let long = format!("domain=\"d\",app=\"a\",stream=\"{}\"", "x".repeat(5000));
        let bytes = crafted(
            &[
                ("domain=\"d\",app=\"a\",stream=\"s\"} 1\ninjected_total 42\n#", live),
                ("not a label set", live),
                (&long, live),
            ],
            &[
                ("domain=\"d\",app=\"a\",stream=\"s\"} 1\ninjected_total 42\n#", g),
                (&long, StreamGauges { latest_report: Some(f64::NAN), ..g }),
                (&long, StreamGauges { live: Some(false), ..g }),
                // Flagged overflow to escape --max-streams: not believed.
                ("domain=\"d\",app=\"a\",stream=\"t\"", StreamGauges { overflow: true, ..g }),
                ("domain=\"d\",app=\"a\",stream=\"u\"", StreamGauges { overflow: true, ..g }),
            ],
        );
        let config = Config::from_flags(["--max-streams", "2", "--max-label-length", "8"]).unwrap();
        let state = State::new(&config.limits());
        let r = StateSnapshot::decode(&bytes).unwrap().restore(&state, &Dedup::with_seed(900, 10, 7), 2000, &[]);
        assert_eq!((r.invalid, r.over_bounds), (4, 1), "{r:?}");
        let page = rendered(&state);
        assert!(!page.contains("injected_total"), "{page}");
        // The long name is capped to today's --max-label-length; the
        // lifecycle says live, so the gauge does too.
        assert!(page.contains("css_push_stream_live{domain=\"d\",app=\"a\",stream=\"xxxxxxxx\"} 1\n"), "{page}");
        assert!(page.contains("css_push_streams 2\n"), "t is a stream of its own, u past the cap: {page}");
        assert!(!page.contains("stream=\"t\"} 1"), "no lifecycle, no liveness: {page}");
        // last_seen u64::MAX was clamped to now: it expires on its TTL.
        state.expire(2000 + 8 * 86400, |_, _, _| {});
        assert_eq!(state.lifecycles.tracked(), 0);
    }

    #[test]
    fn a_lower_max_label_length_still_ends_a_restored_stream() {
        let config = Config::from_flags(["--max-label-length", "64"]).unwrap();
        let (state, dedup) = (State::new(&config.limits()), Dedup::new(900, 10));
        let id = StreamId { domain: "d", app: "a", stream: "a-rather-long-stream-name" };
        state.apps.admit("d", "a", 1000);
        state.lifecycles.start(id, false, 7, 1000, |live| {
            state.streams.set_live(&state.key(id), live, 1000);
        });
        let snapshot = StateSnapshot::decode(&encode(&state, &dedup, 1000, 0).bytes).unwrap();
        let shorter = State::new(&Config::from_flags(["--max-label-length", "8"]).unwrap().limits());
        snapshot.restore(&shorter, &Dedup::with_seed(900, 10, dedup.seed()), 1000, &[]);
        let key = shorter.key(id);
        shorter.lifecycles.apply(&key, &crate::state::lifecycle::test_change(false, false, 7, 1001), |live| {
            shorter.streams.set_live(&key, live, 1001);
        });
        assert!(rendered(&shorter).contains("css_push_streams_live{domain=\"d\",app=\"a\"} 0\n"));
    }

    #[test]
    fn journalled_transitions_after_the_cut_are_replayed_once() {
        let config = Config::from_flags(["--state-file", "/unused"]).unwrap();
        let (state, dedup) = (State::new(&config.limits()), Dedup::new(900, 10));
        let pending = state.take_journal().unwrap();
        let id = |stream| StreamId { domain: "d", app: "a", stream };
        state.apps.admit("d", "a", 1000);
        state.lifecycles.start(id("before"), false, 1, 1000, |_| {});
        let encoded = encode(&state, &dedup, 1000, 0);
        state.lifecycles.start(id("after"), false, 2, 1001, |_| {});
        state.lifecycles.end(id("before"), false, 1, 1002, |_| {});
        let journal = pending.drain(10);
        assert_eq!(journal.len(), 3);
        assert_eq!(journal.iter().filter(|t| encoded.after_cut(t)).count(), 2);
        let fresh = State::new(&config.limits());
        let snapshot = StateSnapshot::decode(&encoded.bytes).unwrap();
        let r = snapshot.restore(&fresh, &Dedup::with_seed(900, 10, dedup.seed()), 1002, &journal);
        assert_eq!((r.replayed, r.live), (2, 1), "{r:?}");
        assert_eq!(fresh.lifecycles.get("domain=\"d\",app=\"a\",stream=\"before\"").map(|l| l.live), Some(false));
        assert_eq!(fresh.lifecycles.journal().unwrap().next_seq(), 3, "numbers go on after the journal's");
    }
}
