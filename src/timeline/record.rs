//! The streams' histories in the state file: its sixth section, laid out
//! as `state::snapshot` documents it, with the same encoding (little-endian
//! integers, length-prefixed strings, IPs as a length and bytes). Read back
//! as [`RawSession`]s, each checked before it is restored.
use super::history::{End, History, RawIntervals, RawSession, ERROR_PAIR, INTERVAL_FIXED};
use crate::catalog::Region;
use crate::state::codec::{push_ip, push_str, read_ip, FormatError, Reader};

// Session flags.
const START: u8 = 1;
const END: u8 = 2;
const ERRCODE: u8 = 4;
const DURATION: u8 = 8;

/// Appends one stream's history, keyed `key`.
pub fn push_history(out: &mut Vec<u8>, key: &str, h: &History) {
    push_str(out, key);
    push_len(out, h.sessions().count());
    for s in h.sessions() {
        out.extend_from_slice(&s.hash.to_le_bytes());
        push_str(out, &s.sequence);
        let errcode = s.end.and_then(|e| e.errcode);
        let flag = |set: bool, bit: u8| if set { bit } else { 0 };
        out.push(
            flag(s.start_ms.is_some(), START)
                | flag(s.end.is_some(), END)
                | flag(errcode.is_some(), ERRCODE)
                | flag(s.duration_ms.is_some(), DURATION),
        );
        let present = [s.start_ms, s.end.map(|e| e.at_ms), errcode.map(i64::cast_unsigned), s.duration_ms];
        for n in [Some(s.first_ms), Some(s.last_ms)].into_iter().chain(present).flatten() {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.push(s.region.code());
        push_ip(out, s.node);
        push_len(out, s.intervals.len());
        for iv in &s.intervals {
            out.extend_from_slice(&iv.from_ms.to_le_bytes());
            out.extend_from_slice(&iv.to_ms.to_le_bytes());
            out.extend_from_slice(&iv.reports.to_le_bytes());
            out.extend_from_slice(&iv.worst_gap_ms.to_le_bytes());
            let errors = iv.errors.as_slice();
            #[allow(clippy::cast_possible_truncation, reason = "at most one per error code (a u8)")]
            out.push(errors.len() as u8);
            for &(code, count) in errors {
                out.push(code);
                out.extend_from_slice(&u64::from(count).to_le_bytes());
            }
        }
    }
}

fn push_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// One stream's history as the section holds it: its key and sessions,
/// borrowed from the section.
pub type RawHistory<'a> = (&'a str, Vec<RawSession<'a>>);

/// Every (key, sessions) the section holds, unchecked; an error if it does
/// not parse to its end. Nothing is copied: keys, sequences and intervals
/// stay in `bytes` until a session is checked.
pub fn decode(bytes: &[u8]) -> Result<Vec<RawHistory<'_>>, FormatError> {
    let mut r = Reader(bytes);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let key = r.str_in_place()?;
        let n = r.u32()?;
        // Each session takes at least 40 bytes: a count past that is damage, not a reason to allocate.
        let mut sessions = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(r.0.len() / 40));
        for _ in 0..n {
            sessions.push(session(&mut r)?);
        }
        out.push((key, sessions));
    }
    Ok(out)
}

fn session<'a>(r: &mut Reader<'a>) -> Result<RawSession<'a>, FormatError> {
    let hash = r.u64()?;
    let sequence = r.str_in_place()?;
    let flags = r.u8()?;
    if flags & !(START | END | ERRCODE | DURATION) != 0 || (flags & ERRCODE != 0 && flags & END == 0) {
        return Err(FormatError::Malformed("session flags"));
    }
    let (first_ms, last_ms) = (r.u64()?, r.u64()?);
    let mut if_set = |bit: u8| if flags & bit != 0 { r.u64().map(Some) } else { Ok(None) };
    let start_ms = if_set(START)?;
    let end_ms = if_set(END)?;
    let errcode = if_set(ERRCODE)?.map(u64::cast_signed);
    let duration_ms = if_set(DURATION)?;
    let region = Region::from_code(r.u8()?);
    let node = read_ip(r)?;
    let count = r.u32()?;
    // Only measured here: read when the session is checked.
    let from = r.0;
    for _ in 0..count {
        r.take(INTERVAL_FIXED)?;
        let n = r.u8()?;
        r.take(usize::from(n) * ERROR_PAIR)?;
    }
    let intervals = RawIntervals::new(count, &from[..from.len() - r.0.len()]);
    let end = end_ms.map(|at_ms| End { at_ms, errcode });
    Ok(RawSession { hash, sequence, first_ms, last_ms, start_ms, end, duration_ms, node, region, intervals })
}

#[cfg(test)]
mod tests {
    use super::super::history::{Bad, Facts, Session};
    use super::*;

    const T: u64 = 1_764_000_000_000;

    fn busy() -> History {
        let mut h = History::new(40);
        h.start(7, "seq-7", T, ("198.51.100.20".parse().ok(), Region::Mainland), None);
        for i in 0..10 {
            let bad = Bad {
                from_ms: T + i * 20_000,
                to_ms: T + i * 20_000 + 5000,
                errors: &[(6, 2), (99, 1)],
                worst_gap_ms: 3046,
            };
            h.report(7, "seq-7", &Facts::default(), &bad);
        }
        h.end(7, "seq-7", T + 300_000, 13, Some(300_000));
        h.report(
            8,
            "",
            &Facts::default(),
            &Bad { from_ms: T + 400_000, to_ms: T + 405_000, errors: &[(0, 1)], worst_gap_ms: 0 },
        );
        h
    }

    #[test]
    fn a_history_reads_back_as_it_was_and_fits_its_estimate() {
        let h = busy();
        let mut out = Vec::new();
        push_history(&mut out, "domain=\"d\",app=\"a\",stream=\"s\"", &h);
        assert!(out.len() <= h.bytes(), "{} bytes written, {} estimated", out.len(), h.bytes());
        let mut back = decode(&out).unwrap();
        assert_eq!(back.len(), 1);
        let (key, sessions) = back.pop().unwrap();
        assert_eq!(key, "domain=\"d\",app=\"a\",stream=\"s\"");
        let mut again = History::new(40);
        for s in sessions {
            again.restore(s.checked(T + 500_000, |_| true).unwrap());
        }
        assert_eq!(again.sessions().collect::<Vec<_>>(), h.sessions().collect::<Vec<_>>());
        assert_eq!(again.intervals(), h.intervals());
    }

    type Raw<'a> = (u64, u64, u32, &'a [(u8, u64)]);

    /// A section of one stream, one session, these intervals (from, to, reports, pairs).
    fn one_session(intervals: &[Raw]) -> Vec<u8> {
        let mut out = Vec::new();
        push_str(&mut out, "k");
        push_len(&mut out, 1);
        out.extend_from_slice(&7u64.to_le_bytes());
        push_str(&mut out, "seq");
        out.push(0);
        out.extend_from_slice(&T.to_le_bytes());
        out.extend_from_slice(&(T + 100_000).to_le_bytes());
        out.push(Region::Unknown.code());
        push_ip(&mut out, None);
        push_len(&mut out, intervals.len());
        for &(from_ms, to_ms, reports, errors) in intervals {
            for n in [from_ms, to_ms] {
                out.extend_from_slice(&n.to_le_bytes());
            }
            out.extend_from_slice(&reports.to_le_bytes());
            out.extend_from_slice(&9u32.to_le_bytes());
            out.push(u8::try_from(errors.len()).unwrap());
            for &(code, count) in errors {
                out.push(code);
                out.extend_from_slice(&count.to_le_bytes());
            }
        }
        out
    }

    fn checked(intervals: &[Raw]) -> Option<Session> {
        let bytes = one_session(intervals);
        let (_, mut sessions) = decode(&bytes).unwrap().pop().unwrap();
        sessions.pop().unwrap().checked(T + 100_000, |code| code < 50)
    }

    #[test]
    fn each_interval_is_checked_as_it_is_read() {
        let good: Raw = (T, T + 5000, 2, &[(1, 3), (6, 1)]);
        let later: Raw = (T + 10_000, T + 15_000, 1, &[(6, u64::from(u32::MAX))]);
        let s = checked(&[good, later]).unwrap();
        assert_eq!(s.intervals.len(), 2);
        assert_eq!(s.intervals[0].errors.as_slice(), [(1, 3), (6, 1)]);
        assert_eq!((s.intervals[1].errors.as_slice(), s.intervals[1].worst_gap_ms), (&[(6, u32::MAX)][..], 9));
        let bad: [Raw; 8] = [
            (T, T + 5000, 1, &[(6, 1), (1, 1)]),
            (T, T + 5000, 1, &[(6, 1), (6, 1)]),
            (T, T + 5000, 1, &[(6, 0)]),
            (T, T + 5000, 1, &[(6, u64::from(u32::MAX) + 1)]),
            (T, T + 5000, 1, &[]),
            (T, T + 5000, 1, &[(50, 1)]),
            (T + 5000, T, 1, &[(6, 1)]),
            (T, T + 5000, 0, &[(6, 1)]),
        ];
        for b in bad {
            assert!(checked(&[good, later, b]).is_none(), "{b:?}");
            assert!(checked(&[b]).is_none(), "{b:?}");
        }
        // Too close to the one before: it would have been merged.
        assert!(checked(&[good, (T + 5500, T + 6000, 1, &[(6, 1)])]).is_none());
        // Cut inside an interval's pairs: the section does not parse.
        let bytes = one_session(&[good]);
        assert_eq!(decode(&bytes[..bytes.len() - 4]).unwrap_err(), FormatError::Truncated);
    }

    #[test]
    fn damage_is_an_error_and_no_reason_to_allocate() {
        let mut out = Vec::new();
        push_history(&mut out, "k", &busy());
        for cut in [1, 8, 20, out.len() / 2, out.len() - 1] {
            assert!(decode(&out[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = Vec::new();
        push_str(&mut huge, "k");
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge).unwrap_err(), FormatError::Truncated);
    }
}
