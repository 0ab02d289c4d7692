//! Short quotes of what a sender controls: error messages, answers and log
//! lines show at most a prefix of any value, so a megabyte sent is never a
//! megabyte echoed.
use super::cap;
use std::borrow::Cow;

/// Most bytes of one quoted value shown.
pub const QUOTE_BYTES: usize = 64;
/// Most bytes of a whole message built around quoted values.
pub const MESSAGE_BYTES: usize = 256;

/// `value` cut to `max` bytes (on a character boundary), with an ellipsis if cut.
pub fn prefix(value: &str, max: usize) -> Cow<'_, str> {
    if value.len() <= max {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(max + '…'.len_utf8());
    push_capped(&mut out, value, max);
    Cow::Owned(out)
}

/// Appends `value` cut to `max` bytes (on a character boundary), with an
/// ellipsis if cut; allocates only if `out` must grow.
pub fn push_capped(out: &mut String, value: &str, max: usize) {
    let kept = cap(value, max);
    out.push_str(kept);
    if kept.len() < value.len() {
        out.push('…');
    }
}

/// `message` with every double-quoted part (as serde quotes values) cut to
/// [`QUOTE_BYTES`], and the whole to [`MESSAGE_BYTES`].
pub fn shorten(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MESSAGE_BYTES + 8));
    let mut rest = message;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        let quoted = &rest[open + 1..];
        let close = closing_quote(quoted).unwrap_or(quoted.len());
        out.push_str(&prefix(&quoted[..close], QUOTE_BYTES));
        out.push_str(&quoted[close..(close + 1).min(quoted.len())]);
        rest = &quoted[(close + 1).min(quoted.len())..];
        if out.len() > MESSAGE_BYTES {
            break;
        }
    }
    out.push_str(cap(rest, MESSAGE_BYTES + 1));
    prefix(&out, MESSAGE_BYTES).into_owned()
}

/// Where the first quote not escaped by a backslash is.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_cut_to_a_prefix() {
        let long = "x".repeat(1 << 20);
        let msg = format!("invalid type: string \"{long}\", expected a sequence");
        let short = shorten(&msg);
        assert_eq!(short, format!("invalid type: string \"{}…\", expected a sequence", "x".repeat(QUOTE_BYTES)));
        assert_eq!(shorten("a \"q\\\"uote\" b"), "a \"q\\\"uote\" b", "escaped quotes stay inside");
        assert_eq!(shorten("no quotes"), "no quotes");
        assert_eq!(shorten("open \"直播"), "open \"直播", "an unclosed quote");
        let many = "\"ab\" ".repeat(1000);
        assert!(shorten(&many).len() <= MESSAGE_BYTES + '…'.len_utf8());
        let unquoted = "y".repeat(10_000);
        assert_eq!(shorten(&unquoted), format!("{}…", "y".repeat(MESSAGE_BYTES)));
    }

    #[test]
    fn prefix_keeps_characters_whole() {
        assert_eq!(prefix("short", 64), "short");
        assert_eq!(prefix("a直播", 2), "a…");
    }
}
