//! The writer: one thread owns the write connection and group-commits every write.
//!
//! A call is sent as a [`Request`] through a channel. The thread takes the first pending request,
//! drains whatever else is pending (up to `max_batch`), runs them all inside ONE
//! `BEGIN IMMEDIATE … COMMIT`, and only after the commit answers each caller. While one batch
//! commits (the fsync), the next one queues up: the busier the store, the bigger the batch.
//!
//! Each call must stay atomic on its own: a call that fails must leave no trace, and must not
//! fail the others. Savepoints around every call would do it, but they make SQLite copy every
//! page a call touches into a statement journal, which costs more than the work itself at
//! batch sizes of hundreds. So the batch runs optimistically without them; in the rare batch
//! where a call fails, the whole transaction is rolled back and the batch runs again with one
//! savepoint per call (requests are `FnMut` for that: a rerun computes afresh, nothing of the
//! first run was seen by anyone).
//!
//! Some calls need no `fsync` of their own ([`Writer::call_lazy`]: claims, lease renewals,
//! progress). A crash of the daemon loses none of them (the commit is in the OS's page cache);
//! a crash of the machine may, and that only means a job is claimed again or its progress is
//! older, which recovery after such a crash does anyway. They run first in a batch, in a
//! transaction committed with `PRAGMA synchronous = NORMAL` (in WAL mode: appended to the WAL,
//! not flushed), and are answered before the durable calls' commit flushes. The WAL is one file
//! written in order, so the next durable commit's flush makes every lazy commit before it
//! durable too: a job's completion is never on disk without the claim that preceded it.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::counts::Deltas;
use crate::StoreError;

/// A write call's work: runs inside the batch's transaction, notes its state changes in the
/// [`Deltas`]. May run twice (see the module docs).
pub(crate) trait Work<T>:
    FnMut(&Connection, &mut Deltas) -> Result<T, StoreError> + Send
{
}
impl<T, F: FnMut(&Connection, &mut Deltas) -> Result<T, StoreError> + Send> Work<T> for F {}

/// What the writer runs after every call, in the call's transaction (and savepoint): the
/// store's follow-up of changes its triggers leave to finish (`ops::after::release_cascade`).
pub(crate) type AfterCall = fn(&Connection) -> Result<(), StoreError>;

/// One call waiting for the writer.
trait Request: Send {
    /// Runs the call (and its [`AfterCall`]); `false` if it failed.
    fn run(&mut self, conn: &Connection, deltas: &mut Deltas) -> bool;
    /// How much work it brings (jobs, completions…), to bound a batch.
    fn weight(&self) -> usize;
    /// Whether its commit must be flushed to disk before it is answered.
    fn durable(&self) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn reply(self: Box<Self>, commit: Result<(), String>);
}

struct Call<F, T> {
    f: F,
    after: AfterCall,
    weight: usize,
    durable: bool,
    result: Option<Result<T, StoreError>>,
    tx: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Request for Call<F, T>
where
    F: Work<T>,
    T: Send,
{
    fn run(&mut self, conn: &Connection, deltas: &mut Deltas) -> bool {
        // A bug that panics fails its call, not the writer (and with it every later call).
        let (f, after) = (&mut self.f, self.after);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let value = f(conn, deltas)?;
            after(conn)?;
            Ok(value)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "a store call panicked");
            Err(StoreError::Engine(format!(
                "the store call panicked: {what}"
            )))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn weight(&self) -> usize {
        self.weight
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn reply(self: Box<Self>, commit: Result<(), String>) {
        let answer = match (commit, self.result) {
            // A call that failed on its own keeps its own error.
            (_, Some(Err(e))) => Err(e),
            (Err(e), _) => Err(StoreError::Engine(e)),
            (Ok(()), Some(Ok(v))) => Ok(v),
            (Ok(()), None) => Err(StoreError::Engine("the write was not run".into())),
        };
        // The caller may have gone (a cancelled future): nothing to do.
        let _ = self.tx.send(answer);
    }
}

/// The handle to the writer thread. Dropping it lets the thread finish the queued writes, close
/// the connection (which checkpoints the WAL) and exit; `Drop` waits for that.
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Box<dyn Request>>>,
    after: AfterCall,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer thread on `conn`, whose durable commits use `PRAGMA synchronous =
    /// durable_sync` (`"FULL"` or `"NORMAL"`: the store's option); `after` runs after every
    /// call, in its transaction.
    pub(crate) fn spawn(
        conn: Connection,
        max_batch: usize,
        durable_sync: &'static str,
        after: AfterCall,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Request>>();
        let thread = std::thread::Builder::new()
            .name("offload-store-writer".into())
            .spawn(move || run(conn, &rx, max_batch.max(1), durable_sync))
            .map_err(|e| StoreError::Engine(format!("cannot start the store's writer: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            after,
            thread: Some(thread),
        })
    }

    /// Runs `f` in the next group commit; returns its result once that commit is durable.
    /// `weight` is how many items (jobs, completions…) it handles, at least 1.
    pub(crate) async fn call<T, F>(&self, weight: usize, f: F) -> Result<T, StoreError>
    where
        F: Work<T> + 'static,
        T: Send + 'static,
    {
        self.send(weight, true, f).await
    }

    /// Like [`call`](Self::call), but answers once the commit is visible to every reader,
    /// before it is flushed to disk (see the module docs): for writes that a crash may lose.
    pub(crate) async fn call_lazy<T, F>(&self, weight: usize, f: F) -> Result<T, StoreError>
    where
        F: Work<T> + 'static,
        T: Send + 'static,
    {
        self.send(weight, false, f).await
    }

    async fn send<T, F>(&self, weight: usize, durable: bool, f: F) -> Result<T, StoreError>
    where
        F: Work<T> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let request = Box::new(Call {
            f,
            after: self.after,
            durable,
            weight: weight.max(1),
            result: None,
            tx,
        });
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(request)
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Engine("the store's writer thread has stopped".into())
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the store's writer thread panicked");
            }
        }
    }
}

/// A batch stops taking calls once they bring this many items: a transaction of a million
/// jobs would hold every other caller for seconds.
const MAX_WEIGHT: usize = 20_000;

fn run(
    mut conn: Connection,
    rx: &mpsc::Receiver<Box<dyn Request>>,
    max_batch: usize,
    durable_sync: &'static str,
) {
    let mut sync = Sync::new(durable_sync);
    let mut batch: Vec<Box<dyn Request>> = Vec::with_capacity(max_batch);
    let mut lazy: Vec<Box<dyn Request>> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut weight = first.weight();
        batch.push(first);
        while batch.len() < max_batch && weight < MAX_WEIGHT {
            match rx.try_recv() {
                Ok(r) => {
                    weight += r.weight();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        // The lazy calls first, in a commit of their own that is not flushed, so that they are
        // answered without waiting for the durable calls' flush.
        let mut i = 0;
        while i < batch.len() {
            if batch[i].durable() {
                i += 1;
            } else {
                lazy.push(batch.remove(i));
            }
        }
        if !lazy.is_empty() {
            sync.set(&conn, false);
            commit_group(&mut conn, &mut lazy);
        }
        if !batch.is_empty() {
            if sync.set(&conn, true) {
                commit_group(&mut conn, &mut batch);
            } else {
                // Never committed without the flush they were promised.
                for request in batch.drain(..) {
                    request.reply(Err(
                        "cannot make the commit durable (PRAGMA synchronous)".into()
                    ));
                }
            }
        }
    }
}

/// Commits `batch` in one transaction (again call by call if one failed) and answers each call.
fn commit_group(conn: &mut Connection, batch: &mut Vec<Box<dyn Request>>) {
    let size = batch.len();
    let commit = match run_optimistic(conn, batch) {
        Attempt::Committed => Ok(()),
        Attempt::Failed(e) => Err(e),
        Attempt::CallFailed => run_isolated(conn, batch),
    };
    if let Err(e) = &commit {
        tracing::error!(error = %e, calls = size, "store group commit failed");
    }
    for request in batch.drain(..) {
        request.reply(commit.clone());
    }
}

/// The connection's `PRAGMA synchronous`, switched between the store's setting for durable
/// commits and `NORMAL` for lazy ones (a no-op when the store's setting is `NORMAL`).
struct Sync {
    durable: &'static str,
    now_durable: bool,
}

impl Sync {
    fn new(durable: &'static str) -> Self {
        Self {
            durable,
            now_durable: true,
        }
    }

    /// Switches to the level; `false` if that failed (then it stays as it was: a lazy commit
    /// may be flushed, which is harmless; a durable one must not run).
    fn set(&mut self, conn: &Connection, durable: bool) -> bool {
        if self.now_durable == durable || self.durable.eq_ignore_ascii_case("NORMAL") {
            return true;
        }
        let level = if durable { self.durable } else { "NORMAL" };
        match conn.execute_batch(&format!("PRAGMA synchronous = {level}")) {
            Ok(()) => {
                self.now_durable = durable;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, level, "cannot set PRAGMA synchronous");
                false
            }
        }
    }
}

enum Attempt {
    Committed,
    /// The transaction failed as a whole (BEGIN or COMMIT): every call fails with this.
    Failed(String),
    /// A call failed: the transaction was rolled back, run the batch again call by call.
    CallFailed,
}

/// Runs the batch in one transaction without savepoints.
fn run_optimistic(conn: &mut Connection, batch: &mut [Box<dyn Request>]) -> Attempt {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return Attempt::Failed(e.to_string()),
    };
    let mut deltas = Deltas::default();
    for request in batch.iter_mut() {
        if !request.run(&tx, &mut deltas) {
            // Dropping the transaction rolls it back.
            return Attempt::CallFailed;
        }
    }
    if let Err(e) = deltas.flush(&tx) {
        return Attempt::Failed(e.to_string());
    }
    match tx.commit() {
        Ok(()) => Attempt::Committed,
        Err(e) => Attempt::Failed(e.to_string()),
    }
}

/// Runs the batch in one transaction, each call in its own savepoint: a failing call rolls back
/// alone. `Err` when the transaction as a whole did not commit.
fn run_isolated(conn: &mut Connection, batch: &mut [Box<dyn Request>]) -> Result<(), String> {
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let mut deltas = Deltas::default();
    for request in batch.iter_mut() {
        let sp = tx.savepoint().map_err(|e| e.to_string())?;
        let mut mine = Deltas::default();
        if request.run(&sp, &mut mine) {
            sp.commit().map_err(|e| e.to_string())?;
            deltas.merge(&mine);
        } else {
            drop(sp);
            // Some errors (a full disk, an I/O error) make SQLite roll the whole transaction
            // back: the earlier calls of the batch are lost too, say so to all.
            if tx.is_autocommit() {
                return Err("the transaction was rolled back by the engine".into());
            }
        }
    }
    deltas.flush(&tx).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    fn writer() -> Writer {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        Writer::spawn(conn, 64, "FULL", |_| Ok(())).unwrap()
    }

    fn values(conn: &Connection) -> Vec<i64> {
        let mut s = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        let rows = s.query_map([], |r| r.get("v")).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// The writer kept busy in a call of its own until `gate` is dropped: calls sent
    /// meanwhile queue up and form the next batch, in the order they were sent.
    struct Hold {
        gate: std::sync::mpsc::Sender<()>,
        done: tokio::task::JoinHandle<Result<(), StoreError>>,
    }

    async fn hold(w: &Arc<Writer>) -> Hold {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (gate, gate_rx) = std::sync::mpsc::channel::<()>();
        let w = Arc::clone(w);
        let done = tokio::spawn(async move {
            w.call(1, move |_: &Connection, _: &mut Deltas| {
                let _ = started_tx.send(());
                let _ = gate_rx.recv();
                Ok(())
            })
            .await
        });
        tokio::task::spawn_blocking(move || started_rx.recv())
            .await
            .unwrap()
            .unwrap();
        Hold { gate, done }
    }

    /// `f` polled once: a call is in the writer's queue when this returns.
    fn sent<F: std::future::Future>(f: F) -> std::pin::Pin<Box<F>> {
        let mut f = Box::pin(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        f
    }

    fn insert(v: i64, runs: &Arc<AtomicUsize>) -> impl Work<i64> + 'static {
        let runs = Arc::clone(runs);
        move |c: &Connection, _: &mut Deltas| {
            runs.fetch_add(1, Ordering::SeqCst);
            c.execute("INSERT INTO t (v) VALUES (?1)", [v])
                .map_err(super::super::engine)?;
            Ok(v)
        }
    }

    /// A failing call in a group commit leaves no trace and does not fail the others, which run
    /// again (isolated) and commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_call_rolls_back_alone() {
        let w = Arc::new(writer());
        let held = hold(&w).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let a = sent(w.call(1, insert(1, &runs)));
        let failing = sent(w.call(
            1,
            |c: &Connection, _: &mut Deltas| -> Result<(), StoreError> {
                c.execute("INSERT INTO t (v) VALUES (666)", [])
                    .map_err(super::super::engine)?;
                Err(StoreError::Conflict("no".into()))
            },
        ));
        let b = sent(w.call(1, insert(2, &runs)));
        drop(held.gate);
        held.done.await.unwrap().unwrap();
        assert_eq!(a.await.unwrap(), 1);
        assert!(matches!(failing.await, Err(StoreError::Conflict(m)) if m == "no"));
        assert_eq!(b.await.unwrap(), 2);
        // The good calls ran again, isolated, after the optimistic run stopped at the failure.
        assert!((3..=4).contains(&runs.load(Ordering::SeqCst)));
        let seen = w
            .call(1, |c: &Connection, _: &mut Deltas| Ok(values(c)))
            .await;
        assert_eq!(seen.unwrap(), [1, 2]);
    }

    fn synchronous(c: &Connection) -> i64 {
        c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap()
    }

    /// Lazy calls commit with `synchronous = NORMAL` (1), durable ones with the store's `FULL`
    /// (2), also when both kinds share a batch, where the lazy ones run (and commit) first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lazy_calls_commit_first_unflushed_and_durable_ones_flushed() {
        let w = Arc::new(writer());
        let held = hold(&w).await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let noting = |name: &'static str| {
            let order = Arc::clone(&order);
            move |c: &Connection, _: &mut Deltas| {
                order.lock().unwrap().push(name);
                Ok(synchronous(c))
            }
        };
        let durable = sent(w.call(1, noting("durable")));
        let lazy = sent(w.call_lazy(1, noting("lazy")));
        drop(held.gate);
        held.done.await.unwrap().unwrap();
        assert_eq!(lazy.await.unwrap(), 1, "lazy: NORMAL");
        assert_eq!(durable.await.unwrap(), 2, "durable: FULL");
        assert_eq!(*order.lock().unwrap(), ["lazy", "durable"]);
        // Back to FULL for a durable call alone, and NORMAL for a lazy one alone.
        let f = |c: &Connection, _: &mut Deltas| Ok(synchronous(c));
        assert_eq!(w.call(1, f).await.unwrap(), 2);
        assert_eq!(w.call_lazy(1, f).await.unwrap(), 1);
        assert_eq!(w.call(1, f).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_panicking_call_fails_alone() {
        let w = writer();
        let err = w
            .call(
                1,
                |_: &Connection, _: &mut Deltas| -> Result<(), StoreError> { panic!("a bug") },
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("a bug"), "{err}");
        let v = w
            .call(1, |c: &Connection, _: &mut Deltas| {
                c.execute("INSERT INTO t (v) VALUES (7)", [])
                    .map_err(super::super::engine)
            })
            .await;
        assert_eq!(v.unwrap(), 1);
    }

    #[tokio::test]
    async fn calls_after_the_batch_still_work_and_drop_joins() {
        let w = writer();
        for v in 0..3 {
            w.call(1, move |c: &Connection, _: &mut Deltas| {
                c.execute("INSERT INTO t (v) VALUES (?1)", [v])
                    .map_err(super::super::engine)
            })
            .await
            .unwrap();
        }
        let seen = w
            .call(1, |c: &Connection, _: &mut Deltas| Ok(values(c)))
            .await;
        assert_eq!(seen.unwrap(), [0, 1, 2]);
        drop(w);
    }
}
