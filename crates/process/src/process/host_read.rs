//! A worker's channel read by the host's own thread (the Node addon's JavaScript thread), so
//! that an answer goes from the socket to the caller without waking a runtime thread
//! (`docs/design/node-answers-on-the-js-thread.md`).
//!
//! [`HostChannel`] owns the reading half: the socket (non-blocking, registered with no runtime)
//! and the frame buffer, behind one lock that two readers take in turn:
//!
//! - **the host** ([`HostChannel::read_ready`]), when its event loop reports the socket
//!   readable: the answers at the front of what it read go to the pool's [`SinkHook`], which
//!   completes them there; everything else (ready, progress, events, acknowledgements, handle
//!   replies, the answers behind them, protocol errors, end of file) goes to the process actor
//!   through its queue, in order;
//! - **the process actor** (`actor.rs`), which registers nothing for the socket: it handles its
//!   queue, and reads the socket itself before any decision that depends on what the worker
//!   sent (a timeout, a pool's [`drain`](crate::JobProcess::drain_input), the exit). A host
//!   thread busy in its own code delays answers, as a `child_process.fork` pipe would, but
//!   never turns a finished job into a timeout and never loses a frame.
//!
//! Order: one reader at a time decodes one byte stream, and an answer is handed to the hook
//! only while nothing this worker sent before it waits in the actor's queue (`queued`), no
//! call of the actor waits for an answer (`calls`), and the hook itself refuses it while an
//! earlier event waits in the pool's sink.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use offload_protocol::{decode_from_worker, Decoded, FromWorker, LineFramer};
use tokio::sync::mpsc;

use crate::emitter::{Answers, SinkHook};
use crate::flow::{needs_credit, Credit, EventFlow};

/// One read's buffer (the socket's default size is about 200 KiB; most reads are one frame).
const READ_CHUNK: usize = 64 * 1024;

/// The most inputs the host hands the actor before it has handled them: past it the host stops
/// reading and the actor reads the socket itself (a worker that floods its channel is slowed by
/// the socket, not buffered in memory).
pub(crate) const MAX_QUEUED: usize = 4096;

/// What the host's reads hand to the process actor, in the order the worker sent it.
#[derive(Debug)]
pub(crate) enum HostInput {
    /// A frame that is not an answer the hook took, decoded; a progress or event frame with
    /// its credit under backpressure (`flow.rs`).
    Message(FromWorker, Credit),
    /// An answer the hook left (decoded already).
    Answer(
        String,
        Result<serde_json::Value, offload_protocol::ErrorInfo>,
    ),
    /// A descriptor-passing reply (`NODE_HANDLE_*`), undecoded.
    Line(Vec<u8>),
    /// A frame that breaks the protocol.
    Violation(String),
    /// The channel closed in the middle of a frame: a violation, unless the supervisor killed
    /// the worker.
    Cut(String),
    /// The worker closed its end (or the read failed): nothing more will come.
    End,
    /// The host stopped reading ([`MAX_QUEUED`]): the actor reads the socket itself once it
    /// has handled what is ahead of this (not counted in `queued`).
    Backlog,
}

/// Where a [`HostChannel::read_ready`] leaves the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRead {
    /// Keep watching the socket.
    Open,
    /// Backpressure: what was read waits for credits (`flow.rs`). Stop watching the socket;
    /// the channel's [`HostChannel::on_resume`] callback asks for a read once credits are back.
    Paused,
    /// The channel is closed (end of file, a protocol error, or the process actor took the
    /// reading back at the worker's exit): stop watching and drop the channel.
    Closed,
}

struct State {
    /// `None` once closed.
    stream: Option<UnixStream>,
    framer: LineFramer,
    buf: Vec<u8>,
    /// Inputs read that wait for a credit (the first needs one), in order.
    held: VecDeque<HostInput>,
}

/// Asks the host for a read of a channel whose inputs waited for credits.
type Resume = Arc<dyn Fn(Arc<HostChannel>) + Send + Sync>;

/// The reading half of a worker's channel, read by the host (see the module docs). Given by
/// [`JobProcess::host_channel`](crate::JobProcess::host_channel) for a process started with
/// [`ProcessOptions::host_read`](crate::ProcessOptions::host_read).
pub struct HostChannel {
    pid: u32,
    /// A duplicate of the socket for the host's event loop to watch; open as long as this is.
    watch: OwnedFd,
    state: Mutex<State>,
    /// Inputs handed to the actor and not handled yet.
    queued: AtomicUsize,
    /// Calls of the actor waiting for an answer: meanwhile every answer goes to the actor.
    calls: AtomicUsize,
    /// The actor stopped reading (a protocol violation, the end of the process).
    stopped: AtomicBool,
    /// A [`HostInput::Backlog`] waits in the actor's queue.
    backlog: AtomicBool,
    to_actor: mpsc::UnboundedSender<HostInput>,
    hook: Option<Arc<dyn SinkHook>>,
    /// Backpressure for progress and events.
    flow: Option<EventFlow>,
    /// Inputs wait for credits and nobody watches for them: the flow's room asks for a read.
    waiting: AtomicBool,
    resume: Mutex<Option<Resume>>,
    me: Weak<HostChannel>,
}

impl std::fmt::Debug for HostChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostChannel")
            .field("pid", &self.pid)
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl HostChannel {
    /// A channel over `stream` (made non-blocking here); the receiver is the actor's queue.
    pub(crate) fn new(
        pid: u32,
        stream: UnixStream,
        max_frame: usize,
        hook: Option<Arc<dyn SinkHook>>,
        flow: Option<EventFlow>,
    ) -> io::Result<(Arc<Self>, mpsc::UnboundedReceiver<HostInput>)> {
        stream.set_nonblocking(true)?;
        let watch = OwnedFd::from(stream.try_clone()?);
        let (to_actor, rx) = mpsc::unbounded_channel();
        let channel = Arc::new_cyclic(|me| Self {
            pid,
            watch,
            state: Mutex::new(State {
                stream: Some(stream),
                framer: LineFramer::new(max_frame),
                buf: Vec::new(),
                held: VecDeque::new(),
            }),
            queued: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            backlog: AtomicBool::new(false),
            to_actor,
            hook,
            flow,
            waiting: AtomicBool::new(false),
            resume: Mutex::new(None),
            me: me.clone(),
        });
        if let Some(flow) = &channel.flow {
            let me = Arc::downgrade(&channel);
            flow.on_room(move || {
                if let Some(ch) = me.upgrade() {
                    ch.resume_if_waiting();
                }
            });
        }
        Ok((channel, rx))
    }

    /// `f` is called (from any thread) with this channel when inputs that waited for credits
    /// can go on: call [`read_ready`](Self::read_ready) on the host's thread then, and watch
    /// the socket again unless it says [`HostRead::Paused`]. Without it, such a channel is
    /// read again only when its socket is readable.
    pub fn on_resume(&self, f: impl Fn(Arc<HostChannel>) + Send + Sync + 'static) {
        *self.resume.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(f));
    }

    fn resume_if_waiting(&self) {
        if !self.waiting.swap(false, Ordering::AcqRel) {
            return;
        }
        let f = self
            .resume
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let (Some(f), Some(me)) = (f, self.me.upgrade()) {
            f(me);
        }
    }

    /// After a read (the host's or the actor's) that left inputs waiting for credits: the
    /// flow's room resumes them; if credits came back meanwhile, now.
    pub(crate) fn wait_for_credits(&self) {
        self.waiting.store(true, Ordering::Release);
        if self.flow.as_ref().is_some_and(|f| !f.exhausted()) {
            self.resume_if_waiting();
        }
    }

    /// The worker's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Reads what the socket holds (call it when the socket is
    /// readable; the host's event loop watches [`as_fd`](AsFd::as_fd)). Answers are completed
    /// on the calling thread when nothing is ahead of them; the rest goes to the actor.
    pub fn read_ready(&self) -> HostRead {
        let mut st = self.lock();
        if self.stopped.load(Ordering::Acquire) {
            st.0.stream = None;
            st.0.held.clear();
        }
        if st.0.stream.is_some() && self.queued.load(Ordering::Acquire) >= MAX_QUEUED {
            // The actor is behind: it reads the socket itself once it caught up.
            if !self.backlog.swap(true, Ordering::AcqRel)
                && self.to_actor.send(HostInput::Backlog).is_err()
            {
                self.backlog.store(false, Ordering::Release);
            }
            return HostRead::Open;
        }
        let room = MAX_QUEUED - self.queued.load(Ordering::Acquire).min(MAX_QUEUED);
        let flow = self.flow.as_ref().map(|f| (f, false));
        let Some(inputs) = read_frames(&mut st.0, room, flow) else {
            return HostRead::Closed;
        };
        self.route(inputs);
        if !st.0.held.is_empty() {
            drop(st);
            self.wait_for_credits();
            HostRead::Paused
        } else if st.0.stream.is_some() {
            HostRead::Open
        } else {
            HostRead::Closed
        }
    }

    /// The worker sent something nobody has handled yet: inputs in the actor's queue, or bytes
    /// in the socket. Never blocks (the pool asks it under its own lock).
    pub fn input_pending(&self) -> bool {
        if self.queued.load(Ordering::Acquire) > 0 {
            return true;
        }
        if self.stopped.load(Ordering::Acquire) {
            return false;
        }
        let open = match self.state.try_lock() {
            Ok(st) if !st.held.is_empty() => return true,
            Ok(st) => st.stream.is_some(),
            // A reader holds it: it is reading what is there.
            Err(_) => return true,
        };
        open && readable(self.watch.as_fd())
    }

    pub(crate) fn lock(&self) -> ReadLock<'_> {
        ReadLock(self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads what the socket holds for the actor itself (it holds `lock`): every input, in
    /// order, without the queue.
    /// With `force`, past the backpressure bound (the exit, its listeners stopped taking
    /// events): what waited for credits and what the socket holds take them regardless.
    pub(crate) fn read_for_actor(&self, lock: &mut ReadLock<'_>, force: bool) -> Vec<HostInput> {
        let flow = self.flow.as_ref().map(|f| (f, force));
        read_frames(&mut lock.0, MAX_QUEUED, flow).unwrap_or_default()
    }

    /// Inputs read wait for credits (the actor's read leaves them to the host's next one).
    pub(crate) fn holds(lock: &ReadLock<'_>) -> bool {
        !lock.0.held.is_empty()
    }

    /// The actor reads nothing more (a protocol violation, the end of the process): the
    /// host's next read closes the socket and says [`HostRead::Closed`].
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// The actor handled one input of its queue.
    pub(crate) fn handled(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// The actor took the [`HostInput::Backlog`]: the host may ask again.
    pub(crate) fn backlog_taken(&self) {
        self.backlog.store(false, Ordering::Release);
    }

    /// How many of the actor's calls wait for an answer.
    pub(crate) fn set_calls(&self, n: usize) {
        self.calls.store(n, Ordering::Release);
    }

    /// The host's inputs: the leading answers to the hook (what it leaves, and everything
    /// after, to the actor, in order).
    fn route(&self, inputs: Vec<HostInput>) {
        let mut inputs = inputs.into_iter().peekable();
        let direct = self.hook.as_ref().filter(|_| {
            self.queued.load(Ordering::Acquire) == 0 && self.calls.load(Ordering::Acquire) == 0
        });
        if let Some(hook) = direct {
            let mut answers: Answers = Vec::new();
            while let Some(HostInput::Message(FromWorker::Result(_) | FromWorker::Error(_), _)) =
                inputs.peek()
            {
                match inputs.next() {
                    Some(HostInput::Message(FromWorker::Result(r), _)) => {
                        answers.push((r.id, Ok(r.value)));
                    }
                    Some(HostInput::Message(FromWorker::Error(e), _)) => {
                        answers.push((e.id, Err(e.error)));
                    }
                    _ => unreachable!("peeked an answer"),
                }
            }
            if !answers.is_empty() {
                hook.answers(self.pid, &mut answers);
                for (id, result) in answers {
                    self.send(HostInput::Answer(id, result));
                }
            }
        }
        for input in inputs {
            self.send(input);
        }
    }

    fn send(&self, input: HostInput) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.to_actor.send(input).is_err() {
            // The actor is gone: nobody will handle it.
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl AsFd for HostChannel {
    /// The socket to watch for readability (a duplicate: never read it directly).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.watch.as_fd()
    }
}

/// The reading half, held by one reader.
pub(crate) struct ReadLock<'a>(MutexGuard<'a, State>);

/// Inputs decoded from the socket, in order: each progress or event takes a credit; from the
/// first that finds none, everything waits in `held`. Nothing after a protocol violation
/// counts.
struct Taker<'a> {
    inputs: Vec<HostInput>,
    held: &'a mut VecDeque<HostInput>,
    /// The flow, and whether credits are forced past its bound.
    flow: Option<(&'a EventFlow, bool)>,
    violated: bool,
}

impl Taker<'_> {
    fn push(&mut self, input: HostInput) {
        if self.violated {
            return;
        }
        self.violated = matches!(input, HostInput::Violation(_));
        if !self.held.is_empty() {
            return self.held.push_back(input);
        }
        match (input, self.flow) {
            (HostInput::Message(m, _), Some(flow)) if needs_credit(&m) => match take(flow) {
                Some(c) => self.inputs.push(HostInput::Message(m, c)),
                None => self
                    .held
                    .push_back(HostInput::Message(m, Credit::default())),
            },
            (input, _) => self.inputs.push(input),
        }
    }

    /// What waited, while credits last; false if some still wait.
    fn take_held(&mut self) -> bool {
        while let Some(input) = self.held.pop_front() {
            match (input, self.flow) {
                (HostInput::Message(m, c), Some(flow)) if !c.is_held() && needs_credit(&m) => {
                    match take(flow) {
                        Some(c) => self.inputs.push(HostInput::Message(m, c)),
                        None => {
                            self.held.push_front(HostInput::Message(m, c));
                            return false;
                        }
                    }
                }
                (input, _) => self.inputs.push(input),
            }
        }
        true
    }
}

fn take((flow, force): (&EventFlow, bool)) -> Option<Credit> {
    if force {
        Some(flow.force())
    } else {
        flow.take()
    }
}

/// Reads what the socket holds (until a read returns less than the buffer, or would block, or
/// at least `room` inputs came: a worker writing without pause cannot keep its reader here, or
/// an input waits for a credit), decoding what came, after what waited for credits; `None`
/// when already closed. End of file (or a failed read) closes the state and ends the list with
/// [`HostInput::End`]; so does a frame that breaks the protocol (nothing after it is read).
fn read_frames(
    st: &mut State,
    room: usize,
    flow: Option<(&EventFlow, bool)>,
) -> Option<Vec<HostInput>> {
    let State {
        stream,
        framer,
        buf,
        held,
    } = st;
    if stream.is_none() && held.is_empty() {
        return None;
    }
    let mut t = Taker {
        inputs: Vec::new(),
        held,
        flow,
        violated: false,
    };
    if !t.take_held() {
        return Some(t.inputs);
    }
    let Some(s) = stream.as_mut() else {
        // The end was read already: it was among what waited.
        return Some(t.inputs);
    };
    if buf.is_empty() {
        buf.resize(READ_CHUNK, 0);
    }
    loop {
        match s.read(buf) {
            Ok(0) => {
                if framer.pending() > 0 {
                    t.push(HostInput::Cut(format!(
                        "channel closed in the middle of a frame ({} bytes without a newline)",
                        framer.pending()
                    )));
                }
                t.push(HostInput::End);
                *stream = None;
                break;
            }
            Ok(n) => {
                framer.push(&buf[..n], |frame| {
                    if let Some(input) = decode(frame) {
                        t.push(input);
                    }
                });
                if n < buf.len() || t.inputs.len() >= room || !t.held.is_empty() || t.violated {
                    // The socket held less than the buffer: it is empty now (a read to
                    // `WouldBlock` would cost one more system call per round trip). What comes
                    // next makes it readable again.
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!(error = %e, "worker channel read failed");
                t.push(HostInput::End);
                *stream = None;
                break;
            }
        }
    }
    if t.violated {
        *stream = None;
    }
    Some(t.inputs)
}

/// One frame as the actor takes it; `None` for a frame to ignore (an unknown `type`).
fn decode(frame: Result<&[u8], offload_protocol::DecodeError>) -> Option<HostInput> {
    let line = match frame {
        Ok(line) => line,
        Err(e) => return Some(HostInput::Violation(e.to_string())),
    };
    if line.windows(12).any(|w| w == b"NODE_HANDLE_") {
        return Some(HostInput::Line(line.to_vec()));
    }
    match decode_from_worker(line) {
        Ok(Decoded::Message(m)) => Some(HostInput::Message(m, Credit::default())),
        Ok(Decoded::Ignored { reason }) => {
            tracing::debug!(%reason, "frame ignored");
            None
        }
        Err(e) => Some(HostInput::Violation(e.to_string())),
    }
}

/// The socket has bytes (or its end of file) to read.
fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid `pollfd`, a zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn channel() -> (
        Arc<HostChannel>,
        mpsc::UnboundedReceiver<HostInput>,
        UnixStream,
    ) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let (ch, rx) = HostChannel::new(7, ours, 1 << 20, None, None).unwrap();
        (ch, rx, theirs)
    }

    #[test]
    fn frames_go_to_the_actor_in_order_then_the_end() {
        let (ch, mut rx, mut theirs) = channel();
        theirs
            .write_all(b"{\"type\":\"progress\",\"id\":\"j1\",\"data\":1}\n{\"type\":\"result\",\"id\":\"j1\",\"value\":2}\n")
            .unwrap();
        assert_eq!(ch.read_ready(), HostRead::Open);
        assert!(ch.input_pending());
        assert!(matches!(
            rx.try_recv(),
            Ok(HostInput::Message(FromWorker::Progress(_), _))
        ));
        // No hook: the answer goes to the actor too, behind the progress.
        assert!(matches!(
            rx.try_recv(),
            Ok(HostInput::Message(FromWorker::Result(_), _))
        ));
        drop(theirs);
        assert_eq!(ch.read_ready(), HostRead::Closed);
        assert!(matches!(rx.try_recv(), Ok(HostInput::End)));
    }

    #[test]
    fn a_frame_cut_by_the_end_of_file_is_reported_as_cut() {
        let (ch, mut rx, mut theirs) = channel();
        theirs.write_all(b"{\"type\":\"res").unwrap();
        drop(theirs);
        // The bytes, then (the socket still readable) the end of file.
        assert_eq!(ch.read_ready(), HostRead::Open);
        assert_eq!(ch.read_ready(), HostRead::Closed);
        assert!(matches!(rx.try_recv(), Ok(HostInput::Cut(_))));
    }

    #[test]
    fn a_flooding_worker_is_not_buffered_past_the_bound() {
        let (ch, mut rx, mut theirs) = channel();
        let frame = b"{\"type\":\"progress\",\"id\":\"j1\",\"data\":0}\n";
        let per_read = READ_CHUNK / frame.len() + 1;
        // More than the bound, written in large writes by a thread (which blocks while the
        // socket is full, until the end of the test).
        let writer = std::thread::spawn(move || {
            let all = frame.repeat(MAX_QUEUED + 4 * per_read);
            let _ = theirs.write_all(&all);
            theirs
        });
        let mut backlogs = 0;
        let mut inputs = 0;
        for _ in 0..10_000 {
            ch.read_ready();
            while let Ok(input) = rx.try_recv() {
                match input {
                    HostInput::Backlog => backlogs += 1,
                    _ => inputs += 1,
                }
            }
            if inputs >= MAX_QUEUED {
                break;
            }
            std::thread::yield_now();
        }
        // Nothing handled them (`handled` never called): the host stopped at the bound and
        // asked the actor, once, to read the socket itself.
        assert!(ch.queued.load(Ordering::Acquire) >= MAX_QUEUED);
        assert!(inputs < MAX_QUEUED + 2 * per_read, "{inputs} inputs read");
        for _ in 0..100 {
            assert_eq!(ch.read_ready(), HostRead::Open);
        }
        while let Ok(input) = rx.try_recv() {
            assert!(matches!(input, HostInput::Backlog));
            backlogs += 1;
        }
        assert_eq!(backlogs, 1);
        // The actor read it all: the host reads again.
        for _ in 0..inputs {
            ch.handled();
        }
        ch.backlog_taken();
        drop(ch.lock());
        let mut more = false;
        for _ in 0..10_000 {
            ch.read_ready();
            if rx.try_recv().is_ok() {
                more = true;
                break;
            }
            std::thread::yield_now();
        }
        assert!(more, "the host did not read again");
        // Unblock the writer: read the rest, then its end of file.
        ch.stop();
        drop(rx);
        drop(ch);
        drop(writer);
    }
}
