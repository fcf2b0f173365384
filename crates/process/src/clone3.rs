//! `clone3(CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP)`: the child of `vfork.rs` created
//! inside its worker cgroup instead of moving itself there with a `write("0")` to
//! `cgroup.procs`.
//!
//! Why: that write is a cgroup *migration*. It takes the cgroup core's thread-group lock for
//! writing, which waits for an RCU grace period, while the spawning thread is suspended by
//! `CLONE_VFORK`: ≈ 0.13 ms of every spawn on an idle 2-core virtual machine (`exec → outcome`
//! of a static Rust worker 1.05–1.08 ms with the write, 0.92 ms without a cgroup at all;
//! `tests/conformance/benches/README.md`). A child created in its cgroup is attached by the
//! fork path, under the same lock taken for reading.
//!
//! glibc has no `clone3` wrapper that runs a function on a new stack (its `clone` is `clone2`),
//! so the call is a few instructions of inline assembly, x86-64 only: the child returns from
//! the system call on its own stack and calls [`ChildEntry`] at once, which `execve`s or
//! `_exit`s and never returns. Elsewhere, and when the kernel refuses (`ENOSYS` before 5.3,
//! `E2BIG`/`EINVAL` before 5.7's `CLONE_INTO_CGROUP`, a seccomp filter, a cgroup it will not
//! attach to), [`spawn_into_cgroup`] answers `None` and `vfork.rs` clones as before, the child
//! joining with its write.
#![allow(unsafe_code)]
#![cfg_attr(
    not(all(target_os = "linux", target_arch = "x86_64")),
    allow(dead_code)
)]

use std::sync::atomic::{AtomicBool, Ordering};

/// The child's entry: gets the argument, never returns.
pub(crate) type ChildEntry = extern "C" fn(*mut libc::c_void) -> libc::c_int;

/// `CLONE_INTO_CGROUP` (Linux 5.7, `include/uapi/linux/sched.h`; the `libc` crate's constant
/// is typed `c_int` and cannot hold it).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Set once the kernel said it has no `clone3` or no `CLONE_INTO_CGROUP`: not asked again.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Starts `entry(arg)` as a child sharing this process's memory until its `execve`
/// (`CLONE_VM | CLONE_VFORK`: returns after that), on the stack `[stack, stack + size)`,
/// created in the cgroup whose directory is open as `cgroup_dir`. `Some(pid)`, or `None` when
/// this kernel or architecture cannot (nothing was started then; clone the other way).
///
/// # Safety
///
/// As for `clone(CLONE_VM | CLONE_VFORK)`: every signal blocked in the calling thread; `entry`
/// async-signal-safe and never returning; `arg` alive until this returns; the stack used by
/// nobody else, 16-byte aligned at its top.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(crate) unsafe fn spawn_into_cgroup(
    entry: ChildEntry,
    arg: *mut libc::c_void,
    stack: *mut libc::c_void,
    size: usize,
    cgroup_dir: std::os::fd::RawFd,
) -> Option<libc::pid_t> {
    if cgroup_dir < 0 || UNSUPPORTED.load(Ordering::Relaxed) {
        return None;
    }
    #[cfg(test)]
    if tests::JOIN_BY_WRITE.load(Ordering::Relaxed) {
        return None;
    }
    let args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack as u64,
        stack_size: size as u64,
        cgroup: u64::try_from(cgroup_dir).ok()?,
        ..CloneArgs::default()
    };
    let ret: i64;
    // SAFETY: the caller's contract. The parent's registers but rax (the result), rcx and r11
    // (clobbered by `syscall`) are kept by the kernel. The child (rax == 0) starts on its own
    // stack (the kernel sets rsp to `stack + stack_size`), clears the frame pointer and calls
    // `entry(arg)` with rsp 16-byte aligned before the call, as the ABI wants; `entry` never
    // returns (`ud2` if it did).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") std::ptr::from_ref(&args),
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret > 0 {
        return libc::pid_t::try_from(ret).ok();
    }
    // No child exists. A kernel without clone3 or CLONE_INTO_CGROUP says so once for all;
    // a refusal of this cgroup (a seccomp filter's EPERM, a cgroup that takes no process)
    // falls back for this spawn only.
    if matches!(
        i32::try_from(-ret),
        Ok(libc::ENOSYS | libc::E2BIG | libc::EINVAL)
    ) {
        UNSUPPORTED.store(true, Ordering::Relaxed);
    }
    None
}

/// Not x86-64 Linux: always `None` (the child joins its cgroup itself).
///
/// # Safety
///
/// None needed; the signature matches the x86-64 one.
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
pub(crate) unsafe fn spawn_into_cgroup(
    _entry: ChildEntry,
    _arg: *mut libc::c_void,
    _stack: *mut libc::c_void,
    _size: usize,
    _cgroup_dir: std::os::fd::RawFd,
) -> Option<libc::pid_t> {
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::AtomicBool;

    /// Makes this process's spawns take the fallback (the child's `write("0")`), for the
    /// test of both paths (`spawn.rs`).
    pub(crate) static JOIN_BY_WRITE: AtomicBool = AtomicBool::new(false);

    #[test]
    fn clone_args_has_the_kernels_layout() {
        // CLONE_ARGS_SIZE_VER2: the size the kernel expects with `cgroup`.
        assert_eq!(std::mem::size_of::<super::CloneArgs>(), 88);
    }
}
