use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

fn writer() -> Writer {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
        .unwrap();
    Writer::spawn(conn, 64, None, |_| Ok(())).unwrap()
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

/// A writer on a file in WAL mode, whose durable calls are flushed.
fn flushing_writer(dir: &std::path::Path) -> Writer {
    let path = dir.join("w.db");
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
        .unwrap();
    Writer::spawn(conn, 64, Some(dir.join("w.db-wal")), |_| Ok(())).unwrap()
}

/// Every commit is made with `synchronous = NORMAL` (1); a durable call is answered after
/// a flush of the WAL, a lazy one without any; in a batch holding both, the lazy calls
/// commit first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_calls_are_answered_after_a_flush_lazy_ones_without() {
    let dir = tempfile::tempdir().unwrap();
    let w = Arc::new(flushing_writer(dir.path()));
    let f = |c: &Connection, _: &mut Deltas| Ok(synchronous(c));
    assert_eq!(w.call_lazy(1, f).await.unwrap(), 1);
    assert_eq!(w.flushes(), 0, "a lazy call alone is not flushed");
    let runs = Arc::new(AtomicUsize::new(0));
    assert_eq!(w.call(1, insert(5, &runs)).await.unwrap(), 5);
    assert_eq!(w.flushes(), 1, "answered after its flush");
    assert_eq!(w.call(1, f).await.unwrap(), 1);
    assert_eq!(w.flushes(), 2);

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
    assert_eq!(lazy.await.unwrap(), 1);
    assert_eq!(durable.await.unwrap(), 1);
    assert_eq!(*order.lock().unwrap(), ["lazy", "durable"]);
    // The held call, then the durable one: a flush each (the second group waited for the
    // first one's flush).
    assert_eq!(w.flushes(), 4);
    // What was answered is in the WAL, read by another connection.
    let other = Connection::open(dir.path().join("w.db")).unwrap();
    assert_eq!(values(&other), [5]);
}

/// Without a WAL to flush (in memory, or `synchronous = NORMAL`), nothing is flushed and
/// both kinds of calls are answered after their commit.
#[tokio::test]
async fn a_store_that_does_not_flush_answers_after_the_commit() {
    let w = writer();
    let f = |c: &Connection, _: &mut Deltas| Ok(synchronous(c));
    assert_eq!(w.call(1, f).await.unwrap(), 1);
    assert_eq!(w.call_lazy(1, f).await.unwrap(), 1);
    assert_eq!(w.call(1, f).await.unwrap(), 1);
    assert_eq!(w.flushes(), 0);
}

/// Whether `notify` holds a permit (a `notified()` completes at once).
fn woken(notify: &tokio::sync::Notify) -> bool {
    use std::future::Future as _;
    let mut f = Box::pin(notify.notified());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    f.as_mut().poll(&mut cx).is_ready()
}

/// The queued signal is woken by a commit that made jobs `queued` (lazy or durable), before
/// the call is answered, and not by other commits.
#[tokio::test]
async fn a_commit_that_queues_jobs_wakes_the_queued_signal() {
    use crate::JobState;
    let conn = Connection::open_in_memory().unwrap();
    // The table the writer adds each batch's deltas to (as in the schema).
    conn.execute_batch(
        "CREATE TABLE job_counts (pool TEXT NOT NULL, state TEXT NOT NULL,
         n INTEGER NOT NULL, PRIMARY KEY (pool, state)) WITHOUT ROWID",
    )
    .unwrap();
    let w = Writer::spawn(conn, 64, None, |_| Ok(())).unwrap();
    let q = w.queued_signal();
    let queue = |n: i64| {
        move |_: &Connection, d: &mut Deltas| {
            d.add("p", JobState::Queued, n);
            d.add("p", JobState::Scheduled, -n);
            Ok(())
        }
    };
    w.call(1, |_: &Connection, _: &mut Deltas| Ok(()))
        .await
        .unwrap();
    assert!(!woken(&q), "nothing was queued");
    w.call(1, queue(2)).await.unwrap();
    assert!(woken(&q));
    assert!(!woken(&q), "one permit");
    // A claim: queued jobs become running.
    w.call_lazy(1, |_: &Connection, d: &mut Deltas| {
        d.moved("p", JobState::Queued, JobState::Running);
        Ok(())
    })
    .await
    .unwrap();
    assert!(!woken(&q), "a claim queues nothing");
    w.call_lazy(1, queue(1)).await.unwrap();
    assert!(woken(&q));
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
