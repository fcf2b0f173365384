//! The claim's decisions under [rate and concurrency limits](crate::throttle), written once for
//! both engines: the token bucket's refill, how many jobs a pool may start, which job names are
//! closed, and which candidates (in claim order) start.
//!
//! An engine's limited claim, in its transaction (the limit rows locked on a shared store):
//!
//! 1. read every limit with its bucket and count the running jobs of each limited queue, then
//!    build a [`Gate`] (refilled to now);
//! 2. per pool of the demand: `want = gate.pool_allowance(pool, n)`; while `want > 0`, pick up
//!    to `want` queued jobs in claim order whose name is not in [`Gate::closed_jobs`], pass them
//!    to [`Gate::sift`], start the ones it keeps; stop when it refused none;
//! 3. write back the buckets ([`Gate::buckets`]).

use std::collections::HashMap;

use super::rows::Row;
use super::values::to_u64;
use crate::throttle::{HeldBy, Rate, Throttle, ThrottleState, MICRO};
use crate::{Millis, Queue, QueueKind, StoreError};

/// The bucket's tokens (in millionths) at `now`, refilled since `refilled_at` at
/// `limit / period_ms`, at most `limit` tokens. A clock that went back refills nothing.
pub fn refill(rate: Rate, micro: i64, refilled_at: Millis, now: Millis) -> i64 {
    let cap = i128::from(rate.limit) * i128::from(MICRO);
    let elapsed = i128::from(now.saturating_sub(refilled_at).max(0));
    let added =
        elapsed * i128::from(rate.limit) * i128::from(MICRO) / i128::from(rate.period_ms.max(1));
    let tokens = (i128::from(micro) + added).min(cap);
    i64::try_from(tokens).unwrap_or(i64::MAX)
}

/// A full bucket of `rate`, in millionths (a new limit starts full).
pub fn full(rate: Rate) -> i64 {
    i64::try_from(i128::from(rate.limit) * i128::from(MICRO)).unwrap_or(i64::MAX)
}

/// A stored limit from a row with columns `kind`, `name`, `rate_limit`, `period_ms`,
/// `max_running`, `tokens`, `refilled_at`: the limit, its tokens (millionths) and when.
///
/// # Errors
///
/// An engine error for a missing column, an unknown kind or a negative number.
pub fn stored(r: &impl Row) -> Result<(Throttle, i64, Millis), StoreError> {
    let kind = r.text("kind")?;
    let kind = QueueKind::parse(&kind)
        .ok_or_else(|| StoreError::Engine(format!("unknown queue kind {kind:?}")))?;
    let rate = match (r.opt_int("rate_limit")?, r.opt_int("period_ms")?) {
        (Some(limit), Some(period_ms)) => Some(Rate {
            limit: to_u64(limit, "rate_limit")?,
            period_ms: to_u64(period_ms, "period_ms")?,
        }),
        _ => None,
    };
    let max_running = r
        .opt_int("max_running")?
        .map(|k| to_u64(k, "max_running"))
        .transpose()?;
    let throttle = Throttle {
        queue: Queue {
            kind,
            name: r.text("name")?,
        },
        rate,
        max_running,
    };
    Ok((throttle, r.int("tokens")?, r.int("refilled_at")?))
}

/// One limit as the claim sees it: its bucket refilled to now and its running jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// The limit.
    pub throttle: Throttle,
    /// Tokens in millionths (meaningless without a rate).
    pub micro: i64,
    /// When `micro` was computed.
    pub refilled_at: Millis,
    /// Its queue's running jobs.
    pub running: u64,
}

impl Bucket {
    /// The bucket of `throttle` as stored (`micro` at `refilled_at`), refilled to `now`.
    pub fn at(
        throttle: Throttle,
        micro: i64,
        refilled_at: Millis,
        running: u64,
        now: Millis,
    ) -> Self {
        let micro = match throttle.rate {
            Some(rate) => refill(rate, micro, refilled_at, now),
            None => micro,
        };
        Self {
            throttle,
            micro,
            refilled_at: now.max(refilled_at),
            running,
        }
    }

    /// How many more jobs of the queue may start now.
    pub fn allowance(&self) -> u64 {
        let by_rate = self
            .throttle
            .rate
            .map_or(u64::MAX, |_| u64::try_from(self.micro / MICRO).unwrap_or(0));
        let by_running = self
            .throttle
            .max_running
            .map_or(u64::MAX, |k| k.saturating_sub(self.running));
        by_rate.min(by_running)
    }

    /// What holds the queue's jobs back now, if anything (the concurrency limit first: it
    /// lasts until a job ends).
    pub fn held(&self) -> Option<HeldBy> {
        if self.throttle.max_running.is_some_and(|k| self.running >= k) {
            return Some(HeldBy::ConcurrencyLimit);
        }
        if self.throttle.rate.is_some() && self.micro < MICRO {
            return Some(HeldBy::RateLimit);
        }
        None
    }

    /// One job of the queue starts: a token taken, one more running.
    pub fn take(&mut self, n: u64) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        if self.throttle.rate.is_some() {
            self.micro = self.micro.saturating_sub(n.saturating_mul(MICRO));
        }
        self.running = self.running.saturating_add(n.unsigned_abs());
    }

    /// Where it stands, with `queued` jobs of its queue.
    pub fn state(&self, queued: u64) -> ThrottleState {
        ThrottleState {
            throttle: self.throttle.clone(),
            tokens: self
                .throttle
                .rate
                .map(|_| u64::try_from(self.micro / MICRO).unwrap_or(0)),
            running: self.running,
            queued,
            held: self.held(),
        }
    }
}

/// The limits of one claim.
#[derive(Debug, Default)]
pub struct Gate {
    pools: HashMap<String, Bucket>,
    jobs: HashMap<String, Bucket>,
}

impl Gate {
    /// The gate of these buckets.
    pub fn new(buckets: impl IntoIterator<Item = Bucket>) -> Self {
        let mut gate = Self::default();
        for b in buckets {
            let map = match b.throttle.queue.kind {
                QueueKind::Pool => &mut gate.pools,
                QueueKind::Job => &mut gate.jobs,
            };
            map.insert(b.throttle.queue.name.clone(), b);
        }
        gate
    }

    /// Whether no limit applies at all.
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty() && self.jobs.is_empty()
    }

    /// How many of the `n` jobs asked of `pool` its own limit lets start.
    pub fn pool_allowance(&self, pool: &str, n: usize) -> usize {
        self.pools.get(pool).map_or(n, |b| {
            usize::try_from(b.allowance()).map_or(n, |a| a.min(n))
        })
    }

    /// The job names none of whose jobs may start now, sorted.
    pub fn closed_jobs(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, b)| b.allowance() == 0)
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// Keeps, in order, the candidates of `pool` (each with its job name) whose name's limit
    /// lets them start, taking their tokens (the name's and the pool's). Returns the kept ones
    /// and whether it refused one (a name closed on the way: pick again without it).
    pub fn sift<T>(&mut self, pool: &str, candidates: Vec<(T, String)>) -> (Vec<T>, bool) {
        let mut kept = Vec::with_capacity(candidates.len());
        let mut refused = false;
        for (item, job) in candidates {
            if let Some(b) = self.jobs.get_mut(&job) {
                if b.allowance() == 0 {
                    refused = true;
                    continue;
                }
                b.take(1);
            }
            kept.push(item);
        }
        if let Some(b) = self.pools.get_mut(pool) {
            b.take(kept.len() as u64);
        }
        (kept, refused)
    }

    /// Every bucket, to write back (pools first, then by name).
    pub fn buckets(&self) -> Vec<&Bucket> {
        let mut out: Vec<&Bucket> = self.pools.values().chain(self.jobs.values()).collect();
        out.sort_by(|a, b| a.throttle.queue.cmp(&b.throttle.queue));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(queue: Queue, rate: Option<(u64, u64)>, max_running: Option<u64>) -> Bucket {
        let rate = rate.map(|(limit, period_ms)| Rate { limit, period_ms });
        let micro = rate.map_or(0, full);
        Bucket::at(
            Throttle {
                queue,
                rate,
                max_running,
            },
            micro,
            0,
            0,
            0,
        )
    }

    #[test]
    fn the_bucket_refills_at_its_rate_up_to_its_size() {
        let r = Rate {
            limit: 10,
            period_ms: 1000,
        };
        assert_eq!(refill(r, 0, 0, 100), MICRO);
        assert_eq!(refill(r, 0, 0, 150), MICRO + MICRO / 2);
        assert_eq!(refill(r, 0, 0, 10_000), 10 * MICRO);
        assert_eq!(
            refill(r, 3 * MICRO, 500, 400),
            3 * MICRO,
            "the clock went back"
        );
        let slow = Rate {
            limit: 3,
            period_ms: 1000,
        };
        assert_eq!(refill(slow, 0, 0, 1000), 3 * MICRO);
        assert_eq!(refill(slow, 0, 0, 333), 999_000);
    }

    #[test]
    fn a_gate_keeps_jobs_in_order_until_a_name_closes() {
        let mut gate = Gate::new([
            bucket(Queue::pool("p"), Some((3, 60_000)), None),
            bucket(Queue::job("a"), None, Some(1)),
        ]);
        assert_eq!(gate.pool_allowance("p", 10), 3);
        assert_eq!(gate.pool_allowance("q", 10), 10);
        let (kept, refused) =
            gate.sift("p", vec![(1, "a".into()), (2, "a".into()), (3, "b".into())]);
        assert_eq!(kept, [1, 3]);
        assert!(refused);
        assert_eq!(gate.closed_jobs(), ["a"]);
        assert_eq!(gate.pool_allowance("p", 10), 1);
        let b = gate.buckets();
        assert_eq!(b[0].held(), None);
        assert_eq!(b[1].held(), Some(HeldBy::ConcurrencyLimit));
        let (kept, refused) = gate.sift("p", vec![(4, "b".into())]);
        assert_eq!((kept, refused), (vec![4], false));
        assert_eq!(gate.pool_allowance("p", 10), 0);
        assert_eq!(gate.buckets()[0].held(), Some(HeldBy::RateLimit));
    }
}
