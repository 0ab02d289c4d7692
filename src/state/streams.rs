//! The stream registry: every per-stream series, keyed by the stream's label
//! set, with TTL expiry and a cap on how many streams hold series.
//!
//! Sharded so a scrape rendering one shard never stalls ingest into the
//! others; each shard's lock is held only for a map update or for rendering
//! that shard's streams.
use super::budget::SeriesBudget;
pub use super::key::{StreamId, StreamKey};
use super::sharded::{Shard, Sharded};
use crate::catalog::{self, Media};
use crate::expose::families as f;
use crate::expose::{Around, Collector, Encoder, Labels, Value};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

pub struct StreamRegistry {
    shards: Sharded<Shard<StreamState>>,
    max_streams: usize,
    /// Streams holding series, overflow buckets excluded.
    tracked: AtomicUsize,
    /// Streams removed after their TTL.
    expired: AtomicU64,
    /// Callbacks whose stream could not hold series of its own.
    overflowed: AtomicU64,
    budget: Arc<SeriesBudget>,
}

impl StreamState {
    fn new(now_secs: u64, overflow: bool) -> Self {
        Self { last_seen: now_secs, overflow, ..Default::default() }
    }

    /// Series counted against the budget for it.
    fn series(&self) -> usize {
        STREAM_GAUGES + self.errors.len()
    }

    /// What a snapshot keeps of it.
    pub(super) fn gauges(&self) -> StreamGauges {
        let StreamState { frame_max, latest_report, live, last_seen, overflow, .. } = *self;
        StreamGauges { frame_max, latest_report, live, last_seen, overflow }
    }
}

/// Where `domain="..",app=".."` ends in a key: after the second closing
/// quote, skipping escaped ones (values may contain `,stream="`).
pub(super) fn app_labels_len(key: &str) -> usize {
    let mut quotes = 0;
    let mut escaped = false;
    for (i, b) in key.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => {
                quotes += 1;
                if quotes == 4 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    key.len()
}

/// Gauges a stream may show besides its error counters: its latest report
/// time, its largest frame gap per media, and whether it is live.
const STREAM_GAUGES: usize = 4;

/// Most series one stream can hold: its gauges and a counter per error type.
/// A (domain, app) pair reserves this many for its `__overflow__` stream
/// when it is admitted, so the overflow bucket never needs budget later.
#[allow(clippy::cast_possible_truncation, reason = "99 fits any usize")]
pub const MAX_STREAM_SERIES: usize = STREAM_GAUGES + catalog::MAX_LABELLED_CODE as usize + 1;

/// A change to a stream's state, and how many series it would add to it.
trait Change {
    fn new_series(&self, s: &StreamState) -> usize;
    fn apply(&self, s: &mut StreamState);
}

impl<N: Fn(&StreamState) -> usize, F: Fn(&mut StreamState)> Change for (N, F) {
    fn new_series(&self, s: &StreamState) -> usize {
        (self.0)(s)
    }
    fn apply(&self, s: &mut StreamState) {
        (self.1)(s)
    }
}

fn change(new_series: impl Fn(&StreamState) -> usize, apply: impl Fn(&mut StreamState)) -> impl Change {
    (new_series, apply)
}

/// Why an update could not go to the stream's own series.
enum Refused {
    /// `--max-streams` reached.
    Streams,
    /// `--max-series` reached.
    Series,
}

#[derive(Debug, Default)]
pub(super) struct StreamState {
    /// (error code, count), sorted by code; a stream sees few types.
    errors: Errors,
    frame_max: [Option<f64>; 2],
    /// `data_time` (seconds) of the latest push error report.
    latest_report: Option<f64>,
    /// `Some` once a push start or end was seen for this stream: its
    /// liveness as [`super::lifecycle::Lifecycles`] decided it.
    live: Option<bool>,
    /// Clock seconds of the last callback; drives expiry.
    last_seen: u64,
    overflow: bool,
}

/// What a snapshot keeps of a stream: its gauges and expiry, not its counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamGauges {
    pub frame_max: [Option<f64>; 2],
    pub latest_report: Option<f64>,
    pub live: Option<bool>,
    pub last_seen: u64,
    /// An `__overflow__` bucket.
    pub overflow: bool,
}

/// One push error report, reduced to what the registry keeps.
pub struct ErrorReport<'a> {
    /// (error code, count) for each abnormal_event item.
    pub errors: &'a [(u8, u64)],
    /// Largest gap per media in this report, seconds.
    pub frame_max: [Option<f64>; 2],
    pub data_time_secs: f64,
}

/// Where a callback's series went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Stream,
    /// The cap was reached: folded into the `__overflow__` bucket.
    Overflow,
}

/// (error code, count) pairs, sorted by code: the first two (a stream
/// usually shows one or two types) in place, not behind a pointer, so
/// that a report of a known stream reads no line of the heap for them.
pub type Errors = smallvec::SmallVec<[(u8, u64); 2]>;

/// Adds `count` to `code`'s entry of `errors` (sorted by code), saturating:
/// a hostile count must not wrap (or panic) a counter.
pub fn add_count(errors: &mut Errors, code: u8, count: u64) {
    match errors.binary_search_by_key(&code, |e| e.0) {
        Ok(i) => errors[i].1 = errors[i].1.saturating_add(count),
        Err(i) => errors.insert(i, (code, count)),
    }
}

impl StreamRegistry {
    pub fn new(max_streams: usize, budget: Arc<SeriesBudget>) -> Self {
        Self {
            shards: Sharded::default(),
            max_streams,
            tracked: AtomicUsize::new(0),
            expired: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
            budget,
        }
    }

    /// Streams holding series (the `__overflow__` buckets not included).
    pub fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    pub fn record_report(&self, key: &StreamKey, report: &ErrorReport, now_secs: u64) -> Placement {
        // Each error type the stream has not shown yet is a new series.
        let new_series = |s: &StreamState| {
            let errors = report.errors;
            (0..errors.len())
                .filter(|&i| {
                    let code = errors[i].0;
                    s.errors.binary_search_by_key(&code, |e| e.0).is_err() && !errors[..i].iter().any(|e| e.0 == code)
                })
                .count()
        };
        let apply = |s: &mut StreamState| {
            for &(code, count) in report.errors {
                add_count(&mut s.errors, code, count);
            }
            // Retries can deliver an older report after a newer one.
            if s.latest_report.is_none_or(|t| report.data_time_secs >= t) {
                s.latest_report = Some(report.data_time_secs);
                s.frame_max = report.frame_max;
            }
        };
        self.update_or_overflow(key, now_secs, &change(new_series, apply))
    }

    /// Shows the stream's liveness (`css_push_stream_live`), if it has or
    /// can get a place of its own.
    pub fn set_live(&self, key: &StreamKey, live: bool, now_secs: u64) -> Placement {
        self.update_own(key, now_secs, &change(|_| 0, |s: &mut StreamState| s.live = Some(live)))
    }

    /// Stops showing the stream's liveness (its lifecycle was forgotten).
    pub fn clear_live(&self, key: &str) {
        if let Some(s) = self.shards.shard(key).get_mut(key) {
            s.live = None;
        }
    }

    /// Applies the change to the stream's own state. Past a cap nothing is
    /// kept (used alone for liveness, which in an overflow bucket would mean nothing).
    fn update_own(&self, key: &StreamKey, now_secs: u64, change: &impl Change) -> Placement {
        // The name is reserved: a stream called so shares the bucket.
        let refused = if key.is_overflow_bucket() {
            Refused::Streams
        } else {
            match self.upsert(key, now_secs, change, false) {
                Ok(()) => return Placement::Stream,
                Err(refused) => refused,
            }
        };
        match refused {
            Refused::Streams => {
                self.overflowed.fetch_add(1, Ordering::Relaxed);
            }
            Refused::Series => self.budget.note_overflow(),
        }
        Placement::Overflow
    }

    /// Like [`Self::update_own`], but past a cap the change goes to the
    /// (domain, app)'s `__overflow__` bucket, so no count is lost.
    fn update_or_overflow(&self, key: &StreamKey, now_secs: u64, change: &impl Change) -> Placement {
        let placement = self.update_own(key, now_secs, change);
        if placement == Placement::Overflow {
            // Never refused: the bucket's series were reserved with its pair.
            let _ = self.upsert(&key.overflow_bucket(), now_secs, change, true);
        }
        placement
    }

    /// Applies the change to the stream, creating it if absent; refused if it is
    /// new and --max-streams is reached, or if its new series do not fit in
    /// --max-series (an overflow bucket is never refused). Lookup and insert
    /// happen under one shard lock, so racing workers neither drop an update
    /// nor take a place twice.
    fn upsert(&self, key: &StreamKey, now_secs: u64, change: &impl Change, overflow: bool) -> Result<(), Refused> {
        let mut shard = self.shards.at(key.shard_hash());
        if let Some(s) = shard.get_mut(&key.hashed()) {
            self.take_series(change.new_series(s), overflow)?;
            s.last_seen = now_secs;
            change.apply(s);
            return Ok(());
        }
        if !overflow && self.tracked.fetch_add(1, Ordering::Relaxed) >= self.max_streams {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::Streams);
        }
        let mut s = StreamState::new(now_secs, overflow);
        if let Err(refused) = self.take_series(STREAM_GAUGES + change.new_series(&s), overflow) {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
            return Err(refused);
        }
        change.apply(&mut s);
        shard.insert(key.as_str().into(), s);
        Ok(())
    }

    /// Takes `n` series from the budget; an overflow bucket's are reserved
    /// already ([`MAX_STREAM_SERIES`]).
    fn take_series(&self, n: usize, overflow: bool) -> Result<(), Refused> {
        if !overflow && n > 0 && !self.budget.try_take(n) {
            return Err(Refused::Series);
        }
        Ok(())
    }

    /// Removes streams not seen since `now - ttl` (`now - live_ttl` for a
    /// stream that is pushing: a clean push sends no callbacks); returns how
    /// many real streams (overflow buckets not counted) were removed.
    pub fn expire(&self, now_secs: u64, ttl_secs: u64, live_ttl_secs: u64) -> usize {
        let cutoff = now_secs.saturating_sub(ttl_secs);
        let live_cutoff = now_secs.saturating_sub(live_ttl_secs);
        let mut removed = 0;
        for mut shard in self.shards.each() {
            shard.retain(|_, s| {
                let keep = s.last_seen > if s.live == Some(true) { live_cutoff } else { cutoff };
                if !keep && !s.overflow {
                    self.budget.release(s.series());
                    removed += 1;
                }
                keep
            });
        }
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
        self.expired.fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// Calls `f` with every stream's key and what a snapshot keeps of it, a
    /// shard at a time.
    pub fn for_each_gauges(&self, mut f: impl FnMut(&str, StreamGauges)) {
        self.for_each(|key, s| f(key, s.gauges()));
    }

    pub(super) fn shards(&self) -> &Sharded<Shard<StreamState>> {
        &self.shards
    }

    /// Puts back a stream from a snapshot, without counters, under today's
    /// caps: its key is built again from `id`, and it is an overflow bucket
    /// if and only if its name is [`OVERFLOW`] (`g.overflow` is not
    /// believed). False past a cap, or if the key is taken already.
    pub fn restore(&self, key: &StreamKey, g: StreamGauges) -> bool {
        let StreamGauges { frame_max, latest_report, live, last_seen, .. } = g;
        if self.shards.at(key.shard_hash()).contains_key(&key.hashed()) {
            return false;
        }
        let set = move |s: &mut StreamState| (s.frame_max, s.latest_report, s.live) = (frame_max, latest_report, live);
        let restored = self.upsert(key, last_seen, &change(|_| 0, set), key.is_overflow_bucket());
        restored.is_ok()
    }

    pub fn max_streams(&self) -> usize {
        self.max_streams
    }

    /// Calls `f` with every stream's label set and state, a shard at a time.
    fn for_each(&self, mut f: impl FnMut(&str, &StreamState)) {
        for shard in self.shards.each() {
            for (labels, s) in shard.iter() {
                f(labels, s);
            }
        }
    }
}

/// What the families after [`f::ERRORS`] show of a stream, kept by the one
/// pass over the shards that writes that first family.
struct Later {
    /// Its label set: on the page already (its first error line), or in the spare text.
    labels: Range<usize>,
    on_page: bool,
    frame_max: [Option<f64>; 2],
    latest_report: Option<f64>,
    live: Option<bool>,
}

impl Collector for StreamRegistry {
    /// One pass over the shards writes the first family and keeps what the
    /// others show (72 bytes a stream, and the label set of one without
    /// errors), so each stream's label set is read from the map once, not
    /// once a family: those scattered reads were most of a large page's
    /// time. Each later line copies the label set from where the page, or
    /// the spare text, has it already.
    fn encode(&self, enc: &mut Encoder<'_>) {
        // Joined for the error codes shown, as they come.
        let mut by_code: [Option<Around>; 256] = std::array::from_fn(|_| None);
        let around_error = |code: u8| {
            let extra = [("error_type", catalog::error_type_label(code)), ("error", catalog::error_name(code))];
            Around::new(&f::ERRORS, &extra)
        };
        let mut later = Vec::with_capacity(self.tracked() + 64);
        let mut spare = String::new();
        enc.family(&f::ERRORS);
        self.for_each(|labels, s| {
            let mut written = None;
            for &(code, count) in &s.errors {
                let labels = written.clone().map_or(Labels::Text(labels), Labels::Written);
                let around = by_code[usize::from(code)].get_or_insert_with(|| around_error(code));
                let at = enc.sample_around(around, labels, Value::Int(count));
                written.get_or_insert(at);
            }
            if s.frame_max == [None, None] && s.latest_report.is_none() && s.live.is_none() {
                return;
            }
            let on_page = written.is_some();
            let labels = written.unwrap_or_else(|| {
                spare.push_str(labels);
                spare.len() - labels.len()..spare.len()
            });
            let StreamState { frame_max, latest_report, live, .. } = *s;
            later.push(Later { labels, on_page, frame_max, latest_report, live });
        });
        let labels = |l: &Later| {
            if l.on_page {
                Labels::Written(l.labels.clone())
            } else {
                Labels::Text(&spare[l.labels.clone()])
            }
        };
        enc.family(&f::FRAME_MAX);
        let by_media = Media::ALL.map(|media| Around::new(&f::FRAME_MAX, &[("media", media.label())]));
        for l in &later {
            for media in Media::ALL {
                if let Some(v) = l.frame_max[media as usize] {
                    enc.sample_around(&by_media[media as usize], labels(l), Value::Float(v));
                }
            }
        }
        enc.family(&f::LAST_ERROR);
        let around = Around::new(&f::LAST_ERROR, &[]);
        for l in &later {
            if let Some(t) = l.latest_report {
                enc.sample_around(&around, labels(l), Value::Float(t));
            }
        }
        enc.family(&f::STREAM_LIVE);
        let around = Around::new(&f::STREAM_LIVE, &[]);
        for l in &later {
            if let Some(live) = l.live {
                enc.sample_around(&around, labels(l), Value::Int(u64::from(live)));
            }
        }
        let count = |n: usize| Value::Int(n as u64);
        enc.single(&f::STREAMS, count(self.tracked()));
        enc.single(&f::STREAMS_LIMIT, count(self.max_streams));
        enc.single(&f::STREAMS_EXPIRED, Value::Int(self.expired.load(Ordering::Relaxed)));
        enc.single(&f::STREAM_OVERFLOW, Value::Int(self.overflowed.load(Ordering::Relaxed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max_streams: usize) -> StreamRegistry {
        StreamRegistry::new(max_streams, Arc::new(SeriesBudget::new(1 << 20)))
    }

    fn id(stream: &str) -> StreamKey {
        StreamKey::new(StreamId { domain: "d", app: "live", stream }, 64)
    }

    fn report(errors: &[(u8, u64)], video: Option<f64>, t: f64) -> ErrorReport<'_> {
        ErrorReport { errors, frame_max: [video, None], data_time_secs: t }
    }

    /// The sample lines the registry shows (help texts left out).
    fn rendered(r: &StreamRegistry) -> String {
        let mut s = String::new();
        r.encode(&mut Encoder::new(&mut s));
        s.lines().filter(|l| !l.starts_with('#')).flat_map(|l| [l, "\n"]).collect()
    }

    #[test]
    fn counts_accumulate_and_render() {
        let r = registry(10);
        r.record_report(&id("s1"), &report(&[(6, 2), (1, 1)], Some(3.046), 100.0), 0);
        r.record_report(&id("s1"), &report(&[(6, 3)], None, 105.0), 0);
        let out = rendered(&r);
        assert!(out.contains(
            "css_push_errors_total{domain=\"d\",app=\"live\",stream=\"s1\",error_type=\"6\",error=\"video_frame_late\"} 5\n"
        ), "{out}");
        assert!(out.contains("error_type=\"1\",error=\"video_timestamp_rollback\"} 1\n"));
        // The latest report had no video gap: the gauge is gone.
        assert!(!out.contains("css_push_frame_interval_max_seconds{"), "{out}");
        assert!(out.contains("css_push_last_error_timestamp_seconds{domain=\"d\",app=\"live\",stream=\"s1\"} 105\n"));
    }

    #[test]
    fn an_older_report_does_not_replace_the_latest_gauges() {
        let r = registry(10);
        r.record_report(&id("s"), &report(&[(6, 1)], Some(2.0), 200.0), 0);
        r.record_report(&id("s"), &report(&[(6, 1)], Some(9.0), 100.0), 0);
        let out = rendered(&r);
        assert!(out.contains("media=\"video\"} 2\n"), "{out}");
        assert!(out.contains("stream=\"s\"} 200\n"), "{out}");
        assert!(out.contains("error=\"video_frame_late\"} 2\n"), "{out}");
    }

    #[test]
    fn streams_past_the_cap_fold_into_overflow() {
        let r = registry(2);
        for s in ["a", "b", "c", "d"] {
            let want = if s < "c" { Placement::Stream } else { Placement::Overflow };
            assert_eq!(r.record_report(&id(s), &report(&[(5, 1)], None, 1.0), 0), want, "{s}");
        }
        assert_eq!(r.tracked(), 2);
        let out = rendered(&r);
        assert!(out.contains("stream=\"__overflow__\",error_type=\"5\",error=\"chunk_size_too_large\"} 2\n"), "{out}");
        // A known stream keeps its own series.
        assert_eq!(r.record_report(&id("a"), &report(&[(5, 1)], None, 1.0), 0), Placement::Stream);
    }

    #[test]
    fn concurrent_new_streams_lose_no_count_and_respect_the_cap() {
        // Workers racing to create the same overflow bucket, or to take the
        // last free place, must neither drop a count nor pass the cap.
        for _ in 0..20 {
            let r = registry(10);
            std::thread::scope(|scope| {
                for t in 0..4 {
                    let r = &r;
                    scope.spawn(move || {
                        for i in 0..50 {
                            r.record_report(&id(&format!("{t}-{i}")), &report(&[(5, 1)], None, 1.0), 0);
                            r.record_report(&id(&format!("shared-{i}")), &report(&[(5, 1)], None, 1.0), 0);
                        }
                    });
                }
            });
            assert_eq!(r.tracked(), 10);
            let out = rendered(&r);
            let total: u64 = out
                .lines()
                .filter(|l| l.starts_with(f::ERRORS.name))
                .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
                .sum();
            assert_eq!(total, 4 * 50 * 2, "{out}");
            assert_eq!(out.lines().filter(|l| l.starts_with(f::ERRORS.name)).count(), 11, "{out}");
        }
    }

    #[test]
    fn past_the_series_budget_reports_fold_into_overflow_with_exact_totals() {
        // Room for two streams of one type each (4 gauges + 1).
        let budget = Arc::new(SeriesBudget::new(10));
        let r = StreamRegistry::new(100, budget.clone());
        assert_eq!(r.record_report(&id("a"), &report(&[(1, 1)], None, 1.0), 0), Placement::Stream);
        assert_eq!(r.record_report(&id("b"), &report(&[(1, 1), (1, 1)], None, 1.0), 0), Placement::Stream);
        assert_eq!(budget.held(), 10, "a type repeated in one report is one series");
        // A new type of a known stream, and a new stream: both past the budget.
        assert_eq!(r.record_report(&id("a"), &report(&[(2, 5)], None, 1.0), 0), Placement::Overflow);
        assert_eq!(r.record_report(&id("c"), &report(&[(1, 7)], None, 1.0), 0), Placement::Overflow);
        // Known series still count in place.
        assert_eq!(r.record_report(&id("a"), &report(&[(1, 1)], None, 1.0), 0), Placement::Stream);
        let out = rendered(&r);
        assert!(out.contains("css_push_errors_total{domain=\"d\",app=\"live\",stream=\"__overflow__\",error_type=\"2\",error=\"audio_timestamp_rollback\"} 5\n"), "{out}");
        assert!(
            out.contains("stream=\"__overflow__\",error_type=\"1\",error=\"video_timestamp_rollback\"} 7\n"),
            "{out}"
        );
        assert_eq!(r.tracked(), 2);
        assert_eq!(budget.held(), 10, "the bucket's series were reserved with its pair");
        assert_eq!(r.expire(1000, 60, 600), 2);
        assert_eq!(budget.held(), 0, "expiry gives every series back");
    }

    #[test]
    fn expiry_removes_idle_streams_and_frees_the_cap() {
        let r = registry(1);
        r.record_report(&id("old"), &report(&[(1, 1)], None, 1.0), 100);
        assert_eq!(r.record_report(&id("new"), &report(&[(1, 1)], None, 1.0), 150), Placement::Overflow);
        assert_eq!(r.expire(100 + 59, 60, 600), 0);
        assert_eq!(r.expire(100 + 60, 60, 600), 1);
        assert_eq!(r.tracked(), 0);
        assert!(rendered(&r).contains("stream=\"__overflow__\""));
        assert_eq!(r.expire(150 + 60, 60, 600), 0);
        assert!(!rendered(&r).contains("stream="));
        assert_eq!(r.record_report(&id("new"), &report(&[(1, 1)], None, 1.0), 300), Placement::Stream);
    }

    #[test]
    fn long_label_values_render_whole() {
        // 40 KB of quotes escape to 80 KB: past what a u16 length could hold.
        let domain = "\"".repeat(40_000);
        let r = registry(10);
        r.set_live(&StreamKey::new(StreamId { domain: &domain, app: "a", stream: "s" }, 70_000), true, 0);
        let out = rendered(&r);
        let escaped = "\\\"".repeat(40_000);
        assert!(
            out.contains(&format!("css_push_stream_live{{domain=\"{escaped}\",app=\"a\",stream=\"s\"}} 1\n")),
            "{}",
            &out[..200]
        );
    }

    #[test]
    fn live_streams_expire_on_their_own_ttl_and_never_overflow() {
        let r = registry(1);
        r.set_live(&id("a"), true, 1000);
        assert_eq!(r.set_live(&id("b"), true, 1000), Placement::Overflow);
        assert!(!rendered(&r).contains("__overflow__"));
        assert_eq!(r.expire(1100, 60, 600), 0, "a live stream outlives the error TTL");
        r.clear_live("domain=\"d\",app=\"live\",stream=\"a\"");
        assert!(!rendered(&r).contains("css_push_stream_live{"));
        assert_eq!(r.expire(1600, 60, 600), 1);
    }

    #[test]
    fn gauges_restore_without_counters() {
        let r = registry(1);
        r.record_report(&id("a"), &report(&[(6, 2)], Some(3.0), 100.0), 10);
        r.set_live(&id("a"), true, 20);
        r.record_report(&id("b"), &report(&[(6, 1)], None, 90.0), 30);
        let mut saved = Vec::new();
        r.for_each_gauges(|k, g| saved.push((Box::<str>::from(k), g)));
        let back = registry(1);
        for (_, g) in saved.clone() {
            let key = if g.overflow { id("a").overflow_bucket() } else { id("a") };
            assert!(back.restore(&key, g));
        }
        let mut again = Vec::new();
        back.for_each_gauges(|k, g| again.push((Box::<str>::from(k), g)));
        saved.sort_by(|a, b| a.0.cmp(&b.0));
        again.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(saved, again);
        assert_eq!(back.tracked(), 1, "the overflow bucket is not a stream");
        assert!(!rendered(&back).contains("css_push_errors_total{"));
        let own = again.iter().find(|(_, g)| !g.overflow).unwrap().1;
        assert!(!back.restore(&id("c"), own), "the cap holds");
        assert!(!back.restore(&id("a"), own), "a stream is restored once");
    }

    /// The page as it was written before the one-pass render: a family at
    /// a time, a pass over the shards each, every line through the
    /// generic [`Encoder::sample`].
    fn rendered_family_by_family(r: &StreamRegistry) -> String {
        let mut out = String::new();
        let enc = &mut Encoder::new(&mut out);
        enc.family(&f::ERRORS);
        r.for_each(|labels, s| {
            for &(code, count) in &s.errors {
                let extra = [("error_type", catalog::error_type_label(code)), ("error", catalog::error_name(code))];
                enc.sample(&f::ERRORS, labels, &extra, Value::Int(count));
            }
        });
        enc.family(&f::FRAME_MAX);
        r.for_each(|labels, s| {
            for media in Media::ALL {
                if let Some(v) = s.frame_max[media as usize] {
                    enc.sample(&f::FRAME_MAX, labels, &[("media", media.label())], Value::Float(v));
                }
            }
        });
        enc.family(&f::LAST_ERROR);
        r.for_each(|labels, s| {
            if let Some(t) = s.latest_report {
                enc.sample(&f::LAST_ERROR, labels, &[], Value::Float(t));
            }
        });
        enc.family(&f::STREAM_LIVE);
        r.for_each(|labels, s| {
            if let Some(live) = s.live {
                enc.sample(&f::STREAM_LIVE, labels, &[], Value::Int(u64::from(live)));
            }
        });
        let count = |n: usize| Value::Int(n as u64);
        enc.single(&f::STREAMS, count(r.tracked()));
        enc.single(&f::STREAMS_LIMIT, count(r.max_streams));
        enc.single(&f::STREAMS_EXPIRED, Value::Int(r.expired.load(Ordering::Relaxed)));
        enc.single(&f::STREAM_OVERFLOW, Value::Int(r.overflowed.load(Ordering::Relaxed)));
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn the_page_is_the_one_written_family_by_family(
            streams in proptest::collection::vec(
                (
                    "[a-c\"\\\\\n]{0,6}",
                    proptest::collection::vec((proptest::num::u8::ANY, 0u64..u64::MAX), 0..4),
                    proptest::option::of(proptest::num::f64::ANY),
                    proptest::option::of(0u64..10_000_000_000_000),
                    proptest::option::of(proptest::bool::ANY),
                ),
                0..40,
            ),
            max_streams in 1usize..30,
        ) {
            let r = registry(max_streams);
            for (i, (name, errors, video, millis, live)) in streams.iter().enumerate() {
                let key = StreamKey::new(StreamId { domain: "d", app: name, stream: &format!("{name}{i}") }, 64);
                if !errors.is_empty() || video.is_some() || millis.is_some() {
                    let t = millis.map_or(f64::from(u32::try_from(i).unwrap()) + 0.1, |ms| ms as f64 / 1000.0);
                    r.record_report(&key, &report(errors, *video, t), 0);
                }
                if let Some(live) = live {
                    r.set_live(&key, *live, 0);
                }
            }
            let mut page = String::new();
            r.encode(&mut Encoder::new(&mut page));
            proptest::prop_assert_eq!(page, rendered_family_by_family(&r));
        }
    }

    proptest::proptest! {
        /// Counts kept two in place and the rest on the heap are the
        /// per-code saturating sums, sorted by code, as in a plain map.
        #[test]
        fn error_counts_in_place_or_not_are_the_sums_by_code(
            reports in proptest::collection::vec((0u8..6, proptest::num::u64::ANY), 0..40),
        ) {
            let mut errors = Errors::new();
            let mut plain = std::collections::BTreeMap::<u8, u64>::new();
            for &(code, count) in &reports {
                add_count(&mut errors, code, count);
                let sum = plain.entry(code).or_default();
                *sum = sum.saturating_add(count);
                let sums: Vec<(u8, u64)> = plain.iter().map(|(&c, &n)| (c, n)).collect();
                proptest::prop_assert_eq!(errors.as_slice(), sums.as_slice());
            }
        }
    }

    #[test]
    fn label_values_are_capped_and_escaped() {
        let r = registry(10);
        r.record_report(
            &StreamKey::new(StreamId { domain: "dom\"ain", app: "a", stream: "stream-long" }, 4),
            &report(&[(catalog::error_code(200), 1)], None, 1.0),
            0,
        );
        let out = rendered(&r);
        assert!(
            out.contains("{domain=\"dom\\\"\",app=\"a\",stream=\"stre\",error_type=\"other\",error=\"unknown\"} 1\n"),
            "{out}"
        );
    }
}
