//! The messages the handles (`pool.rs`) send to the actor, and where each goes. Types only
//! plus the routing: the work is done in the file of each role.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use offload_process::JobProcess;
use serde_json::Value;
use tokio::sync::{broadcast, oneshot, OwnedSemaphorePermit};

use crate::params::Params;
use crate::reply::Reply;

use super::{Actor, Leaving};
use crate::error::PoolError;
use crate::options::RunOptions;
use crate::types::{
    JobEvent, JobId, KillMode, KillOrder, RecycleReason, WorkerHealth, WorkerState,
};

/// A job as submitted.
pub(crate) struct Submission {
    pub(crate) id: JobId,
    pub(crate) name: Arc<str>,
    pub(crate) path: Option<Arc<str>>,
    pub(crate) params: Params,
    pub(crate) opts: RunOptions,
    pub(crate) reply: Reply,
    pub(crate) events: Option<broadcast::Sender<JobEvent>>,
    pub(crate) permit: OwnedSemaphorePermit,
    /// Descriptors passed with the run (`run_with_fds`); closed with the submission if it
    /// never reaches a worker.
    pub(crate) fds: Vec<std::os::fd::OwnedFd>,
}

/// Messages from the handles.
pub(crate) enum Msg {
    Submit(Box<Submission>),
    Cancel(JobId),
    Query(Query),
    Shutdown {
        deadline: Duration,
        reply: oneshot::Sender<()>,
    },
    Kill {
        reply: Option<oneshot::Sender<()>>,
    },
    KillAll {
        mode: KillMode,
        order: KillOrder,
        reply: oneshot::Sender<()>,
    },
}

/// Questions and commands that need an answer.
pub(crate) enum Query {
    Health(oneshot::Sender<Vec<WorkerHealth>>),
    Queued(oneshot::Sender<usize>),
    Bound {
        key: String,
        reply: oneshot::Sender<Option<JobProcess>>,
    },
    Resize {
        n: usize,
        reply: oneshot::Sender<()>,
    },
    RecycleAll(oneshot::Sender<()>),
    KillWorker {
        pid: u32,
        mode: KillMode,
        reply: oneshot::Sender<Result<(), PoolError>>,
    },
    Broadcast {
        name: String,
        data: Value,
        timeout: Duration,
        reply: oneshot::Sender<BTreeMap<u32, bool>>,
    },
    /// Test-only: makes the actor panic (`fault-injection` feature).
    #[cfg(feature = "fault-injection")]
    Panic,
}

impl Actor {
    pub(super) fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Submit(s) => self.on_submit(*s),
            Msg::Cancel(id) => self.on_cancel(id),
            Msg::Query(q) => self.on_query(q),
            Msg::Shutdown { deadline, reply } => self.on_shutdown(deadline, reply),
            Msg::Kill { reply } => self.kill_all(reply),
            Msg::KillAll { mode, order, reply } => self.kill_all_with(mode, order, reply),
        }
    }

    pub(super) fn on_query(&mut self, q: Query) {
        match q {
            Query::Health(reply) => {
                // A worker started since the last sample would show no memory and one process.
                self.sample_new_workers();
                let mut list: Vec<WorkerHealth> = self
                    .workers
                    .iter()
                    .map(|(&pid, w)| WorkerHealth {
                        pid,
                        index: w.index,
                        state: w.state,
                        rss: w.rss,
                        cpu: w.cpu,
                        heap_used: w.heap_used,
                        heap_total: w.heap_total,
                        processes: w.processes,
                        in_flight: w.in_flight.len(),
                        jobs_done: w.jobs_done,
                        failures: w.failures,
                        restarts: self.restarts.get(w.index).copied().unwrap_or(0),
                        uptime: w.spawned.elapsed(),
                        last_error: w.last_error.clone(),
                    })
                    .collect();
                list.sort_by_key(|h| h.index);
                let _ = reply.send(list);
            }
            Query::Queued(reply) => {
                let _ = reply.send(self.queue.len() + self.delayed.len());
            }
            Query::Bound { key, reply } => {
                let pid = self.binding(&key);
                let _ = reply.send(
                    pid.and_then(|p| self.workers.get(&p))
                        .map(|w| w.process.clone()),
                );
            }
            Query::Resize { n, reply } => {
                self.resize(n);
                let _ = reply.send(());
            }
            Query::RecycleAll(reply) => {
                let pids: Vec<u32> = self.workers.keys().copied().collect();
                for pid in pids {
                    match self.workers.get(&pid).map(|w| w.state) {
                        Some(WorkerState::Ready) => self.retire(pid, RecycleReason::Reload),
                        Some(WorkerState::Starting) => self.stop_worker(pid, Leaving::Recycled),
                        _ => {}
                    }
                }
                let _ = reply.send(());
            }
            Query::KillWorker { pid, mode, reply } => {
                let _ = reply.send(self.kill_worker(pid, mode));
            }
            Query::Broadcast {
                name,
                data,
                timeout,
                reply,
            } => self.broadcast(name, data, timeout, reply),
            #[cfg(feature = "fault-injection")]
            Query::Panic => panic!("injected fault: the pool actor panics"),
        }
    }
}
