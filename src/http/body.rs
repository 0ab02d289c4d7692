//! A callback's body, read whole under a size limit. A body that arrives
//! as one piece (nearly all: they are about a kilobyte) is kept as that
//! piece, not copied; actix-web's `to_bytes_limited` copies every body
//! into a fresh 32 KiB buffer.
use actix_web::web::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit.
    TooLarge,
    /// A broken chunked body, or the sender went away mid-body.
    Unreadable,
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

    #[actix_web::test]
    async fn too_large_or_broken_bodies_are_refused() {
        assert_eq!(read(payload(&[b"0123456789!"], false), 10, None).await, Err(BodyError::TooLarge));
        assert_eq!(read(payload(&[b"01234", b"56789", b"!"], false), 10, None).await, Err(BodyError::TooLarge));
        assert_eq!(read(payload(&[], true), 10, None).await, Err(BodyError::Unreadable));
        assert_eq!(read(payload(&[b"012"], true), 10, None).await, Err(BodyError::Unreadable));
        assert_eq!(read(payload(&[b"012", b"345"], true), 10, None).await, Err(BodyError::Unreadable));
    }
}
