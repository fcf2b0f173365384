//! The verdict: how a process's [`Outcome`] is decided. Pure functions of what the actor
//! observed (the main job's answer, a protocol violation, its timers, an explicit kill, the
//! exit status, stdout, the stderr tail), so every combination is a row of a table test below
//! and the actor (`actor.rs`) only gathers the facts.
//!
//! Precedence at exit, first match wins: the answer that already came; a protocol violation;
//! the job's timeout; an explicit kill (the signal that ended it, else the one sent; the kill
//! of a closed channel counts only if the process had not begun to die by itself:
//! `JobProcess::start_kill_for_closed_channel`); a
//! resource limit recognised from the signal or the stderr tail; in command mode a successful
//! exit's stdout (JSON, else its text); else a crash (signal) or an exit code.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use offload_protocol::ErrorInfo;
use serde_json::Value;

use crate::limits::ResourceLimits;
use crate::outcome::{Limit, Outcome};

/// How many of the last stderr lines are searched for a resource-limit message.
const TAIL_SEARCHED: usize = 10;

/// How the process ended, as the verdict needs it (an [`ExitStatus`] cannot be built in a
/// test without a platform call; this can).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exit {
    /// The signal that terminated it.
    pub(crate) signal: Option<i32>,
    /// Its exit code.
    pub(crate) code: Option<i32>,
}

impl From<ExitStatus> for Exit {
    fn from(status: ExitStatus) -> Self {
        Self {
            signal: status.signal(),
            code: status.code(),
        }
    }
}

impl Exit {
    fn success(self) -> bool {
        self.code == Some(0)
    }
}

/// What the actor knew of the process's end besides its exit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// The main job's answer, once it came.
    pub(crate) answer: Option<&'a Outcome>,
    /// The first protocol violation.
    pub(crate) protocol_error: Option<&'a str>,
    /// The job's timeout fired (or it answered `DeadlineExceeded` to its own deadline).
    pub(crate) timed_out: bool,
    /// The first signal of an explicit kill.
    pub(crate) killed_with: Option<i32>,
    /// The limits it ran under (a limit's death is recognised only when that limit was set).
    pub(crate) limits: &'a ResourceLimits,
    /// Command mode: stdout is the result.
    pub(crate) command_mode: bool,
}

/// The outcome of a main job that answered. `deadline_set`: the job has a timeout, so a
/// `DeadlineExceeded` error is that timeout (the soft deadline the worker got).
pub(crate) fn of_answer(
    result: Result<Value, ErrorInfo>,
    deadline_set: bool,
    limits: &ResourceLimits,
) -> Outcome {
    match result {
        Ok(value) => Outcome::Succeeded { value },
        Err(e) if e.name == "DeadlineExceeded" && deadline_set => Outcome::TimedOut,
        Err(e) => match limit_from_error(&e, limits) {
            Some(which) => Outcome::ResourceLimit { which },
            None => Outcome::failed(e),
        },
    }
}

/// The outcome once the process has exited (see the module docs for the precedence).
/// `stderr_tail` is [`recent_stderr`] of the stderr tail.
pub(crate) fn at_exit(facts: &Facts<'_>, exit: Exit, stdout: &[u8], stderr_tail: &str) -> Outcome {
    if let Some(a) = facts.answer {
        return a.clone();
    }
    if let Some(message) = facts.protocol_error {
        return Outcome::ProtocolError {
            message: message.to_owned(),
        };
    }
    if facts.timed_out {
        return Outcome::TimedOut;
    }
    if let Some(sent) = facts.killed_with {
        return Outcome::Killed {
            signal: exit.signal.unwrap_or(sent),
        };
    }
    if let Some(which) = limit_from_exit(exit, facts.limits, stderr_tail) {
        return Outcome::ResourceLimit { which };
    }
    if facts.command_mode && exit.success() {
        let value = serde_json::from_slice::<Value>(stdout).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(stdout).trim_end().to_owned())
        });
        return Outcome::Succeeded { value };
    }
    match (exit.signal, exit.code) {
        (Some(signal), _) => Outcome::Crashed { signal },
        (None, Some(code)) => Outcome::Exited { code },
        (None, None) => Outcome::Exited { code: -1 },
    }
}

/// The last lines of stderr searched for a limit's message, newest first.
pub(crate) fn recent_stderr(tail: &VecDeque<String>) -> String {
    tail.iter()
        .rev()
        .take(TAIL_SEARCHED)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

/// A limit recognised in the error a job answered with.
fn limit_from_error(e: &ErrorInfo, limits: &ResourceLimits) -> Option<Limit> {
    let text = format!("{} {}", e.name, e.message);
    if limits.address_space_bytes.is_some() && looks_like_oom(&text) {
        return Some(Limit::Memory);
    }
    if limits.open_files.is_some() && looks_like_emfile(&text) {
        return Some(Limit::OpenFiles);
    }
    None
}

/// A limit recognised from how the process died. SIGXCPU is always the CPU limit; SIGKILL is
/// when a CPU limit was set (the kernel's hard limit); an allocation failure shows as SIGABRT,
/// SIGSEGV or SIGTRAP (V8) or as a message on stderr.
fn limit_from_exit(exit: Exit, limits: &ResourceLimits, stderr_tail: &str) -> Option<Limit> {
    let signal = exit.signal;
    if signal == Some(libc::SIGXCPU) {
        return Some(Limit::Cpu);
    }
    if limits.cpu_seconds.is_some() && signal == Some(libc::SIGKILL) {
        return Some(Limit::Cpu);
    }
    if limits.address_space_bytes.is_some()
        && (matches!(signal, Some(libc::SIGABRT | libc::SIGSEGV | libc::SIGTRAP))
            || looks_like_oom(stderr_tail))
    {
        return Some(Limit::Memory);
    }
    if limits.open_files.is_some() && looks_like_emfile(stderr_tail) {
        return Some(Limit::OpenFiles);
    }
    None
}

fn looks_like_oom(text: &str) -> bool {
    [
        "MemoryError",
        "out of memory",
        "Out of memory",
        "Cannot allocate memory",
        "memory allocation of",
        "Allocation failed",
        "ENOMEM",
    ]
    .iter()
    .any(|p| text.contains(p))
}

fn looks_like_emfile(text: &str) -> bool {
    text.contains("Too many open files") || text.contains("EMFILE")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SIGTERM: i32 = libc::SIGTERM;
    const SIGKILL: i32 = libc::SIGKILL;

    fn code(c: i32) -> Exit {
        Exit {
            signal: None,
            code: Some(c),
        }
    }

    fn signal(s: i32) -> Exit {
        Exit {
            signal: Some(s),
            code: None,
        }
    }

    fn mem() -> ResourceLimits {
        ResourceLimits::none().address_space(1 << 30)
    }

    fn cpu() -> ResourceLimits {
        ResourceLimits::none().cpu_seconds(1)
    }

    fn files() -> ResourceLimits {
        ResourceLimits::none().open_files(64)
    }

    fn limit(which: Limit) -> Outcome {
        Outcome::ResourceLimit { which }
    }

    /// One row: the facts, the exit, stdout, stderr, and the outcome they must give.
    struct Row {
        what: &'static str,
        answer: Option<Outcome>,
        protocol_error: Option<&'static str>,
        timed_out: bool,
        killed_with: Option<i32>,
        limits: ResourceLimits,
        command_mode: bool,
        exit: Exit,
        stdout: &'static str,
        stderr: &'static str,
        want: Outcome,
    }

    impl Default for Row {
        fn default() -> Self {
            Self {
                what: "",
                answer: None,
                protocol_error: None,
                timed_out: false,
                killed_with: None,
                limits: ResourceLimits::none(),
                command_mode: false,
                exit: code(0),
                stdout: "",
                stderr: "",
                want: Outcome::Exited { code: 0 },
            }
        }
    }

    #[test]
    fn the_outcome_at_exit_follows_the_precedence() {
        let answered = Outcome::Succeeded { value: json!(7) };
        let rows = [
            Row {
                what: "the answer beats every later fact",
                answer: Some(answered.clone()),
                protocol_error: Some("bad frame"),
                timed_out: true,
                killed_with: Some(SIGTERM),
                exit: signal(SIGKILL),
                want: answered.clone(),
                ..Row::default()
            },
            Row {
                what: "a protocol violation beats the timeout and a kill",
                protocol_error: Some("bad frame"),
                timed_out: true,
                killed_with: Some(SIGTERM),
                exit: signal(SIGKILL),
                want: Outcome::ProtocolError {
                    message: "bad frame".into(),
                },
                ..Row::default()
            },
            Row {
                what: "the timeout beats a kill",
                timed_out: true,
                killed_with: Some(SIGTERM),
                exit: signal(SIGKILL),
                want: Outcome::TimedOut,
                ..Row::default()
            },
            Row {
                what: "a kill names the signal that ended the process",
                killed_with: Some(SIGTERM),
                exit: signal(SIGKILL),
                want: Outcome::Killed { signal: SIGKILL },
                ..Row::default()
            },
            Row {
                what: "a kill the process survived to exit names the signal sent",
                killed_with: Some(libc::SIGINT),
                exit: code(0),
                want: Outcome::Killed {
                    signal: libc::SIGINT,
                },
                ..Row::default()
            },
            Row {
                what: "a kill beats a limit's signal",
                killed_with: Some(SIGTERM),
                limits: cpu(),
                exit: signal(SIGKILL),
                want: Outcome::Killed { signal: SIGKILL },
                ..Row::default()
            },
            Row {
                what: "SIGXCPU is the CPU limit even when none was set",
                exit: signal(libc::SIGXCPU),
                want: limit(Limit::Cpu),
                ..Row::default()
            },
            Row {
                what: "SIGKILL under a CPU limit is the kernel's hard limit",
                limits: cpu(),
                exit: signal(SIGKILL),
                want: limit(Limit::Cpu),
                ..Row::default()
            },
            Row {
                what: "SIGKILL without a CPU limit is a crash",
                exit: signal(SIGKILL),
                want: Outcome::Crashed { signal: SIGKILL },
                ..Row::default()
            },
            Row {
                what: "SIGABRT under a memory limit is the memory limit",
                limits: mem(),
                exit: signal(libc::SIGABRT),
                want: limit(Limit::Memory),
                ..Row::default()
            },
            Row {
                what: "SIGTRAP (V8) under a memory limit is the memory limit",
                limits: mem(),
                exit: signal(libc::SIGTRAP),
                want: limit(Limit::Memory),
                ..Row::default()
            },
            Row {
                what: "SIGABRT without a memory limit is a crash",
                exit: signal(libc::SIGABRT),
                want: Outcome::Crashed {
                    signal: libc::SIGABRT,
                },
                ..Row::default()
            },
            Row {
                what: "an out-of-memory message under a memory limit",
                limits: mem(),
                exit: code(1),
                stderr: "Traceback\nMemoryError",
                want: limit(Limit::Memory),
                ..Row::default()
            },
            Row {
                what: "an out-of-memory message without a memory limit is an exit",
                exit: code(1),
                stderr: "MemoryError",
                want: Outcome::Exited { code: 1 },
                ..Row::default()
            },
            Row {
                what: "EMFILE under an open-files limit",
                limits: files(),
                exit: code(1),
                stderr: "Error: EMFILE: too many open files",
                want: limit(Limit::OpenFiles),
                ..Row::default()
            },
            Row {
                what: "EMFILE under a memory limit only is an exit",
                limits: mem(),
                exit: code(1),
                stderr: "Too many open files",
                want: Outcome::Exited { code: 1 },
                ..Row::default()
            },
            Row {
                what: "command mode: JSON on stdout is the value",
                command_mode: true,
                stdout: "{\"a\": 1}\n",
                want: Outcome::Succeeded {
                    value: json!({"a": 1}),
                },
                ..Row::default()
            },
            Row {
                what: "command mode: other text is the value, without its trailing newline",
                command_mode: true,
                stdout: "hello\n",
                want: Outcome::Succeeded {
                    value: json!("hello"),
                },
                ..Row::default()
            },
            Row {
                what: "command mode: a failing exit is an exit, stdout ignored",
                command_mode: true,
                exit: code(2),
                stdout: "{\"a\": 1}",
                want: Outcome::Exited { code: 2 },
                ..Row::default()
            },
            Row {
                what: "command mode: a limit beats a successful exit",
                command_mode: true,
                limits: mem(),
                stderr: "Cannot allocate memory",
                want: limit(Limit::Memory),
                ..Row::default()
            },
            Row {
                what: "channel mode: exiting 0 without an answer is an exit",
                stdout: "42",
                want: Outcome::Exited { code: 0 },
                ..Row::default()
            },
            Row {
                what: "a signal is a crash",
                exit: signal(libc::SIGSEGV),
                want: Outcome::Crashed {
                    signal: libc::SIGSEGV,
                },
                ..Row::default()
            },
            Row {
                what: "neither signal nor code",
                exit: Exit {
                    signal: None,
                    code: None,
                },
                want: Outcome::Exited { code: -1 },
                ..Row::default()
            },
        ];
        for row in rows {
            let facts = Facts {
                answer: row.answer.as_ref(),
                protocol_error: row.protocol_error,
                timed_out: row.timed_out,
                killed_with: row.killed_with,
                limits: &row.limits,
                command_mode: row.command_mode,
            };
            let got = at_exit(&facts, row.exit, row.stdout.as_bytes(), row.stderr);
            assert_eq!(got, row.want, "{}", row.what);
        }
    }

    /// What the row says, the answer, whether the job has a timeout, the limits, the outcome.
    type AnswerRow = (
        &'static str,
        Result<Value, ErrorInfo>,
        bool,
        ResourceLimits,
        Outcome,
    );

    #[test]
    fn the_outcome_of_an_answer() {
        let err = |name: &str, message: &str| Err(ErrorInfo::new(name, message));
        let rows: [AnswerRow; 8] = [
            (
                "a value succeeds",
                Ok(json!([1, 2])),
                true,
                mem(),
                Outcome::Succeeded {
                    value: json!([1, 2]),
                },
            ),
            (
                "DeadlineExceeded with a timeout is the timeout",
                err("DeadlineExceeded", "too late"),
                true,
                ResourceLimits::none(),
                Outcome::TimedOut,
            ),
            (
                "DeadlineExceeded without a timeout is the job's own error",
                err("DeadlineExceeded", "too late"),
                false,
                ResourceLimits::none(),
                Outcome::failed(ErrorInfo::new("DeadlineExceeded", "too late")),
            ),
            (
                "an allocation failure under a memory limit",
                err(
                    "RangeError",
                    "Array buffer allocation failed; out of memory",
                ),
                false,
                mem(),
                limit(Limit::Memory),
            ),
            (
                "MemoryError in the name counts",
                err("MemoryError", ""),
                false,
                mem(),
                limit(Limit::Memory),
            ),
            (
                "an allocation failure without a memory limit is a failure",
                err("MemoryError", ""),
                false,
                cpu(),
                Outcome::failed(ErrorInfo::new("MemoryError", "")),
            ),
            (
                "EMFILE under an open-files limit",
                err("Error", "EMFILE: too many open files, open 'x'"),
                false,
                files(),
                limit(Limit::OpenFiles),
            ),
            (
                "any other error is a failure",
                err("TypeError", "x is not a function"),
                true,
                mem().open_files(8),
                Outcome::failed(ErrorInfo::new("TypeError", "x is not a function")),
            ),
        ];
        for (what, result, deadline_set, limits, want) in rows {
            assert_eq!(of_answer(result, deadline_set, &limits), want, "{what}");
        }
    }

    #[test]
    fn only_the_last_ten_stderr_lines_are_searched_newest_first() {
        let tail: VecDeque<String> = (1..=12).map(|n| format!("line {n}")).collect();
        let text = recent_stderr(&tail);
        assert!(text.starts_with("line 12\nline 11\n"), "{text}");
        assert!(text.ends_with("\nline 3"), "{text}");
        assert!(
            !text.contains("line 2\n") && !text.ends_with("line 2"),
            "{text}"
        );
        // An out-of-memory message older than the last ten lines is not a limit's death.
        let mut old = VecDeque::from(["MemoryError".to_owned()]);
        old.extend((0..10).map(|n| format!("cleanup {n}")));
        assert_eq!(limit_from_exit(code(1), &mem(), &recent_stderr(&old)), None);
        old.pop_front();
        old.push_back("MemoryError".to_owned());
        assert_eq!(
            limit_from_exit(code(1), &mem(), &recent_stderr(&old)),
            Some(Limit::Memory)
        );
    }

    #[test]
    fn an_exit_status_becomes_its_signal_or_code() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(Exit::from(ExitStatus::from_raw(SIGKILL)), signal(SIGKILL));
        assert_eq!(Exit::from(ExitStatus::from_raw(3 << 8)), code(3));
        assert!(Exit::from(ExitStatus::from_raw(0)).success());
        assert!(!Exit::from(ExitStatus::from_raw(1 << 8)).success());
    }
}
