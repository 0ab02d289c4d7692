//! Prometheus text exposition helpers for the families we render ourselves
//! (the per-stream ones, where building the prometheus crate's protobuf
//! structures for hundreds of thousands of series would dominate a scrape).

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `name="value",...` for the given pairs, values capped and escaped.
pub fn push_labels(out: &mut String, pairs: &[(&str, &str)], max_bytes: usize) {
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        push_escaped(out, cap(value, max_bytes));
        out.push('"');
    }
}

pub fn push_header(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    out.push_str(help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// Appends one sample line: `name{labels,extra} value`.
pub fn push_sample(out: &mut String, name: &str, labels: &str, extra: &[(&str, &str)], value: Value) {
    out.push_str(name);
    out.push('{');
    out.push_str(labels);
    for (k, v) in extra {
        out.push(',');
        out.push_str(k);
        out.push_str("=\"");
        out.push_str(v);
        out.push('"');
    }
    out.push_str("} ");
    match value {
        Value::Int(v) => out.push_str(itoa::Buffer::new().format(v)),
        Value::Float(v) => {
            use std::fmt::Write;
            let _ = write!(out, "{v}");
        }
    }
    out.push('\n');
}

#[derive(Debug, Clone, Copy)]
pub enum Value {
    Int(u64),
    Float(f64),
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
    fn labels_are_escaped_and_capped() {
        let mut s = String::new();
        push_labels(&mut s, &[("domain", "a\"b\\c\nd"), ("app", "xyz")], 64);
        assert_eq!(s, r#"domain="a\"b\\c\nd",app="xyz""#);
        let mut s = String::new();
        push_labels(&mut s, &[("stream", "abcdef")], 4);
        assert_eq!(s, r#"stream="abcd""#);
    }

    #[test]
    fn samples() {
        let mut s = String::new();
        push_sample(&mut s, "m", "a=\"1\"", &[("b", "2")], Value::Int(7));
        push_sample(&mut s, "g", "a=\"1\"", &[], Value::Float(3.046));
        assert_eq!(s, "m{a=\"1\",b=\"2\"} 7\ng{a=\"1\"} 3.046\n");
    }
}
