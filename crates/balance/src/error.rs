//! The errors of this crate.

use crate::{Target, TargetId};

/// What went wrong when configuring a [`LoadBalancer`](crate::LoadBalancer).
///
/// Picking never fails: a pick with no eligible target returns `None`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An algorithm name is not one of the names in [`Algorithm::ALL`](crate::Algorithm::ALL).
    #[error("unknown load-balancing algorithm `{name}`; valid names are: {valid}", valid = crate::algorithm::NAMES_JOINED)]
    UnknownAlgorithm {
        /// The name given.
        name: String,
    },
    /// A target with this id is already present.
    #[error("target `{id}` is already present; remove it first, or change it with update_params")]
    DuplicateId {
        /// The id given twice.
        id: TargetId,
    },
    /// A weight is negative, NaN, infinite or above [`Target::MAX_WEIGHT`].
    #[error(
        "invalid weight {weight} for target `{id}`: a weight must be a finite number from 0 to {max}",
        max = Target::MAX_WEIGHT
    )]
    InvalidWeight {
        /// The target whose weight was rejected.
        id: TargetId,
        /// The rejected weight.
        weight: f64,
    },
    /// No target has this id.
    #[error("no target `{id}` in the balancer")]
    NotFound {
        /// The id looked up.
        id: TargetId,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_actionable() {
        let e = Error::UnknownAlgorithm {
            name: "roundRobin".into(),
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("unknown load-balancing algorithm `roundRobin`"),
            "{msg}"
        );
        assert!(
            msg.contains("polling")
                && msg.contains("weightsMinimumConnection")
                && msg.contains("consistentHash"),
            "{msg}"
        );
        let e = Error::InvalidWeight {
            id: TargetId::from(3),
            weight: -1.0,
        };
        assert_eq!(
            e.to_string(),
            "invalid weight -1 for target `3`: a weight must be a finite number from 0 to 1000000000"
        );
        assert_eq!(
            Error::NotFound { id: "w".into() }.to_string(),
            "no target `w` in the balancer"
        );
    }
}
