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
/// Body bytes written with their head, so a small answer is one write.
const WITH_HEAD: usize = 64 * 1024;
/// How every answer begins, and no body here does.
const STATUS_LINE: &[u8] = b"HTTP/1.";

/// A connection whose server-made answers get the security headers.
pub struct Stamped<T> {
    io: T,
    /// The head being read.
    head: Vec<u8>,
    /// Written to `io` before anything more: a head, stamped or not, and
    /// the start of its body.
    owed: Vec<u8>,
    state: State,
}

#[derive(Clone, Copy)]
enum State {
    /// Reading an answer's head, up to its blank line.
    Head,
    /// After a head saying so many bytes of body: they, or the next head.
    BodyOrHead(u64),
    /// So many bytes of body to pass through.
    Body(u64),
    PassThrough,
}

impl<T> Stamped<T> {
    /// For HTTP/1 (HTTP/2 answers are frames: passed through as they are).
    pub fn new(io: T, http1: bool) -> Self {
        let state = if http1 { State::Head } else { State::PassThrough };
        Self { io, head: Vec::new(), owed: Vec::new(), state }
    }

    /// Takes what of `buf` goes out through `owed`: a head, and the start
    /// of its body if it follows; how many bytes.
    fn take(&mut self, buf: &[u8]) -> usize {
        self.settle(buf);
        if !matches!(self.state, State::Head) {
            return 0;
        }
        let before = self.head.len();
        self.head.extend_from_slice(buf);
        let Some(end) = find_blank_line(&self.head, before.saturating_sub(3)) else {
            if self.head.len() > MAX_HEAD {
                self.owed.append(&mut self.head);
                self.state = State::PassThrough;
            }
            return buf.len();
        };
        self.head.truncate(end);
        self.state = self.answer();
        let mut taken = end - before;
        let rest = &buf[taken..];
        if STATUS_LINE.starts_with(rest) {
            // Nothing, or too little to tell: the next write says.
            return taken;
        }
        self.settle(rest);
        if let State::Body(left) = self.state {
            let n = rest.len().min(WITH_HEAD).min(usize::try_from(left).unwrap_or(usize::MAX));
            self.owed.extend_from_slice(&rest[..n]);
            self.passed(n);
            taken += n;
        }
        taken
    }

    /// After a head that announced a body, whether `next` is it.
    fn settle(&mut self, next: &[u8]) {
        let State::BodyOrHead(length) = self.state else { return };
        if next.is_empty() {
            return;
        }
        self.state = if next.starts_with(STATUS_LINE) {
            State::Head
        } else if STATUS_LINE.starts_with(next) {
            // Too few bytes to tell.
            State::PassThrough
        } else {
            State::Body(length)
        };
    }

    /// Counts `n` bytes of body passed.
    fn passed(&mut self, n: usize) {
        if let State::Body(left) = &mut self.state {
            *left -= n as u64;
            if *left == 0 {
                self.state = State::Head;
            }
        }
    }

    /// Moves the head just read to `owed`, stamped if the server made it:
    /// what follows it.
    fn answer(&mut self) -> State {
        let parsed = Head::parse(&self.head);
        let stamp = parsed.as_ref().is_some_and(|h| !h.stamped && h.status >= 200);
        if stamp {
            self.owed.extend_from_slice(&self.head[..self.head.len() - 2]);
            for (name, value) in SECURITY_HEADERS {
                self.owed.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            self.owed.extend_from_slice(b"\r\n");
        } else {
            self.owed.extend_from_slice(&self.head);
        }
        self.head.clear();
        match parsed {
            None => State::PassThrough,
            Some(h) if h.status < 200 || h.status == 204 || h.status == 304 => State::Head,
            Some(Head { body: Some(0), .. }) => State::Head,
            Some(Head { body: Some(length), .. }) => State::BodyOrHead(length),
            Some(Head { body: None, .. }) => State::PassThrough,
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

/// Where the head in `bytes` ends (after its blank line), looking from `from`.
fn find_blank_line(bytes: &[u8], from: usize) -> Option<usize> {
    bytes.get(from..)?.windows(4).position(|w| w == b"\r\n\r\n").map(|at| from + at + 4)
}

/// What an answer's head says about what follows it.
struct Head {
    status: u16,
    /// Its `Content-Length`; `None` if chunked or unreadable.
    body: Option<u64>,
    /// It carries the security headers: the app made it.
    stamped: bool,
}

impl Head {
    fn parse(head: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.split("\r\n");
        let status = lines.next()?.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()?;
        let (mut body, mut stamped, mut chunked) = (Some(0), false, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                body = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = true;
            } else if name.eq_ignore_ascii_case(SECURITY_HEADERS[0].0) {
                stamped = true;
            }
        }
        Some(Self { status, body: body.filter(|_| !chunked), stamped })
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stamped<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_owed(cx))?;
        let taken = this.take(buf);
        if taken > 0 {
            // Now if it can; if not, before anything more.
            if let Poll::Ready(Err(e)) = this.poll_owed(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(taken));
        }
        let n = match this.state {
            State::Body(left) => usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len())),
            _ => buf.len(),
        };
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, &buf[..n]))?;
        this.passed(written);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_owed(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
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
    fn a_small_answer_is_one_write_and_a_large_body_is_not_copied() {
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
        let sizes: Vec<usize> = s.io.0[1..].iter().map(Vec::len).collect();
        assert_eq!(sizes, [large.len() - 2 * WITH_HEAD, 2 * WITH_HEAD], "the rest of the body in one write");
    }

    #[test]
    fn a_408_first_and_interim_answers() {
        let timeout = "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n";
        assert!(through(timeout.as_bytes(), 5).contains("x-content-type-options: nosniff\r\n"));
        let interim = "HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(through(interim.as_bytes(), 100), interim);
    }

    #[test]
    fn what_cannot_be_followed_is_passed_through() {
        let chunked = format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n{CSP}\r\n5\r\nHTTP/\r\n0\r\n\r\n");
        let later = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(through(format!("{chunked}{later}").as_bytes(), 9), format!("{chunked}{later}"));
        let garbage = "not http at all\r\n\r\nmore";
        assert_eq!(through(garbage.as_bytes(), 4), garbage);
        // Too few bytes after a head to tell a body from the next head.
        let short = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{CSP}\r\nHT");
        assert_eq!(through(format!("{short}{later}").as_bytes(), 2), format!("{short}{later}"));
    }
}
