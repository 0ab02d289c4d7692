//! The wire model: callback bodies as CSS posts them.
//!
//! Parsing is two-stage: [`Head`] reads only what every event kind shares
//! (`event_type`, `t`, `sign`), so an event kind we do not handle is never
//! rejected over a field we would have typed differently. Strings borrow from
//! the body where JSON escapes allow. A push error as CSS writes it, nearly
//! all the traffic, is read in one pass by a scanner (`wire/scan.rs`) instead.
use crate::text::quote;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::fmt;

mod scan;

pub const EVENT_PUSH_ERROR: i64 = 321;
pub const EVENT_PUSH_START: i64 = 1;
pub const EVENT_PUSH_END: i64 = 0;

/// Fields every event kind carries.
#[derive(Debug, Deserialize)]
pub struct Head<'a> {
    #[serde(deserialize_with = "int")]
    pub event_type: i64,
    #[serde(default, deserialize_with = "opt_int")]
    pub t: Option<i64>,
    #[serde(default, borrow)]
    pub sign: Option<Cow<'a, str>>,
}

/// Push error callback, `event_type` 321. It also reads the [`Head`]
/// fields, so that [`push_error_in_one_pass`] can take a well-formed push
/// error whole.
#[derive(Debug, PartialEq, Deserialize)]
pub struct PushError<'a> {
    #[serde(default, deserialize_with = "opt_int")]
    pub event_type: Option<i64>,
    #[serde(default, deserialize_with = "opt_int")]
    pub t: Option<i64>,
    #[serde(default, borrow)]
    pub sign: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "opt_int")]
    pub appid: Option<i64>,
    #[serde(default, borrow)]
    pub domain: Cow<'a, str>,
    #[serde(default, borrow)]
    pub path: Cow<'a, str>,
    #[serde(borrow)]
    pub stream_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub sequence: Cow<'a, str>,
    /// Callback time, Unix milliseconds, positive. Required: it is part of
    /// the callback's identity, without it retries could not be told apart.
    #[serde(deserialize_with = "positive")]
    pub data_time: i64,
    /// The interval this report covers, ms. Optional, and any integer: the
    /// SLO accounting clamps it rather than refuse the report's counts.
    #[serde(default, deserialize_with = "opt_int")]
    pub report_interval: Option<i64>,
    #[serde(default, borrow)]
    pub abnormal_event: Events<'a>,
}

impl PushError<'_> {
    /// A report with nothing read yet, its strings borrowed (nothing to
    /// drop), for a reading that fills it in place.
    pub fn empty() -> Self {
        Self {
            event_type: None,
            t: None,
            sign: None,
            appid: None,
            domain: Cow::Borrowed(""),
            path: Cow::Borrowed(""),
            stream_id: Cow::Borrowed(""),
            sequence: Cow::Borrowed(""),
            data_time: 0,
            report_interval: None,
            abnormal_event: Events::new(),
        }
    }
}

/// A report's `abnormal_event` items: CSS sends a few, held without an
/// allocation up to four.
pub type Events<'a> = SmallVec<[AbnormalEvent<'a>; 4]>;

/// An item's `detail` entries: CSS lists a few of the errors.
pub type Details<'a> = SmallVec<[Detail<'a>; 4]>;

/// One error type's tally within a report interval.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct AbnormalEvent<'a> {
    #[serde(rename = "type", deserialize_with = "uint")]
    pub kind: u64,
    /// The number to count; `detail` may list fewer entries.
    #[serde(deserialize_with = "uint")]
    pub count: u64,
    #[serde(default, borrow)]
    pub detail: Details<'a>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Detail<'a> {
    #[serde(default, borrow)]
    pub desc: Cow<'a, str>,
}

/// Push start (`event_type` 1) and push end (`event_type` 0).
#[derive(Debug, Deserialize)]
pub struct PushLifecycle<'a> {
    #[serde(default, deserialize_with = "opt_int")]
    pub appid: Option<i64>,
    /// Push domain.
    #[serde(default, borrow)]
    pub app: Cow<'a, str>,
    /// Push path.
    #[serde(default, borrow)]
    pub appname: Cow<'a, str>,
    #[serde(borrow)]
    pub stream_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub sequence: Cow<'a, str>,
    /// Unix seconds. Required: part of the event's identity.
    #[serde(deserialize_with = "int")]
    pub event_time: i64,
    #[serde(default, deserialize_with = "opt_int")]
    pub errcode: Option<i64>,
    /// Session length in ms, on end events (documented as a string).
    #[serde(default, deserialize_with = "opt_uint")]
    pub push_duration: Option<u64>,
    /// The CSS access node's IP, as text; anything else is not believed.
    #[serde(default, borrow)]
    pub node: Cow<'a, str>,
    /// 1-6 mainland China, 7-200 outside.
    #[serde(default, deserialize_with = "opt_int")]
    pub set_id: Option<i64>,
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// The JSON path of the culprit (`abnormal_event[1].count`), if any.
    pub path: Option<String>,
    /// A short reason, never quoting a secret field's value.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Not JSON, or not a JSON object.
    Syntax,
    /// A required field is absent.
    Missing,
    /// A field has a value of the wrong type or range.
    Invalid,
}

impl ParseError {
    /// Values the sender controls are quoted short, whatever serde quoted.
    fn new(kind: ParseErrorKind, path: Option<String>, reason: impl AsRef<str>) -> Self {
        Self { kind, path: path.map(|p| quote::shorten(&p)), reason: quote::shorten(reason.as_ref()) }
    }

    /// A body that could not be received whole (a broken chunked encoding,
    /// or the sender went away): as malformed as one that does not parse.
    pub fn unreadable_body() -> Self {
        Self::new(ParseErrorKind::Syntax, None, "the body could not be read whole (broken chunked encoding?)")
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ParseErrorKind::Syntax {
            f.write_str("invalid JSON")?;
            if !self.reason.is_empty() {
                write!(f, ": {}", self.reason)?;
            }
            return Ok(());
        }
        match &self.path {
            Some(path) => write!(f, "{path}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for ParseError {}

/// Fields whose values must never appear in an error message or a log line.
const SECRET_FIELDS: [&str; 3] = ["sign", "stream_param", "user_ip"];

/// Parses `body` as `T`; on failure names the JSON path and what is wrong.
pub fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ParseError> {
    if !is_object(body) {
        return Err(ParseError::new(ParseErrorKind::Syntax, None, "the body must be a JSON object"));
    }
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        // The fast parse has no path; re-run with path tracking to explain.
        Err(_) => Err(explain::<T>(body)),
    }
}

/// The body as a push error, if it is a well-formed one; `None` for
/// anything else, which [`parse`] then reads in two stages and explains.
/// Push errors are nearly all the traffic: a scanner (`wire/scan.rs`)
/// reads those written as CSS writes them, serde in one pass those it
/// declines (escapes, numbers as floats).
pub fn push_error_in_one_pass(body: &[u8]) -> Option<PushError<'_>> {
    if !is_object(body) {
        return None;
    }
    scan::push_error(body).or_else(|| serde_push_error(body))
}

fn serde_push_error(body: &[u8]) -> Option<PushError<'_>> {
    serde_json::from_slice::<PushError>(body).ok().filter(|p| p.event_type == Some(EVENT_PUSH_ERROR))
}

/// serde would also read a struct from an array; a callback is an object.
fn is_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn explain<'a, T: Deserialize<'a>>(body: &'a [u8]) -> ParseError {
    use ParseErrorKind::{Invalid, Missing, Syntax};
    let mut de = serde_json::Deserializer::from_slice(body);
    let err = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => {
            let trailing = de.end().err().map(|e| e.to_string()).unwrap_or_default();
            return ParseError::new(Syntax, None, trailing);
        }
        Err(e) => e,
    };
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return ParseError::new(Syntax, None, inner.to_string());
    }
    let reason = inner.to_string();
    // serde_json appends " at line L column C"; the path says where.
    let reason = reason.rsplit_once(" at line ").map_or(reason.as_str(), |(r, _)| r);
    let kind = if reason.starts_with("missing field") { Missing } else { Invalid };
    if path == "." {
        return ParseError::new(kind, None, reason);
    }
    if SECRET_FIELDS.iter().any(|f| path == *f) {
        return ParseError::new(kind, Some(path), "invalid value");
    }
    ParseError::new(kind, Some(path), reason)
}

// --- integers as numbers or numeric strings: CSS sends both for the same field ---

struct IntVisitor;

impl<'de> Visitor<'de> for IntVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer (number or numeric string)")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() != 0.0 {
            Err(E::custom("expected an integer, got a fraction"))
        } else if v.abs() < 9.0e15 {
            #[allow(clippy::cast_possible_truncation, reason = "checked above: whole and within 2^53")]
            Ok(v as i64)
        } else {
            Err(E::custom("integer out of range"))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        // The value is not echoed: it may be a mistyped credential.
        int_in_str(v).ok_or_else(|| E::custom("expected an integer, got a non-numeric string"))
    }
}

/// An integer sent as a string, such as `" 4102444800 "`.
fn int_in_str(v: &str) -> Option<i64> {
    v.trim().parse().ok()
}

fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(IntVisitor)
}

fn uint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = int(d)?;
    u64::try_from(v).map_err(|_| de::Error::custom(format!("must not be negative, got {v}")))
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match int(d)? {
        v if v > 0 => Ok(v),
        v => Err(de::Error::custom(format!("must be positive, got {v}"))),
    }
}

fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Flex>::deserialize(d)?.map(|f| f.0))
}

fn opt_uint<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match opt_int(d)? {
        None => Ok(None),
        Some(v) => u64::try_from(v).map(Some).map_err(|_| de::Error::custom(format!("must not be negative, got {v}"))),
    }
}

/// An integer that may be a numeric string, for use inside `Option`.
struct Flex(i64);

impl<'de> Deserialize<'de> for Flex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int(d).map(Flex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../tests/fixtures/push-error-seed.json");

    #[test]
    fn seed_parses() {
        let head: Head = parse(SEED.as_bytes()).unwrap();
        assert_eq!(head.event_type, 321);
        assert_eq!(head.t, None);
        let p: PushError = parse(SEED.as_bytes()).unwrap();
        assert_eq!(p.domain, "xxxx.xxxxx.xxxx.xxxx");
        assert_eq!(p.path, "xxxx");
        assert_eq!(p.stream_id, "xxxxxx");
        assert_eq!(p.data_time, 1670588074971);
        assert_eq!(p.report_interval, Some(5000));
        assert_eq!(p.abnormal_event.len(), 2);
        assert_eq!(p.abnormal_event[0].kind, 6);
        assert_eq!(p.abnormal_event[0].count, 2);
        assert_eq!(p.abnormal_event[1].detail.len(), 2);
    }

    #[test]
    fn one_pass_takes_well_formed_push_errors_only() {
        let p = push_error_in_one_pass(SEED.as_bytes()).expect("the seed is a push error");
        assert_eq!((p.event_type, p.stream_id.as_ref(), p.abnormal_event.len()), (Some(321), "xxxxxx", 2));
        // Everything else goes the two-stage way, which explains errors.
        let table: &[&[u8]] = &[
            br#"{"event_type":1,"stream_id":"s","data_time":1}"#,
            br#"{"stream_id":"s","data_time":1}"#,
            br#"{"event_type":321,"stream_id":"s"}"#,
            br#"{"event_type":321,"stream_id":"s","data_time":1,"abnormal_event":[{"type":6,"count":-1}]}"#,
            br#"[{"event_type":321,"stream_id":"s","data_time":1}]"#,
            b"",
        ];
        for body in table {
            assert!(push_error_in_one_pass(body).is_none(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn integers_as_strings_and_unknown_fields() {
        let body = br#"{"event_type":"321","t":" 4102444800 ","stream_id":"s","data_time":"5",
            "abnormal_event":[{"type":"6","count":"3","event_key":"k","customer_visible":"true"}],
            "brand_new_field":{"x":[1,2]}}"#;
        let head: Head = parse(body).unwrap();
        assert_eq!((head.event_type, head.t), (321, Some(4102444800)));
        let p: PushError = parse(body).unwrap();
        assert_eq!(p.data_time, 5);
        assert_eq!((p.abnormal_event[0].kind, p.abnormal_event[0].count), (6, 3));
        assert!(p.domain.is_empty() && p.sequence.is_empty() && p.appid.is_none());
    }

    #[test]
    fn errors_name_the_path() {
        use ParseErrorKind::{Invalid, Missing, Syntax};
        let table: &[(&[u8], ParseErrorKind, Option<&str>)] = &[
            (b"{", Syntax, None),
            (b"[1]", Syntax, None),
            (br#"{"event_type":1} x"#, Syntax, None),
            (br#"{"t":1}"#, Missing, None),
            (br#"{"event_type":"abc"}"#, Invalid, Some("event_type")),
            (br#"{"event_type":1.5}"#, Invalid, Some("event_type")),
            (br#"{"event_type":321,"sign":12345}"#, Invalid, Some("sign")),
        ];
        for &(body, kind, path) in table {
            let err = parse::<Head>(body).unwrap_err();
            assert_eq!((err.kind, err.path.as_deref()), (kind, path), "{:?}: {err}", String::from_utf8_lossy(body));
        }
        let err = parse::<Head>(br#"{"event_type":1.5}"#).unwrap_err();
        assert_eq!(err.to_string(), "event_type: expected an integer, got a fraction");
        let err = parse::<PushError>(br#"{"stream_id":"s","data_time":1,"abnormal_event":[{"type":6,"count":-2}]}"#)
            .unwrap_err();
        assert_eq!(err.path.as_deref(), Some("abnormal_event[0].count"));
        assert_eq!(err.to_string(), "abnormal_event[0].count: must not be negative, got -2");
        let err = parse::<PushError>(br#"{"data_time":1}"#).unwrap_err();
        assert_eq!((err.kind, err.reason.as_str()), (Missing, "missing field `stream_id`"));
    }

    #[test]
    fn data_time_must_be_positive() {
        for bad in ["0", "-1", "\"-5\""] {
            let body = format!(r#"{{"stream_id":"s","data_time":{bad}}}"#);
            let err = parse::<PushError>(body.as_bytes()).unwrap_err();
            assert_eq!((err.kind, err.path.as_deref()), (ParseErrorKind::Invalid, Some("data_time")), "{bad}: {err}");
        }
    }

    #[test]
    fn long_values_are_quoted_short() {
        let body = format!(r#"{{"stream_id":"s","data_time":1,"abnormal_event":"{}"}}"#, "v".repeat(1 << 20));
        let err = parse::<PushError>(body.as_bytes()).unwrap_err();
        assert_eq!(err.path.as_deref(), Some("abnormal_event"));
        assert!(err.to_string().len() < 200, "{err}");
        assert!(err.to_string().contains(&format!("\"{}…\"", "v".repeat(quote::QUOTE_BYTES))), "{err}");
    }

    #[test]
    fn secret_values_never_echoed() {
        let err = parse::<Head>(br#"{"event_type":321,"t":"hunter2"}"#).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = parse::<Head>(br#"{"event_type":321,"sign":["deadbeef"]}"#).unwrap_err();
        assert!(!err.to_string().contains("deadbeef"), "{err}");
    }

    #[test]
    fn escaped_strings_are_owned() {
        let p: PushError = parse(br#"{"stream_id":"a\"b","data_time":1,"domain":"d"}"#).unwrap();
        assert_eq!(p.stream_id, "a\"b");
        assert!(matches!(p.domain, Cow::Borrowed(_)));
    }
}
