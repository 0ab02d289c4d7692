//! CSS retries a callback by sending the same body again. The bodies of the
//! last push errors that reached the duplicate memory are remembered here by
//! a keyed hash of their bytes, with what the full path found in them: their
//! `t` and their event's identity. A retry is then told from its bytes
//! alone, without parsing it again.
//!
//! Only what does not depend on the time is remembered: the same bytes
//! always parse to the same push error, with the same identity and a sign
//! that matches the same `t` (the keys are fixed for the process's life). A
//! retry is still checked against its `t` window and the duplicate memory
//! as it is now; when its identity was forgotten there, the full path runs.
//! The table is lossy (two bodies a bucket, the newer first): a body not
//! found here is handled in full, as before.
use crate::sync::lock;
use std::sync::Mutex;
use xxhash_rust::xxh3::xxh3_128_with_seed;

/// Most bodies held: 2 MiB, a second of callbacks at the highest rates
/// measured, minutes at CSS's usual one report per stream every 5 s.
const MAX_SLOTS: usize = 1 << 16;

/// Bodies a bucket holds: a body is lost only when two newer ones fall in
/// its bucket, not one.
const WAYS: usize = 2;

pub struct Retries {
    seed: u64,
    /// Picks a body's bucket from its hash: the bucket count, a power of
    /// two, less one.
    mask: u64,
    buckets: Box<[Bucket]>,
}

/// Its bodies, the newer first, in one cache line: a probe reads one.
#[derive(Default)]
#[repr(align(64))]
struct Bucket(Mutex<[Slot; WAYS]>);

/// A body as seen before, if its slot still holds it: 24 bytes.
#[derive(Default, Clone, Copy)]
struct Slot {
    /// The body's tag ([`Probe`]), its lowest bit set when `t` is
    /// present; 0 for an empty slot.
    tagged: u64,
    t: i64,
    identity: u64,
}

impl Slot {
    fn new(tag: u64, body: Remembered) -> Self {
        Self { tagged: tag | u64::from(body.t.is_some()), t: body.t.unwrap_or(0), identity: body.identity }
    }

    fn holds(&self, tag: u64) -> bool {
        self.tagged & !1 == tag
    }

    fn body(&self) -> Remembered {
        Remembered { t: (self.tagged & 1 == 1).then_some(self.t), identity: self.identity }
    }
}

/// What the full path found in a body.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Remembered {
    /// Its `t`, whose sign matched (or no key was configured).
    pub t: Option<i64>,
    /// Its event's identity in the duplicate memory.
    pub identity: u64,
}

/// Where a body's bucket is, and what it holds of the body.
pub struct Probe {
    bucket: usize,
    /// The body's hash less the bits that picked the bucket and its
    /// lowest bit; never 0 (or 1).
    tag: u64,
    pub found: Option<Remembered>,
}

impl Retries {
    /// A table of `slots` bodies (rounded up to a power of two, at most
    /// 65 536; none turns it off), keyed with a random seed so that bodies
    /// cannot be made to collide from outside.
    pub fn new(slots: usize) -> Self {
        let count = if slots == 0 { 0 } else { slots.next_power_of_two().clamp(WAYS, MAX_SLOTS) / WAYS };
        let buckets = (0..count).map(|_| Bucket::default()).collect();
        Self { seed: rand::random(), mask: (count as u64).wrapping_sub(1), buckets }
    }

    /// Looks `body` up.
    pub fn probe(&self, body: &[u8]) -> Probe {
        if self.buckets.is_empty() {
            return Probe { bucket: 0, tag: 0, found: None };
        }
        // 128 bits: the low pick the bucket, the high 63 (never 0 here)
        // tell the body from the others hashed to that bucket.
        let hash = xxh3_128_with_seed(body, self.seed).to_le_bytes();
        let half = |at: usize| u64::from_le_bytes(hash[at..at + 8].try_into().expect("8 bytes"));
        let bucket = usize::try_from(half(0) & self.mask).expect("below the bucket count");
        let tag = (half(8) & !1).max(2);
        let found = lock(&self.buckets[bucket].0).iter().find(|slot| slot.holds(tag)).map(Slot::body);
        Probe { bucket, tag, found }
    }

    /// Remembers what the full path found in the body `probe` looked up,
    /// first in its bucket; the older one there goes.
    pub fn remember(&self, probe: &Probe, body: Remembered) {
        if let Some(bucket) = self.buckets.get(probe.bucket).filter(|_| probe.tag != 0) {
            let mut slots = lock(&bucket.0);
            if !slots[0].holds(probe.tag) {
                slots[1] = slots[0];
            }
            slots[0] = Slot::new(probe.tag, body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_same_bytes_only() {
        let retries = Retries::new(4);
        let body = Remembered { t: Some(5), identity: 7 };
        let probe = retries.probe(b"{\"a\":1}");
        assert_eq!(probe.found, None);
        retries.remember(&probe, body);
        assert_eq!(retries.probe(b"{\"a\":1}").found, Some(body));
        assert_eq!(retries.probe(b"{\"a\":2}").found, None);
        assert_eq!(retries.probe(b"{\"a\":1} ").found, None);
    }

    #[test]
    fn a_bucket_keeps_the_two_newest() {
        let retries = Retries::new(1);
        let remember = |body: &[u8], identity| retries.remember(&retries.probe(body), Remembered { t: None, identity });
        let identity = |body: &[u8]| retries.probe(body).found.map(|r| r.identity);
        remember(b"1", 1);
        remember(b"2", 2);
        assert_eq!((identity(b"1"), identity(b"2")), (Some(1), Some(2)));
        remember(b"2", 2);
        assert_eq!(identity(b"1"), Some(1), "remembered again, not twice");
        remember(b"3", 3);
        assert_eq!((identity(b"1"), identity(b"2"), identity(b"3")), (None, Some(2), Some(3)));
    }

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!((size_of::<Bucket>(), align_of::<Bucket>()), (64, 64));
    }

    #[test]
    fn remembers_t_present_or_not() {
        let retries = Retries::new(4);
        for (body, t) in [(&b"1"[..], None), (b"2", Some(0)), (b"3", Some(-7)), (b"4", Some(i64::MAX))] {
            let remembered = Remembered { t, identity: u64::MAX };
            retries.remember(&retries.probe(body), remembered);
            assert_eq!(retries.probe(body).found, Some(remembered));
        }
    }

    #[test]
    fn none_remembers_nothing() {
        let retries = Retries::new(0);
        let probe = retries.probe(b"1");
        retries.remember(&probe, Remembered { t: None, identity: 1 });
        assert_eq!(retries.probe(b"1").found, None);
    }
}
