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

    pub fn label(self) -> &'static str {
        match self {
            Media::Video => "video",
            Media::Audio => "audio",
        }
    }
}

/// Event types we name in the `event_type` label; others become "other" so
/// the label stays bounded whatever is posted.
pub fn event_type_label(event_type: i64) -> &'static str {
    match event_type {
        0 => "0",
        1 => "1",
        100 => "100",
        200 => "200",
        314 => "314",
        315 => "315",
        317 => "317",
        321 => "321",
        328 => "328",
        332 => "332",
        341 => "341",
        343 => "343",
        344 => "344",
        349 => "349",
        _ => "other",
    }
}

/// The frame gap in milliseconds from a desc such as
/// `"video frame arrive interval too long, interval=3046(msec)"`.
/// Accepts a decimal value and `(msec)`, `msec`, `(ms)`, `ms` or no unit;
/// anything else (a different unit, no number) is unreadable.
pub fn parse_interval_ms(desc: &str) -> Option<f64> {
    let start = desc.rfind("interval=")? + "interval=".len();
    let rest = desc[start..].trim_start();
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
    number.parse::<f64>().ok().filter(|v| v.is_finite())
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

    #[test]
    fn event_type_labels_are_bounded() {
        assert_eq!(event_type_label(321), "321");
        assert_eq!(event_type_label(0), "0");
        assert_eq!(event_type_label(999_999), "other");
        assert_eq!(event_type_label(-1), "other");
        assert_eq!(errcode_label(0), "0");
        assert_eq!(errcode_label(99), "99");
        assert_eq!(errcode_label(100), "other");
        assert_eq!(errcode_label(-1), "other");
    }
}
