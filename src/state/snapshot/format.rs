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
use crate::state::journal::Transition;
use crate::state::limits::Limits;
use crate::state::sharded::{stream_shard, STREAM_SHARDS};

pub(super) const MAGIC: &[u8; 8] = b"CSSPUSHS";
/// The format written; a later release reads this one and its own.
pub const VERSION: u32 = 4;

pub(super) const DEDUP: u8 = 1;
pub(super) const APPS: u8 = 2;
pub(super) const LIFECYCLES: u8 = 3;
pub(super) const STREAMS: u8 = 4;
pub(super) const CUTS: u8 = 5;
pub(super) const TIMELINES: u8 = 6;

// Stream flags.
pub(super) const LIVE_KNOWN: u8 = 1;
pub(super) const LIVE: u8 = 2;
pub(super) const OVERFLOW_BUCKET: u8 = 4;
pub(super) const LATEST_REPORT: u8 = 8;
pub(super) const VIDEO_MAX: u8 = 16;
pub(super) const AUDIO_MAX: u8 = 32;
// Lifecycle flags.
pub(super) const LC_LIVE: u8 = 1;
pub(super) const LC_ENDED: u8 = 2;
pub(super) const LC_FOLDED: u8 = 4;
pub(super) const LC_END: u8 = 8;
pub(super) const LC_PREVIOUS: u8 = 16;

pub(super) fn after_cut(cuts: Option<&[u64]>, t: &Transition) -> bool {
    cuts.is_none_or(|cuts| t.seq >= cuts[stream_shard(&t.key)])
}

pub(super) fn flag(set: bool, bit: u8) -> u8 {
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
