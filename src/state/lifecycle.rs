//! Which streams are pushing: every stream's push start/end state, kept apart
//! from the per-stream series so `css_push_streams_live` counts every live
//! stream whatever `--max-streams` is and however many error-only streams
//! there are. It has its own bound, `--max-live-streams`.
//!
//! It is the one record of push sessions: each stream's current (or last)
//! session with its start, access node, region and, once it ended, its
//! `errcode`, and the session before it. Every start and end is applied
//! here first; what it changed ([`Effect`]) is what ingest tells the other
//! consumers (the SLO accounting among them), so none keeps a copy.
//!
//! Sharded like the stream registry; a shard's lock is held for one update,
//! or while a scrape or a snapshot reads that shard.
pub use super::journal::Change;
use super::journal::{Sink, Transition};
use super::key::StreamKey;
use super::sharded::{Shard, Sharded};
use super::streams::app_labels_len;
#[cfg(test)]
use super::streams::StreamId;
use super::OVERFLOW;
use crate::catalog::{EndCause, Region};
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use crate::text::push_labels;
use hashbrown::hash_map::EntryRef;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub struct Lifecycles {
    /// Keyed by the stream's label set, as in the stream registry.
    shards: Sharded<Shard<Tracked>>,
    max: usize,
    /// How far before its receive time a start's own `event_time` is believed, ms.
    believed_ms: u64,
    tracked: AtomicUsize,
    /// Starts and ends of new streams refused because `max` was reached.
    overflowed: AtomicU64,
    /// `domain="__overflow__",app="__overflow__"`, where folded pairs count.
    overflow_labels: Box<str>,
    /// With `--state-file`: where each start and end goes, numbered.
    journal: Option<Sink>,
}

pub(super) struct Tracked {
    pub(super) lifecycle: Lifecycle,
    /// Length of the `domain="..",app=".."` part of the key.
    app_labels_len: usize,
}

/// One stream's push sessions: what makes starts and ends idempotent, and
/// the record of its current (or last) session and the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub live: bool,
    /// Hash of the `sequence` of the session that made the stream live.
    pub session: u64,
    /// Hash of the last session that ended, so a start retried after its
    /// own end does not resurrect the stream.
    pub ended_session: Option<u64>,
    /// Clock seconds of the last start or end (for a live stream, when it
    /// started); drives expiry.
    pub last_seen: u64,
    /// Its (domain, app) pair is past `--max-apps`: counted under "__overflow__".
    pub folded: bool,
    /// The session `session` names; `start_ms` 0 before any start.
    pub record: SessionRecord,
    /// The session before it, for reports that arrive late.
    pub previous: Option<PastSession>,
}

/// A push session as its start (and end) told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionRecord {
    /// Unix ms: the start's `event_time`, believed within the dedup window
    /// before its receive time, never before the previous session's end.
    pub start_ms: u64,
    /// The CSS access node, when the start named one by its IP.
    pub node: Option<IpAddr>,
    pub region: Region,
    /// Set once the session ended.
    pub end: Option<SessionEnd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEnd {
    /// Unix ms: the end's receive time, never before the start.
    pub at_ms: u64,
    pub errcode: i64,
}

impl SessionRecord {
    /// The session as it is remembered once over, ended at `end_ms`.
    fn past(&self, session: u64, end_ms: u64) -> PastSession {
        PastSession { session, start_ms: self.start_ms, end_ms, node: self.node, region: self.region }
    }
}

impl SessionEnd {
    pub fn cause(&self) -> EndCause {
        EndCause::of(self.errcode)
    }
}

/// A session that is over: `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastSession {
    pub session: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    pub node: Option<IpAddr>,
    pub region: Region,
}

/// What one start or end changed, in Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Effect {
    /// A session went live from this time.
    pub opened: Option<u64>,
    /// A live session is over: `[start, end)`. A start after a missed end
    /// closes the old session at the new start.
    pub closed: Option<(u64, u64)>,
    /// The stream started again after an abnormal end: the gap `[end,
    /// start)` and the cause of that end.
    pub gap: Option<Gap>,
    /// The session this start or end is the end of, as the store holds it
    /// now: an end's own (the live one it ended, or the one before, over
    /// already), or the live session a start closed for want of its end.
    /// `None` when an end names no session whose start was seen.
    pub ended: Option<PastSession>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub from_ms: u64,
    pub to_ms: u64,
    pub cause: EndCause,
}

/// The session a report belongs to, found by its `sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub session: u64,
    pub node: Option<IpAddr>,
    pub region: Region,
    /// `[start, end)` Unix ms; `None` while the session is live.
    pub start_ms: u64,
    pub end_ms: Option<u64>,
    pub folded: bool,
}

impl Lifecycles {
    /// `believed_ms`: how far before its receive time a start's own time is believed.
    pub fn new(max: usize, believed_ms: u64, journal: Option<Sink>) -> Self {
        let mut overflow_labels = String::new();
        push_labels(&mut overflow_labels, &[("domain", OVERFLOW), ("app", OVERFLOW)]);
        Self {
            shards: Sharded::default(),
            max,
            believed_ms,
            tracked: AtomicUsize::new(0),
            overflowed: AtomicU64::new(0),
            overflow_labels: overflow_labels.into(),
            journal,
        }
    }

    pub(super) fn journal(&self) -> Option<&Sink> {
        self.journal.as_ref()
    }

    pub(super) fn shards(&self) -> &Sharded<Shard<Tracked>> {
        &self.shards
    }

    /// Streams whose lifecycle is remembered.
    /// The `--max-live-streams` bound.
    pub fn max(&self) -> usize {
        self.max
    }

    pub fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// Applies a push start or end (see [`Lifecycle`] for the rules):
    /// a start after a missed end replaces the session, still one live
    /// stream; the end of an older session, arriving after a newer one
    /// started, leaves the stream live; a start retried after its own end
    /// (or an end that overtook its start) changes nothing. `then` gets the
    /// stream's liveness under the shard's lock, so the per-stream series
    /// follows in the same order. `None` past the bound (`then` not called).
    pub fn apply(&self, key: &StreamKey, c: &Change, then: impl FnOnce(bool)) -> Option<Effect> {
        self.update(key, c, self.journal.as_ref(), then)
    }

    /// Applies a journalled transition again at start, to the stream `key`
    /// (read back and built again), without journalling it twice.
    pub fn replay(&self, key: &StreamKey, t: &Transition, folded: bool, then: impl FnOnce(bool)) {
        self.update(key, &Change { folded, ..t.change }, None, then);
    }

    /// The session of the stream `key` whose `sequence` hashes to `session`:
    /// its current one or the one before.
    pub fn session(&self, key: &StreamKey, session: u64) -> Option<Matched> {
        let shard = self.shards.at(key.shard_hash());
        let l = &shard.get(&key.hashed())?.lifecycle;
        let started = l.record.start_ms > 0;
        if started && l.session == session && (l.live || l.record.end.is_some()) {
            let r = &l.record;
            let end_ms = r.end.map(|e| e.at_ms);
            return Some(Matched {
                session,
                node: r.node,
                region: r.region,
                start_ms: r.start_ms,
                end_ms,
                folded: l.folded,
            });
        }
        let p = l.previous.filter(|p| p.session == session)?;
        Some(Matched {
            session,
            node: p.node,
            region: p.region,
            start_ms: p.start_ms,
            end_ms: Some(p.end_ms),
            folded: l.folded,
        })
    }

    fn update(&self, key: &StreamKey, c: &Change, journal: Option<&Sink>, then: impl FnOnce(bool)) -> Option<Effect> {
        let now_secs = c.at_ms / 1000;
        let mut shard = self.shards.at(key.shard_hash());
        let tracked = match shard.entry_ref(&key.hashed()) {
            EntryRef::Occupied(t) => t.into_mut(),
            EntryRef::Vacant(v) => {
                if self.tracked.fetch_add(1, Ordering::Relaxed) >= self.max {
                    self.tracked.fetch_sub(1, Ordering::Relaxed);
                    self.overflowed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let new = Lifecycle {
                    live: false,
                    session: 0,
                    ended_session: None,
                    last_seen: now_secs,
                    folded: c.folded,
                    record: SessionRecord::default(),
                    previous: None,
                };
                v.insert_with_key(key.as_str().into(), Tracked::new(key.as_str(), new))
            }
        };
        let l = &mut tracked.lifecycle;
        l.last_seen = now_secs;
        l.folded = c.folded;
        let effect = if c.start { self.open(l, c) } else { end(l, c) };
        if let Some(journal) = journal {
            journal.send(c, key.as_str());
        }
        then(l.live);
        Some(effect)
    }

    fn open(&self, l: &mut Lifecycle, c: &Change) -> Effect {
        let mut effect = Effect::default();
        if l.ended_session == Some(c.session) || (l.live && l.session == c.session) {
            return effect;
        }
        let event_ms = u64::try_from(c.event_time).unwrap_or(0).saturating_mul(1000);
        let mut start_ms = event_ms.clamp(c.at_ms.saturating_sub(self.believed_ms), c.at_ms);
        let r = l.record;
        if l.live {
            // A start after a missed end closes the old session at the new start.
            start_ms = start_ms.max(r.start_ms);
            effect.closed = Some((r.start_ms, start_ms));
            l.previous = Some(r.past(l.session, start_ms));
            effect.ended = l.previous;
        } else if let Some(end) = r.end.filter(|_| r.start_ms > 0) {
            start_ms = start_ms.max(end.at_ms);
            l.previous = Some(r.past(l.session, end.at_ms));
            let cause = end.cause();
            if cause.is_abnormal() && start_ms > end.at_ms {
                effect.gap = Some(Gap { from_ms: end.at_ms, to_ms: start_ms, cause });
            }
        }
        l.live = true;
        l.session = c.session;
        l.record = SessionRecord { start_ms, node: c.node, region: c.region, end: None };
        effect.opened = Some(start_ms);
        effect
    }
    /// Forgets streams not seen since `now - ttl` (`now - live_ttl` for a
    /// live one); `forgotten` gets the key, the pair's labels and the
    /// lifecycle of each.
    pub fn expire(
        &self,
        now_secs: u64,
        ttl_secs: u64,
        live_ttl_secs: u64,
        mut forgotten: impl FnMut(&str, &str, &Lifecycle),
    ) {
        let cutoff = now_secs.saturating_sub(ttl_secs);
        let live_cutoff = now_secs.saturating_sub(live_ttl_secs);
        let mut removed = 0;
        for mut shard in self.shards.each() {
            shard.retain(|key, t| {
                let l = &t.lifecycle;
                let keep = l.last_seen > if l.live { live_cutoff } else { cutoff };
                if !keep {
                    removed += 1;
                    // Live or ended, the stream's gauge no longer has a
                    // lifecycle behind it: a restored exporter would not show it.
                    forgotten(key, self.pair_labels(key, t), l);
                }
                keep
            });
        }
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
    }

    /// `domain="..",app=".."` of the pair the stream counts under.
    fn pair_labels<'a>(&'a self, key: &'a str, t: &Tracked) -> &'a str {
        if t.lifecycle.folded {
            &self.overflow_labels
        } else {
            &key[..t.app_labels_len]
        }
    }

    /// The lifecycle of the stream keyed `key`.
    pub fn get(&self, key: &str) -> Option<Lifecycle> {
        self.shards.shard(key).get(key).map(|t| t.lifecycle)
    }

    /// Calls `f` with every stream's key, pair labels and lifecycle, a shard at a time.
    pub fn for_each(&self, mut f: impl FnMut(&str, &str, &Lifecycle)) {
        for shard in self.shards.each() {
            for (key, t) in shard.iter() {
                f(key, self.pair_labels(key, t), &t.lifecycle);
            }
        }
    }

    /// Puts back a stream from a snapshot, its key built again under
    /// today's `--max-label-length`; false past the bound or if the key is
    /// taken already.
    pub fn restore(&self, key: &StreamKey, lifecycle: Lifecycle) -> bool {
        let mut shard = self.shards.at(key.shard_hash());
        if shard.contains_key(&key.hashed()) || self.tracked.load(Ordering::Relaxed) >= self.max {
            return false;
        }
        self.tracked.fetch_add(1, Ordering::Relaxed);
        shard.insert(key.as_str().into(), Tracked::new(key.as_str(), lifecycle));
        true
    }
}

/// Ends the session if it is the live one; either way names the session
/// the end is of, if its start was seen.
fn end(l: &mut Lifecycle, c: &Change) -> Effect {
    l.ended_session = Some(c.session);
    if !(l.live && l.session == c.session) {
        let r = &l.record;
        let own = r.end.filter(|_| l.session == c.session && r.start_ms > 0).map(|e| r.past(l.session, e.at_ms));
        let ended = own.or(l.previous.filter(|p| p.session == c.session));
        return Effect { ended, ..Effect::default() };
    }
    l.live = false;
    let at_ms = c.at_ms.max(l.record.start_ms);
    l.record.end = Some(SessionEnd { at_ms, errcode: c.errcode.unwrap_or(0) });
    let ended = Some(l.record.past(l.session, at_ms));
    Effect { closed: Some((l.record.start_ms, at_ms)), ended, ..Effect::default() }
}

impl Tracked {
    fn new(key: &str, lifecycle: Lifecycle) -> Self {
        Self { lifecycle, app_labels_len: app_labels_len(key) }
    }
}

impl Lifecycles {
    /// Live streams per `domain="..",app=".."` label set (0 for a pair whose
    /// streams all ended), as `css_push_streams_live` shows them.
    pub fn live_per_app(&self) -> hashbrown::HashMap<String, u64> {
        let mut live_per_app: hashbrown::HashMap<String, u64> = hashbrown::HashMap::new();
        for shard in self.shards.each() {
            for (key, t) in shard.iter() {
                let live = u64::from(t.lifecycle.live);
                let app_labels = self.pair_labels(key, t);
                match live_per_app.get_mut(app_labels) {
                    Some(n) => *n += live,
                    None => {
                        live_per_app.insert(app_labels.to_owned(), live);
                    }
                }
            }
        }
        live_per_app
    }
}

impl Collector for Lifecycles {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.family(&f::STREAMS_LIVE);
        for (labels, n) in &self.live_per_app() {
            enc.sample(&f::STREAMS_LIVE, labels, &[], Value::Int(*n));
        }
        enc.single(&f::LIVE_STREAMS_TRACKED, Value::Int(self.tracked() as u64));
        enc.single(&f::LIVE_STREAMS_LIMIT, Value::Int(self.max as u64));
        enc.single(&f::LIVE_STREAM_OVERFLOW, Value::Int(self.overflowed.load(Ordering::Relaxed)));
    }
}

/// The calls the pipeline makes, for tests that drive the store alone.
#[cfg(test)]
impl Lifecycles {
    pub fn start(&self, id: StreamId, folded: bool, session: u64, now_secs: u64, then: impl FnOnce(bool)) {
        self.apply(&test_key(id), &test_change(true, folded, session, now_secs), then);
    }

    pub fn end(&self, id: StreamId, folded: bool, session: u64, now_secs: u64, then: impl FnOnce(bool)) {
        self.apply(&test_key(id), &test_change(false, folded, session, now_secs), then);
    }
}

#[cfg(test)]
fn test_key(id: StreamId) -> StreamKey {
    StreamKey::new(id, super::limits::MAX_LABEL_LENGTH)
}

#[cfg(test)]
pub(crate) fn test_change(start: bool, folded: bool, session: u64, now_secs: u64) -> Change {
    let event_time = i64::try_from(now_secs).unwrap();
    let (node, region, errcode) = (None, Region::Unknown, (!start).then_some(1));
    Change { start, folded, session, at_ms: now_secs * 1000, event_time, node, region, errcode }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(stream: &str) -> StreamId<'_> {
        StreamId { domain: "d", app: "live", stream }
    }

    fn rendered(l: &Lifecycles) -> String {
        let mut s = String::new();
        l.encode(&mut Encoder::new(&mut s));
        s
    }

    #[test]
    fn sessions_count_each_stream_once() {
        let l = Lifecycles::new(10, 0, None);
        let tricky = StreamId { domain: "d", app: "x\",stream=\"", stream: "s" };
        let mut shown = Vec::new();
        l.start(id("a"), false, 1, 0, |live| shown.push(live));
        // A start after a missed end: a new session, still one live stream.
        l.start(id("a"), false, 2, 0, |_| {});
        l.start(id("b"), false, 7, 0, |_| {});
        l.start(tricky, false, 1, 0, |_| {});
        // The old session's end arrives late: the new one goes on.
        l.end(id("a"), false, 1, 0, |live| shown.push(live));
        assert_eq!(shown, [true, true], "the per-stream series follows");
        let out = rendered(&l);
        assert!(out.contains("css_push_streams_live{domain=\"d\",app=\"live\"} 2\n"), "{out}");
        assert!(out.contains("css_push_streams_live{domain=\"d\",app=\"x\\\",stream=\\\"\"} 1\n"), "{out}");
        l.end(id("a"), false, 2, 0, |_| {});
        l.end(id("b"), false, 7, 0, |_| {});
        // A retried start of a session that already ended changes nothing.
        l.start(id("b"), false, 7, 0, |live| assert!(!live));
        assert!(rendered(&l).contains("css_push_streams_live{domain=\"d\",app=\"live\"} 0\n"));
    }

    #[test]
    fn each_end_names_the_session_it_is_the_end_of() {
        let l = Lifecycles::new(10, 0, None);
        let key = test_key(id("a"));
        let on = |start, session, node: [u8; 4]| Change {
            node: Some(IpAddr::from(node)),
            region: Region::Mainland,
            ..test_change(start, false, session, 100)
        };
        let apply = |c: &Change| l.apply(&key, c, |_| {}).unwrap();
        let node_of = |e: Effect| e.ended.map(|p| (p.session, p.node));
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        assert_eq!(node_of(apply(&on(true, 1, [192, 0, 2, 1]))), None, "a first start ends nothing");
        assert_eq!(node_of(apply(&on(false, 1, [203, 0, 113, 9]))), Some((1, a)), "the start's node, not the end's");
        apply(&on(true, 2, [192, 0, 2, 2]));
        // A start after a missed end closes the old session: its node.
        let missed = apply(&on(true, 3, [192, 0, 2, 3]));
        assert_eq!((missed.closed.is_some(), node_of(missed)), (true, Some((2, b))));
        let late = apply(&on(false, 2, [192, 0, 2, 2]));
        assert_eq!((late.closed, node_of(late)), (None, Some((2, b))), "the late end of the one before");
        assert_eq!(node_of(apply(&on(false, 9, [192, 0, 2, 9]))), None, "a session never started");
    }

    #[test]
    fn the_bound_is_counted_and_folded_pairs_count_under_overflow() {
        let l = Lifecycles::new(2, 0, None);
        l.start(id("a"), false, 1, 0, |_| {});
        l.start(StreamId { domain: "e", app: "f", stream: "x" }, true, 1, 0, |_| {});
        l.start(id("c"), false, 1, 0, |_| panic!("past the bound nothing is shown"));
        let out = rendered(&l);
        assert!(out.contains("css_push_streams_live{domain=\"__overflow__\",app=\"__overflow__\"} 1\n"), "{out}");
        assert!(out.contains("css_push_live_streams_tracked 2\n"), "{out}");
        assert!(out.contains("css_push_live_streams_limit 2\n"), "{out}");
        assert!(out.contains("css_push_live_stream_overflow_total 1\n"), "{out}");
    }

    #[test]
    fn live_streams_expire_on_their_own_ttl() {
        let l = Lifecycles::new(10, 0, None);
        l.start(id("a"), false, 1, 1000, |_| {});
        l.end(id("b"), false, 1, 1000, |_| {});
        let mut removed = Vec::new();
        l.expire(1100, 60, 600, |k, _, _| removed.push(k.to_owned()));
        assert_eq!(l.tracked(), 1, "an ended stream goes after the error TTL");
        assert_eq!(removed, ["domain=\"d\",app=\"live\",stream=\"b\""]);
        l.expire(1600, 60, 600, |k, _, _| removed.push(k.to_owned()));
        assert_eq!(removed[1..], ["domain=\"d\",app=\"live\",stream=\"a\""], "a live one after the live TTL");
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn the_session_record_says_what_each_start_and_end_changed() {
        let l = Lifecycles::new(10, 900_000, None);
        let key = test_key(id("s"));
        let change = |start, session, at_secs: u64, errcode| Change {
            node: Some("198.51.100.20".parse().unwrap()),
            region: Region::Mainland,
            errcode,
            ..test_change(start, false, session, at_secs)
        };
        let opened = l.apply(&key, &change(true, 1, 1000, None), |_| {}).unwrap();
        assert_eq!(opened, Effect { opened: Some(1_000_000), ..Effect::default() });
        let m = l.session(&key, 1).unwrap();
        assert_eq!(
            (m.start_ms, m.end_ms, m.node, m.region),
            (1_000_000, None, change(true, 1, 0, None).node, Region::Mainland)
        );
        assert_eq!(l.session(&key, 2), None, "a report of another sequence matches nothing");
        let closed = l.apply(&key, &change(false, 1, 1100, Some(13)), |_| {}).unwrap();
        assert_eq!(closed.closed, Some((1_000_000, 1_100_000)));
        let record = l.get(key.as_str()).unwrap().record;
        assert_eq!(record.end.map(|e| (e.at_ms, e.cause())), Some((1_100_000, EndCause::PusherNetwork)));
        // Back 30 s later: the gap after the abnormal end.
        let again = l.apply(&key, &change(true, 2, 1130, None), |_| {}).unwrap();
        let gap = Gap { from_ms: 1_100_000, to_ms: 1_130_000, cause: EndCause::PusherNetwork };
        assert_eq!(again, Effect { opened: Some(1_130_000), closed: None, gap: Some(gap), ended: None });
        assert_eq!(
            l.session(&key, 1).map(|m| (m.start_ms, m.end_ms)),
            Some((1_000_000, Some(1_100_000))),
            "the one before"
        );
        // A start after a missed end closes the old session there; no gap.
        let missed = l.apply(&key, &change(true, 3, 1200, None), |_| {}).unwrap();
        assert_eq!(
            missed,
            Effect {
                opened: Some(1_200_000),
                closed: Some((1_130_000, 1_200_000)),
                gap: None,
                ended: Some(PastSession {
                    session: 2,
                    start_ms: 1_130_000,
                    end_ms: 1_200_000,
                    node: change(true, 2, 0, None).node,
                    region: Region::Mainland,
                }),
            }
        );
        // An end that overtakes its start: the start changes nothing.
        let other = test_key(id("o"));
        assert_eq!(l.apply(&other, &change(false, 7, 1300, Some(14)), |_| {}), Some(Effect::default()));
        assert_eq!(l.apply(&other, &change(true, 7, 1300, None), |live| assert!(!live)), Some(Effect::default()));
        assert_eq!(l.session(&other, 7), None);
    }
}
