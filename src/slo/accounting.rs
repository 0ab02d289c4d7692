//! Live and bad stream-milliseconds per (domain, app), for each SLO, from
//! what the lifecycle store (`state::lifecycle`, the one record of push
//! sessions) tells through ingest's events.
//!
//! Live time: each session that went live (its start) to its end, summed
//! per pair as running sums (open sessions, the sum of their starts,
//! closed time), so a scrape costs O(pairs), not O(streams). Time before
//! this process started is not counted: every counter starts at 0 here.
//!
//! Outage time: a stream that ended abnormally (any cause but the pusher
//! stopping) and started again within an SLO's `reconnect_window` was down
//! in between: that gap is added to the SLO's live and bad time, and to
//! `css_push_outage_seconds_total` (within the longest window).
//!
//! Bad time: per stream and SLO, the union of the bad reports' intervals
//! (`spans.rs`), each clipped to the push session the report's `sequence`
//! names and to our clock, never shifted; a pair's counter and the
//! stream's grow by the time newly marked. Both sides are times of the
//! same sessions, so bad ≤ live holds per stream and so per pair. A report
//! of no known session is unattributed, in neither side.
//!
//! Streams seen only through reports have their own, smaller room than
//! streams with a session, so a flood of them cannot take the room of the
//! streams the SLI is about; what finds no room is counted.
use super::bad_time::BadTime;
use super::definition::{Slo, MAX_SLOS};
use super::live::Live;
use super::monotonic::Monotonic;
use super::spans::Spans;
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use crate::ingest::event::{Effect, Observer, ReportAccepted, StreamKey, Transition};
use crate::state::budget::SeriesBudget;
use crate::state::clock::Clock;
use crate::state::lifecycle::Lifecycle;
use crate::state::limits::Limits;
use crate::state::sharded::{Shard, Sharded};
use crate::state::OVERFLOW;
use crate::sync::{lock, read, write};
use crate::text::{parse_labels, push_labels};
use hashbrown::hash_map::EntryRef;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use xxhash_rust::xxh3::xxh3_64;

/// Report interval assumed when a report does not say, ms.
const DEFAULT_INTERVAL_MS: u64 = 5000;
/// A report's interval is believed within these bounds, ms.
const INTERVAL_MS: std::ops::RangeInclusive<u64> = 1000..=60_000;
/// Streams seen only through reports get this share of the room that
/// streams with a push session get (`--max-live-streams`).
const REPORT_ONLY_SHARE: usize = 10;
/// How often a pair's counters are kept for the status page's recent share, ms.
const SAMPLE_EVERY_MS: u64 = 60_000;
/// How far back the status page looks at most, ms.
pub const RECENT_MS: u64 = 16 * 60_000;

pub struct SloAccounting {
    slos: Vec<Slo>,
    /// Per error code (1-16), a bit per SLO that counts it bad.
    bad_by_code: [u8; 17],
    /// Per SLO, its reconnect window, ms.
    reconnect_ms: [u64; MAX_SLOS],
    clock: Monotonic,
    /// When counting began, Unix ms: nothing before it is counted.
    born_ms: u64,
    live_ttl_ms: u64,
    pair_ttl_ms: u64,
    /// Keyed by a hash of the pair's labels.
    pairs: RwLock<hashbrown::HashMap<u64, Arc<PairSlo>>>,
    /// Keyed by the stream's key, only streams with bad time.
    streams: Sharded<Shard<StreamSlo>>,
    rooms: [Room; 2],
    budget: Arc<SeriesBudget>,
    /// Bad reports with time older than the accounting holds, not counted.
    late_reports: AtomicU64,
    overflow_labels: Box<str>,
    /// Told each report's newly bad time of a known session, as counted here.
    bad_time: Option<Arc<dyn BadTime>>,
}

/// Which room a stream takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Its reports name a push session the lifecycle store knows.
    Started = 0,
    /// Seen only through reports of no known session.
    ReportOnly = 1,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Started, Kind::ReportOnly];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Started => "started",
            Kind::ReportOnly => "report_only",
        }
    }
}

/// A bounded room for streams, and what it had no place for.
struct Room {
    tracked: AtomicUsize,
    limit: usize,
    dropped: AtomicU64,
}

/// How full one room is, for the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saturation {
    pub kind: Kind,
    pub tracked: usize,
    pub limit: usize,
    /// Reports it had no room for since start.
    pub dropped: u64,
}

/// A counter per SLO, in definition order.
type PerSlo = [AtomicU64; MAX_SLOS];

/// One (domain, app) pair's counters, ms.
struct PairSlo {
    domain: Box<str>,
    app: Box<str>,
    /// `domain="..",app=".."`, escaped.
    labels: Box<str>,
    live: Mutex<Live>,
    /// The base live time last shown: sessions closed by a racing worker
    /// before their start was added must not make it step back.
    live_shown: AtomicU64,
    /// Outage gaps added to each SLO's live and bad time.
    gaps: PerSlo,
    bad: PerSlo,
    unattributed: PerSlo,
    outage: AtomicU64,
    last_seen: AtomicU64,
    /// (Unix ms, live per SLO, bad per SLO, outage), a sample a minute.
    history: Mutex<VecDeque<Sample>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at_ms: u64,
    live: [u64; MAX_SLOS],
    bad: [u64; MAX_SLOS],
    outage: u64,
}

struct StreamSlo {
    pair: Arc<PairSlo>,
    kind: Kind,
    /// (SLO index, its recent bad spans, its bad ms, whether its series holds budget).
    slos: Vec<PerStream>,
    /// Unix ms of its last bad report or gap.
    last_seen: u64,
}

struct PerStream {
    slo: usize,
    spans: Spans,
    bad_ms: u64,
    shown: bool,
}

/// A pair's recent health, for the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct AppHealth {
    pub domain: String,
    pub app: String,
    pub live_streams: u64,
    /// Per SLO, in definition order: (name, bad seconds, live seconds) over the span asked for.
    pub slos: Vec<(String, u64, u64)>,
    /// Outage seconds over the span.
    pub outage_secs: u64,
}

impl AppHealth {
    /// The error-free share for SLO `i`; `None` without live time.
    pub fn error_free(&self, i: usize) -> Option<f64> {
        let (_, bad, live) = self.slos.get(i)?;
        #[allow(clippy::cast_precision_loss, reason = "a share")]
        (*live > 0).then(|| 1.0 - *bad as f64 / *live as f64)
    }
}

/// A stream's recent bad time, for the status page's ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct BadStream {
    /// `domain="..",app="..",stream=".."`, as the metrics label it.
    pub labels: String,
    pub slo: String,
    pub bad_secs: f64,
}

impl SloAccounting {
    pub fn new(slos: Vec<Slo>, limits: &Limits, budget: Arc<SeriesBudget>, clock: Arc<dyn Clock>) -> Self {
        assert!((1..=MAX_SLOS).contains(&slos.len()), "definition::parse checks the count");
        let mut bad_by_code = [0u8; 17];
        let mut reconnect_ms = [0; MAX_SLOS];
        for (i, slo) in slos.iter().enumerate() {
            for &code in &slo.bad_error_types {
                bad_by_code[usize::from(code)] |= 1 << i;
            }
            reconnect_ms[i] = ms(slo.reconnect_window);
        }
        let clock = Monotonic::new(clock);
        let mut overflow_labels = String::new();
        push_labels(&mut overflow_labels, &[("domain", OVERFLOW), ("app", OVERFLOW)]);
        let room = |limit| Room { tracked: AtomicUsize::new(0), limit, dropped: AtomicU64::new(0) };
        Self {
            slos,
            bad_by_code,
            reconnect_ms,
            born_ms: clock.now(),
            clock,
            live_ttl_ms: ms(limits.live_stream_ttl),
            pair_ttl_ms: ms(limits.stream_ttl.max(limits.live_stream_ttl)),
            pairs: RwLock::default(),
            streams: Sharded::default(),
            rooms: [room(limits.max_live_streams), room((limits.max_live_streams / REPORT_ONLY_SHARE).max(1))],
            budget,
            late_reports: AtomicU64::new(0),
            overflow_labels: overflow_labels.into(),
            bad_time: None,
        }
    }

    /// Tells `sink` the bad time of sessions as it is counted.
    #[must_use]
    pub fn with_bad_time(mut self, sink: Arc<dyn BadTime>) -> Self {
        self.bad_time = Some(sink);
        self
    }

    pub fn slos(&self) -> &[Slo] {
        &self.slos
    }

    /// A live stream restored from the state file, counted under the pair
    /// `pair_labels`: it accrues from the process start.
    pub fn restored_live(&self, pair_labels: &str, l: &Lifecycle) {
        let now = self.clock.now();
        let pair = self.pair_by_labels(pair_labels, now, &|| {
            let mut values = parse_labels(pair_labels).into_iter().map(|(_, v)| v);
            (values.next().unwrap_or_default(), values.next().unwrap_or_default())
        });
        pair.live().open(self.counted_from(l.record.start_ms));
    }

    /// A stream whose push sessions the lifecycle store forgot: a live one
    /// ends now, and its bad time goes with it.
    pub fn forgotten(&self, key: &str, pair_labels: &str, l: &Lifecycle) {
        let now = self.clock.now();
        if l.live {
            if let Some(pair) = self.find_pair(pair_labels) {
                pair.live().close(self.counted_from(l.record.start_ms), now);
            }
        }
        let removed = self.streams.at(crate::state::sharded::shard_hash(key)).remove(key);
        if let Some(s) = removed {
            self.free(&s);
        }
    }

    /// How full each room is.
    pub fn saturation(&self) -> Vec<Saturation> {
        Kind::ALL
            .iter()
            .map(|&kind| {
                let room = &self.rooms[kind as usize];
                Saturation {
                    kind,
                    tracked: room.tracked.load(Ordering::Relaxed),
                    limit: room.limit,
                    dropped: room.dropped.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Seconds each pair was live and bad over about the last `span_secs`
    /// (at most 16 minutes), by its counters, and its live streams now:
    /// for the status page. O(pairs).
    pub fn recent_health(&self, span_secs: u64) -> Vec<AppHealth> {
        let now = self.clock.now();
        let from = now.saturating_sub(span_secs.saturating_mul(1000).min(RECENT_MS));
        let pairs: Vec<Arc<PairSlo>> = read(&self.pairs).values().cloned().collect();
        pairs
            .iter()
            .map(|p| {
                p.keep_sample(now, self.slos.len());
                let current = p.sample(now, self.slos.len());
                let then = p.sample_at(from, &current);
                let secs = |a: u64, b: u64| a.saturating_sub(b) / 1000;
                let slos = (0..self.slos.len())
                    .map(|i| {
                        (
                            self.slos[i].name.clone(),
                            secs(current.bad[i], then.bad[i]),
                            secs(current.live[i], then.live[i]),
                        )
                    })
                    .collect();
                AppHealth {
                    domain: p.domain.to_string(),
                    app: p.app.to_string(),
                    live_streams: u64::try_from(p.live().open).unwrap_or(0),
                    slos,
                    outage_secs: secs(current.outage, then.outage),
                }
            })
            .collect()
    }

    /// The `n` streams with the most bad time over about the last
    /// `span_secs`, per SLO, most first: for the status page. O(streams with bad time).
    pub fn top_bad_streams(&self, span_secs: u64, n: usize) -> Vec<BadStream> {
        let now = self.clock.now();
        let from = now.saturating_sub(span_secs.saturating_mul(1000));
        let mut all = Vec::new();
        for shard in self.streams.each() {
            for (key, s) in shard.iter().filter(|(_, s)| s.kind == Kind::Started) {
                for p in &s.slos {
                    let bad = p.spans.count(from, now);
                    if bad > 0 {
                        all.push((bad, key.to_string(), p.slo));
                    }
                }
            }
        }
        all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        all.truncate(n);
        all.into_iter()
            .map(|(bad, labels, slo)| BadStream { labels, slo: self.slos[slo].name.clone(), bad_secs: secs(bad) })
            .collect()
    }

    /// Forgets spans with nothing recent, report-only streams with nothing
    /// left, started ones quiet for the live TTL, pairs without streams or
    /// callbacks for the TTLs; keeps a sample of each pair for the status page.
    pub fn expire(&self) {
        let now = self.clock.now();
        let live_cutoff = now.saturating_sub(self.live_ttl_ms);
        for mut shard in self.streams.each() {
            shard.retain(|_, s| {
                for p in &mut s.slos {
                    if p.spans.stale(now) {
                        p.spans = Spans::default();
                    }
                }
                let keep = match s.kind {
                    Kind::ReportOnly => s.slos.iter().any(|p| !p.spans.stale(now)),
                    // Normally gone with its lifecycle (`forgotten`); this is the backstop.
                    Kind::Started => s.last_seen > live_cutoff,
                };
                if !keep {
                    self.free(s);
                }
                keep
            });
        }
        let pair_cutoff = now.saturating_sub(self.pair_ttl_ms);
        let mut pairs = write(&self.pairs);
        pairs.retain(|_, p| {
            Arc::strong_count(p) > 1 || p.live().open > 0 || p.last_seen.load(Ordering::Relaxed) > pair_cutoff
        });
        for p in pairs.values() {
            p.keep_sample(now, self.slos.len());
        }
    }

    /// Counting starts at the process start.
    fn counted_from(&self, ms: u64) -> u64 {
        ms.max(self.born_ms)
    }

    /// The pair a stream counts under: `__overflow__` when folded.
    fn pair_of(&self, key: &StreamKey, folded: bool, domain: &str, app: &str, now: u64) -> Arc<PairSlo> {
        if folded {
            self.pair_by_labels(&self.overflow_labels, now, &|| (OVERFLOW.into(), OVERFLOW.into()))
        } else {
            self.pair_by_labels(key.app_labels(), now, &|| (domain.into(), app.into()))
        }
    }

    fn find_pair(&self, labels: &str) -> Option<Arc<PairSlo>> {
        let pairs = read(&self.pairs);
        pairs.get(&xxh3_64(labels.as_bytes())).filter(|p| &*p.labels == labels).cloned()
    }

    /// The pair's counters, created at 0 the first time it is seen.
    fn pair_by_labels(&self, labels: &str, now: u64, names: &dyn Fn() -> (String, String)) -> Arc<PairSlo> {
        let hash = xxh3_64(labels.as_bytes());
        let found = read(&self.pairs).get(&hash).cloned();
        let pair = match found {
            Some(p) => p,
            None => {
                let mut pairs = write(&self.pairs);
                pairs
                    .entry(hash)
                    .or_insert_with(|| {
                        let (domain, app) = names();
                        Arc::new(PairSlo::new(domain, app, labels, now))
                    })
                    .clone()
            }
        };
        // Two pairs with one 64-bit hash: too unlikely to spend memory on, but never mixed up.
        if &*pair.labels != labels {
            return self.pair_by_labels(&self.overflow_labels, now, &|| (OVERFLOW.into(), OVERFLOW.into()));
        }
        pair.touch(now);
        pair
    }

    /// The SLOs (a bit each) for which the report's error types are bad.
    fn bad_mask(&self, errors: &[(u8, u64)]) -> u8 {
        errors.iter().fold(0, |mask, &(code, _)| mask | self.bad_by_code.get(usize::from(code)).copied().unwrap_or(0))
    }

    /// The time `[from, to)` a report covers, cut at our clock: a report
    /// reaching past now is clipped, never moved back.
    fn span(r: &ReportAccepted<'_>, now: u64) -> (u64, u64) {
        if r.future_data_time {
            // Its own time was far ahead: all of it is past our clock.
            return (0, 0);
        }
        let end = u64::try_from(r.data_time_ms).unwrap_or(0);
        let len = r.report_interval_ms.map_or(DEFAULT_INTERVAL_MS, |ms| {
            u64::try_from(ms).unwrap_or(0).clamp(*INTERVAL_MS.start(), *INTERVAL_MS.end())
        });
        (end.saturating_sub(len), end.min(now))
    }

    /// Takes a place in the room of `kind`; false past its bound.
    fn admit(&self, kind: Kind) -> bool {
        let room = &self.rooms[kind as usize];
        if room.tracked.fetch_add(1, Ordering::Relaxed) >= room.limit {
            room.tracked.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn drop_report(&self, kind: Kind) {
        self.rooms[kind as usize].dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Gives back a removed stream's place and series.
    fn free(&self, s: &StreamSlo) {
        self.rooms[s.kind as usize].tracked.fetch_sub(1, Ordering::Relaxed);
        self.budget.release(s.slos.iter().filter(|p| p.shown).count());
    }

    /// The stream's entry for `kind`, created (or moved from report-only
    /// to started) if there is room; `None` if not, the report counted as dropped.
    fn entry<'a>(
        &self,
        shard: &'a mut Shard<StreamSlo>,
        key: &StreamKey,
        kind: Kind,
        pair: impl FnOnce() -> Arc<PairSlo>,
    ) -> Option<&'a mut StreamSlo> {
        let s = match shard.entry_ref(&key.hashed()) {
            EntryRef::Occupied(o) => o.into_mut(),
            EntryRef::Vacant(v) => {
                if !self.admit(kind) {
                    self.drop_report(kind);
                    return None;
                }
                let s = StreamSlo { pair: pair(), kind, slos: Vec::new(), last_seen: 0 };
                return Some(v.insert_with_key(key.as_str().into(), s));
            }
        };
        if s.kind == Kind::ReportOnly && kind == Kind::Started {
            if !self.admit(Kind::Started) {
                self.drop_report(kind);
                return None;
            }
            self.rooms[Kind::ReportOnly as usize].tracked.fetch_sub(1, Ordering::Relaxed);
            // Time marked while unattributed is not this session's.
            s.slos.iter_mut().for_each(|p| p.spans = Spans::default());
            s.kind = Kind::Started;
        }
        // A started stream keeps its entry; its reports of no known session count unattributed.
        Some(s)
    }

    /// Adds an outage gap to the pair and, per SLO within its window, to
    /// live and bad time and to the stream's bad time.
    fn gap(&self, t: &Transition<'_>, effect: &Effect, now: u64) {
        let Some(gap) = effect.gap else { return };
        let (from, to) = (self.counted_from(gap.from_ms), gap.to_ms);
        let (len, full) = (to.saturating_sub(from), gap.to_ms - gap.from_ms);
        let within = (0..self.slos.len()).filter(|&i| full <= self.reconnect_ms[i]).fold(0u8, |m, i| m | 1 << i);
        if within == 0 || len == 0 {
            return;
        }
        let pair = self.pair_of(t.key, t.folded, t.stream.domain, t.stream.app, now);
        pair.outage.fetch_add(len, Ordering::Relaxed);
        for i in bits(within) {
            pair.gaps[i].fetch_add(len, Ordering::Relaxed);
            pair.bad[i].fetch_add(len, Ordering::Relaxed);
        }
        let mut shard = self.streams.at(t.key.shard_hash());
        let Some(s) = self.entry(&mut shard, t.key, Kind::Started, || pair.clone()) else { return };
        s.last_seen = now;
        for i in bits(within) {
            let p = per_slo(&mut s.slos, i);
            // Held for the status page's recent ranking; no report can mark
            // it again (reports are clipped to sessions, the gap lies between).
            p.spans.mark(from.max(p.spans.floor(now)), to, now);
            self.add_stream_bad(p, len);
        }
    }

    /// Adds to a started stream's own bad time, its series born at the
    /// first bad millisecond if the series budget allows.
    fn add_stream_bad(&self, p: &mut PerStream, added: u64) {
        if added > 0 && p.bad_ms == 0 {
            p.shown = self.budget.try_take(1);
            if !p.shown {
                self.budget.note_overflow();
            }
        }
        p.bad_ms += added;
    }
}

/// The stream's part for SLO `i`, added at its first bad report.
fn per_slo(slos: &mut Vec<PerStream>, i: usize) -> &mut PerStream {
    let at = match slos.iter().position(|p| p.slo == i) {
        Some(at) => at,
        None => {
            // One SLO is the usual case: no room for four up front.
            slos.reserve_exact(1);
            slos.push(PerStream { slo: i, spans: Spans::default(), bad_ms: 0, shown: false });
            slos.len() - 1
        }
    };
    &mut slos[at]
}

impl Observer for SloAccounting {
    fn transition(&self, t: &Transition<'_>) {
        let now = self.clock.at(t.at_ms);
        let pair = self.pair_of(t.key, t.folded, t.stream.domain, t.stream.app, now);
        let Some(effect) = t.effect else { return };
        if effect.closed.is_some() || effect.opened.is_some() {
            let mut live = pair.live();
            if let Some((start, end)) = effect.closed {
                live.close(self.counted_from(start), end.max(self.born_ms));
            }
            if let Some(start) = effect.opened {
                live.open(self.counted_from(start));
            }
        }
        drop(pair);
        self.gap(t, &effect, now);
    }

    fn report(&self, r: &ReportAccepted<'_>) {
        let now = self.clock.at(r.at_ms);
        let folded = r.stream.domain == OVERFLOW && r.stream.app == OVERFLOW;
        let mask = self.bad_mask(r.errors);
        if mask == 0 {
            // Nothing bad, but the pair exists from now on, its counters at 0.
            self.pair_of(r.key, folded, r.stream.domain, r.stream.app, now);
            return;
        }
        let (from, to) = Self::span(r, now);
        // Clipped to the session the report names, and to what this process counts.
        let (from, to, kind) = match r.matched {
            Some(m) => (from.max(self.counted_from(m.start_ms)), to.min(m.end_ms.unwrap_or(now)), Kind::Started),
            None => (from, to, Kind::ReportOnly),
        };
        if from >= to {
            return;
        }
        let mut shard = self.streams.at(r.key.shard_hash());
        let pair = || self.pair_of(r.key, folded, r.stream.domain, r.stream.app, now);
        let Some(s) = self.entry(&mut shard, r.key, kind, pair) else {
            if kind == Kind::ReportOnly {
                // No union without a place: still in neither side of the SLI.
                let p = self.pair_of(r.key, folded, r.stream.domain, r.stream.app, now);
                for i in bits(mask) {
                    p.unattributed[i].fetch_add(to - from, Ordering::Relaxed);
                }
            }
            return;
        };
        s.last_seen = now;
        s.pair.touch(now);
        let StreamSlo { pair, slos, kind: entry_kind, .. } = s;
        if *entry_kind == Kind::Started && kind == Kind::ReportOnly {
            // A report of another session of a started stream: no union with its time.
            for i in bits(mask) {
                pair.unattributed[i].fetch_add(to - from, Ordering::Relaxed);
            }
            return;
        }
        let mut late = false;
        for i in bits(mask) {
            let p = per_slo(slos, i);
            let floor = p.spans.floor(now);
            late |= from < floor;
            let added = p.spans.mark(from.max(floor), to, now);
            if kind == Kind::Started {
                pair.bad[i].fetch_add(added, Ordering::Relaxed);
                self.add_stream_bad(p, added);
                if let Some(sink) = self.bad_time.as_ref().filter(|_| added > 0) {
                    sink.bad(r, i, added);
                }
            } else {
                pair.unattributed[i].fetch_add(added, Ordering::Relaxed);
            }
        }
        if late {
            self.late_reports.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Collector for SloAccounting {
    fn encode(&self, enc: &mut Encoder<'_>) {
        let now = self.clock.now();
        enc.family(&f::SLO_INFO);
        for slo in &self.slos {
            let types: Vec<String> = slo.bad_error_types.iter().map(u8::to_string).collect();
            let (objective, window, types) = (slo.objective.to_string(), slo.window(), types.join(","));
            let labels = [
                ("slo", slo.name.as_str()),
                ("objective", &objective),
                ("window", &window),
                ("bad_error_types", &types),
            ];
            enc.sample(&f::SLO_INFO, "", &labels, Value::Int(1));
        }
        let pairs: Vec<Arc<PairSlo>> = read(&self.pairs).values().cloned().collect();
        let n = self.slos.len();
        let samples: Vec<Sample> = pairs.iter().map(|p| p.sample(now, n)).collect();
        for (family, pick) in [(&f::LIVE_SECONDS, 0), (&f::BAD_SECONDS, 1), (&f::SLO_UNATTRIBUTED, 2)] {
            enc.family(family);
            for (p, sample) in pairs.iter().zip(&samples) {
                for (i, slo) in self.slos.iter().enumerate() {
                    let v = match pick {
                        0 => sample.live[i],
                        1 => sample.bad[i],
                        _ => p.unattributed[i].load(Ordering::Relaxed),
                    };
                    enc.sample(family, &p.labels, &[("slo", &slo.name)], Value::Float(secs(v)));
                }
            }
        }
        enc.family(&f::OUTAGE_SECONDS);
        for (p, sample) in pairs.iter().zip(&samples) {
            enc.sample(&f::OUTAGE_SECONDS, &p.labels, &[], Value::Float(secs(sample.outage)));
        }
        enc.family(&f::STREAM_BAD_SECONDS);
        for shard in self.streams.each() {
            for (key, s) in shard.iter() {
                for p in s.slos.iter().filter(|p| p.shown) {
                    let labels = [("slo", self.slos[p.slo].name.as_str())];
                    enc.sample(&f::STREAM_BAD_SECONDS, key, &labels, Value::Float(secs(p.bad_ms)));
                }
            }
        }
        for (family, value) in [(&f::SLO_STREAMS_TRACKED, 0), (&f::SLO_STREAMS_LIMIT, 1), (&f::SLO_DROPPED_REPORTS, 2)]
        {
            enc.family(family);
            for s in self.saturation() {
                let v = match value {
                    0 => s.tracked as u64,
                    1 => s.limit as u64,
                    _ => s.dropped,
                };
                enc.sample(family, "", &[("kind", s.kind.label())], Value::Int(v));
            }
        }
        enc.single(&f::SLO_LATE_REPORTS, Value::Int(self.late_reports.load(Ordering::Relaxed)));
    }
}

impl PairSlo {
    fn new(domain: String, app: String, labels: &str, now: u64) -> Self {
        let pair = Self {
            domain: domain.into(),
            app: app.into(),
            labels: labels.into(),
            live: Mutex::default(),
            live_shown: AtomicU64::new(0),
            gaps: Default::default(),
            bad: Default::default(),
            unattributed: Default::default(),
            outage: AtomicU64::new(0),
            last_seen: AtomicU64::new(now),
            history: Mutex::default(),
        };
        // Born at 0: the status page's share starts here.
        lock(&pair.history).push_back(Sample { at_ms: now, ..Sample::default() });
        pair
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        lock(&self.live)
    }

    fn touch(&self, now: u64) {
        // Written once a second at most, so workers do not fight over the line.
        if self.last_seen.load(Ordering::Relaxed) / 1000 != now / 1000 {
            self.last_seen.store(now, Ordering::Relaxed);
        }
    }

    /// Its counters now, ms.
    fn sample(&self, now: u64, slos: usize) -> Sample {
        let base = self.live().at(now);
        let base = self.live_shown.fetch_max(base, Ordering::Relaxed).max(base);
        let mut s = Sample { at_ms: now, outage: self.outage.load(Ordering::Relaxed), ..Sample::default() };
        for i in 0..slos {
            s.live[i] = base + self.gaps[i].load(Ordering::Relaxed);
            s.bad[i] = self.bad[i].load(Ordering::Relaxed);
        }
        s
    }

    /// Keeps a sample a minute, for as far back as the status page looks.
    fn keep_sample(&self, now: u64, slos: usize) {
        let mut history = lock(&self.history);
        if history.back().is_some_and(|s| now.saturating_sub(s.at_ms) < SAMPLE_EVERY_MS) {
            return;
        }
        history.push_back(self.sample(now, slos));
        while history.len() > 2 && history[1].at_ms + RECENT_MS <= now {
            history.pop_front();
        }
    }

    /// Its counters at `at`, between the samples around it (the oldest
    /// sample if `at` is before it; `current` after the last).
    fn sample_at(&self, at: u64, current: &Sample) -> Sample {
        let history = lock(&self.history);
        let after = history.partition_point(|s| s.at_ms <= at);
        let Some(before) = after.checked_sub(1).map(|i| history[i]) else {
            return history.front().copied().unwrap_or_default();
        };
        let next = history.get(after).unwrap_or(current);
        let (span, into) = (next.at_ms.saturating_sub(before.at_ms), at - before.at_ms);
        if span == 0 {
            return before;
        }
        // Counters grow about linearly between samples a minute apart.
        let at_share = |a: u64, b: u64| {
            a + u64::try_from(u128::from(b.saturating_sub(a)) * u128::from(into) / u128::from(span)).unwrap_or(0)
        };
        let mut s = Sample { at_ms: at, outage: at_share(before.outage, next.outage), ..Sample::default() };
        for i in 0..MAX_SLOS {
            s.live[i] = at_share(before.live[i], next.live[i]);
            s.bad[i] = at_share(before.bad[i], next.bad[i]);
        }
        s
    }
}

/// The indexes of the bits set in `mask`.
fn bits(mask: u8) -> impl Iterator<Item = usize> {
    (0..MAX_SLOS).filter(move |i| mask & (1 << i) != 0)
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds of a counter as the seconds its series shows.
#[allow(clippy::cast_precision_loss, reason = "ms of a counter: exact below 2^53")]
pub(crate) fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{EndCause, Region};
    use crate::cli::Config;
    use crate::ingest::event::StreamId;
    use crate::state::clock::ManualClock;
    use crate::state::lifecycle::{Change, Lifecycles};
    use proptest::prelude::*;
    use std::time::Duration;

    const T0: u64 = 1_700_000_000;

    /// The lifecycle store and the accounting, wired as the pipeline wires them.
    struct Harness {
        lifecycles: Lifecycles,
        slo: SloAccounting,
        clock: Arc<ManualClock>,
    }

    impl Harness {
        fn new(max_live_streams: &str) -> Self {
            let limits = Config::from_flags(["--max-live-streams", max_live_streams]).unwrap().limits();
            let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
            let budget = Arc::new(SeriesBudget::new(1 << 20));
            let slo = SloAccounting::new(vec![Slo::push_health()], &limits, budget, clock.clone());
            Self { lifecycles: Lifecycles::new(1000, 900_000, None), slo, clock }
        }

        fn now_ms(&self) -> u64 {
            u64::try_from(self.clock.now().as_millis()).unwrap()
        }

        fn lifecycle(&self, stream: &str, session: u64, start: bool, event_time: u64, errcode: i64) {
            let id = StreamId { domain: "d", app: "live", stream };
            let key = StreamKey::new(id, 64);
            let at_ms = self.now_ms();
            let event_time = i64::try_from(event_time).unwrap();
            let errcode = (!start).then_some(errcode);
            let (node, region) = (None, Region::Unknown);
            let change = Change { start, folded: false, session, at_ms, event_time, node, region, errcode };
            let effect = self.lifecycles.apply(&key, &change, |_| {});
            self.slo.transition(&Transition {
                stream: id,
                sent: id,
                key: &key,
                folded: false,
                session,
                sequence: "",
                start,
                event_time,
                node,
                region,
                errcode,
                cause: errcode.map(EndCause::of),
                duration_ms: None,
                effect,
                at_secs: at_ms / 1000,
                at_ms,
            });
        }

        fn report(
            &self,
            stream: &str,
            session: u64,
            errors: &[(u8, u64)],
            data_time_ms: u64,
            interval_ms: Option<i64>,
        ) {
            let id = StreamId { domain: "d", app: "live", stream };
            let key = StreamKey::new(id, 64);
            let matched = self.lifecycles.session(&key, session);
            let at_ms = self.now_ms();
            self.slo.report(&ReportAccepted {
                data_time_ms: i64::try_from(data_time_ms).unwrap(),
                report_interval_ms: interval_ms,
                session: matched.map(|m| m.session),
                matched,
                at_ms,
                ..ReportAccepted::for_test(id, &key, errors, at_ms / 1000)
            });
        }

        /// The value of the sample `name{labels}` on the page, in ms.
        fn value(&self, sample: &str) -> Option<u64> {
            let mut page = String::new();
            self.slo.encode(&mut Encoder::new(&mut page));
            let secs: f64 = page.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "ms of a test")]
            Some((secs * 1000.0).round() as u64)
        }
    }

    const LIVE: &str = "css_push_live_seconds_total{domain=\"d\",app=\"live\",slo=\"push-health\"}";
    const BAD: &str = "css_push_bad_seconds_total{domain=\"d\",app=\"live\",slo=\"push-health\"}";
    const UNATTRIBUTED: &str = "css_push_slo_unattributed_seconds_total{domain=\"d\",app=\"live\",slo=\"push-health\"}";
    const LATE: (u8, u64) = (6, 3);

    #[test]
    fn bad_time_is_the_exact_union_clipped_to_the_reports_session() {
        let h = Harness::new("100");
        h.clock.advance(Duration::from_secs(1000));
        h.lifecycle("s", 1, true, T0 + 1000, 0);
        h.clock.advance(Duration::from_secs(10));
        let at = |secs: u64| (T0 + secs) * 1000;
        h.report("s", 1, &[LATE], at(1010), Some(5000));
        assert_eq!(h.value(BAD), Some(5000), "[1005, 1010)");
        h.report("s", 1, &[LATE, (7, 9)], at(1010), Some(5000));
        assert_eq!(h.value(BAD), Some(5000), "a duplicate, two bad types, any count: nothing new");
        h.report("s", 1, &[LATE], at(1003) + 500, None);
        assert_eq!(h.value(BAD), Some(8500), "out of order, 5 s when absent, cut at the start: [1000, 1003.5)");
        h.report("s", 1, &[(5, 1), (16, 1), (0, 1)], at(1009), Some(5000));
        assert_eq!(h.value(BAD), Some(8500), "types the SLO does not count");
        h.report("s", 2, &[LATE], at(1009), Some(5000));
        assert_eq!((h.value(BAD), h.value(UNATTRIBUTED)), (Some(8500), Some(5000)), "another session's report");
        h.report("s", 1, &[LATE], at(1010), Some(999_000));
        assert_eq!(h.value(BAD), Some(10_000), "at most 60 s, cut at the start: the rest of [1000, 1010)");
        assert_eq!(h.value(LIVE), Some(10_000));
    }

    #[test]
    fn a_gap_counts_only_after_an_abnormal_end_within_the_window() {
        let h = Harness::new("100");
        for (stream, errcode) in [("cut", 14), ("stopped", 2)] {
            h.lifecycle(stream, 1, true, h.now_ms() / 1000, 0);
            h.clock.advance(Duration::from_secs(10));
            h.lifecycle(stream, 1, false, h.now_ms() / 1000, errcode);
            h.clock.advance(Duration::from_secs(20));
            h.lifecycle(stream, 2, true, h.now_ms() / 1000, 0);
        }
        let outage = "css_push_outage_seconds_total{domain=\"d\",app=\"live\"}";
        assert_eq!((h.value(outage), h.value(BAD)), (Some(20_000), Some(20_000)));
        let stream_bad =
            "css_push_stream_bad_seconds_total{domain=\"d\",app=\"live\",stream=\"cut\",slo=\"push-health\"}";
        assert_eq!(h.value(stream_bad), Some(20_000));
        assert!(h.value(&stream_bad.replace("cut", "stopped")).is_none(), "no bad second, no series");
        let top = h.slo.top_bad_streams(900, 10);
        assert_eq!(top.len(), 1, "{top:?}");
        assert_eq!((top[0].labels.as_str(), top[0].bad_secs), ("domain=\"d\",app=\"live\",stream=\"cut\"", 20.0));
    }

    #[test]
    fn report_only_streams_have_their_own_smaller_room() {
        let h = Harness::new("20");
        h.lifecycle("started", 1, true, T0, 0);
        h.clock.advance(Duration::from_secs(10));
        let now = h.now_ms();
        for i in 0..5 {
            h.report(&format!("ghost-{i}"), 9, &[LATE], now, None);
        }
        h.report("started", 1, &[LATE], now, None);
        let room = |kind: Kind| h.slo.saturation()[kind as usize];
        assert_eq!((room(Kind::ReportOnly).tracked, room(Kind::ReportOnly).dropped), (2, 3), "a tenth of 20");
        assert_eq!((room(Kind::Started).tracked, room(Kind::Started).dropped), (1, 0));
        assert_eq!(h.value(BAD), Some(5000));
        assert_eq!(h.value(UNATTRIBUTED), Some(25_000), "dropped reports still counted there, without a union");
    }

    /// One step of a hostile sender: which stream, what, when.
    #[derive(Debug, Clone)]
    enum Step {
        Start { stream: u8, session: u8, back: u16 },
        End { stream: u8, session: u8, errcode: i64 },
        Report { stream: u8, session: u8, bad: bool, ahead_ms: i32, interval_ms: Option<i64> },
        Tick(u32),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..4u8, 0..3u8, any::<u16>()).prop_map(|(stream, session, back)| Step::Start { stream, session, back }),
            (0..4u8, 0..3u8, 0..25i64).prop_map(|(stream, session, errcode)| Step::End { stream, session, errcode }),
            (0..4u8, 0..3u8, any::<bool>(), -2_000_000..700_000i32, proptest::option::of(-10_000..200_000i64))
                .prop_map(|(stream, session, bad, ahead_ms, interval_ms)| Step::Report {
                    stream,
                    session,
                    bad,
                    ahead_ms,
                    interval_ms
                }),
            (0..400_000u32).prop_map(Step::Tick),
        ]
    }

    proptest! {
        #[test]
        fn bad_never_exceeds_live_and_nothing_goes_down(steps in proptest::collection::vec(step(), 1..200)) {
            let h = Harness::new("100");
            let (mut last_live, mut last_bad) = (0, 0);
            for step in steps {
                let name = |n: u8| format!("s{n}");
                let now_secs = h.now_ms() / 1000;
                match step {
                    Step::Start { stream, session, back } => {
                        h.lifecycle(&name(stream), u64::from(session), true, now_secs - u64::from(back), 0);
                    }
                    Step::End { stream, session, errcode } => {
                        h.lifecycle(&name(stream), u64::from(session), false, now_secs, errcode);
                    }
                    Step::Report { stream, session, bad, ahead_ms, interval_ms } => {
                        let errors = if bad { [LATE] } else { [(5, 1)] };
                        let data_time = h.now_ms().saturating_add_signed(i64::from(ahead_ms));
                        h.report(&name(stream), u64::from(session), &errors, data_time, interval_ms);
                    }
                    Step::Tick(ms) => {
                        h.clock.advance(Duration::from_millis(u64::from(ms)));
                        h.slo.expire();
                    }
                }
                let (live, bad) = (h.value(LIVE).unwrap_or(0), h.value(BAD).unwrap_or(0));
                prop_assert!(bad <= live, "bad {bad} > live {live}");
                prop_assert!(live >= last_live && bad >= last_bad, "a counter went down");
                (last_live, last_bad) = (live, bad);
            }
        }
    }
}
