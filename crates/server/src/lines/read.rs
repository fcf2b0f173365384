//! Where a TCP request ends. The seed's clients do not agree on a framing, so a request ends at
//! the first of:
//!
//! - **half-close**: the client shuts down its sending side (`shutdown(SHUT_WR)`, `nc -N`);
//! - **newline**: the bytes received so far end with `\n` and nothing more arrives within
//!   [`NEWLINE_SETTLE`] (a line client: `module:data\n`). Newlines inside the data do not end
//!   it: they are followed by more bytes of the same write;
//! - **gap**: bytes were received and nothing more arrives within the end gap (default 100 ms):
//!   the seed's PHP client writes once and waits for the answer.
//!
//! Limits: nothing at all within the idle timeout, or a request still incomplete when the
//! request timeout passes (a client trickling bytes faster than the gap), is `408:`; more than
//! the size limit is `413:`. A client that connects and closes without a byte gets no answer.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::reply::LineError;
use crate::config::LineLimits;

/// How long a request ending with `\n` waits for more bytes before it is taken as complete.
pub(crate) const NEWLINE_SETTLE: Duration = Duration::from_millis(10);

/// What ended a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The client half-closed.
    HalfClose,
    /// A final newline, then quiet.
    Newline,
    /// Quiet after the last byte.
    Gap,
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Answer this and close.
    Answer(LineError),
    /// The client left (closed before sending anything, or an I/O error): close silently.
    Gone,
}

/// Reads one request from `r`.
pub(crate) async fn request<R: AsyncRead + Unpin>(
    r: &mut R,
    limits: &LineLimits,
) -> Result<(Vec<u8>, End), ReadError> {
    let started = Instant::now();
    let deadline = started + limits.request_timeout;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let quiet = if buf.is_empty() {
            limits.idle_timeout
        } else if buf.ends_with(b"\n") {
            NEWLINE_SETTLE.min(limits.end_gap)
        } else {
            limits.end_gap
        };
        let until = (Instant::now() + quiet).min(deadline);
        match tokio::time::timeout_at(until, r.read(&mut chunk)).await {
            Ok(Ok(0)) if buf.is_empty() => return Err(ReadError::Gone),
            Ok(Ok(0)) => return Ok((buf, End::HalfClose)),
            Ok(Ok(n)) => {
                if buf.len() + n > limits.max_request {
                    return Err(ReadError::Answer(LineError::too_large(format!(
                        "the request is over {} bytes",
                        limits.max_request
                    ))));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Ok(Err(_)) => return Err(ReadError::Gone),
            Err(_) if until >= deadline => {
                return Err(ReadError::Answer(LineError::timeout(format!(
                    "the request did not arrive within {} ms; end it with a newline, a \
                     half-close, or a pause",
                    limits.request_timeout.as_millis()
                ))))
            }
            Err(_) if buf.is_empty() => {
                return Err(ReadError::Answer(LineError::timeout(format!(
                    "nothing received within {} ms",
                    limits.idle_timeout.as_millis()
                ))))
            }
            Err(_) if buf.ends_with(b"\n") => return Ok((buf, End::Newline)),
            Err(_) => return Ok((buf, End::Gap)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn limits() -> LineLimits {
        LineLimits {
            idle_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(1000),
            end_gap: Duration::from_millis(80),
            max_request: 64,
            ..LineLimits::default()
        }
    }

    // On tokio's paused clock: timers fire in order of virtual time, whatever the machine's load,
    // so the gap, the request timeout and a trickle faster than the gap are deterministic.
    #[tokio::test(start_paused = true)]
    async fn each_ending() {
        let l = limits();
        // Half-close.
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"echo:a\nb").await.unwrap();
        client.shutdown().await.unwrap();
        let (got, end) = request(&mut server, &l).await.unwrap();
        assert_eq!((got.as_slice(), end), (&b"echo:a\nb"[..], End::HalfClose));
        // Newline, quickly, with newlines inside.
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"echo:a\nb\n").await.unwrap();
        let t = Instant::now();
        let (got, end) = request(&mut server, &l).await.unwrap();
        assert_eq!((got.as_slice(), end), (&b"echo:a\nb\n"[..], End::Newline));
        assert_eq!(
            t.elapsed(),
            NEWLINE_SETTLE,
            "a newline ends after the settle, not the gap"
        );
        // Gap.
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"echo:x").await.unwrap();
        let (got, end) = request(&mut server, &l).await.unwrap();
        assert_eq!((got.as_slice(), end), (&b"echo:x"[..], End::Gap));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn limits_answer() {
        let l = limits();
        let (_client, mut server) = tokio::io::duplex(1024);
        match request(&mut server, &l).await {
            Err(ReadError::Answer(e)) => assert_eq!(e.code, 408),
            other => panic!("{other:?}"),
        }
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(&[b'a'; 100]).await.unwrap();
        match request(&mut server, &l).await {
            Err(ReadError::Answer(e)) => assert_eq!(e.code, 413),
            other => panic!("{other:?}"),
        }
        // A trickle faster than the gap never ends by itself: the request timeout does.
        let (mut client, mut server) = tokio::io::duplex(1024);
        let trickle = tokio::spawn(async move {
            for _ in 0..40 {
                if client.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
        let t = Instant::now();
        match request(&mut server, &l).await {
            Err(ReadError::Answer(e)) => assert_eq!(e.code, 408, "{e:?}"),
            other => panic!("{other:?}"),
        }
        assert!(t.elapsed() >= Duration::from_millis(900));
        trickle.abort();
        // Connect and close: no answer.
        let (client, mut server) = tokio::io::duplex(1024);
        drop(client);
        assert!(matches!(
            request(&mut server, &l).await,
            Err(ReadError::Gone)
        ));
    }
}
