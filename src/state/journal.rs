//! The lifecycle journal: every push start and end accepted since the last
//! snapshot, appended to `PATH.journal` within about a second, so a crash
//! loses at most that second of them rather than a whole `--state-interval`
//! (CSS got its 200 and never sends them again).
//!
//! A transition is numbered while its stream's lifecycle shard is locked and
//! handed to the persister thread through a bounded channel: the request
//! path waits for neither the disk nor the thread. A snapshot records, per
//! shard, the first number it does not hold (its cut), so at start exactly
//! the transitions after the cut are replayed on top of it.
//!
//! The file is the magic `CSSPJRNL`, the format version (u32), then records:
//! a u32 payload length, the payload (number u64, kind u8, session u64,
//! time u64, the stream's key as a u32 length and UTF-8 bytes) and the
//! xxh3-64 of the payload. A record cut short by a crash ends the file.
//!
//! While snapshots fail the journal is what keeps starts and ends: it is
//! compacted (`state::compaction`) rather than let grow, and holds at most
//! [`MAX_KEPT`] records; every record written is read back at start.
use super::codec::{push_str, FormatError, Reader};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"CSSPJRNL";
const VERSION: u32 = 1;

/// Transitions waiting for the persister thread; past this many (a stalled
/// disk) further ones are counted and left to the next snapshot.
pub const PENDING: usize = 65_536;
/// Transitions the journal holds before a snapshot is taken early, so the
/// file and the replay at start stay small whatever `--state-interval` is;
/// while snapshots fail, before it is compacted.
pub const MAX_RECORDS: usize = 200_000;
/// Transitions the journal holds at most, compacted, while snapshots fail:
/// past it, further ones wait in memory for a snapshot (logged).
pub const MAX_KEPT: usize = 3 * MAX_RECORDS;
/// The largest journal file a release writes, with label values of at most
/// `max_label_bytes` bytes: what is read at start.
pub const fn max_len(max_label_bytes: usize) -> usize {
    MAGIC.len() + 4 + (MAX_KEPT + PENDING) * max_record_len(max_label_bytes)
}
/// Longest record any release writes: label values of `MAX_LABEL_LENGTH` bytes.
const MAX_RECORD_LEN: usize = max_record_len(crate::cli::MAX_LABEL_LENGTH);

/// Longest record with label values of at most `max_label_bytes` bytes: the
/// fixed fields and a key of three values, each byte escaped to two, with
/// their names, quotes and commas.
pub const fn max_record_len(max_label_bytes: usize) -> usize {
    4 + 8 + 1 + 8 + 8 + 4 + (27 + 6 * max_label_bytes) + 8
}

// Kind bits.
const START: u8 = 1;
const END: u8 = 2;
const FOLDED: u8 = 4;

/// One push start or end, as the lifecycle store applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Order among all transitions, across restarts.
    pub seq: u64,
    pub start: bool,
    /// Its (domain, app) pair was past `--max-apps`.
    pub folded: bool,
    /// Hash of the push session's `sequence`.
    pub session: u64,
    /// Clock seconds when it was applied.
    pub at: u64,
    /// The stream's label set, as the lifecycle store keys it.
    pub key: Box<str>,
}

/// The numbering and the sending end, held by the lifecycle store.
pub struct Sink {
    next: AtomicU64,
    tx: SyncSender<Transition>,
    /// Transitions not sent because the channel was full.
    dropped: Arc<AtomicU64>,
}

/// The receiving end, held by the persister thread.
pub struct Pending {
    rx: Receiver<Transition>,
    dropped: Arc<AtomicU64>,
}

/// The channel between the lifecycle store and the persister thread.
pub fn channel() -> (Sink, Pending) {
    let (tx, rx) = std::sync::mpsc::sync_channel(PENDING);
    let dropped = Arc::new(AtomicU64::new(0));
    (Sink { next: AtomicU64::new(0), tx, dropped: dropped.clone() }, Pending { rx, dropped })
}

impl Pending {
    /// What was sent since the last call, at most `max` transitions.
    pub fn drain(&self, max: usize) -> Vec<Transition> {
        self.rx.try_iter().take(max).collect()
    }

    /// Transitions dropped so far because the channel was full (the disk
    /// or this thread fell behind); the next snapshot holds them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Sink {
    /// Numbers the transition and hands it on; call with the stream's shard
    /// locked, so a snapshot's cut of that shard falls before or after it.
    pub fn send(&self, start: bool, folded: bool, session: u64, at: u64, key: &str) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let t = Transition { seq, start, folded, session, at, key: key.into() };
        // Full: the persister is behind; disconnected: it is gone (shutdown).
        if self.tx.try_send(t).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The number the next transition gets: a shard's cut, read under its lock.
    pub fn next_seq(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Numbers go on after those of a previous run.
    pub fn continue_after(&self, seq: u64) {
        self.next.fetch_max(seq, Ordering::Relaxed);
    }
}

/// A journal file's first bytes.
pub fn header() -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    out
}

/// Appends `t` as one record.
pub fn encode(out: &mut Vec<u8>, t: &Transition) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&t.seq.to_le_bytes());
    out.push(if t.start { START } else { END } | if t.folded { FOLDED } else { 0 });
    out.extend_from_slice(&t.session.to_le_bytes());
    out.extend_from_slice(&t.at.to_le_bytes());
    push_str(out, &t.key);
    let payload = &out[at + 4..];
    let checksum = xxhash_rust::xxh3::xxh3_64(payload);
    #[allow(clippy::cast_possible_truncation, reason = "a record is at most MAX_RECORD_LEN bytes")]
    let len = payload.len() as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum.to_le_bytes());
}

/// Where reading a journal file stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unread {
    pub bytes: usize,
    /// A whole record that does not check out, rather than one cut short.
    pub damaged: bool,
}

/// Every record of a journal file, up to the first one a crash cut short or
/// that is damaged (what follows it cannot be trusted to be in order), and
/// what was left unread there.
pub fn decode(bytes: &[u8]) -> Result<(Vec<Transition>, Option<Unread>), FormatError> {
    let mut r = Reader(bytes);
    if r.take(MAGIC.len()).map_err(|_| FormatError::Truncated)? != MAGIC {
        return Err(FormatError::NotAStateFile);
    }
    match r.u32()? {
        VERSION => {}
        0 => return Err(FormatError::Malformed("version")),
        v => return Err(FormatError::NewerVersion(v)),
    }
    let mut records = Vec::new();
    while !r.0.is_empty() {
        let left = r.0.len();
        match record(&mut r) {
            Ok(t) => records.push(t),
            Err(cut_short) => return Ok((records, Some(Unread { bytes: left, damaged: !cut_short }))),
        }
    }
    Ok((records, None))
}

/// The next record; `Err(true)` if the bytes end within it, `Err(false)`
/// if it is there whole and does not check out.
fn record(r: &mut Reader<'_>) -> Result<Transition, bool> {
    let len = r.u32().map_err(|_| true)?;
    let len = usize::try_from(len).ok().filter(|&n| n <= MAX_RECORD_LEN).ok_or(false)?;
    let payload = r.take(len).map_err(|_| true)?;
    let checksum = r.u64().map_err(|_| true)?;
    parse(payload, checksum).ok_or(false)
}

fn parse(payload: &[u8], checksum: u64) -> Option<Transition> {
    if xxhash_rust::xxh3::xxh3_64(payload) != checksum {
        return None;
    }
    let mut p = Reader(payload);
    let seq = p.u64().ok()?;
    let kind = p.u8().ok()?;
    let (session, at, key) = (p.u64().ok()?, p.u64().ok()?, p.str().ok()?);
    let start = match kind & (START | END) {
        START => true,
        END => false,
        _ => return None,
    };
    p.0.is_empty().then_some(Transition { seq, start, folded: kind & FOLDED != 0, session, at, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seq: u64, key: &str) -> Transition {
        Transition {
            seq,
            start: seq.is_multiple_of(2),
            folded: seq == 3,
            session: seq * 7,
            at: 1000 + seq,
            key: key.into(),
        }
    }

    #[test]
    fn records_read_back_and_a_torn_tail_ends_the_journal() {
        let mut bytes = header();
        let sent: Vec<_> = (0..4).map(|i| t(i, &format!("domain=\"d\",app=\"a\",stream=\"s{i}\""))).collect();
        for record in &sent {
            encode(&mut bytes, record);
        }
        assert_eq!(decode(&bytes).unwrap(), (sent.clone(), None));
        let record = (bytes.len() - header().len()) / 4;
        // A crash in the middle of the last record: the others are kept.
        let cut = bytes.len() - 5;
        let (read, left) = decode(&bytes[..cut]).unwrap();
        assert_eq!(read, sent[..3]);
        assert_eq!(left, Some(Unread { bytes: record - 5, damaged: false }));
        // A flipped byte in the second record: it and what follows are dropped.
        let mut flipped = bytes.clone();
        flipped[header().len() + record + 20] ^= 1;
        assert_eq!(decode(&flipped).unwrap(), (sent[..1].to_vec(), Some(Unread { bytes: 3 * record, damaged: true })));
        assert_eq!(decode(b"CSSPJRN").unwrap_err(), FormatError::Truncated);
        assert_eq!(decode(b"CSSPUSHS\x01\x00\x00\x00").unwrap_err(), FormatError::NotAStateFile);
    }

    #[test]
    fn every_record_written_is_read_back() {
        let mut bytes = header();
        let n = MAX_RECORDS + 10;
        for i in 0..n {
            encode(&mut bytes, &t(i as u64, "k"));
        }
        assert_eq!(decode(&bytes).unwrap().0.len(), n);
        assert!(bytes.len() <= max_len(1));
    }

    #[test]
    fn the_channel_is_bounded_and_numbers_go_on_across_runs() {
        let (sink, pending) = channel();
        sink.continue_after(10);
        for _ in 0..PENDING + 3 {
            sink.send(true, false, 1, 1, "k");
        }
        assert_eq!(pending.dropped(), 3);
        let first = pending.drain(2);
        assert_eq!(first.iter().map(|t| t.seq).collect::<Vec<_>>(), [10, 11]);
        assert_eq!(sink.next_seq(), 10 + PENDING as u64 + 3);
    }
}
