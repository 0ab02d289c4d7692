//! The security headers on the answers the HTTP server makes by itself: the
//! `400` for a request that does not parse, the `408` for headers that come
//! too slowly, the `431` for headers too large. actix-http writes those
//! without passing them to the app (nor to any middleware), so each
//! connection is wrapped in [`Stamped`], which reads the answers' heads as
//! they are written and puts the headers into those that lack them: every
//! answer the app makes carries them already ([`super::headers`]), so a
//! head without them is the server's own.
//!
//! Bodies are passed through untouched, counted by their `Content-Length`.
//! Whether one follows its head is read from the bytes, not from the
//! request: after a `HEAD` request the server sends none (nor, with
//! pipelined requests, always as it should), and no body of this exporter
//! starts with `HTTP/1.`, as the next answer does. Anything else (a chunked
//! body, a head that does not read, too few bytes to tell) makes the
//! connection pass everything through from there on: it never guesses.
use super::headers::SECURITY_HEADERS;
use actix_codec::{AsyncRead, AsyncWrite, ReadBuf};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// The longest answer head read; past it, everything is passed through.
const MAX_HEAD: usize = 64 * 1024;
/// Body bytes sent with a head that was rewritten, so a small answer is
/// still one write.
const WITH_HEAD: usize = 64 * 1024;
/// How every answer begins, and no body here does.
const STATUS_LINE: &[u8] = b"HTTP/1.";

/// A connection whose server-made answers get the security headers.
pub struct Stamped<T> {
    io: T,
    /// A head that came in pieces, so far.
    head: Vec<u8>,
    /// Written to `io` before anything more: a head that was rewritten or
    /// came in pieces, and the start of its body.
    owed: Vec<u8>,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At (or in) an answer's head.
    Head,
    /// After a head that announced so many bytes of body: they, or the next head.
    BodyOrHead(u64),
    /// So many bytes to pass through untouched, then a head.
    Pass(u64),
    PassThrough,
}

impl<T> Stamped<T> {
    /// For HTTP/1 (HTTP/2 answers are frames: passed through as they are).
    pub fn new(io: T, http1: bool) -> Self {
        let state = if http1 { State::Head } else { State::PassThrough };
        Self { io, head: Vec::new(), owed: Vec::new(), state }
    }

    /// Decides, from the bytes `next`, what follows a head that announced
    /// a body; `false` if they are too few to tell (then nothing changes).
    fn settle(&mut self, next: &[u8]) -> bool {
        let State::BodyOrHead(length) = self.state else { return true };
        if next.len() < STATUS_LINE.len() && STATUS_LINE.starts_with(next) {
            return false;
        }
        self.state = if next.starts_with(STATUS_LINE) { State::Head } else { State::Pass(length) };
        true
    }

    /// The common case: a whole head of the app's at the start of `buf`,
    /// and whether a body follows it there. Then nothing is copied: the
    /// head and its body are passed through as they are.
    fn pass_whole_head(&mut self, buf: &[u8]) -> bool {
        if self.state != State::Head || !self.head.is_empty() {
            return false;
        }
        let Some((end, Some(head))) = read_head(buf) else { return false };
        if head.stamp() {
            return false;
        }
        self.state = head.then();
        if !self.settle(&buf[end..]) {
            self.state = State::Head;
            return false;
        }
        let end = end as u64;
        self.state = match self.state {
            State::Head => State::Pass(end),
            State::Pass(body) => State::Pass(end + body),
            other => other,
        };
        true
    }

    /// The rare case, through `owed`: a head that comes in pieces, or that
    /// the server made (stamped), and the start of the body after it.
    /// How many bytes of `buf` were taken.
    fn take_head(&mut self, buf: &[u8]) -> usize {
        let before = self.head.len();
        self.head.extend_from_slice(buf);
        let Some((end, parsed)) = read_head(&self.head) else {
            let not_a_head = !self.head.starts_with(&STATUS_LINE[..self.head.len().min(STATUS_LINE.len())]);
            if not_a_head || self.head.len() > MAX_HEAD {
                // Never held back: what does not begin as a head goes out as it is.
                self.owed.append(&mut self.head);
                self.state = State::PassThrough;
            }
            return buf.len();
        };
        self.head.truncate(end);
        if parsed.as_ref().is_some_and(Head::stamp) {
            self.owed.extend_from_slice(&self.head[..end - 2]);
            for (name, value) in SECURITY_HEADERS {
                self.owed.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            self.owed.extend_from_slice(b"\r\n");
        } else {
            self.owed.extend_from_slice(&self.head);
        }
        self.head.clear();
        self.state = parsed.map_or(State::PassThrough, |h| h.then());
        let mut taken = end - before;
        let rest = &buf[taken..];
        if self.settle(rest) {
            if let State::Pass(left) = self.state {
                let n = rest.len().min(WITH_HEAD).min(usize::try_from(left).unwrap_or(usize::MAX));
                self.owed.extend_from_slice(&rest[..n]);
                self.passed(n);
                taken += n;
            }
        }
        taken
    }

    /// Counts `n` bytes passed through.
    fn passed(&mut self, n: usize) {
        if let State::Pass(left) = &mut self.state {
            *left -= n as u64;
            if *left == 0 {
                self.state = State::Head;
            }
        }
    }

    fn poll_owed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        T: AsyncWrite + Unpin,
    {
        let mut written = 0;
        while written < self.owed.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.owed[written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.owed.drain(..written);
                    return Poll::Pending;
                }
            }
        }
        self.owed.clear();
        Poll::Ready(Ok(()))
    }
}

/// What an answer's head says about what follows it.
struct Head {
    status: u16,
    /// Its `Content-Length`; `None` if chunked or unreadable.
    body: Option<u64>,
    /// It carries the security headers: the app made it.
    stamped: bool,
}

/// The head at the start of `bytes`, if it ends there: where (after its
/// blank line), and what it says (`None` if it does not read). This runs
/// for every answer, so it is one pass over the line ends that looks only
/// for what it needs.
fn read_head(bytes: &[u8]) -> Option<(usize, Option<Head>)> {
    // memchr's AVX2 search itself where the CPU has it: `memchr_iter` picks
    // it anew for each of the head's ten or so lines, which cost a fifth of
    // the search.
    #[cfg(target_arch = "x86_64")]
    if let Some(newline) = memchr::arch::x86_64::avx2::memchr::One::new(b'\n') {
        return read_lines(bytes, newline.iter(bytes));
    }
    read_lines(bytes, memchr::memchr_iter(b'\n', bytes))
}

/// [`read_head`], given where the lines of `bytes` end.
#[inline(always)]
fn read_lines(bytes: &[u8], line_ends: impl Iterator<Item = usize>) -> Option<(usize, Option<Head>)> {
    let status = bytes.strip_prefix(STATUS_LINE).and_then(|l| digits(l.get(2..5)?));
    let mut head =
        status.and_then(|s| u16::try_from(s).ok()).map(|status| Head { status, body: Some(0), stamped: false });
    let mut start = 0;
    for end in line_ends {
        let line = &bytes[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(&first) = line.first() else { return Some((start, head)) };
        let Some(h) = &mut head else { continue };
        // The three names looked for begin with c or t: most lines are passed by their first byte.
        match first.to_ascii_lowercase() {
            b'c' if CONTENT_LENGTH.names(line) => h.body = h.body.and(digits(line[15..].trim_ascii())),
            b'c' if CONTENT_SECURITY_POLICY.names(line) => h.stamped = true,
            b't' if TRANSFER_ENCODING.names(line) => h.body = None,
            _ => {}
        }
    }
    None
}

const CONTENT_LENGTH: Name = Name::new("content-length:");
const CONTENT_SECURITY_POLICY: Name = Name::new("content-security-policy:");
const TRANSFER_ENCODING: Name = Name::new("transfer-encoding:");

/// A header name (with its colon) looked for at the start of a line, in any
/// case. Compared as three words of eight bytes (overlapping where it is
/// shorter than 24), each byte in lower case and a letter's case bit set on
/// the line's side too, which is exact: only a letter's two cases become
/// the same byte with that bit set. `eq_ignore_ascii_case` byte by byte was
/// a quarter of the time spent reading an answer's head.
struct Name {
    len: usize,
    /// Where each word begins, the name's bytes there in lower case, and
    /// the case bits of its letters.
    words: [(usize, u64, u64); 3],
}

impl Name {
    const fn new(name: &str) -> Self {
        let name = name.as_bytes();
        let len = name.len();
        assert!(len >= 8 && len <= 24, "a name of 8 to 24 bytes");
        let starts = [0, if len >= 16 { 8 } else { len - 8 }, len - 8];
        let mut words = [(0, 0, 0); 3];
        let mut w = 0;
        while w < 3 {
            let (mut lower, mut letters, mut i) = (0, 0, 0);
            while i < 8 {
                let byte = name[starts[w] + i];
                lower |= (byte.to_ascii_lowercase() as u64) << (8 * i);
                if byte.is_ascii_alphabetic() {
                    letters |= 0x20 << (8 * i);
                }
                i += 1;
            }
            words[w] = (starts[w], lower, letters);
            w += 1;
        }
        Self { len, words }
    }

    /// Whether `line` begins with this name, in any case (inlined: it runs
    /// for a few lines of every answer).
    #[inline(always)]
    fn names(&self, line: &[u8]) -> bool {
        line.len() >= self.len
            && self.words.iter().all(|&(start, lower, letters)| {
                let word: [u8; 8] = line[start..start + 8].try_into().expect("within the name's length");
                u64::from_le_bytes(word) | letters == lower
            })
    }
}

/// A decimal number of 1 to 19 digits, nothing else (as `u64`'s parse
/// reads it, without a sign).
fn digits(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    text.iter().try_fold(0, |n: u64, &b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}

impl Head {
    /// The server made it: not an interim answer, and without the headers.
    fn stamp(&self) -> bool {
        !self.stamped && self.status >= 200
    }

    /// What follows it.
    fn then(self) -> State {
        match self.body {
            _ if self.status < 200 || self.status == 204 || self.status == 304 => State::Head,
            Some(0) => State::Head,
            Some(length) => State::BodyOrHead(length),
            None => State::PassThrough,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stamped<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_owed(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if !this.settle(buf) {
            // Too few bytes to tell a body from the next head: never guess.
            this.state = State::PassThrough;
        }
        if this.state == State::Head && !this.pass_whole_head(buf) {
            let taken = this.take_head(buf);
            // Now if it can; if not, before anything more.
            if let Poll::Ready(Err(e)) = this.poll_owed(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(taken));
        }
        let n = match this.state {
            State::Pass(left) => usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len())),
            _ => buf.len(),
        };
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, &buf[..n]))?;
        this.passed(written);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.head.is_empty() {
            // A head is written whole before a flush; if not, nothing is held back.
            this.owed.append(&mut this.head);
            this.state = State::PassThrough;
        }
        ready!(this.poll_owed(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A head never finished goes out as it is.
        let this = &mut *self;
        this.owed.append(&mut this.head);
        ready!(this.poll_owed(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stamped<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::arbitrary::any;

    /// What `Stamped` writes for `written`, given in pieces of `piece` bytes.
    fn through(written: &[u8], piece: usize) -> String {
        let mut out = Vec::new();
        let mut s = Stamped::new(&mut out, true);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut rest = written;
        while !rest.is_empty() {
            let n = piece.min(rest.len());
            match Pin::new(&mut s).poll_write(&mut cx, &rest[..n]) {
                Poll::Ready(Ok(n)) => rest = &rest[n..],
                other => panic!("{other:?}"),
            }
        }
        assert!(Pin::new(&mut s).poll_shutdown(&mut cx).is_ready());
        String::from_utf8(out).unwrap()
    }

    const CSP: &str = "content-security-policy: x\r\n";

    fn stamped_400() -> String {
        let mut want = String::from("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n");
        for (name, value) in SECURITY_HEADERS {
            want += &format!("{name}: {value}\r\n");
        }
        want + "\r\n"
    }

    #[test]
    fn the_servers_own_answers_get_the_headers_and_the_apps_pass_untouched() {
        // An app answer whose body holds a head, then an answer to HEAD
        // (its length, no body), then the server's 400.
        let app = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: 49\r\n{CSP}\r\n<HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n>"
        );
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n{CSP}\r\n");
        let server = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let written = format!("{app}{head}{server}");
        for piece in [7, 9, 64, 4096] {
            assert_eq!(through(written.as_bytes(), piece), format!("{app}{head}{}", stamped_400()), "{piece}");
        }
    }

    /// Records each write it is given.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl AsyncWrite for Writes {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.0.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn an_answer_is_one_write_and_the_apps_are_not_copied() {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut s = Stamped::new(Writes::default(), true);
        let small = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{CSP}\r\nok");
        assert!(
            matches!(Pin::new(&mut s).poll_write(&mut cx, small.as_bytes()), Poll::Ready(Ok(n)) if n == small.len())
        );
        assert_eq!(s.io.0, [small.as_bytes()]);
        let body = vec![b'x'; 3 * WITH_HEAD];
        let mut large = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{CSP}\r\n", body.len()).into_bytes();
        large.extend_from_slice(&body);
        let mut rest = &large[..];
        while !rest.is_empty() {
            let Poll::Ready(Ok(n)) = Pin::new(&mut s).poll_write(&mut cx, rest) else { panic!("a write failed") };
            rest = &rest[n..];
        }
        assert_eq!(s.io.0[1], large, "passed through as it came");
        // The server's own: rewritten, with the start of its body.
        let own = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 5\r\n\r\noops!";
        assert!(matches!(Pin::new(&mut s).poll_write(&mut cx, own.as_bytes()), Poll::Ready(Ok(n)) if n == own.len()));
        let written = String::from_utf8(s.io.0[2].clone()).unwrap();
        assert!(written.contains("nosniff") && written.ends_with("\r\n\r\noops!"), "{written}");
    }

    /// An answer of the app (a body, or none as to a `HEAD`), or the server's 400.
    fn answer(kind: u8, body: &str) -> (String, String) {
        match kind % 3 {
            0 => {
                let a = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{CSP}\r\n{body}", body.len());
                (a.clone(), a)
            }
            1 => {
                let a = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{CSP}\r\n", body.len() + 1);
                (a.clone(), a)
            }
            _ => ("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n".to_owned(), {
                let mut want = String::from("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n");
                for (name, value) in SECURITY_HEADERS {
                    want += &format!("{name}: {value}\r\n");
                }
                want + "\r\n"
            }),
        }
    }

    proptest::proptest! {
        /// However the server's writes are cut (at least a status line's
        /// worth each), the app's answers pass as they are and the
        /// server's get the headers; bodies hold anything but a start that
        /// reads as a status line.
        #[test]
        fn any_answers_in_any_pieces(
            answers in proptest::collection::vec((0..3u8, "[a-z<>:\r\n]{1,3}(HTTP/1\\.1 400\r\n\r\n)?[a-z]{0,40}"), 0..8),
            piece in 7..200usize,
        ) {
            let (written, want): (String, String) = answers.iter().map(|(kind, body)| answer(*kind, body)).unzip();
            proptest::prop_assert_eq!(through(written.as_bytes(), piece), want);
        }
    }

    proptest::proptest! {
        /// A name is found as `eq_ignore_ascii_case` finds it, in lines
        /// that differ from it in a byte's case or in any byte.
        #[test]
        fn names_are_matched_in_any_case_and_nothing_else(
            which in 0..3usize,
            flips in proptest::collection::vec(any::<bool>(), 24),
            change in proptest::option::of((0..24usize, any::<u8>())),
            cut in 0..30usize,
            rest in "[ -~]{0,10}",
        ) {
            let (name, text) = [
                (&CONTENT_LENGTH, "content-length:"),
                (&CONTENT_SECURITY_POLICY, "content-security-policy:"),
                (&TRANSFER_ENCODING, "transfer-encoding:"),
            ][which];
            let mut line: Vec<u8> = text.bytes().zip(&flips).map(|(b, &up)| if up { b.to_ascii_uppercase() } else { b }).collect();
            if let Some((at, byte)) = change {
                if let Some(b) = line.get_mut(at) {
                    *b = byte;
                }
            }
            line.extend_from_slice(rest.as_bytes());
            line.truncate(cut);
            let want = line.len() >= text.len() && line[..text.len()].eq_ignore_ascii_case(text.as_bytes());
            proptest::prop_assert_eq!(name.names(&line), want, "{:?}", String::from_utf8_lossy(&line));
        }
    }

    #[test]
    fn a_408_first_and_interim_answers() {
        let timeout = "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n";
        assert!(through(timeout.as_bytes(), 5).contains("x-content-type-options: nosniff\r\n"));
        let interim = "HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(through(interim.as_bytes(), 100), interim);
    }

    #[test]
    fn header_names_are_read_in_any_case() {
        let app = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCONTENT-SECURITY-POLICY: x\r\n\r\nok";
        let server = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        for piece in [5, 4096] {
            assert_eq!(
                through(format!("{app}{server}").as_bytes(), piece),
                format!("{app}{}", stamped_400()),
                "{piece}"
            );
        }
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert!(
            through(chunked.as_bytes(), 4096).ends_with("no-referrer\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
            "stamped, then passed"
        );
    }

    #[test]
    fn what_cannot_be_followed_is_passed_through() {
        let chunked = format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n{CSP}\r\n5\r\nHTTP/\r\n0\r\n\r\n");
        let later = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(through(format!("{chunked}{later}").as_bytes(), 9), format!("{chunked}{later}"));
        let garbage = "not http at all\r\n\r\nmore";
        assert_eq!(through(garbage.as_bytes(), 4), garbage);
        // A head whose length is not there, then its body: never held back.
        let unknown = format!("HTTP/1.1 200 OK\r\n{CSP}\r\nok");
        assert_eq!(through(unknown.as_bytes(), 100), unknown);
        // Too few bytes after a head to tell a body from the next head.
        let short = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{CSP}\r\nHT");
        assert_eq!(through(format!("{short}{later}").as_bytes(), 2), format!("{short}{later}"));
    }
}
