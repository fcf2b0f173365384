//! A started worker process as the supervisor holds it: its pid, the parent's ends of its
//! stdio pipes, and an asynchronous wait for its exit (a pidfd on Linux, `SIGCHLD` elsewhere).
//!
//! Nothing is left a zombie: [`WorkerChild::wait`] reaps it, and a child dropped before it was
//! reaped is reaped by a thread that waits for it (it has its own process group and the death
//! signal, so it does not outlive the supervisor either).

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use tokio::process::{ChildStderr, ChildStdin, ChildStdout};

use crate::vfork::Started;

/// A worker process started by [`WorkerCommand::spawn`](crate::WorkerCommand::spawn).
#[derive(Debug)]
pub struct WorkerChild {
    pid: u32,
    /// The child's stdin, when the command asked for a pipe (command mode).
    pub stdin: Option<ChildStdin>,
    /// The child's stdout.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr.
    pub stderr: Option<ChildStderr>,
    exit: Exit,
    status: Option<ExitStatus>,
}

#[derive(Debug)]
enum Exit {
    /// Readable once the process has exited (Linux).
    #[cfg(target_os = "linux")]
    Pidfd(tokio::io::unix::AsyncFd<OwnedFd>),
    /// Woken by every `SIGCHLD` of the supervisor; each wake-up tries to reap.
    Sigchld(tokio::signal::unix::Signal),
    /// Reaped: the pidfd is closed.
    Reaped,
}

impl WorkerChild {
    /// Wraps a started process. Call inside a tokio runtime (the pipes and the exit watch
    /// register with its reactor).
    pub(crate) fn new(started: Started) -> io::Result<Self> {
        let Started {
            pid,
            stdin,
            stdout,
            stderr,
            ..
        } = started;
        let exit = Self::exit_watch(pid)?;
        Ok(Self {
            pid,
            stdin: stdin
                .map(|fd| ChildStdin::from_std(std::process::ChildStdin::from(fd)))
                .transpose()?,
            stdout: Some(ChildStdout::from_std(std::process::ChildStdout::from(
                stdout,
            ))?),
            stderr: Some(ChildStderr::from_std(std::process::ChildStderr::from(
                stderr,
            ))?),
            exit,
            status: None,
        })
    }

    #[cfg(target_os = "linux")]
    fn exit_watch(pid: u32) -> io::Result<Exit> {
        match crate::sys::pidfd_open(pid) {
            Ok(fd) => Ok(Exit::Pidfd(fd)),
            Err(_) => Self::sigchld(),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn exit_watch(_pid: u32) -> io::Result<Exit> {
        Self::sigchld()
    }

    fn sigchld() -> io::Result<Exit> {
        Ok(Exit::Sigchld(tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::child(),
        )?))
    }

    /// The pid, until the process is reaped.
    pub fn id(&self) -> Option<u32> {
        self.status.is_none().then_some(self.pid)
    }

    /// The exit status if the process has exited (it is reaped then).
    ///
    /// # Errors
    ///
    /// The OS error of `waitpid`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let status = crate::sys::try_reap(self.pid, false)?.map(ExitStatus::from_raw);
        if status.is_some() {
            self.reaped(status);
        }
        Ok(status)
    }

    /// Waits for the process to exit and reaps it. Cancel-safe; polling it costs no system
    /// call until the process has exited (Linux).
    ///
    /// # Errors
    ///
    /// The OS error of the wait.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(s) = self.status {
                return Ok(s);
            }
            match &mut self.exit {
                #[cfg(target_os = "linux")]
                Exit::Pidfd(fd) => {
                    let mut ready = fd.readable().await?;
                    match crate::sys::try_reap(self.pid, false)? {
                        Some(raw) => {
                            drop(ready);
                            self.reaped(Some(ExitStatus::from_raw(raw)));
                        }
                        // Not exited after all: wait for the next edge.
                        None => ready.clear_ready(),
                    }
                }
                Exit::Sigchld(sig) => match crate::sys::try_reap(self.pid, false)? {
                    Some(raw) => self.reaped(Some(ExitStatus::from_raw(raw))),
                    None => {
                        sig.recv().await;
                    }
                },
                Exit::Reaped => {}
            }
        }
    }

    /// Records the exit status and closes the exit watch (the pidfd): nothing of the process
    /// stays open once it is reaped.
    fn reaped(&mut self, status: Option<ExitStatus>) {
        self.status = status;
        self.exit = Exit::Reaped;
    }

    /// Sends `SIGKILL` to the process (not its group) unless it is already reaped.
    ///
    /// # Errors
    ///
    /// None today; the signature matches `tokio::process::Child::start_kill`.
    pub fn start_kill(&mut self) -> io::Result<()> {
        if self.try_wait()?.is_none() {
            crate::sys::kill_pid(self.pid, libc::SIGKILL);
        }
        Ok(())
    }
}

impl Drop for WorkerChild {
    fn drop(&mut self) {
        if matches!(self.try_wait(), Ok(None)) {
            let pid = self.pid;
            let spawned = std::thread::Builder::new()
                .name("offload-reap".into())
                .spawn(move || {
                    let _ = crate::sys::try_reap(pid, true);
                });
            if spawned.is_err() {
                tracing::warn!(pid, "cannot start a thread to reap a dropped worker");
            }
        }
    }
}
