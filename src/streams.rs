//! The stream registry: every per-stream series, keyed by the stream's label
//! set, with TTL expiry and a cap on how many streams hold series.
//!
//! Sharded so a scrape rendering one shard never stalls ingest into the
//! others; each shard's lock is held only for a map update or for rendering
//! that shard's streams.
use crate::catalog::{self, Media};
use crate::exposition::{self, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The `stream` label value that streams beyond `--max-streams` fold into.
pub const OVERFLOW_STREAM: &str = "__overflow__";
const SHARDS: usize = 64;

pub const ERRORS: &str = "css_push_errors_total";
pub const FRAME_MAX: &str = "css_push_frame_interval_max_seconds";
pub const LAST_ERROR: &str = "css_push_last_error_timestamp_seconds";
pub const LIVE: &str = "css_push_stream_live";

pub struct StreamRegistry {
    shards: Box<[Mutex<Shard>]>,
    max_streams: usize,
    max_label_bytes: usize,
    /// Streams holding series, overflow buckets excluded.
    tracked: AtomicUsize,
}

type Shard = hashbrown::HashMap<Box<str>, StreamState>;

#[derive(Debug, Default)]
struct StreamState {
    /// (error code, count), sorted by code; a stream sees few types.
    errors: Vec<(u8, u64)>,
    frame_max: [Option<f64>; 2],
    /// `data_time` (seconds) of the latest push error report.
    latest_report: Option<f64>,
    /// `Some` once a push start or end was seen for this stream.
    live: Option<bool>,
    /// Clock seconds of the last callback; drives expiry.
    last_seen: u64,
    overflow: bool,
}

/// One push error report, reduced to what the registry keeps.
pub struct Report<'a> {
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

/// A stream's identity as label values (domain, app, stream).
#[derive(Debug, Clone, Copy)]
pub struct StreamId<'a> {
    pub domain: &'a str,
    pub app: &'a str,
    pub stream: &'a str,
}

impl StreamRegistry {
    pub fn new(max_streams: usize, max_label_bytes: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            max_streams,
            max_label_bytes,
            tracked: AtomicUsize::new(0),
        }
    }

    pub fn max_label_bytes(&self) -> usize {
        self.max_label_bytes
    }

    /// Streams holding series (the `__overflow__` buckets not included).
    pub fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    pub fn record_report(&self, id: StreamId, report: &Report, now_secs: u64) -> Placement {
        self.update(id, now_secs, |s| {
            for &(code, count) in report.errors {
                match s.errors.binary_search_by_key(&code, |e| e.0) {
                    Ok(i) => s.errors[i].1 += count,
                    Err(i) => s.errors.insert(i, (code, count)),
                }
            }
            // Retries can deliver an older report after a newer one.
            if s.latest_report.is_none_or(|t| report.data_time_secs >= t) {
                s.latest_report = Some(report.data_time_secs);
                s.frame_max = report.frame_max;
            }
        })
    }

    /// Marks a stream as pushing or not (push start / end).
    pub fn set_live(&self, id: StreamId, live: bool, now_secs: u64) -> Placement {
        self.update(id, now_secs, |s| s.live = Some(live))
    }

    fn update(&self, id: StreamId, now_secs: u64, f: impl Fn(&mut StreamState)) -> Placement {
        let key = self.key(id);
        if self.update_existing(&key, now_secs, &f) {
            return Placement::Stream;
        }
        if self.tracked.fetch_add(1, Ordering::Relaxed) < self.max_streams {
            let mut shard = self.shard(&key);
            // Another worker may have inserted it since we looked.
            if let Some(s) = shard.get_mut(key.as_str()) {
                self.tracked.fetch_sub(1, Ordering::Relaxed);
                s.last_seen = now_secs;
                f(s);
            } else {
                let mut s = StreamState { last_seen: now_secs, ..Default::default() };
                f(&mut s);
                shard.insert(key.into_boxed_str(), s);
            }
            return Placement::Stream;
        }
        self.tracked.fetch_sub(1, Ordering::Relaxed);
        let key = self.key(StreamId { stream: OVERFLOW_STREAM, ..id });
        if !self.update_existing(&key, now_secs, &f) {
            let mut s = StreamState { last_seen: now_secs, overflow: true, ..Default::default() };
            f(&mut s);
            self.shard(&key).entry(key.into_boxed_str()).or_insert(s);
        }
        Placement::Overflow
    }

    fn update_existing(&self, key: &str, now_secs: u64, f: &impl Fn(&mut StreamState)) -> bool {
        let mut shard = self.shard(key);
        match shard.get_mut(key) {
            Some(s) => {
                s.last_seen = now_secs;
                f(s);
                true
            }
            None => false,
        }
    }

    fn key(&self, id: StreamId) -> String {
        let mut key = String::with_capacity(32 + id.domain.len() + id.app.len() + id.stream.len());
        exposition::push_labels(
            &mut key,
            &[("domain", id.domain), ("app", id.app), ("stream", id.stream)],
            self.max_label_bytes,
        );
        key
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        let i = xxhash_rust::xxh3::xxh3_64(key.as_bytes()) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes streams not seen since `now - ttl`; returns how many real
    /// streams (overflow buckets not counted) were removed.
    pub fn expire(&self, now_secs: u64, ttl_secs: u64) -> usize {
        let cutoff = now_secs.saturating_sub(ttl_secs);
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.retain(|_, s| {
                let keep = s.last_seen > cutoff;
                if !keep && !s.overflow {
                    removed += 1;
                }
                keep
            });
        }
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    /// Appends the per-stream families in text exposition format.
    pub fn render(&self, out: &mut String) {
        let mut errors = String::new();
        let mut frame_max = String::new();
        let mut last = String::new();
        let mut live = String::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (labels, s) in shard.iter() {
                for &(code, count) in &s.errors {
                    let mut et = itoa::Buffer::new();
                    let error_type = if code == catalog::OTHER_CODE { "other" } else { et.format(code) };
                    let extra = [("error_type", error_type), ("error", catalog::error_name(code))];
                    exposition::push_sample(&mut errors, ERRORS, labels, &extra, Value::Int(count));
                }
                for media in Media::ALL {
                    if let Some(v) = s.frame_max[media as usize] {
                        let extra = [("media", media.label())];
                        exposition::push_sample(&mut frame_max, FRAME_MAX, labels, &extra, Value::Float(v));
                    }
                }
                if let Some(t) = s.latest_report {
                    exposition::push_sample(&mut last, LAST_ERROR, labels, &[], Value::Float(t));
                }
                if let Some(l) = s.live {
                    exposition::push_sample(&mut live, LIVE, labels, &[], Value::Int(l as u64));
                }
            }
        }
        out.reserve(errors.len() + frame_max.len() + last.len() + live.len() + 1024);
        let families = [
            (ERRORS, "counter", "Push errors CSS reported, by stream and error type (the count field, summed).", errors),
            (FRAME_MAX, "gauge", "Largest frame arrival gap in the stream's latest push error report.", frame_max),
            (LAST_ERROR, "gauge", "data_time of the stream's latest push error report, Unix seconds.", last),
            (LIVE, "gauge", "1 while the stream is pushing (after a push start), 0 after a push end.", live),
        ];
        for (name, kind, help, body) in families {
            exposition::push_header(out, name, kind, help);
            out.push_str(&body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(stream: &str) -> StreamId<'_> {
        StreamId { domain: "d", app: "live", stream }
    }

    fn report(errors: &[(u8, u64)], video: Option<f64>, t: f64) -> Report<'_> {
        Report { errors, frame_max: [video, None], data_time_secs: t }
    }

    fn rendered(r: &StreamRegistry) -> String {
        let mut s = String::new();
        r.render(&mut s);
        s
    }

    #[test]
    fn counts_accumulate_and_render() {
        let r = StreamRegistry::new(10, 64);
        r.record_report(id("s1"), &report(&[(6, 2), (1, 1)], Some(3.046), 100.0), 0);
        r.record_report(id("s1"), &report(&[(6, 3)], None, 105.0), 0);
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
        let r = StreamRegistry::new(10, 64);
        r.record_report(id("s"), &report(&[(6, 1)], Some(2.0), 200.0), 0);
        r.record_report(id("s"), &report(&[(6, 1)], Some(9.0), 100.0), 0);
        let out = rendered(&r);
        assert!(out.contains("media=\"video\"} 2\n"), "{out}");
        assert!(out.contains("stream=\"s\"} 200\n"), "{out}");
        assert!(out.contains("error=\"video_frame_late\"} 2\n"), "{out}");
    }

    #[test]
    fn streams_past_the_cap_fold_into_overflow() {
        let r = StreamRegistry::new(2, 64);
        for s in ["a", "b", "c", "d"] {
            let want = if s < "c" { Placement::Stream } else { Placement::Overflow };
            assert_eq!(r.record_report(id(s), &report(&[(5, 1)], None, 1.0), 0), want, "{s}");
        }
        assert_eq!(r.tracked(), 2);
        let out = rendered(&r);
        assert!(out.contains("stream=\"__overflow__\",error_type=\"5\",error=\"chunk_size_too_large\"} 2\n"), "{out}");
        // A known stream keeps its own series.
        assert_eq!(r.record_report(id("a"), &report(&[(5, 1)], None, 1.0), 0), Placement::Stream);
    }

    #[test]
    fn expiry_removes_idle_streams_and_frees_the_cap() {
        let r = StreamRegistry::new(1, 64);
        r.record_report(id("old"), &report(&[(1, 1)], None, 1.0), 100);
        assert_eq!(r.record_report(id("new"), &report(&[(1, 1)], None, 1.0), 150), Placement::Overflow);
        assert_eq!(r.expire(100 + 59, 60), 0);
        assert_eq!(r.expire(100 + 60, 60), 1);
        assert_eq!(r.tracked(), 0);
        assert!(rendered(&r).contains("stream=\"__overflow__\""));
        assert_eq!(r.expire(150 + 60, 60), 0);
        assert!(!rendered(&r).contains("stream="));
        assert_eq!(r.record_report(id("new"), &report(&[(1, 1)], None, 1.0), 300), Placement::Stream);
    }

    #[test]
    fn label_values_are_capped_and_escaped() {
        let r = StreamRegistry::new(10, 4);
        r.record_report(
            StreamId { domain: "dom\"ain", app: "a", stream: "stream-long" },
            &report(&[(catalog::error_code(200), 1)], None, 1.0),
            0,
        );
        let out = rendered(&r);
        assert!(out.contains("{domain=\"dom\\\"\",app=\"a\",stream=\"stre\",error_type=\"other\",error=\"unknown\"} 1\n"), "{out}");
    }
}
