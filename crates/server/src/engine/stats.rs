//! History: the flusher (one task) that adds this node's accumulated counts
//! (`crate::history`) to the store every `[history] flush_ms`, in one call that sums into the
//! stored rows (chunks of `MAX_ADD_ROWS`); and [`Engine::stats`], the read behind
//! `GET /v1/stats` and the dashboard's charts. The lease keeper purges old minutes.

use std::sync::Arc;

use offload_store::stats::{series, StatsPoint, StatsQuery, MAX_ADD_ROWS};

use super::{Engine, EngineError};

impl Engine {
    /// The flusher's loop.
    pub(super) async fn history_flusher(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.cfg.history.flush);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.flush_history().await;
        }
    }

    /// Adds what this node counted since the last flush to the store; what the store refuses
    /// is kept for the next flush (bounded by `history::MAX_PENDING_MINUTES`).
    pub(crate) async fn flush_history(&self) {
        let mut rows = self.history.take();
        while !rows.is_empty() {
            let rest = rows.split_off(rows.len().min(MAX_ADD_ROWS));
            if let Err(e) = self.store.add_stats(rows.clone()).await {
                tracing::warn!(error = %e, "cannot add to the job history; trying again later");
                self.history.restore(rows);
                self.history.restore(rest);
                return;
            }
            rows = rest;
        }
    }

    /// The history of `q`'s window, one point per step (see `offload_store::stats`).
    pub(crate) async fn stats(&self, q: &StatsQuery) -> Result<Vec<StatsPoint>, EngineError> {
        let cells = self.store.stats(q).await?;
        Ok(series(q, &cells))
    }
}
