//! The callback signature: `sign = lowercase_hex(MD5(key + t))`, valid until
//! `t` (Unix seconds). Several keys may be configured, for rotation.
//!
//! `sign` covers the key and `t` only, not the body, and the duplicate
//! memory forgets an event after `--dedup-window`: a `t` far ahead would let
//! a captured callback count again once forgotten. So `t` may be at most
//! `--max-signature-validity` ahead, which (with the skew) fits in the window.
use md5::{Digest, Md5};
use std::sync::Mutex;
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
    /// The expected signs of the last few `t`: CSS signs every callback of
    /// a stretch of time with the same `t`, so most need no MD5.
    recent: [Mutex<Expected>; RECENT_T],
}

/// How many `t` values [`Verifier`] keeps the expected signs of, by `t`
/// modulo this.
const RECENT_T: usize = 4;

/// The MD5 of each key with one `t`, in key order.
#[derive(Default)]
struct Expected {
    t: Option<i64>,
    signs: Vec<[u8; 16]>,
}

/// Why a callback whose `t` is too far ahead is refused.
pub const TOO_FAR_AHEAD: &str = "t too far ahead";

impl Verifier {
    /// Accepts `t` from `max_clock_skew_secs` in the past to
    /// `max_validity_secs` ahead.
    pub fn new(keys: &[String], max_clock_skew_secs: u64, max_validity_secs: u64) -> Self {
        let keys = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        Self { keys, max_clock_skew_secs, max_validity_secs, recent: Default::default() }
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
        let Some(given) = digest_of_hex(sign.trim()) else {
            return Verdict::Unauthorized("sign is not 32 hex digits");
        };
        if !self.matches(t, &given) {
            return Verdict::Unauthorized("sign does not match");
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
    /// Whether `given` is the sign of `t` with one of the keys.
    fn matches(&self, t: i64, given: &[u8; 16]) -> bool {
        // Each `t` always in the same slot, picked by its low byte.
        let mut expected = crate::sync::lock(&self.recent[usize::from(t.to_le_bytes()[0]) % RECENT_T]);
        if expected.t != Some(t) {
            let mut t_text = itoa::Buffer::new();
            let t_text = t_text.format(t);
            expected.signs.clear();
            expected.signs.extend(self.keys.iter().map(|key| sign_bytes(key, t_text)));
            expected.t = Some(t);
        }
        // Check every key, without stopping early, so timing does not tell
        // which key (if any) matched; each compared as one 128-bit number.
        let given = u128::from_ne_bytes(*given);
        expected.signs.iter().fold(0u8, |acc, sign| acc | u128::from_ne_bytes(*sign).ct_eq(&given).unwrap_u8()) != 0
    }
}

/// The 16 bytes a `sign` of 32 hex digits (either case) spells; `None` for
/// anything else. What `hex::decode_to_slice` reads, a table look-up a digit.
fn digest_of_hex(sign: &str) -> Option<[u8; 16]> {
    let digits: &[u8; 32] = sign.as_bytes().try_into().ok()?;
    let mut digest = [0u8; 16];
    // Every digit looked at, any invalid one noted: no branch a digit.
    let mut invalid = 0;
    for (byte, pair) in digest.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (HEX_VALUE[usize::from(pair[0])], HEX_VALUE[usize::from(pair[1])]);
        invalid |= high | low;
        *byte = high << 4 | low;
    }
    (invalid & NOT_HEX == 0).then_some(digest)
}

/// [`HEX_VALUE`] of a byte that is no hex digit.
const NOT_HEX: u8 = 0x10;

/// Each byte's value as a hex digit, or [`NOT_HEX`].
static HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut d: u8 = 0;
    while d < 16 {
        table[b"0123456789abcdef"[d as usize] as usize] = d;
        table[b"0123456789ABCDEF"[d as usize] as usize] = d;
        d += 1;
    }
    table
};

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

    proptest::proptest! {
        /// The sign's digits read as the hex crate reads them, valid or not.
        #[test]
        fn a_sign_reads_as_the_hex_crate_reads_it(
            sign in "[0-9a-fA-F]{32}|[0-9a-fA-F]{0,34}|[0-9a-fA-FgG \\x00\u{e9}]{30,33}|\\PC{0,40}",
        ) {
            let mut want = [0u8; 16];
            let want = hex::decode_to_slice(&sign, &mut want).ok().map(|()| want);
            proptest::prop_assert_eq!(digest_of_hex(&sign), want, "{:?}", sign);
        }
    }

    #[test]
    fn without_keys_nothing_is_checked() {
        let v = Verifier::new(&[], 30, 900);
        assert!(!v.enabled());
        assert_eq!(v.verify(None, None, NOW), Verdict::Unchecked);
    }
}
