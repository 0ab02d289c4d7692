//! The (domain, app) pairs allowed their own label values, each holding its
//! own series (frame gap and session histograms, start and end counters), so
//! forgetting a quiet pair is one removal. Series labelled by domain and app
//! are bounded only if the pairs are: past `--max-apps`, a new pair's
//! callbacks are counted under domain, app and stream "__overflow__".
use super::budget::SeriesBudget;
use super::streams::MAX_STREAM_SERIES;
use super::OVERFLOW;
use crate::catalog::{self, EndCause, Media};
use crate::expose::families as f;
use crate::expose::histogram::Histogram;
use crate::expose::{Collector, Encoder, Value};
use crate::text::push_labels;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Frame gap buckets, seconds (CSS reports gaps above about 1 s).
pub const FRAME_INTERVAL_BUCKETS: [f64; FRAME_BUCKETS] = [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0];
const FRAME_BUCKETS: usize = 11;
const SESSION_BUCKETS_LEN: usize = 11;
/// Push session length buckets, seconds: 10 s to a day.
pub const SESSION_BUCKETS: [f64; SESSION_BUCKETS_LEN] =
    [10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0];

pub struct DomainApps {
    max_apps: usize,
    budget: Arc<SeriesBudget>,
    pairs: RwLock<hashbrown::HashMap<Pair, Arc<AppSeries>>>,
    /// Where pairs past `--max-apps` are counted; never expires.
    overflow: Arc<AppSeries>,
}

/// The series of one (domain, app) pair.
pub struct AppSeries {
    /// `domain="..",app=".."`, escaped.
    labels: Box<str>,
    /// Clock seconds of its last callback.
    last_seen: AtomicU64,
    /// Per media: one lock for all of a report's gaps.
    frame_interval: Mutex<[Histogram<FRAME_BUCKETS>; 2]>,
    starts: AtomicU64,
    /// Ends are rare, a lock is cheap.
    ends: Mutex<Ends>,
}

/// Ends by `errcode` and `cause` label values, and the lengths of the
/// sessions they ended.
struct Ends {
    counts: BTreeMap<(String, &'static str), u64>,
    session_duration: Histogram<SESSION_BUCKETS_LEN>,
}

/// Series a pair can hold, reserved from the budget when it is admitted:
/// two frame gap histograms and the session histogram (buckets, +Inf, sum,
/// count each), starts, ends by every `errcode` value (0-99 with their
/// cause, "other" with two: unknown below 0, access refused above 99), and
/// its `__overflow__` stream, so counts folded there never need budget,
/// and the push-health SLO series.
#[allow(clippy::cast_possible_truncation, reason = "99 fits any usize")]
const PAIR_SERIES: usize = 2 * (FRAME_INTERVAL_BUCKETS.len() + 3)
    + SESSION_BUCKETS.len()
    + 3
    + 1
    + (catalog::MAX_LABELLED_CODE as usize + 3)
    + MAX_STREAM_SERIES
    + SLO_SERIES;

/// The SLO accounting's series per pair: outage seconds, then live, bad
/// and unattributed seconds for each of at most 4 SLOs (`slo::definition`
/// checks its cap against this).
pub const SLO_SERIES: usize = 1 + 3 * 4;

impl AppSeries {
    fn new(domain: &str, app: &str, now_secs: u64) -> Self {
        let mut labels = String::with_capacity(16 + domain.len() + app.len());
        push_labels(&mut labels, &[("domain", domain), ("app", app)]);
        Self {
            labels: labels.into(),
            last_seen: AtomicU64::new(now_secs),
            frame_interval: Mutex::new([const { Histogram::new(&FRAME_INTERVAL_BUCKETS) }; 2]),
            starts: AtomicU64::new(0),
            ends: Mutex::new(Ends {
                // A normal end (errcode 0) exists from the pair's birth, so
                // push-end panels and rates read 0 rather than "No data".
                counts: BTreeMap::from([((catalog::errcode_label(0), EndCause::of(0).label()), 0)]),
                session_duration: Histogram::new(&SESSION_BUCKETS),
            }),
        }
    }

    #[cfg(test)]
    pub fn observe_frame_interval(&self, media: Media, secs: f64) {
        self.observe_frame_intervals(&[(media, secs)]);
    }

    /// Observes a report's frame gaps (seconds), in the order given.
    pub fn observe_frame_intervals(&self, gaps: &[(Media, f64)]) {
        let mut histograms = crate::sync::lock(&self.frame_interval);
        for &(media, secs) in gaps {
            histograms[media as usize].observe(secs);
        }
    }

    pub fn count_start(&self) {
        self.starts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_end(&self, errcode: &str, cause: EndCause, duration_secs: Option<f64>) {
        let mut ends = crate::sync::lock(&self.ends);
        *ends.counts.entry((errcode.to_owned(), cause.label())).or_default() += 1;
        if let Some(secs) = duration_secs {
            ends.session_duration.observe(secs);
        }
    }
}

#[derive(PartialEq, Eq)]
struct Pair(Box<str>, Box<str>);

impl Hash for Pair {
    fn hash<H: Hasher>(&self, h: &mut H) {
        PairRef(&self.0, &self.1).hash(h)
    }
}

/// A borrowed [`Pair`], for lookups without allocating.
#[derive(Hash)]
struct PairRef<'a>(&'a str, &'a str);

impl hashbrown::Equivalent<Pair> for PairRef<'_> {
    fn equivalent(&self, key: &Pair) -> bool {
        *self.0 == *key.0 && *self.1 == *key.1
    }
}

impl DomainApps {
    pub fn new(max_apps: usize, budget: Arc<SeriesBudget>) -> Self {
        // The overflow pair exists whatever the budget.
        budget.force(PAIR_SERIES);
        let overflow = Arc::new(AppSeries::new(OVERFLOW, OVERFLOW, 0));
        Self { max_apps, budget, pairs: RwLock::default(), overflow }
    }

    /// The pair's series, remembering the pair if it is new; `None` past
    /// `--max-apps` or `--max-series` (count under [`Self::overflow`] then).
    pub fn admit(&self, domain: &str, app: &str, now_secs: u64) -> Option<Arc<AppSeries>> {
        self.admitting(domain, app, now_secs, |series| series.cloned())
    }

    /// `f` of what [`Self::admit`] returns: for a known pair, under the
    /// map's read lock, so the ingest path counts no reference to it.
    pub fn admitting<R>(
        &self,
        domain: &str,
        app: &str,
        now_secs: u64,
        f: impl FnOnce(Option<&Arc<AppSeries>>) -> R,
    ) -> R {
        let key = PairRef(domain, app);
        if let Some(series) = crate::sync::read(&self.pairs).get(&key) {
            // Written once a second at most, so the workers do not fight
            // over the cache line on every callback.
            if series.last_seen.load(Ordering::Relaxed) != now_secs {
                series.last_seen.store(now_secs, Ordering::Relaxed);
            }
            return f(Some(series));
        }
        let mut pairs = crate::sync::write(&self.pairs);
        if let Some(series) = pairs.get(&key) {
            series.last_seen.store(now_secs, Ordering::Relaxed);
            let series = series.clone();
            drop(pairs);
            return f(Some(&series));
        }
        if pairs.len() >= self.max_apps {
            drop(pairs);
            return f(None);
        }
        if !self.budget.try_take(PAIR_SERIES) {
            drop(pairs);
            self.budget.note_overflow();
            return f(None);
        }
        let series = Arc::new(AppSeries::new(domain, app, now_secs));
        pairs.insert(Pair(domain.into(), app.into()), series.clone());
        drop(pairs);
        f(Some(&series))
    }

    pub fn overflow(&self) -> &Arc<AppSeries> {
        &self.overflow
    }

    /// Forgets pairs, and their series, without a callback since `cutoff`;
    /// returns how many.
    pub fn expire(&self, cutoff_secs: u64) -> usize {
        let mut pairs = crate::sync::write(&self.pairs);
        let before = pairs.len();
        pairs.retain(|_, series| {
            let keep = series.last_seen.load(Ordering::Relaxed) > cutoff_secs;
            if !keep {
                self.budget.release(PAIR_SERIES);
            }
            keep
        });
        before - pairs.len()
    }

    pub fn len(&self) -> usize {
        crate::sync::read(&self.pairs).len()
    }

    /// Calls `f` with every pair allowed its own labels and when it was last seen.
    pub fn for_each_pair(&self, mut f: impl FnMut(&str, &str, u64)) {
        for (Pair(domain, app), series) in crate::sync::read(&self.pairs).iter() {
            f(domain, app, series.last_seen.load(Ordering::Relaxed));
        }
    }

    /// Puts back a pair from a snapshot, with empty series, or keeps the
    /// later of two last-seen times if it is back already; false past the cap.
    pub fn restore(&self, domain: &str, app: &str, last_seen_secs: u64) -> bool {
        if let Some(series) = crate::sync::read(&self.pairs).get(&PairRef(domain, app)) {
            series.last_seen.fetch_max(last_seen_secs, Ordering::Relaxed);
            return true;
        }
        self.admit(domain, app, last_seen_secs).is_some()
    }

    /// Whether the pair has labels of its own.
    pub fn contains(&self, domain: &str, app: &str) -> bool {
        crate::sync::read(&self.pairs).contains_key(&PairRef(domain, app))
    }

    pub fn max_apps(&self) -> usize {
        self.max_apps
    }

    /// Calls `f` with every pair's series, the overflow pair last.
    fn for_each(&self, mut f: impl FnMut(&AppSeries)) {
        for series in crate::sync::read(&self.pairs).values() {
            f(series);
        }
        f(&self.overflow);
    }
}

impl Collector for DomainApps {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.family(&f::FRAME_INTERVAL);
        self.for_each(|s| {
            // A copy: the page is not written under the ingest path's lock.
            let frame_interval = crate::sync::lock(&s.frame_interval).clone();
            for media in Media::ALL {
                let h = &frame_interval[media as usize];
                if h.count() > 0 {
                    enc.histogram(&f::FRAME_INTERVAL, &s.labels, &[("media", media.label())], h);
                }
            }
        });
        enc.family(&f::STREAM_STARTS);
        self.for_each(|s| match s.starts.load(Ordering::Relaxed) {
            0 => {}
            n => enc.sample(&f::STREAM_STARTS, &s.labels, &[], Value::Int(n)),
        });
        enc.family(&f::STREAM_ENDS);
        self.for_each(|s| {
            for ((errcode, cause), n) in crate::sync::lock(&s.ends).counts.iter() {
                enc.sample(&f::STREAM_ENDS, &s.labels, &[("errcode", errcode), ("cause", cause)], Value::Int(*n));
            }
        });
        enc.family(&f::SESSION_DURATION);
        self.for_each(|s| {
            let session_duration = crate::sync::lock(&s.ends).session_duration.clone();
            if session_duration.count() > 0 {
                enc.histogram(&f::SESSION_DURATION, &s.labels, &[], &session_duration);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(apps: &DomainApps) -> String {
        let mut out = String::new();
        apps.encode(&mut Encoder::new(&mut out));
        out
    }

    #[test]
    fn admits_up_to_the_cap_and_frees_on_expiry() {
        let apps = DomainApps::new(2, Arc::new(SeriesBudget::new(1000)));
        assert!(apps.admit("d", "a", 10).is_some());
        assert!(apps.admit("d", "b", 10).is_some());
        assert!(apps.admit("d", "a", 20).is_some(), "a known pair is always admitted");
        assert!(apps.admit("e", "a", 20).is_none());
        assert_eq!(apps.expire(15), 1);
        assert_eq!(apps.len(), 1);
        assert!(apps.admit("e", "a", 30).is_some());
    }

    #[test]
    fn pairs_take_series_from_the_budget_and_give_them_back() {
        let budget = Arc::new(SeriesBudget::new(3 * PAIR_SERIES as u64 + 1));
        let apps = DomainApps::new(10, budget.clone());
        assert_eq!(budget.held(), PAIR_SERIES as u64, "the overflow pair");
        apps.admit("d", "a", 10).unwrap().count_end("3", EndCause::of(3), None);
        assert!(apps.admit("d", "b", 10).is_some());
        assert!(apps.admit("d", "c", 10).is_none(), "the budget is spent");
        assert_eq!(budget.held(), 3 * PAIR_SERIES as u64);
        assert_eq!(apps.expire(10), 2);
        assert_eq!(budget.held(), PAIR_SERIES as u64);
    }

    #[test]
    fn a_pair_shows_its_series_and_forgetting_it_removes_them_all() {
        let apps = DomainApps::new(10, Arc::new(SeriesBudget::new(1000)));
        let s = apps.admit("d\"x", "live", 10).unwrap();
        s.observe_frame_interval(Media::Video, 3.0);
        s.count_start();
        s.count_end("3", EndCause::of(3), Some(60.0));
        apps.overflow().count_start();
        let out = page(&apps);
        for want in [
            "css_push_frame_interval_seconds_count{domain=\"d\\\"x\",app=\"live\",media=\"video\"} 1\n",
            "css_push_stream_starts_total{domain=\"d\\\"x\",app=\"live\"} 1\n",
            "css_push_stream_ends_total{domain=\"d\\\"x\",app=\"live\",errcode=\"3\",cause=\"pusher_stopped\"} 1\n",
            "css_push_stream_ends_total{domain=\"d\\\"x\",app=\"live\",errcode=\"0\",cause=\"unknown\"} 0\n",
            "css_push_session_duration_seconds_sum{domain=\"d\\\"x\",app=\"live\"} 60\n",
            "css_push_stream_starts_total{domain=\"__overflow__\",app=\"__overflow__\"} 1\n",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
        assert!(!out.contains("media=\"audio\""), "an untouched histogram is not shown: {out}");
        apps.expire(10);
        assert!(!page(&apps).contains("app=\"live\""));
    }
}
