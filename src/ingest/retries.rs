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
//! The table is lossy (a newer body takes its slot): a body not found here
//! is handled in full, as before.
use crate::sync::lock;
use std::sync::Mutex;
use xxhash_rust::xxh3::xxh3_128_with_seed;

/// Most slots: 2.5 MiB, a few seconds of callbacks at the highest rates
/// measured, minutes at CSS's usual one report per stream every 5 s.
const MAX_SLOTS: usize = 1 << 16;

pub struct Retries {
    seed: u64,
    /// Picks a body's slot from its hash: the slot count, a power of two, less one.
    mask: u64,
    slots: Box<[Mutex<Slot>]>,
}

/// A body as seen before, if its slot still holds it.
#[derive(Default, Clone, Copy)]
struct Slot {
    /// The body's hash, less the bits that picked the slot; 0 for an empty slot.
    tag: u64,
    body: Remembered,
}

/// What the full path found in a body.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Remembered {
    /// Its `t`, whose sign matched (or no key was configured).
    pub t: Option<i64>,
    /// Its event's identity in the duplicate memory.
    pub identity: u64,
}

/// Where a body's slot is, and whether it holds the body.
pub struct Probe {
    slot: usize,
    tag: u64,
    pub found: Option<Remembered>,
}

impl Retries {
    /// A table of `slots` (rounded up to a power of two, at most
    /// [`MAX_SLOTS`]; none turns it off), keyed with a random seed so that
    /// bodies cannot be made to collide from outside.
    pub fn new(slots: usize) -> Self {
        let count = if slots == 0 { 0 } else { slots.next_power_of_two().min(MAX_SLOTS) };
        let slots = (0..count).map(|_| Mutex::default()).collect();
        Self { seed: rand::random(), mask: (count as u64).wrapping_sub(1), slots }
    }

    /// Looks `body` up.
    pub fn probe(&self, body: &[u8]) -> Probe {
        if self.slots.is_empty() {
            return Probe { slot: 0, tag: 0, found: None };
        }
        // 128 bits: the low pick the slot, the high 64 (never 0 here) tell
        // the body from the others hashed to that slot.
        let hash = xxh3_128_with_seed(body, self.seed);
        let slot = usize::try_from(hash as u64 & self.mask).expect("below the slot count");
        let tag = ((hash >> 64) as u64).max(1);
        let held = *lock(&self.slots[slot]);
        Probe { slot, tag, found: (held.tag == tag).then_some(held.body) }
    }

    /// Remembers what the full path found in the body `probe` looked up.
    pub fn remember(&self, probe: &Probe, body: Remembered) {
        if let Some(slot) = self.slots.get(probe.slot).filter(|_| probe.tag != 0) {
            *lock(slot) = Slot { tag: probe.tag, body };
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
    fn a_newer_body_takes_the_slot() {
        let retries = Retries::new(1);
        let (one, two) = (retries.probe(b"1"), retries.probe(b"2"));
        retries.remember(&one, Remembered { t: None, identity: 1 });
        retries.remember(&two, Remembered { t: None, identity: 2 });
        assert_eq!(retries.probe(b"1").found, None);
        assert_eq!(retries.probe(b"2").found, Some(Remembered { t: None, identity: 2 }));
    }

    #[test]
    fn none_remembers_nothing() {
        let retries = Retries::new(0);
        let probe = retries.probe(b"1");
        retries.remember(&probe, Remembered { t: None, identity: 1 });
        assert_eq!(retries.probe(b"1").found, None);
    }
}
