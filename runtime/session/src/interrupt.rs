//! Interrupting a cell, from another thread (a Ctrl-C handler, a kernel's control channel).
//!
//! An interrupt first cancels the session's running jobs, cooperatively, as it always did: a
//! job's tasks stop at their next batch and the cell receives the job's error. A cell that runs
//! no job (a loop, a sleep) cannot be stopped that way — Rust threads cannot be killed — so if
//! the cell is still running [`COOPERATIVE_GRACE`] after the interrupt, its process, the
//! engine's child, is killed; the engine starts a new one and the session rebuilds what it can
//! in it (`crate::rebuild`). The driver, in the session's own process, loses nothing.
//!
//! The child is killed only while it runs the cell: while the engine still compiles it, the
//! child waits for its next request, and killing it would lose the session's variables for
//! nothing. The interrupt then stays pending and stops the cell as soon as it starts.

use parking_lot::Mutex;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_driver::JobCanceller;

/// How long a cell has to stop by itself after an interrupt (its jobs cancelled) before its
/// process is killed. Cancelled jobs end the cell well within it.
pub const COOPERATIVE_GRACE: Duration = Duration::from_millis(500);

/// How often an interrupted cell is checked on.
const POLL: Duration = Duration::from_millis(25);

/// Which cell is running, and what interrupts did to it; shared by the session, which starts
/// and ends cells, and every [`Interrupter`].
#[derive(Default)]
pub(crate) struct CellWatch {
    state: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    /// The number the next cell gets.
    next: u64,
    /// The cell running now.
    running: Option<u64>,
    /// The last cell interrupted.
    interrupted: Option<u64>,
    /// The last cell whose process was killed.
    killed: Option<u64>,
}

/// What happened to a cell that ended, as far as interrupts go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CellStop {
    /// It was interrupted.
    pub interrupted: bool,
    /// Its process was killed, so the child lost every variable.
    pub killed: bool,
}

impl CellWatch {
    /// A cell starts; returns its number.
    pub(crate) fn cell_started(&self) -> u64 {
        let mut state = self.state.lock();
        let cell = state.next;
        state.next += 1;
        state.running = Some(cell);
        cell
    }

    /// Cell `cell` ended: no interrupt can touch it any more.
    pub(crate) fn cell_ended(&self, cell: u64) -> CellStop {
        let mut state = self.state.lock();
        state.running = None;
        CellStop {
            interrupted: state.interrupted == Some(cell),
            killed: state.killed == Some(cell),
        }
    }
}

/// Interrupts the session's running cell from any thread; cloning it is cheap.
#[derive(Clone)]
pub struct Interrupter {
    jobs: JobCanceller,
    /// The child process; the engine puts each new child it starts in the same handle.
    child: Arc<std::sync::Mutex<Child>>,
    watch: Arc<CellWatch>,
}

/// What an interrupt did at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interruption {
    /// Running jobs it cancelled.
    pub jobs_cancelled: usize,
    /// Whether a cell was running: it stops within [`COOPERATIVE_GRACE`] of running code.
    pub cell_running: bool,
}

impl Interrupter {
    pub(crate) fn new(
        jobs: JobCanceller,
        child: Arc<std::sync::Mutex<Child>>,
        watch: Arc<CellWatch>,
    ) -> Interrupter {
        Interrupter { jobs, child, watch }
    }

    /// Cancels the running jobs and, if the running cell does not stop by itself within
    /// [`COOPERATIVE_GRACE`], kills its process (the cell then fails as interrupted, and the
    /// session says what it rebuilt and what was lost). Returns at once.
    pub fn interrupt(&self) -> Interruption {
        let jobs_cancelled = self.jobs.cancel_all();
        let mut state = self.watch.state.lock();
        let running = state.running;
        if let Some(cell) = running
            && state.interrupted != Some(cell)
        {
            state.interrupted = Some(cell);
            let watchdog = self.clone();
            let started = std::thread::Builder::new()
                .name("cell-interrupt".into())
                .spawn(move || watchdog.stop(cell, Instant::now()));
            if let Err(e) = started {
                tracing::error!("cannot watch the interrupted cell: {e}");
            }
        }
        Interruption {
            jobs_cancelled,
            cell_running: running.is_some(),
        }
    }

    /// Watches interrupted cell `cell` until it ends, cancelling any job it starts meanwhile,
    /// and kills its process once the grace is over and it is running code.
    fn stop(&self, cell: u64, interrupted_at: Instant) {
        loop {
            std::thread::sleep(POLL);
            // A cell that swallows its cancelled job's error and starts another gets no further.
            self.jobs.cancel_all();
            let mut state = self.watch.state.lock();
            if state.running != Some(cell) {
                return;
            }
            let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
            let activity = child_activity(child.id());
            if !should_kill(interrupted_at.elapsed(), activity) {
                continue;
            }
            tracing::info!(
                pid = child.id(),
                "the interrupted cell did not stop; killing its process"
            );
            // Kill while holding the watch, so that the cell cannot end (and the next start)
            // in between: the session learns from `cell_ended` that its variables are gone.
            if let Err(e) = child.kill() {
                tracing::warn!("cannot kill the cell's process: {e}");
            }
            state.killed = Some(cell);
            return;
        }
    }
}

/// What the child that runs cells is doing, as far as an interrupt cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildActivity {
    /// Blocked reading the engine's socket: waiting for the next request, so no cell code runs
    /// (the engine is compiling the cell).
    WaitingForCommand,
    /// Anything else: running a cell (computing, sleeping, waiting for the driver).
    RunningCell,
}

/// Whether an interrupted cell's process should be killed now.
pub(crate) fn should_kill(since_interrupt: Duration, activity: ChildActivity) -> bool {
    since_interrupt >= COOPERATIVE_GRACE && activity == ChildActivity::RunningCell
}

/// What process `pid`'s main thread (where cells run) is doing; when Linux does not say,
/// it is taken to be running the cell, so that an interrupt still stops it.
fn child_activity(pid: u32) -> ChildActivity {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .map(|line| activity_from_syscall(&line))
        .unwrap_or(ChildActivity::RunningCell)
}

/// Reads `/proc/PID/syscall`: the number of the system call the thread is blocked in and its
/// arguments (`"45 0x3 0x55d1… …"` is `recvfrom` on descriptor 3, the engine's socket), or
/// `running`.
pub(crate) fn activity_from_syscall(line: &str) -> ChildActivity {
    let mut fields = line.split_whitespace();
    let call = fields.next().and_then(|n| n.parse::<i64>().ok());
    let descriptor = fields.next();
    let channel = format!("{:#x}", tessera_cells::CHANNEL_FD);
    let reads = call == Some(libc::SYS_read) || call == Some(libc::SYS_recvfrom);
    if reads && descriptor == Some(channel.as_str()) {
        ChildActivity::WaitingForCommand
    } else {
        ChildActivity::RunningCell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_killed_only_after_the_grace_and_only_while_it_runs() {
        let soon = COOPERATIVE_GRACE / 2;
        let late = COOPERATIVE_GRACE;
        assert!(!should_kill(soon, ChildActivity::RunningCell));
        assert!(should_kill(late, ChildActivity::RunningCell));
        assert!(!should_kill(late * 10, ChildActivity::WaitingForCommand));
    }

    #[test]
    fn a_child_reading_its_commands_is_waiting() {
        let receive = format!(
            "{} 0x3 0x7fcffed6b000 0x20000 0x0 0x0 0x0 0x7fff 0x7fcf",
            libc::SYS_recvfrom
        );
        assert_eq!(
            activity_from_syscall(&receive),
            ChildActivity::WaitingForCommand
        );
        let read = format!("{} 0x3 0x7fcffed6b000 0x20000", libc::SYS_read);
        assert_eq!(
            activity_from_syscall(&read),
            ChildActivity::WaitingForCommand
        );
        let other_descriptor = format!("{} 0x0 0x7fcffed6b000 0x20000", libc::SYS_read);
        assert_eq!(
            activity_from_syscall(&other_descriptor),
            ChildActivity::RunningCell
        );
        let sleeping = format!("{} 0x1 0x0 0x7ffd 0x0", libc::SYS_clock_nanosleep);
        assert_eq!(activity_from_syscall(&sleeping), ChildActivity::RunningCell);
        assert_eq!(activity_from_syscall("running"), ChildActivity::RunningCell);
        assert_eq!(activity_from_syscall(""), ChildActivity::RunningCell);
    }

    #[test]
    fn a_reading_process_is_seen_waiting_and_a_sleeping_one_running() {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        use std::process::Command;
        // A process blocked reading descriptor 3, as the child waits on the engine's socket.
        let (_ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        let fd = theirs.as_raw_fd();
        let mut reader = Command::new("python3");
        reader.args(["-c", "import os; os.read(3, 1)"]);
        // SAFETY: only dup2 between fork and exec.
        unsafe {
            reader.pre_exec(move || {
                if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut reader = reader.spawn().expect("python3 runs");
        let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep runs");
        // Both block within moments of starting.
        let deadline = Instant::now() + Duration::from_secs(10);
        while child_activity(reader.id()) != ChildActivity::WaitingForCommand
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            child_activity(reader.id()),
            ChildActivity::WaitingForCommand
        );
        assert_eq!(child_activity(sleeper.id()), ChildActivity::RunningCell);
        for child in [&mut reader, &mut sleeper] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    #[test]
    fn the_watch_says_whether_the_cell_that_ended_was_interrupted_or_killed() {
        let watch = CellWatch::default();
        let first = watch.cell_started();
        assert_eq!(watch.cell_ended(first), CellStop::default());
        let second = watch.cell_started();
        watch.state.lock().interrupted = Some(second);
        watch.state.lock().killed = Some(second);
        assert_eq!(
            watch.cell_ended(second),
            CellStop {
                interrupted: true,
                killed: true
            }
        );
        let third = watch.cell_started();
        assert_ne!(third, second);
        assert_eq!(
            watch.cell_ended(third),
            CellStop::default(),
            "an interrupt of an earlier cell does not touch a later one"
        );
    }
}
