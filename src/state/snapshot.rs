//! The state file's format: what survives a restart, and how it is laid out.
//!
//! Integers are little-endian. The file is the magic `CSSPUSHS`, the format
//! version (u32), when it was written (u64, Unix seconds), four sections in
//! this order, each a tag byte, its payload length (u64) and the payload:
//!
//! 1. de-duplication memory: the identity seed (u64), then (identity u64,
//!    expires at u64) pairs;
//! 2. (domain, app) pairs with labels of their own: (domain, app, last seen
//!    u64) records, so the same pairs keep them;
//! 3. stream lifecycles: (key, flags u8, session u64, ended session u64,
//!    last seen u64) records;
//! 4. per-stream gauges: (key, flags u8, last seen u64, then the f64s the
//!    flags say are present) records;
//!
//! where a string is a u32 length and UTF-8 bytes, and a key is the
//! stream's label set as a string; last comes the xxh3-64 of everything
//! before it. Timestamps are Unix seconds. Counters and histograms are not kept:
//! a counter restored from a file older than the last scrape would go
//! backwards, which Prometheus takes for a reset.
use super::lifecycle::Lifecycle;
use super::streams::StreamGauges;
use super::State;
use crate::ingest::dedup::Dedup;
use std::fmt;

const MAGIC: &[u8; 8] = b"CSSPUSHS";
/// The format written; a later release reads this one and its own.
pub const VERSION: u32 = 1;

const DEDUP: u8 = 1;
const APPS: u8 = 2;
const LIFECYCLES: u8 = 3;
const STREAMS: u8 = 4;

// Stream flags.
const LIVE_KNOWN: u8 = 1;
const LIVE: u8 = 2;
const OVERFLOW: u8 = 4;
const LATEST_REPORT: u8 = 8;
const VIDEO_MAX: u8 = 16;
const AUDIO_MAX: u8 = 32;
// Lifecycle flags.
const LC_LIVE: u8 = 1;
const LC_ENDED: u8 = 2;
const LC_FOLDED: u8 = 4;

/// Why a state file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    NotAStateFile,
    /// Written by a newer release, in a format this one does not know.
    NewerVersion(u32),
    Truncated,
    ChecksumMismatch,
    /// Intact, but a part does not parse.
    Malformed(&'static str),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAStateFile => f.write_str("not a state file (wrong magic bytes)"),
            Self::NewerVersion(v) => write!(f, "format version {v} is newer than this release's ({VERSION})"),
            Self::Truncated => f.write_str("truncated"),
            Self::ChecksumMismatch => f.write_str("checksum mismatch"),
            Self::Malformed(what) => write!(f, "malformed {what}"),
        }
    }
}

impl std::error::Error for FormatError {}

/// The state of one exporter as the bytes of a state file. Copies one shard
/// at a time, so ingest into the others goes on. The de-duplication memory
/// is copied first: a callback accepted meanwhile is then in the lifecycles
/// but not remembered, and its retry after a restart changes nothing again
/// (starts and ends are idempotent), rather than the other way round.
/// `capacity` (the last snapshot's size, say) spares growing the buffer,
/// and copying it all, while a shard is locked.
pub fn encode(state: &State, dedup: &Dedup, now_secs: u64, capacity: usize) -> Vec<u8> {
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
    section(&mut out, LIFECYCLES, |out| {
        state.lifecycles.for_each(|key, l| {
            push_str(out, key);
            let flags = flag(l.live, LC_LIVE) | flag(l.ended_session.is_some(), LC_ENDED) | flag(l.folded, LC_FOLDED);
            out.push(flags);
            for n in [l.session, l.ended_session.unwrap_or(0), l.last_seen] {
                out.extend_from_slice(&n.to_le_bytes());
            }
        });
    });
    section(&mut out, STREAMS, |out| {
        state.streams.for_each_gauges(|key, g| {
            push_str(out, key);
            let [video, audio] = g.frame_max;
            let flags = flag(g.live.is_some(), LIVE_KNOWN)
                | flag(g.live == Some(true), LIVE)
                | flag(g.overflow, OVERFLOW)
                | flag(g.latest_report.is_some(), LATEST_REPORT)
                | flag(video.is_some(), VIDEO_MAX)
                | flag(audio.is_some(), AUDIO_MAX);
            out.push(flags);
            out.extend_from_slice(&g.last_seen.to_le_bytes());
            for v in [g.latest_report, video, audio].into_iter().flatten() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        });
    });
    let checksum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

fn flag(set: bool, bit: u8) -> u8 {
    if set {
        bit
    } else {
        0
    }
}

/// Writes a tag, a length filled in once `f` has written the payload.
fn section(out: &mut Vec<u8>, tag: u8, f: impl FnOnce(&mut Vec<u8>)) {
    out.push(tag);
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    f(out);
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    #[allow(clippy::cast_possible_truncation, reason = "at most three label values of at most 1024 bytes each")]
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A state file's content, checked and decoded, before it is restored.
#[derive(Debug)]
pub struct Snapshot {
    written_at: u64,
    dedup_seed: u64,
    /// (identity, expires at).
    dedup: Vec<(u64, u64)>,
    /// (domain, app, last seen).
    apps: Vec<(Box<str>, Box<str>, u64)>,
    lifecycles: Vec<(Box<str>, Lifecycle)>,
    streams: Vec<(Box<str>, StreamGauges)>,
}

/// What a snapshot gave back, expired entries left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Distinct streams with a lifecycle or per-stream gauges.
    pub streams: usize,
    pub live: usize,
    pub dedup_entries: usize,
    /// Pairs, lifecycles and streams past today's `--max-apps`,
    /// `--max-live-streams` or `--max-streams` (smaller than when written).
    pub over_bounds: usize,
}

impl Snapshot {
    /// Checks the whole file (magic, version, checksum, every record)
    /// before anything is restored from it.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(if MAGIC.starts_with(bytes) { FormatError::Truncated } else { FormatError::NotAStateFile });
        }
        let mut r = Reader(&bytes[MAGIC.len()..]);
        match r.u32()? {
            0 => return Err(FormatError::Malformed("version")),
            VERSION => {}
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
            let flags = part.u8()?;
            let (session, ended, last_seen) = (part.u64()?, part.u64()?, part.u64()?);
            let l = Lifecycle {
                live: flags & LC_LIVE != 0,
                session,
                ended_session: (flags & LC_ENDED != 0).then_some(ended),
                last_seen,
                folded: flags & LC_FOLDED != 0,
            };
            lifecycles.push((key, l));
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
            let g = StreamGauges { frame_max, latest_report, live, last_seen, overflow: flags & OVERFLOW != 0 };
            streams.push((key, g));
        }
        if !r.0.is_empty() {
            return Err(FormatError::Malformed("trailing sections"));
        }
        Ok(Self { written_at, dedup_seed, dedup, apps, lifecycles, streams })
    }

    /// Unix seconds when it was written.
    pub fn written_at(&self) -> u64 {
        self.written_at
    }

    /// The seed the de-duplication memory must key identities with.
    pub fn dedup_seed(&self) -> u64 {
        self.dedup_seed
    }

    /// Puts it all back into a fresh state and a memory built with
    /// [`Self::dedup_seed`]; what has expired by `now` is dropped.
    pub fn restore(self, state: &State, dedup: &Dedup, now_secs: u64) -> Restored {
        debug_assert_eq!(dedup.seed(), self.dedup_seed, "identities keyed with another seed never match");
        let mut entries = self.dedup;
        entries.retain(|&(_, expires)| expires > now_secs);
        // Oldest first, as the memory keeps them.
        entries.sort_by_key(|&(_, expires)| expires);
        for &(id, expires) in &entries {
            dedup.restore(id, expires);
        }
        let mut over_bounds = 0;
        for (domain, app, last_seen) in &self.apps {
            over_bounds += usize::from(!state.apps.restore(domain, app, *last_seen));
        }
        for (key, l) in self.lifecycles {
            over_bounds += usize::from(!state.lifecycles.restore(key, l));
        }
        for (key, g) in self.streams {
            over_bounds += usize::from(!state.streams.restore(key, g));
        }
        state.expire(now_secs);
        let mut own = Vec::new();
        state.streams.for_each_gauges(|key, g| {
            if !g.overflow {
                own.push(Box::<str>::from(key));
            }
        });
        let mut live = 0;
        state.lifecycles.for_each(|_, l| live += usize::from(l.live));
        let series_only = own.iter().filter(|key| !state.lifecycles.contains(key)).count();
        Restored { streams: state.lifecycles.tracked() + series_only, live, dedup_entries: dedup.len(), over_bounds }
    }
}

/// The bytes not read yet.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.0.len() < n {
            return Err(FormatError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn str(&mut self) -> Result<Box<str>, FormatError> {
        let len = usize::try_from(self.u32()?).map_err(|_| FormatError::Malformed("string length"))?;
        std::str::from_utf8(self.take(len)?).map(Into::into).map_err(|_| FormatError::Malformed("string"))
    }

    /// The payload of the section `tag`, which must come next.
    fn section(&mut self, tag: u8) -> Result<Reader<'a>, FormatError> {
        if self.u8()? != tag {
            return Err(FormatError::Malformed("section order"));
        }
        let len = usize::try_from(self.u64()?).map_err(|_| FormatError::Truncated)?;
        Ok(Reader(self.take(len)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Config;
    use crate::state::streams::{ErrorReport, StreamId};

    fn filled() -> (State, Dedup) {
        let state = State::new(&Config::from_flags(["--max-streams", "2"]).unwrap());
        let dedup = Dedup::new(900, 100);
        let id = |stream| StreamId { domain: "d", app: "a", stream };
        state.apps.admit("d", "a", 1000);
        state.lifecycles.start(id("s1"), false, 7, 1000, |live| {
            state.streams.set_live(id("s1"), live, 1000);
        });
        state.lifecycles.end(id("s2"), true, 8, 1000, |_| {});
        let report = ErrorReport { errors: &[(6, 1)], frame_max: [Some(2.5), None], data_time_secs: 999.5 };
        for s in ["s1", "s3", "s4"] {
            state.streams.record_report(id(s), &report, 1000);
        }
        dedup.check_and_insert(42, 1000);
        (state, dedup)
    }

    #[test]
    fn a_snapshot_decodes_to_what_was_encoded() {
        let (state, dedup) = filled();
        let bytes = encode(&state, &dedup, 1001, 0);
        let snapshot = Snapshot::decode(&bytes).unwrap();
        assert_eq!((snapshot.written_at(), snapshot.dedup_seed()), (1001, dedup.seed()));
        let fresh = State::new(&Config::from_flags(["--max-streams", "2"]).unwrap());
        let memory = Dedup::with_seed(900, 100, snapshot.dedup_seed());
        let restored = snapshot.restore(&fresh, &memory, 1001);
        assert_eq!(restored, Restored { streams: 3, live: 1, dedup_entries: 1, over_bounds: 0 });
        // Maps iterate in their own orders: compare the records, sorted.
        let sorted = |bytes: &[u8]| {
            let mut s = Snapshot::decode(bytes).unwrap();
            s.lifecycles.sort_by(|a, b| a.0.cmp(&b.0));
            s.streams.sort_by(|a, b| a.0.cmp(&b.0));
            s.apps.sort();
            (s.dedup_seed, s.dedup, s.apps, s.lifecycles, s.streams)
        };
        let again = sorted(&encode(&fresh, &memory, 1001, 0));
        assert_eq!(again, sorted(&bytes));
        assert_eq!(again.2, [("d".into(), "a".into(), 1000)]);
        assert_eq!((again.3.len(), again.4.len()), (2, 3), "two lifecycles; two streams and the overflow bucket");
    }

    #[test]
    fn what_expired_meanwhile_is_not_restored() {
        let (state, dedup) = filled();
        let snapshot = Snapshot::decode(&encode(&state, &dedup, 1001, 0)).unwrap();
        let fresh = State::new(&Config::from_flags(["--max-streams", "2"]).unwrap());
        let memory = Dedup::with_seed(900, 100, snapshot.dedup_seed());
        // An hour later: only the live stream is left, and nothing to de-duplicate.
        let restored = snapshot.restore(&fresh, &memory, 1000 + 3600);
        assert_eq!(restored, Restored { streams: 1, live: 1, dedup_entries: 0, over_bounds: 0 });
    }

    #[test]
    fn what_no_longer_fits_the_bounds_is_counted() {
        let (state, dedup) = filled();
        let snapshot = Snapshot::decode(&encode(&state, &dedup, 1001, 0)).unwrap();
        let config = Config::from_flags(["--max-streams", "1", "--max-live-streams", "1"]).unwrap();
        let smaller = State::new(&config);
        let memory = Dedup::with_seed(900, 100, snapshot.dedup_seed());
        assert_eq!(snapshot.restore(&smaller, &memory, 1001).over_bounds, 2, "a lifecycle and a stream");
    }

    #[test]
    fn damage_of_every_kind_is_refused() {
        let (state, dedup) = filled();
        let bytes = encode(&state, &dedup, 1001, 0);
        for cut in [0, 3, 8, 12, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(Snapshot::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(Snapshot::decode(b"CSSP").unwrap_err(), FormatError::Truncated);
        assert_eq!(Snapshot::decode(b"{\"streams\":[]}").unwrap_err(), FormatError::NotAStateFile);
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert_eq!(Snapshot::decode(&flipped).unwrap_err(), FormatError::ChecksumMismatch);
        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(Snapshot::decode(&newer).unwrap_err(), FormatError::NewerVersion(2));
    }
}
