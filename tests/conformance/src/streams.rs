//! The byte-stream fixtures (`docs/protocol.md` §10) shared by the Rust fixture worker and the
//! tests: the pattern every SDK's fixture writes, CRC-32 (IEEE, as `zlib.crc32` in Node and
//! Python) to check what crossed, and the Rust SDK's stream jobs.

use offload_worker::{Context, JobError, Worker};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The chunk size of the fixtures' writes, and the length of [`pattern_block`].
pub const CHUNK: usize = 64 * 1024;

/// The block the `stream_make` fixtures repeat: byte `i` is `(i * 7 + 3) mod 256`.
pub fn pattern_block() -> Vec<u8> {
    (0..CHUNK).map(|i| ((i * 7 + 3) % 256) as u8).collect()
}

/// A running CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Crc32(u32);

impl Crc32 {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        let table = table();
        let mut c = !self.0;
        for &b in bytes {
            c = table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = !c;
    }

    /// The checksum so far.
    pub fn value(&self) -> u32 {
        self.0
    }
}

fn table() -> &'static [u32; 256] {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, slot) in t.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    })
}

/// The CRC-32 of `bytes` bytes of the repeated [`pattern_block`].
pub fn pattern_crc(bytes: usize) -> u32 {
    let block = pattern_block();
    let mut crc = Crc32::default();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK);
        crc.update(&block[..n]);
        left -= n;
    }
    crc.value()
}

#[derive(Deserialize)]
struct Make {
    bytes: usize,
}

/// Registers the stream fixtures: `stream_sum` (reads its input to the end: `{bytes, crc}`),
/// `stream_make` (writes `bytes` of the pattern to its output, a progress `{written}` after
/// each chunk: `{bytes, crc}`) and `stream_echo` (copies its input to its output: `{bytes}`).
pub fn stream_jobs(w: Worker) -> Worker {
    w.handler("stream_sum", |_p: Value, ctx: Context| async move {
        let mut input = ctx.input_stream()?;
        let mut buf = vec![0u8; CHUNK];
        let (mut bytes, mut crc) = (0u64, Crc32::default());
        loop {
            let n = input.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            crc.update(&buf[..n]);
        }
        Ok::<_, JobError>(json!({ "bytes": bytes, "crc": crc.value() }))
    })
    .handler("stream_make", |p: Make, ctx: Context| async move {
        let mut output = ctx.output_stream()?;
        let block = pattern_block();
        let (mut written, mut crc) = (0usize, Crc32::default());
        while written < p.bytes {
            let n = (p.bytes - written).min(CHUNK);
            output.write_all(&block[..n]).await?;
            crc.update(&block[..n]);
            written += n;
            ctx.progress(json!({ "written": written }));
        }
        output.shutdown().await?;
        Ok::<_, JobError>(json!({ "bytes": written, "crc": crc.value() }))
    })
    .handler("stream_echo", |_p: Value, ctx: Context| async move {
        let (mut input, mut output) = (ctx.input_stream()?, ctx.output_stream()?);
        let bytes = tokio::io::copy(&mut input, &mut output).await?;
        output.shutdown().await?;
        Ok::<_, JobError>(json!({ "bytes": bytes }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        let mut c = Crc32::default();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xCBF4_3926);
    }
}
