//! Where push breaks (issue 25): live and bad stream-seconds, live streams,
//! push ends by cause and push error reports per CSS access node (the
//! `node` of the push start) and region (from its `set_id`).
//!
//! The join is by session: the lifecycle store (`state::lifecycle`) keeps
//! each push session's node and region, and matches every report and end
//! to its session by `sequence` (and keeps it across a restart with the
//! state file); ingest's events carry what it matched. What has no known
//! session counts under `node="unknown"`. The bad time is the SLO
//! accounting's own (each bad millisecond of a session once, clipped to the
//! session), told through [`BadTime`], so the nodes' bad seconds add up to
//! the pairs' (outage gaps between sessions stay per pair: a gap is on no
//! node). Nothing here is per session or per stream: a few counters per
//! node, updated in O(1) per callback.
//!
//! Bounded: at most `--max-nodes` nodes have series of their own, each
//! taken from the series budget; sessions on further nodes count under
//! `node="other"`. A node without live streams or callbacks for
//! `--stream-ttl` is forgotten. `user_ip` (personal data) is never read;
//! `set_id` shows only as the region.
mod node;

pub use node::{NodeHealth, NodeId, OTHER, UNKNOWN};

use crate::catalog::{EndCause, Region};
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use crate::ingest::event::{Observer, ReportAccepted, Transition};
use crate::slo::accounting::secs;
use crate::slo::monotonic::Monotonic;
use crate::slo::BadTime;
use crate::state::budget::SeriesBudget;
use crate::state::clock::Clock;
use crate::state::lifecycle::Lifecycle;
use crate::state::limits::Limits;
use crate::sync::{read, write};
use node::Node;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// How far back the status page's node table looks, ms.
pub const RECENT_MS: u64 = 15 * 60_000;
/// Streams named per node on the status page.
pub const STREAMS_PER_NODE: usize = 3;

/// Gives each node of `health` the streams of `bad` that are on it now
/// (the node and region of their current session; a node folded into
/// `other` gives its streams to `other`), at most [`STREAMS_PER_NODE`]
/// each: (stream labels, node, region, bad seconds), most bad first. What
/// a support ticket about a node needs besides its IP.
pub fn attach_streams(health: &mut [NodeHealth], bad: impl IntoIterator<Item = (String, Option<IpAddr>, Region, u64)>) {
    let rows: hashbrown::HashMap<(String, &str), usize> =
        health.iter().enumerate().map(|(i, h)| ((h.node.clone(), h.region), i)).collect();
    for (labels, node, region, secs) in bad {
        let row = rows
            .get(&(NodeId::of(node).label(), region.label()))
            .or_else(|| rows.get(&(OTHER.to_owned(), region.label())));
        if let Some(streams) = row.map(|&i| &mut health[i].streams).filter(|s| s.len() < STREAMS_PER_NODE) {
            streams.push((labels, secs));
        }
    }
}

pub struct NodeAccounting {
    /// SLO names, in definition order.
    slos: Vec<String>,
    max: usize,
    clock: Monotonic,
    /// When counting began, Unix ms: nothing before it is counted.
    born_ms: u64,
    ttl_ms: u64,
    budget: Arc<SeriesBudget>,
    nodes: RwLock<hashbrown::HashMap<(NodeId, Region), Arc<Node>>>,
    /// Nodes of their own (not `unknown` nor `other`).
    tracked: AtomicUsize,
    /// Push sessions counted under `other` for want of room.
    folded: AtomicU64,
}

impl NodeAccounting {
    /// `slos`: the SLO names, in definition order.
    pub fn new(slos: Vec<String>, limits: &Limits, budget: Arc<SeriesBudget>, clock: Arc<dyn Clock>) -> Self {
        let clock = Monotonic::new(clock);
        Self {
            slos,
            max: limits.max_nodes,
            born_ms: clock.now(),
            clock,
            ttl_ms: u64::try_from(limits.stream_ttl.as_millis()).unwrap_or(u64::MAX),
            budget,
            nodes: RwLock::default(),
            tracked: AtomicUsize::new(0),
            folded: AtomicU64::new(0),
        }
    }

    /// Series one node holds: live seconds, live streams, reports, bad
    /// seconds per SLO, ends per cause.
    fn series(&self) -> usize {
        3 + self.slos.len() + EndCause::ALL.len()
    }

    /// A live session restored from the state file: it accrues from the process start.
    pub fn restored_live(&self, l: &Lifecycle) {
        let r = &l.record;
        self.admitting(r.node, r.region, r.start_ms, self.clock.now()).live().open(self.counted_from(r.start_ms));
    }

    /// A stream whose push sessions the lifecycle store forgot: a live one ends now.
    pub fn forgotten(&self, l: &Lifecycle) {
        if l.live {
            let (r, now) = (&l.record, self.clock.now());
            self.counting(r.node, r.region, r.start_ms).live().close(self.counted_from(r.start_ms), now);
        }
    }

    /// Forgets nodes without live streams quiet for the TTL; keeps a sample
    /// of the others for the status page.
    pub fn expire(&self) {
        let now = self.clock.now();
        let cutoff = now.saturating_sub(self.ttl_ms);
        let mut nodes = write(&self.nodes);
        nodes.retain(|_, n| {
            // Held elsewhere: a worker may be about to open a session on it.
            let keep = Arc::strong_count(n) > 1 || n.live().open > 0 || n.last_seen() > cutoff;
            if keep {
                n.keep_sample(now, RECENT_MS);
            } else {
                self.budget.release(n.series);
                if matches!(n.id, NodeId::Ip(_)) {
                    self.tracked.fetch_sub(1, Ordering::Relaxed);
                }
            }
            keep
        });
    }

    /// Nodes with series of their own now.
    pub fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// The `--max-nodes` bound.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Every node's health over about the last `span_ms` (at most
    /// [`RECENT_MS`]): the worst bad share first, then the most live streams.
    pub fn recent_health(&self, span_ms: u64) -> Vec<NodeHealth> {
        let now = self.clock.now();
        let nodes: Vec<Arc<Node>> = read(&self.nodes).values().cloned().collect();
        let mut out: Vec<NodeHealth> = nodes
            .iter()
            .map(|n| {
                n.keep_sample(now, RECENT_MS);
                n.health(now, span_ms.min(RECENT_MS))
            })
            .collect();
        out.sort_by(|a, b| {
            let share = |h: &NodeHealth| h.bad_share().unwrap_or(-1.0);
            share(b)
                .total_cmp(&share(a))
                .then_with(|| b.live_streams.cmp(&a.live_streams))
                .then_with(|| (&a.node, a.region).cmp(&(&b.node, b.region)))
        });
        out
    }

    /// Counting starts at the process start.
    fn counted_from(&self, ms: u64) -> u64 {
        ms.max(self.born_ms)
    }

    /// The entry of (`id`, `region`), if any.
    fn find(&self, id: NodeId, region: Region) -> Option<Arc<Node>> {
        read(&self.nodes).get(&(id, region)).cloned()
    }

    /// Where a session started at `start_ms` on `node` counts, once its
    /// start was counted ([`pick`]), the bucket created if need be.
    fn counting(&self, node: Option<IpAddr>, region: Region, start_ms: u64) -> Arc<Node> {
        pick(node, start_ms, |id| self.find(id, region)).unwrap_or_else(|bucket| self.bucket(bucket, region))
    }

    /// Where a session that starts at `start_ms` on `node` counts: its
    /// node's entry, created if `--max-nodes` and the series budget allow,
    /// else `other`.
    fn admitting(&self, node: Option<IpAddr>, region: Region, start_ms: u64, now: u64) -> Arc<Node> {
        let Some(ip) = node else { return self.bucket(NodeId::Unknown, region) };
        let id = NodeId::Ip(ip);
        if self.find(id, region).is_none() {
            let mut nodes = write(&self.nodes);
            if !nodes.contains_key(&(id, region)) && self.admit() {
                nodes.insert((id, region), Arc::new(Node::new(id, region, start_ms, self.series(), now)));
            }
        }
        let n = self.counting(node, region, start_ms);
        if n.id == NodeId::Other {
            self.folded.fetch_add(1, Ordering::Relaxed);
        }
        n
    }

    /// Takes a node's place and series; false past `--max-nodes` or the budget.
    fn admit(&self) -> bool {
        if self.tracked.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        if !self.budget.try_take(self.series()) {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
            self.budget.note_overflow();
            return false;
        }
        true
    }

    /// The `unknown` or `other` entry of `region`: always there when needed,
    /// so nothing is lost (a handful, outside `--max-nodes`).
    fn bucket(&self, id: NodeId, region: Region) -> Arc<Node> {
        if let Some(n) = self.find(id, region) {
            return n;
        }
        let now = self.clock.now();
        let mut nodes = write(&self.nodes);
        let n = nodes.entry((id, region)).or_insert_with(|| {
            self.budget.force(self.series());
            Arc::new(Node::new(id, region, 0, self.series(), now))
        });
        n.clone()
    }

    /// The node a report or end of the session `matched` counts on.
    fn of_session(&self, matched: Option<(Option<IpAddr>, Region, u64)>) -> Arc<Node> {
        self.on_session(matched, Arc::clone)
    }

    /// `f` of the node [`Self::of_session`] picks: under the map's read
    /// lock when that node is there already (nearly always), so the ingest
    /// path counts no reference to it.
    fn on_session<R>(&self, matched: Option<(Option<IpAddr>, Region, u64)>, f: impl FnOnce(&Arc<Node>) -> R) -> R {
        let (node, region, start_ms) = matched.unwrap_or((None, Region::Unknown, 0));
        {
            let nodes = read(&self.nodes);
            if let Ok(n) = pick(node, start_ms, |id| nodes.get(&(id, region))) {
                return f(n);
            }
        }
        // A bucket to create first.
        f(&self.counting(node, region, start_ms))
    }
}

/// Where a session started at `start_ms` on `node` counts once its start
/// was counted, among the entries of its region `get` finds: its node's
/// entry if the session is not older than the entry, else `other` (it
/// started while the node had no room); `unknown` without a node. `Err`
/// names that bucket when `get` does not find it.
fn pick<N: AsRef<Node>>(node: Option<IpAddr>, start_ms: u64, get: impl Fn(NodeId) -> Option<N>) -> Result<N, NodeId> {
    let bucket = match node {
        None => NodeId::Unknown,
        Some(ip) => match get(NodeId::Ip(ip)) {
            Some(n) if n.as_ref().first_start_ms <= start_ms => return Ok(n),
            _ => NodeId::Other,
        },
    };
    get(bucket).ok_or(bucket)
}

impl Observer for NodeAccounting {
    fn transition(&self, t: &Transition<'_>) {
        let now = self.clock.at(t.at_ms);
        let Some(effect) = t.effect else {
            // The lifecycle store had no room: no session to join.
            if let Some(cause) = t.cause {
                self.of_session(None).count_end(cause);
            }
            return;
        };
        let ended = effect.ended.map(|p| (p.node, p.region, p.start_ms));
        if let Some((start, end)) = effect.closed {
            self.of_session(ended).live().close(self.counted_from(start), end.max(self.born_ms));
        }
        if let Some(start) = effect.opened {
            let n = self.admitting(t.node, t.region, start, now);
            n.live().open(self.counted_from(start));
            n.touch(now);
        }
        if let Some(cause) = t.cause {
            let n = self.of_session(ended);
            n.count_end(cause);
            n.touch(now);
        }
    }

    fn report(&self, r: &ReportAccepted<'_>) {
        let now = self.clock.at(r.at_ms);
        self.on_session(r.matched.map(|m| (m.node, m.region, m.start_ms)), |n| {
            n.count_report();
            n.touch(now);
        });
    }
}

impl BadTime for NodeAccounting {
    fn bad(&self, r: &ReportAccepted<'_>, slo: usize, added_ms: u64) {
        let Some(m) = r.matched else { return };
        let until = u64::try_from(r.data_time_ms).unwrap_or(0).min(r.at_ms);
        self.counting(m.node, m.region, m.start_ms).add_bad(slo, added_ms, until);
    }
}

impl Collector for NodeAccounting {
    fn encode(&self, enc: &mut Encoder<'_>) {
        let now = self.clock.now();
        let nodes: Vec<Arc<Node>> = read(&self.nodes).values().cloned().collect();
        let counters: Vec<_> = nodes.iter().map(|n| n.counters(now)).collect();
        let rows = || nodes.iter().zip(&counters);
        enc.family(&f::NODE_LIVE_SECONDS);
        for (n, c) in rows() {
            enc.sample(&f::NODE_LIVE_SECONDS, &n.labels, &[], Value::Float(secs(c.live_ms)));
        }
        enc.family(&f::NODE_BAD_SECONDS);
        for (n, c) in rows() {
            for (i, slo) in self.slos.iter().enumerate() {
                enc.sample(&f::NODE_BAD_SECONDS, &n.labels, &[("slo", slo)], Value::Float(secs(c.bad_ms[i])));
            }
        }
        enc.family(&f::NODE_STREAMS_LIVE);
        for (n, c) in rows() {
            enc.sample(&f::NODE_STREAMS_LIVE, &n.labels, &[], Value::Int(c.live_streams));
        }
        enc.family(&f::NODE_STREAM_ENDS);
        for (n, c) in rows() {
            for cause in EndCause::ALL {
                let labels = [("cause", cause.label())];
                enc.sample(&f::NODE_STREAM_ENDS, &n.labels, &labels, Value::Int(c.ends[cause as usize]));
            }
        }
        enc.family(&f::NODE_REPORTS);
        for (n, c) in rows() {
            enc.sample(&f::NODE_REPORTS, &n.labels, &[], Value::Int(c.reports));
        }
        enc.single(&f::NODES_TRACKED, Value::Int(self.tracked() as u64));
        enc.single(&f::NODES_LIMIT, Value::Int(self.max as u64));
        enc.single(&f::NODE_OVERFLOW, Value::Int(self.folded.load(Ordering::Relaxed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::{Effect, StreamId, StreamKey};
    use crate::state::clock::ManualClock;
    use crate::state::lifecycle::PastSession;
    use std::time::Duration;

    const T0: u64 = 1_764_000_000_000;

    fn accounting(flags: &[&str], budget: u64) -> (NodeAccounting, Arc<ManualClock>, Arc<SeriesBudget>) {
        let limits = crate::cli::Config::from_flags(flags).unwrap().limits();
        let clock = Arc::new(ManualClock::new(Duration::from_millis(T0)));
        let budget = Arc::new(SeriesBudget::new(budget));
        let nodes = NodeAccounting::new(vec!["push-health".into()], &limits, budget.clone(), clock.clone());
        (nodes, clock, budget)
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([198, 51, 100, last]))
    }

    /// A start of a session at `start_ms` on `node`, or an end of one
    /// started at `start_ms` on `node` with `cause`, at the clock's now.
    fn tell(n: &NodeAccounting, clock: &ManualClock, node: Option<IpAddr>, start_ms: u64, cause: Option<EndCause>) {
        let key = StreamKey::new(StreamId { domain: "d", app: "live", stream: "s" }, 64);
        let at_ms = u64::try_from(clock.now().as_millis()).unwrap();
        let effect = match cause {
            None => Effect { opened: Some(start_ms), ..Effect::default() },
            Some(_) => Effect {
                closed: Some((start_ms, at_ms)),
                ended: Some(PastSession { session: 1, start_ms, end_ms: at_ms, node, region: Region::Mainland }),
                ..Effect::default()
            },
        };
        let id = StreamId { domain: "d", app: "live", stream: "s" };
        n.transition(&Transition {
            stream: id,
            sent: id,
            key: &key,
            folded: false,
            session: 1,
            sequence: "q",
            start: cause.is_none(),
            event_time: 0,
            node,
            region: Region::Mainland,
            errcode: cause.map(|_| 5),
            cause,
            duration_ms: None,
            effect: Some(effect),
            at_secs: at_ms / 1000,
            at_ms,
        });
    }

    proptest::proptest! {
        /// The node a report counts on, picked under the read lock, is the
        /// one the plain path (`counting`, `bucket`) picks, whichever nodes
        /// have room and whenever their sessions started.
        #[test]
        fn the_read_locked_pick_is_the_plain_one(
            starts in proptest::collection::vec((0u8..6, 0u64..4), 0..12),
            asks in proptest::collection::vec((proptest::option::of((proptest::option::of(0u8..6), 0u64..4)), 0u8..3), 1..12),
        ) {
            let (n, clock, _) = accounting(&["--max-nodes", "3"], 1000);
            for (last, start) in starts {
                tell(&n, &clock, ip(last), T0 + start, None);
            }
            let regions = [Region::Mainland, Region::Unknown, Region::Overseas];
            for (matched, region) in asks {
                let matched = matched.map(|(last, start)| (last.and_then(ip), regions[usize::from(region)], T0 + start));
                let plain = match matched {
                    Some((node, region, start_ms)) => n.counting(node, region, start_ms),
                    None => n.bucket(NodeId::Unknown, Region::Unknown),
                };
                proptest::prop_assert!(n.on_session(matched, |picked| Arc::ptr_eq(picked, &plain)));
            }
        }
    }

    fn page(n: &NodeAccounting) -> String {
        let mut s = String::new();
        n.encode(&mut Encoder::new(&mut s));
        s
    }

    #[test]
    fn a_session_counts_on_its_start_node_until_its_end() {
        let (n, clock, _) = accounting(&[], 1000);
        tell(&n, &clock, ip(1), T0, None);
        clock.advance(Duration::from_secs(30));
        tell(&n, &clock, ip(1), T0, Some(EndCause::CssInternal));
        clock.advance(Duration::from_secs(30));
        let out = page(&n);
        let node = r#"node="198.51.100.1",region="mainland""#;
        assert!(out.contains(&format!("css_push_node_live_seconds_total{{{node}}} 30\n")), "{out}");
        assert!(out.contains(&format!("css_push_node_streams_live{{{node}}} 0\n")), "{out}");
        assert!(
            out.contains(&format!("css_push_node_stream_ends_total{{{node},cause=\"css_internal\"}} 1\n")),
            "{out}"
        );
        assert!(out.contains(&format!("css_push_node_stream_ends_total{{{node},cause=\"pusher_stopped\"}} 0\n")));
        assert!(out.contains("css_push_nodes_tracked 1\n"), "{out}");
    }

    #[test]
    fn past_the_bound_sessions_fold_into_other_and_stay_there() {
        let (n, clock, budget) = accounting(&["--max-nodes", "1"], 1000);
        tell(&n, &clock, ip(1), T0, None);
        tell(&n, &clock, ip(2), T0, None);
        tell(&n, &clock, None, T0, None);
        let out = page(&n);
        assert!(out.contains(r#"css_push_node_streams_live{node="other",region="mainland"} 1"#), "{out}");
        assert!(out.contains(r#"css_push_node_streams_live{node="unknown",region="mainland"} 1"#), "{out}");
        assert!(out.contains("css_push_node_overflow_total 1\n"), "{out}");
        let per_node = 3 + 1 + EndCause::ALL.len();
        assert_eq!(budget.held(), 3 * per_node as u64, "a node, other and unknown");
        // Room again: a node gone quiet is forgotten and gives its series back.
        clock.advance(Duration::from_secs(10));
        tell(&n, &clock, ip(1), T0, Some(EndCause::PusherStopped));
        clock.advance(Duration::from_secs(3601));
        n.expire();
        assert_eq!((n.tracked(), budget.held()), (0, 2 * per_node as u64), "{}", page(&n));
        // The session on node 2 started while it had no room: it ends under "other" though 2 has room now.
        tell(&n, &clock, ip(2), T0 + 3_700_000, None);
        tell(&n, &clock, ip(2), T0, Some(EndCause::PusherStopped));
        let out = page(&n);
        assert!(out.contains(r#"css_push_node_streams_live{node="other",region="mainland"} 0"#), "{out}");
        assert!(out.contains(r#"css_push_node_streams_live{node="198.51.100.2",region="mainland"} 1"#), "{out}");
    }

    #[test]
    fn without_series_budget_a_node_folds_into_other() {
        let (n, clock, budget) = accounting(&[], 5);
        tell(&n, &clock, ip(1), T0, None);
        assert_eq!(n.tracked(), 0);
        assert!(page(&n).contains(r#"css_push_node_streams_live{node="other",region="mainland"} 1"#));
        assert!(budget.held() > 5, "other is always there: no count is lost");
    }
}
