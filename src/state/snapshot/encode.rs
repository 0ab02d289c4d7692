//! Encoding a snapshot: the exporter's state as the bytes of a state file,
//! copied one shard at a time.
use super::format::{
    after_cut, flag, APPS, AUDIO_MAX, CUTS, DEDUP, LATEST_REPORT, LC_END, LC_ENDED, LC_FOLDED, LC_LIVE, LC_PREVIOUS,
    LIFECYCLES, LIVE, LIVE_KNOWN, MAGIC, OVERFLOW_BUCKET, STREAMS, TIMELINES, VERSION, VIDEO_MAX,
};
use crate::state::codec::{push_ip, push_str, section};
use crate::state::dedup::Dedup;
use crate::state::journal::{Sink, Transition};
use crate::state::lifecycle::Lifecycle;
use crate::state::sharded::STREAM_SHARDS;
use crate::state::streams::StreamGauges;
use crate::state::State;

/// A snapshot's bytes and, per lifecycle shard, the first journalled
/// transition they do not hold.
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub cuts: Vec<u64>,
}

impl Encoded {
    /// Whether the transition is not in the snapshot (to be kept in, or
    /// replayed from, the journal).
    pub fn after_cut(&self, t: &Transition) -> bool {
        after_cut(Some(&self.cuts), t)
    }
}

/// The state of one exporter as the bytes of a state file, copied one
/// shard at a time, so ingest into the others goes on. A stream's lifecycle
/// and its gauges are copied under one cut: the lifecycle shard stays
/// locked while the registry's shard of the same number is copied (ingest
/// changes a gauge of liveness only under its lifecycle's lock), so a
/// restored stream is never live in one and not in the other. The
/// de-duplication memory is copied first: a callback accepted meanwhile is
/// then in the lifecycles but not remembered, and its retry after a restart
/// changes nothing again (starts and ends are idempotent), rather than the
/// other way round. `capacity` (the last snapshot's size, say) spares
/// growing the buffer, and copying it all, while a shard is locked.
pub fn encode(state: &State, dedup: &Dedup, now_secs: u64, capacity: usize) -> Encoded {
    encode_with(state, dedup, now_secs, capacity, |_| {})
}

/// [`encode`], with the streams' histories that `timelines` writes (the
/// payload of section 6) after the rest.
pub fn encode_with(
    state: &State,
    dedup: &Dedup,
    now_secs: u64,
    capacity: usize,
    timelines: impl FnOnce(&mut Vec<u8>),
) -> Encoded {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&now_secs.to_le_bytes());
    section(&mut out, DEDUP, |out| {
        out.extend_from_slice(&dedup.seed().to_le_bytes());
        dedup.for_each(|id, expires| {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&expires.to_le_bytes());
        });
    });
    section(&mut out, APPS, |out| {
        state.apps.for_each_pair(|domain, app, last_seen| {
            push_str(out, domain);
            push_str(out, app);
            out.extend_from_slice(&last_seen.to_le_bytes());
        });
    });
    let mut streams = Vec::with_capacity(capacity / 4);
    let mut cuts = vec![0; STREAM_SHARDS];
    section(&mut out, LIFECYCLES, |out| {
        for (i, (lifecycles, gauges)) in state.lifecycles.shards().each_with(state.streams.shards()).enumerate() {
            cuts[i] = state.lifecycles.journal().map_or(0, Sink::next_seq);
            for (key, t) in lifecycles.iter() {
                push_lifecycle(out, key, &t.lifecycle);
            }
            for (key, s) in gauges.iter() {
                push_gauges(&mut streams, key, &s.gauges());
            }
        }
    });
    section(&mut out, STREAMS, |out| out.extend_from_slice(&streams));
    section(&mut out, CUTS, |out| {
        for cut in &cuts {
            out.extend_from_slice(&cut.to_le_bytes());
        }
    });
    section(&mut out, TIMELINES, timelines);
    let checksum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    Encoded { bytes: out, cuts }
}

pub(super) fn push_lifecycle(out: &mut Vec<u8>, key: &str, l: &Lifecycle) {
    push_str(out, key);
    let r = &l.record;
    let flags = flag(l.live, LC_LIVE)
        | flag(l.ended_session.is_some(), LC_ENDED)
        | flag(l.folded, LC_FOLDED)
        | flag(r.end.is_some(), LC_END)
        | flag(l.previous.is_some(), LC_PREVIOUS);
    out.push(flags);
    for n in [l.session, l.ended_session.unwrap_or(0), l.last_seen, r.start_ms] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.push(r.region.code());
    push_ip(out, r.node);
    if let Some(end) = r.end {
        out.extend_from_slice(&end.at_ms.to_le_bytes());
        out.extend_from_slice(&end.errcode.to_le_bytes());
    }
    if let Some(p) = l.previous {
        for n in [p.session, p.start_ms, p.end_ms] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.push(p.region.code());
        push_ip(out, p.node);
    }
}

pub(super) fn push_gauges(out: &mut Vec<u8>, key: &str, g: &StreamGauges) {
    push_str(out, key);
    let [video, audio] = g.frame_max;
    let flags = flag(g.live.is_some(), LIVE_KNOWN)
        | flag(g.live == Some(true), LIVE)
        | flag(g.overflow, OVERFLOW_BUCKET)
        | flag(g.latest_report.is_some(), LATEST_REPORT)
        | flag(video.is_some(), VIDEO_MAX)
        | flag(audio.is_some(), AUDIO_MAX);
    out.push(flags);
    out.extend_from_slice(&g.last_seen.to_le_bytes());
    for v in [g.latest_report, video, audio].into_iter().flatten() {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Config;
    use crate::state::snapshot::tests::filled;
    use crate::state::snapshot::{Restored, StateSnapshot};

    #[test]
    fn a_snapshot_decodes_to_what_was_encoded() {
        let (state, dedup) = filled();
        let bytes = encode(&state, &dedup, 1001, 0).bytes;
        let snapshot = StateSnapshot::decode(&bytes).unwrap();
        assert_eq!((snapshot.written_at(), snapshot.dedup_seed()), (1001, dedup.seed()));
        let fresh = State::new(&Config::from_flags(["--max-streams", "2"]).unwrap().limits());
        let memory = Dedup::with_seed(900, 100, snapshot.dedup_seed());
        let restored = snapshot.restore(&fresh, &memory, 1001, &[]);
        assert_eq!(restored, Restored { streams: 3, live: 1, dedup_entries: 1, ..Restored::default() });
        // Maps iterate in their own orders: compare the records, sorted.
        let sorted = |bytes: &[u8]| {
            let mut s = StateSnapshot::decode(bytes).unwrap();
            s.lifecycles.sort_by(|a, b| a.0.cmp(&b.0));
            s.streams.sort_by(|a, b| a.0.cmp(&b.0));
            s.apps.sort();
            (s.dedup_seed, s.dedup, s.apps, s.lifecycles, s.streams)
        };
        let again = sorted(&encode(&fresh, &memory, 1001, 0).bytes);
        assert_eq!(again, sorted(&bytes));
        assert_eq!(again.2, [("d".into(), "a".into(), 1000)]);
        assert_eq!((again.3.len(), again.4.len()), (2, 3), "two lifecycles; two streams and the overflow bucket");
    }
}
