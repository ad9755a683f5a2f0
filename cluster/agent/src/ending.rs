//! How an executor ended, as its last status update says it: the state (FINISHED, FAILED,
//! KILLED, LOST), a message with the end of its stderr when it failed, its exit code as a shell
//! reports it, and the reason. A limitation (the isolator killed it) comes first, then a kill the
//! agent was asked for, then how the process exited. Pure functions of what is known, but for
//! the stderr file they read.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use tessera_cluster_proto::master::{ExecutorReason, ExecutorState};

use crate::isolation::Limitation;

/// How much of the end of stderr goes into a FAILED message.
const STDERR_TAIL_LINES: usize = 10;
const STDERR_TAIL_BYTES: u64 = 4096;

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// The last lines of a file (at most a few KiB), or "" if unreadable.
fn tail(path: &Path) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(STDERR_TAIL_BYTES)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n")
}

/// How an executor ended, as its last status update says it.
#[derive(Debug, PartialEq)]
pub(crate) struct Ending {
    pub state: ExecutorState,
    pub message: String,
    pub exit_code: Option<i32>,
    pub reason: ExecutorReason,
}

/// Its exit status, or 128 + the signal that ended it, as a shell reports it.
fn exit_code(status: &ExitStatus) -> Option<i32> {
    status
        .code()
        .or_else(|| status.signal().map(|sig| 128 + sig))
}

/// How the agent asked an executor to end, if it did.
pub(crate) struct Kill {
    pub reason: String,
    /// LOST rather than KILLED (a restarted agent killed it past its recovery timeout).
    pub lost: bool,
}

/// Turns how the process ended (`None`: an adopted process, whose exit status is not known)
/// into a state, message, exit code and reason: a limitation (the isolator killed it) first,
/// then a kill the agent was asked for, then its exit.
pub(crate) fn classify(
    status: Option<std::io::Result<ExitStatus>>,
    limitation: Option<Limitation>,
    kill: Option<Kill>,
    sandbox: &Path,
) -> Ending {
    let code = status
        .as_ref()
        .and_then(|s| s.as_ref().ok())
        .and_then(exit_code);
    let ending = |state, message, reason| Ending {
        state,
        message,
        exit_code: code,
        reason,
    };
    if let Some(limitation) = limitation {
        return ending(
            ExecutorState::Failed,
            limitation.to_string(),
            match limitation {
                Limitation::Memory { .. } => ExecutorReason::MemoryLimit,
            },
        );
    }
    if let Some(kill) = kill {
        let state = if kill.lost {
            ExecutorState::Lost
        } else {
            ExecutorState::Killed
        };
        return ending(state, kill.reason, ExecutorReason::Unspecified);
    }
    let (state, message) = match status {
        Some(Ok(s)) => exit_state(s, sandbox),
        Some(Err(e)) => (
            ExecutorState::Failed,
            format!("cannot wait for the executor process: {e}"),
        ),
        None => (
            ExecutorState::Failed,
            with_stderr(
                "it ended after a restarted agent adopted it; its exit status is not known \
                 (it was not the agent's child)"
                    .to_string(),
                sandbox,
            ),
        ),
    };
    ending(state, message, ExecutorReason::Unspecified)
}

/// `msg` with the last lines of the sandbox's stderr (or a note that it is empty).
fn with_stderr(msg: String, sandbox: &Path) -> String {
    let stderr_path = sandbox.join("stderr");
    let t = tail(&stderr_path);
    if t.trim().is_empty() {
        format!("{msg} (stderr is empty; sandbox {})", sandbox.display())
    } else {
        format!(
            "{msg}; last lines of stderr ({}):\n{t}",
            stderr_path.display()
        )
    }
}

/// FINISHED or FAILED, with a message (and the end of stderr) for how the process exited.
fn exit_state(status: ExitStatus, sandbox: &Path) -> (ExecutorState, String) {
    let noted = |msg: String| with_stderr(msg, sandbox);
    match (status.code(), status.signal()) {
        (Some(0), _) => (ExecutorState::Finished, "exited with status 0".to_string()),
        (Some(code), _) => (
            ExecutorState::Failed,
            noted(format!("exited with status {code}")),
        ),
        (None, Some(sig)) => (
            ExecutorState::Failed,
            noted(format!("terminated by signal {sig} ({})", signal_name(sig))),
        ),
        (None, None) => (
            ExecutorState::Failed,
            noted(format!("ended abnormally ({status})")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_carry_the_exit_code_and_a_limitation_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let exited = |raw: i32| Some(Ok(ExitStatus::from_raw(raw)));
        let asked = |reason: &str| {
            Some(Kill {
                reason: reason.into(),
                lost: false,
            })
        };
        let three = classify(exited(3 << 8), None, None, dir.path());
        assert_eq!(
            (three.state, three.exit_code),
            (ExecutorState::Failed, Some(3))
        );
        let killed = classify(exited(libc::SIGKILL), None, asked("asked"), dir.path());
        assert_eq!(
            (killed.state, killed.message.as_str(), killed.exit_code),
            (ExecutorState::Killed, "asked", Some(137))
        );
        let limited = classify(
            exited(libc::SIGKILL),
            Some(Limitation::Memory { limit_mb: 1024 }),
            asked("asked"),
            dir.path(),
        );
        assert_eq!(
            limited,
            Ending {
                state: ExecutorState::Failed,
                message: "memory limit 1024 MiB exceeded".into(),
                exit_code: Some(137),
                reason: ExecutorReason::MemoryLimit,
            }
        );
    }
}
