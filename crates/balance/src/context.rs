//! What a caller tells a pick: an optional key and an optional eligibility filter.

use std::fmt;

use crate::{Key, TargetId};

/// The per-pick input of [`LoadBalancer::pick_one`](crate::LoadBalancer::pick_one) and
/// [`pick_multi`](crate::LoadBalancer::pick_multi).
///
/// * The **key** is the id wanted by [`specify`](crate::Algorithm::Specify) and the affinity key
///   hashed by [`consistentHash`](crate::Algorithm::ConsistentHash); other algorithms ignore it.
/// * The **filter** restricts the pick to the targets for which it returns `true` ("only among
///   these"). It is called with target ids during the pick, possibly several times per target;
///   it should be cheap and pure.
///
/// A target is *eligible* when it passes the filter and its in-flight count is below its
/// capacity. Every algorithm picks only eligible targets.
///
/// ```
/// use offload_balance::{PickContext, TargetId};
///
/// let busy = [TargetId::from(2)];
/// let not_busy = |id: &TargetId| !busy.contains(id);
/// let ctx = PickContext::new().with_key("user-42").with_filter(&not_busy);
/// assert!(ctx.key().is_some());
/// ```
#[derive(Clone, Copy, Default)]
pub struct PickContext<'a> {
    key: Option<Key<'a>>,
    filter: Option<&'a dyn Fn(&TargetId) -> bool>,
}

impl<'a> PickContext<'a> {
    /// No key, no filter.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            key: None,
            filter: None,
        }
    }

    /// This context with a key.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<Key<'a>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// This context with an eligibility filter: only targets for which `filter` returns `true`
    /// may be picked.
    #[must_use]
    pub fn with_filter(mut self, filter: &'a dyn Fn(&TargetId) -> bool) -> Self {
        self.filter = Some(filter);
        self
    }

    /// The key, if any.
    #[must_use]
    pub fn key(&self) -> Option<Key<'a>> {
        self.key
    }

    /// The filter, if any.
    pub(crate) fn filter(&self) -> Option<&'a dyn Fn(&TargetId) -> bool> {
        self.filter
    }
}

impl fmt::Debug for PickContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PickContext")
            .field("key", &self.key)
            .field("filter", &self.filter.map(|_| "<fn>"))
            .finish()
    }
}
