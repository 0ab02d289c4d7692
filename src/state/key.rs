//! A stream's key: its label set `domain="..",app="..",stream=".."`, each
//! value capped at `--max-label-length` and escaped, built once per
//! callback and used as is by every store keyed by stream (the stream
//! registry, the lifecycles, the SLO accounting), with the hash that picks
//! its shard.
use super::sharded::{shard_hash, Hashed};
use super::OVERFLOW;
use crate::text::{cap, push_label, push_labels};
use std::cell::Cell;

/// A stream's identity as label values (domain, app, stream).
#[derive(Debug, Clone, Copy)]
pub struct StreamId<'a> {
    pub domain: &'a str,
    pub app: &'a str,
    pub stream: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamKey {
    text: String,
    /// Where `domain="..",app=".."` ends in `text`.
    app_len: usize,
    hash: u64,
}

impl StreamKey {
    /// The key of `id`, its values cut to `max_label_bytes`.
    pub fn new(id: StreamId, max_label_bytes: usize) -> Self {
        let (domain, app, stream) =
            (cap(id.domain, max_label_bytes), cap(id.app, max_label_bytes), cap(id.stream, max_label_bytes));
        let mut text = SPARE.try_with(Cell::take).unwrap_or_default();
        text.clear();
        text.reserve(32 + domain.len() + app.len() + stream.len());
        // What push_labels writes, one label at a time: a callback builds one.
        push_label(&mut text, "domain", domain);
        text.push(',');
        push_label(&mut text, "app", app);
        let app_len = text.len();
        text.push(',');
        push_label(&mut text, "stream", stream);
        Self::from_parts(text, app_len)
    }

    fn from_parts(text: String, app_len: usize) -> Self {
        let hash = shard_hash(&text);
        Self { text, app_len, hash }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `domain="..",app=".."`: the stream's pair as labels.
    pub fn app_labels(&self) -> &str {
        &self.text[..self.app_len]
    }

    /// What picks its shard in a sharded store.
    pub fn shard_hash(&self) -> u64 {
        self.hash
    }

    /// The key to find it by in a store sharded by stream: its
    /// hash not computed again.
    pub fn hashed(&self) -> Hashed<'_> {
        Hashed { text: &self.text, hash: self.hash }
    }

    /// Whether the stream's name is the reserved [`OVERFLOW`].
    pub fn is_overflow_bucket(&self) -> bool {
        self.text[self.app_len..].strip_prefix(",stream=\"").and_then(|s| s.strip_suffix('"')) == Some(OVERFLOW)
    }

    /// The key of its pair's `__overflow__` stream.
    pub fn overflow_bucket(&self) -> Self {
        let mut text = String::with_capacity(self.app_len + 24);
        text.push_str(self.app_labels());
        text.push(',');
        push_labels(&mut text, &[("stream", OVERFLOW)]);
        Self::from_parts(text, self.app_len)
    }
}

thread_local! {
    /// The text of the last [`StreamKey`] this thread dropped, for the next
    /// one it builds: a callback builds and drops one key, so a callback of
    /// a known stream allocates none.
    static SPARE: Cell<String> = const { Cell::new(String::new()) };
}

/// A key's text longer than this is not kept for reuse.
const SPARE_MAX_BYTES: usize = 1024;

impl Drop for StreamKey {
    fn drop(&mut self) {
        if self.text.capacity() <= SPARE_MAX_BYTES {
            let text = std::mem::take(&mut self.text);
            // Past the thread's end (a key in another thread-local) it is just freed.
            let _ = SPARE.try_with(|spare| spare.set(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_once_capped_and_escaped() {
        let tricky = StreamKey::new(StreamId { domain: "d", app: "x\",stream=\"", stream: "stream-long" }, 6);
        assert_eq!(tricky.as_str(), "domain=\"d\",app=\"x\\\",str\",stream=\"stream\"");
        assert_eq!(tricky.app_labels(), "domain=\"d\",app=\"x\\\",str\"");
        assert_eq!(tricky.shard_hash(), shard_hash(tricky.as_str()));
        assert!(!tricky.is_overflow_bucket());
        let bucket = tricky.overflow_bucket();
        assert_eq!(bucket, StreamKey::new(StreamId { domain: "d", app: "x\",str", stream: OVERFLOW }, 64));
        assert!(bucket.is_overflow_bucket());
    }

    proptest::proptest! {
        /// A key is the label set `push_labels` writes of its values, capped.
        #[test]
        fn a_key_is_its_label_set(
            names in proptest::array::uniform3("[a-z\"\\\\\n\u{e9},=]{0,12}|\\PC{0,20}"),
            max in 1usize..16,
        ) {
            let [domain, app, stream] = names.clone().map(|n| cap(&n, max).to_owned());
            let key = StreamKey::new(StreamId { domain: &names[0], app: &names[1], stream: &names[2] }, max);
            let (mut pair, mut all) = (String::new(), String::new());
            push_labels(&mut pair, &[("domain", &domain), ("app", &app)]);
            push_labels(&mut all, &[("domain", &domain), ("app", &app), ("stream", &stream)]);
            proptest::prop_assert_eq!((key.as_str(), key.app_labels()), (all.as_str(), pair.as_str()));
            proptest::prop_assert_eq!(key.shard_hash(), shard_hash(&all));
        }
    }

    #[test]
    fn a_key_built_on_a_dropped_keys_text_is_its_own() {
        let long = StreamKey::new(StreamId { domain: "a-long-domain.example.com", app: "live", stream: "s1" }, 64);
        let pointer = long.as_str().as_ptr();
        drop(long);
        let short = StreamKey::new(StreamId { domain: "d", app: "a", stream: "s" }, 64);
        assert_eq!(short.as_str().as_ptr(), pointer, "the dropped key's text is reused");
        assert_eq!(
            (short.as_str(), short.app_labels()),
            ("domain=\"d\",app=\"a\",stream=\"s\"", "domain=\"d\",app=\"a\"")
        );
        assert_eq!(short.shard_hash(), shard_hash(short.as_str()));
    }
}
