//! This node's share of the job history (`offload_store::stats`), accumulated in memory.
//!
//! Every submit and every ended attempt adds to the current minute's counts and to a fixed
//! log-scale histogram of run time and queue wait, per (minute, pool, job name), under one
//! `Mutex` held for a few map updates (never across an `.await`). The engine's flusher
//! (`engine/stats.rs`) takes everything every `[history] flush_ms` and adds it to the store in
//! one call that sums into the stored rows, so the nodes of a shared store merge; no store
//! write happens per job. A crash loses at most the counts not flushed yet (a few seconds of
//! history, never a job).
//!
//! Bounded: at most [`MAX_KEYS_PER_MINUTE`] (pool, job name) pairs per minute (the others are
//! counted under `(other)`/`(other)`), and at most [`MAX_PENDING_MINUTES`] minutes waiting
//! when the store cannot take them (the oldest are dropped, with a warning).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use offload_store::stats::{bucket_of, Metric, StatRow, MINUTE_MS, OTHER};
use offload_store::Millis;

/// The most (pool, job name) pairs counted apart in one minute.
pub(crate) const MAX_KEYS_PER_MINUTE: usize = 1_000;
/// The most minutes kept while the store refuses them.
pub(crate) const MAX_PENDING_MINUTES: usize = 60;

/// The counts of one (minute, pool, job name).
#[derive(Debug, Default)]
struct Acc {
    /// submitted, succeeded, failed, dead, cancelled.
    counts: [u64; 5],
    run: BTreeMap<u16, u64>,
    wait: BTreeMap<u16, u64>,
}

/// One minute: pool → job name → counts.
#[derive(Debug, Default)]
struct Minute {
    keys: usize,
    pools: HashMap<String, HashMap<String, Acc>>,
}

impl Minute {
    fn acc(&mut self, pool: &str, job: &str) -> &mut Acc {
        let known = self
            .pools
            .get(pool)
            .is_some_and(|jobs| jobs.contains_key(job));
        let (pool, job) = if known || self.keys < MAX_KEYS_PER_MINUTE {
            (pool, job)
        } else {
            (OTHER, OTHER)
        };
        if !self.pools.contains_key(pool) {
            self.pools.insert(pool.to_owned(), HashMap::new());
        }
        let jobs = self.pools.get_mut(pool).expect("inserted above");
        if !jobs.contains_key(job) {
            self.keys += 1;
            jobs.insert(job.to_owned(), Acc::default());
        }
        jobs.get_mut(job).expect("inserted above")
    }
}

/// The accumulated counts of this node.
#[derive(Debug, Default)]
pub(crate) struct History {
    minutes: Mutex<BTreeMap<Millis, Minute>>,
}

fn minute_of(at: Millis) -> Millis {
    at.div_euclid(MINUTE_MS) * MINUTE_MS
}

fn slot(m: Metric) -> usize {
    match m {
        Metric::Submitted => 0,
        Metric::Succeeded => 1,
        Metric::Failed => 2,
        Metric::Dead => 3,
        Metric::Cancelled | Metric::RunMs | Metric::WaitMs => 4,
    }
}

const COUNTED: [Metric; 5] = [
    Metric::Submitted,
    Metric::Succeeded,
    Metric::Failed,
    Metric::Dead,
    Metric::Cancelled,
];

impl History {
    fn with(&self, at: Millis, f: impl FnOnce(&mut Minute)) {
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        f(minutes.entry(minute_of(at)).or_default());
        while minutes.len() > MAX_PENDING_MINUTES {
            if let Some((minute, _)) = minutes.pop_first() {
                tracing::warn!(minute, "dropped a minute of history the store did not take");
            }
        }
    }

    /// Jobs were submitted at `at`: their (pool, job name) pairs.
    pub(crate) fn submitted<'a>(
        &self,
        at: Millis,
        jobs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        self.with(at, |m| {
            for (pool, job) in jobs {
                m.acc(pool, job).counts[0] += 1;
            }
        });
    }

    /// An attempt of `job` in `pool` ended at `at` as `end` (succeeded, failed, dead or
    /// cancelled), after waiting `wait_ms` in the queue and running `run_ms` (`None`: it never
    /// ran).
    pub(crate) fn ended(
        &self,
        at: Millis,
        pool: &str,
        job: &str,
        end: Metric,
        times: Option<(u64, u64)>,
    ) {
        self.with(at, |m| {
            let acc = m.acc(pool, job);
            acc.counts[slot(end)] += 1;
            if let Some((wait_ms, run_ms)) = times {
                *acc.wait.entry(bucket_of(wait_ms)).or_default() += 1;
                *acc.run.entry(bucket_of(run_ms)).or_default() += 1;
            }
        });
    }

    /// Takes every count accumulated so far, as rows to add to the store.
    pub(crate) fn take(&self) -> Vec<StatRow> {
        let minutes = std::mem::take(&mut *self.minutes.lock().unwrap_or_else(|e| e.into_inner()));
        let mut rows = Vec::new();
        for (minute, m) in minutes {
            for (pool, jobs) in m.pools {
                for (job, acc) in jobs {
                    let row = |metric, bucket, n| StatRow {
                        minute,
                        pool: pool.clone(),
                        job: job.clone(),
                        metric,
                        bucket,
                        n,
                    };
                    for (metric, n) in COUNTED.into_iter().zip(acc.counts) {
                        if n > 0 {
                            rows.push(row(metric, 0, n));
                        }
                    }
                    for (b, n) in acc.run {
                        rows.push(row(Metric::RunMs, b, n));
                    }
                    for (b, n) in acc.wait {
                        rows.push(row(Metric::WaitMs, b, n));
                    }
                }
            }
        }
        rows
    }

    /// Puts back rows the store did not take (they are added again at the next flush).
    pub(crate) fn restore(&self, rows: Vec<StatRow>) {
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        for r in rows {
            let acc = minutes.entry(r.minute).or_default().acc(&r.pool, &r.job);
            match r.metric {
                Metric::RunMs => *acc.run.entry(r.bucket).or_default() += r.n,
                Metric::WaitMs => *acc.wait.entry(r.bucket).or_default() += r.n,
                m => acc.counts[slot(m)] += r.n,
            }
        }
        while minutes.len() > MAX_PENDING_MINUTES {
            if let Some((minute, _)) = minutes.pop_first() {
                tracing::warn!(minute, "dropped a minute of history the store did not take");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(rows: &[StatRow], metric: Metric) -> u64 {
        rows.iter()
            .filter(|r| r.metric == metric)
            .map(|r| r.n)
            .sum()
    }

    #[test]
    fn counts_become_rows_per_minute_and_key() {
        let h = History::default();
        h.submitted(61_000, [("node", "a.js"), ("node", "a.js"), ("py", "b.py")]);
        h.ended(65_000, "node", "a.js", Metric::Succeeded, Some((3, 250)));
        h.ended(125_000, "node", "a.js", Metric::Dead, None);
        let rows = h.take();
        assert_eq!(sum(&rows, Metric::Submitted), 3);
        assert_eq!(sum(&rows, Metric::Succeeded), 1);
        assert_eq!(sum(&rows, Metric::Dead), 1);
        assert_eq!(sum(&rows, Metric::RunMs), 1);
        let run = rows.iter().find(|r| r.metric == Metric::RunMs).unwrap();
        assert_eq!((run.minute, run.bucket), (60_000, bucket_of(250)));
        let dead = rows.iter().find(|r| r.metric == Metric::Dead).unwrap();
        assert_eq!(dead.minute, 120_000);
        assert!(h.take().is_empty(), "taken once");
        h.restore(rows.clone());
        assert_eq!(h.take().len(), rows.len());
    }

    #[test]
    fn names_past_the_cap_are_counted_as_other() {
        let h = History::default();
        let names: Vec<String> = (0..MAX_KEYS_PER_MINUTE + 5)
            .map(|i| format!("j{i}"))
            .collect();
        h.submitted(0, names.iter().map(|n| ("p", n.as_str())));
        let rows = h.take();
        assert_eq!(rows.len(), MAX_KEYS_PER_MINUTE + 1);
        let other = rows.iter().find(|r| r.job == OTHER).unwrap();
        assert_eq!((other.pool.as_str(), other.n), (OTHER, 5));
    }

    #[test]
    fn pending_minutes_are_bounded() {
        let h = History::default();
        for i in 0..(MAX_PENDING_MINUTES as i64 + 10) {
            h.submitted(i * MINUTE_MS, [("p", "j")]);
        }
        assert_eq!(h.take().len(), MAX_PENDING_MINUTES);
    }
}
