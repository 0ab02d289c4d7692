//! The Prometheus text exposition format: an [`Encoder`] that writes whole
//! families straight into the page.
use super::families::{Family, Kind};
use super::histogram::Observed;
use std::fmt::Write;
use std::ops::Range;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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
    pub fn histogram(&mut self, f: &Family, labels: &str, extra: &[(&str, &str)], h: &impl Observed) {
        debug_assert_eq!(f.kind, Kind::Histogram);
        fn bucket<'a>(extra: &[(&'a str, &'a str)], le: &'a str) -> Vec<(&'a str, &'a str)> {
            [extra, &[("le", le)]].concat()
        }
        let (count, sum) = h.buckets(&mut |bound, count| {
            let le = bound.to_string();
            self.line(f.name, "_bucket", labels, &bucket(extra, &le), Value::Int(count));
        });
        self.line(f.name, "_bucket", labels, &bucket(extra, "+Inf"), Value::Int(count));
        self.line(f.name, "_sum", labels, extra, Value::Float(sum));
        self.line(f.name, "_count", labels, extra, Value::Int(count));
    }

    /// Text another encoder produced, appended as is.
    pub fn raw(&mut self) -> &mut String {
        self.out
    }

    /// One sample line of a family with a series per stream, from parts
    /// joined once per render ([`Around`]): a copy each for the name, the
    /// label set, the extra labels and the value. Returns where the label
    /// set now stands on the page, so a later family's line for the same
    /// series can copy it from there ([`Labels::Written`]).
    pub fn sample_around(&mut self, around: &Around, labels: Labels<'_>, value: Value) -> Range<usize> {
        let out = &mut *self.out;
        out.push_str(&around.open);
        let start = out.len();
        match labels {
            Labels::Text(text) => out.push_str(text),
            Labels::Written(range) => out.extend_from_within(range),
        }
        let written = start..out.len();
        debug_assert!(!written.is_empty(), "the extra labels follow a comma");
        out.push_str(&around.close);
        push_value(out, value);
        out.push('\n');
        written
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
            push_extra(out, !labels.is_empty(), extra);
        }
        push_value(out, value);
        out.push('\n');
    }
}

/// A non-empty label set of a sample line.
pub enum Labels<'a> {
    Text(&'a str),
    /// Written on this page already, here.
    Written(Range<usize>),
}

/// What comes before and after the label set on every line of one family
/// with the same extra labels: `name{` and `,extra="value"} `.
pub struct Around {
    open: String,
    close: String,
}

impl Around {
    /// `extra` values must need no escaping.
    pub fn new(f: &Family, extra: &[(&str, &str)]) -> Self {
        let mut close = String::new();
        push_extra(&mut close, true, extra);
        Self { open: format!("{}{{", f.name), close }
    }
}

/// `,k="v"` for each extra label (no comma before the first unless
/// `comma`), then the `} ` that ends the labels.
fn push_extra(out: &mut String, mut comma: bool, extra: &[(&str, &str)]) {
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

fn push_value(out: &mut String, value: Value) {
    match value {
        Value::Int(v) => out.push_str(itoa::Buffer::new().format(v)),
        Value::Float(v) => push_float(out, v),
    }
}

/// Appends `v` as `{v}` writes it: the shortest digits that read back as
/// `v`, never an exponent. Through ryu where its text is the same but for a
/// trailing `.0`: without an exponent, and with at most 15 digits (the
/// shortest is then the only one; at 16 or 17 the two may round the last
/// digit apart). `core::fmt` was the slowest part of rendering three floats
/// per stream.
fn push_float(out: &mut String, v: f64) {
    if let Some(millis) = whole_millis(v) {
        push_millis(out, millis);
        return;
    }
    if v.is_finite() {
        let mut buf = ryu::Buffer::new();
        let text = buf.format_finite(v);
        if !text.contains('e') && text.bytes().filter(u8::is_ascii_digit).count() <= 15 {
            out.push_str(text.strip_suffix(".0").unwrap_or(text));
            return;
        }
    }
    let _ = write!(out, "{v}");
}

/// `v` as a whole number of thousandths, if it is the double nearest one
/// below 10^12 (timestamps and frame gaps come in milliseconds). Its
/// shortest text is then those thousandths' decimal text: below 2^43 two
/// doubles are less than 0.001 apart, so no other decimal with as few
/// digits reads back as `v`.
fn whole_millis(v: f64) -> Option<u64> {
    if !(v.is_sign_positive() && v < 1e12) {
        return None;
    }
    let millis = (v * 1000.0).round();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "0 to 10^15, a whole number")]
    let whole = millis as u64;
    #[allow(clippy::float_cmp, reason = "exactly the nearest double, as parsing the text would give")]
    (millis / 1000.0 == v).then_some(whole)
}

/// `millis` thousandths as `Display` writes the double: no trailing zeros,
/// no point when whole.
fn push_millis(out: &mut String, millis: u64) {
    out.push_str(itoa::Buffer::new().format(millis / 1000));
    let frac = millis % 1000;
    if frac != 0 {
        // "1abc": the three digits after the point, led by a 1 kept off.
        let mut digits = itoa::Buffer::new();
        out.push('.');
        out.push_str(digits.format(1000 + frac)[1..].trim_end_matches('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::super::families::{FRAME_INTERVAL, STREAMS};
    use super::*;

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

    proptest::proptest! {
        #[test]
        fn floats_are_written_as_display_writes_them(bits in proptest::num::u64::ANY, small in -1e7f64..1e10) {
            for v in [f64::from_bits(bits), small, small.round(), small / 1000.0] {
                let mut s = String::new();
                push_float(&mut s, v);
                proptest::prop_assert_eq!(s, v.to_string());
            }
        }

        #[test]
        fn thousandths_are_written_as_display_writes_them(millis in 0u64..1_000_000_000_000_000, bits in 0u64..4) {
            let v = millis as f64 / 1000.0;
            // The double itself, and its neighbours (no longer whole thousandths).
            for v in [v, f64::from_bits(v.to_bits() + bits), f64::from_bits(v.to_bits().saturating_sub(bits)), -v] {
                let mut s = String::new();
                push_float(&mut s, v);
                proptest::prop_assert_eq!(s, v.to_string());
            }
        }
    }
}
