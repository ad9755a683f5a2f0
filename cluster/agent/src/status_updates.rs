//! The agent's status update manager (Mesos' `StatusUpdateManager`), as plain data: for each
//! executor, the status updates its framework has not acknowledged yet, in order. Only the
//! oldest (the head) is sent to the master; it is sent again after [`RETRY_MIN`], doubling up
//! to [`RETRY_MAX`], until the framework's acknowledgement comes back through the master — so
//! an update outlives a framework's disconnect and a master restart. The head goes out stamped
//! with the newest state of its executor (`latest_state`), so that the master's bookkeeping is
//! not held back by updates waiting their turn.
//!
//! No I/O here: the caller (`master_link`) sends what [`StatusUpdates::due`] returns.
//! [`PendingUpdates`] shares them between the agent's tasks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tessera_cluster_proto::master::{ExecutorState, StatusUpdate};
use tokio::sync::Notify;

/// First wait before an unacknowledged update is sent again (Mesos: 10 s).
pub const RETRY_MIN: Duration = Duration::from_secs(2);
/// Longest wait between two sendings of the same update (Mesos: 10 min).
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// Whose updates a stream holds: (framework id, executor id).
pub type StreamKey = (String, String);

struct Stream {
    updates: VecDeque<StatusUpdate>,
    /// When the head may be sent (again); `None`: not sent yet.
    next_send: Option<Instant>,
    /// How long after the next sending it may be sent again.
    backoff: Duration,
}

/// The unacknowledged status updates of every executor of this agent.
#[derive(Default)]
pub struct StatusUpdates {
    streams: BTreeMap<StreamKey, Stream>,
}

impl StatusUpdates {
    /// Queues an update behind the executor's unacknowledged ones.
    pub fn push(&mut self, update: StatusUpdate) {
        let key = (update.framework_id.clone(), update.executor_id.clone());
        self.streams
            .entry(key)
            .or_insert_with(|| Stream {
                updates: VecDeque::new(),
                next_send: None,
                backoff: RETRY_MIN,
            })
            .updates
            .push_back(update);
    }

    /// The heads to send at `now`: those never sent and those whose retry time has come, each
    /// stamped with its executor's latest state. Each then waits its backoff, which doubles.
    pub fn due(&mut self, now: Instant) -> Vec<StatusUpdate> {
        let mut out = Vec::new();
        for stream in self.streams.values_mut() {
            if stream.next_send.is_some_and(|at| at > now) {
                continue;
            }
            let (Some(head), Some(newest)) = (stream.updates.front(), stream.updates.back()) else {
                continue;
            };
            out.push(StatusUpdate {
                latest_state: newest.state,
                ..head.clone()
            });
            stream.next_send = Some(now + stream.backoff);
            stream.backoff = (stream.backoff * 2).min(RETRY_MAX);
        }
        out
    }

    /// The framework acknowledged the update `uuid` of the executor (or the master refused
    /// it for good): if it is the head it goes, and the next is due at once. Returns whether
    /// it was the head; acknowledgements of anything else (a duplicate) change nothing.
    pub fn acknowledge(&mut self, key: &StreamKey, uuid: &str) -> bool {
        let Some(stream) = self.streams.get_mut(key) else {
            return false;
        };
        if stream.updates.front().is_none_or(|head| head.uuid != uuid) {
            return false;
        }
        stream.updates.pop_front();
        stream.next_send = None;
        stream.backoff = RETRY_MIN;
        if stream.updates.is_empty() {
            self.streams.remove(key);
        }
        true
    }

    /// Every update waiting, oldest first per executor (for the checkpoint; pushing them back
    /// in this order restores the queues).
    pub fn all(&self) -> Vec<StatusUpdate> {
        self.streams
            .values()
            .flat_map(|s| s.updates.iter().cloned())
            .collect()
    }

    /// Executors with updates waiting, and the newest state of each.
    pub fn waiting(&self) -> Vec<(StreamKey, ExecutorState)> {
        self.streams
            .iter()
            .filter_map(|(key, s)| {
                let state = ExecutorState::try_from(s.updates.back()?.state).ok()?;
                Some((key.clone(), state))
            })
            .collect()
    }

    /// Sends every waiting head at the next [`StatusUpdates::due`], e.g. to a master this
    /// agent has just registered with again.
    pub fn send_all_now(&mut self) {
        for stream in self.streams.values_mut() {
            stream.next_send = None;
        }
    }

    /// Drops the updates not made under `agent_id` (the master reported those executors LOST).
    pub fn keep_agent(&mut self, agent_id: &str) {
        for stream in self.streams.values_mut() {
            stream.updates.retain(|u| u.agent_id == agent_id);
        }
        self.streams.retain(|_, s| !s.updates.is_empty());
    }
}

/// The agent's unacknowledged status updates, shared by the sender, the registration (a master
/// must know the executors whose updates wait) and the service (acknowledgements); `wake` hurries
/// the sender when an acknowledgement makes an executor's next update due.
#[derive(Default)]
pub(crate) struct PendingUpdates {
    updates: Mutex<StatusUpdates>,
    pub wake: Notify,
}

impl PendingUpdates {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, StatusUpdates> {
        self.updates.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The framework acknowledged `uuid`, or the master refused it for good; returns whether
    /// it was the update that waited (the caller checkpoints the change).
    pub(crate) fn acknowledge(&self, key: &StreamKey, uuid: &str) -> bool {
        let done = self.lock().acknowledge(key, uuid);
        if done {
            self.wake.notify_one();
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(executor: &str, state: ExecutorState, uuid: &str) -> StatusUpdate {
        StatusUpdate {
            agent_id: "S0".into(),
            framework_id: "F0".into(),
            executor_id: executor.into(),
            state: state as i32,
            uuid: uuid.into(),
            ..Default::default()
        }
    }

    fn uuids(updates: &[StatusUpdate]) -> Vec<&str> {
        updates.iter().map(|u| u.uuid.as_str()).collect()
    }

    fn key(executor: &str) -> StreamKey {
        ("F0".into(), executor.into())
    }

    #[test]
    fn one_update_per_executor_at_a_time_in_order_until_acknowledged() {
        let mut s = StatusUpdates::default();
        let t0 = Instant::now();
        s.push(update("a", ExecutorState::Starting, "a1"));
        s.push(update("a", ExecutorState::Running, "a2"));
        s.push(update("a", ExecutorState::Failed, "a3"));
        s.push(update("b", ExecutorState::Running, "b1"));
        let sent = s.due(t0);
        assert_eq!(uuids(&sent), ["a1", "b1"]);
        // The head goes out with the newest state of its executor.
        assert_eq!(sent[0].latest_state, ExecutorState::Failed as i32);
        assert_eq!(sent[0].state, ExecutorState::Starting as i32);
        // Nothing again before its retry time.
        assert!(s.due(t0 + RETRY_MIN / 2).is_empty());
        // An acknowledgement of something else than the head changes nothing.
        assert!(!s.acknowledge(&key("a"), "a2"));
        assert!(s.acknowledge(&key("a"), "a1"));
        assert_eq!(uuids(&s.due(t0 + RETRY_MIN / 2)), ["a2"]);
        assert!(s.acknowledge(&key("b"), "b1"));
        assert_eq!(
            s.waiting(),
            [(key("a"), ExecutorState::Failed)],
            "b has nothing waiting"
        );
    }

    #[test]
    fn an_unacknowledged_update_is_sent_again_with_a_doubling_backoff() {
        let mut s = StatusUpdates::default();
        let t0 = Instant::now();
        s.push(update("a", ExecutorState::Running, "a1"));
        let mut at = t0;
        let mut waits = Vec::new();
        assert_eq!(s.due(at).len(), 1);
        for _ in 0..8 {
            let mut wait = Duration::ZERO;
            while s.due(at + wait).is_empty() {
                wait += Duration::from_secs(1);
            }
            at += wait;
            waits.push(wait.as_secs());
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        // A new master: everything waiting goes at once.
        s.send_all_now();
        assert_eq!(s.due(at).len(), 1);
    }

    #[test]
    fn what_waits_is_listed_in_order_and_pushed_back_the_same() {
        let mut s = StatusUpdates::default();
        s.push(update("b", ExecutorState::Running, "b1"));
        s.push(update("a", ExecutorState::Starting, "a1"));
        s.push(update("a", ExecutorState::Running, "a2"));
        s.push(update("b", ExecutorState::Killed, "b2"));
        let all = s.all();
        assert_eq!(uuids(&all), ["a1", "a2", "b1", "b2"]);
        let mut back = StatusUpdates::default();
        for u in all {
            back.push(u);
        }
        assert_eq!(back.waiting(), s.waiting());
        assert_eq!(uuids(&back.due(Instant::now())), ["a1", "b1"]);
    }

    #[test]
    fn updates_of_an_earlier_registration_are_dropped() {
        let mut s = StatusUpdates::default();
        s.push(update("a", ExecutorState::Running, "a1"));
        s.push(StatusUpdate {
            agent_id: "S1".into(),
            ..update("b", ExecutorState::Running, "b1")
        });
        s.keep_agent("S1");
        assert_eq!(s.waiting(), [(key("b"), ExecutorState::Running)]);
        assert_eq!(uuids(&s.due(Instant::now())), ["b1"]);
    }
}
