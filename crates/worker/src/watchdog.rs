//! The watchdog thread: reads the channel only while the runtime's thread is held.
//!
//! The worker's runtime is single-threaded and reads the channel itself ([`crate::inbound`]),
//! so a handler that blocks its thread (never awaits) would keep a `cancel` and the end of the
//! channel from being read. This thread watches for that without a wake-up per round trip:
//!
//! - While no job runs it sleeps in `poll` on the wake-up socket (a job start rouses it) and on
//!   the channel's `POLLRDHUP` only (the kernel does not wake it for data).
//! - While jobs run it looks every [`TICK`]. When one handler's poll has lasted from one look
//!   to the next ([`Shared::polls`] odd and unchanged), the handler holds the runtime's thread:
//!   the watchdog takes over at once, before anything comes. It also takes over when the
//!   channel has had unread data for a whole tick and the runtime's thread has not read
//!   meanwhile ([`Channel::progress`]: something else holds it). Taking over, it waits on the
//!   channel itself, reads, fires every `cancel`'s token at once, and queues the frames for the
//!   runtime (in order: under the reading lock), until the runtime reads again or polls another
//!   handler. A handler that blocks its thread thus sees a `cancel` at once once it has blocked
//!   for one or two ticks, and within two ticks before that.
//! - At the end of the channel read while the runtime's thread is held it cancels every job
//!   and, under [`Worker::run`], ends the process itself.
//!
//! [`Worker::run`]: crate::Worker::run
#![allow(unsafe_code)]

use std::io::{self, Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::context::StopReason;
use crate::inbound::{Channel, Inbound, OnEnd, Read};
use crate::shared::Shared;

/// How often the watchdog looks while jobs run.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// The runtime's handle on the watchdog: rouses it when a job starts.
pub(crate) struct Rouser {
    parked: Arc<AtomicBool>,
    wake: UnixStream,
}

impl Rouser {
    /// Call after registering a job: wakes the watchdog if it sleeps (once per idle period).
    pub(crate) fn rouse(&self) {
        if self.parked.swap(false, Ordering::SeqCst) {
            let _ = (&self.wake).write(&[1]);
        }
    }
}

/// Starts the watchdog thread.
pub(crate) fn start(
    channel: Arc<Channel>,
    shared: Arc<Shared>,
    tx: UnboundedSender<Inbound>,
    on_end: OnEnd,
) -> io::Result<Rouser> {
    let (wake, wake_rx) = UnixStream::pair()?;
    wake.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    let parked = Arc::new(AtomicBool::new(false));
    let dog = Watchdog {
        channel,
        shared,
        tx,
        on_end,
        parked: Arc::clone(&parked),
        wake_rx,
    };
    std::thread::Builder::new()
        .name("offload-watchdog".into())
        .spawn(move || dog.run())?;
    Ok(Rouser { parked, wake })
}

struct Watchdog {
    channel: Arc<Channel>,
    shared: Arc<Shared>,
    tx: UnboundedSender<Inbound>,
    on_end: OnEnd,
    parked: Arc<AtomicBool>,
    wake_rx: UnixStream,
}

impl Watchdog {
    fn over(&self) -> bool {
        self.channel.ended.load(Ordering::SeqCst) || self.shared.finished.load(Ordering::SeqCst)
    }

    fn run(self) {
        let sock = self.channel.stream.as_raw_fd();
        let wake = self.wake_rx.as_raw_fd();
        let mut last = self.channel.progress.load(Ordering::SeqCst);
        // The channel had unread data at the previous look, with the same progress.
        let mut armed = false;
        // `Shared::polls` at the previous look.
        let mut last_polls = self.shared.polls.load(Ordering::Relaxed);
        // `POLLRDHUP` came: the channel is not polled for it again (it stays set).
        let mut hup = false;
        loop {
            if self.over() {
                return;
            }
            let mut timeout = TICK.as_millis() as libc::c_int;
            if !hup {
                self.parked.store(true, Ordering::SeqCst);
                if self.shared.jobs().is_empty() {
                    timeout = -1;
                    armed = false;
                } else {
                    self.parked.store(false, Ordering::SeqCst);
                }
            }
            let mut fds = [
                pollfd(wake, libc::POLLIN),
                pollfd(if hup { -1 } else { sock }, libc::POLLRDHUP),
            ];
            poll(&mut fds, timeout);
            if fds[0].revents != 0 {
                let _ = (&self.wake_rx).read(&mut [0u8; 64]);
            }
            self.parked.store(false, Ordering::SeqCst);
            if fds[1].revents != 0 {
                hup = true;
            }
            if self.over() {
                return;
            }
            let now = self.channel.progress.load(Ordering::SeqCst);
            let polls = self.shared.polls.load(Ordering::Relaxed);
            let same_poll = polls % 2 == 1 && polls == last_polls;
            last_polls = polls;
            if same_poll {
                // One handler's poll has lasted a whole tick: it holds the runtime's thread.
                // Read in its stead from now on, before anything comes.
                if self.take_over(now, polls) {
                    return;
                }
                last = self.channel.progress.load(Ordering::SeqCst);
                armed = false;
                continue;
            }
            if now != last {
                last = now;
                armed = false;
                continue;
            }
            let mut probe = [pollfd(sock, libc::POLLIN | libc::POLLRDHUP)];
            poll(&mut probe, 0);
            if probe[0].revents == 0 {
                armed = false;
                continue;
            }
            if !armed {
                armed = true;
                continue;
            }
            // Unread data for a whole tick and the runtime's thread did not read: something
            // holds it (not a handler's poll, or one that began since the last look).
            if self.take_over(last, polls) {
                return;
            }
            last = self.channel.progress.load(Ordering::SeqCst);
            armed = false;
        }
    }

    /// Reads in the runtime's stead until it reads again or polls another handler (`false`),
    /// or the channel ends (`true`: the thread ends).
    fn take_over(&self, progress: u64, polls: u64) -> bool {
        let sock = self.channel.stream.as_raw_fd();
        let mut batch = Vec::new();
        loop {
            let end = {
                let mut st = self.channel.lock();
                let end = loop {
                    match self.channel.read_once(&mut st, &self.shared, &mut batch) {
                        Read::More => {}
                        Read::Drained => break None,
                        Read::End(end) => break Some(end),
                    }
                };
                // Queued under the lock: the runtime empties the queue before it reads.
                for msg in batch.drain(..) {
                    let _ = self.tx.send(msg);
                }
                if end.is_some() {
                    self.channel.ended.store(true, Ordering::SeqCst);
                }
                end
            };
            if let Some(end) = end {
                self.on_end(end);
                return true;
            }
            if self.channel.progress.load(Ordering::SeqCst) != progress
                || self.shared.polls.load(Ordering::Relaxed) != polls
            {
                return false;
            }
            let mut fds = [pollfd(sock, libc::POLLIN | libc::POLLRDHUP)];
            poll(&mut fds, TICK.as_millis() as libc::c_int);
            if self.shared.finished.load(Ordering::SeqCst) {
                return true;
            }
        }
    }

    fn on_end(&self, end: Inbound) {
        for (ctx, _) in self.shared.jobs().values() {
            ctx.stop(StopReason::Cancelled);
        }
        if self.shared.finished.load(Ordering::SeqCst) {
            return;
        }
        if self.on_end == OnEnd::Exit {
            match &end {
                Inbound::Protocol(e) => {
                    eprintln!("offload worker: protocol error: {e}");
                    std::process::exit(2)
                }
                _ => std::process::exit(0),
            }
        }
        let _ = self.tx.send(end);
    }
}

fn pollfd(fd: libc::c_int, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// `poll`, retried on `EINTR`; other errors end the wait (the next look decides).
fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) {
    loop {
        // SAFETY: `fds` is a valid slice of pollfd for the duration of the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::Mutex;

    use offload_protocol::ToWorker;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::context::{Context, ContextInner};
    use crate::outbox::Outbox;

    fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Inbound>) -> Inbound {
        rx.blocking_recv().expect("the watchdog hands frames over")
    }

    /// The runtime's thread never reads here (its progress never moves, as under a handler
    /// that blocks it): the watchdog reads in its stead, fires the cancel's token before it
    /// hands the frame over, keeps the frames' order, and reports the end of the channel.
    #[test]
    fn a_held_runtime_s_frames_are_read_by_the_watchdog_in_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _in_rt = rt.enter();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let (outbox, _writer) = Outbox::start(ours.try_clone().unwrap(), 1 << 20);
        let shared = Arc::new(Shared::new());
        let ctx = Context {
            inner: Arc::new(ContextInner {
                id: "j1".into(),
                job: "block".into(),
                deadline: None,
                token: CancellationToken::new(),
                reason: Mutex::new(None),
                outbox,
                fds: Mutex::new(Vec::new()),
                streams: Mutex::new(crate::streams::RunStreams::default()),
            }),
        };
        shared.jobs().insert("j1".into(), ctx.clone(), true);
        let channel = Arc::new(Channel::new(ours, 1 << 20));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let rouser = start(
            Arc::clone(&channel),
            Arc::clone(&shared),
            tx,
            OnEnd::Forward,
        )
        .unwrap();
        rouser.rouse();

        theirs
            .write_all(b"{\"type\":\"run\",\"id\":\"j2\",\"job\":\"x\"}\n{\"type\":\"cancel\",\"id\":\"j1\"}\n")
            .unwrap();
        assert!(matches!(next(&mut rx), Inbound::Message(ToWorker::Run(r)) if r.id == "j2"));
        assert!(matches!(next(&mut rx), Inbound::Message(ToWorker::Cancel(c)) if c.id == "j1"));
        assert!(
            ctx.is_cancelled(),
            "the token fires before the frame is handed over"
        );

        theirs
            .write_all(b"{\"type\":\"ping\",\"id\":\"p1\"}\n")
            .unwrap();
        assert!(matches!(next(&mut rx), Inbound::Message(ToWorker::Ping(p)) if p.id == "p1"));
        drop(theirs);
        assert!(matches!(next(&mut rx), Inbound::Closed));
        assert!(channel.ended.load(Ordering::SeqCst));
    }
}
