//! Targets: what a [`LoadBalancer`](crate::LoadBalancer) picks among.
//!
//! A target is an id, a weight and an optional capacity. In a process pool a target is one worker
//! process: its id is the pid, its capacity the number of jobs the worker may run at once.
//!
//! # How ids compare
//!
//! A [`TargetId`] is either an integer or a string, and the two kinds are **distinct**: the
//! integer `123` and the string `"123"` are different ids, never equal, and they may both be
//! present in one balancer. This is the seed's strict `===` rule, kept on purpose: a lenient
//! lookup would make `"0123"`, `"123"` and `123` ambiguous. The same holds for [`Key`]s: a
//! string key never selects an integer id. In JSON an id is a number or a string
//! (`{"id": 123}` is [`TargetId::Int`], `{"id": "123"}` is [`TargetId::Str`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id of a target: an integer (e.g. a pid) or a string.
///
/// Integer and string ids are distinct: `TargetId::Int(123) != TargetId::from("123")`, and a
/// string key never selects an integer id (see [`Key`]). The strict rule is ee-core's `===`,
/// kept because a lenient one would make `"0123"`, `"123"` and `123` ambiguous. Ordering (for
/// sorted maps) puts every integer before every string. Serialized untagged: a JSON number
/// (`123`) or a JSON string (`"123"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum TargetId {
    /// An integer id, such as a process id.
    Int(i64),
    /// A string id.
    Str(String),
}

impl TargetId {
    /// This id as a borrowed [`Key`], e.g. to [`specify`](crate::Algorithm::Specify) it.
    #[must_use]
    pub fn as_key(&self) -> Key<'_> {
        match self {
            Self::Int(i) => Key::Int(*i),
            Self::Str(s) => Key::Str(s),
        }
    }
}

impl fmt::Display for TargetId {
    /// Integers print as digits, strings as they are (unquoted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(i) => write!(f, "{i}"),
            Self::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for TargetId {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<i32> for TargetId {
    fn from(v: i32) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<u32> for TargetId {
    /// A pid (`std::process::Child::id` returns `u32`).
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<&str> for TargetId {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}

impl From<String> for TargetId {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}

impl From<Key<'_>> for TargetId {
    fn from(k: Key<'_>) -> Self {
        match k {
            Key::Int(i) => Self::Int(i),
            Key::Str(s) => Self::Str(s.to_owned()),
        }
    }
}

/// A borrowed key carried by a [`PickContext`](crate::PickContext): the id wanted by
/// [`specify`](crate::Algorithm::Specify), or the affinity key hashed by
/// [`consistentHash`](crate::Algorithm::ConsistentHash).
///
/// Like [`TargetId`], `Key::Int(123)` and `Key::Str("123")` are different keys: the first only
/// specifies `TargetId::Int(123)`, and they hash to unrelated points of the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Key<'a> {
    /// An integer key.
    Int(i64),
    /// A string key.
    Str(&'a str),
}

impl<'a> From<&'a TargetId> for Key<'a> {
    fn from(id: &'a TargetId) -> Self {
        id.as_key()
    }
}

impl<'a> From<&'a str> for Key<'a> {
    fn from(s: &'a str) -> Self {
        Key::Str(s)
    }
}

impl<'a> From<&'a String> for Key<'a> {
    fn from(s: &'a String) -> Self {
        Key::Str(s)
    }
}

impl From<i64> for Key<'_> {
    fn from(v: i64) -> Self {
        Key::Int(v)
    }
}

impl From<i32> for Key<'_> {
    fn from(v: i32) -> Self {
        Key::Int(i64::from(v))
    }
}

impl From<u32> for Key<'_> {
    fn from(v: u32) -> Self {
        Key::Int(i64::from(v))
    }
}

fn default_weight() -> f64 {
    1.0
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_default_weight(w: &f64) -> bool {
    *w == 1.0
}

/// A target `{id, weight, capacity}`.
///
/// * `weight` (default `1.0`) is read by the weighted algorithms only. It must be finite and in
///   `0.0..=`[`Target::MAX_WEIGHT`]; anything else (negative, NaN, infinite, too large) is
///   rejected by the balancer with [`Error::InvalidWeight`](crate::Error::InvalidWeight). A
///   weight of `0.0` makes the target a *backup* for the weighted algorithms: it is picked only
///   when no eligible target has a positive weight.
/// * `capacity` (default `None`, unlimited) is the most picks the target may hold at once: a
///   target whose in-flight count has reached its capacity is skipped by **every** algorithm.
///   `Some(0)` parks a target (never picked).
///
/// Serialized as `{"id": 1, "weight": 2.0, "capacity": 4}`; `weight` and `capacity` may be
/// omitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Target {
    /// The target's id, unique within a balancer.
    pub id: TargetId,
    /// The weight used by the weighted algorithms (default `1.0`).
    #[serde(default = "default_weight", skip_serializing_if = "is_default_weight")]
    pub weight: f64,
    /// Most in-flight picks at once; `None` is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
}

impl Target {
    /// The largest accepted weight, `1e9`. The bound keeps every sum of weights exact for
    /// integer weights (far below 2^53), so smooth weighted round robin stays exact.
    pub const MAX_WEIGHT: f64 = 1e9;

    /// A target of weight `1.0` and unlimited capacity.
    #[must_use]
    pub fn new(id: impl Into<TargetId>) -> Self {
        Self {
            id: id.into(),
            weight: 1.0,
            capacity: None,
        }
    }

    /// This target with another weight (validated when it reaches a balancer).
    #[must_use]
    pub fn with_weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// This target with a capacity (`None` is unlimited).
    #[must_use]
    pub fn with_capacity(mut self, capacity: Option<u64>) -> Self {
        self.capacity = capacity;
        self
    }
}

/// Whether `w` is an acceptable weight: finite and in `0.0..=Target::MAX_WEIGHT`.
pub(crate) fn weight_is_valid(w: f64) -> bool {
    (0.0..=Target::MAX_WEIGHT).contains(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_and_integer_ids_are_distinct() {
        assert_ne!(TargetId::from(123), TargetId::from("123"));
        assert_ne!(Key::Int(123), Key::Str("123"));
        assert_eq!(TargetId::from(123_u32), TargetId::Int(123));
        assert_eq!(TargetId::from("a").as_key(), Key::Str("a"));
        assert!(
            TargetId::Int(i64::MAX) < TargetId::from(""),
            "integers sort before strings"
        );
        assert_eq!(TargetId::from(Key::Str("x")), TargetId::from("x"));
        assert_eq!(TargetId::from(-3).to_string(), "-3");
    }

    #[test]
    fn ids_deserialize_untagged_and_keep_their_kind() {
        let t: Target = serde_json::from_str(r#"{"id": 123}"#).unwrap();
        assert_eq!(t.id, TargetId::Int(123));
        assert_eq!(t.weight, 1.0);
        assert_eq!(t.capacity, None);
        let t: Target =
            serde_json::from_str(r#"{"id": "123", "weight": 2.5, "capacity": 3}"#).unwrap();
        assert_eq!(t.id, TargetId::Str("123".into()));
        assert_eq!(t.weight, 2.5);
        assert_eq!(t.capacity, Some(3));
        assert!(serde_json::from_str::<Target>(r#"{"id": 1.5}"#).is_err());
        assert!(serde_json::from_str::<Target>(r#"{"weight": 1}"#).is_err());
    }

    #[test]
    fn targets_serialize_compactly() {
        let json = serde_json::to_string(&Target::new(7)).unwrap();
        assert_eq!(json, r#"{"id":7}"#);
        let json = serde_json::to_string(&Target::new("w").with_weight(2.0).with_capacity(Some(1)))
            .unwrap();
        assert_eq!(json, r#"{"id":"w","weight":2.0,"capacity":1}"#);
    }

    #[test]
    fn weight_validation() {
        for w in [0.0, 0.5, 1.0, Target::MAX_WEIGHT] {
            assert!(weight_is_valid(w), "{w}");
        }
        for w in [
            -1.0,
            -0.0001,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            2e9,
        ] {
            assert!(!weight_is_valid(w), "{w}");
        }
    }
}
