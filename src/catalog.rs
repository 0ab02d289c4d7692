//! What CSS's numeric codes mean: push error types, event types, and the
//! frame-gap text inside `detail[].desc`.

/// The error codes we keep as their own `error_type` label value; anything
/// else is folded into [`OTHER_CODE`] so a bad sender cannot mint series.
pub const MAX_LABELLED_CODE: u64 = 99;
/// Storage code for every type outside `1..=99`.
pub const OTHER_CODE: u8 = 0;

/// The compact code an error type is stored under (0 means "other").
pub fn error_code(kind: u64) -> u8 {
    if (1..=MAX_LABELLED_CODE).contains(&kind) {
        u8::try_from(kind).unwrap_or(OTHER_CODE)
    } else {
        OTHER_CODE
    }
}

/// The stable `error` label value of a stored code.
pub fn error_name(code: u8) -> &'static str {
    match code {
        1 => "video_timestamp_rollback",
        2 => "audio_timestamp_rollback",
        3 => "video_timestamp_jump",
        4 => "audio_timestamp_jump",
        5 => "chunk_size_too_large",
        6 => "video_frame_late",
        7 => "audio_frame_late",
        8 => "video_codec_changed",
        9 => "audio_codec_changed",
        10 => "video_codec_header_missing",
        11 => "audio_codec_header_missing",
        12 => "audio_timestamp_gap",
        13 => "uncommon_codec",
        14 => "video_header_unparsable",
        15 => "video_frame_rate_low",
        16 => "gop_too_long",
        _ => "unknown",
    }
}

/// The `error_type` label value of a stored code: its number, or "other".
pub fn error_type_label(code: u8) -> &'static str {
    static LABELS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| (0..=MAX_LABELLED_CODE).map(|c| c.to_string()).collect());
    match code {
        OTHER_CODE => "other",
        c => LABELS.get(usize::from(c)).map_or("other", String::as_str),
    }
}

/// The `errcode` label value of a push end: 0-99 as is, else "other".
pub fn errcode_label(errcode: i64) -> String {
    if u64::try_from(errcode).is_ok_and(|c| c <= MAX_LABELLED_CODE) {
        errcode.to_string()
    } else {
        "other".to_owned()
    }
}

/// Why a push ended, from its `errcode`: CSS's stream-interruption table
/// folded into causes an operator acts on. The `cause` label of
/// `css_push_stream_ends_total`, and what the SLO's outage rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndCause {
    /// 1-4: the pusher stopped the stream: the normal end.
    PusherStopped,
    /// 5, 9, 11, 18: an internal error at CSS.
    CssInternal,
    /// 6: the RTMP content could not be read.
    RtmpContent,
    /// 7: a frame too large.
    FrameTooLarge,
    /// 8: no data for a long time.
    NoData,
    /// 10: an interruption command at the proxy.
    ProxyInterrupted,
    /// 12-17: the pusher's network.
    PusherNetwork,
    /// 0 and any unlisted code below 19.
    Unknown,
    /// 19 and above: the push was refused at access (authentication, bans, limits).
    AccessRefused,
}

/// (cause, label, what it is), in [`EndCause::ALL`] order.
const END_CAUSES: [(EndCause, &str, &str); 9] = [
    (EndCause::PusherStopped, "pusher_stopped", "the pusher stopped the stream (errcode 1-4)"),
    (EndCause::CssInternal, "css_internal", "internal error at CSS (errcode 5, 9, 11, 18)"),
    (EndCause::RtmpContent, "rtmp_content", "RTMP content error (errcode 6)"),
    (EndCause::FrameTooLarge, "frame_too_large", "frame too large (errcode 7)"),
    (EndCause::NoData, "no_data", "no data for a long time (errcode 8)"),
    (EndCause::ProxyInterrupted, "proxy_interrupted", "interruption command at the proxy (errcode 10)"),
    (EndCause::PusherNetwork, "pusher_network", "pusher network error (errcode 12-17)"),
    (EndCause::Unknown, "unknown", "no reason given, or one CSS does not document (errcode 0, other codes below 19)"),
    (EndCause::AccessRefused, "access_refused", "refused at access (errcode 19 and above)"),
];

impl EndCause {
    pub const ALL: [EndCause; 9] = {
        let mut all = [EndCause::Unknown; 9];
        let mut i = 0;
        while i < all.len() {
            all[i] = END_CAUSES[i].0;
            i += 1;
        }
        all
    };

    /// The cause of a push end's `errcode`.
    pub fn of(errcode: i64) -> Self {
        match errcode {
            1..=4 => EndCause::PusherStopped,
            5 | 9 | 11 | 18 => EndCause::CssInternal,
            6 => EndCause::RtmpContent,
            7 => EndCause::FrameTooLarge,
            8 => EndCause::NoData,
            10 => EndCause::ProxyInterrupted,
            12..=17 => EndCause::PusherNetwork,
            19.. => EndCause::AccessRefused,
            _ => EndCause::Unknown,
        }
    }

    /// Anything but the pusher stopping: the stream was cut off.
    pub fn is_abnormal(self) -> bool {
        self != EndCause::PusherStopped
    }

    /// The `cause` label value.
    pub fn label(self) -> &'static str {
        END_CAUSES[self as usize].1
    }

    /// What it is, for people.
    pub fn description(self) -> &'static str {
        END_CAUSES[self as usize].2
    }

    /// The cause [`EndCause::label`] names.
    pub fn from_label(label: &str) -> Option<Self> {
        END_CAUSES.iter().find(|c| c.1 == label).map(|c| c.0)
    }
}

/// Where the CSS node that took a push is, from the push's `set_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Region {
    /// set_id 1-6: inside mainland China.
    Mainland,
    /// set_id 7-200: outside it.
    Overseas,
    /// No set_id, or one outside 1-200.
    #[default]
    Unknown,
}

impl Region {
    pub const ALL: [Region; 3] = [Region::Mainland, Region::Overseas, Region::Unknown];

    pub fn of_set_id(set_id: Option<i64>) -> Self {
        match set_id {
            Some(1..=6) => Region::Mainland,
            Some(7..=200) => Region::Overseas,
            _ => Region::Unknown,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Region::Mainland => "mainland",
            Region::Overseas => "overseas",
            Region::Unknown => "unknown",
        }
    }

    /// A byte for the state file and journal.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The region [`Region::code`] gave; anything else is unknown.
    pub fn from_code(code: u8) -> Self {
        Self::ALL.get(usize::from(code)).copied().unwrap_or_default()
    }
}

/// Which media a frame-gap error type is about (types 6 and 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Video = 0,
    Audio = 1,
}

impl Media {
    pub const ALL: [Media; 2] = [Media::Video, Media::Audio];

    pub fn of_error(kind: u64) -> Option<Media> {
        match kind {
            6 => Some(Media::Video),
            7 => Some(Media::Audio),
            _ => None,
        }
    }

    /// The error code of its late frames (the inverse of [`Media::of_error`]).
    pub fn error_code(self) -> u8 {
        match self {
            Media::Video => 6,
            Media::Audio => 7,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Media::Video => "video",
            Media::Audio => "audio",
        }
    }
}

/// Every `event_type` label value a callback can be counted under: the CSS
/// event kinds we name, `other` for the rest (so the label stays bounded
/// whatever is posted), and `unknown` for a body that could not be read.
/// The one list: metrics, the status page and the tests derive from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    PushError,
    PushStart,
    PushEnd,
    RecordingFile,
    Screenshot,
    Relay,
    AudioAudit,
    ImageAudit,
    StreamMonitoring,
    RecordingStatus,
    AbnormalRecording,
    QualityControl,
    EvaluationThreshold,
    SmartHighlight,
    Other,
    Unknown,
}

/// (kind, CSS code, label, what it is), in [`EventType::ALL`] order.
const EVENT_TYPES: [(EventType, Option<i64>, &str, &str); 16] = [
    (EventType::PushError, Some(321), "321", "push error"),
    (EventType::PushStart, Some(1), "1", "push start"),
    (EventType::PushEnd, Some(0), "0", "push end"),
    (EventType::RecordingFile, Some(100), "100", "recording file"),
    (EventType::Screenshot, Some(200), "200", "screenshot"),
    (EventType::Relay, Some(314), "314", "relay"),
    (EventType::AudioAudit, Some(315), "315", "audio audit"),
    (EventType::ImageAudit, Some(317), "317", "image audit"),
    (EventType::StreamMonitoring, Some(328), "328", "stream monitoring"),
    (EventType::RecordingStatus, Some(332), "332", "recording status"),
    (EventType::AbnormalRecording, Some(341), "341", "abnormal recording"),
    (EventType::QualityControl, Some(343), "343", "quality control"),
    (EventType::EvaluationThreshold, Some(344), "344", "evaluation threshold"),
    (EventType::SmartHighlight, Some(349), "349", "smart highlight"),
    (EventType::Other, None, "other", "other event type"),
    (EventType::Unknown, None, "unknown", "unreadable body"),
];

impl EventType {
    pub const ALL: [EventType; 16] = {
        let mut all = [EventType::Unknown; 16];
        let mut i = 0;
        while i < all.len() {
            all[i] = EVENT_TYPES[i].0;
            i += 1;
        }
        all
    };

    /// The kind of a CSS `event_type` number.
    pub fn of(code: i64) -> Self {
        EVENT_TYPES.iter().find(|e| e.1 == Some(code)).map_or(EventType::Other, |e| e.0)
    }

    /// Its place in [`EventType::ALL`], for tables indexed by kind.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The `event_type` label value.
    pub fn label(self) -> &'static str {
        EVENT_TYPES[self.index()].2
    }

    /// What the event is, for people.
    pub fn description(self) -> &'static str {
        EVENT_TYPES[self.index()].3
    }
}

/// Serialized as its label, as the status page's JSON shows it.
impl serde::Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

/// The frame gap in milliseconds from a desc such as
/// `"video frame arrive interval too long, interval=3046(msec)"`.
/// Accepts a decimal value and `(msec)`, `msec`, `(ms)`, `ms` or no unit;
/// anything else (a different unit, no number) is unreadable.
#[inline]
pub fn parse_interval_ms(desc: &str) -> Option<f64> {
    in_css_form(desc).or_else(|| read_interval_ms(desc))
}

/// The gap of a desc that ends as CSS writes it, `interval=` then whole
/// milliseconds then `(msec)`, read without a search (four a report);
/// `None` for any other. Inlined into the loop over a report's details.
#[inline]
fn in_css_form(desc: &str) -> Option<f64> {
    let (head, unit) = desc.as_bytes().split_last_chunk::<6>()?;
    if unit != b"(msec)" {
        return None;
    }
    // The digits read from the last, so one pass finds and values them.
    let (mut ms, mut place, mut digits) = (0u64, 1u64, 0);
    for &b in head.iter().rev().take_while(|b| b.is_ascii_digit()) {
        digits += 1;
        if digits > 15 {
            return None;
        }
        ms += u64::from(b - b'0') * place;
        place *= 10;
    }
    let before = &head[..head.len() - digits];
    (digits > 0 && before.last_chunk::<9>() == Some(b"interval=")).then_some(ms as f64)
}

/// [`parse_interval_ms`] for any desc; rare, CSS writes its own form.
#[cold]
fn read_interval_ms(desc: &str) -> Option<f64> {
    let rest = desc[after_last_interval(desc)?..].trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, unit) = rest.split_at(end);
    if !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let unit = unit.trim();
    let unit = unit.strip_prefix('(').map_or(unit, |u| u.strip_suffix(')').unwrap_or(u));
    if !matches!(unit.trim(), "" | "msec" | "ms") {
        return None;
    }
    // Whole milliseconds, as CSS writes them, are exact as integers.
    if number.len() <= 15 && number.bytes().all(|c| c.is_ascii_digit()) {
        return number.parse::<u64>().ok().map(|ms| ms as f64);
    }
    number.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Where the last `interval=` in `desc` ends: `rfind`, but only comparing
/// where an `=` is.
fn after_last_interval(desc: &str) -> Option<usize> {
    let desc = desc.as_bytes();
    let mut end = desc.len();
    loop {
        let eq = memchr::memrchr(b'=', &desc[..end])?;
        if desc[..eq].ends_with(b"interval") {
            return Some(eq + 1);
        }
        end = eq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_bounded_labels() {
        let table: &[(u64, u8, &str, &str)] = &[
            (1, 1, "1", "video_timestamp_rollback"),
            (6, 6, "6", "video_frame_late"),
            (16, 16, "16", "gop_too_long"),
            (17, 17, "17", "unknown"),
            (99, 99, "99", "unknown"),
            (100, 0, "other", "unknown"),
            (0, 0, "other", "unknown"),
            (u64::MAX, 0, "other", "unknown"),
        ];
        for &(kind, code, label, name) in table {
            assert_eq!(error_code(kind), code, "type {kind}");
            assert_eq!(error_type_label(code), label, "type {kind}");
            assert_eq!(error_name(code), name, "type {kind}");
        }
    }

    #[test]
    fn media_and_their_error_codes_agree() {
        for media in Media::ALL {
            assert_eq!(Media::of_error(u64::from(media.error_code())), Some(media));
        }
    }

    #[test]
    fn every_documented_type_has_a_distinct_name() {
        let names: std::collections::HashSet<_> = (1..=16).map(error_name).collect();
        assert_eq!(names.len(), 16);
        assert!(!names.contains("unknown"));
    }

    #[test]
    fn interval_extraction() {
        let table: &[(&str, Option<f64>)] = &[
            ("video frame arrive interval too long, interval=3046(msec)", Some(3046.0)),
            ("audio frame arrive interval too long, interval=2917(msec)", Some(2917.0)),
            ("interval=12.5ms", Some(12.5)),
            ("interval= 800 (ms)", Some(800.0)),
            ("interval=1500", Some(1500.0)),
            ("interval=3(sec)", None),
            ("interval=(msec)", None),
            ("interval=abc", None),
            ("frame late", None),
            ("", None),
            ("interval=.5(msec)", None),
        ];
        for &(desc, want) in table {
            assert_eq!(parse_interval_ms(desc), want, "{desc:?}");
        }
    }

    proptest::proptest! {
        /// CSS's form, read without a search, reads as the long way does.
        #[test]
        fn the_css_form_reads_as_any_desc(
            head in "(frame too long, |interval|=|interval=| |[0-9]{1,3}|\\.|\\(msec\\)|\u{76f4}){0,4}",
            number in "[0-9]{0,17}",
            tail in "|\\(msec\\)|\\(msec\\)\\(msec\\)|ms|\\(ms\\)",
        ) {
            let desc = format!("{head}{number}{tail}");
            if let Some(ms) = in_css_form(&desc) {
                proptest::prop_assert_eq!(Some(ms), read_interval_ms(&desc), "{:?}", desc);
            }
        }

        /// Whatever the desc, the reading with the fast path for CSS's form
        /// is the long way's.
        #[test]
        fn any_desc_reads_as_the_long_way_does(
            head in "(frame too long, |interval|=|interval=| |[0-9]{1,3}|\\.|\\(msec\\)|msec|\u{76f4}|\\PC){0,5}",
            number in "[0-9]{0,17}",
            tail in "|\\(msec\\)|\\(msec|msec\\)|ms|\\(ms\\)|\\PC{0,3}",
        ) {
            let desc = format!("{head}{number}{tail}");
            proptest::prop_assert_eq!(parse_interval_ms(&desc), read_interval_ms(&desc), "{:?}", desc);
        }
    }

    #[test]
    fn css_form_is_read_without_a_search() {
        assert_eq!(in_css_form("video frame arrive interval too long, interval=3046(msec)"), Some(3046.0));
        for other in ["interval=12.5(msec)", "interval= 800(msec)", "interval=(msec)", "x=5(msec)", "interval=5ms"] {
            assert_eq!(in_css_form(other), None, "{other:?}");
        }
    }

    #[test]
    fn event_type_labels_are_bounded() {
        assert_eq!(EventType::of(321).label(), "321");
        assert_eq!(EventType::of(0).label(), "0");
        assert_eq!(EventType::of(999_999), EventType::Other);
        assert_eq!(EventType::of(-1).label(), "other");
        for (i, kind) in EventType::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}: ALL is in declaration order");
        }
        let labels: std::collections::HashSet<_> = EventType::ALL.iter().map(|e| e.label()).collect();
        assert_eq!(labels.len(), EventType::ALL.len());
        assert_eq!(errcode_label(0), "0");
        assert_eq!(errcode_label(99), "99");
        assert_eq!(errcode_label(100), "other");
        assert_eq!(errcode_label(-1), "other");
    }

    #[test]
    fn end_causes_follow_the_interruption_table() {
        let table: &[(i64, EndCause)] = &[
            (0, EndCause::Unknown),
            (1, EndCause::PusherStopped),
            (4, EndCause::PusherStopped),
            (5, EndCause::CssInternal),
            (6, EndCause::RtmpContent),
            (7, EndCause::FrameTooLarge),
            (8, EndCause::NoData),
            (9, EndCause::CssInternal),
            (10, EndCause::ProxyInterrupted),
            (11, EndCause::CssInternal),
            (12, EndCause::PusherNetwork),
            (17, EndCause::PusherNetwork),
            (18, EndCause::CssInternal),
            (19, EndCause::AccessRefused),
            (i64::MAX, EndCause::AccessRefused),
            (-1, EndCause::Unknown),
            (i64::MIN, EndCause::Unknown),
        ];
        for &(errcode, cause) in table {
            assert_eq!(EndCause::of(errcode), cause, "errcode {errcode}");
        }
        for (i, cause) in EndCause::ALL.into_iter().enumerate() {
            assert_eq!(cause as usize, i, "ALL is in declaration order");
            assert_eq!(EndCause::from_label(cause.label()), Some(cause));
            assert_eq!(cause.is_abnormal(), cause != EndCause::PusherStopped);
        }
        assert_eq!(Region::of_set_id(Some(1)), Region::Mainland);
        assert_eq!(Region::of_set_id(Some(6)), Region::Mainland);
        assert_eq!(Region::of_set_id(Some(7)), Region::Overseas);
        assert_eq!(Region::of_set_id(Some(200)), Region::Overseas);
        for other in [None, Some(0), Some(201), Some(-3)] {
            assert_eq!(Region::of_set_id(other), Region::Unknown);
        }
        for r in Region::ALL {
            assert_eq!(Region::from_code(r.code()), r);
        }
    }
}
