//! How values are written as text in the status page: escaped (sender
//! controlled names), counted, spaced and timed.
use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

/// `part` of `whole` as a percentage with two decimals.
pub(super) fn percent(part: u64, whole: u64) -> String {
    #[allow(clippy::cast_precision_loss, reason = "a percentage shown")]
    let p = part as f64 * 100.0 / whole as f64;
    format!("{p:.2}%")
}

/// `n` (as [`thousands`]) and the noun it counts: "1 stream", "2 streams".
pub(super) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// `n` with thin spaces between thousands, as it is easier to read.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(d);
    }
    out
}

pub(super) fn time(unix_secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix_secs)).to_string()
}

pub(super) fn ago(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        7200..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// `s` safe inside HTML text and attribute values, and shown as it is:
/// control, bidirectional and invisible characters (which could make one
/// stream name look like another, or reorder the text around it) are
/// written out visibly as `\u{202E}`.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| matches!(c, '&' | '<' | '>' | '"' | '\'') || hidden(c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:04X}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Characters that show nothing, or change how the text around them shows:
/// controls, bidirectional marks, embeddings, overrides and isolates,
/// zero-width and other format characters, variation selectors, tags.
pub(crate) fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_reordering_characters_are_shown() {
        assert_eq!(escape("live\u{202E}cod.exe"), "live\\u{202E}cod.exe");
        assert_eq!(escape("a\u{200B}b\u{2066}c\u{FEFF}\u{7}"), "a\\u{200B}b\\u{2066}c\\u{FEFF}\\u{0007}");
        assert_eq!(escape("直播-é-🎥"), "直播-é-🎥", "visible text as it is");
    }

    #[test]
    fn thousands_are_spaced() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(50_000), "50\u{202f}000");
        assert_eq!(thousands(2_000_000), "2\u{202f}000\u{202f}000");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(5), "5 s ago");
        assert_eq!(ago(600), "10 min ago");
        assert_eq!(ago(3 * 3600), "3 h ago");
        assert_eq!(ago(3 * 86_400), "3 d ago");
    }
}
