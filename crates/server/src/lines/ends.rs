//! Job ends, for the line protocol: one task follows the engine's event stream and
//!
//! - wakes the requests waiting for a job's end (`module:data`, `queue:get`): a waiter
//!   registers its job id and sleeps on its own [`Notify`] — no thread, no store read, no
//!   event receiver of its own. At most `max_waits` wait at once ([`Ends::wait_slot`]);
//! - forgets the UDP-submitted jobs that ended, so that at most `udp_max_queued` of them are
//!   waiting or running at once ([`Ends::udp_reserve`]).
//!
//! When the event stream lags (events were lost), every waiter re-reads its job once, and the
//! UDP jobs are re-read from the store in the background.
//!
//! Caveat: UDP jobs submitted before a restart are not counted (the pools' queue limits of
//! `admission.rs` still bound them).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::Gauge;
use offload_store::{JobId, StoreError};
use tokio::sync::{broadcast, watch, Notify, OwnedSemaphorePermit, Semaphore};

use super::reply::LineError;
use super::stopped;
use crate::engine::Engine;
use crate::events::ServerEvent;
use crate::metrics::Metrics;

#[derive(Debug, Default)]
struct UdpJobs {
    /// Submitted and not seen ending.
    ids: HashSet<JobId>,
    /// Being submitted.
    pending: usize,
}

/// The job ends the line protocol follows (one per listener set).
#[derive(Debug)]
pub(crate) struct Ends {
    waiters: Mutex<HashMap<JobId, Vec<Arc<Notify>>>>,
    wait_slots: Arc<Semaphore>,
    max_waits: usize,
    udp: Mutex<UdpJobs>,
    udp_max: usize,
    reconciling: AtomicBool,
    last_reconcile: Mutex<Option<Instant>>,
    gauge: Gauge,
}

/// The shortest time between two re-reads of the UDP jobs when their cap is reached.
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// A place among the `max_waits` (shown as the `offload_line_waits` gauge); freed when dropped.
#[derive(Debug)]
pub(crate) struct WaitSlot {
    _permit: OwnedSemaphorePermit,
    gauge: Gauge,
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        self.gauge.decrement(1);
    }
}

/// A waiter's registration: woken when its job ends; removed when dropped.
pub(crate) struct Registration<'a> {
    ends: &'a Ends,
    id: JobId,
    notify: Arc<Notify>,
}

impl Registration<'_> {
    /// Resolves when the job may have ended (an end event, or lost events): re-read it.
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut waiters = self.ends.lock_waiters();
        if let Some(list) = waiters.get_mut(&self.id) {
            list.retain(|n| !Arc::ptr_eq(n, &self.notify));
            if list.is_empty() {
                waiters.remove(&self.id);
            }
        }
    }
}

/// A reserved place for one UDP job: [`UdpSlot::submitted`] keeps it until the job ends;
/// dropping it unused frees it.
pub(crate) struct UdpSlot<'a> {
    ends: &'a Ends,
}

impl UdpSlot<'_> {
    /// The job was submitted: it holds the place until it ends.
    pub(crate) fn submitted(self, id: JobId) {
        self.ends.lock_udp().ids.insert(id);
    }
}

impl Drop for UdpSlot<'_> {
    fn drop(&mut self) {
        let mut udp = self.ends.lock_udp();
        udp.pending = udp.pending.saturating_sub(1);
    }
}

impl Ends {
    pub(crate) fn new(max_waits: usize, udp_max: usize, metrics: &Metrics) -> Self {
        Self {
            waiters: Mutex::new(HashMap::new()),
            wait_slots: Arc::new(Semaphore::new(max_waits)),
            max_waits,
            udp: Mutex::new(UdpJobs::default()),
            udp_max,
            reconciling: AtomicBool::new(false),
            last_reconcile: Mutex::new(None),
            gauge: metrics.line_waits(),
        }
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Vec<Arc<Notify>>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_udp(&self) -> std::sync::MutexGuard<'_, UdpJobs> {
        self.udp.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place to wait for a job's end, or `503:` when `max_waits` requests wait already.
    pub(crate) fn wait_slot(&self) -> Result<WaitSlot, LineError> {
        Arc::clone(&self.wait_slots)
            .try_acquire_owned()
            .map(|permit| {
                self.gauge.increment(1);
                WaitSlot {
                    _permit: permit,
                    gauge: self.gauge.clone(),
                }
            })
            .map_err(|_| {
                LineError::unavailable(format!(
                    "too many waiting requests (limit {}, [lines] max_waits); try again later \
                     or submit with queue:add",
                    self.max_waits
                ))
            })
    }

    /// Registers interest in `id`'s end (register, then read the job: no end is missed).
    pub(crate) fn register(&self, id: JobId) -> Registration<'_> {
        let notify = Arc::new(Notify::new());
        self.lock_waiters()
            .entry(id)
            .or_default()
            .push(Arc::clone(&notify));
        Registration {
            ends: self,
            id,
            notify,
        }
    }

    /// Requests waiting now.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock_waiters().values().map(Vec::len).sum()
    }

    /// A place for one more UDP job, or `None` when `udp_max_queued` have not ended yet.
    pub(crate) fn udp_reserve(&self) -> Option<UdpSlot<'_>> {
        let mut udp = self.lock_udp();
        if udp.ids.len() + udp.pending >= self.udp_max {
            return None;
        }
        udp.pending += 1;
        Some(UdpSlot { ends: self })
    }

    fn ended(&self, id: JobId) {
        if let Some(list) = self.lock_waiters().get(&id) {
            for n in list {
                n.notify_one();
            }
        }
        self.lock_udp().ids.remove(&id);
    }

    /// Events were lost: every waiter re-reads; the UDP jobs are re-read from the store.
    fn lagged(self: &Arc<Self>, engine: &Arc<Engine>) {
        for list in self.lock_waiters().values() {
            for n in list {
                n.notify_one();
            }
        }
        self.reconcile(engine);
    }

    /// The UDP jobs are full: re-reads them from the store (at most every
    /// [`RECONCILE_EVERY`]), in case an end was missed (a job that ended before its submit
    /// returned, events lost).
    pub(crate) fn udp_full(self: &Arc<Self>, engine: &Arc<Engine>) {
        let mut last = self
            .last_reconcile
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < RECONCILE_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        self.reconcile(engine);
    }

    fn reconcile(self: &Arc<Self>, engine: &Arc<Engine>) {
        if self.reconciling.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        let engine = Arc::clone(engine);
        tokio::spawn(async move {
            let ids: Vec<JobId> = this.lock_udp().ids.iter().copied().collect();
            for id in ids {
                let over = match engine.store.get(id).await {
                    Ok(rec) => rec.state.is_terminal(),
                    Err(StoreError::NotFound) => true,
                    Err(_) => false,
                };
                if over {
                    this.lock_udp().ids.remove(&id);
                }
            }
            this.reconciling.store(false, Ordering::Release);
        });
    }

    /// Follows the engine's events until `stop`.
    pub(crate) async fn follow(
        self: Arc<Self>,
        engine: Arc<Engine>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut events = engine.events.subscribe();
        loop {
            let ev = tokio::select! {
                () = stopped(&mut stop) => return,
                ev = events.recv() => ev,
            };
            match ev {
                Ok(ServerEvent::Job(j)) if j.state.is_terminal() => self.ended(j.id),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => self.lagged(&engine),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_slots_are_bounded_and_freed() {
        let ends = Ends::new(2, 0, &Metrics::new());
        let a = ends.wait_slot().unwrap();
        let _b = ends.wait_slot().unwrap();
        let e = ends.wait_slot().unwrap_err();
        assert_eq!(e.code, 503);
        assert!(
            e.message.contains("too many waiting requests (limit 2"),
            "{e:?}"
        );
        drop(a);
        assert!(ends.wait_slot().is_ok());
    }

    #[tokio::test]
    async fn a_registration_is_woken_by_its_end_and_removed_when_dropped() {
        let ends = Ends::new(4, 0, &Metrics::new());
        let id = JobId::now_v7();
        let other = JobId::now_v7();
        let r = ends.register(id);
        let _o = ends.register(other);
        assert_eq!(ends.waiting(), 2);
        ends.ended(id);
        // The permit is stored: the wake is not lost even though nobody awaited yet.
        r.notified().await;
        drop(r);
        assert_eq!(ends.waiting(), 1);
    }

    #[test]
    fn udp_places_are_capped_until_their_jobs_end() {
        let ends = Ends::new(1, 2, &Metrics::new());
        let a = JobId::now_v7();
        ends.udp_reserve().unwrap().submitted(a);
        let unused = ends.udp_reserve().unwrap();
        assert!(ends.udp_reserve().is_none());
        drop(unused);
        ends.udp_reserve().unwrap().submitted(JobId::now_v7());
        assert!(ends.udp_reserve().is_none());
        ends.ended(a);
        assert!(ends.udp_reserve().is_some());
    }
}
