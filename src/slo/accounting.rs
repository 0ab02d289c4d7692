//! Live and bad stream-seconds per (domain, app), for each SLO.
//!
//! Live time: each stream's push sessions, start (its `event_time`, clamped
//! into the dedup window before the receive time) to end (receive time),
//! summed per pair as running sums (open sessions, the sum of their starts,
//! closed seconds), so a scrape costs O(pairs), not O(streams).
//!
//! Bad time: per stream and SLO, a ring of 1-second slots (`ring.rs`) marks the
//! union of the bad reports' intervals, clipped to the stream's current
//! and previous session; a pair's counter grows by the seconds newly marked.
//! Both sides are whole seconds of the same sessions, so bad ≤ live holds
//! per stream and so per pair. A stream with no known session gets its bad
//! seconds counted as unattributed, in neither side.
use super::definition::{Slo, MAX_SLOS};
use super::monotonic::Monotonic;
use super::ring::{horizon, Ring, RING_SECS};
use crate::cli::Config;
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use crate::ingest::event::{Observer, ReportAccepted, Transition};
use crate::state::clock::Clock;
use crate::state::streams::StreamId;
use crate::state::OVERFLOW;
use crate::text::{cap, parse_labels, push_labels};
use hashbrown::hash_map::Entry;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Report interval assumed when a report does not say, seconds.
const DEFAULT_INTERVAL_SECS: u64 = 5;
/// A report's interval is believed within these bounds, seconds.
const INTERVAL_SECS: std::ops::RangeInclusive<u64> = 1..=60;
const SHARDS: usize = 16;

pub struct SloAccounting {
    slos: Vec<Slo>,
    /// Per error code (1-16), a bit per SLO that counts it bad.
    bad_by_code: [u8; 17],
    clock: Monotonic,
    dedup_window_secs: u64,
    max_label_bytes: usize,
    /// Streams remembered at most (`--max-live-streams`, as the lifecycle store).
    max_streams: usize,
    stream_ttl_secs: u64,
    live_stream_ttl_secs: u64,
    /// Keyed by a hash of the capped (domain, app).
    pairs: RwLock<hashbrown::HashMap<u64, Arc<PairSlo>>>,
    /// Keyed by a hash of the stream's capped names as sent.
    streams: Box<[Mutex<hashbrown::HashMap<u64, StreamSlo>>]>,
    tracked: AtomicUsize,
    /// Bad reports with seconds older than the ring, not counted.
    late_reports: AtomicU64,
}

/// A counter per SLO, in definition order.
type PerSlo = [AtomicU64; MAX_SLOS];

/// One (domain, app) pair's counters.
struct PairSlo {
    domain: Box<str>,
    app: Box<str>,
    /// `domain="..",app=".."`, escaped.
    labels: Box<str>,
    live: Mutex<Live>,
    bad: PerSlo,
    unattributed: PerSlo,
    last_seen: AtomicU64,
}

/// Running sums from which a pair's live seconds at any `now` follow.
#[derive(Default)]
struct Live {
    open: u64,
    open_starts: u64,
    closed: u64,
}

struct StreamSlo {
    pair: Arc<PairSlo>,
    session: Option<Session>,
    /// The session before the current one, `[start, end)`: late reports
    /// from just before a reconnect still count.
    previous: Option<(u64, u64)>,
    /// The last session whose end was seen, so its retried start is ignored.
    ended: Option<u64>,
    /// (SLO index, its ring), only for SLOs with recent bad reports.
    rings: Vec<(usize, Ring)>,
    last_seen: u64,
}

#[derive(Clone, Copy)]
struct Session {
    id: u64,
    start: u64,
    /// `None` while live.
    end: Option<u64>,
}

/// A pair's recent health, for the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct AppHealth {
    pub domain: String,
    pub app: String,
    pub live_streams: u64,
    /// Per SLO, in definition order: (name, bad seconds, live seconds) over the span asked for.
    pub slos: Vec<(String, u64, u64)>,
}

impl AppHealth {
    /// The error-free share for SLO `i`; `None` without live time.
    pub fn error_free(&self, i: usize) -> Option<f64> {
        let (_, bad, live) = self.slos.get(i)?;
        #[allow(clippy::cast_precision_loss, reason = "a share")]
        (*live > 0).then(|| 1.0 - *bad as f64 / *live as f64)
    }
}

impl SloAccounting {
    pub fn new(slos: Vec<Slo>, config: &Config, clock: Arc<dyn Clock>) -> Self {
        assert!((1..=MAX_SLOS).contains(&slos.len()), "definition::parse checks the count");
        let mut bad_by_code = [0u8; 17];
        for (i, slo) in slos.iter().enumerate() {
            for &code in &slo.bad_error_types {
                bad_by_code[usize::from(code)] |= 1 << i;
            }
        }
        Self {
            slos,
            bad_by_code,
            clock: Monotonic::new(clock),
            dedup_window_secs: config.dedup_window.as_secs(),
            max_label_bytes: config.max_label_length,
            max_streams: config.max_live_streams,
            stream_ttl_secs: config.stream_ttl.as_secs(),
            live_stream_ttl_secs: config.live_stream_ttl.as_secs(),
            pairs: RwLock::default(),
            streams: (0..SHARDS).map(|_| Mutex::default()).collect(),
            tracked: AtomicUsize::new(0),
            late_reports: AtomicU64::new(0),
        }
    }

    pub fn slos(&self) -> &[Slo] {
        &self.slos
    }

    /// A live stream restored from the state file (its lifecycle key):
    /// it accrues from now, the process start.
    pub fn restored_live(&self, key: &str, folded: bool, session: u64) {
        let labels = parse_labels(key);
        let [(_, domain), (_, app), (_, stream)] = labels.as_slice() else { return };
        let now = self.clock.now();
        let pair = if folded { self.pair(OVERFLOW, OVERFLOW, now) } else { self.pair(domain, app, now) };
        let key = self.stream_hash(StreamId { domain, app, stream });
        let mut shard = self.shard(key);
        if let Entry::Vacant(v) = shard.entry(key) {
            if self.admit() {
                let s = v.insert(StreamSlo::new(pair, now));
                s.open(Session { id: session, start: now, end: None });
            }
        }
    }

    /// Seconds each pair was live and bad over the last `span_secs`, and its
    /// live streams now: for the status page, from memory. O(streams).
    pub fn recent_health(&self, span_secs: u64) -> Vec<AppHealth> {
        let now = self.clock.now();
        // The rings hold no more than this.
        let from = now.saturating_sub(span_secs.min(RING_SECS));
        let mut by_pair: hashbrown::HashMap<*const PairSlo, AppHealth> = hashbrown::HashMap::new();
        for p in self.pairs.read().unwrap_or_else(|e| e.into_inner()).values() {
            let health = AppHealth {
                domain: p.domain.to_string(),
                app: p.app.to_string(),
                live_streams: p.live().open,
                slos: self.slos.iter().map(|slo| (slo.name.clone(), 0, 0)).collect(),
            };
            by_pair.insert(Arc::as_ptr(p), health);
        }
        for shard in self.streams.iter() {
            for s in lock(shard).values() {
                let Some(health) = by_pair.get_mut(&Arc::as_ptr(&s.pair)) else { continue };
                if s.session.is_none() {
                    continue;
                }
                let windows = s.windows(now).map(|(a, b)| (a.max(from), b.min(now)));
                let live: u64 = windows.iter().map(|&(a, b)| b.saturating_sub(a)).sum();
                for (i, counts) in health.slos.iter_mut().enumerate() {
                    counts.2 += live;
                    if let Some((_, ring)) = s.rings.iter().find(|(j, _)| *j == i) {
                        counts.1 += windows.iter().map(|&(a, b)| ring.count(a, b)).sum::<u64>();
                    }
                }
            }
        }
        by_pair.into_values().collect()
    }

    /// Forgets rings with nothing recent, streams with nothing left to
    /// clip to, and pairs without streams or callbacks for the TTLs.
    pub fn expire(&self) {
        let now = self.clock.now();
        let cutoff = now.saturating_sub(self.stream_ttl_secs);
        let live_cutoff = now.saturating_sub(self.live_stream_ttl_secs);
        let mut removed = 0;
        for shard in self.streams.iter() {
            lock(shard).retain(|_, s| {
                s.rings.retain(|(_, ring)| !ring.stale(now));
                let keep = match s.session {
                    // As the lifecycle store forgets it: it ends now.
                    Some(sess) if sess.end.is_none() => {
                        let keep = s.last_seen > live_cutoff;
                        if !keep {
                            s.pair.live().close(sess.start, now);
                        }
                        keep
                    }
                    Some(_) => !s.rings.is_empty() || s.last_seen > cutoff,
                    None => !s.rings.is_empty(),
                };
                removed += usize::from(!keep);
                keep
            });
        }
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
        let pair_cutoff = now.saturating_sub(self.stream_ttl_secs.max(self.live_stream_ttl_secs));
        let mut pairs = self.pairs.write().unwrap_or_else(|e| e.into_inner());
        pairs.retain(|_, p| Arc::strong_count(p) > 1 || p.last_seen.load(Ordering::Relaxed) > pair_cutoff);
    }

    /// The pair's counters, created at 0 the first time it is seen.
    fn pair(&self, domain: &str, app: &str, now: u64) -> Arc<PairSlo> {
        let (domain, app) = (cap(domain, self.max_label_bytes), cap(app, self.max_label_bytes));
        let key = xxh3_64_with_seed(app.as_bytes(), xxh3_64(domain.as_bytes()));
        let found = self.pairs.read().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        let pair = match found {
            Some(p) => p,
            None => {
                let mut pairs = self.pairs.write().unwrap_or_else(|e| e.into_inner());
                pairs.entry(key).or_insert_with(|| Arc::new(PairSlo::new(domain, app, now))).clone()
            }
        };
        // Two pairs with one 64-bit hash: too unlikely to spend memory on, but never mixed up.
        if &*pair.domain != domain || &*pair.app != app {
            return self.pair(OVERFLOW, OVERFLOW, now);
        }
        pair.touch(now);
        pair
    }

    fn stream_hash(&self, id: StreamId) -> u64 {
        let max = self.max_label_bytes;
        let (domain, app, stream) = (cap(id.domain, max), cap(id.app, max), cap(id.stream, max));
        xxh3_64_with_seed(stream.as_bytes(), xxh3_64_with_seed(app.as_bytes(), xxh3_64(domain.as_bytes())))
    }

    #[allow(clippy::cast_possible_truncation, reason = "any bits of the hash pick a shard")]
    fn shard(&self, key: u64) -> MutexGuard<'_, hashbrown::HashMap<u64, StreamSlo>> {
        lock(&self.streams[(key >> 32) as usize % SHARDS])
    }

    /// Takes a place for a new stream; false past the bound.
    fn admit(&self) -> bool {
        if self.tracked.fetch_add(1, Ordering::Relaxed) >= self.max_streams {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The SLOs (a bit each) for which the report's error types are bad.
    fn bad_mask(&self, errors: &[(u8, u64)]) -> u8 {
        errors.iter().fold(0, |mask, &(code, _)| mask | self.bad_by_code.get(usize::from(code)).copied().unwrap_or(0))
    }

    /// The seconds `[from, to)` a report covers, cut to what the rings
    /// can still hold, and whether some were older than that.
    fn span(report: &ReportAccepted<'_>, now: u64) -> (u64, u64, bool) {
        let to = u64::try_from(report.data_time_ms / 1000).unwrap_or(0).min(now);
        let secs = report.report_interval_ms.map_or(DEFAULT_INTERVAL_SECS, |ms| {
            u64::try_from(ms.saturating_add(500) / 1000)
                .unwrap_or(0)
                .clamp(*INTERVAL_SECS.start(), *INTERVAL_SECS.end())
        });
        let from = to.saturating_sub(secs);
        let oldest = horizon(now);
        (from.max(oldest), to, from < oldest)
    }

    fn start(&self, t: &Transition<'_>, s: &mut StreamSlo, now: u64) {
        if s.session.is_some_and(|sess| sess.id == t.session) || s.ended == Some(t.session) {
            return;
        }
        let earliest = now.saturating_sub(self.dedup_window_secs);
        let mut start = u64::try_from(t.event_time).unwrap_or(0).clamp(earliest, now);
        match s.session {
            // A start after a missed end closes the old session at the new start.
            Some(old) if old.end.is_none() => {
                start = start.max(old.start);
                s.pair.live().close(old.start, start);
                s.previous = Some((old.start, start));
            }
            Some(old) => {
                let end = old.end.unwrap_or(start);
                start = start.max(end);
                s.previous = Some((old.start, end));
            }
            // Bits marked while unattributed are not this session's.
            None => s.rings.clear(),
        }
        s.open(Session { id: t.session, start, end: None });
    }

    fn end(t: &Transition<'_>, s: &mut StreamSlo, now: u64) {
        s.ended = Some(t.session);
        if let Some(sess) = &mut s.session {
            // The end of an older session, after a newer one started, changes nothing.
            if sess.end.is_none() && sess.id == t.session {
                s.pair.live().close(sess.start, now);
                sess.end = Some(now);
            }
        }
    }
}

impl Observer for SloAccounting {
    fn transition(&self, t: &Transition<'_>) {
        let now = self.clock.at(t.at_secs);
        let key = self.stream_hash(t.sent);
        let mut shard = self.shard(key);
        let s = match shard.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            // The end of a session never seen starting: nothing to close.
            Entry::Vacant(_) if !t.start => {
                self.pair(t.stream.domain, t.stream.app, now);
                return;
            }
            Entry::Vacant(v) => {
                let pair = self.pair(t.stream.domain, t.stream.app, now);
                if !self.admit() {
                    return;
                }
                v.insert(StreamSlo::new(pair, now))
            }
        };
        s.last_seen = now;
        s.pair.touch(now);
        if t.start {
            self.start(t, s, now);
        } else {
            Self::end(t, s, now);
        }
    }

    fn report(&self, r: &ReportAccepted<'_>) {
        let now = self.clock.at(r.at_secs);
        let mask = self.bad_mask(r.errors);
        if mask == 0 {
            // Nothing bad, but the pair exists from now on, its counters at 0.
            self.pair(r.stream.domain, r.stream.app, now);
            return;
        }
        let (from, to, late) = Self::span(r, now);
        if late {
            self.late_reports.fetch_add(1, Ordering::Relaxed);
        }
        let key = self.stream_hash(r.sent);
        let mut shard = self.shard(key);
        let s = match shard.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let pair = self.pair(r.stream.domain, r.stream.app, now);
                if !self.admit() {
                    // Past the bound: no union, but still in neither side.
                    for i in bits(mask) {
                        pair.unattributed[i].fetch_add(to.saturating_sub(from), Ordering::Relaxed);
                    }
                    return;
                }
                v.insert(StreamSlo::new(pair, now))
            }
        };
        s.last_seen = now;
        s.pair.touch(now);
        let windows = s.windows(now);
        let clipped = windows.map(|(a, b)| (from.max(a), to.min(b)));
        if clipped.iter().all(|(a, b)| a >= b) {
            return;
        }
        let attributed = s.session.is_some();
        for i in bits(mask) {
            let ring = s.ring(i, now);
            let added: u64 = clipped.iter().map(|&(a, b)| ring.mark(a, b)).sum();
            let counter = if attributed { &s.pair.bad[i] } else { &s.pair.unattributed[i] };
            counter.fetch_add(added, Ordering::Relaxed);
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
        let pairs: Vec<Arc<PairSlo>> = self.pairs.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        enc.family(&f::LIVE_SECONDS);
        for p in &pairs {
            enc.sample(&f::LIVE_SECONDS, &p.labels, &[], Value::Int(p.live().at(now)));
        }
        for (family, unattributed) in [(&f::BAD_SECONDS, false), (&f::SLO_UNATTRIBUTED, true)] {
            enc.family(family);
            for p in &pairs {
                let counters = if unattributed { &p.unattributed } else { &p.bad };
                for (slo, n) in self.slos.iter().zip(counters) {
                    enc.sample(family, &p.labels, &[("slo", &slo.name)], Value::Int(n.load(Ordering::Relaxed)));
                }
            }
        }
        enc.single(&f::SLO_LATE_REPORTS, Value::Int(self.late_reports.load(Ordering::Relaxed)));
    }
}

impl PairSlo {
    fn new(domain: &str, app: &str, now: u64) -> Self {
        let mut labels = String::with_capacity(16 + domain.len() + app.len());
        push_labels(&mut labels, &[("domain", domain), ("app", app)]);
        Self {
            domain: domain.into(),
            app: app.into(),
            labels: labels.into(),
            live: Mutex::default(),
            bad: Default::default(),
            unattributed: Default::default(),
            last_seen: AtomicU64::new(now),
        }
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        lock(&self.live)
    }

    fn touch(&self, now: u64) {
        // Written once a second at most, so workers do not fight over the line.
        if self.last_seen.load(Ordering::Relaxed) != now {
            self.last_seen.store(now, Ordering::Relaxed);
        }
    }
}

impl Live {
    fn at(&self, now: u64) -> u64 {
        (self.closed + self.open * now).saturating_sub(self.open_starts)
    }

    fn close(&mut self, start: u64, end: u64) {
        self.open -= 1;
        self.open_starts -= start;
        self.closed += end - start;
    }
}

impl StreamSlo {
    fn new(pair: Arc<PairSlo>, now: u64) -> Self {
        Self { pair, session: None, previous: None, ended: None, rings: Vec::new(), last_seen: now }
    }

    fn open(&mut self, session: Session) {
        let mut live = self.pair.live();
        live.open += 1;
        live.open_starts += session.start;
        drop(live);
        self.session = Some(session);
    }

    /// The spans a report may mark: the current (or last) session up to
    /// now and the one before; without a session, anything up to now.
    fn windows(&self, now: u64) -> [(u64, u64); 2] {
        match self.session {
            Some(s) => [(s.start, s.end.unwrap_or(now)), self.previous.unwrap_or((0, 0))],
            None => [(0, now), (0, 0)],
        }
    }

    fn ring(&mut self, slo: usize, now: u64) -> &mut Ring {
        let at = match self.rings.iter().position(|(i, _)| *i == slo) {
            Some(at) => at,
            None => {
                // One SLO is the usual case: no room for four rings up front.
                self.rings.reserve_exact(1);
                self.rings.push((slo, Ring::new(now)));
                self.rings.len() - 1
            }
        };
        &mut self.rings[at].1
    }
}

/// The indexes of the bits set in `mask`.
fn bits(mask: u8) -> impl Iterator<Item = usize> {
    (0..MAX_SLOS).filter(move |i| mask & (1 << i) != 0)
}

/// A poisoned lock still guards consistent sums (each update completes
/// under it): go on with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::clock::ManualClock;
    use proptest::prelude::*;
    use std::time::Duration;

    const T0: u64 = 1_700_000_000;

    /// A wall clock that can be set anywhere, backwards included.
    struct SetClock(AtomicU64);

    impl Clock for SetClock {
        fn now(&self) -> Duration {
            Duration::from_secs(self.0.load(Ordering::SeqCst))
        }
    }

    fn accounting(clock: Arc<dyn Clock>) -> SloAccounting {
        let config = Config::from_flags(["--max-live-streams", "100"]).unwrap();
        SloAccounting::new(vec![Slo::push_health()], &config, clock)
    }

    fn id(stream: &str) -> StreamId<'_> {
        StreamId { domain: "d", app: "live", stream }
    }

    fn transition(slo: &SloAccounting, stream: &str, start: bool, session: u64, event_time: u64, at: u64) {
        #[allow(clippy::cast_possible_wrap, reason = "test times")]
        let event_time = event_time as i64;
        slo.transition(&Transition { stream: id(stream), sent: id(stream), session, start, event_time, at_secs: at });
    }

    /// A report of `errors` whose interval ends at `data_time` (seconds).
    fn report(
        slo: &SloAccounting,
        stream: &str,
        errors: &[(u8, u64)],
        data_time: u64,
        interval_ms: Option<i64>,
        at: u64,
    ) {
        slo.report(&ReportAccepted {
            sent: id(stream),
            stream: id(stream),
            data_time_ms: i64::try_from(data_time * 1000).unwrap(),
            report_interval_ms: interval_ms,
            errors,
            frame_max: [None; 2],
            delay_secs: 0.0,
            future_data_time: false,
            unparsed_details: &[],
            at_secs: at,
        });
    }

    /// The value of the sample `name{labels}` on the page.
    fn value(slo: &SloAccounting, sample: &str) -> Option<u64> {
        let mut page = String::new();
        slo.encode(&mut Encoder::new(&mut page));
        page.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
    }

    const LIVE: &str = "css_push_live_seconds_total{domain=\"d\",app=\"live\"}";
    const BAD: &str = "css_push_bad_seconds_total{domain=\"d\",app=\"live\",slo=\"push-health\"}";
    const UNATTRIBUTED: &str = "css_push_slo_unattributed_seconds_total{domain=\"d\",app=\"live\",slo=\"push-health\"}";
    const LATE: (u8, u64) = (6, 3);

    #[test]
    fn bad_seconds_are_the_exact_union_clipped_to_the_session() {
        // The events' receive times move the accounting's clock.
        let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
        let slo = accounting(clock);
        transition(&slo, "s", true, 1, T0 + 1000, T0 + 1000);
        report(&slo, "s", &[LATE], T0 + 1010, Some(5000), T0 + 1010);
        assert_eq!(value(&slo, BAD), Some(5), "[1005, 1010)");
        report(&slo, "s", &[LATE, (7, 9)], T0 + 1010, Some(5000), T0 + 1011);
        assert_eq!(value(&slo, BAD), Some(5), "a duplicate, two bad types, any count: no new second");
        report(&slo, "s", &[LATE], T0 + 1012, Some(5000), T0 + 1012);
        assert_eq!(value(&slo, BAD), Some(7), "an overlap adds [1010, 1012)");
        report(&slo, "s", &[LATE], T0 + 1003, None, T0 + 1013);
        assert_eq!(value(&slo, BAD), Some(10), "out of order, 5 s when absent, cut at the start: [1000, 1003)");
        report(&slo, "s", &[LATE], T0 + 1030, Some(60_000), T0 + 1500);
        assert_eq!(value(&slo, BAD), Some(30), "late by 8 minutes, 60 s: [1000, 1030) less the 10 already bad");
        report(&slo, "s", &[(5, 1), (16, 1), (0, 1)], T0 + 1100, Some(5000), T0 + 1500);
        assert_eq!(value(&slo, BAD), Some(30), "types the SLO does not count");
        transition(&slo, "s", false, 1, T0 + 1600, T0 + 1600);
        report(&slo, "s", &[LATE], T0 + 1603, Some(5000), T0 + 1603);
        assert_eq!(value(&slo, BAD), Some(32), "after the end only [1598, 1600) counts");
        report(&slo, "s", &[LATE], T0 + 1700, Some(999_000), T0 + 1700);
        assert_eq!(value(&slo, BAD), Some(32), "the interval is at most 60 s: [1640, 1700) is after the end");
        assert_eq!(value(&slo, LIVE), Some(600));
        assert_eq!(value(&slo, UNATTRIBUTED), Some(0));
        assert_eq!(value(&slo, "css_push_slo_late_reports_total"), Some(0));
    }

    #[test]
    fn live_time_is_per_session_and_a_missed_end_closes_at_the_next_start() {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
        let slo = accounting(clock.clone());
        // Started 100 s ago by its event_time; more than the dedup window ago is not believed.
        transition(&slo, "a", true, 1, T0 - 100, T0);
        transition(&slo, "b", true, 1, T0 - 5000, T0);
        assert_eq!(value(&slo, LIVE), Some(100 + 900));
        clock.advance(Duration::from_secs(50));
        assert_eq!(value(&slo, LIVE), Some(1100), "computed at the scrape");
        transition(&slo, "a", true, 1, T0, T0 + 50);
        assert_eq!(value(&slo, LIVE), Some(1100), "a repeated start changes nothing");
        // a's end was missed: its next session closes the first one.
        transition(&slo, "a", true, 2, T0 + 40, T0 + 50);
        transition(&slo, "a", false, 1, T0 + 50, T0 + 50);
        assert_eq!(value(&slo, LIVE), Some(1100), "the old session's late end leaves the new one live");
        transition(&slo, "b", false, 1, T0 + 50, T0 + 50);
        transition(&slo, "b", true, 1, T0 + 50, T0 + 50);
        clock.advance(Duration::from_secs(10));
        assert_eq!(value(&slo, LIVE), Some(1110), "only a is live; b's retried start did not resurrect it");
        let health = slo.recent_health(900);
        assert_eq!(health[0].live_streams, 1);
    }

    #[test]
    fn streams_without_a_session_are_unattributed_and_pairs_are_born_at_zero() {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
        let slo = accounting(clock);
        report(&slo, "s", &[(5, 1)], T0, None, T0);
        assert_eq!((value(&slo, LIVE), value(&slo, BAD), value(&slo, UNATTRIBUTED)), (Some(0), Some(0), Some(0)));
        report(&slo, "s", &[LATE], T0, None, T0);
        report(&slo, "s", &[LATE], T0 + 2, None, T0 + 2);
        assert_eq!((value(&slo, BAD), value(&slo, UNATTRIBUTED)), (Some(0), Some(7)), "a union too");
        // Once it starts, what was unattributed stays so.
        transition(&slo, "s", true, 1, T0, T0 + 3);
        report(&slo, "s", &[LATE], T0 + 3, None, T0 + 3);
        assert_eq!((value(&slo, BAD), value(&slo, UNATTRIBUTED)), (Some(3), Some(7)));
        let info = "css_push_slo_info{slo=\"push-health\",objective=\"0.99\",window=\"30d\",bad_error_types=\"1,2,3,4,6,7,10,11,12,14,15\"}";
        assert_eq!(value(&slo, info), Some(1));
    }

    #[test]
    fn reports_older_than_the_ring_are_counted_not_marked() {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
        let slo = accounting(clock);
        transition(&slo, "s", true, 1, T0, T0);
        report(&slo, "s", &[LATE], T0 + 10, None, T0 + RING_SECS + 7);
        assert_eq!(value(&slo, BAD), Some(2), "only [T0+8, T0+10) is still in memory");
        assert_eq!(value(&slo, "css_push_slo_late_reports_total"), Some(1));
    }

    #[test]
    fn a_clock_stepped_back_never_lowers_a_counter() {
        let clock = Arc::new(SetClock(AtomicU64::new(T0 + 100)));
        let slo = accounting(clock.clone());
        transition(&slo, "s", true, 1, T0, T0 + 100);
        assert_eq!(value(&slo, LIVE), Some(100));
        clock.0.store(T0 + 10, Ordering::SeqCst);
        assert_eq!(value(&slo, LIVE), Some(100));
        transition(&slo, "s", false, 1, T0, T0 + 10);
        report(&slo, "s", &[LATE], T0 + 100, None, T0 + 10);
        assert_eq!((value(&slo, LIVE), value(&slo, BAD)), (Some(100), Some(5)));
        clock.0.store(T0 + 500, Ordering::SeqCst);
        assert_eq!(value(&slo, LIVE), Some(100), "ended");
    }

    #[test]
    fn restored_live_streams_accrue_from_the_start_and_end_normally() {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
        let slo = accounting(clock.clone());
        slo.restored_live("domain=\"d\",app=\"live\",stream=\"s\"", false, 7);
        clock.advance(Duration::from_secs(30));
        assert_eq!(value(&slo, LIVE), Some(30));
        transition(&slo, "s", false, 7, T0 + 30, T0 + 30);
        clock.advance(Duration::from_secs(30));
        assert_eq!(value(&slo, LIVE), Some(30));
    }

    #[test]
    fn quiet_rings_streams_and_pairs_are_freed() {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
        let slo = accounting(clock.clone());
        report(&slo, "unknown", &[LATE], T0, None, T0);
        transition(&slo, "s", true, 1, T0, T0);
        report(&slo, "s", &[LATE], T0, None, T0);
        assert_eq!(slo.tracked.load(Ordering::Relaxed), 2);
        clock.advance(Duration::from_secs(RING_SECS + 1));
        slo.expire();
        assert_eq!(slo.tracked.load(Ordering::Relaxed), 1, "the unattributed stream went with its ring");
        let rings: usize = slo.streams.iter().map(|s| lock(s).values().map(|s| s.rings.len()).sum::<usize>()).sum();
        assert_eq!(rings, 0);
        transition(&slo, "s", false, 1, T0, T0 + RING_SECS + 1);
        clock.advance(Duration::from_secs(8 * 24 * 3600));
        slo.expire();
        assert_eq!((slo.tracked.load(Ordering::Relaxed), value(&slo, LIVE)), (0, None));
    }

    /// One step of a hostile sender: which stream, what, when.
    #[derive(Debug, Clone)]
    enum Step {
        Start { stream: u8, session: u8, back: u16 },
        End { stream: u8, session: u8 },
        Report { stream: u8, bad: bool, ahead: i32, interval_ms: Option<i64> },
        Tick(u16),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..4u8, 0..3u8, any::<u16>()).prop_map(|(stream, session, back)| Step::Start { stream, session, back }),
            (0..4u8, 0..3u8).prop_map(|(stream, session)| Step::End { stream, session }),
            (0..4u8, any::<bool>(), -2000..700i32, proptest::option::of(-10_000..200_000i64))
                .prop_map(|(stream, bad, ahead, interval_ms)| Step::Report { stream, bad, ahead, interval_ms }),
            (0..400u16).prop_map(Step::Tick),
        ]
    }

    proptest! {
        #[test]
        fn bad_never_exceeds_live_and_nothing_goes_down(steps in proptest::collection::vec(step(), 1..200)) {
            let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
            let slo = accounting(clock.clone());
            let mut now = T0;
            let (mut last_live, mut last_bad) = (0, 0);
            for step in steps {
                let name = |n: u8| format!("s{n}");
                match step {
                    Step::Start { stream, session, back } => {
                        transition(&slo, &name(stream), true, u64::from(session), now - u64::from(back), now);
                    }
                    Step::End { stream, session } => {
                        transition(&slo, &name(stream), false, u64::from(session), now, now);
                    }
                    Step::Report { stream, bad, ahead, interval_ms } => {
                        let errors = if bad { [LATE] } else { [(5, 1)] };
                        let data_time = now.saturating_add_signed(i64::from(ahead));
                        report(&slo, &name(stream), &errors, data_time, interval_ms, now);
                    }
                    Step::Tick(secs) => {
                        clock.advance(Duration::from_secs(u64::from(secs)));
                        now += u64::from(secs);
                        slo.expire();
                    }
                }
                let (live, bad) = (value(&slo, LIVE).unwrap_or(0), value(&slo, BAD).unwrap_or(0));
                prop_assert!(bad <= live, "bad {bad} > live {live}");
                prop_assert!(live >= last_live && bad >= last_bad, "a counter went down");
                (last_live, last_bad) = (live, bad);
            }
        }
    }
}
