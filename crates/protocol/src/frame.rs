//! Line framing with a bounded buffer (`docs/protocol.md` §2).

use crate::error::DecodeError;

/// Splits a byte stream into frames (lines), never buffering more than the frame limit.
///
/// A line longer than the limit yields one [`DecodeError::FrameTooLarge`]; the rest of that line
/// is skipped without being stored, and framing resumes after its newline. Empty and
/// whitespace-only lines are skipped.
///
/// ```
/// use offload_protocol::LineFramer;
///
/// let mut framer = LineFramer::new(8);
/// let mut frames = Vec::new();
/// framer.push(b"{\"a\":1}\n{\"b\"", |f| frames.push(f.map(<[u8]>::to_vec)));
/// framer.push(b":2}\n\n", |f| frames.push(f.map(<[u8]>::to_vec)));
/// assert_eq!(frames.len(), 2);
/// assert_eq!(frames[1].as_ref().unwrap(), b"{\"b\":2}");
/// ```
#[derive(Debug)]
pub struct LineFramer {
    max: usize,
    buf: Vec<u8>,
    discarding: bool,
}

impl LineFramer {
    /// A framer for frames of at most `max_frame` bytes (newline excluded).
    pub fn new(max_frame: usize) -> Self {
        Self {
            max: max_frame,
            buf: Vec::new(),
            discarding: false,
        }
    }

    /// The frame limit.
    pub fn max_frame(&self) -> usize {
        self.max
    }

    /// Bytes of an unfinished line held so far (at most the limit).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds `data`, calling `on_frame` for every complete line or oversized-line error, in order.
    pub fn push(&mut self, mut data: &[u8], mut on_frame: impl FnMut(Result<&[u8], DecodeError>)) {
        while !data.is_empty() {
            let newline = data.iter().position(|&b| b == b'\n');
            if self.discarding {
                match newline {
                    Some(i) => {
                        self.discarding = false;
                        data = &data[i + 1..];
                        continue;
                    }
                    None => return,
                }
            }
            match newline {
                Some(i) => {
                    let line = &data[..i];
                    data = &data[i + 1..];
                    if self.buf.len() + line.len() > self.max {
                        self.buf.clear();
                        on_frame(Err(DecodeError::FrameTooLarge { max: self.max }));
                    } else if self.buf.is_empty() {
                        if !is_blank(line) {
                            on_frame(Ok(line));
                        }
                    } else {
                        self.buf.extend_from_slice(line);
                        if !is_blank(&self.buf) {
                            on_frame(Ok(&self.buf));
                        }
                        self.buf.clear();
                    }
                }
                None => {
                    if self.buf.len() + data.len() > self.max {
                        self.buf = Vec::new();
                        self.discarding = true;
                        on_frame(Err(DecodeError::FrameTooLarge { max: self.max }));
                    } else {
                        self.buf.extend_from_slice(data);
                    }
                    return;
                }
            }
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(framer: &mut LineFramer, chunks: &[&[u8]]) -> Vec<Result<Vec<u8>, String>> {
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk, |f| {
                out.push(f.map(<[u8]>::to_vec).map_err(|e| e.to_string()))
            });
        }
        out
    }

    #[test]
    fn splits_across_chunks_and_skips_blank_lines() {
        let mut f = LineFramer::new(100);
        let out = collect(&mut f, &[b"ab", b"c\n\n  \r\nde", b"f\n"]);
        assert_eq!(out, vec![Ok(b"abc".to_vec()), Ok(b"def".to_vec())]);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn a_line_exactly_at_the_limit_passes() {
        let mut f = LineFramer::new(3);
        let out = collect(&mut f, &[b"ab", b"c\nabcd\nxy\n"]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Ok(b"abc".to_vec()));
        assert!(out[1].is_err());
        assert_eq!(out[2], Ok(b"xy".to_vec()));
    }

    #[test]
    fn an_endless_line_is_cut_once_and_memory_stays_bounded() {
        let mut f = LineFramer::new(1024);
        let chunk = vec![b'x'; 4096];
        let mut errors = 0;
        for _ in 0..1000 {
            f.push(&chunk, |r| {
                assert!(r.is_err());
                errors += 1;
            });
            assert!(f.pending() <= 1024);
        }
        assert_eq!(errors, 1);
        let out = collect(&mut f, &[b"tail\nok\n"]);
        assert_eq!(out, vec![Ok(b"ok".to_vec())]);
    }
}
