//! RSS and CPU time of a worker's whole process tree, from /proc (Linux; empty elsewhere).
//!
//! One pass over `/proc/<pid>/stat` per health sample finds every process's parent, resident
//! pages and CPU ticks; a worker's figures are the sums over itself and its descendants (what
//! its jobs started counts against it). CPU includes the children's waited-for time
//! (`cutime`, `cstime`), so a child that exits moves its ticks into its parent's and the sum
//! does not drop. The page size and the clock tick come from `sysconf`.

use std::collections::HashMap;
use std::sync::OnceLock;

/// One process as its `stat` line tells.
#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: u32,
    rss_pages: u64,
    ticks: u64,
}

/// The figures of one process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TreeSample {
    /// Resident set size of the tree, bytes.
    pub(crate) rss: u64,
    /// CPU time of the tree (user + system, waited-for children included), clock ticks.
    pub(crate) ticks: u64,
    /// Processes in the tree (the root included).
    pub(crate) processes: usize,
}

/// A snapshot of the process table.
pub(crate) struct Snapshot {
    stats: HashMap<u32, Stat>,
    children: HashMap<u32, Vec<u32>>,
}

impl Snapshot {
    /// Reads every process's `stat` once.
    pub(crate) fn take() -> Self {
        let mut stats = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                if let Some(s) = read_stat(pid) {
                    stats.insert(pid, s);
                }
            }
        }
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (&pid, s) in &stats {
            children.entry(s.ppid).or_default().push(pid);
        }
        Self { stats, children }
    }

    /// The sums over `root` and its descendants; `None` when `root` is gone.
    pub(crate) fn tree(&self, root: u32) -> Option<TreeSample> {
        self.stats.get(&root)?;
        let page = page_size();
        let mut out = TreeSample {
            rss: 0,
            ticks: 0,
            processes: 0,
        };
        let mut stack = vec![root];
        // Bounded by the snapshot's size: a pid is visited at most once.
        let mut seen = std::collections::HashSet::new();
        while let Some(pid) = stack.pop() {
            if !seen.insert(pid) {
                continue;
            }
            if let Some(s) = self.stats.get(&pid) {
                out.rss = out.rss.saturating_add(s.rss_pages.saturating_mul(page));
                out.ticks = out.ticks.saturating_add(s.ticks);
                out.processes += 1;
            }
            if let Some(kids) = self.children.get(&pid) {
                stack.extend(kids.iter().copied());
            }
        }
        Some(out)
    }
}

fn read_stat(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses): state(3) ppid(4)
    // … utime(14) stime(15) cutime(16) cstime(17) … rss(24), 1-based.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<i64>().ok());
    let ppid = u32::try_from(num(1)?).ok()?;
    let ticks = [11, 12, 13, 14]
        .into_iter()
        .map(|i| num(i).map_or(0, |v| u64::try_from(v).unwrap_or(0)))
        .sum();
    let rss_pages = u64::try_from(num(21)?).unwrap_or(0);
    Some(Stat {
        ppid,
        rss_pages,
        ticks,
    })
}

#[allow(unsafe_code)]
fn sysconf(name: libc::c_int, fallback: u64) -> u64 {
    // SAFETY: sysconf reads a system constant; it has no memory effects.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|v| *v > 0).unwrap_or(fallback)
}

/// The system's page size (`sysconf(_SC_PAGESIZE)`).
pub(crate) fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| sysconf(libc::_SC_PAGESIZE, 4096))
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, USER_HZ).
pub(crate) fn ticks_per_sec() -> f64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| sysconf(libc::_SC_CLK_TCK, 100)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process_and_its_children() {
        let me = std::process::id();
        let before = Snapshot::take().tree(me).unwrap();
        assert!(before.rss > 1024 * 1024, "rss {}", before.rss);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let with_child = Snapshot::take().tree(me).unwrap();
        // Right after its execve the child may have no resident page yet: sampled until it
        // has one (bounded; the loop ends with the last sample either way).
        let mut alone = Snapshot::take().tree(child.id()).unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alone.rss == 0 && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(1));
            alone = Snapshot::take().tree(child.id()).unwrap();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(alone.processes, 1);
        assert!(with_child.processes > before.processes);
        assert!(
            alone.rss > 0,
            "a live `sleep` without a resident page for 10 s"
        );
        assert!(Snapshot::take().tree(u32::MAX).is_none());
    }

    #[test]
    fn the_page_size_is_the_systems() {
        let p = page_size();
        assert!(p.is_power_of_two() && p >= 4096, "{p}");
        assert!(ticks_per_sec() > 0.0);
    }
}
