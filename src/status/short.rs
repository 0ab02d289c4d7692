//! Sender-controlled text cut short before it is shown: a reason may quote
//! a value the sender chose, of any length.
use std::borrow::Cow;

/// Longest quoted value shown, in bytes; longer ones end in "…".
pub const SHORT_BYTES: usize = 64;

/// `s` cut to [`SHORT_BYTES`] on a character boundary, with "…" when cut.
pub fn short(s: &str) -> Cow<'_, str> {
    if s.len() <= SHORT_BYTES {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(SHORT_BYTES + '…'.len_utf8());
    push_capped(&mut out, s, SHORT_BYTES);
    Cow::Owned(out)
}

/// Appends `s` cut to `max_bytes` on a character boundary, with "…" when
/// cut; allocates only if `out` must grow.
pub fn push_capped(out: &mut String, s: &str, max_bytes: usize) {
    let cut = crate::expose::text::cap(s, max_bytes);
    out.push_str(cut);
    if cut.len() < s.len() {
        out.push('…');
    }
}

/// `reason` with every quoted span (between `"` or between backticks, as
/// serde quotes values) cut by [`short`]; the words around them are kept,
/// since they say what was expected.
pub fn short_quotes(reason: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut rest = reason;
    let mut cut = false;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = &rest[open..=open];
        let Some(len) = rest[open + 1..].find(quote) else { break };
        let value = &rest[open + 1..open + 1 + len];
        out.push_str(&rest[..=open]);
        let shortened = short(value);
        cut |= matches!(shortened, Cow::Owned(_));
        out.push_str(&shortened);
        out.push_str(quote);
        rest = &rest[open + len + 2..];
    }
    if !cut {
        return Cow::Borrowed(reason);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept_and_long_ones_cut_on_a_character_boundary() {
        assert_eq!(short("room-1001"), "room-1001");
        let exact = "x".repeat(SHORT_BYTES);
        assert_eq!(short(&exact), exact.as_str());
        let long = format!("{}é{}", "a".repeat(SHORT_BYTES - 1), "b".repeat(100));
        assert_eq!(short(&long), format!("{}…", "a".repeat(SHORT_BYTES - 1)));
    }

    #[test]
    fn only_the_quoted_values_of_a_reason_are_cut() {
        let plain = "data_time: invalid type: string \"soon\", expected an integer";
        assert!(matches!(short_quotes(plain), Cow::Borrowed(_)));
        let long = "z".repeat(500);
        let reason = format!("stream_id: invalid type: string \"{long}\", expected `a {long}` or so \"");
        let (z64, z62) = ("z".repeat(64), "z".repeat(62));
        let want = format!("stream_id: invalid type: string \"{z64}…\", expected `a {z62}…` or so \"");
        assert_eq!(short_quotes(&reason), want);
    }
}
