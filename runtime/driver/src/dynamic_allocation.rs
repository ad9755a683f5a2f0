//! Spark's dynamic allocation, as much as a session sharing a cluster needs: an executor idle
//! past a timeout is released, unless it holds shuffle outputs (a later stage may read them)
//! or cached partitions (unless the session is told to release those too: Spark's
//! `cachedExecutorIdleTimeout`); and when tasks wait with no executor, the session asks the
//! master for offers again. The decision is a pure function over what the driver knows.

use std::time::Duration;

/// When executors are released (`--executor-idle-timeout-s`).
#[derive(Clone, Debug, PartialEq)]
pub struct DynamicAllocation {
    /// An executor with no task for this long is released.
    pub idle_timeout: Duration,
    /// Release idle executors that hold cached partitions too (they are recomputed from
    /// lineage when next needed).
    pub release_cached: bool,
}

/// What the driver knows of one executor.
#[derive(Clone, Debug)]
pub(crate) struct ExecutorUse {
    pub id: String,
    /// How long it has had no task.
    pub idle_for: Duration,
    pub holds_cache: bool,
    pub holds_shuffle_outputs: bool,
}

/// The executors to release now.
pub(crate) fn to_release(policy: &DynamicAllocation, executors: &[ExecutorUse]) -> Vec<String> {
    executors
        .iter()
        .filter(|e| e.idle_for >= policy.idle_timeout)
        .filter(|e| !e.holds_shuffle_outputs)
        .filter(|e| policy.release_cached || !e.holds_cache)
        .map(|e| e.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executor(id: &str, idle_s: u64, cache: bool, shuffle: bool) -> ExecutorUse {
        ExecutorUse {
            id: id.into(),
            idle_for: Duration::from_secs(idle_s),
            holds_cache: cache,
            holds_shuffle_outputs: shuffle,
        }
    }

    #[test]
    fn idle_executors_go_unless_they_hold_what_later_jobs_read() {
        let policy = DynamicAllocation {
            idle_timeout: Duration::from_secs(60),
            release_cached: false,
        };
        let executors = [
            executor("busy", 10, false, false),
            executor("idle", 61, false, false),
            executor("cached", 600, true, false),
            executor("shuffle", 600, false, true),
        ];
        assert_eq!(to_release(&policy, &executors), ["idle"]);
        let release_cached = DynamicAllocation {
            release_cached: true,
            ..policy
        };
        assert_eq!(to_release(&release_cached, &executors), ["idle", "cached"]);
    }
}
