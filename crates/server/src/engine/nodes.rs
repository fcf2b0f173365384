//! This node in the store's node registry (`offload_store::nodes`): registration at start
//! (refused when a live node holds the id), the **heartbeat** loop (one task: load, running
//! jobs, pools every lease/3, at most every 5 s; it reads the drain order back), and drain:
//! a draining node claims nothing (the dispatcher asks [`Engine::draining`]), lets its running
//! jobs finish, hands back those still running at the deadline (stopped, re-queued at once
//! with the attempt not counted: `Transition::HandBack`), then exits or stays idle as asked.
//!
//! A drain order reaches the node from the store: at once through a `Notice::Drain` (the
//! PostgreSQL engine's NOTIFY; [`Engine::look_at_drain`]), else at its next heartbeat. SIGTERM
//! drains the same way with the configured deadline ([`Engine::drain_here`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offload_store::nodes::{check_node_id, NODE_RETENTION};
use offload_store::{
    AfterDrain, Beat, DrainOrder, DrainRequest, JobId, NodeRecord, NodeStart, StoreError,
};
use tokio::sync::Notify;

use super::{Engine, EngineError};

/// What this node knows of its drain.
#[derive(Default)]
pub(super) struct Drain {
    /// Claims nothing.
    draining: AtomicBool,
    /// The order being followed (its `requested_at`; a local SIGTERM drain uses -1), and a
    /// generation that a new order or an undrain moves on (the drain task stops then).
    current: Mutex<Option<i64>>,
    generation: AtomicU64,
    /// Jobs stopped to be handed back: their end is `Transition::HandBack`.
    handed_back: Mutex<HashSet<JobId>>,
    /// The daemon is stopping: jobs held ahead are handed back, not started.
    pub(super) closing: AtomicBool,
    /// The node is marked stopped in the registry: no beat writes after that.
    stopped: AtomicBool,
    /// Job tasks not yet ended (their end handed to the completer).
    pub(super) tasks: AtomicUsize,
    /// Ends handed to the completer and not yet written.
    pub(super) unwritten: AtomicUsize,
    /// Woken whenever a job task ends or the completer writes ends.
    pub(super) ended: Notify,
}

impl Drain {
    /// No job task runs and every end is written.
    fn idle(&self) -> bool {
        self.tasks.load(Ordering::SeqCst) == 0 && self.unwritten.load(Ordering::SeqCst) == 0
    }
}

/// The heartbeat period: lease/3, between 50 ms and 5 s.
pub(super) fn heartbeat_period(lease: Duration) -> Duration {
    (lease / 3).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

/// The 1-minute load average, where `/proc/loadavg` says it.
fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// This machine's host name.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

impl Engine {
    /// Registers this node: refused when a live node holds its id. A row with a fresh
    /// heartbeat from a node that died (a restart after a crash) is taken over once its
    /// heartbeat has stayed the same for two periods; on a store no other node shares, at once.
    pub(super) async fn register(&self) -> Result<(), crate::error::ServeError> {
        check_node_id(&self.cfg.node).map_err(|e| {
            crate::error::ServeError::Config(crate::error::ConfigError::Invalid(format!(
                "{e}: set another id with --node-id or node_id in offload.toml"
            )))
        })?;
        let start = NodeStart {
            id: self.cfg.node.clone(),
            host: host(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pools: self.cfg.pools.iter().map(|p| p.name.clone()).collect(),
            capacity: 0,
        };
        let live = if self.store.is_shared() {
            self.cfg.lease
        } else {
            Duration::ZERO
        };
        match self.store.register_node(&start, live, None).await {
            Err(StoreError::NodeInUse { heartbeat_at, .. }) => {
                // Alive, or dead since less than a lease: a live node moves its heartbeat on.
                let period = heartbeat_period(self.cfg.lease);
                tracing::warn!(node = %self.cfg.node, "a node with this id has a fresh heartbeat; checking whether it is alive");
                tokio::time::sleep(period * 2 + Duration::from_millis(250)).await;
                self.store
                    .register_node(&start, live, Some(heartbeat_at))
                    .await?;
            }
            other => other?,
        }
        Ok(())
    }

    /// The heartbeat loop (one task): reports the load and follows the drain order.
    pub(super) async fn heartbeat_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(heartbeat_period(self.cfg.lease));
        let mut beats: u64 = 0;
        loop {
            tick.tick().await;
            self.beat().await;
            beats += 1;
            if beats.is_multiple_of(720) {
                match self.store.purge_nodes(NODE_RETENTION).await {
                    Ok(n) if n > 0 => tracing::info!(n, "purged old rows of stopped or lost nodes"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "cannot purge old node rows"),
                }
            }
        }
    }

    /// One heartbeat: writes the load, reads the drain order back and follows it.
    async fn beat(self: &Arc<Self>) {
        if self.drain.stopped.load(Ordering::SeqCst) {
            return;
        }
        let pools = self.pools();
        let beat = Beat {
            // Job tasks, handed-back ones until their attempt has ended too.
            running: u32::try_from(self.drain.tasks.load(Ordering::SeqCst)).unwrap_or(u32::MAX),
            capacity: u32::try_from(pools.iter().map(|p| p.capacity).sum::<usize>())
                .unwrap_or(u32::MAX),
            load1: load1(),
            pools: pools.iter().map(|p| p.name.clone()).collect(),
        };
        match self.store.heartbeat(&self.cfg.node, &beat).await {
            Ok(order) => self.follow_order(order),
            Err(StoreError::NotFound) => {
                // The row was purged (a long pause): register again.
                tracing::warn!("this node's registry row is gone; registering again");
                if let Err(e) = self.register().await {
                    tracing::error!(error = %e, "cannot register this node again");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot write the heartbeat"),
        }
    }

    /// A drain order for this node may have changed (a `Notice::Drain`): beat now.
    pub(crate) fn look_at_drain(self: &Arc<Self>) {
        let engine = Arc::clone(self);
        tokio::spawn(async move { engine.beat().await });
    }

    /// Whether this node claims nothing.
    pub(crate) fn draining(&self) -> bool {
        self.drain.draining.load(Ordering::Relaxed)
    }

    /// A drain, or the daemon stops: the dispatcher claims nothing, and a held job is handed
    /// back rather than started.
    pub(super) fn stops_claiming(&self) -> bool {
        self.draining() || self.drain.closing.load(Ordering::SeqCst)
    }

    /// Follows the order the store holds for this node: starts a drain for a new one, ends
    /// the drain when there is none (unless it is this node's own SIGTERM drain).
    fn follow_order(self: &Arc<Self>, order: Option<DrainOrder>) {
        let mut current = self.drain.current.lock().unwrap_or_else(|e| e.into_inner());
        match order {
            None => {
                if current.is_some_and(|c| c >= 0) {
                    *current = None;
                    self.drain.generation.fetch_add(1, Ordering::SeqCst);
                    self.drain.draining.store(false, Ordering::SeqCst);
                    tracing::info!("undrained: claiming again");
                    self.notify();
                }
            }
            Some(o) => {
                if *current == Some(o.requested_at) || *current == Some(-1) {
                    return;
                }
                *current = Some(o.requested_at);
                let generation = self.drain.generation.fetch_add(1, Ordering::SeqCst) + 1;
                self.drain.draining.store(true, Ordering::SeqCst);
                tracing::info!(
                    remaining_ms = o.remaining_ms,
                    then = o.then.as_str(),
                    "draining: claiming nothing; running jobs may finish until the deadline"
                );
                let engine = Arc::clone(self);
                let left = Duration::from_millis(o.remaining_ms);
                tokio::spawn(engine.drain_task(generation, left, o.then));
            }
        }
    }

    /// Drains this node for SIGTERM: claims nothing, lets running jobs finish for `deadline`,
    /// hands back the rest, and returns once none runs. The registry shows it draining.
    pub(crate) async fn drain_here(self: &Arc<Self>, deadline: Duration) {
        let generation = {
            let mut current = self.drain.current.lock().unwrap_or_else(|e| e.into_inner());
            *current = Some(-1);
            self.drain.draining.store(true, Ordering::SeqCst);
            self.drain.generation.fetch_add(1, Ordering::SeqCst) + 1
        };
        let order = DrainRequest {
            deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            then: AfterDrain::Exit,
        };
        if let Err(e) = self.store.drain_node(&self.cfg.node, Some(order)).await {
            tracing::warn!(error = %e, "cannot record the drain in the node registry");
        }
        Arc::clone(self)
            .drain_task(generation, deadline, AfterDrain::Idle)
            .await;
    }

    /// Waits until no job runs here and their ends are written, handing back what still runs
    /// when the deadline passes, unless the drain is replaced meanwhile; then
    /// beats (the registry shows `drained`) and exits when asked.
    async fn drain_task(self: Arc<Self>, generation: u64, deadline: Duration, then: AfterDrain) {
        let current = || self.drain.generation.load(Ordering::SeqCst) == generation;
        // Jobs claimed ahead have not started: other nodes may run them now.
        self.hand_back_held();
        let until = tokio::time::sleep(deadline);
        tokio::pin!(until);
        let mut handed_back = false;
        loop {
            let ended = self.drain.ended.notified();
            if !current() {
                return;
            }
            if self.drain.idle() {
                break;
            }
            tokio::select! {
                () = ended => {}
                () = &mut until, if !handed_back => {
                    handed_back = true;
                    self.hand_back_all();
                }
                // An undrain or a new order: look again.
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        if !current() {
            return;
        }
        tracing::info!("drained: no job runs here");
        self.beat().await;
        if then == AfterDrain::Exit && current() {
            let _ = self.exit.send(true);
        }
    }

    /// Stops every job running here to hand it back (its end re-queues it, uncounted).
    fn hand_back_all(&self) {
        let ids = self.running_ids();
        if ids.is_empty() {
            return;
        }
        tracing::warn!(
            n = ids.len(),
            "drain deadline passed: handing running jobs back to the queue"
        );
        self.drain
            .handed_back
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(ids.iter().copied());
        for id in ids {
            self.cancel_running(id);
        }
    }

    /// The jobs stopped to be handed back whose attempt has not ended yet.
    pub(super) fn handing_back(&self) -> Vec<JobId> {
        self.drain
            .handed_back
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// Whether job `id` was stopped to be handed back (and forgets it).
    pub(super) fn take_handed_back(&self, id: JobId) -> bool {
        self.drain
            .handed_back
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    /// Every node of the registry.
    pub(crate) async fn nodes(&self) -> Result<Vec<NodeRecord>, EngineError> {
        Ok(self.store.nodes().await?)
    }

    /// Gives node `id` a drain order (`None`: takes it back). This node follows its own at
    /// once; another node learns it through the store.
    pub(crate) async fn drain_node(
        self: &Arc<Self>,
        id: &str,
        order: Option<DrainRequest>,
    ) -> Result<NodeRecord, EngineError> {
        if let Some(o) = &order {
            o.check()?;
        }
        let node = self
            .store
            .drain_node(id, order)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => EngineError::NotFound(format!(
                    "no node {id:?}: GET /v1/nodes lists the nodes of this store"
                )),
                other => EngineError::Store(other),
            })?;
        if id == self.cfg.node {
            self.follow_order(node.drain);
        }
        Ok(node)
    }

    /// Marks this node stopped (a clean exit). The heartbeat loop runs until the process
    /// ends: it beats no more, and the store ignores a beat that was already on its way.
    pub(crate) async fn stopped(&self) {
        self.drain.stopped.store(true, Ordering::SeqCst);
        if let Err(e) = self.store.stop_node(&self.cfg.node).await {
            tracing::warn!(error = %e, "cannot mark this node stopped in the registry");
        }
    }
}
