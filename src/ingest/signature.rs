//! The callback signature: `sign = lowercase_hex(MD5(key + t))`, valid until
//! `t` (Unix seconds). Several keys may be configured, for rotation.
//!
//! `sign` covers the key and `t` only, not the body, and the duplicate
//! memory forgets an event after `--dedup-window`: a `t` far ahead would let
//! a captured callback count again once forgotten. So `t` may be at most
//! `--max-signature-validity` ahead, which (with the skew) fits in the window.
use md5::{Digest, Md5};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// No key configured: nothing can be checked.
    Unchecked,
    /// `sign` or `t` missing, `sign` matches no key, or `t` is further
    /// ahead than a signature is valid for.
    Unauthorized(&'static str),
    /// Signed correctly, but `t` is in the past.
    Expired,
}

pub struct Verifier {
    keys: Vec<Vec<u8>>,
    max_clock_skew_secs: u64,
    max_validity_secs: u64,
    /// Tells its signs from another verifier's in a thread's [`RECENT`].
    id: u64,
}

/// How many `t` values a thread keeps the expected signs of, by `t`
/// modulo this.
const RECENT_T: usize = 4;

thread_local! {
    /// The expected signs of the last few `t` this thread checked: CSS
    /// signs every callback of a stretch of time with the same `t`, so most
    /// need no MD5. Per thread, so the workers share no lock (nor its cache line).
    static RECENT: RefCell<[Expected; RECENT_T]> = const { RefCell::new([const { Expected::NONE }; RECENT_T]) };
}

/// Numbers the verifiers, from 1 (0 is no verifier's).
static VERIFIERS: AtomicU64 = AtomicU64::new(1);

/// The MD5 of each of a verifier's keys with one `t`, in key order.
struct Expected {
    verifier: u64,
    t: i64,
    /// Lowercase hex, as CSS sends them.
    signs: Vec<[u8; 32]>,
}

impl Expected {
    const NONE: Self = Self { verifier: 0, t: 0, signs: Vec::new() };
}

/// Why a callback whose `t` is too far ahead is refused.
pub const TOO_FAR_AHEAD: &str = "t too far ahead";

impl Verifier {
    /// Accepts `t` from `max_clock_skew_secs` in the past to
    /// `max_validity_secs` ahead.
    pub fn new(keys: &[String], max_clock_skew_secs: u64, max_validity_secs: u64) -> Self {
        let keys = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        let id = VERIFIERS.fetch_add(1, Ordering::Relaxed);
        Self { keys, max_clock_skew_secs, max_validity_secs, id }
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn verify(&self, t: Option<i64>, sign: Option<&str>, now_secs: u64) -> Verdict {
        if self.keys.is_empty() {
            return Verdict::Unchecked;
        }
        let (Some(t), Some(sign)) = (t, sign) else {
            return Verdict::Unauthorized("t or sign missing");
        };
        match self.matches(t, sign.trim()) {
            None => return Verdict::Unauthorized("sign is not 32 hex digits"),
            Some(false) => return Verdict::Unauthorized("sign does not match"),
            Some(true) => {}
        }
        self.in_window(t, now_secs)
    }

    /// The verdict on a callback [`Self::verify`] passed before, given its
    /// `t`: only its window is checked again, the rest cannot have changed.
    pub fn verify_again(&self, t: Option<i64>, now_secs: u64) -> Verdict {
        match t {
            Some(t) if self.enabled() => self.in_window(t, now_secs),
            _ => self.verify(t, None, now_secs),
        }
    }

    fn in_window(&self, t: i64, now_secs: u64) -> Verdict {
        let now = i64::try_from(now_secs).unwrap_or(i64::MAX);
        let deadline = t.saturating_add(i64::try_from(self.max_clock_skew_secs).unwrap_or(i64::MAX));
        if deadline < now {
            return Verdict::Expired;
        }
        if t > now.saturating_add(i64::try_from(self.max_validity_secs).unwrap_or(i64::MAX)) {
            return Verdict::Unauthorized(TOO_FAR_AHEAD);
        }
        Verdict::Valid
    }
}

impl Verifier {
    /// Whether `sign` is the sign of `t` with one of the keys; `None` if it
    /// is not 32 hex digits.
    fn matches(&self, t: i64, sign: &str) -> Option<bool> {
        RECENT.with_borrow_mut(|recent| {
            // Each `t` always in the same slot, picked by its low byte.
            let expected = &mut recent[usize::from(t.to_le_bytes()[0]) % RECENT_T];
            if (expected.verifier, expected.t) != (self.id, t) {
                let mut t_text = itoa::Buffer::new();
                let t_text = t_text.format(t);
                expected.signs.clear();
                expected.signs.extend(self.keys.iter().map(|key| lowercase_hex(&sign_bytes(key, t_text))));
                (expected.verifier, expected.t) = (self.id, t);
            }
            Self::judged(&expected.signs, sign)
        })
    }

    /// Whether `sign` is one of the expected `signs`; `None` if it is not 32 hex digits.
    fn judged(signs: &[[u8; 32]], sign: &str) -> Option<bool> {
        // As CSS sends it, lowercase: compared as it is, nothing decoded.
        if let Ok(given) = sign.as_bytes().try_into() {
            if any_equal(signs, given) {
                return Some(true);
            }
        }
        // Any other case, or not hex at all: read as hex, then compared as written lowercase.
        let mut digest = [0u8; 16];
        hex::decode_to_slice(sign, &mut digest).ok()?;
        Some(any_equal(signs, &lowercase_hex(&digest)))
    }
}

/// Whether `given` is one of `signs`, each compared in full, without stopping
/// early, so timing does not tell which key (if any) matched.
fn any_equal(signs: &[[u8; 32]], given: &[u8; 32]) -> bool {
    let halves = |s: &[u8; 32]| {
        let (low, high) = s.split_at(16);
        [low, high].map(|h| u128::from_ne_bytes(h.try_into().unwrap_or_default()))
    };
    let [low, high] = halves(given);
    let equal = |s: &[u8; 32]| {
        let [l, h] = halves(s);
        (l.ct_eq(&low) & h.ct_eq(&high)).unwrap_u8()
    };
    signs.iter().fold(0u8, |acc, s| acc | equal(s)) != 0
}

fn lowercase_hex(digest: &[u8; 16]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // 16 bytes always fit 32 digits.
    let _ = hex::encode_to_slice(digest, &mut out);
    out
}

fn sign_bytes(key: &[u8], t_text: &str) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(key);
    h.update(t_text.as_bytes());
    h.finalize().into()
}

/// The `sign` CSS would send for `key` and `t`; for tests and the simulator.
pub fn sign(key: &str, t: i64) -> String {
    hex::encode(sign_bytes(key.as_bytes(), itoa::Buffer::new().format(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_000_000;
    const NOW_T: i64 = 1_764_000_000;

    #[test]
    fn matches_the_signed_sample() {
        assert_eq!(sign("demo-callback-key", 4102444800), "b276e9751b35f01e28bf285d4175b495");
    }

    #[test]
    fn verdicts() {
        let v = Verifier::new(&["old".into(), "new".into()], 30, 900);
        let t = NOW_T + 600;
        let good_new = sign("new", t);
        let upper = sign("old", t).to_uppercase();
        let table: &[(Option<i64>, Option<&str>, Verdict)] = &[
            (Some(t), Some(&good_new), Verdict::Valid),
            (Some(t), Some(&upper), Verdict::Valid),
            (Some(t), Some(&sign("other", t)), Verdict::Unauthorized("sign does not match")),
            (Some(t + 1), Some(&good_new), Verdict::Unauthorized("sign does not match")),
            (Some(t), Some("xyz"), Verdict::Unauthorized("sign is not 32 hex digits")),
            (None, Some(&good_new), Verdict::Unauthorized("t or sign missing")),
            (Some(t), None, Verdict::Unauthorized("t or sign missing")),
        ];
        for (i, &(t, s, want)) in table.iter().enumerate() {
            assert_eq!(v.verify(t, s, NOW), want, "row {i}");
        }
    }

    #[test]
    fn expiry_allows_the_configured_skew() {
        let v = Verifier::new(&["k".into()], 30, 900);
        let t = NOW_T - 30;
        assert_eq!(v.verify(Some(t), Some(&sign("k", t)), NOW), Verdict::Valid);
        let t = NOW_T - 31;
        assert_eq!(v.verify(Some(t), Some(&sign("k", t)), NOW), Verdict::Expired);
    }

    #[test]
    fn t_at_most_the_validity_ahead() {
        let v = Verifier::new(&["k".into()], 30, 900);
        for (t, want) in [
            (NOW_T + 900, Verdict::Valid),
            (NOW_T + 901, Verdict::Unauthorized(TOO_FAR_AHEAD)),
            (NOW_T + 10 * 365 * 86_400, Verdict::Unauthorized(TOO_FAR_AHEAD)),
            (i64::MAX, Verdict::Unauthorized(TOO_FAR_AHEAD)),
        ] {
            assert_eq!(v.verify(Some(t), Some(&sign("k", t)), NOW), want, "t = now + {}", t - NOW_T);
        }
    }

    /// [`Verifier::verify`] as it was, decoding every sign: what the
    /// lowercase comparison must agree with.
    fn verify_by_decoding(v: &Verifier, t: i64, sign: &str, now_secs: u64) -> Verdict {
        let mut given = [0u8; 16];
        if hex::decode_to_slice(sign.trim(), &mut given).is_err() {
            return Verdict::Unauthorized("sign is not 32 hex digits");
        }
        let expected = v.keys.iter().map(|key| sign_bytes(key, itoa::Buffer::new().format(t)));
        if !expected.into_iter().any(|e| e == given) {
            return Verdict::Unauthorized("sign does not match");
        }
        v.in_window(t, now_secs)
    }

    proptest::proptest! {
        /// Verifiers of other keys, interleaved on one thread, judge each
        /// callback as a verifier of their own keys alone would: the
        /// thread's expected signs are told apart by verifier and `t`
        /// (these `t` share slots).
        #[test]
        fn interleaved_verifiers_judge_by_their_own_keys(
            steps in proptest::collection::vec((0usize..3, 0usize..3, 0i64..4), 1..60),
        ) {
            let keys: [&[&str]; 3] = [&["a"], &["b", "c"], &["a"]];
            let verifiers: Vec<Verifier> = keys
                .iter()
                .map(|k| Verifier::new(&k.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>(), 60, 900))
                .collect();
            for (v, signer, n) in steps {
                let t = NOW_T + n * 256;
                let signer = ["a", "b", "c"][signer];
                let valid = verifiers[v].verify(Some(t), Some(&sign(signer, t)), NOW) == Verdict::Valid;
                proptest::prop_assert_eq!(valid, keys[v].contains(&signer), "verifier {} key {} t {}", v, signer, t);
            }
        }
    }

    proptest::proptest! {
        /// Whatever the sign (right or wrong, in either case, spaced, cut
        /// or not hex), the verdict is the one decoding it gives.
        #[test]
        fn a_sign_compared_as_sent_is_judged_as_decoded(
            key in 0usize..3,
            dt in -2i64..2,
            case in proptest::collection::vec(proptest::bool::ANY, 32),
            edit in proptest::option::of((0usize..34, "[0-9a-fA-Fg \\x00\u{e9}]?")),
            other in "[0-9a-fA-F]{32}|\\PC{0,34}",
            use_other in proptest::bool::weighted(0.2),
        ) {
            let v = Verifier::new(&["old".into(), "new".into()], 30, 900);
            let t = NOW_T + 600;
            let mut sign: String = sign(["old", "new", "other"][key], t + dt)
                .chars()
                .zip(case)
                .map(|(c, upper)| if upper { c.to_ascii_uppercase() } else { c })
                .collect();
            if let Some((at, with)) = edit {
                let at = at.min(sign.len());
                sign.replace_range(at..(at + 1).min(sign.len()), &with);
            }
            if use_other {
                sign = other;
            }
            proptest::prop_assert_eq!(v.verify(Some(t), Some(&sign), NOW), verify_by_decoding(&v, t, &sign, NOW), "{:?}", sign);
        }
    }

    #[test]
    fn without_keys_nothing_is_checked() {
        let v = Verifier::new(&[], 30, 900);
        assert!(!v.enabled());
        assert_eq!(v.verify(None, None, NOW), Verdict::Unchecked);
    }
}
