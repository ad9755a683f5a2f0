//! A command run as a task on the cluster (Mesos' `mesos-execute`; `tessera cluster exec`):
//! subscribe as a framework, wait for an offer that fits the command's resources, launch it as
//! one executor, follow its state changes to its end, tear the framework down, and give back
//! how it ended.
//!
//! Waiting is never silent: while no offer fits, a notice every [`CommandTask::notice_every`]
//! says what is wanted and the largest offer seen; after [`CommandTask::timeout`] it gives up
//! with the same words. Offers that do not fit are declined for a second, so the master offers
//! them again (perhaps grown) and other frameworks can have them meanwhile.

use std::time::Duration;

use tessera_allocator::Resources;

use crate::api::{
    ExecutorLaunch, ExecutorReason, ExecutorState, FrameworkEvent, FrameworkInfo, MasterEndpoint,
    Offer,
};
use crate::client::FrameworkClient;
use crate::error::FrameworkError;

/// The id of the command's executor (one per framework, so one name does).
pub const TASK_ID: &str = "exec-1";
/// How long an offer that does not fit is not offered again.
const DECLINE_SECONDS: f64 = 1.0;

/// A command to run as a task.
#[derive(Clone, Debug)]
pub struct CommandTask {
    /// The program the agent runs (looked up on its `PATH` when it names no directory).
    pub program: String,
    /// The program's arguments.
    pub args: Vec<String>,
    /// The CPUs and memory (MiB) to run it with: only an offer with as much will do.
    pub resources: Resources,
    /// The framework's name, shown by `tessera cluster status`.
    pub name: String,
    /// Its role (`*` when empty).
    pub role: String,
    /// How long to wait for an offer that fits.
    pub timeout: Duration,
    /// How often to say that it still waits.
    pub notice_every: Duration,
}

/// What happens, as it happens.
#[derive(Clone, Debug, PartialEq)]
pub enum CommandTaskEvent {
    /// Still no offer fits.
    Waiting(String),
    /// The task changed state.
    State {
        /// The task's id ([`TASK_ID`]).
        task_id: String,
        /// The agent it runs on.
        agent_id: String,
        /// That agent's host name, from the offer it was launched with.
        hostname: String,
        /// Its new state.
        state: ExecutorState,
        /// What its agent or the master said of the change (empty when nothing).
        message: String,
    },
}

impl std::fmt::Display for CommandTaskEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandTaskEvent::Waiting(notice) => f.write_str(notice),
            CommandTaskEvent::State {
                task_id,
                agent_id,
                hostname,
                state,
                message,
            } => {
                write!(f, "task {task_id} {state} on {agent_id} ({hostname})")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
        }
    }
}

/// How the task ended.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandOutcome {
    /// Its terminal state (finished, failed, killed or lost).
    pub state: ExecutorState,
    /// What its agent or the master said of that state (e.g. why it failed).
    pub message: String,
    /// Its exit status, or 128 + the signal that ended it, when its process ended.
    pub exit_code: Option<i32>,
    /// Why it ended, when its state does not say it all.
    pub reason: Option<ExecutorReason>,
}

impl CommandOutcome {
    /// The status `tessera cluster exec` exits with: the command's own, else 0 when it
    /// finished and 1 when it did not.
    pub fn exit_status(&self) -> i32 {
        match (self.state, self.exit_code) {
            (ExecutorState::Finished, code) => code.unwrap_or(0),
            (_, Some(code)) if code != 0 => code,
            _ => 1,
        }
    }
}

/// Why the command did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum CommandTaskError {
    /// Talking to the master failed.
    #[error(transparent)]
    Framework(#[from] FrameworkError),
    /// No offer fitted the command within [`CommandTask::timeout`].
    #[error(
        "gave up after {seconds} s: {notice}; ask for less (--cpus, --mem-mb), or add or free agents"
    )]
    NoFit {
        /// How long it waited, in whole seconds.
        seconds: u64,
        /// What was wanted and the largest offer seen.
        notice: String,
    },
    /// The master was lost, or the subscription ended, before the task ended.
    #[error("lost the master while the task ran: {0}")]
    Disconnected(String),
}

/// Whether `offer` has room for `wanted`.
pub fn fits(offer: &Resources, wanted: &Resources) -> bool {
    offer.cpus >= wanted.cpus && offer.mem_mb >= wanted.mem_mb
}

/// The offer nearest to fitting `wanted`: the one whose scarcer resource covers the largest
/// part of what is wanted.
pub fn largest<'a>(offers: &'a [Offer], wanted: &Resources) -> Option<&'a Offer> {
    let part = |have: f64, want: f64| {
        if want > 0.0 {
            have / want
        } else {
            f64::INFINITY
        }
    };
    let cover = |o: &Offer| {
        part(o.resources.cpus, wanted.cpus)
            .min(part(o.resources.mem_mb as f64, wanted.mem_mb as f64))
    };
    offers.iter().max_by(|a, b| cover(a).total_cmp(&cover(b)))
}

/// What to tell someone waiting for `wanted`, given the offers that did not fit.
pub fn no_fit_notice(wanted: &Resources, offers: &[Offer]) -> String {
    let want = format!("{} cpus and {} MiB", wanted.cpus, wanted.mem_mb);
    match largest(offers, wanted) {
        Some(o) => format!(
            "no agent offers {want}; the largest offer is {} cpus and {} MiB on {} ({})",
            o.resources.cpus, o.resources.mem_mb, o.agent_id, o.hostname
        ),
        None => format!(
            "no agent offers {want}; no offers at all (every agent is in use, or none is registered)"
        ),
    }
}

/// Runs `task` on the cluster at `endpoint`, telling `on_event` what happens; returns how it
/// ended. The framework is torn down in every case (on an early return, its subscription
/// ends with the client, and the master removes it with its executor).
pub async fn run_command(
    endpoint: &MasterEndpoint,
    task: &CommandTask,
    mut on_event: impl FnMut(CommandTaskEvent),
) -> Result<CommandOutcome, CommandTaskError> {
    let info = FrameworkInfo {
        name: task.name.clone(),
        user: String::new(),
        role: task.role.clone(),
        ..Default::default()
    };
    let (client, mut events) = FrameworkClient::subscribe(endpoint, info).await?;
    let result = follow(&client, &mut events, task, &mut on_event).await;
    let _ = client.teardown().await;
    result
}

async fn follow(
    client: &FrameworkClient,
    events: &mut tokio::sync::mpsc::Receiver<FrameworkEvent>,
    task: &CommandTask,
    on_event: &mut impl FnMut(CommandTaskEvent),
) -> Result<CommandOutcome, CommandTaskError> {
    let started = tokio::time::Instant::now();
    let give_up = started + task.timeout;
    let mut next_notice = started + task.notice_every;
    // Offers that did not fit since the last notice (all of them, for the final error).
    let mut unfit: Vec<Offer> = Vec::new();
    let mut launched_on: Option<Offer> = None;
    loop {
        let wake = if launched_on.is_some() {
            None
        } else {
            Some(next_notice.min(give_up))
        };
        let event = match wake {
            Some(at) => match tokio::time::timeout_at(at, events.recv()).await {
                Ok(event) => event,
                Err(_) => {
                    let notice = no_fit_notice(&task.resources, &unfit);
                    if tokio::time::Instant::now() >= give_up {
                        return Err(CommandTaskError::NoFit {
                            seconds: task.timeout.as_secs(),
                            notice,
                        });
                    }
                    let left = give_up - tokio::time::Instant::now();
                    on_event(CommandTaskEvent::Waiting(format!(
                        "{notice}; still waiting (giving up in {} s)",
                        left.as_secs()
                    )));
                    next_notice += task.notice_every;
                    continue;
                }
            },
            None => events.recv().await,
        };
        let Some(event) = event else {
            return Err(CommandTaskError::Disconnected(
                "the event stream ended".into(),
            ));
        };
        match event {
            FrameworkEvent::Offers(offers) => {
                for offer in offers {
                    if launched_on.is_none() && fits(&offer.resources, &task.resources) {
                        let launch = ExecutorLaunch {
                            executor_id: TASK_ID.into(),
                            program: task.program.clone(),
                            args: task.args.clone(),
                            env: Vec::new(),
                            resources: task.resources,
                            extras: Default::default(),
                            files_credential: None,
                        };
                        client.accept(&offer.id, vec![launch]).await?;
                        // Nothing more is wanted: let others have the offers.
                        client.suppress().await?;
                        launched_on = Some(offer);
                    } else {
                        client.decline(&offer.id, DECLINE_SECONDS).await?;
                        if launched_on.is_none() {
                            unfit.retain(|o| o.agent_id != offer.agent_id);
                            unfit.push(offer);
                        }
                    }
                }
            }
            FrameworkEvent::ExecutorStatus {
                executor_id,
                agent_id,
                state,
                message,
                exit_code,
                reason,
                ..
            } if executor_id == TASK_ID => {
                let hostname = launched_on
                    .as_ref()
                    .map(|o| o.hostname.clone())
                    .unwrap_or_default();
                on_event(CommandTaskEvent::State {
                    task_id: executor_id,
                    agent_id,
                    hostname,
                    state,
                    message: message.clone(),
                });
                if state.is_terminal() {
                    return Ok(CommandOutcome {
                        state,
                        message,
                        exit_code,
                        reason,
                    });
                }
            }
            FrameworkEvent::Disconnected(why) => return Err(CommandTaskError::Disconnected(why)),
            // A command runs to its end, as a Mesos task is never preempted for fairness.
            FrameworkEvent::Registered { .. }
            | FrameworkEvent::OfferRescinded(_)
            | FrameworkEvent::Reclaim { .. }
            | FrameworkEvent::Message { .. }
            // A failure of the task's executor comes as its status update too.
            | FrameworkEvent::ExecutorStatus { .. }
            | FrameworkEvent::Failure { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(agent: &str, cpus: f64, mem_mb: u64) -> Offer {
        Offer {
            id: format!("o-{agent}"),
            agent_id: agent.into(),
            hostname: format!("host-{agent}"),
            resources: Resources::new(cpus, mem_mb),
            extras: Default::default(),
            reservation: None,
            attributes: Vec::new(),
            allocation_role: "*".into(),
        }
    }

    #[test]
    fn an_offer_fits_when_it_has_both() {
        let wanted = Resources::new(2.0, 1024);
        assert!(fits(&Resources::new(2.0, 1024), &wanted));
        assert!(fits(&Resources::new(4.0, 2048), &wanted));
        assert!(!fits(&Resources::new(1.5, 4096), &wanted));
        assert!(!fits(&Resources::new(8.0, 1000), &wanted));
    }

    #[test]
    fn the_notice_names_what_is_wanted_and_the_nearest_offer() {
        let wanted = Resources::new(8.0, 1024);
        let offers = [
            offer("a", 2.0, 4096),
            offer("b", 4.0, 512),
            offer("c", 1.0, 8192),
        ];
        assert_eq!(largest(&offers, &wanted).unwrap().agent_id, "b");
        assert_eq!(
            no_fit_notice(&wanted, &offers),
            "no agent offers 8 cpus and 1024 MiB; the largest offer is 4 cpus and 512 MiB on b \
             (host-b)"
        );
        assert!(no_fit_notice(&wanted, &[]).contains("no offers at all"));
    }

    #[test]
    fn the_exit_status_is_the_commands() {
        let outcome = |state, exit_code| CommandOutcome {
            state,
            message: String::new(),
            exit_code,
            reason: None,
        };
        use ExecutorState::*;
        assert_eq!(outcome(Finished, Some(0)).exit_status(), 0);
        assert_eq!(outcome(Failed, Some(3)).exit_status(), 3);
        assert_eq!(outcome(Failed, Some(137)).exit_status(), 137);
        assert_eq!(outcome(Failed, None).exit_status(), 1, "it never started");
        assert_eq!(outcome(Lost, None).exit_status(), 1);
        assert_eq!(outcome(Killed, Some(0)).exit_status(), 1);
    }

    #[test]
    fn state_lines_say_where_and_why() {
        let event = CommandTaskEvent::State {
            task_id: TASK_ID.into(),
            agent_id: "M-S0".into(),
            hostname: "h".into(),
            state: ExecutorState::Failed,
            message: "memory limit 128 MiB exceeded".into(),
        };
        assert_eq!(
            event.to_string(),
            "task exec-1 FAILED on M-S0 (h): memory limit 128 MiB exceeded"
        );
    }
}
