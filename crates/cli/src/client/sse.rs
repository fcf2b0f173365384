//! The daemon's event stream (`GET /v1/events`): the `text/event-stream` format parsed as bytes
//! arrive, and the stream read event by event.

use super::{error_chain, ClientError};

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SseEvent {
    /// The `event:` name (`message` when none was given).
    pub(crate) name: String,
    /// The `data:` lines, joined by newlines.
    pub(crate) data: String,
}

/// `GET /v1/events`, read event by event.
#[derive(Debug)]
pub(crate) struct EventStream {
    resp: reqwest::Response,
    parser: SseParser,
}

impl EventStream {
    pub(super) fn new(resp: reqwest::Response) -> Self {
        Self {
            resp,
            parser: SseParser::default(),
        }
    }

    /// The next event; `None` when the daemon closed the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<SseEvent>, ClientError> {
        loop {
            if let Some(ev) = self.parser.next_event() {
                return Ok(Some(ev));
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.parser.feed(&bytes),
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(ClientError::Transport {
                        url: self.resp.url().to_string(),
                        reason: error_chain(&e),
                    })
                }
            }
        }
    }
}

/// The `text/event-stream` format, parsed from bytes as they arrive (WHATWG HTML, "Server-sent
/// events"): lines end with LF, CRLF or CR; `:` starts a comment; a blank line dispatches.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    name: String,
    data: Vec<String>,
    ready: std::collections::VecDeque<SseEvent>,
    /// The previous chunk ended with CR: a LF at the start of the next one belongs to it.
    after_cr: bool,
}

impl SseParser {
    /// Takes more bytes.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.buf);
                    self.line(&String::from_utf8_lossy(&line));
                }
                _ => self.buf.push(b),
            }
        }
    }

    /// The next complete event.
    pub(crate) fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            let name = std::mem::take(&mut self.name);
            let data = std::mem::take(&mut self.data);
            if !data.is_empty() {
                self.ready.push_back(SseEvent {
                    name: if name.is_empty() {
                        "message".into()
                    } else {
                        name
                    },
                    data: data.join("\n"),
                });
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.name),
            "data" => self.data.push(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c);
            while let Some(ev) = p.next_event() {
                out.push(ev);
            }
        }
        out
    }

    fn ev(name: &str, data: &str) -> SseEvent {
        SseEvent {
            name: name.into(),
            data: data.into(),
        }
    }

    #[test]
    fn sse_events_are_parsed_across_chunks_and_line_endings() {
        let all = parse(&[
            b"event: job\ndata: {\"a\":1}\n\n:keep-alive\n\n",
            b"event: progress\r\nda",
            b"ta: {\"b\":2}\r",
            b"\n\r\ndata:x\ndata: y\n\nevent: ignored-without-data\n\n",
        ]);
        assert_eq!(
            all,
            vec![
                ev("job", "{\"a\":1}"),
                ev("progress", "{\"b\":2}"),
                ev("message", "x\ny")
            ]
        );
    }
}
