//! Jobs per (pool, state), kept in the `job_counts` table so `counts` never scans `jobs`.
//!
//! Every write notes the state changes it makes in [`Deltas`]; the writer adds a batch's deltas
//! to the table once, in the batch's transaction (a trigger per row cost as much as the insert
//! itself).

use std::collections::HashMap;

use rusqlite::{params, Connection};

use crate::JobState;

fn index(state: JobState) -> usize {
    match state {
        JobState::Scheduled => 0,
        JobState::Queued => 1,
        JobState::Running => 2,
        JobState::Succeeded => 3,
        JobState::Failed => 4,
        JobState::Dead => 5,
        JobState::Cancelled => 6,
        JobState::Waiting => 7,
    }
}

/// Changes of the counts, per pool and state.
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    by_pool: HashMap<String, [i64; JobState::ALL.len()]>,
}

impl Deltas {
    /// `n` more jobs of `pool` in `state` (negative: fewer).
    pub(crate) fn add(&mut self, pool: &str, state: JobState, n: i64) {
        if let Some(row) = self.by_pool.get_mut(pool) {
            row[index(state)] += n;
        } else {
            let mut row = [0; JobState::ALL.len()];
            row[index(state)] = n;
            self.by_pool.insert(pool.to_owned(), row);
        }
    }

    /// A job of `pool` went from `from` to `to`.
    pub(crate) fn moved(&mut self, pool: &str, from: JobState, to: JobState) {
        if from != to {
            self.add(pool, from, -1);
            self.add(pool, to, 1);
        }
    }

    pub(crate) fn merge(&mut self, other: &Deltas) {
        for (pool, row) in &other.by_pool {
            for state in JobState::ALL {
                let n = row[index(state)];
                if n != 0 {
                    self.add(pool, state, n);
                }
            }
        }
    }

    /// Whether some pool has more `queued` jobs than before (jobs a dispatcher may claim now).
    pub(crate) fn queued_grew(&self) -> bool {
        self.by_pool
            .values()
            .any(|row| row[index(JobState::Queued)] > 0)
    }

    /// Adds the deltas to `job_counts`.
    pub(crate) fn flush(&self, c: &Connection) -> rusqlite::Result<()> {
        if self.by_pool.is_empty() {
            return Ok(());
        }
        let mut s = c.prepare_cached(include_str!("sql/count_add.sql"))?;
        for (pool, row) in &self.by_pool {
            for state in JobState::ALL {
                let n = row[index(state)];
                if n != 0 {
                    s.execute(params![pool, state.as_str(), n])?;
                }
            }
        }
        Ok(())
    }
}
