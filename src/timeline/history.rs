//! One stream's recent story: its push sessions (oldest first), each with
//! its start, end, access node and region, and its bad intervals: the
//! push error reports of that session, consecutive ones merged, with their
//! error types and counts and the worst frame gap. Bounded by
//! [`Bounds`]; what the bounds cut is returned as [`Dropped`], and the
//! memory it holds is kept up to date as an estimate ([`History::bytes`]).
use super::counts::ErrorCounts;
use crate::catalog::Region;
use crate::state::codec::Reader;
use std::collections::VecDeque;
use std::mem::size_of;
use std::net::IpAddr;

/// Reports whose spans are at most this far apart (or overlap) make one
/// bad interval: CSS reports every interval while errors go on, a little
/// early or late.
pub const MERGE_SLACK_MS: u64 = 1000;
/// The longest `sequence` kept, bytes (CSS's are about 20).
pub const SEQUENCE_BYTES: usize = 128;
/// What a stream costs beside its sessions: its table slot (its history,
/// key's box, hash and the time it is queued under; a table between half
/// and seven eighths full keeps about half a slot spare per stream) and
/// its place in the queue (with room for as many stale ones, which the
/// queue keeps at most).
const STREAM_OVERHEAD: usize = SLOT + SLOT / 2 + 2 * size_of::<(u64, u64)>();
const SLOT: usize = size_of::<History>() + size_of::<Box<str>>() + 2 * size_of::<u64>() + 1;

/// The per-stream bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_sessions: usize,
    pub max_intervals: usize,
    pub max_age_ms: u64,
    /// A session with no end is believed live this long after its last
    /// callback (`--live-stream-ttl`), however old its start.
    pub live_ttl_ms: u64,
}

/// Sessions and intervals dropped by one bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub sessions: u64,
    pub intervals: u64,
}

impl Dropped {
    pub fn is_empty(&self) -> bool {
        self.sessions == 0 && self.intervals == 0
    }
}

/// What the per-stream bounds cut in one update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub sessions_bound: Dropped,
    pub intervals_bound: Dropped,
}

#[derive(Debug, Default)]
pub struct History {
    /// By `first_ms`, oldest first.
    sessions: VecDeque<Session>,
    intervals: usize,
    /// The estimate of what it holds, its key included.
    bytes: usize,
    key_len: usize,
}

/// One push session as the stream's callbacks told it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// xxh3-64 of `sequence` as sent.
    pub hash: u64,
    /// As sent, cut to [`SEQUENCE_BYTES`]; empty if never seen.
    pub sequence: Box<str>,
    /// Unix ms: when it went live, from its start callback.
    pub start_ms: Option<u64>,
    /// The earliest and latest time anything of it tells (its start or
    /// its end, its reports' spans), Unix ms.
    pub first_ms: u64,
    pub last_ms: u64,
    pub end: Option<End>,
    pub node: Option<IpAddr>,
    pub region: Region,
    /// `push_duration` of its end callback.
    pub duration_ms: Option<u64>,
    /// By `from_ms`, disjoint and further apart than [`MERGE_SLACK_MS`].
    pub intervals: Vec<Interval>,
    /// Heap held by the intervals' error lists.
    error_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    /// Unix ms.
    pub at_ms: u64,
    /// `None`: no end callback; the next session's start closed it.
    pub errcode: Option<i64>,
}

/// Consecutive bad reports of one session, merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// `[from, to]` Unix ms: from the first report's span start to the last one's `data_time`.
    pub from_ms: u64,
    pub to_ms: u64,
    pub reports: u32,
    /// The longest frame gap reported, ms rounded up; 0 when none was.
    pub worst_gap_ms: u32,
    pub errors: ErrorCounts,
}

/// What a report adds: its span and what it says.
#[derive(Debug, Clone, Copy)]
pub struct Bad<'a> {
    pub from_ms: u64,
    pub to_ms: u64,
    pub errors: &'a [(u8, u64)],
    pub worst_gap_ms: u32,
}

/// What the lifecycle store knows of the session a report was matched to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    pub start_ms: Option<u64>,
    pub node: Option<IpAddr>,
    pub region: Region,
}

impl Session {
    fn new(hash: u64, sequence: &str, at_ms: u64) -> Self {
        Self {
            hash,
            sequence: crate::text::cap(sequence, SEQUENCE_BYTES).into(),
            start_ms: None,
            first_ms: at_ms,
            last_ms: at_ms,
            end: None,
            node: None,
            region: Region::Unknown,
            duration_ms: None,
            intervals: Vec::new(),
            error_bytes: 0,
        }
    }

    /// The estimate of what it holds: at least what it takes in a state file.
    pub fn bytes(&self) -> usize {
        size_of::<Self>() + self.sequence.len() + self.intervals.capacity() * size_of::<Interval>() + self.error_bytes
    }

    fn seen(&mut self, at_ms: u64) {
        self.first_ms = self.first_ms.min(at_ms);
        self.last_ms = self.last_ms.max(at_ms);
    }

    /// Fills in what it did not know yet: never overwrites a start callback's facts.
    fn learn(&mut self, facts: &Facts) {
        if self.start_ms.is_none() {
            if let Some(start) = facts.start_ms {
                self.start_ms = Some(start);
                self.seen(start);
            }
        }
        if self.node.is_none() {
            self.node = facts.node;
        }
        if self.region == Region::Unknown {
            self.region = facts.region;
        }
    }

    /// The time it counts as last seen, for its age and the memory cap: a
    /// session with no end is live, seen until `live_ttl_ms` past its last
    /// callback (so, for a cutoff before now, seen now).
    fn mark(&self, live_ttl_ms: u64) -> u64 {
        if self.end.is_none() && self.start_ms.is_some() {
            self.last_ms.saturating_add(live_ttl_ms)
        } else {
            self.last_ms
        }
    }

    /// Adds a report's span to its interval (or a new one), merging
    /// intervals that now touch. Returns how many intervals it has more.
    fn add(&mut self, bad: &Bad<'_>) -> isize {
        let before = self.intervals.len();
        self.seen(bad.from_ms);
        self.seen(bad.to_ms);
        // The intervals starting before this report's end (with slack).
        let i = self.intervals.partition_point(|iv| iv.from_ms <= bad.to_ms.saturating_add(MERGE_SLACK_MS));
        let mut at = if i > 0 && self.intervals[i - 1].to_ms.saturating_add(MERGE_SLACK_MS) >= bad.from_ms {
            let iv = &mut self.intervals[i - 1];
            iv.from_ms = iv.from_ms.min(bad.from_ms);
            iv.to_ms = iv.to_ms.max(bad.to_ms);
            iv.reports = iv.reports.saturating_add(1);
            iv.worst_gap_ms = iv.worst_gap_ms.max(bad.worst_gap_ms);
            let heap = iv.errors.heap_bytes();
            for &(code, count) in bad.errors {
                iv.errors.add(code, count);
            }
            self.error_bytes += iv.errors.heap_bytes() - heap;
            i - 1
        } else {
            let mut errors = ErrorCounts::default();
            for &(code, count) in bad.errors {
                errors.add(code, count);
            }
            self.error_bytes += errors.heap_bytes();
            let iv =
                Interval { from_ms: bad.from_ms, to_ms: bad.to_ms, reports: 1, worst_gap_ms: bad.worst_gap_ms, errors };
            // A session never seen to start (a flood's) gets room for one
            // at first: most have no more. Others double from four.
            if self.intervals.capacity() == 0 && self.start_ms.is_none() {
                self.intervals.reserve_exact(1);
            }
            self.intervals.insert(i, iv);
            i
        };
        // A report that filled a gap joins its neighbours.
        while at + 1 < self.intervals.len() && touches(&self.intervals[at], &self.intervals[at + 1]) {
            let next = self.intervals.remove(at + 1);
            self.absorb(at, next);
        }
        while at > 0 && touches(&self.intervals[at - 1], &self.intervals[at]) {
            let this = self.intervals.remove(at);
            at -= 1;
            self.absorb(at, this);
        }
        self.intervals.len().cast_signed() - before.cast_signed()
    }

    /// Merges `other` into interval `at`.
    fn absorb(&mut self, at: usize, other: Interval) {
        let iv = &mut self.intervals[at];
        let heap = iv.errors.heap_bytes() + other.errors.heap_bytes();
        merge(iv, &other);
        self.error_bytes = self.error_bytes + iv.errors.heap_bytes() - heap;
    }

    /// Drops its first `n` intervals.
    fn drop_first(&mut self, n: usize) {
        for iv in self.intervals.drain(..n) {
            self.error_bytes -= iv.errors.heap_bytes();
        }
    }

    /// Gives back the room of dropped intervals: all of it when `exact`,
    /// else once less than half is used (so a full stream, trimmed one
    /// interval per report, does not reallocate each time).
    fn shrink(&mut self, exact: bool) {
        if exact || self.intervals.capacity() > 2 * self.intervals.len() + 4 {
            self.intervals.shrink_to_fit();
        }
    }

    /// Drops its intervals that ended before `cutoff_ms`; returns how many.
    fn drop_intervals_before(&mut self, cutoff_ms: u64) -> usize {
        let before = self.intervals.len();
        let error_bytes = &mut self.error_bytes;
        self.intervals.retain(|iv| {
            let keep = iv.to_ms >= cutoff_ms;
            if !keep {
                *error_bytes -= iv.errors.heap_bytes();
            }
            keep
        });
        before - self.intervals.len()
    }
}

/// Adds `other`'s span, reports and errors to `iv`.
fn merge(iv: &mut Interval, other: &Interval) {
    iv.from_ms = iv.from_ms.min(other.from_ms);
    iv.to_ms = iv.to_ms.max(other.to_ms);
    iv.reports = iv.reports.saturating_add(other.reports);
    iv.worst_gap_ms = iv.worst_gap_ms.max(other.worst_gap_ms);
    for &(code, count) in other.errors.as_slice() {
        iv.errors.add(code, u64::from(count));
    }
}

fn touches(a: &Interval, b: &Interval) -> bool {
    a.to_ms.saturating_add(MERGE_SLACK_MS) >= b.from_ms && b.to_ms.saturating_add(MERGE_SLACK_MS) >= a.from_ms
}

impl History {
    pub fn new(key_len: usize) -> Self {
        // Room for one session at first (most streams push one a day), then doubling.
        Self { sessions: VecDeque::with_capacity(1), intervals: 0, bytes: STREAM_OVERHEAD + key_len, key_len }
    }

    /// The estimate of the memory it holds, its key included.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.iter()
    }

    pub fn intervals(&self) -> usize {
        self.intervals
    }

    /// A push start at `start_ms` on `node`. A stream pushes one session
    /// at a time: one that started before and has no end (its end was
    /// missed, or lost in a crash) ended at `closed`, when the lifecycle
    /// store closed it, else at this start.
    pub fn start(
        &mut self,
        hash: u64,
        sequence: &str,
        start_ms: u64,
        node: (Option<IpAddr>, Region),
        closed: Option<u64>,
    ) {
        let end_ms = closed.unwrap_or(start_ms);
        let replaced = self.sessions.iter_mut().filter(|s| s.hash != hash && s.end.is_none());
        for s in replaced.filter(|s| s.start_ms.is_some_and(|t| t <= start_ms)) {
            let at_ms = end_ms.max(s.start_ms.unwrap_or(0));
            s.end = Some(End { at_ms, errcode: None });
            s.seen(at_ms);
        }
        let s = self.session(hash, sequence, start_ms).0;
        s.start_ms = Some(start_ms);
        s.seen(start_ms);
        (s.node, s.region) = node;
        self.settle();
    }

    /// A push end at `at_ms`, after `duration_ms` if it said. An end of a
    /// session already closed by a later start gives it its errcode, not a
    /// later time.
    pub fn end(&mut self, hash: u64, sequence: &str, at_ms: u64, errcode: i64, duration_ms: Option<u64>) {
        let first = duration_ms.map_or(at_ms, |d| at_ms.saturating_sub(d));
        let s = self.session(hash, sequence, first).0;
        match &mut s.end {
            Some(end) if end.errcode.is_none() => end.errcode = Some(errcode),
            Some(_) => {}
            None => {
                s.end = Some(End { at_ms, errcode: Some(errcode) });
                s.seen(at_ms);
            }
        }
        s.duration_ms = s.duration_ms.or(duration_ms);
        if s.start_ms.is_none() {
            s.seen(first);
        }
        self.settle();
    }

    /// A bad report of the session `hash`, with what the lifecycle store
    /// knows of that session (if anything).
    pub fn report(&mut self, hash: u64, sequence: &str, facts: &Facts, bad: &Bad<'_>) {
        // The hot path: the estimate follows the one session touched, and
        // the order is checked only if that session's first time moved.
        let (s, new) = self.session(hash, sequence, bad.from_ms);
        let (bytes, first_ms) = (s.bytes(), s.first_ms);
        s.learn(facts);
        let added = s.add(bad);
        let (after, moved) = (s.bytes(), s.first_ms != first_ms);
        self.intervals = self.intervals.saturating_add_signed(added);
        if moved || new {
            self.settle();
        } else {
            self.bytes = self.bytes - bytes + after;
        }
    }

    /// The session `hash`, made (at `at_ms`) if it is not there yet, and
    /// whether it is new or learnt its sequence (its estimate changed).
    fn session(&mut self, hash: u64, sequence: &str, at_ms: u64) -> (&mut Session, bool) {
        let found = self.sessions.iter().rposition(|s| s.hash == hash);
        let (i, mut changed) = match found {
            Some(i) => (i, false),
            None => {
                self.sessions.push_back(Session::new(hash, sequence, at_ms));
                (self.sessions.len() - 1, true)
            }
        };
        let s = &mut self.sessions[i];
        if s.sequence.is_empty() && !sequence.is_empty() {
            s.sequence = crate::text::cap(sequence, SEQUENCE_BYTES).into();
            changed = true;
        }
        (s, changed)
    }

    /// Keeps the sessions in time order and the estimate current.
    fn settle(&mut self) {
        if !self.sessions.iter().zip(self.sessions.iter().skip(1)).all(|(a, b)| a.first_ms <= b.first_ms) {
            self.sessions.make_contiguous().sort_by_key(|s| s.first_ms);
        }
        // Room for sessions not in use counts too (as the stream's own).
        let spare = (self.sessions.capacity() - self.sessions.len()) * size_of::<Session>();
        self.bytes = STREAM_OVERHEAD + self.key_len + spare + self.sessions.iter().map(Session::bytes).sum::<usize>();
    }

    /// Applies the per-stream bounds at `now_ms`: what is older than the
    /// age goes, then the oldest sessions past the count, then the oldest
    /// intervals past theirs.
    #[inline]
    pub fn trim(&mut self, bounds: &Bounds, now_ms: u64) -> Trimmed {
        let cutoff = now_ms.saturating_sub(bounds.max_age_ms);
        // Most updates find nothing to do: three comparisons, inline.
        let old = self.sessions.front().is_some_and(|s| s.first_ms < cutoff);
        if !old && self.sessions.len() <= bounds.max_sessions && self.intervals <= bounds.max_intervals {
            return Trimmed::default();
        }
        self.trim_over(bounds, cutoff, old)
    }

    /// [`Self::trim`] once something may be past a bound.
    fn trim_over(&mut self, bounds: &Bounds, cutoff: u64, old: bool) -> Trimmed {
        let mut trimmed = Trimmed::default();
        if old && self.oldest_ms(bounds.live_ttl_ms) < cutoff {
            self.drop_before(cutoff, bounds.live_ttl_ms, false);
        }
        while self.sessions.len() > bounds.max_sessions {
            let s = self.sessions.pop_front().expect("more sessions than the bound");
            trimmed.sessions_bound.sessions += 1;
            trimmed.sessions_bound.intervals += s.intervals.len() as u64;
            self.intervals -= s.intervals.len();
        }
        while self.intervals > bounds.max_intervals {
            let over = self.intervals - bounds.max_intervals;
            let Some(s) = self.sessions.iter_mut().find(|s| !s.intervals.is_empty()) else { break };
            let n = over.min(s.intervals.len());
            s.drop_first(n);
            self.intervals -= n;
            trimmed.intervals_bound.intervals += n as u64;
        }
        if trimmed != Trimmed::default() {
            self.settle();
        }
        trimmed
    }

    /// Drops what was last seen before `cutoff_ms` (sessions by their
    /// [`Session::mark`], intervals by their end); returns what went.
    fn drop_before(&mut self, cutoff_ms: u64, live_ttl_ms: u64, exact: bool) -> Dropped {
        let mark = |s: &Session| s.mark(live_ttl_ms);
        let mut dropped = Dropped::default();
        let intervals = &mut self.intervals;
        self.sessions.retain_mut(|s| {
            let gone = if mark(s) < cutoff_ms { s.intervals.len() } else { s.drop_intervals_before(cutoff_ms) };
            if gone > 0 {
                s.shrink(exact);
            }
            *intervals -= gone;
            dropped.intervals += gone as u64;
            let keep = mark(s) >= cutoff_ms;
            dropped.sessions += u64::from(!keep);
            keep
        });
        if dropped.sessions > 0 && (exact || self.sessions.capacity() > 2 * self.sessions.len() + 4) {
            self.sessions.shrink_to_fit();
        }
        self.settle();
        dropped
    }

    /// For the memory cap: drops everything last seen before `cutoff_ms`
    /// (a live session: `live_ttl_ms` past its last callback).
    pub fn evict_before(&mut self, cutoff_ms: u64, live_ttl_ms: u64) -> Dropped {
        self.drop_before(cutoff_ms, live_ttl_ms, true)
    }

    /// When its oldest part counts as last seen (what the age bound and
    /// the memory cap go by): the earliest of its sessions' marks and
    /// their first intervals' ends; `u64::MAX` when it holds nothing.
    /// Everything before it stays until a cutoff passes it.
    pub fn oldest_ms(&self, live_ttl_ms: u64) -> u64 {
        let oldest = |s: &Session| s.intervals.first().map_or_else(|| s.mark(live_ttl_ms), |iv| iv.to_ms);
        self.sessions.iter().map(oldest).min().unwrap_or(u64::MAX)
    }

    /// Puts back a session read from a state file; the caller trims after.
    pub fn restore(&mut self, mut s: Session) {
        s.error_bytes = s.intervals.iter().map(|iv| iv.errors.heap_bytes()).sum();
        match self.sessions.iter().position(|old| old.hash == s.hash) {
            // A key cut shorter by today's --max-label-length: two streams, one history.
            Some(i) => self.sessions[i] = s,
            None => self.sessions.push_back(s),
        }
        self.intervals = self.sessions.iter().map(|s| s.intervals.len()).sum();
        self.settle();
    }
}

/// A session as read back from a state file, before it is checked.
#[derive(Debug)]
pub struct RawSession<'a> {
    pub hash: u64,
    pub sequence: &'a str,
    pub first_ms: u64,
    pub last_ms: u64,
    pub start_ms: Option<u64>,
    pub end: Option<End>,
    pub duration_ms: Option<u64>,
    pub node: Option<IpAddr>,
    pub region: Region,
    pub intervals: RawIntervals<'a>,
}

/// An interval as read back, before its (error code, count) pairs.
#[derive(Debug)]
pub struct RawInterval {
    pub from_ms: u64,
    pub to_ms: u64,
    pub reports: u32,
    pub worst_gap_ms: u32,
}

/// An interval's from and to (u64), reports and worst gap (u32), before its error count.
pub(super) const INTERVAL_FIXED: usize = 24;
/// An (error code u8, count u64) pair.
pub(super) const ERROR_PAIR: usize = 9;

/// A session's intervals as [`super::record::push_history`] wrote them,
/// measured by [`super::record::decode`] (so each one is whole), read one
/// by one when the session is checked.
#[derive(Debug, Clone, Copy)]
pub struct RawIntervals<'a> {
    count: u32,
    bytes: &'a [u8],
}

impl<'a> RawIntervals<'a> {
    pub(super) fn new(count: u32, bytes: &'a [u8]) -> Self {
        Self { count, bytes }
    }

    pub fn len(&self) -> usize {
        usize::try_from(self.count).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Each interval: its from, to, reports, worst gap and (error code,
    /// count) pairs as written.
    pub fn iter(&self) -> impl Iterator<Item = (RawInterval, impl Iterator<Item = (u8, u64)> + 'a)> + 'a {
        let mut r = Reader(self.bytes);
        (0..self.count).map(move |_| {
            let whole = "measured by decode";
            let interval = RawInterval {
                from_ms: r.u64().expect(whole),
                to_ms: r.u64().expect(whole),
                reports: r.u32().expect(whole),
                worst_gap_ms: r.u32().expect(whole),
            };
            let n = usize::from(r.u8().expect(whole));
            let pairs = r.take(n * ERROR_PAIR).expect(whole);
            let errors = pairs.chunks_exact(ERROR_PAIR).map(|p| {
                let mut p = Reader(p);
                (p.u8().expect(whole), p.u64().expect(whole))
            });
            (interval, errors)
        })
    }
}

impl RawSession<'_> {
    /// The session as callbacks could have made it, times clamped to
    /// `now_ms`, or `None` if it cannot be one: an empty time range, an
    /// interval that is not in order or names an unknown error type.
    pub fn checked(self, now_ms: u64, known_code: impl Fn(u8) -> bool) -> Option<Session> {
        let clamp = |t: u64| t.min(now_ms);
        let (first_ms, last_ms) = (clamp(self.first_ms), clamp(self.last_ms));
        if first_ms > last_ms || self.sequence.len() > SEQUENCE_BYTES {
            return None;
        }
        // Each interval checked as it is read (its pairs by code, each
        // count one a u32 holds), before its times are clamped.
        let mut previous_to: Option<u64> = None;
        let mut intervals: Vec<Interval> = Vec::with_capacity(self.intervals.len());
        for (raw, pairs) in self.intervals.iter() {
            let sane = raw.from_ms <= raw.to_ms
                && raw.reports > 0
                && previous_to.is_none_or(|to| to.saturating_add(MERGE_SLACK_MS) < raw.from_ms);
            if !sane {
                return None;
            }
            previous_to = Some(raw.to_ms);
            let (mut errors, mut last_code) = (ErrorCounts::default(), None);
            for (code, count) in pairs {
                let fits = known_code(code) && (1..=u64::from(u32::MAX)).contains(&count);
                if !fits || last_code.is_some_and(|last| last >= code) {
                    return None;
                }
                last_code = Some(code);
                errors.add(code, count);
            }
            // No error at all: not a bad interval.
            last_code?;
            let (from_ms, to_ms, reports, worst_gap_ms) =
                (clamp(raw.from_ms), clamp(raw.to_ms), raw.reports, raw.worst_gap_ms);
            let iv = Interval { from_ms, to_ms, reports, worst_gap_ms, errors };
            // Clamping may make late intervals touch: merged as reports would have been.
            match intervals.last_mut() {
                Some(earlier) if touches(earlier, &iv) => merge(earlier, &iv),
                _ => intervals.push(iv),
            }
        }
        let end = self.end.map(|e| End { at_ms: clamp(e.at_ms), ..e });
        let first_ms = intervals.first().map_or(first_ms, |iv| first_ms.min(iv.from_ms));
        let last_ms = intervals.last().map_or(last_ms, |iv| last_ms.max(iv.to_ms));
        Some(Session {
            hash: self.hash,
            sequence: self.sequence.into(),
            start_ms: self.start_ms.map(clamp),
            first_ms,
            last_ms,
            end,
            node: self.node,
            region: self.region,
            duration_ms: self.duration_ms,
            intervals,
            error_bytes: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds =
        Bounds { max_sessions: 64, max_intervals: 512, max_age_ms: 86_400_000, live_ttl_ms: 1 << 40 };
    const T: u64 = 1_764_000_000_000;

    fn bad(from_ms: u64, to_ms: u64, errors: &[(u8, u64)], gap: u32) -> Bad<'_> {
        Bad { from_ms, to_ms, errors, worst_gap_ms: gap }
    }

    fn spans(h: &History) -> Vec<Vec<(u64, u64, u32)>> {
        h.sessions()
            .map(|s| s.intervals.iter().map(|iv| (iv.from_ms - T, iv.to_ms - T, iv.reports)).collect())
            .collect()
    }

    #[test]
    fn consecutive_reports_merge_and_a_late_one_fills_the_gap() {
        let mut h = History::new(10);
        let none = Facts::default();
        for (from, to) in [(0, 5000), (5000, 10_000), (10_400, 15_000), (30_000, 35_000)] {
            h.report(1, "q", &none, &bad(T + from, T + to, &[(6, 2)], 100));
        }
        assert_eq!(spans(&h), [vec![(0, 15_000, 3), (30_000, 35_000, 1)]]);
        // Reports in between, in any order, join the two.
        h.report(1, "q", &none, &bad(T + 20_000, T + 25_000, &[(7, 1)], 3046));
        assert_eq!(spans(&h), [vec![(0, 15_000, 3), (20_000, 25_000, 1), (30_000, 35_000, 1)]]);
        h.report(1, "q", &none, &bad(T + 15_000, T + 20_000, &[(6, 1)], 0));
        h.report(1, "q", &none, &bad(T + 25_500, T + 30_000, &[(6, 1)], 0));
        assert_eq!(spans(&h), [vec![(0, 35_000, 7)]]);
        let iv = &h.sessions().next().unwrap().intervals[0];
        assert_eq!((iv.errors.as_slice(), iv.worst_gap_ms), (&[(6, 10), (7, 1)][..], 3046));
        assert_eq!(h.intervals(), 1);
        let s = h.sessions().next().unwrap();
        assert_eq!((s.first_ms, s.last_ms, s.start_ms), (T, T + 35_000, None));
    }

    #[test]
    fn sessions_are_told_by_their_callbacks_in_any_order() {
        let mut h = History::new(10);
        let node = ("198.51.100.7".parse().ok(), Region::Mainland);
        // A report of session 2 before its start.
        h.report(2, "two", &Facts::default(), &bad(T + 70_000, T + 75_000, &[(1, 1)], 0));
        h.start(1, "one", T, node, None);
        h.start(2, "two", T + 60_000, node, Some(T + 60_000));
        h.end(2, "two", T + 90_000, 13, Some(30_000));
        let got: Vec<_> = h.sessions().map(|s| (&*s.sequence, s.start_ms, s.end)).collect();
        let end = |at, errcode| Some(End { at_ms: T + at, errcode });
        assert_eq!(
            got,
            [("one", Some(T), end(60_000, None)), ("two", Some(T + 60_000), end(90_000, Some(13)))],
            "a start after a missed end closed the first session"
        );
        // The first session's own end arrives late: its errcode, not its time.
        h.end(1, "one", T + 95_000, 1, Some(95_000));
        assert_eq!(h.sessions().next().unwrap().end, end(60_000, Some(1)));
    }

    #[test]
    fn one_session_at_a_time_even_when_an_end_was_lost() {
        let mut h = History::new(10);
        let node = (None, Region::Unknown);
        h.start(1, "one", T, node, None);
        // Its end never came (or a crash lost it); the lifecycle store does not say.
        h.start(2, "two", T + 60_000, node, None);
        let ends: Vec<_> = h.sessions().map(|s| s.end).collect();
        assert_eq!(ends, [Some(End { at_ms: T + 60_000, errcode: None }), None]);
    }

    #[test]
    fn the_bounds_drop_the_oldest_first() {
        let bounds = Bounds { max_sessions: 3, max_intervals: 4, ..BOUNDS };
        let mut h = History::new(10);
        for s in 0..5u64 {
            let start = T + s * 100_000;
            h.start(s, "q", start, (None, Region::Unknown), (s > 0).then_some(start));
            for i in 0..2 {
                let at = T + s * 100_000 + i * 20_000;
                h.report(s, "q", &Facts::default(), &bad(at, at + 5000, &[(6, 1)], 0));
            }
        }
        let trimmed = h.trim(&bounds, T + 500_000);
        let kept: Vec<u64> = h.sessions().map(|s| s.hash).collect();
        assert_eq!(kept, [2, 3, 4]);
        assert_eq!(spans(&h).iter().map(Vec::len).collect::<Vec<_>>(), [0, 2, 2]);
        assert_eq!(trimmed.sessions_bound, Dropped { sessions: 2, intervals: 4 });
        assert_eq!(trimmed.intervals_bound, Dropped { sessions: 0, intervals: 2 });
        // A day later only the live session stays, without its old intervals.
        let day = T + 500_000 + 86_400_000;
        h.end(3, "q", T + 350_000, 1, None);
        h.trim(&bounds, day);
        assert_eq!(h.sessions().map(|s| s.hash).collect::<Vec<_>>(), [4]);
        assert_eq!(h.intervals(), 0);
    }

    #[test]
    fn the_estimate_follows_what_is_held() {
        let mut h = History::new(30);
        let empty = h.bytes();
        h.report(1, "q", &Facts::default(), &bad(T, T + 5000, &[(6, 1), (7, 1)], 0));
        let one = h.bytes();
        assert!(one > empty + size_of::<Session>() + size_of::<Interval>(), "{one}");
        h.report(1, "q", &Facts::default(), &bad(T + 5000, T + 10_000, &[(6, 1)], 0));
        assert_eq!(h.bytes(), one, "a merged report costs nothing");
        assert_eq!(h.oldest_ms(BOUNDS.live_ttl_ms), T + 10_000, "its one interval's end");
        assert_eq!(h.evict_before(T + 10_000, BOUNDS.live_ttl_ms), Dropped::default(), "nothing before it");
        assert_eq!(h.evict_before(T + 10_001, BOUNDS.live_ttl_ms), Dropped { sessions: 1, intervals: 1 });
        assert_eq!((h.bytes(), h.oldest_ms(BOUNDS.live_ttl_ms)), (empty, u64::MAX));
    }
}
