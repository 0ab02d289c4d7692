//! A callback's body, read whole under a size limit. A body that arrives
//! as one piece (nearly all: they are about a kilobyte) is kept as that
//! piece, not copied; actix-web's `to_bytes_limited` copies every body
//! into a fresh 32 KiB buffer.
use actix_web::rt::time::{timeout, Instant};
use actix_web::web::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit.
    TooLarge,
    /// A broken chunked body, or the sender went away mid-body.
    Unreadable,
    /// Not whole within the time allowed.
    Late,
}

/// [`read`], given `after` from its first poll to finish. Its timer is set
/// only if the body is not whole by the second poll: actix polls a handler
/// once as soon as the request's head is read, before it hands over the
/// body that came with it, then again at once, and a callback's body nearly
/// always comes with its head; a timer set and cleared for each callback
/// cost about 600 instructions. The first poll wakes the task, so a second
/// one comes even if no more of the body ever does.
pub async fn read_within<E>(
    payload: impl Stream<Item = Result<Bytes, E>> + Unpin,
    limit: usize,
    declared: Option<usize>,
    after: Duration,
) -> Result<Bytes, BodyError> {
    let started = Instant::now();
    let mut body = pin!(read(payload, limit, declared));
    let mut first = true;
    let early = poll_fn(|cx| match body.as_mut().poll(cx) {
        Poll::Ready(body) => Poll::Ready(Some(body)),
        Poll::Pending if first => {
            first = false;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    match early {
        Some(body) => body,
        None => timeout(after.saturating_sub(started.elapsed()), body).await.unwrap_or(Err(BodyError::Late)),
    }
}

/// The body in `payload`'s pieces, at most `limit` bytes; `declared` (its
/// `Content-Length`, if any) sizes the buffer when it comes in several.
pub async fn read<E>(
    mut payload: impl Stream<Item = Result<Bytes, E>> + Unpin,
    limit: usize,
    declared: Option<usize>,
) -> Result<Bytes, BodyError> {
    let Some(first) = payload.next().await else { return Ok(Bytes::new()) };
    let first = first.map_err(|_| BodyError::Unreadable)?;
    if first.len() > limit {
        return Err(BodyError::TooLarge);
    }
    let Some(second) = payload.next().await else { return Ok(first) };
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).clamp(first.len(), limit));
    body.extend_from_slice(&first);
    let mut next = Some(second);
    while let Some(chunk) = next {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
        next = payload.next().await;
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload that yields `chunks`, then ends (or fails, with `fail`).
    fn payload(chunks: &[&'static [u8]], fail: bool) -> impl Stream<Item = Result<Bytes, ()>> + Unpin {
        let chunks = chunks.iter().map(|c| Ok(Bytes::from_static(c)));
        futures_util::stream::iter(chunks.chain(fail.then_some(Err(()))).collect::<Vec<_>>())
    }

    #[actix_web::test]
    async fn whole_bodies_in_one_piece_or_several() {
        assert_eq!(read(payload(&[], false), 10, None).await, Ok(Bytes::new()));
        let one = read(payload(&[b"0123456789"], false), 10, Some(10)).await.unwrap();
        assert_eq!(one, &b"0123456789"[..]);
        for declared in [None, Some(3), Some(10), Some(1 << 30)] {
            let body = read(payload(&[b"012", b"3456", b"789"], false), 10, declared).await;
            assert_eq!(body.as_deref(), Ok(&b"0123456789"[..]), "{declared:?}");
        }
    }

    /// A payload whose pieces come `gap` apart (the first too).
    fn trickle(pieces: usize, gap: Duration) -> impl Stream<Item = Result<Bytes, ()>> + Unpin {
        Box::pin(futures_util::stream::iter(0..pieces).then(move |_| async move {
            actix_web::rt::time::sleep(gap).await;
            Ok(Bytes::from_static(b"x"))
        }))
    }

    #[actix_web::test]
    async fn a_body_has_its_time_from_the_first_poll() {
        let ms = Duration::from_millis;
        let whole = read_within(payload(&[b"012", b"345"], false), 10, None, ms(0)).await;
        assert_eq!(whole.as_deref(), Ok(&b"012345"[..]), "there at once: no timer at all");
        assert_eq!(read_within(trickle(3, ms(5)), 10, None, ms(1000)).await.as_deref(), Ok(&b"xxx"[..]));
        // Cut off at the deadline, before the first piece.
        let started = Instant::now();
        assert_eq!(read_within(trickle(3, ms(300)), 10, None, ms(100)).await, Err(BodyError::Late));
        assert!(started.elapsed() >= ms(100), "{:?}", started.elapsed());
        // A sender that says nothing more is cut off too.
        let silent = futures_util::stream::pending::<Result<Bytes, ()>>();
        assert_eq!(read_within(silent, 10, None, ms(50)).await, Err(BodyError::Late));
    }

    #[actix_web::test]
    async fn too_large_or_broken_bodies_are_refused() {
        assert_eq!(read(payload(&[b"0123456789!"], false), 10, None).await, Err(BodyError::TooLarge));
        assert_eq!(read(payload(&[b"01234", b"56789", b"!"], false), 10, None).await, Err(BodyError::TooLarge));
        assert_eq!(read(payload(&[], true), 10, None).await, Err(BodyError::Unreadable));
        assert_eq!(read(payload(&[b"012"], true), 10, None).await, Err(BodyError::Unreadable));
        assert_eq!(read(payload(&[b"012", b"345"], true), 10, None).await, Err(BodyError::Unreadable));
    }
}
