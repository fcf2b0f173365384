//! The figures a balancer keeps per target besides its list entry: [`LoadSample`] (cpu and
//! memory, read by `leastLoad` and `leastMemory`) and [`ParamsUpdate`] (a partial change of a
//! target). Plain values below both the balancer and the target set that stores them.

/// The last load figures of a target, given to [`LoadBalancer::refresh_params`](crate::LoadBalancer::refresh_params).
///
/// `cpu` is a percentage (100 = one core busy), `memory` the resident set size in bytes. `None`
/// means unknown. A cpu figure that is NaN, negative or infinite is stored as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct LoadSample {
    /// CPU use in percent of one core; `None` if unknown.
    pub cpu: Option<f64>,
    /// Resident memory in bytes; `None` if unknown.
    pub memory: Option<u64>,
}

impl LoadSample {
    /// A sample with both figures known.
    #[must_use]
    pub fn new(cpu: f64, memory: u64) -> Self {
        Self {
            cpu: Some(cpu),
            memory: Some(memory),
        }
        .sanitized()
    }

    /// A sample with only the memory figure known.
    #[must_use]
    pub fn memory(memory: u64) -> Self {
        Self {
            cpu: None,
            memory: Some(memory),
        }
    }

    /// A sample with only the cpu figure known.
    #[must_use]
    pub fn cpu(cpu: f64) -> Self {
        Self {
            cpu: Some(cpu),
            memory: None,
        }
        .sanitized()
    }

    /// A NaN, negative or infinite cpu figure becomes unknown.
    pub(crate) fn sanitized(mut self) -> Self {
        self.cpu = self.cpu.filter(|c| c.is_finite() && *c >= 0.0);
        self
    }
}

/// A partial change to one target, for [`LoadBalancer::update_params`](crate::LoadBalancer::update_params). Fields left unset keep
/// their value.
///
/// ```
/// use offload_balance::ParamsUpdate;
///
/// let update = ParamsUpdate::new().weight(2.0).capacity(Some(4));
/// # let _ = update;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ParamsUpdate {
    pub(crate) weight: Option<f64>,
    pub(crate) capacity: Option<Option<u64>>,
    pub(crate) load: Option<LoadSample>,
}

impl ParamsUpdate {
    /// Changes nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the weight (validated like a new target's).
    #[must_use]
    pub fn weight(mut self, weight: f64) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Sets the capacity (`None` is unlimited). Lowering it below the current in-flight count
    /// cancels nothing: the target is just not picked until enough picks are dropped.
    #[must_use]
    pub fn capacity(mut self, capacity: Option<u64>) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Replaces the load figures, as [`LoadBalancer::refresh_params`](crate::LoadBalancer::refresh_params) does.
    #[must_use]
    pub fn load(mut self, load: LoadSample) -> Self {
        self.load = Some(load);
        self
    }
}
