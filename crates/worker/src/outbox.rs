//! The channel's writing side: frames queue here and one task writes them in order.

use offload_protocol::{encode, EncodeError, FromWorker};
use tokio::sync::mpsc;

/// A cheap, cloneable handle that queues frames for the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    max_frame: usize,
}

impl Outbox {
    /// Starts the writer task on `sink`; it ends when every `Outbox` is dropped.
    pub(crate) fn start<W>(sink: W, max_frame: usize) -> (Self, tokio::task::JoinHandle<()>)
    where
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer = tokio::spawn(async move {
            // A write error means the supervisor is gone; the reader sees EOF and exits.
            let _ = offload_protocol::write_frames(rx, sink).await;
        });
        (Self { tx, max_frame }, writer)
    }

    /// Queues `msg`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::FrameTooLarge`] when it would exceed the frame limit; nothing is sent.
    pub(crate) fn try_send(&self, msg: &FromWorker) -> Result<(), EncodeError> {
        let frame = encode(msg, self.max_frame)?;
        let _ = self.tx.send(frame);
        Ok(())
    }

    /// Queues `msg`, dropping it (with a note on stderr) if it is too large.
    pub(crate) fn send(&self, msg: &FromWorker) {
        if let Err(e) = self.try_send(msg) {
            eprintln!("offload worker: message not sent: {e}");
        }
    }
}
