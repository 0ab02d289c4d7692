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
//! strings it keeps are slices of that text, checked no more. The report
//! is filled in place, its events and their details too: it is large
//! (they are held inline), and each move of it is a copy; it is moved
//! once, to be returned.
//!
//! Strings' ends are found 16 bytes at a time, by vector compares the
//! compiler makes of plain code (the crate forbids `unsafe`, which
//! `std::arch` needs). Field names, those read and those CSS sends that are
//! skipped, are compared in place as two masked words, the one after the
//! last read first (CSS writes them in one order), so their keys' ends are
//! not searched for. Whitespace costs a compact body one compare per
//! token; runs of spaces and skipped digits are read eight bytes at a
//! time. The scanner is never lent to a call (what is read out of line
//! reads a copy, [`Scanner::apart`]), so its place stays in a register
//! instead of being stored and reloaded at each step. BENCHMARKS.md has
//! the figures.
use super::{int_in_str, AbnormalEvent, Detail, PushError, EVENT_PUSH_ERROR};
use smallvec::SmallVec;
use std::borrow::Cow;

/// The body as a push error, if it is one written as CSS writes them.
#[inline]
pub(super) fn push_error(body: &[u8]) -> Option<PushError<'_>> {
    // Text not UTF-8 is left to serde, which refuses it where it reads it.
    let text = simdutf8::basic::from_utf8(body).ok()?;
    let mut p = PushError::empty();
    Scanner { text, b: body, i: 0 }.whole(&mut p)?;
    // Not `then_some(p)`: that moves the report once more, as an argument.
    if p.event_type != Some(EVENT_PUSH_ERROR) {
        return None;
    }
    Some(p)
}

const ONES: u64 = u64::MAX / 255;

/// Where the first byte that ends a string's plain text is in `text`: a
/// quote, a backslash or a control character. Sixteen bytes at a time,
/// written so that the compiler makes vector compares of them (SSE2 on
/// x86-64: one load, four compares, a mask test), the last few one by
/// one. Not inlined: inlined, the compiler did not vectorise it.
#[inline(never)]
fn special(text: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(chunk) = text.get(at..at + 16) {
        let chunk: &[u8; 16] = chunk.try_into().expect("16 bytes");
        let found: [u8; 16] = std::array::from_fn(|k| if is_special(chunk[k]) { 0xff } else { 0 });
        // Folded as one vector test; the place only at the end.
        if found.iter().fold(0, |any, &f| any | f) != 0 {
            return Some(at + u128::from_le_bytes(found).trailing_zeros() as usize / 8);
        }
        at += 16;
    }
    special_in_tail(text, at)
}

/// A quote, a backslash or a control character: what ends a string's
/// plain text.
#[inline(always)]
fn is_special(c: u8) -> bool {
    (c == b'"') | (c == b'\\') | (c < 0x20)
}

/// [`special`] in the last bytes of `text`, fewer than sixteen after `at`.
#[cold]
#[inline(never)]
fn special_in_tail(text: &[u8], at: usize) -> Option<usize> {
    Some(at + text.get(at..)?.iter().position(|&c| is_special(c))?)
}

/// How many ASCII digits `text` starts with: eight at a time (a
/// timestamp in milliseconds has 13).
fn digits(text: &[u8]) -> usize {
    let mut at = 0;
    while let Some(chunk) = text.get(at..at + 8) {
        let other = not_digits_8(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        if other != 0 {
            return at + other.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    let tail = text.get(at..).unwrap_or_default();
    at + tail.iter().position(|c| !c.is_ascii_digit()).unwrap_or(tail.len())
}

/// Marks (nonzero) each byte of `v` that is not an ASCII digit; exact up to
/// the first marked byte, which is all that is read.
fn not_digits_8(v: u64) -> u64 {
    const HIGH_NIBBLES: u64 = ONES * 0xf0;
    // A digit is 0x30-0x39: high nibble 3, and still 3 once 6 is added.
    ((v & HIGH_NIBBLES) | ((v.wrapping_add(ONES * 6) & HIGH_NIBBLES) >> 4)) ^ (ONES * 0x33)
}

/// A field's name with its closing quote, as two words to compare the
/// 16 bytes after a key's opening quote with, masked to its length (names
/// of 15 bytes at most).
struct Name {
    name: &'static [u8],
    word: [u64; 2],
    mask: [u64; 2],
    /// Whether serde refuses it given twice (a field read here).
    once: bool,
}

impl Name {
    /// A field read here.
    const fn once(name: &'static [u8]) -> Self {
        Self::new(name, true)
    }

    /// A field skipped, named only so that its key's end is not searched.
    const fn other(name: &'static [u8]) -> Self {
        Self::new(name, false)
    }

    const fn new(name: &'static [u8], once: bool) -> Self {
        assert!(name.len() < 16, "a name and its quote fit in two words");
        let (mut word, mut mask) = ([0; 2], [0; 2]);
        let mut k = 0;
        while k <= name.len() {
            let byte = if k < name.len() { name[k] } else { b'"' };
            word[k / 8] |= (byte as u64) << (k % 8 * 8);
            mask[k / 8] |= 0xff << (k % 8 * 8);
            k += 1;
        }
        Self { name, word, mask, once }
    }

    /// Notes this name, at `place`, in `seen`; `None` if it may be
    /// given once and was before.
    #[inline(always)]
    fn note(&self, place: usize, seen: &mut u32) -> Option<()> {
        let bit = 1 << place;
        if self.once && *seen & bit != 0 {
            return None;
        }
        *seen |= bit;
        Some(())
    }

    /// Whether `head`, the 16 bytes after a key's opening quote, starts
    /// with this name and its closing quote.
    #[inline(always)]
    fn starts(&self, head: [u64; 2]) -> bool {
        head[0] & self.mask[0] == self.word[0] && head[1] & self.mask[1] == self.word[1]
    }
}

/// The place of `name` in `names`, for `match` arms; the build fails if it
/// is not there.
const fn place(names: &[Name], name: &[u8]) -> usize {
    let mut at = 0;
    while at < names.len() {
        let known = names[at].name;
        if known.len() == name.len() {
            let mut k = 0;
            while k < name.len() && known[k] == name[k] {
                k += 1;
            }
            if k == name.len() {
                return at;
            }
        }
        at += 1;
    }
    panic!("not a name of this object")
}

/// A little-endian word of 8 bytes.
fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

/// The 16 bytes after a key's opening quote at the start of `rest` where
/// fewer are left, padded with zeros (which no name has); `None` if no key
/// starts there.
#[cold]
#[inline(never)]
fn head_near_end(rest: &[u8]) -> Option<[u64; 2]> {
    let after = rest.strip_prefix(b"\"")?;
    let mut bytes = [0; 16];
    let n = after.len().min(16);
    bytes[..n].copy_from_slice(&after[..n]);
    Some([word(&bytes[..8]), word(&bytes[8..])])
}

/// Nesting of unknown values read before declining (serde_json allows 128).
const MAX_DEPTH: usize = 32;

/// Copied, not lent, to what it calls out of line ([`Self::apart`]).
#[derive(Clone, Copy)]
struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    /// The body, a push error and nothing after it, into `p`.
    fn whole(mut self, p: &mut PushError<'a>) -> Option<()> {
        self.i = Self::push_error(self.text, self.b, p)?;
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    /// Where the push error at the start of `b` ends. The scanner is a
    /// local here, never lent: the compiler then keeps it in registers.
    fn push_error(text: &'a str, b: &'a [u8], p: &mut PushError<'a>) -> Option<usize> {
        let mut s = Scanner { text, b, i: 0 };
        // In the order CSS writes them. Those read may be given once;
        // `interface`, `stream_param` and `timeout` are others CSS sends,
        // named here so that their keys' ends are not searched.
        const NAMES: &[Name] = &[
            Name::once(b"abnormal_event"),
            Name::once(b"appid"),
            Name::once(b"data_time"),
            Name::once(b"domain"),
            Name::once(b"event_type"),
            Name::other(b"interface"),
            Name::once(b"path"),
            Name::once(b"report_interval"),
            Name::once(b"sequence"),
            Name::once(b"stream_id"),
            Name::other(b"stream_param"),
            Name::other(b"timeout"),
            Name::once(b"t"),
            Name::once(b"sign"),
        ];
        const STREAM_ID: usize = place(NAMES, b"stream_id");
        const DATA_TIME: usize = place(NAMES, b"data_time");
        const EVENT_TYPE: usize = place(NAMES, b"event_type");
        const T: usize = place(NAMES, b"t");
        const SIGN: usize = place(NAMES, b"sign");
        const APPID: usize = place(NAMES, b"appid");
        const DOMAIN: usize = place(NAMES, b"domain");
        const PATH: usize = place(NAMES, b"path");
        const SEQUENCE: usize = place(NAMES, b"sequence");
        const REPORT_INTERVAL: usize = place(NAMES, b"report_interval");
        const ABNORMAL_EVENT: usize = place(NAMES, b"abnormal_event");
        let seen = s.object(
            NAMES,
            #[inline(always)]
            |s, field| {
                match field {
                    STREAM_ID => p.stream_id = Cow::Borrowed(s.str()?),
                    DATA_TIME => p.data_time = s.int().filter(|&v| v > 0)?,
                    EVENT_TYPE => p.event_type = s.opt_int()?,
                    T => p.t = s.opt_int()?,
                    SIGN => p.sign = s.opt_str()?.map(Cow::Borrowed),
                    APPID => p.appid = s.opt_int()?,
                    DOMAIN => p.domain = Cow::Borrowed(s.str()?),
                    PATH => p.path = Cow::Borrowed(s.str()?),
                    SEQUENCE => p.sequence = Cow::Borrowed(s.str()?),
                    REPORT_INTERVAL => p.report_interval = s.opt_int()?,
                    ABNORMAL_EVENT => s.array(&mut p.abnormal_event, Self::event)?,
                    _ => s.skip(0)?,
                }
                Some(())
            },
        )?;
        let required = 1 << STREAM_ID | 1 << DATA_TIME;
        (seen & required == required).then_some(s.i)
    }

    fn event(&mut self, event: &mut AbnormalEvent<'a>) -> Option<()> {
        // The first three may be given once.
        const NAMES: &[Name] = &[
            Name::once(b"count"),
            Name::once(b"detail"),
            Name::once(b"type"),
            Name::other(b"type_desc_cn"),
            Name::other(b"type_desc_en"),
        ];
        const TYPE: usize = place(NAMES, b"type");
        const COUNT: usize = place(NAMES, b"count");
        const DETAIL: usize = place(NAMES, b"detail");
        let seen = self.object(
            NAMES,
            #[inline(always)]
            |s, field| {
                match field {
                    TYPE => event.kind = s.uint()?,
                    COUNT => event.count = s.uint()?,
                    DETAIL => s.array(&mut event.detail, Self::detail)?,
                    _ => s.skip(1)?,
                }
                Some(())
            },
        )?;
        let required = 1 << TYPE | 1 << COUNT;
        (seen & required == required).then_some(())
    }

    fn detail(&mut self, detail: &mut Detail<'a>) -> Option<()> {
        // `desc` may be given once.
        const NAMES: &[Name] = &[Name::once(b"desc"), Name::other(b"occur_time")];
        const DESC: usize = place(NAMES, b"desc");
        self.object(
            NAMES,
            #[inline(always)]
            |s, field| {
                match field {
                    DESC => detail.desc = Cow::Borrowed(s.str()?),
                    _ => s.skip(2)?,
                }
                Some(())
            },
        )
        .map(drop)
    }

    /// An object, each field's value read by `field` given the place of
    /// its name in `names` (`names.len()` for any other). Those names are
    /// told without finding where their keys end; those marked
    /// [`Name::once`] may be given once (serde refuses a field given twice,
    /// and skips others however often): the bits of those given, by their
    /// place (32 at most).
    #[inline(always)]
    fn object(&mut self, names: &[Name], mut field: impl FnMut(&mut Self, usize) -> Option<()>) -> Option<u32> {
        let (mut seen, mut next) = (0, 0);
        self.eat_after_ws(b'{')?;
        if self.eat_after_ws(b'}').is_some() {
            return Some(seen);
        }
        loop {
            let place = self.key(names, &mut next, &mut seen)?;
            self.eat_after_ws(b':')?;
            self.ws();
            field(self, place)?;
            match self.byte_after_ws() {
                b',' => self.i += 1,
                b'}' => return self.eat(b'}').map(|()| seen),
                _ => return None,
            }
            self.ws();
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
    #[inline(always)]
    fn items(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat_after_ws(b']').is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            match self.byte_after_ws() {
                b',' => self.i += 1,
                b']' => return self.eat(b']'),
                _ => return None,
            }
            self.ws();
        }
    }

    /// A string without escapes, as text.
    #[inline(always)]
    fn str(&mut self) -> Option<&'a str> {
        let (start, end) = self.span()?;
        // Quotes are ASCII: both ends are on characters' bounds.
        self.text.get(start..end)
    }

    #[inline(always)]
    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.str().map(Some)
    }

    /// A key: the place of one of `names`, compared in place with its
    /// closing quote (the key's end is not searched for then), noted in
    /// `seen` if marked [`Name::once`] and refused if it was before; or
    /// `names.len()` for any other key without escapes or control
    /// characters.
    #[inline(always)]
    fn key(&mut self, names: &[Name], next: &mut usize, seen: &mut u32) -> Option<usize> {
        let head = match self.b.get(self.i..self.i + 17) {
            Some(&[b'"', ref after @ ..]) => [word(&after[..8]), word(&after[8..])],
            _ => head_near_end(self.rest())?,
        };
        let place = match names.get(*next) {
            Some(name) if name.starts(head) => *next,
            _ => match names.iter().position(|name| name.starts(head)) {
                Some(place) => place,
                None => return self.raw_str().map(|_| names.len()),
            },
        };
        let name = &names[place];
        name.note(place, seen)?;
        self.i += name.name.len() + 2;
        *next = place + 1;
        Some(place)
    }

    /// The bytes of a string without escapes or control characters.
    #[inline(always)]
    fn raw_str(&mut self) -> Option<&'a [u8]> {
        let (start, end) = self.span()?;
        self.b.get(start..end)
    }

    /// Where the text of a string without escapes or control characters
    /// starts and ends. Inlined: a body has dozens of strings, most short,
    /// where a call costs as much as finding the end.
    #[inline(always)]
    fn span(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let start = self.i;
        let end = start + self.special(start)?;
        self.i = end;
        self.eat(b'"')?;
        Some((start, end))
    }

    /// An integer as serde reads one here: a number without fraction or
    /// exponent, or a numeric string.
    #[inline(always)]
    fn int(&mut self) -> Option<i64> {
        if self.byte() == b'"' {
            return self.apart(Self::int_in_str);
        }
        let negative = self.eat(b'-').is_some();
        let rest = self.rest();
        let (mut v, mut n) = (0i64, 0);
        for &c in rest {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // serde reads more digits than fit as another type.
            if n == 18 {
                return None;
            }
            (v, n) = (v * 10 + i64::from(d), n + 1);
        }
        // serde reads a fraction, an exponent or a leading zero otherwise.
        if n == 0 || (n > 1 && rest[0] == b'0') || matches!(rest.get(n), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.i += n;
        Some(if negative { -v } else { v })
    }

    /// A numeric string's integer: apart, so that [`Self::int`] needs
    /// few registers.
    #[inline(never)]
    fn int_in_str(&mut self) -> Option<i64> {
        int_in_str(self.str()?)
    }

    #[inline(always)]
    fn opt_int(&mut self) -> Option<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        self.int().map(Some)
    }

    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        u64::try_from(self.int()?).ok()
    }

    /// Skips any JSON value, `depth` levels down: strings and numbers here,
    /// the rarer kinds in [`Self::skip_other`].
    #[inline(always)]
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.byte() {
            b'"' => self.skip_str(),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => self.apart(|s| s.skip_other(depth)),
        }
    }

    #[inline(never)]
    fn skip_other(&mut self, depth: usize) -> Option<()> {
        match self.byte() {
            b'{' => self.object(&[], |s, _| s.skip(depth + 1)).map(drop),
            b'[' => self.items(|s| s.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => None,
        }
    }

    /// Skips a string, escapes checked as serde checks them: inlined up
    /// to the first quote, backslash or control character, the rest apart.
    #[inline(always)]
    fn skip_str(&mut self) -> Option<()> {
        self.eat(b'"')?;
        self.i += self.special(self.i)?;
        if self.eat(b'"').is_some() {
            return Some(());
        }
        self.apart(Self::skip_escapes)
    }

    /// [`Self::skip_str`] from a backslash (or a control character).
    #[inline(never)]
    fn skip_escapes(&mut self) -> Option<()> {
        loop {
            self.eat(b'\\')?; // else a control character
            match self.byte() {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                b'u' => {
                    let hex = self.b.get(self.i + 1..self.i + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.i += 5;
                }
                _ => return None,
            }
            self.i += self.special(self.i)?;
            if self.eat(b'"').is_some() {
                return Some(());
            }
        }
    }

    /// Skips a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`;
    /// the fraction and exponent apart (integers need few registers).
    #[inline(always)]
    fn skip_number(&mut self) -> Option<()> {
        self.eat(b'-');
        let start = self.i;
        let whole = self.digits();
        if whole == 0 || (whole > 1 && self.b[start] == b'0') {
            return None;
        }
        if matches!(self.byte(), b'.' | b'e' | b'E') {
            return self.apart(Self::skip_fraction_and_exponent);
        }
        Some(())
    }

    #[inline(never)]
    fn skip_fraction_and_exponent(&mut self) -> Option<()> {
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if matches!(self.byte(), b'e' | b'E') {
            self.i += 1;
            if matches!(self.byte(), b'+' | b'-') {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Steps over digits; how many.
    fn digits(&mut self) -> usize {
        let n = digits(self.rest());
        self.i += n;
        n
    }

    /// Where the first quote, backslash or control character from `start`
    /// is, counted from `start`.
    #[inline(always)]
    fn special(&self, start: usize) -> Option<usize> {
        special(self.b.get(start..)?)
    }

    /// Runs `read`, a reading kept out of line, on a copy of the scanner,
    /// then goes on where it stopped. The scanner itself is never lent to
    /// a call, so the compiler keeps it in registers rather than storing
    /// and reloading it around each step.
    #[inline(always)]
    fn apart<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let mut copy = *self;
        let v = read(&mut copy)?;
        self.i = copy.i;
        Some(v)
    }

    /// The bytes from here on.
    #[inline(always)]
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.i..).unwrap_or_default()
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let found = self.b.get(self.i..)?.starts_with(word);
        found.then(|| self.i += word.len())
    }

    fn null(&mut self) -> bool {
        self.literal(b"null").is_some()
    }

    /// Steps over whitespace. Most calls meet none, which one comparison
    /// tells (all JSON whitespace is below `!`).
    #[inline(always)]
    fn ws(&mut self) {
        if self.byte() <= b' ' {
            self.ws_run();
        }
    }

    /// [`Self::ws`] past its first test; runs of spaces (a pretty body's
    /// indentation) eight at a time.
    #[inline(always)]
    fn ws_run(&mut self) {
        while matches!(self.byte(), b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
            while let Some(chunk) = self.b.get(self.i..).and_then(<[u8]>::first_chunk::<8>) {
                let other = u64::from_le_bytes(*chunk) ^ (ONES * u64::from(b' '));
                self.i += other.trailing_zeros() as usize / 8;
                if other != 0 {
                    break;
                }
            }
        }
    }

    /// The byte here; 0 past the end, which no JSON has outside a string
    /// (so it is declined like any other misplaced byte).
    #[inline(always)]
    fn byte(&self) -> u8 {
        self.b.get(self.i).copied().unwrap_or(0)
    }

    /// The byte after any whitespace here (a compact body has none: one
    /// comparison tells).
    #[inline(always)]
    fn byte_after_ws(&mut self) -> u8 {
        match self.byte() {
            c if c > b' ' => c,
            _ => {
                self.ws_run();
                self.byte()
            }
        }
    }

    /// [`Self::eat`] after any whitespace.
    #[inline(always)]
    fn eat_after_ws(&mut self, c: u8) -> Option<()> {
        (self.byte_after_ws() == c).then(|| self.i += 1)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.byte() == c).then(|| self.i += 1)
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
    fn reads_the_samples_as_serde_does() {
        let signed = include_str!("../../../tests/fixtures/push-error-signed.json");
        let compact = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap().to_string();
        for body in [SEED.to_owned(), signed.to_owned(), compact(SEED), compact(signed)] {
            let p = push_error(body.as_bytes()).expect("read here, not left to serde");
            assert_eq!(Some(p), serde_push_error(body.as_bytes()), "{body}");
        }
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

    #[test]
    fn reads_known_fields_in_the_last_bytes() {
        // Too near the end for a key to be compared in place.
        let p = push_error(br#"{"stream_id":"s","data_time":1,"t":7,"event_type":321}"#).expect("read here");
        assert_eq!((p.event_type, p.t), (Some(321), Some(7)));
        assert_eq!(push_error(br#"{"event_type":321,"stream_id":"s","data_time":1,"t":7,"t":7}"#), None);
    }

    #[test]
    fn reads_whitespace_around_every_token() {
        let body = " {\t\"event_type\" :\n321 , \"stream_id\"\r: \"s\" ,\"data_time\" : 5 , \"x\" : { } ,\n\
            \"abnormal_event\" : [ { \"type\" : 6 , \"count\" : 1 , \"detail\" : [ { \"desc\" : \"d\" } , { } ] } ,\n\
            { \"type\" : 7 , \"count\" : 0 , \"detail\" : [ ] } ] }\n";
        let p = push_error(body.as_bytes()).expect("read here");
        assert_eq!(Some(&p), serde_push_error(body.as_bytes()).as_ref());
        assert_eq!((p.data_time, p.abnormal_event[0].detail[0].desc.as_ref()), (5, "d"));
        assert_eq!((p.abnormal_event[0].detail.len(), p.abnormal_event[1].detail.len()), (2, 0));
    }

    #[test]
    fn declines_more_digits_than_fit() {
        for digits in ["9999999999999999999", "99999999999999999999", "1234567890123456789"] {
            let body = format!(r#"{{"event_type":321,"stream_id":"s","data_time":{digits}}}"#);
            assert_eq!(push_error(body.as_bytes()), None, "{digits}");
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

    /// Keys, known ones (`type`, `t`, `desc`) and others, some only a
    /// known one's start or end.
    const KEYS: &[&[u8]] = &[b"type", b"type_desc_cn", b"t", b"tx", b"desc", b"", b"d\\"];

    /// Keys for names longer than a word: one, and others sharing its
    /// first word or all of it.
    const LONG_KEYS: &[&[u8]] = &[b"report_interval", b"report_intervals", b"report_i", b"report_interva"];

    /// Bytes mostly of `common`, the others any.
    fn bytes_of(common: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop_oneof![4 => prop::sample::select(common), 1 => any::<u8>()], 0..40)
    }

    proptest! {
        #[test]
        fn digits_counts_the_leading_ascii_digits(text in bytes_of(b"0123456789/:")) {
            prop_assert_eq!(digits(&text), text.iter().take_while(|c| c.is_ascii_digit()).count());
        }

        #[test]
        fn known_keys_are_read_as_any_key(
            name in prop::sample::select([KEYS, LONG_KEYS].concat()),
            tail in bytes_of(b"\"\\:ae"),
            next in 0usize..5,
        ) {
            let text = [&b"\""[..], name, &tail].concat();
            // `desc` is named but may be given more than once.
            const NAMES: &[Name] =
                &[Name::once(b"type"), Name::once(b"t"), Name::other(b"desc"), Name::once(b"report_interval")];
            let (mut fast, mut plain) = (Scanner { text: "", b: &text, i: 0 }, Scanner { text: "", b: &text, i: 0 });
            let (mut seen, mut after) = (0, next);
            let place = fast.key(NAMES, &mut after, &mut seen);
            let key = plain.raw_str();
            let named = |key: &[u8]| NAMES.iter().position(|n| n.name == key).unwrap_or(NAMES.len());
            prop_assert_eq!((place, fast.i), (key.map(named), plain.i));
            // Noted by its place, and refused a second time if it may be given once.
            let noted = place.filter(|&p| p < NAMES.len());
            prop_assert_eq!(seen, noted.map_or(0, |p| 1 << p));
            if place.is_some() {
                fast.i = 0;
                prop_assert_eq!(fast.key(NAMES, &mut after, &mut seen).is_none(), noted.is_some_and(|p| p != 2));
            }
        }

        #[test]
        fn skip_number_steps_over_a_number_as_serde_reads_one(
            first in prop::sample::select(b"-0123456789"),
            rest in bytes_of(b"-0123456789.eE+,"),
        ) {
            let text = [&[first][..], &rest].concat();
            const NUMBER: &[u8] = b"-0123456789.eE+";
            let number = |to: usize| serde_json::from_slice::<serde::de::IgnoredAny>(&text[..to]).is_ok();
            let mut s = Scanner { text: "", b: &text, i: 0 };
            let run = text.iter().take_while(|c| NUMBER.contains(c)).count();
            if s.skip_number().is_some() {
                // A whole number, and none longer.
                prop_assert!(number(s.i) && (s.i + 1..=run).all(|to| !number(to)));
            } else {
                // serde reads as far, and refuses it too.
                prop_assert!(!number(run));
            }
        }

        #[test]
        fn skip_str_steps_over_a_string_as_serde_reads_one(text in bytes_of(b"ab\"\\u0f/nq\t")) {
            let text = [&b"\""[..], &text].concat();
            let string = |to: usize| serde_json::from_slice::<serde::de::IgnoredAny>(&text[..to]).is_ok();
            let mut s = Scanner { text: "", b: &text, i: 0 };
            match s.skip_str() {
                Some(()) => prop_assert!(string(s.i)),
                None => prop_assert!((1..=text.len()).all(|to| !string(to))),
            }
        }

        #[test]
        fn int_reads_what_serde_reads(text in "[-0-9.eE,\" \t\u{e9}a]{0,40}") {
            let mut s = Scanner { text: &text, b: text.as_bytes(), i: 0 };
            if let Some(v) = s.int() {
                let serde = super::super::int(&mut serde_json::Deserializer::from_slice(&s.b[..s.i])).ok();
                prop_assert_eq!(Some(v), serde);
            }
        }

        #[test]
        fn ws_steps_over_json_whitespace_only(text in prop::collection::vec(
            prop_oneof![8 => Just(b' '), 2 => prop::sample::select(b"\n\r\t\x0b\x0c\"x`"), 1 => any::<u8>()],
            0..40,
        )) {
            let mut s = Scanner { text: "", b: &text, i: 0 };
            s.ws();
            prop_assert_eq!(s.i, text.iter().take_while(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t')).count());
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
