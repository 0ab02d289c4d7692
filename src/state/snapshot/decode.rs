//! Decoding a state file: every byte checked (magic, version, checksum,
//! each record) before anything is restored from it.
use super::format::{
    after_cut, APPS, AUDIO_MAX, CUTS, DEDUP, LATEST_REPORT, LC_END, LC_ENDED, LC_FOLDED, LC_LIVE, LC_PREVIOUS,
    LIFECYCLES, LIVE, LIVE_KNOWN, MAGIC, OVERFLOW_BUCKET, STREAMS, TIMELINES, VERSION, VIDEO_MAX,
};
use crate::catalog::Region;
use crate::state::codec::{read_ip, FormatError, Reader};
use crate::state::journal::Transition;
use crate::state::lifecycle::{Lifecycle, PastSession, SessionEnd, SessionRecord};
use crate::state::sharded::STREAM_SHARDS;
use crate::state::streams::StreamGauges;

/// A state file's content, checked and decoded, before it is restored.
#[derive(Debug)]
pub struct StateSnapshot {
    pub(super) written_at: u64,
    pub(super) dedup_seed: u64,
    /// (identity, expires at).
    pub(super) dedup: Vec<(u64, u64)>,
    /// (domain, app, last seen).
    pub(super) apps: Vec<(Box<str>, Box<str>, u64)>,
    pub(super) lifecycles: Vec<(Box<str>, Lifecycle)>,
    pub(super) streams: Vec<(Box<str>, StreamGauges)>,
    /// Per lifecycle shard; `None` in a version 1 file (no journal then).
    pub(super) cuts: Option<Vec<u64>>,
    /// Section 6's payload, for the `timeline` module to check and restore.
    pub(super) timelines: Vec<u8>,
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
}

/// A lifecycle record as [`push_lifecycle`](super::encode) wrote it; before version 3,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::snapshot::encode;
    use crate::state::snapshot::tests::filled;

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
}
