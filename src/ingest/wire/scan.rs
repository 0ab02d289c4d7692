//! The fast reading of a push error: one pass over the body, straight into
//! the borrowed fields of [`PushError`], for bodies as CSS writes them.
//!
//! It declines (`None`) whatever it is not sure of: an escape in a string
//! it keeps, a number with a fraction or an exponent, a field given twice,
//! anything that is not well-formed JSON. serde then decides and explains,
//! so this reading never accepts a body that serde refuses, nor reads one
//! differently (`tests::agrees_with_serde` holds the two to that).
//!
//! The body is checked as UTF-8 once, whole (SIMD, `simdutf8`), so the
//! strings it keeps are slices of that text, checked no more.
use super::{int_in_str, AbnormalEvent, Detail, Events, PushError, EVENT_PUSH_ERROR};
use smallvec::SmallVec;
use std::borrow::Cow;

/// The body as a push error, if it is one written as CSS writes them.
pub(super) fn push_error(body: &[u8]) -> Option<PushError<'_>> {
    // Text not UTF-8 is left to serde, which refuses it where it reads it.
    let mut s = Scanner::new(simdutf8::basic::from_utf8(body).ok()?);
    let p = s.push_error()?;
    s.ws();
    (s.i == body.len() && p.event_type == Some(EVENT_PUSH_ERROR)).then_some(p)
}

/// Where the first byte that ends a string's plain text is in `text`: a
/// quote, a backslash or a control character. Eight bytes at a time, as
/// serde_json finds it: most strings here are too short for `memchr` to
/// pay for its setup.
fn special(text: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES * 0x80;
    // Marks (in its high bit) each byte of `v` below `n`; exact up to the
    // first marked byte, which is all that is read.
    let below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & HIGH;
    let chunks = text.chunks_exact(8);
    let tail = chunks.remainder();
    for (i, chunk) in chunks.enumerate() {
        let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let found = below(v ^ (ONES * u64::from(b'"')), 1) | below(v ^ (ONES * u64::from(b'\\')), 1) | below(v, 0x20);
        if found != 0 {
            return Some(i * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    let at = tail.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    Some(text.len() - tail.len() + at)
}

/// Nesting of unknown values read before declining (serde_json allows 128).
const MAX_DEPTH: usize = 32;

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Stores the value of a field; `None` if the field was given before
/// (serde refuses a repeated field).
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, b: text.as_bytes(), i: 0 }
    }

    fn push_error(&mut self) -> Option<PushError<'a>> {
        let (mut event_type, mut t, mut sign, mut appid, mut report_interval) = (None, None, None, None, None);
        let (mut domain, mut path, mut stream_id, mut sequence) = (None, None, None, None);
        let (mut data_time, mut abnormal_event, mut events) = (None, None, Events::new());
        self.object(|s, key| match key {
            b"event_type" => once(&mut event_type, s.opt_int()?),
            b"t" => once(&mut t, s.opt_int()?),
            b"sign" => once(&mut sign, s.opt_str()?),
            b"appid" => once(&mut appid, s.opt_int()?),
            b"domain" => once(&mut domain, s.str()?),
            b"path" => once(&mut path, s.str()?),
            b"stream_id" => once(&mut stream_id, s.str()?),
            b"sequence" => once(&mut sequence, s.str()?),
            b"data_time" => once(&mut data_time, s.int().filter(|&v| v > 0)?),
            b"report_interval" => once(&mut report_interval, s.opt_int()?),
            b"abnormal_event" => {
                once(&mut abnormal_event, ())?;
                s.array(&mut events, Self::event)
            }
            _ => s.skip(0),
        })?;
        let borrowed = |v: Option<&'a str>| Cow::Borrowed(v.unwrap_or_default());
        Some(PushError {
            event_type: event_type.flatten(),
            t: t.flatten(),
            sign: sign.flatten().map(Cow::Borrowed),
            appid: appid.flatten(),
            domain: borrowed(domain),
            path: borrowed(path),
            stream_id: Cow::Borrowed(stream_id?),
            sequence: borrowed(sequence),
            data_time: data_time?,
            report_interval: report_interval.flatten(),
            abnormal_event: events,
        })
    }

    fn event(&mut self, event: &mut AbnormalEvent<'a>) -> Option<()> {
        let (mut kind, mut count, mut detail) = (None, None, None);
        self.object(|s, key| match key {
            b"type" => once(&mut kind, s.uint()?),
            b"count" => once(&mut count, s.uint()?),
            b"detail" => {
                once(&mut detail, ())?;
                s.array(&mut event.detail, Self::detail)
            }
            _ => s.skip(1),
        })?;
        (event.kind, event.count) = (kind?, count?);
        Some(())
    }

    fn detail(&mut self, detail: &mut Detail<'a>) -> Option<()> {
        let mut desc = None;
        self.object(|s, key| match key {
            b"desc" => once(&mut desc, s.str()?),
            _ => s.skip(2),
        })?;
        detail.desc = Cow::Borrowed(desc.unwrap_or_default());
        Some(())
    }

    /// An object, each field's value read by `field` given its name.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.raw_str()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            field(self, key)?;
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// An array, each item read by `item` into a default one pushed on
    /// `out` (in place: an event is large to move).
    fn array<A: smallvec::Array>(
        &mut self,
        out: &mut SmallVec<A>,
        mut item: impl FnMut(&mut Self, &mut A::Item) -> Option<()>,
    ) -> Option<()>
    where
        A::Item: Default,
    {
        self.items(|s| {
            out.push(A::Item::default());
            item(s, out.last_mut().expect("just pushed"))
        })
    }

    /// Reads an array's items with `item`.
    fn items(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A string without escapes, as text.
    fn str(&mut self) -> Option<&'a str> {
        let (start, end) = self.span()?;
        // Quotes are ASCII: both ends are on characters' bounds.
        self.text.get(start..end)
    }

    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.str().map(Some)
    }

    /// The bytes of a string without escapes or control characters.
    fn raw_str(&mut self) -> Option<&'a [u8]> {
        let (start, end) = self.span()?;
        Some(&self.b[start..end])
    }

    /// Where the text of a string without escapes or control characters
    /// starts and ends. Inlined: a body has dozens of strings, most short,
    /// where a call costs as much as finding the end.
    #[inline(always)]
    fn span(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let start = self.i;
        let end = start + special(&self.b[start..])?;
        if self.b[end] != b'"' {
            return None;
        }
        self.i = end + 1;
        Some((start, end))
    }

    /// An integer as serde reads one here: a number without fraction or
    /// exponent, or a numeric string.
    fn int(&mut self) -> Option<i64> {
        if self.peek()? == b'"' {
            return int_in_str(self.str()?);
        }
        let negative = self.eat(b'-').is_some();
        let digits = self.digits();
        // serde reads a fraction, an exponent or a leading zero otherwise.
        let plain = !digits.is_empty() && digits.len() <= 18 && (digits[0] != b'0' || digits.len() == 1);
        if !plain || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let v = digits.iter().fold(0i64, |v, &d| v * 10 + i64::from(d - b'0'));
        Some(if negative { -v } else { v })
    }

    fn opt_int(&mut self) -> Option<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        self.int().map(Some)
    }

    fn uint(&mut self) -> Option<u64> {
        u64::try_from(self.int()?).ok()
    }

    /// Skips any JSON value, `depth` levels down.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_str(),
            b'{' => self.object(|s, _| s.skip(depth + 1)),
            b'[' => self.items(|s| s.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.skip_number(),
        }
    }

    /// Skips a string, escapes checked as serde checks them.
    fn skip_str(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            self.i += special(&self.b[self.i..])?;
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => {}
                _ => return None, // a control character
            }
            match self.next()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                b'u' => {
                    let hex = self.b.get(self.i..self.i + 4)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.i += 4;
                }
                _ => return None,
            }
        }
    }

    /// Skips a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn skip_number(&mut self) -> Option<()> {
        self.eat(b'-');
        let whole = self.digits();
        if whole.is_empty() || (whole[0] == b'0' && whole.len() > 1) {
            return None;
        }
        if self.eat(b'.').is_some() && self.digits().is_empty() {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits().is_empty() {
                return None;
            }
        }
        Some(())
    }

    fn digits(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        &self.b[start..self.i]
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let found = self.b[self.i..].starts_with(word);
        found.then(|| self.i += word.len())
    }

    fn null(&mut self) -> bool {
        self.literal(b"null").is_some()
    }

    fn ws(&mut self) {
        // Most calls meet no whitespace: one comparison tells.
        while self.peek().is_some_and(|c| c <= b' ' && matches!(c, b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::serde_push_error;
    use super::*;
    use proptest::prelude::*;

    const SEED: &str = include_str!("../../../tests/fixtures/push-error-seed.json");

    #[test]
    fn reads_what_css_sends() {
        let p = push_error(SEED.as_bytes()).expect("the seed is read here, not left to serde");
        assert_eq!(Some(&p), serde_push_error(SEED.as_bytes()).as_ref());
        assert_eq!((p.stream_id.as_ref(), p.data_time, p.abnormal_event[1].detail.len()), ("xxxxxx", 1670588074971, 2));
        let signed =
            br#"{"event_type":"321","t":" 4102444800 ","sign":"ab","stream_id":"s","data_time":5,"x":[{"y":null}]}"#;
        let p = push_error(signed).expect("numeric strings, unknown values");
        assert_eq!((p.t, p.sign.as_deref(), p.appid), (Some(4102444800), Some("ab"), None));
    }

    #[test]
    fn declines_what_serde_refuses_or_reads_otherwise() {
        for body in [
            r#"{"event_type":321,"stream_id":"s","data_time":1,"data_time":2}"#,
            r#"{"event_type":321,"stream_id":"s","data_time":1,}"#,
            r#"{"event_type":321,"stream_id":"s","data_time":0}"#,
            r#"{"event_type":321,"stream_id":"s","data_time":01}"#,
            r#"{"event_type":321,"stream_id":"s","data_time":1.0}"#,
            r#"{"event_type":321,"stream_id":"a\"b","data_time":1}"#,
            r#"{"event_type":321,"stream_id":"s","data_time":1,"x":"\q"}"#,
            r#"{"event_type":321,"stream_id":"s","data_time":1,"abnormal_event":[{"type":6}]}"#,
            r#"{"event_type":321,"stream_id":"s","data_time":1} x"#,
            "{\"event_type\":321,\"stream_id\":\"s\t\",\"data_time\":1}",
        ] {
            assert_eq!(push_error(body.as_bytes()), None, "{body}");
        }
    }

    /// A JSON value of the kinds serde meets in a body, well-formed or not
    /// quite.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("nul".to_owned()),
            any::<i64>().prop_map(|v| v.to_string()),
            (0u64..1000).prop_map(|v| format!("\"{v}\"")),
            (0u64..1000).prop_map(|v| format!("\" {v} \"")),
            Just("1.5".to_owned()),
            Just("2e3".to_owned()),
            Just("-0".to_owned()),
            Just("007".to_owned()),
            Just("18446744073709551616".to_owned()),
            "[a-z\"\\\\/\t\u{e9}\u{76f4}]{0,6}".prop_map(|s| format!("\"{s}\"")),
            Just(r#""\u00e9\n""#.to_owned()),
            Just(r#""\u00g9""#.to_owned()),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-z]{1,3}|type|count|detail|desc", inner), 0..3).prop_map(|v| {
                    let fields: Vec<String> = v.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    /// An `abnormal_event` item: CSS's fields, sometimes spoiled.
    fn event() -> impl Strategy<Value = String> {
        let number = prop_oneof![40 => (0u64..20).prop_map(|v| v.to_string()), 1 => value()];
        let desc = prop_oneof![
            30 => (1000u64..5000).prop_map(|ms| format!(r#"{{"desc":"video frame arrive interval too long, interval={ms}(msec)","occur_time":1}}"#)),
            1 => value().prop_map(|v| format!(r#"{{"desc":{v}}}"#)),
            1 => value(),
        ];
        (number.clone(), number, prop::collection::vec(desc, 0..6), any::<bool>()).prop_map(
            |(kind, count, detail, cn)| {
                let cn = if cn { r#","type_desc_cn":"视频帧到达间隔""# } else { "" };
                format!(r#"{{"type":{kind},"count":{count},"detail":[{}]{cn}}}"#, detail.join(","))
            },
        )
    }

    /// A body: each field of a push error present or not, mostly as CSS
    /// writes it, sometimes another value or twice; then perhaps a byte cut.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let good: [(&str, BoxedStrategy<String>); 11] = [
            ("event_type", prop_oneof![Just("321".to_owned()), Just("\"321\"".to_owned())].boxed()),
            ("t", (0i64..5_000_000_000).prop_map(|v| v.to_string()).boxed()),
            ("sign", "[0-9a-f]{32}".prop_map(|s| format!("\"{s}\"")).boxed()),
            ("appid", Just("1250000000".to_owned()).boxed()),
            ("domain", "[a-z.]{0,12}".prop_map(|s| format!("\"{s}\"")).boxed()),
            ("path", "[a-z\u{76f4}]{0,6}".prop_map(|s| format!("\"{s}\"")).boxed()),
            ("stream_id", "[a-z0-9-]{1,8}".prop_map(|s| format!("\"{s}\"")).boxed()),
            ("sequence", "[0-9]{1,19}".prop_map(|s| format!("\"{s}\"")).boxed()),
            ("data_time", (1i64..2_000_000_000_000).prop_map(|v| v.to_string()).boxed()),
            ("report_interval", Just("5000".to_owned()).boxed()),
            ("abnormal_event", prop::collection::vec(event(), 0..6).prop_map(|v| format!("[{}]", v.join(","))).boxed()),
        ];
        let fields: Vec<_> = good
            .into_iter()
            .map(|(name, good)| {
                let v = prop_oneof![40 => good, 1 => value()];
                (prop::option::weighted(0.95, v), 0u8..100).prop_map(move |(v, twice)| {
                    let one = |v: &str| format!("\"{name}\" : {v}");
                    v.map(|v| if twice == 0 { format!("{},{}", one(&v), one(&v)) } else { one(&v) })
                })
            })
            .collect();
        (fields, prop::option::of(value()), prop::option::weighted(0.1, any::<prop::sample::Index>())).prop_map(
            |(fields, extra, cut)| {
                let mut parts: Vec<String> = fields.into_iter().flatten().collect();
                parts.extend(extra.map(|v| format!("\"stream_param\":{v}")));
                let mut body = format!("{{ {} }}\n", parts.join(",\n")).into_bytes();
                if let Some(at) = cut {
                    body.remove(at.index(body.len()));
                }
                body
            },
        )
    }

    proptest! {
        #[test]
        fn special_finds_the_first_quote_backslash_or_control(text in prop::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(special(&text), text.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn agrees_with_serde(body in body()) {
            if let Some(p) = push_error(&body) {
                prop_assert_eq!(Some(p), serde_push_error(&body), "{}", String::from_utf8_lossy(&body));
            }
        }
    }
}
