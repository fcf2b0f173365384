//! The lease keeper (one task): every lease/3 it renews the leases of the jobs running here
//! (a job whose lease was lost is stopped: another node may run it now), re-queues jobs whose
//! lease expired (their node died), and once an hour purges finished jobs past retention and
//! the history past `[history] retention_days`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use offload_store::now_ms;

use super::Engine;

impl Engine {
    /// The lease keeper's loop.
    pub(super) async fn lease_keeper(self: Arc<Self>) {
        let period = (self.cfg.lease / 3).max(Duration::from_millis(50));
        let mut tick = tokio::time::interval(period);
        let mut last_purge = Instant::now();
        loop {
            tick.tick().await;
            // Jobs being handed back keep their lease until their end is recorded (else another
            // node would take them as lost, and count the attempt).
            let mut ids = self.running_ids();
            ids.extend(self.handing_back());
            if !ids.is_empty() {
                match self.store.renew(&self.cfg.node, &ids, self.cfg.lease).await {
                    Ok(lost) => {
                        for id in lost {
                            tracing::warn!(%id, "lost the lease of a running job; stopping it");
                            self.cancel_running(id);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot renew leases"),
                }
            }
            match self.store.recover(None).await {
                Ok(n) if n > 0 => {
                    tracing::warn!(n, "re-queued jobs whose lease expired");
                    self.notify();
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot recover expired leases"),
            }
            if last_purge.elapsed() > Duration::from_secs(3600) {
                last_purge = Instant::now();
                let before = now_ms()
                    .saturating_sub(i64::try_from(self.cfg.retention.as_millis()).unwrap_or(0));
                match self.store.purge(before).await {
                    Ok(n) if n > 0 => tracing::info!(n, "purged finished jobs past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "cannot purge"),
                }
                let before = now_ms().saturating_sub(self.cfg.history.retention_ms());
                match self.store.purge_stats(before).await {
                    Ok(n) if n > 0 => tracing::info!(n, "purged history past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "cannot purge the history"),
                }
            }
        }
    }
}
