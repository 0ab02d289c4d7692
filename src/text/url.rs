//! A stream's names in a URL path: `streams/{domain}/{app}/{stream}`,
//! each name one percent-encoded segment, so a name with `/`, `%`, `?` or
//! `#` in it is still one segment; and the segments read back.

/// The stream page's path, relative to the status page (`/`); the JSON is
/// the same path under `api/v1/`.
pub fn stream_page(domain: &str, app: &str, stream: &str) -> String {
    let mut out = String::with_capacity(8 + 3 + domain.len() + app.len() + stream.len());
    out.push_str("streams");
    for name in [domain, app, stream] {
        out.push('/');
        push_segment(&mut out, name);
    }
    out
}

/// Appends `value` as one path segment: bytes other than unreserved ones
/// (RFC 3986: letters, digits, `-._~`) percent-encoded.
pub fn push_segment(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.extend(['%', char::from(HEX[usize::from(b >> 4)]), char::from(HEX[usize::from(b & 15)])]);
        }
    }
}

/// The value of a percent-encoded path segment, or `None` if an escape is
/// broken or the bytes are not UTF-8. `+` is a plus (paths, not forms).
pub fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok().filter(|_| hex.bytes().all(|c| c.is_ascii_hexdigit()))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_segment_each_and_read_back() {
        let tricky = "a/b%c?d#e f\"<直播>+";
        let path = stream_page("push.example.com", "live", tricky);
        assert_eq!(path, "streams/push.example.com/live/a%2Fb%25c%3Fd%23e%20f%22%3C%E7%9B%B4%E6%92%AD%3E%2B");
        let segments: Vec<_> = path.split('/').skip(1).map(|s| decode_segment(s).unwrap()).collect();
        assert_eq!(segments, ["push.example.com", "live", tricky]);
    }

    #[test]
    fn broken_escapes_and_bytes_that_are_not_text_are_refused() {
        for bad in ["%", "%4", "%zz", "%+1", "a%FF", "%C3%28"] {
            assert_eq!(decode_segment(bad), None, "{bad}");
        }
        assert_eq!(decode_segment("a+b%20c").as_deref(), Some("a+b c"));
    }
}
