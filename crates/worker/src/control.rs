//! The worker's control side: flow control (`busy` / `ready`), the heap figures of a `pong`,
//! and the hooks of a soft kill (`shutdown`) and a hard kill (the `kill` notice).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use offload_protocol::{Event, FromWorker, Pong, Ready, Receiver};
use serde::Serialize;
use serde_json::Value;

use crate::context::Context;
use crate::outbox::Outbox;

/// A shutdown hook: runs when the supervisor asks the worker to stop gracefully.
pub(crate) type ShutdownHook =
    Arc<dyn Fn(Control) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;
/// A hard-kill hook: runs on the `kill` notice, before `SIGKILL`.
pub(crate) type KillHook = Arc<dyn Fn(&Control) + Send + Sync>;

/// The worker's own side of the channel, outside any job: flow control and events. Hooks get
/// one; [`Context::control`] gives one to a handler (to keep it, e.g. in a background task).
#[derive(Debug, Clone)]
pub struct Control {
    pub(crate) outbox: Outbox,
}

impl Control {
    /// Flow control: asks the supervisor to send no new job to this worker until
    /// [`ready`](Self::ready) (load-process-manager's `worker.busy()`). Running jobs go on.
    pub fn busy(&self) {
        send_busy(&self.outbox);
    }

    /// Flow control: takes jobs again after [`busy`](Self::busy).
    pub fn ready(&self) {
        send_ready(&self.outbox);
    }

    /// Emits a named event to the application (receiver `all`), tied to no job.
    pub fn emit(&self, name: &str, data: impl Serialize) {
        let data = serde_json::to_value(data).unwrap_or(Value::Null);
        self.outbox
            .send(&FromWorker::Event(Event::new(name, data, Receiver::All)));
    }
}

/// The least a shutdown hook gets, whatever the grace (as the runners' `unload()`).
pub(crate) const HOOK_MIN: Duration = Duration::from_secs(1);

impl Context {
    /// Flow control: asks the supervisor to send no new job to this worker until
    /// [`ready`](Self::ready) (load-process-manager's `worker.busy()`). Running jobs go on.
    pub fn busy(&self) {
        send_busy(&self.inner.outbox);
    }

    /// Flow control: takes jobs again after [`busy`](Self::busy).
    pub fn ready(&self) {
        send_ready(&self.inner.outbox);
    }

    /// The worker's [`Control`] (flow control and events outside this job).
    pub fn control(&self) -> Control {
        Control {
            outbox: self.inner.outbox.clone(),
        }
    }
}

pub(crate) fn send_busy(outbox: &Outbox) {
    outbox.send(&FromWorker::Busy);
}

pub(crate) fn send_ready(outbox: &Outbox) {
    outbox.send(&FromWorker::Ready(Ready::default()));
}

/// The `pong` for ping `id`, with the C allocator's figures where glibc tells them (the Rust
/// SDK uses the system allocator unless the program sets another: then the figures cover
/// what goes through `malloc` only).
pub(crate) fn pong(id: String) -> Pong {
    match heap() {
        Some((used, total)) => Pong::new(id).with_heap(used, total),
        None => Pong::new(id),
    }
}

/// Bytes in use and bytes reserved by glibc's malloc (`mallinfo2`: arenas plus mmapped blocks).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn heap() -> Option<(u64, u64)> {
    // SAFETY: mallinfo2 takes no arguments and returns a struct by value.
    let m = unsafe { libc::mallinfo2() };
    let used = (m.uordblks as u64).saturating_add(m.hblkhd as u64);
    let total = (m.arena as u64).saturating_add(m.hblkhd as u64);
    Some((used, total))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap() -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_heap_grows_with_an_allocation() {
        let Some((before, total)) = super::heap() else {
            return;
        };
        assert!(total >= before);
        // black_box: an optimised build may remove an allocation nothing reads.
        let block = std::hint::black_box(vec![1u8; 8 << 20]);
        let (after, _) = super::heap().unwrap();
        assert!(after >= before + (8 << 20), "{before} -> {after}");
        drop(block);
    }
}
