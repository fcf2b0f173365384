//! A token bucket per UDP source address: `rate` datagrams per second, `burst` at once.
//!
//! The table is bounded ([`MAX_SOURCES`]): when it is full, buckets that have refilled (their
//! source has been quiet) are forgotten; if none has, a datagram from a new source is refused
//! like one over its rate (a flood from many addresses is still bounded in total).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Sources tracked at once.
pub(crate) const MAX_SOURCES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by source address.
#[derive(Debug)]
pub(crate) struct Buckets {
    rate: f64,
    burst: f64,
    by_source: HashMap<IpAddr, Bucket>,
}

impl Buckets {
    pub(crate) fn new(rate_per_s: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate_per_s.max(1)),
            burst: f64::from(burst.max(1)),
            by_source: HashMap::new(),
        }
    }

    fn level(&self, b: Bucket, now: Instant) -> f64 {
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.rate;
        (b.tokens + refill).min(self.burst)
    }

    /// Whether a datagram from `source` at `now` is within its rate (and takes a token).
    pub(crate) fn take(&mut self, source: IpAddr, now: Instant) -> bool {
        if !self.by_source.contains_key(&source) && self.by_source.len() >= MAX_SOURCES {
            let burst = self.burst;
            let full: Vec<IpAddr> = self
                .by_source
                .iter()
                .filter(|(_, b)| self.level(**b, now) >= burst)
                .map(|(ip, _)| *ip)
                .collect();
            for ip in full {
                self.by_source.remove(&ip);
            }
            if self.by_source.len() >= MAX_SOURCES {
                return false;
            }
        }
        let fresh = Bucket {
            tokens: self.burst,
            at: now,
        };
        let b = self.by_source.get(&source).copied().unwrap_or(fresh);
        let tokens = self.level(b, now);
        let (tokens, ok) = if tokens >= 1.0 {
            (tokens - 1.0, true)
        } else {
            (tokens, false)
        };
        self.by_source.insert(source, Bucket { tokens, at: now });
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate_per_source() {
        let mut b = Buckets::new(10, 5);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let c: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!((0..20).filter(|_| b.take(a, t0)).count(), 5);
        // Another source has its own bucket.
        assert!(b.take(c, t0));
        // 10 per second: 2 more after 200 ms.
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!((0..20).filter(|_| b.take(a, t1)).count(), 2);
        // Never more than the burst after a long pause.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..20).filter(|_| b.take(a, t2)).count(), 5);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut b = Buckets::new(1, 1);
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            assert!(b.take(IpAddr::from(i.to_be_bytes()), t0));
        }
        // Full and nobody has refilled: a new source is refused.
        assert!(!b.take("192.168.0.1".parse().unwrap(), t0));
        // Once they refilled, they are forgotten and the new one is served.
        let later = t0 + Duration::from_secs(2);
        assert!(b.take("192.168.0.1".parse().unwrap(), later));
        assert!(b.by_source.len() <= MAX_SOURCES);
    }
}
