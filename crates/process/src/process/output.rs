//! The output pumps: a job's stdout and stderr turned into bounded log lines (and the stderr
//! tail kept for error reports), or, in command mode, stdout collected as the result. Each
//! runs on a task of its own, so a job that writes a lot never slows its actor.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use super::event::{ProcessEvent, Stream};
use crate::emitter::Emitter;

/// Longest log line kept; the rest of a longer line is cut off.
pub const MAX_LOG_LINE: usize = 64 * 1024;
/// Stderr lines kept for error reports.
const STDERR_TAIL_LINES: usize = 40;

/// Reads `out` line by line into log events (and the stderr tail), each line cut at
/// [`MAX_LOG_LINE`]; memory stays bounded however much the job writes.
pub(super) async fn pump_lines<R: AsyncRead + Unpin>(
    out: R,
    stream: Stream,
    pid: u32,
    emitter: Emitter,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
) {
    let mut reader = BufReader::with_capacity(16 * 1024, out);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let mut truncated = false;
        let mut read_any = false;
        let mut eof = false;
        // Read one line without letting it grow past the limit.
        loop {
            let buf = match reader.fill_buf().await {
                Ok(b) => b,
                Err(_) => return,
            };
            if buf.is_empty() {
                eof = true;
                break;
            }
            read_any = true;
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let content = &buf[..if done { take - 1 } else { take }];
            let room = MAX_LOG_LINE.saturating_sub(line.len());
            if content.len() > room {
                truncated = true;
            }
            line.extend_from_slice(&content[..content.len().min(room)]);
            reader.consume(take);
            if done {
                break;
            }
        }
        if eof && !read_any {
            return;
        }
        let mut text = String::from_utf8_lossy(&line).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        if truncated {
            text.push_str(" …[truncated]");
        }
        match stream {
            Stream::Stdout => tracing::info!(target: "offload::job", pid, "{text}"),
            Stream::Stderr => tracing::warn!(target: "offload::job", pid, "{text}"),
        }
        if let Some(tail) = &tail {
            let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(text.clone());
        }
        emitter.emit(ProcessEvent::Log {
            pid,
            stream,
            line: text,
        });
        if eof {
            return;
        }
    }
}

/// Collects a command-mode program's stdout, at most `max` bytes (the rest is read and dropped).
pub(super) async fn collect_output<R: AsyncRead + Unpin>(mut out: R, max: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match out.read(&mut chunk).await {
            Ok(0) | Err(_) => return buf,
            Ok(n) => {
                let room = max.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}
