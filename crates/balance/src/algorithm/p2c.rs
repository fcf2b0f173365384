//! `p2c`: power of two choices (Envoy's default least-request, tower's `p2c`).
//!
//! Rule: draw two distinct eligible targets uniformly at random; the one with fewer in-flight
//! picks wins, the first drawn on a tie. With a single eligible target, that target. Weights are
//! ignored. Nearly as even as a full least-in-flight scan, in O(1): two draws over all targets,
//! redrawn (up to four times) while either is ineligible, then an exact draw among the eligible
//! targets in O(n).

use rand::{Rng, RngCore};

use super::Strategy;
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct PowerOfTwo {
    /// Scratch: eligible indices, for the slow path.
    eligible: Vec<usize>,
}

/// The candidate with fewer in-flight picks; `a` on a tie.
#[inline]
fn better(set: &TargetSet, a: usize, b: usize) -> usize {
    if set.entry(b).in_flight() < set.entry(a).in_flight() {
        b
    } else {
        a
    }
}

/// Two distinct uniform indices below `n` (`n >= 2`).
#[inline]
fn two(rng: &mut dyn RngCore, n: usize) -> (usize, usize) {
    let a = rng.random_range(0..n);
    let mut b = rng.random_range(0..n - 1);
    if b >= a {
        b += 1;
    }
    (a, b)
}

impl Strategy for PowerOfTwo {
    fn pick(&mut self, set: &TargetSet, req: &Request<'_>, rng: &mut dyn RngCore) -> Option<usize> {
        let n = set.len();
        if n >= 2 {
            for _ in 0..4 {
                let (a, b) = two(rng, n);
                if req.eligible(set, a) && req.eligible(set, b) {
                    return Some(better(set, a, b));
                }
            }
        }
        self.eligible.clear();
        self.eligible
            .extend((0..n).filter(|&i| req.eligible(set, i)));
        match self.eligible.len() {
            0 => None,
            1 => Some(self.eligible[0]),
            m => {
                let (a, b) = two(rng, m);
                Some(better(set, self.eligible[a], self.eligible[b]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::testing::{counts, hold, ids, int, lb};
    use crate::{Algorithm, PickContext, TargetId};

    #[test]
    fn the_less_loaded_of_two_wins() {
        // Two targets: both are always the candidates, so the idle one must win.
        let mut lb = lb(Algorithm::P2c, &[1.0, 1.0]);
        let busy = lb.pick_one(&PickContext::new()).unwrap();
        let other = if int(&busy) == 0 { 1 } else { 0 };
        for _ in 0..50 {
            assert_eq!(int(&lb.pick_one(&PickContext::new()).unwrap()), other);
        }
    }

    #[test]
    fn held_load_stays_even() {
        let mut lb = lb(Algorithm::P2c, &[1.0; 8]);
        let (got, _held) = hold(&mut lb, 800);
        let c = counts(&got, 8);
        let (min, max) = (c.iter().min().unwrap(), c.iter().max().unwrap());
        // Uniform random would spread ±~30 around 100; p2c keeps it within a few.
        assert!(max - min <= 4, "{c:?}");
    }

    #[test]
    fn uniform_when_nothing_is_held() {
        let mut lb = lb(Algorithm::P2c, &[1.0; 4]);
        let c = counts(&ids(&mut lb, 40_000), 4);
        for k in c {
            assert!((9_565..=10_435).contains(&k), "{k}");
        }
    }

    #[test]
    fn single_eligible_empty_and_filtered() {
        let mut lb = lb(Algorithm::P2c, &[1.0]);
        assert_eq!(ids(&mut lb, 3), [0, 0, 0]);
        let mut lb = crate::algorithm::testing::lb(Algorithm::P2c, &[]);
        assert!(lb.pick_one(&PickContext::new()).is_none());
        let mut lb = crate::algorithm::testing::lb(Algorithm::P2c, &[1.0; 50]);
        let only = |id: &TargetId| matches!(id, TargetId::Int(13 | 31));
        let ctx = PickContext::new().with_filter(&only);
        let held: Vec<_> = (0..10).map(|_| lb.pick_one(&ctx).unwrap()).collect();
        let got: Vec<i64> = held.iter().map(int).collect();
        let c = counts(&got, 50);
        assert_eq!((c[13], c[31]), (5, 5), "{got:?}");
    }
}
