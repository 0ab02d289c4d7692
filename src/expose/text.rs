//! The Prometheus text exposition format: label escaping and an [`Encoder`]
//! that writes whole families straight into the page.
use super::families::{Family, Kind};
use prometheus::core::Metric;
use std::fmt::Write;

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

/// Appends `name="value",...` for the given pairs, values escaped.
pub fn push_labels(out: &mut String, pairs: &[(&str, &str)]) {
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        push_escaped(out, value);
        out.push('"');
    }
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

#[derive(Debug, Clone, Copy)]
pub enum Value {
    Int(u64),
    Float(f64),
}

/// Writes families onto a page. A family's samples must follow its
/// [`Encoder::family`] header before the next family starts.
pub struct Encoder<'a> {
    out: &'a mut String,
}

impl<'a> Encoder<'a> {
    pub fn new(out: &'a mut String) -> Self {
        Self { out }
    }

    /// The `# HELP` and `# TYPE` lines that open a family.
    pub fn family(&mut self, f: &Family) {
        let out = &mut *self.out;
        for part in ["# HELP ", f.name, " ", f.help, "\n# TYPE ", f.name, " ", f.kind.as_str(), "\n"] {
            out.push_str(part);
        }
    }

    /// One sample of a counter or gauge: `name{labels,extra} value`.
    /// `labels` is already escaped (`a="1",b="2"`); `extra` values must need no escaping.
    pub fn sample(&mut self, f: &Family, labels: &str, extra: &[(&str, &str)], value: Value) {
        self.line(f.name, "", labels, extra, value);
    }

    /// A whole family of one sample without labels.
    pub fn single(&mut self, f: &Family, value: Value) {
        self.family(f);
        self.sample(f, "", &[], value);
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram.
    pub fn histogram(&mut self, f: &Family, labels: &str, extra: &[(&str, &str)], h: &prometheus::Histogram) {
        debug_assert_eq!(f.kind, Kind::Histogram);
        let metric = h.metric();
        let h = metric.get_histogram();
        fn bucket<'a>(extra: &[(&'a str, &'a str)], le: &'a str) -> Vec<(&'a str, &'a str)> {
            [extra, &[("le", le)]].concat()
        }
        for b in h.get_bucket() {
            let le = b.upper_bound().to_string();
            self.line(f.name, "_bucket", labels, &bucket(extra, &le), Value::Int(b.cumulative_count()));
        }
        self.line(f.name, "_bucket", labels, &bucket(extra, "+Inf"), Value::Int(h.get_sample_count()));
        self.line(f.name, "_sum", labels, extra, Value::Float(h.get_sample_sum()));
        self.line(f.name, "_count", labels, extra, Value::Int(h.get_sample_count()));
    }

    /// Text another encoder produced, appended as is.
    pub fn raw(&mut self) -> &mut String {
        self.out
    }

    fn line(&mut self, name: &str, suffix: &str, labels: &str, extra: &[(&str, &str)], value: Value) {
        // The hottest loop of a scrape: one call per sample, so no empty pushes.
        let out = &mut *self.out;
        out.push_str(name);
        if !suffix.is_empty() {
            out.push_str(suffix);
        }
        if labels.is_empty() && extra.is_empty() {
            out.push(' ');
        } else {
            out.push('{');
            out.push_str(labels);
            let mut comma = !labels.is_empty();
            for (k, v) in extra {
                if comma {
                    out.push(',');
                }
                comma = true;
                out.push_str(k);
                out.push_str("=\"");
                out.push_str(v);
                out.push('"');
            }
            out.push_str("} ");
        }
        match value {
            Value::Int(v) => out.push_str(itoa::Buffer::new().format(v)),
            Value::Float(v) => {
                let _ = write!(out, "{v}");
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::super::families::{FRAME_INTERVAL, STREAMS};
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

    #[test]
    fn samples_and_histograms() {
        let mut s = String::new();
        let mut enc = Encoder::new(&mut s);
        enc.family(&STREAMS);
        enc.sample(&STREAMS, "a=\"1\"", &[("b", "2")], Value::Int(7));
        enc.sample(&STREAMS, "", &[], Value::Float(3.046));
        enc.sample(&STREAMS, "", &[("b", "2")], Value::Int(1));
        let h =
            prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("x", "x").buckets(vec![1.0, 2.5])).unwrap();
        h.observe(2.0);
        enc.histogram(&FRAME_INTERVAL, "a=\"1\"", &[], &h);
        let want = "# HELP css_push_streams Streams currently holding per-stream series.\n\
                    # TYPE css_push_streams gauge\n\
                    css_push_streams{a=\"1\",b=\"2\"} 7\n\
                    css_push_streams 3.046\n\
                    css_push_streams{b=\"2\"} 1\n\
                    css_push_frame_interval_seconds_bucket{a=\"1\",le=\"1\"} 0\n\
                    css_push_frame_interval_seconds_bucket{a=\"1\",le=\"2.5\"} 1\n\
                    css_push_frame_interval_seconds_bucket{a=\"1\",le=\"+Inf\"} 1\n\
                    css_push_frame_interval_seconds_sum{a=\"1\"} 2\n\
                    css_push_frame_interval_seconds_count{a=\"1\"} 1\n";
        assert_eq!(s, want);
    }
}
