//! The master's counters of what happened since it started ([`Metrics`]), updated by the
//! bookkeeping where each event happens; [`crate::prometheus`] shows them at `/metrics`.

use std::time::Duration;

use tessera_cluster_proto::master as pb;

/// Upper bounds (seconds) of the allocation-run histogram's buckets.
pub(crate) const ALLOCATION_BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
];

/// The ways an executor ends, each counted apart.
pub(crate) const ENDINGS: [pb::ExecutorState; 4] = [
    pb::ExecutorState::Finished,
    pb::ExecutorState::Failed,
    pb::ExecutorState::Killed,
    pb::ExecutorState::Lost,
];

/// Counters since the master started.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub offers_made: u64,
    pub offers_accepted: u64,
    pub offers_declined: u64,
    /// Taken back by the master (their agent was lost, or they timed out), with a Rescind.
    pub offers_rescinded: u64,
    pub executors_launched: u64,
    /// By [`ENDINGS`] index.
    pub executors_ended: [u64; ENDINGS.len()],
    pub agents_registered: u64,
    /// Agents removed: silent past the agent timeout, or replaced by a restart.
    pub agents_lost: u64,
    pub frameworks_subscribed: u64,
    pub frameworks_removed: u64,
    /// Reclaim events sent to frameworks above their fair share.
    pub reclaims: u64,
    pub allocation_runs: Histogram,
}

impl Metrics {
    /// An executor ended in `state` (a terminal state).
    pub fn executor_ended(&mut self, state: pb::ExecutorState) {
        if let Some(i) = ENDINGS.iter().position(|s| *s == state) {
            self.executors_ended[i] += 1;
        }
    }

    /// An allocation run took `took`.
    pub fn allocation_ran(&mut self, took: Duration) {
        self.allocation_runs.observe(took.as_secs_f64());
    }
}

/// A Prometheus histogram of seconds, with the last observation kept apart.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// Observations at most each bound of [`ALLOCATION_BUCKETS`] (not cumulative).
    pub buckets: [u64; ALLOCATION_BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
    pub last: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = ALLOCATION_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
        self.last = seconds;
    }
}
