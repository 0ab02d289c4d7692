//! Text utilities every stage shares: cutting sender-controlled values
//! short, and label-value escaping. A leaf: it imports nothing of the crate.
pub mod quote;
pub mod url;

/// Cuts `value` to at most `max_bytes` on a character boundary.
pub fn cap(value: &str, max_bytes: usize) -> &str {
    if value.len() <= max_bytes {
        return value;
    }
    let mut end = max_bytes;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Appends `value` escaped for use inside a label value's quotes.
pub fn push_escaped(out: &mut String, value: &str) {
    // Most values need no escape: copied whole. Every byte looked at (no
    // early stop), which the compiler turns into a few wide compares.
    if !value.bytes().fold(false, |any, b| any | matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `name="value",...` for the given pairs, values escaped.
pub fn push_labels(out: &mut String, pairs: &[(&str, &str)]) {
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_label(out, name, value);
    }
}

/// Appends `name="value"`, the value escaped. Inlined, so a constant name
/// is copied as a constant.
#[inline]
pub fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    push_escaped(out, value);
    out.push('"');
}

/// The `(name, value)` pairs of a `name="value",...` label set, values
/// unescaped: the inverse of [`push_labels`]. Stops at anything malformed.
pub fn parse_labels(labels: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = labels.chars();
    loop {
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if name.is_empty() || chars.next() != Some('"') {
            return out;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((name.trim_start_matches(',').to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_respects_char_boundaries() {
        assert_eq!(cap("abcdef", 3), "abc");
        assert_eq!(cap("ab", 3), "ab");
        assert_eq!(cap("a直播", 2), "a");
        assert_eq!(cap("a直播", 4), "a直");
    }

    #[test]
    fn labels_are_escaped_and_read_back() {
        let pairs = [("domain", "a\"b\\c\nd"), ("app", "x=y,z=\"w\""), ("stream", "")];
        let mut s = String::new();
        push_labels(&mut s, &pairs[..2]);
        assert_eq!(s, r#"domain="a\"b\\c\nd",app="x=y,z=\"w\"""#);
        s.push(',');
        push_labels(&mut s, &pairs[2..]);
        let back = parse_labels(&s);
        assert_eq!(back, pairs.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert_eq!(parse_labels("a=1"), []);
    }
}
