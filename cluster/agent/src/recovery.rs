//! Agent recovery (Mesos' `--recover=reconnect`): executors outlive their agent, and an agent
//! restarted on the same work directory finds them again from its checkpoint
//! ([`crate::checkpoint`]) and registers under its old id with them.
//!
//! What happens to each checkpointed executor is decided here, as a pure function of plain
//! data ([`decide`]): whether its process still runs (the same pid *and* the same start time,
//! on the same boot: [`Liveness`]), how long the agent was away (the age of its last
//! checkpoint) against `--recovery-timeout-s`, and `--recover`. A running executor is adopted
//! within the timeout and killed past it (or with `--recover cleanup`), then reported LOST; one
//! that ended while the agent was away is reported LOST with what is known, unless its end is
//! among the checkpointed status updates already. An executor started just before the agent
//! died, which the checkpoint does not name yet, is found by its environment
//! ([`crate::orphans`]) and decided on the same way.
//!
//! Where this differs from Mesos: Mesos executors link an executor driver that shuts them down
//! when their agent has not come back within the recovery timeout; Tessera launches any
//! program, so it is the restarted agent that applies the timeout. An executor whose agent
//! never comes back is the program's to end: `tessera-executor` ends itself once its session's
//! driver has not answered its heartbeats for its driver timeout, as Spark's executors do. And
//! Mesos' master keeps an agent that went silent for 75 s (5 pings of 15 s) before declaring
//! it lost; Tessera's for `--agent-timeout-ms` (10 s): a master that
//! declared the agent lost reported its executors LOST to their frameworks, so it gives the
//! agent a new id on its return and the agent kills them. Recovery without loss thus needs
//! the agent back within the shorter of the two; raise the master's `--agent-timeout-ms` to
//! ride out longer restarts (upgrades) at the price of noticing dead agents later.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tessera_cluster_proto::master::{ExecutorReason, ExecutorState, StatusUpdate};

use crate::checkpoint;
use crate::executors::Executors;
use crate::processes::{boot_id, is_running};
use crate::status_updates::PendingUpdates;

/// The recovery timeout by default: Mesos' `--recovery_timeout` (15 min). A restarted agent
/// whose last checkpoint is older kills the executors it finds; recovery within it keeps them
/// only if the master also kept the agent (see the module's documentation).
pub const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What a restarted agent does with the executors of its checkpoint (`--recover`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoverMode {
    /// Adopt the executors still running, within the recovery timeout.
    #[default]
    Reconnect,
    /// Kill every executor still running and report it LOST (Mesos' `--recover=cleanup`, which
    /// Mesos follows by exiting; this agent registers and goes on).
    Cleanup,
}

impl std::str::FromStr for RecoverMode {
    type Err = RecoveryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reconnect" => Ok(Self::Reconnect),
            "cleanup" => Ok(Self::Cleanup),
            other => Err(RecoveryError::UnknownMode(other.to_string())),
        }
    }
}

/// Recovery that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// `--recover` names neither `reconnect` nor `cleanup`; holds what it names.
    #[error("--recover {0:?} is not a mode; use reconnect or cleanup")]
    UnknownMode(String),
    /// The checkpoint found in the work directory cannot be read or is damaged.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
}

/// Whether a checkpointed executor's process is still the one the agent started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Its pid runs, started when the checkpoint says, on this boot.
    Running,
    /// No such process, a zombie, a process started at another time (the pid was given to
    /// another), or the machine booted since.
    Gone,
}

/// What recovery does with one checkpointed executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Watch it again as if the agent had launched it.
    Adopt,
    /// Kill its process group and report it LOST with this message.
    Kill(String),
    /// Report it LOST with this message (it ended while the agent was away).
    ReportGone(String),
    /// Nothing: how it ended is among the checkpointed status updates.
    Forget,
}

/// What recovery knows of one checkpointed executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// Whether its checkpointed process still runs.
    pub liveness: Liveness,
    /// A status update of its end waits in the checkpoint.
    pub end_reported: bool,
    /// Its checkpointed pid, the leader of its process group (named in the status message).
    pub pid: i32,
}

/// Decides what to do with a checkpointed executor, the agent having been away `away` (the
/// age of its last checkpoint).
pub fn decide(mode: RecoverMode, away: Duration, timeout: Duration, found: Found) -> Decision {
    let pid = found.pid;
    match found.liveness {
        Liveness::Running => match (mode, away > timeout) {
            (RecoverMode::Reconnect, false) => Decision::Adopt,
            (RecoverMode::Reconnect, true) => Decision::Kill(format!(
                "its agent was away {} s, longer than its recovery timeout ({} s); the agent \
                 killed it on its return (pid {pid})",
                seconds(away),
                seconds(timeout)
            )),
            (RecoverMode::Cleanup, _) => Decision::Kill(format!(
                "its agent restarted with --recover cleanup and killed it (pid {pid})"
            )),
        },
        Liveness::Gone if found.end_reported => Decision::Forget,
        Liveness::Gone => Decision::ReportGone(format!(
            "it ended while its agent was away (pid {pid} is gone); how it ended is not known"
        )),
    }
}

/// What recovery did, for the agent's log and its registration.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The agent id to register under again; `None` without a checkpoint (or one written
    /// before the agent first registered).
    pub agent_id: Option<String>,
    /// How many executors still running were adopted.
    pub adopted: usize,
    /// How many executors still running were killed (past the timeout, or `--recover cleanup`)
    /// and reported LOST.
    pub killed: usize,
    /// How many executors had ended while the agent was away and were reported LOST.
    pub gone: usize,
    /// How many of the executors adopted or killed were found running in a sandbox of this
    /// work directory though the checkpoint did not name them ([`crate::orphans`]).
    pub unnamed: usize,
}

/// Recovers from the checkpoint in `work_dir`, if there is one: its status updates wait to be
/// sent again, its frameworks are known again, and each executor it names, and each it does
/// not name that runs in one of its sandboxes ([`crate::orphans`]), is adopted, killed or
/// reported as [`decide`] says. Runs before the agent registers.
pub(crate) fn recover(
    work_dir: &Path,
    mode: RecoverMode,
    timeout: Duration,
    executors: &Arc<Executors>,
    pending: &PendingUpdates,
) -> Result<Recovered, RecoveryError> {
    let Some(checkpoint) = checkpoint::load(work_dir)? else {
        return Ok(Recovered::default());
    };
    let away = age(checkpoint.saved_at_ms, checkpoint::now_ms());
    let agent_id = checkpoint.agent_id.clone();
    let this_boot = boot_id();
    // Executors whose end waits among the status updates.
    let ended: BTreeSet<(String, String)> = (checkpoint.status_updates.iter())
        .filter(|u| {
            ExecutorState::try_from(u.state).is_ok_and(|s| {
                matches!(
                    s,
                    ExecutorState::Finished
                        | ExecutorState::Failed
                        | ExecutorState::Killed
                        | ExecutorState::Lost
                )
            })
        })
        .map(|u| (u.framework_id.clone(), u.executor_id.clone()))
        .collect();
    {
        let mut waiting = pending.lock();
        for update in checkpoint.status_updates {
            waiting.push(update);
        }
    }
    executors.restore_frameworks(checkpoint.frameworks);
    let mut recovered = Recovered {
        agent_id: (!agent_id.is_empty()).then(|| agent_id.clone()),
        ..Recovered::default()
    };
    let named: BTreeSet<(String, String)> = (checkpoint.executors.iter())
        .map(|e| (e.framework_id.clone(), e.executor_id.clone()))
        .collect();
    // Executors started just before the agent died, which it had no time to checkpoint.
    let orphans = crate::orphans::find(work_dir, &named);
    recovered.unnamed = orphans.len();
    let checkpointed = checkpoint.executors.iter().map(|e| (e, false));
    for (executor, orphan) in checkpointed.chain(orphans.iter().map(|e| (e, true))) {
        let liveness = if orphan {
            Liveness::Running
        } else {
            liveness(
                &checkpoint.boot_id,
                &this_boot,
                executor.pid,
                executor.start_ticks,
            )
        };
        let found = Found {
            liveness,
            end_reported: ended
                .contains(&(executor.framework_id.clone(), executor.executor_id.clone())),
            pid: executor.pid,
        };
        let update = |state: ExecutorState, message: String| StatusUpdate {
            agent_id: agent_id.clone(),
            framework_id: executor.framework_id.clone(),
            executor_id: executor.executor_id.clone(),
            state: state as i32,
            message,
            exit_code: None,
            reason: ExecutorReason::Unspecified as i32,
            uuid: tessera_credentials::random_uuid(),
            latest_state: state as i32,
        };
        match decide(mode, away, timeout, found) {
            Decision::Adopt => {
                executors.adopt(&agent_id, executor, None);
                recovered.adopted += 1;
                if orphan {
                    // Its launch died before saying it runs.
                    tracing::info!(framework_id = %executor.framework_id,
                        executor_id = %executor.executor_id, pid = executor.pid,
                        "adopted an executor the checkpoint did not name yet");
                    let message = format!(
                        "pid {}, sandbox {} (found running after its agent restarted)",
                        executor.pid, executor.sandbox
                    );
                    pending.lock().push(update(ExecutorState::Running, message));
                }
            }
            Decision::Kill(why) => {
                executors.adopt(&agent_id, executor, Some(why));
                recovered.killed += 1;
            }
            Decision::ReportGone(why) => {
                tracing::warn!(framework_id = %executor.framework_id, executor_id = %executor.executor_id, "{why}");
                pending.lock().push(update(ExecutorState::Lost, why));
                recovered.gone += 1;
            }
            Decision::Forget => {}
        }
    }
    tracing::info!(agent_id = %agent_id, away_ms = away.as_millis() as u64, ?mode,
        adopted = recovered.adopted, killed = recovered.killed, gone = recovered.gone,
        unnamed = recovered.unnamed,
        "recovered from the agent's checkpoint");
    // Checkpointed at once, under the old id: a crash before the agent registers again
    // recovers the same.
    executors.set_agent_id(&agent_id);
    Ok(recovered)
}

/// Seconds to a tenth, as people read them ("960", "1.5").
fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// Whether a checkpointed executor runs: same boot (when both ids are known), pid alive with
/// the same start time.
pub fn liveness(checkpoint_boot: &str, this_boot: &str, pid: i32, ticks: u64) -> Liveness {
    let rebooted =
        !checkpoint_boot.is_empty() && !this_boot.is_empty() && checkpoint_boot != this_boot;
    if !rebooted && is_running(pid, ticks) {
        Liveness::Running
    } else {
        Liveness::Gone
    }
}

/// How long ago `saved_at_ms` (milliseconds since the Unix epoch) was; zero if in the future
/// (the clock was set back).
pub fn age(saved_at_ms: u64, now_ms: u64) -> Duration {
    Duration::from_millis(now_ms.saturating_sub(saved_at_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::start_ticks;
    use std::os::unix::process::ExitStatusExt;

    const MINUTE: Duration = Duration::from_secs(60);

    fn found(liveness: Liveness, end_reported: bool) -> Found {
        Found {
            liveness,
            end_reported,
            pid: 42,
        }
    }

    #[test]
    fn running_executors_are_adopted_within_the_timeout_and_killed_past_it() {
        use Liveness::*;
        let timeout = 15 * MINUTE;
        let running = found(Running, false);
        assert_eq!(
            decide(RecoverMode::Reconnect, MINUTE, timeout, running),
            Decision::Adopt
        );
        assert_eq!(
            decide(RecoverMode::Reconnect, timeout, timeout, running),
            Decision::Adopt,
            "the timeout itself is still within"
        );
        let Decision::Kill(why) = decide(RecoverMode::Reconnect, 16 * MINUTE, timeout, running)
        else {
            panic!("past the timeout it is killed");
        };
        assert!(
            why.contains("away 960 s, longer than its recovery timeout (900 s)"),
            "{why}"
        );
        let Decision::Kill(why) = decide(RecoverMode::Cleanup, Duration::ZERO, timeout, running)
        else {
            panic!("cleanup kills");
        };
        assert!(why.contains("--recover cleanup"), "{why}");
    }

    #[test]
    fn executors_gone_meanwhile_are_reported_once() {
        use Liveness::*;
        for mode in [RecoverMode::Reconnect, RecoverMode::Cleanup] {
            for away in [Duration::ZERO, 60 * MINUTE] {
                let Decision::ReportGone(why) = decide(mode, away, MINUTE, found(Gone, false))
                else {
                    panic!("reported");
                };
                assert!(why.contains("pid 42 is gone"), "{why}");
                assert_eq!(
                    decide(mode, away, MINUTE, found(Gone, true)),
                    Decision::Forget
                );
            }
        }
    }

    #[test]
    fn a_process_is_the_executor_only_with_its_start_time_on_the_same_boot() {
        let me = std::process::id() as i32;
        let ticks = start_ticks(me).expect("this process has a start time");
        let boot = boot_id();
        assert_eq!(liveness(&boot, &boot, me, ticks), Liveness::Running);
        assert_eq!(liveness("", &boot, me, ticks), Liveness::Running);
        assert_eq!(
            liveness(&boot, &boot, me, ticks + 1),
            Liveness::Gone,
            "a pid given to another process"
        );
        assert_eq!(
            liveness("another-boot", "this-boot", me, ticks),
            Liveness::Gone
        );
        assert_eq!(liveness(&boot, &boot, i32::MAX, ticks), Liveness::Gone);
    }

    /// Starts what a launch of `executor_id` under `work_dir` starts (its own process group,
    /// the environment the agent gives), as an agent killed before checkpointing it leaves.
    fn started_not_checkpointed(work_dir: &Path, executor_id: &str) -> std::process::Child {
        use crate::sandbox::env;
        use std::os::unix::process::CommandExt;
        let sandbox = crate::sandbox::sandbox_in(work_dir, "F0", executor_id);
        std::fs::create_dir_all(&sandbox).unwrap();
        let child = std::process::Command::new("sleep")
            .arg("30")
            .env(env::FRAMEWORK_ID, "F0")
            .env(env::EXECUTOR_ID, executor_id)
            .env(env::SANDBOX, &sandbox)
            .env(env::CPUS, "1")
            .env(env::MEM_MB, "64")
            .env(env::PORTS, "")
            .current_dir(&sandbox)
            .process_group(0)
            .spawn()
            .unwrap();
        // `spawn` returns once the exec has begun, but the kernel sets up the new program's
        // environment after that, and until then `/proc/PID/environ` reads empty: wait for
        // it, as a restarted agent (seconds later) would find it.
        let environ = format!("/proc/{}/environ", child.id());
        let named = format!("{}={executor_id}", env::EXECUTOR_ID);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&std::fs::read(&environ).unwrap_or_default())
            .contains(&named)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the child's environment never showed"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        child
    }

    /// A work directory whose agent (`S0`) died just after starting executor `E-unnamed`, before
    /// its checkpoint named it; and that executor's process.
    fn died_before_checkpointing() -> (tempfile::TempDir, std::process::Child) {
        let dir = tempfile::tempdir().unwrap();
        Executors::for_tests(dir.path()).0.set_agent_id("S0");
        let child = started_not_checkpointed(dir.path(), "E-unnamed");
        (dir, child)
    }

    #[tokio::test]
    async fn an_executor_started_but_not_checkpointed_is_adopted_within_the_timeout() {
        let (dir, mut child) = died_before_checkpointing();
        let work = dir.path();
        let pid = child.id() as i32;

        let (executors, pending, _rx) = Executors::for_tests(work);
        let recovered =
            recover(work, RecoverMode::Reconnect, MINUTE, &executors, &pending).expect("recovery");
        assert_eq!(
            (recovered.adopted, recovered.unnamed, recovered.killed),
            (1, 1, 0)
        );
        assert_eq!(
            executors.running(),
            [("F0".to_string(), "E-unnamed".to_string())]
        );
        let saved = checkpoint::load(work).unwrap().expect("a checkpoint");
        let [named] = &saved.executors[..] else {
            panic!("the checkpoint names it now: {saved:?}");
        };
        assert_eq!((named.pid, named.mem_mb), (pid, 64));
        // Its framework hears it runs, which its launch had no time to say.
        let updates = pending.lock().all();
        let [running] = &updates[..] else {
            panic!("one update: {updates:?}");
        };
        assert_eq!(running.state, ExecutorState::Running as i32);
        assert!(
            running.message.contains(&format!("pid {pid}")),
            "{}",
            running.message
        );
        assert!(
            is_running(pid, start_ticks(pid).unwrap()),
            "the same process runs on"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[tokio::test]
    async fn an_executor_started_but_not_checkpointed_is_killed_in_cleanup() {
        let (dir, mut child) = died_before_checkpointing();
        let work = dir.path();
        // Another work directory's executor is not this agent's.
        let other = tempfile::tempdir().unwrap();
        let mut stranger = started_not_checkpointed(other.path(), "E-other");

        let (executors, pending, mut rx) = Executors::for_tests(work);
        let recovered =
            recover(work, RecoverMode::Cleanup, MINUTE, &executors, &pending).expect("recovery");
        assert_eq!(
            (recovered.killed, recovered.unnamed, recovered.adopted),
            (1, 1, 0)
        );
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let lost = loop {
            let u = rx.recv().await.expect("its end is reported");
            if u.executor_id == "E-unnamed" && u.state != ExecutorState::Running as i32 {
                break u;
            }
        };
        assert_eq!(lost.state, ExecutorState::Lost as i32, "{}", lost.message);
        assert!(
            lost.message.contains("--recover cleanup"),
            "{}",
            lost.message
        );
        assert_eq!(
            stranger.try_wait().unwrap(),
            None,
            "another agent's executor runs on"
        );
        stranger.kill().unwrap();
        stranger.wait().unwrap();
    }

    #[test]
    fn modes_parse_and_the_age_never_goes_negative() {
        assert_eq!(
            "reconnect".parse::<RecoverMode>().unwrap(),
            RecoverMode::Reconnect
        );
        assert_eq!(
            "cleanup".parse::<RecoverMode>().unwrap(),
            RecoverMode::Cleanup
        );
        let err = "keep".parse::<RecoverMode>().unwrap_err().to_string();
        assert!(err.contains("use reconnect or cleanup"), "{err}");
        assert_eq!(age(1_000, 3_500), Duration::from_millis(2_500));
        assert_eq!(age(5_000, 3_500), Duration::ZERO);
    }
}
