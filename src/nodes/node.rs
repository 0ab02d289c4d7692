//! One access node's counters (or those of the `unknown` and `other`
//! buckets), and a sample of them a minute for the status page.
use crate::catalog::{EndCause, Region};
use crate::slo::definition::MAX_SLOS;
use crate::slo::live::Live;
use crate::sync::lock;
use crate::text::push_labels;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The `node` label value of sessions whose access node is not known: no
/// start seen, or a start whose `node` was not an IP address.
pub const UNKNOWN: &str = "unknown";
/// The `node` label value of sessions on nodes past `--max-nodes` (or the
/// series budget).
pub const OTHER: &str = "other";

/// Samples are kept this far apart, ms.
const SAMPLE_EVERY_MS: u64 = 60_000;

/// What a `node` label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeId {
    Ip(IpAddr),
    Unknown,
    Other,
}

impl NodeId {
    pub fn of(node: Option<IpAddr>) -> Self {
        node.map_or(NodeId::Unknown, NodeId::Ip)
    }

    pub fn label(self) -> String {
        match self {
            NodeId::Ip(ip) => ip.to_string(),
            NodeId::Unknown => UNKNOWN.to_owned(),
            NodeId::Other => OTHER.to_owned(),
        }
    }
}

/// A node's series, keyed by node and region.
pub struct Node {
    pub id: NodeId,
    pub region: Region,
    /// `node="..",region=".."`.
    pub labels: Box<str>,
    /// Sessions starting at or after this (Unix ms) count here; older ones
    /// went to `other` before this entry existed.
    pub first_start_ms: u64,
    /// Series it holds in the budget.
    pub series: usize,
    live: Mutex<Live>,
    /// The live time last shown: sessions closed by a racing worker before
    /// their start was added must not make it step back.
    live_shown: AtomicU64,
    bad: [AtomicU64; MAX_SLOS],
    ends: [AtomicU64; EndCause::ALL.len()],
    reports: AtomicU64,
    /// Unix ms of the end of the last report that added bad time; 0: none.
    last_bad_ms: AtomicU64,
    last_seen: AtomicU64,
    history: Mutex<VecDeque<Sample>>,
}

/// A node's counters at one time, ms; bad time of the first SLO.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at_ms: u64,
    live_ms: u64,
    bad_ms: u64,
}

/// A node's counters now, as `/metrics` shows them.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    pub live_ms: u64,
    pub bad_ms: [u64; MAX_SLOS],
    pub ends: [u64; EndCause::ALL.len()],
    pub reports: u64,
    pub live_streams: u64,
}

/// A node's recent health, for the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeHealth {
    pub node: String,
    pub region: &'static str,
    pub live_streams: u64,
    /// Of the first SLO, over the span asked for.
    pub bad_secs: u64,
    pub live_secs: u64,
    /// Unix seconds of the end of the last report that added bad time.
    pub last_bad_secs: Option<u64>,
    /// The streams now on it with the most bad time over the span (their
    /// label sets), most first; see [`super::attach_streams`].
    pub streams: Vec<(String, u64)>,
}

impl NodeHealth {
    /// Bad over live; `None` without live time.
    pub fn bad_share(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss, reason = "a share")]
        (self.live_secs > 0).then(|| self.bad_secs as f64 / self.live_secs as f64)
    }
}

impl Node {
    pub fn new(id: NodeId, region: Region, first_start_ms: u64, series: usize, now: u64) -> Self {
        let mut labels = String::new();
        push_labels(&mut labels, &[("node", &id.label()), ("region", region.label())]);
        let node = Self {
            id,
            region,
            labels: labels.into(),
            first_start_ms,
            series,
            live: Mutex::default(),
            live_shown: AtomicU64::new(0),
            bad: Default::default(),
            ends: Default::default(),
            reports: AtomicU64::new(0),
            last_bad_ms: AtomicU64::new(0),
            last_seen: AtomicU64::new(now),
            history: Mutex::default(),
        };
        // Born at 0: the status page's share starts here.
        lock(&node.history).push_back(Sample { at_ms: now, ..Sample::default() });
        node
    }

    pub fn live(&self) -> MutexGuard<'_, Live> {
        lock(&self.live)
    }

    pub fn add_bad(&self, slo: usize, ms: u64, until_ms: u64) {
        self.bad[slo].fetch_add(ms, Ordering::Relaxed);
        self.last_bad_ms.fetch_max(until_ms, Ordering::Relaxed);
    }

    pub fn count_end(&self, cause: EndCause) {
        self.ends[cause as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_report(&self) {
        self.reports.fetch_add(1, Ordering::Relaxed);
    }

    pub fn touch(&self, now: u64) {
        // Written once a second at most, so workers do not fight over the line.
        if self.last_seen.load(Ordering::Relaxed) / 1000 != now / 1000 {
            self.last_seen.store(now, Ordering::Relaxed);
        }
    }

    pub fn last_seen(&self) -> u64 {
        self.last_seen.load(Ordering::Relaxed)
    }

    /// Live ms up to `now`, never less than shown before.
    fn live_ms(&self, now: u64) -> u64 {
        let base = self.live().at(now);
        self.live_shown.fetch_max(base, Ordering::Relaxed).max(base)
    }

    pub fn counters(&self, now: u64) -> Counters {
        let live_ms = self.live_ms(now);
        Counters {
            live_ms,
            bad_ms: self.bad.each_ref().map(|b| b.load(Ordering::Relaxed)),
            ends: self.ends.each_ref().map(|e| e.load(Ordering::Relaxed)),
            reports: self.reports.load(Ordering::Relaxed),
            live_streams: u64::try_from(self.live().open).unwrap_or(0),
        }
    }

    fn sample(&self, now: u64) -> Sample {
        Sample { at_ms: now, live_ms: self.live_ms(now), bad_ms: self.bad[0].load(Ordering::Relaxed) }
    }

    /// Keeps a sample a minute, for as far back as `keep_ms`.
    pub fn keep_sample(&self, now: u64, keep_ms: u64) {
        let mut history = lock(&self.history);
        if history.back().is_some_and(|s| now.saturating_sub(s.at_ms) < SAMPLE_EVERY_MS) {
            return;
        }
        history.push_back(self.sample(now));
        // The oldest sample kept is the last one at or before now - keep_ms.
        while history.len() > 2 && history[1].at_ms + keep_ms <= now {
            history.pop_front();
        }
    }

    /// Its health since the latest sample at or before `now - span_ms`
    /// (the oldest, if none is that old): within a minute of the span.
    pub fn health(&self, now: u64, span_ms: u64) -> NodeHealth {
        let current = self.sample(now);
        let from = now.saturating_sub(span_ms);
        let then = {
            let history = lock(&self.history);
            let after = history.partition_point(|s| s.at_ms <= from);
            history.get(after.saturating_sub(1)).copied().unwrap_or_default()
        };
        let last_bad = self.last_bad_ms.load(Ordering::Relaxed);
        NodeHealth {
            node: self.id.label(),
            region: self.region.label(),
            live_streams: u64::try_from(self.live().open).unwrap_or(0),
            bad_secs: current.bad_ms.saturating_sub(then.bad_ms) / 1000,
            live_secs: current.live_ms.saturating_sub(then.live_ms) / 1000,
            last_bad_secs: (last_bad > 0).then_some(last_bad / 1000),
            streams: Vec::new(),
        }
    }
}
