//! Starting a process without copying the supervisor: `clone(CLONE_VM | CLONE_VFORK)` (what
//! `posix_spawn` does), with the containment steps `posix_spawn` cannot do (the cgroup join,
//! `PR_SET_PDEATHSIG` and its parent check, the channel on fd 3, rlimits) done by the child
//! itself between the clone and `execve`, as the `pre_exec` hook of a forked child did before.
//!
//! A full `fork` copies the supervisor's page tables and makes every page it touches
//! afterwards a copy-on-write fault (on a virtual machine, ~10 µs each); the child of
//! `CLONE_VM` shares the parent's memory and runs on a stack of its own while the spawning
//! thread waits (`CLONE_VFORK`) until it has called `execve` or exited.
//!
//! Everything the child runs ([`child_main`]) is async-signal-safe and writes no memory but its
//! own stack and the [`Shared`] report: no allocation, no locks, no thread-locals (it runs on
//! the spawning thread's TLS, whose only change is `errno`). The parent blocks every signal
//! around the clone, so no handler of the supervisor runs in the child: the child resets every
//! caught signal to its default, then empties its mask (as `std::process::Command` leaves it:
//! empty mask, `SIGPIPE` default), then `execve`s.
//!
//! Before `execve` the child also closes every descriptor above its stdio and channel
//! (`close_range`): a descriptor the supervisor inherited without close-on-exec does not reach
//! the job.
//!
//! Non-Linux Unixes fork instead (same child code, the failure reported through a pipe).
#![allow(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::sys::ChildSetup;

/// What the child is started with, prepared in the parent (everything the child reads).
pub(crate) struct Prepared {
    program: CString,
    /// `argv` and `envp`: owned strings and the null-terminated pointer arrays into them.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    /// The child's ends of stdin, stdout and stderr (close-on-exec in the parent).
    stdio: [OwnedFd; 3],
    /// The channel's child end, to become fd 3 (`setup.channel_fd`).
    _channel: Option<OwnedFd>,
    setup: ChildSetup,
}

// SAFETY: the raw pointers point into the `CString`s owned by the same struct, which move with
// it (a `CString`'s buffer is on the heap and does not move).
unsafe impl Send for Prepared {}

/// The parent's ends of the pipes, and the child's pid.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) pid: u32,
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
    /// Whether the child moved itself into its cgroup (it had one and the write succeeded).
    pub(crate) joined_cgroup: bool,
}

/// The parent's ends of the pipes, kept until the spawn.
pub(crate) struct ParentEnds {
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// What the child reports to the parent through the shared memory (Linux) before `execve`.
#[derive(Default)]
struct Shared {
    /// The `errno` of the failed step; 0 if the child reached `execve` successfully.
    errno: AtomicI32,
    /// 1 once the child wrote itself into its cgroup.
    joined: AtomicI32,
}

/// A pipe, both ends close-on-exec: (read, write).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints.
    #[cfg(target_os = "linux")]
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    // SAFETY: as above. The flag is set right after (a fork by another thread in between
    // would inherit them: no `pipe2` there).
    #[cfg(not(target_os = "linux"))]
    let r = unsafe { libc::pipe(fds.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two new descriptors that nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(not(target_os = "linux"))]
    for fd in [&r, &w] {
        // SAFETY: fcntl on a descriptor we own.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((r, w))
}

/// `fd` itself, or a duplicate numbered 3 or more (close-on-exec) if it is 0, 1 or 2: the
/// child's `dup2` onto the standard descriptors must not overwrite a source.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl on a descriptor we own.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the new descriptor belongs to nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} contains a NUL byte"),
        )
    })
}

/// `program` found the way `execvp` would: a name without `/` is looked up in `path` (the
/// child's `PATH`), else in the supervisor's `PATH`, else in `/usr/local/bin:/usr/bin:/bin`.
/// The lookup happens in the parent, so the child only calls `execve`.
pub(crate) fn find_program(program: &OsStr, path: Option<&OsStr>) -> io::Result<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let own = std::env::var_os("PATH");
    let path = path
        .or(own.as_deref())
        .unwrap_or_else(|| OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Prepared {
    /// Prepares a spawn of `program` with exactly `env`. `stdin_piped`: a pipe, else
    /// `/dev/null`. `channel`: the child's end of the channel (becomes `setup.target_fd`).
    pub(crate) fn new(
        program: &Path,
        args: &[OsString],
        env: &[(OsString, OsString)],
        cwd: Option<&Path>,
        stdin_piped: bool,
        channel: Option<OwnedFd>,
        mut setup: ChildSetup,
    ) -> io::Result<(Self, ParentEnds)> {
        let program_c = cstring(program.as_os_str())?;
        let argv = std::iter::once(Ok(program_c.clone()))
            .chain(args.iter().map(|a| cstring(a)))
            .collect::<io::Result<Vec<_>>>()?;
        let envp = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                cstring(&kv)
            })
            .collect::<io::Result<Vec<_>>>()?;
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        let (argv_ptrs, envp_ptrs) = (ptrs(&argv), ptrs(&envp));
        let (stdin_child, stdin_parent) = if stdin_piped {
            let (r, w) = pipe()?;
            (r, Some(w))
        } else {
            let null = std::fs::File::open("/dev/null")?;
            (OwnedFd::from(null), None)
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let channel = channel.map(above_stdio).transpose()?;
        setup.channel_fd = channel.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        let prepared = Self {
            program: program_c,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            cwd: cwd.map(|d| cstring(d.as_os_str())).transpose()?,
            stdio: [
                above_stdio(stdin_child)?,
                above_stdio(out_w)?,
                above_stdio(err_w)?,
            ],
            _channel: channel,
            setup,
        };
        Ok((
            prepared,
            ParentEnds {
                stdin: stdin_parent,
                stdout: out_r,
                stderr: err_r,
            },
        ))
    }

    /// Starts the child; returns once it has called `execve` (or failed before). Call it from
    /// the long-lived spawning thread (`PR_SET_PDEATHSIG` follows the thread).
    pub(crate) fn spawn(self, ends: ParentEnds) -> io::Result<Started> {
        let shared = Shared::default();
        let pid = self.clone_child(&shared)?;
        let errno = shared.errno.load(Ordering::Acquire);
        if errno != 0 {
            reap_blocking(pid);
            return Err(io::Error::from_raw_os_error(errno));
        }
        // The child's ends close here (the child has its own copies now).
        drop(self);
        Ok(Started {
            pid: u32::try_from(pid).map_err(|_| io::Error::other("negative pid"))?,
            stdin: ends.stdin,
            stdout: ends.stdout,
            stderr: ends.stderr,
            joined_cgroup: shared.joined.load(Ordering::Acquire) == 1,
        })
    }

    #[cfg(target_os = "linux")]
    fn clone_child(&self, shared: &Shared) -> io::Result<libc::pid_t> {
        let stack = ChildStack::get()?;
        let into_cgroup = ChildArg {
            prepared: self,
            shared,
            in_cgroup: true,
        };
        let arg = ChildArg {
            in_cgroup: false,
            ..into_cgroup
        };
        let all = full_sigset();
        let mut old = empty_sigset();
        // SAFETY: blocks every signal in this thread around the clone (restored below), so no
        // handler runs in the child while it shares our memory. `child_main` gets a pointer to
        // its `ChildArg`, alive until the clone returns: with CLONE_VFORK that is after the
        // child's execve or exit. The stack is ours alone (one spawning thread) and outlives
        // the child's use. First created in its cgroup (`clone3.rs`), else as before.
        let pid = unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            if let Some(pid) = crate::clone3::spawn_into_cgroup(
                child_entry,
                std::ptr::from_ref(&into_cgroup).cast_mut().cast(),
                stack.bottom(),
                STACK_SIZE,
                self.setup.cgroup_dir_fd,
            ) {
                libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                return Ok(pid);
            }
            let pid = libc::clone(
                child_entry,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                std::ptr::from_ref(&arg).cast_mut().cast(),
            );
            let err = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            if pid < 0 {
                return Err(err);
            }
            pid
        };
        Ok(pid)
    }

    #[cfg(not(target_os = "linux"))]
    fn clone_child(&self, shared: &Shared) -> io::Result<libc::pid_t> {
        use std::io::Read;
        let (r, w) = pipe()?;
        // SAFETY: the child only runs `child_main` (async-signal-safe) and exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            let own = Shared::default();
            let arg = ChildArg {
                prepared: self,
                shared: &own,
                in_cgroup: false,
            };
            child_main(&arg);
            let errno = own.errno.load(Ordering::Relaxed).to_ne_bytes();
            // SAFETY: write and _exit are async-signal-safe.
            unsafe {
                libc::write(w.as_raw_fd(), errno.as_ptr().cast(), errno.len());
                libc::_exit(127);
            }
        }
        drop(w);
        let mut buf = [0u8; 4];
        let mut file = std::fs::File::from(r);
        if file.read_exact(&mut buf).is_ok() {
            shared
                .errno
                .store(i32::from_ne_bytes(buf), Ordering::Release);
        }
        Ok(pid)
    }
}

/// Waits for a child that has already failed and exited.
fn reap_blocking(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
}

#[derive(Clone, Copy)]
struct ChildArg<'a> {
    prepared: &'a Prepared,
    shared: &'a Shared,
    /// Created in its cgroup (`clone3.rs`): no `write("0")` to join it.
    in_cgroup: bool,
}

#[cfg(target_os = "linux")]
extern "C" fn child_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArg` the parent passed, alive until the child execs or exits.
    let arg = unsafe { &*arg.cast::<ChildArg<'_>>() };
    child_main(arg);
    // SAFETY: _exit is async-signal-safe; the failure is in `shared`.
    unsafe { libc::_exit(127) }
}

/// The child: signals, stdio, working directory, process group, the containment setup, exec.
/// Returns only on failure, with the errno stored in `shared`.
fn child_main(arg: &ChildArg<'_>) {
    let p = arg.prepared;
    let fail = |shared: &Shared| {
        shared.errno.store(
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
            Ordering::Release,
        );
    };
    // SAFETY: only async-signal-safe calls on values prepared by the parent; see the module.
    unsafe {
        reset_signals();
        for (fd, target) in p.stdio.iter().zip(0..) {
            if libc::dup2(fd.as_raw_fd(), target) < 0 {
                return fail(arg.shared);
            }
        }
        if let Some(dir) = &p.cwd {
            if libc::chdir(dir.as_ptr()) != 0 {
                return fail(arg.shared);
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(arg.shared);
        }
    }
    match p.setup.apply(arg.in_cgroup) {
        Ok(joined) => {
            if joined {
                arg.shared.joined.store(1, Ordering::Release);
            }
        }
        Err(e) => {
            arg.shared
                .errno
                .store(e.raw_os_error().unwrap_or(libc::EIO), Ordering::Release);
            return;
        }
    }
    close_inherited(if p.setup.channel_fd < 0 {
        3
    } else {
        p.setup.target_fd + 1
    });
    // SAFETY: execve with null-terminated arrays of pointers into live CStrings.
    unsafe {
        libc::execve(
            p.program.as_ptr(),
            p.argv_ptrs.as_ptr(),
            p.envp_ptrs.as_ptr(),
        );
    }
    fail(arg.shared);
}

/// Closes every descriptor from `first` up: what the supervisor inherited without
/// close-on-exec from its own parent must not reach a job (its own descriptors are all
/// close-on-exec). One `close_range` (Linux 5.9+); elsewhere, or on an older kernel, only
/// close-on-exec applies.
fn close_inherited(first: RawFd) {
    #[cfg(target_os = "linux")]
    {
        let first = libc::c_uint::try_from(first).unwrap_or(3);
        // SAFETY: close_range only closes descriptors of this (child) process's own table
        // (the clone did not share it) and is async-signal-safe.
        unsafe {
            libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = first;
}

/// Every caught signal back to its default action, then an empty mask (ignored signals stay
/// ignored, as across any `execve`, except `SIGPIPE`, which Rust ignores and children expect
/// at its default).
unsafe fn reset_signals() {
    // SAFETY: sigaction and sigprocmask are async-signal-safe; the structs live on this stack.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..65 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            if sig == libc::SIGPIPE
                || (old.sa_sigaction != libc::SIG_IGN && old.sa_sigaction != libc::SIG_DFL)
            {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let empty = empty_sigset();
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

fn full_sigset() -> libc::sigset_t {
    // SAFETY: sigfillset initialises the set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        set
    }
}

fn empty_sigset() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

/// The child's stack: one mapping, made once by the spawning thread and reused by every spawn
/// (its pages stay mapped: no fault per spawn), with a guard page below it.
#[cfg(target_os = "linux")]
struct ChildStack {
    base: *mut libc::c_void,
}

#[cfg(target_os = "linux")]
const STACK_SIZE: usize = 64 * 1024;
#[cfg(target_os = "linux")]
const GUARD: usize = 4096;

#[cfg(target_os = "linux")]
impl ChildStack {
    /// The spawning thread's stack (only that thread spawns).
    fn get() -> io::Result<&'static Self> {
        thread_local! {
            static STACK: std::cell::OnceCell<&'static ChildStack> = const { std::cell::OnceCell::new() };
        }
        STACK.with(|cell| {
            if let Some(s) = cell.get() {
                return Ok(*s);
            }
            // SAFETY: a fresh anonymous mapping; the lowest page becomes the guard.
            let base = unsafe {
                let base = libc::mmap(
                    std::ptr::null_mut(),
                    STACK_SIZE + GUARD,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                    -1,
                    0,
                );
                if base == libc::MAP_FAILED {
                    return Err(io::Error::last_os_error());
                }
                if libc::mprotect(base, GUARD, libc::PROT_NONE) != 0 {
                    return Err(io::Error::last_os_error());
                }
                base
            };
            // Leaked on purpose: the spawning thread lives as long as the process.
            let s: &'static Self = Box::leak(Box::new(Self { base }));
            let _ = cell.set(s);
            Ok(s)
        })
    }

    /// The lowest usable address (above the guard page).
    fn bottom(&self) -> *mut libc::c_void {
        // SAFETY: inside the mapping.
        unsafe { self.base.cast::<u8>().add(GUARD).cast() }
    }

    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, 16-byte aligned (page-aligned size).
        unsafe { self.base.cast::<u8>().add(STACK_SIZE + GUARD).cast() }
    }
}
