//! [`ResourceLimits`]: the `setrlimit` limits of a worker. A plain value below both the
//! spawner (`spawn.rs`, which takes it from callers) and the code that runs between `fork` and
//! `exec` (`sys.rs`, which applies it), so neither imports the other for it; the process
//! actor also reads it to recognise a resource-limit death (`process/verdict.rs`).

/// Resource limits applied with `setrlimit` in the child before `exec`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceLimits {
    /// `RLIMIT_AS`: the largest address space, in bytes. Over it, allocations fail (a Node or
    /// Python worker then dies with an out-of-memory error; the job's outcome says so).
    pub address_space_bytes: Option<u64>,
    /// `RLIMIT_CPU`: CPU seconds; the kernel sends `SIGXCPU`, then `SIGKILL`.
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_NOFILE`: open files.
    pub open_files: Option<u64>,
}

impl ResourceLimits {
    /// No limits.
    pub fn none() -> Self {
        Self::default()
    }

    /// The limits a host binding's options name (its `memory_limit` in bytes and
    /// `cpu_seconds`), each optional.
    pub fn of_host(address_space_bytes: Option<u64>, cpu_seconds: Option<u64>) -> Self {
        Self {
            address_space_bytes,
            cpu_seconds,
            open_files: None,
        }
    }

    /// Sets the address-space limit in bytes.
    #[must_use]
    pub fn address_space(mut self, bytes: u64) -> Self {
        self.address_space_bytes = Some(bytes);
        self
    }

    /// Sets the CPU-seconds limit.
    #[must_use]
    pub fn cpu_seconds(mut self, secs: u64) -> Self {
        self.cpu_seconds = Some(secs);
        self
    }

    /// Sets the open-files limit.
    #[must_use]
    pub fn open_files(mut self, n: u64) -> Self {
        self.open_files = Some(n);
        self
    }

    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
