//! Keys read back from a state file: a key is believed only if it is
//! exactly the label set an exporter builds.
use crate::state::streams::StreamId;
use crate::text::push_escaped;
use std::borrow::Cow;

/// The label values a key was built from, borrowed from it unless escaped.
pub(crate) struct KeyParts<'a>([Cow<'a, str>; 3]);

impl KeyParts<'_> {
    pub(crate) fn id(&self) -> StreamId<'_> {
        let [domain, app, stream] = &self.0;
        StreamId { domain, app, stream }
    }
}

/// The (domain, app, stream) of `key` if it is exactly the label set an
/// exporter builds from them (escaped as it escapes), else `None`: a key is
/// never shown as it was read, only built again from these. Read in
/// place: each value is checked to be escaped exactly as it would be.
pub(crate) fn key_parts(key: &str) -> Option<KeyParts<'_>> {
    let mut rest = key;
    let mut value = |name: &str, first: bool| {
        let after = rest.strip_prefix(if first { "" } else { "," })?.strip_prefix(name)?.strip_prefix("=\"")?;
        let (text, tail) = label_value(after)?;
        rest = tail;
        Some(text)
    };
    let parts = [value("domain", true)?, value("app", false)?, value("stream", false)?];
    rest.is_empty().then_some(KeyParts(parts))
}

/// A label value up to its closing quote, unescaped (as
/// [`crate::text::parse_labels`] reads it), and what follows the quote;
/// `None` unless [`push_escaped`] gives the same text back from it.
fn label_value(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let end = text.find(['"', '\\'])?;
    if text.as_bytes()[end] == b'"' {
        let value = &text[..end];
        // The one character escaped that needs no backslash to be read.
        return (!value.contains('\n')).then_some((Cow::Borrowed(value), &text[end + 1..]));
    }
    let mut value = String::from(&text[..end]);
    let mut chars = text[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                c => value.push(c),
            },
            '"' => {
                let mut again = String::with_capacity(end + i);
                push_escaped(&mut again, &value);
                return (again == text[..end + i]).then_some((Cow::Owned(value), &text[end + i + 1..]));
            }
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::push_labels;

    proptest::proptest! {
        /// A key is read back into the values it was built from, and any
        /// other text, built from them or not, only if it is such a key.
        #[test]
        fn keys_read_back_as_built(values in proptest::array::uniform3("[a-z\"\\\\\n=,]{0,5}"), cut in 0usize..40) {
            let [d, a, s] = &values;
            let mut key = String::new();
            push_labels(&mut key, &[("domain", d), ("app", a), ("stream", s)]);
            let parts = key_parts(&key).map(|p| p.id().domain.to_owned() + "|" + p.id().app + "|" + p.id().stream);
            proptest::prop_assert_eq!(parts, Some(format!("{d}|{a}|{s}")));
            let spoiled: String = key.chars().enumerate().filter(|&(i, _)| i != cut).map(|(_, c)| c).collect();
            if let Some(p) = key_parts(&spoiled) {
                let mut built = String::new();
                push_labels(&mut built, &[("domain", p.id().domain), ("app", p.id().app), ("stream", p.id().stream)]);
                proptest::prop_assert_eq!(built, spoiled);
            }
        }
    }
}
