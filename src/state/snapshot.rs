//! The state file's format: what survives a restart, and how it is laid out.
//!
//! Integers are little-endian. The file is the magic `CSSPUSHS`, the format
//! version (u32), when it was written (u64, Unix seconds), six sections in
//! this order (version 1: the first four; versions 2 and 3: the first
//! five), each a tag byte, its payload length (u64) and the payload:
//!
//! 1. de-duplication memory: the identity seed (u64), then (identity u64,
//!    expires at u64) pairs;
//! 2. (domain, app) pairs with labels of their own: (domain, app, last seen
//!    u64) records, so the same pairs keep them;
//! 3. stream lifecycles: (key, flags u8, session u64, ended session u64,
//!    last seen u64) records; since version 3 each followed by its session
//!    record (start u64 Unix ms, region u8, access node IP as a length u8
//!    of 0, 4 or 16 and its bytes), its end if the flags say (Unix ms u64,
//!    errcode i64), and the session before it if the flags say (session
//!    u64, start u64, end u64, region u8, node IP);
//! 4. per-stream gauges: (key, flags u8, last seen u64, then the f64s the
//!    flags say are present) records;
//! 5. the lifecycle journal's cut: per lifecycle shard (64), the number of
//!    the first journalled transition this file does not hold (u64);
//! 6. the streams' histories (since version 4), as the `timeline` module
//!    writes and checks them: per stream its key and a session count
//!    (u32), each session as (sequence hash u64, sequence string, flags
//!    u8, first and last time u64, then the start u64, the end u64, the
//!    end's errcode i64 and the push duration u64 the flags say are
//!    present, region u8, access node IP, interval count u32), each
//!    merged bad interval as (from u64, to u64, reports u32, worst frame
//!    gap ms u32, error count u8, then (error code u8, count u64) pairs);
//!    times in Unix ms. This module keeps the payload as bytes; a record
//!    that does not check is dropped there, not the file;
//!
//! where a string is a u32 length and UTF-8 bytes, and a key is the
//! stream's label set as a string; last comes the xxh3-64 of everything
//! before it. Timestamps are Unix seconds. Counters and histograms are not kept:
//! a counter restored from a file older than the last scrape would go
//! backwards, which Prometheus takes for a reset.
//!
//! The file is data, not code: a checksum finds damage, not intent. What is
//! restored goes through the same caps as a callback: keys are read back
//! into their label values and built again under today's
//! `--max-label-length`, every bound is applied again under today's flags,
//! times are clamped to now, and gauge values must be finite.
use super::codec::{push_ip, push_str, read_ip, section, FormatError, Reader};
use super::dedup::Dedup;
use super::journal::{Sink, Transition};
use super::key::StreamKey;
use super::lifecycle::{Change, Lifecycle, PastSession, SessionEnd, SessionRecord};
use super::limits::Limits;
use super::sharded::{stream_shard, STREAM_SHARDS};
use super::streams::{StreamGauges, StreamId};
use super::{State, FUTURE_TOLERANCE, OVERFLOW};
use crate::catalog::Region;
use crate::text::{cap, push_escaped};
use std::borrow::Cow;

const MAGIC: &[u8; 8] = b"CSSPUSHS";
/// The format written; a later release reads this one and its own.
pub const VERSION: u32 = 4;

const DEDUP: u8 = 1;
const APPS: u8 = 2;
const LIFECYCLES: u8 = 3;
const STREAMS: u8 = 4;
const CUTS: u8 = 5;
const TIMELINES: u8 = 6;

// Stream flags.
const LIVE_KNOWN: u8 = 1;
const LIVE: u8 = 2;
const OVERFLOW_BUCKET: u8 = 4;
const LATEST_REPORT: u8 = 8;
const VIDEO_MAX: u8 = 16;
const AUDIO_MAX: u8 = 32;
// Lifecycle flags.
const LC_LIVE: u8 = 1;
const LC_ENDED: u8 = 2;
const LC_FOLDED: u8 = 4;
const LC_END: u8 = 8;
const LC_PREVIOUS: u8 = 16;

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

fn after_cut(cuts: Option<&[u64]>, t: &Transition) -> bool {
    cuts.is_none_or(|cuts| t.seq >= cuts[stream_shard(&t.key)])
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

fn push_lifecycle(out: &mut Vec<u8>, key: &str, l: &Lifecycle) {
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

/// A lifecycle record as [`push_lifecycle`] wrote it; before version 3,
/// without its session record (a live stream's start taken as its last
/// start or end).
fn read_lifecycle(part: &mut Reader<'_>, version: u32) -> Result<Lifecycle, FormatError> {
    let flags = part.u8()?;
    let (session, ended, last_seen) = (part.u64()?, part.u64()?, part.u64()?);
    let mut l = Lifecycle {
        live: flags & LC_LIVE != 0,
        session,
        ended_session: (flags & LC_ENDED != 0).then_some(ended),
        last_seen,
        folded: flags & LC_FOLDED != 0,
        record: SessionRecord::default(),
        previous: None,
    };
    if version < 3 {
        if l.live {
            l.record.start_ms = last_seen.saturating_mul(1000);
        }
        return Ok(l);
    }
    l.record.start_ms = part.u64()?;
    l.record.region = Region::from_code(part.u8()?);
    l.record.node = read_ip(part)?;
    if flags & LC_END != 0 {
        let at_ms = part.u64()?;
        l.record.end = Some(SessionEnd { at_ms, errcode: i64::from_le_bytes(part.u64()?.to_le_bytes()) });
    }
    if flags & LC_PREVIOUS != 0 {
        let (session, start_ms, end_ms) = (part.u64()?, part.u64()?, part.u64()?);
        let region = Region::from_code(part.u8()?);
        l.previous = Some(PastSession { session, start_ms, end_ms, node: read_ip(part)?, region });
    }
    Ok(l)
}

fn push_gauges(out: &mut Vec<u8>, key: &str, g: &StreamGauges) {
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

fn flag(set: bool, bit: u8) -> u8 {
    if set {
        bit
    } else {
        0
    }
}

/// The largest state file the flags can produce: every bound full, every
/// label value `--max-label-length` bytes long and every byte of it
/// escaped. A larger file is not read: it cannot be one of ours.
pub fn max_len(c: &Limits) -> u64 {
    let label = c.max_label_bytes as u64;
    // `domain="",app="",stream=""` and each value escaped to twice its length.
    let key = 4 + 27 + 6 * label;
    let pair = 2 * (4 + 2 * label) + 8;
    // Flags, four numbers, the record's region and node, its end, the previous session.
    let lifecycle = key + 1 + 4 * 8 + 1 + 17 + 16 + 3 * 8 + 1 + 17;
    let gauges = key + 1 + 4 * 8;
    let buckets = c.max_apps as u64 + 1;
    let dedup = c.dedup_capacity as u64 * 16 + 8;
    let fixed = 8 + 4 + 8 + 6 * 9 + STREAM_SHARDS as u64 * 8 + 8;
    // Each history is written in fewer bytes than its memory estimate, and
    // all of them pass the cap by at most one update (a stream's worth).
    let timelines = c.timeline.max_bytes.saturating_add(1 << 20);
    fixed
        + timelines
        + dedup
        + c.max_apps as u64 * pair
        + c.max_live_streams as u64 * lifecycle
        + (c.max_streams as u64 + buckets) * gauges
}

/// A state file's content, checked and decoded, before it is restored.
#[derive(Debug)]
pub struct StateSnapshot {
    written_at: u64,
    dedup_seed: u64,
    /// (identity, expires at).
    dedup: Vec<(u64, u64)>,
    /// (domain, app, last seen).
    apps: Vec<(Box<str>, Box<str>, u64)>,
    lifecycles: Vec<(Box<str>, Lifecycle)>,
    streams: Vec<(Box<str>, StreamGauges)>,
    /// Per lifecycle shard; `None` in a version 1 file (no journal then).
    cuts: Option<Vec<u64>>,
    /// Section 6's payload, for the `timeline` module to check and restore.
    timelines: Vec<u8>,
}

/// What a snapshot gave back, expired entries left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Distinct streams with a lifecycle or per-stream gauges.
    pub streams: usize,
    pub live: usize,
    pub dedup_entries: usize,
    /// Pairs, lifecycles and streams past today's `--max-apps`,
    /// `--max-live-streams`, `--max-streams` or `--max-series`.
    pub over_bounds: usize,
    /// Records that could not have been written by an exporter: a key that
    /// is not exactly `domain="..",app="..",stream=".."`, a gauge value that
    /// is not a finite non-negative number. Dropped.
    pub invalid: usize,
    /// Journalled starts and ends applied after the snapshot.
    pub replayed: usize,
    /// Streams whose history (section 6) came back: the exporter restores
    /// those through their owner and fills this in.
    pub histories: usize,
}

impl StateSnapshot {
    /// Checks the whole file (magic, version, checksum, every record)
    /// before anything is restored from it.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(if MAGIC.starts_with(bytes) { FormatError::Truncated } else { FormatError::NotAStateFile });
        }
        let mut r = Reader(&bytes[MAGIC.len()..]);
        let version = r.u32()?;
        match version {
            0 => return Err(FormatError::Malformed("version")),
            1..=VERSION => {}
            v => return Err(FormatError::NewerVersion(v)),
        }
        let body_len = bytes.len().checked_sub(8).filter(|&n| n >= MAGIC.len() + 12).ok_or(FormatError::Truncated)?;
        let (body, checksum) = bytes.split_at(body_len);
        if xxhash_rust::xxh3::xxh3_64(body) != u64::from_le_bytes(checksum.try_into().expect("8 bytes")) {
            return Err(FormatError::ChecksumMismatch);
        }
        let mut r = Reader(&body[MAGIC.len() + 4..]);
        let written_at = r.u64()?;
        let mut dedup_part = r.section(DEDUP)?;
        let dedup_seed = dedup_part.u64()?;
        let mut dedup = Vec::with_capacity(dedup_part.0.len() / 16);
        while !dedup_part.0.is_empty() {
            dedup.push((dedup_part.u64()?, dedup_part.u64()?));
        }
        let mut part = r.section(APPS)?;
        let mut apps = Vec::new();
        while !part.0.is_empty() {
            apps.push((part.str()?, part.str()?, part.u64()?));
        }
        let mut part = r.section(LIFECYCLES)?;
        let mut lifecycles = Vec::new();
        while !part.0.is_empty() {
            let key = part.str()?;
            lifecycles.push((key, read_lifecycle(&mut part, version)?));
        }
        let mut part = r.section(STREAMS)?;
        let mut streams = Vec::new();
        while !part.0.is_empty() {
            let key = part.str()?;
            let flags = part.u8()?;
            let last_seen = part.u64()?;
            let mut f64_if = |bit| (flags & bit != 0).then(|| part.u64().map(f64::from_bits)).transpose();
            let latest_report = f64_if(LATEST_REPORT)?;
            let frame_max = [f64_if(VIDEO_MAX)?, f64_if(AUDIO_MAX)?];
            let live = (flags & LIVE_KNOWN != 0).then_some(flags & LIVE != 0);
            let overflow = flags & OVERFLOW_BUCKET != 0;
            streams.push((key, StreamGauges { frame_max, latest_report, live, last_seen, overflow }));
        }
        let cuts = if version == 1 {
            None
        } else {
            let mut part = r.section(CUTS)?;
            let cuts = (0..STREAM_SHARDS).map(|_| part.u64()).collect::<Result<Vec<_>, _>>()?;
            if !part.0.is_empty() {
                return Err(FormatError::Malformed("journal cut"));
            }
            Some(cuts)
        };
        let timelines = if version >= 4 { r.section(TIMELINES)?.0.to_vec() } else { Vec::new() };
        if !r.0.is_empty() {
            return Err(FormatError::Malformed("trailing sections"));
        }
        Ok(Self { written_at, dedup_seed, dedup, apps, lifecycles, streams, cuts, timelines })
    }

    /// What an exporter that has seen nothing would write: a fresh seed, no
    /// cut (every journalled transition is after it).
    pub fn empty() -> Self {
        let (dedup, apps, lifecycles, streams) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let timelines = Vec::new();
        Self { written_at: 0, dedup_seed: rand::random(), dedup, apps, lifecycles, streams, cuts: None, timelines }
    }

    /// The streams' histories as written (section 6), taken out to be
    /// checked and restored by their owner; empty before version 4.
    pub fn take_timelines(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.timelines)
    }

    /// Unix seconds when it was written.
    pub fn written_at(&self) -> u64 {
        self.written_at
    }

    /// The seed the de-duplication memory must key identities with.
    pub fn dedup_seed(&self) -> u64 {
        self.dedup_seed
    }

    /// Whether the journalled transition is not in this snapshot.
    pub fn after_cut(&self, t: &Transition) -> bool {
        after_cut(self.cuts.as_deref(), t)
    }

    /// Puts it all back into a fresh state and a memory built with
    /// [`Self::dedup_seed`], as if each record had arrived in a callback,
    /// then replays the journalled transitions after the cut, in order;
    /// what has expired by `now` is dropped.
    pub fn restore(self, state: &State, dedup: &Dedup, now_secs: u64, journal: &[Transition]) -> Restored {
        debug_assert_eq!(dedup.seed(), self.dedup_seed, "identities keyed with another seed never match");
        let mut r = Restored::default();
        let mut entries = self.dedup;
        entries.retain(|&(_, expires)| expires > now_secs);
        // Oldest first, as the memory keeps them.
        entries.sort_by_key(|&(_, expires)| expires);
        for &(id, expires) in &entries {
            dedup.restore(id, expires, now_secs);
        }
        let max = state.max_label_bytes;
        for (domain, app, last_seen) in &self.apps {
            r.over_bounds +=
                usize::from(!state.apps.restore(cap(domain, max), cap(app, max), (*last_seen).min(now_secs)));
        }
        for (key, mut l) in self.lifecycles {
            let Some(parts) = key_parts(&key) else {
                r.invalid += 1;
                continue;
            };
            l.last_seen = l.last_seen.min(now_secs);
            l.folded = folded(state, parts.id(), l.folded, l.last_seen);
            l.record.start_ms = l.record.start_ms.min(now_secs.saturating_mul(1000));
            r.over_bounds += usize::from(!state.lifecycles.restore(&StreamKey::new(parts.id(), max), l));
        }
        for (key, g) in self.streams {
            match (key_parts(&key), gauges(g, now_secs)) {
                (Some(parts), Some(g)) => r.over_bounds += usize::from(!restore_stream(state, parts.id(), g)),
                _ => r.invalid += 1,
            }
        }
        let mut next_seq = self.cuts.as_deref().and_then(|c| c.iter().max().copied()).unwrap_or(0);
        let mut replay: Vec<&Transition> = journal.iter().filter(|t| after_cut(self.cuts.as_deref(), t)).collect();
        replay.sort_by_key(|t| t.seq);
        for t in replay {
            next_seq = next_seq.max(t.seq + 1);
            match key_parts(&t.key) {
                Some(parts) => replay_one(state, parts.id(), t, now_secs),
                None => r.invalid += 1,
            }
            r.replayed += 1;
        }
        if let Some(journal) = state.lifecycles.journal() {
            journal.continue_after(next_seq);
        }
        state.expire(now_secs, |_, _, _| {});
        // Nothing else runs yet: a stream shard and a lifecycle shard may be locked at once.
        let mut series_only = 0;
        state.streams.for_each_gauges(|key, g| {
            series_only += usize::from(!g.overflow && state.lifecycles.get(key).is_none());
        });
        state.lifecycles.for_each(|_, _, l| r.live += usize::from(l.live));
        r.streams = state.lifecycles.tracked() + series_only;
        r.dedup_entries = dedup.len();
        r
    }
}

/// The label values a key was built from, borrowed from it unless escaped.
pub(crate) struct KeyParts<'a>([Cow<'a, str>; 3]);

impl KeyParts<'_> {
    pub(crate) fn id(&self) -> StreamId<'_> {
        let [domain, app, stream] = &self.0;
        StreamId { domain, app, stream }
    }
}

/// The (domain, app, stream) of `key` if it is exactly the label set an
/// exporter builds from them (escaped as it escapes), else `None`: a key is
/// never shown as it was read, only built again from these. Read in
/// place: each value is checked to be escaped exactly as it would be.
pub(crate) fn key_parts(key: &str) -> Option<KeyParts<'_>> {
    let mut rest = key;
    let mut value = |name: &str, first: bool| {
        let after = rest.strip_prefix(if first { "" } else { "," })?.strip_prefix(name)?.strip_prefix("=\"")?;
        let (text, tail) = label_value(after)?;
        rest = tail;
        Some(text)
    };
    let parts = [value("domain", true)?, value("app", false)?, value("stream", false)?];
    rest.is_empty().then_some(KeyParts(parts))
}

/// A label value up to its closing quote, unescaped (as
/// [`crate::text::parse_labels`] reads it), and what follows the quote;
/// `None` unless [`push_escaped`] gives the same text back from it.
fn label_value(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let end = text.find(['"', '\\'])?;
    if text.as_bytes()[end] == b'"' {
        let value = &text[..end];
        // The one character escaped that needs no backslash to be read.
        return (!value.contains('\n')).then_some((Cow::Borrowed(value), &text[end + 1..]));
    }
    let mut value = String::from(&text[..end]);
    let mut chars = text[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                c => value.push(c),
            },
            '"' => {
                let mut again = String::with_capacity(end + i);
                push_escaped(&mut again, &value);
                return (again == text[..end + i]).then_some((Cow::Owned(value), &text[end + i + 1..]));
            }
            c => value.push(c),
        }
    }
    None
}

/// Whether a stream's lifecycle counts under `__overflow__`: if it did when
/// written, or if its (domain, app) pair has no labels of its own now
/// (admitted again if today's `--max-apps` allows).
fn folded(state: &State, id: StreamId, was: bool, last_seen: u64) -> bool {
    let max = state.max_label_bytes;
    was || !state.apps.restore(cap(id.domain, max), cap(id.app, max), last_seen)
}

/// The gauges as a callback could have set them, or `None`: times clamped
/// to now (a report time as far ahead as ingest allows), values finite.
fn gauges(mut g: StreamGauges, now_secs: u64) -> Option<StreamGauges> {
    let sane = |v: &Option<f64>| v.is_none_or(|v| v.is_finite() && v >= 0.0);
    if !sane(&g.latest_report) || !g.frame_max.iter().all(sane) {
        return None;
    }
    #[allow(clippy::cast_precision_loss, reason = "Unix seconds fit an f64's mantissa")]
    let latest = (now_secs + FUTURE_TOLERANCE.as_secs()) as f64;
    g.latest_report = g.latest_report.map(|t| t.min(latest));
    g.last_seen = g.last_seen.min(now_secs);
    Some(g)
}

/// Puts back a stream's gauges if its (domain, app) pair is back (a stream
/// of a pair without labels of its own has no series of its own); its
/// liveness is its restored lifecycle's, not what the record says.
fn restore_stream(state: &State, id: StreamId, mut g: StreamGauges) -> bool {
    let max = state.max_label_bytes;
    let (domain, app) = (cap(id.domain, max), cap(id.app, max));
    let pair_back =
        (domain == OVERFLOW && app == OVERFLOW && id.stream == OVERFLOW) || state.apps.contains(domain, app);
    if !pair_back {
        return false;
    }
    let id = StreamId { domain, app, stream: id.stream };
    let key = StreamKey::new(id, max);
    if g.live.is_some() {
        let lifecycle = state.lifecycles.get(key.as_str());
        g.live = lifecycle.filter(|l| !l.folded).map(|l| l.live);
    }
    state.streams.restore(&key, g)
}

/// Applies one journalled start or end as the pipeline did, its pair
/// admitted again and its time clamped to now.
fn replay_one(state: &State, id: StreamId, t: &Transition, now_secs: u64) {
    let change = Change { at_ms: t.change.at_ms.min(now_secs.saturating_mul(1000)), ..t.change };
    let t = Transition { change, ..t.clone() };
    let at = t.at_secs();
    let folded = folded(state, id, change.folded, at);
    let key = StreamKey::new(id, state.max_label_bytes);
    state.lifecycles.replay(&key, &t, folded, |live| {
        if !folded {
            state.streams.set_live(&key, live, at);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Config;
    use crate::state::streams::{ErrorReport, StreamId};
    use crate::text::push_labels;

    fn filled() -> (State, Dedup) {
        let state = State::new(&Config::from_flags(["--max-streams", "2"]).unwrap().limits());
        let dedup = Dedup::new(900, 100);
        let id = |stream| StreamId { domain: "d", app: "a", stream };
        state.apps.admit("d", "a", 1000);
        state.lifecycles.start(id("s1"), false, 7, 1000, |live| {
            state.streams.set_live(&state.key(id("s1")), live, 1000);
        });
        state.lifecycles.end(id("s2"), true, 8, 1000, |_| {});
        let report = ErrorReport { errors: &[(6, 1)], frame_max: [Some(2.5), None], data_time_secs: 999.5 };
        for s in ["s1", "s3", "s4"] {
            state.streams.record_report(&state.key(id(s)), &report, 1000);
        }
        dedup.check_and_insert(42, 1000);
        (state, dedup)
    }

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

    #[test]
    fn what_expired_meanwhile_is_not_restored() {
        let (state, dedup) = filled();
        let snapshot = StateSnapshot::decode(&encode(&state, &dedup, 1001, 0).bytes).unwrap();
        let fresh = State::new(&Config::from_flags(["--max-streams", "2"]).unwrap().limits());
        let memory = Dedup::with_seed(900, 100, snapshot.dedup_seed());
        // An hour later: only the live stream is left, and nothing to de-duplicate.
        let restored = snapshot.restore(&fresh, &memory, 1000 + 3600, &[]);
        assert_eq!(restored, Restored { streams: 1, live: 1, ..Restored::default() });
    }

    #[test]
    fn what_no_longer_fits_the_bounds_is_counted() {
        let (state, dedup) = filled();
        let snapshot = StateSnapshot::decode(&encode(&state, &dedup, 1001, 0).bytes).unwrap();
        let config = Config::from_flags(["--max-streams", "1", "--max-live-streams", "1"]).unwrap();
        let smaller = State::new(&config.limits());
        let memory = Dedup::with_seed(900, 100, snapshot.dedup_seed());
        assert_eq!(snapshot.restore(&smaller, &memory, 1001, &[]).over_bounds, 2, "a lifecycle and a stream");
    }

    #[test]
    fn damage_of_every_kind_is_refused() {
        let (state, dedup) = filled();
        let bytes = encode(&state, &dedup, 1001, 0).bytes;
        for cut in [0, 3, 8, 12, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(StateSnapshot::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(StateSnapshot::decode(b"CSSP").unwrap_err(), FormatError::Truncated);
        assert_eq!(StateSnapshot::decode(b"{\"streams\":[]}").unwrap_err(), FormatError::NotAStateFile);
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert_eq!(StateSnapshot::decode(&flipped).unwrap_err(), FormatError::ChecksumMismatch);
        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
        assert_eq!(StateSnapshot::decode(&newer).unwrap_err(), FormatError::NewerVersion(VERSION + 1));
    }

    /// A file whose checksum matches but whose records were written by
    /// hand: `records` replace the lifecycles and streams sections.
    fn crafted(lifecycles: &[(&str, Lifecycle)], streams: &[(&str, StreamGauges)]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&1000u64.to_le_bytes());
        section(&mut out, DEDUP, |out| out.extend_from_slice(&7u64.to_le_bytes()));
        section(&mut out, APPS, |out| {
            push_str(out, "d");
            push_str(out, "a");
            out.extend_from_slice(&1000u64.to_le_bytes());
        });
        section(&mut out, LIFECYCLES, |out| lifecycles.iter().for_each(|(k, l)| push_lifecycle(out, k, l)));
        section(&mut out, STREAMS, |out| streams.iter().for_each(|(k, g)| push_gauges(out, k, g)));
        section(&mut out, CUTS, |out| out.extend_from_slice(&[0; STREAM_SHARDS * 8]));
        section(&mut out, TIMELINES, |_| {});
        let checksum = xxhash_rust::xxh3::xxh3_64(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    fn rendered(state: &State) -> String {
        let mut page = String::new();
        crate::expose::Collector::encode(state, &mut crate::expose::Encoder::new(&mut page));
        page
    }

    #[test]
    fn a_crafted_file_is_restored_as_callbacks_would_have_made_it() {
        let live = Lifecycle {
            live: true,
            session: 1,
            ended_session: None,
            last_seen: u64::MAX,
            folded: false,
            record: SessionRecord { start_ms: u64::MAX, ..SessionRecord::default() },
            previous: None,
        };
        let g = StreamGauges {
            frame_max: [None; 2],
            latest_report: None,
            live: Some(true),
            last_seen: 1000,
            overflow: false,
        };
        let long = format!("domain=\"d\",app=\"a\",stream=\"{}\"", "x".repeat(5000));
        let bytes = crafted(
            &[
                ("domain=\"d\",app=\"a\",stream=\"s\"} 1\ninjected_total 42\n#", live),
                ("not a label set", live),
                (&long, live),
            ],
            &[
                ("domain=\"d\",app=\"a\",stream=\"s\"} 1\ninjected_total 42\n#", g),
                (&long, StreamGauges { latest_report: Some(f64::NAN), ..g }),
                (&long, StreamGauges { live: Some(false), ..g }),
                // Flagged overflow to escape --max-streams: not believed.
                ("domain=\"d\",app=\"a\",stream=\"t\"", StreamGauges { overflow: true, ..g }),
                ("domain=\"d\",app=\"a\",stream=\"u\"", StreamGauges { overflow: true, ..g }),
            ],
        );
        let config = Config::from_flags(["--max-streams", "2", "--max-label-length", "8"]).unwrap();
        let state = State::new(&config.limits());
        let r = StateSnapshot::decode(&bytes).unwrap().restore(&state, &Dedup::with_seed(900, 10, 7), 2000, &[]);
        assert_eq!((r.invalid, r.over_bounds), (4, 1), "{r:?}");
        let page = rendered(&state);
        assert!(!page.contains("injected_total"), "{page}");
        // The long name is capped to today's --max-label-length; the
        // lifecycle says live, so the gauge does too.
        assert!(page.contains("css_push_stream_live{domain=\"d\",app=\"a\",stream=\"xxxxxxxx\"} 1\n"), "{page}");
        assert!(page.contains("css_push_streams 2\n"), "t is a stream of its own, u past the cap: {page}");
        assert!(!page.contains("stream=\"t\"} 1"), "no lifecycle, no liveness: {page}");
        // last_seen u64::MAX was clamped to now: it expires on its TTL.
        state.expire(2000 + 8 * 86400, |_, _, _| {});
        assert_eq!(state.lifecycles.tracked(), 0);
    }

    #[test]
    fn a_lower_max_label_length_still_ends_a_restored_stream() {
        let config = Config::from_flags(["--max-label-length", "64"]).unwrap();
        let (state, dedup) = (State::new(&config.limits()), Dedup::new(900, 10));
        let id = StreamId { domain: "d", app: "a", stream: "a-rather-long-stream-name" };
        state.apps.admit("d", "a", 1000);
        state.lifecycles.start(id, false, 7, 1000, |live| {
            state.streams.set_live(&state.key(id), live, 1000);
        });
        let snapshot = StateSnapshot::decode(&encode(&state, &dedup, 1000, 0).bytes).unwrap();
        let shorter = State::new(&Config::from_flags(["--max-label-length", "8"]).unwrap().limits());
        snapshot.restore(&shorter, &Dedup::with_seed(900, 10, dedup.seed()), 1000, &[]);
        let key = shorter.key(id);
        shorter.lifecycles.apply(&key, &crate::state::lifecycle::test_change(false, false, 7, 1001), |live| {
            shorter.streams.set_live(&key, live, 1001);
        });
        assert!(rendered(&shorter).contains("css_push_streams_live{domain=\"d\",app=\"a\"} 0\n"));
    }

    #[test]
    fn journalled_transitions_after_the_cut_are_replayed_once() {
        let config = Config::from_flags(["--state-file", "/unused"]).unwrap();
        let (state, dedup) = (State::new(&config.limits()), Dedup::new(900, 10));
        let pending = state.take_journal().unwrap();
        let id = |stream| StreamId { domain: "d", app: "a", stream };
        state.apps.admit("d", "a", 1000);
        state.lifecycles.start(id("before"), false, 1, 1000, |_| {});
        let encoded = encode(&state, &dedup, 1000, 0);
        state.lifecycles.start(id("after"), false, 2, 1001, |_| {});
        state.lifecycles.end(id("before"), false, 1, 1002, |_| {});
        let journal = pending.drain(10);
        assert_eq!(journal.len(), 3);
        assert_eq!(journal.iter().filter(|t| encoded.after_cut(t)).count(), 2);
        let fresh = State::new(&config.limits());
        let snapshot = StateSnapshot::decode(&encoded.bytes).unwrap();
        let r = snapshot.restore(&fresh, &Dedup::with_seed(900, 10, dedup.seed()), 1002, &journal);
        assert_eq!((r.replayed, r.live), (2, 1), "{r:?}");
        assert_eq!(fresh.lifecycles.get("domain=\"d\",app=\"a\",stream=\"before\"").map(|l| l.live), Some(false));
        assert_eq!(fresh.lifecycles.journal().unwrap().next_seq(), 3, "numbers go on after the journal's");
    }

    proptest::proptest! {
        /// A key is read back into the values it was built from, and any
        /// other text, built from them or not, only if it is such a key.
        #[test]
        fn keys_read_back_as_built(values in proptest::array::uniform3("[a-z\"\\\\\n=,]{0,5}"), cut in 0usize..40) {
            let [d, a, s] = &values;
            let mut key = String::new();
            push_labels(&mut key, &[("domain", d), ("app", a), ("stream", s)]);
            let parts = key_parts(&key).map(|p| p.id().domain.to_owned() + "|" + p.id().app + "|" + p.id().stream);
            proptest::prop_assert_eq!(parts, Some(format!("{d}|{a}|{s}")));
            let spoiled: String = key.chars().enumerate().filter(|&(i, _)| i != cut).map(|(_, c)| c).collect();
            if let Some(p) = key_parts(&spoiled) {
                let mut built = String::new();
                push_labels(&mut built, &[("domain", p.id().domain), ("app", p.id().app), ("stream", p.id().stream)]);
                proptest::prop_assert_eq!(built, spoiled);
            }
        }
    }
}
