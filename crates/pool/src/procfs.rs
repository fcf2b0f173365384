//! RSS and CPU time of a process, from /proc (Linux; `None` elsewhere).

/// Resident set size in bytes and CPU time in clock ticks (user + system).
pub(crate) fn sample(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name: state(3) … utime(14) stime(15) … rss(24), 1-based.
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    Some((rss_pages * page_size(), utime + stime))
}

fn page_size() -> u64 {
    // SAFETY-free: sysconf via std is not available; 4 KiB is the page size of every Linux
    // target offload supports, and RSS is informational.
    4096
}

/// Clock ticks per second (USER_HZ), 100 on every Linux target.
pub(crate) const TICKS_PER_SEC: f64 = 100.0;

#[cfg(test)]
mod tests {
    #[test]
    fn samples_this_process() {
        let (rss, _cpu) = super::sample(std::process::id()).unwrap();
        assert!(rss > 1024 * 1024, "rss {rss}");
        assert!(super::sample(u32::MAX).is_none());
    }
}
