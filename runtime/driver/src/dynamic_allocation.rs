//! Spark's dynamic allocation, as much as a session sharing a cluster needs: an executor idle
//! past a timeout is released, unless it holds shuffle outputs (a later stage may read them)
//! or cached partitions (unless the session is told to release those too: Spark's
//! `cachedExecutorIdleTimeout`); and when tasks wait with no executor, the session asks the
//! master for offers again. When the master asks for resources back (another session waits
//! below its fair share), [`to_give_back`] picks the executors whose loss costs least. The
//! decisions are pure functions over what the driver knows.

use std::time::Duration;

use tessera_framework::Resources;

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

/// The executors to end to give back at most `amount`: first those whose loss costs least —
/// holding no shuffle outputs, then no cached partitions, then idle (longest first) before
/// busy (a busy one finishes its tasks first) — as many as fit in `amount`.
pub(crate) fn to_give_back(
    executors: &[(ExecutorUse, Resources)],
    amount: Resources,
) -> Vec<String> {
    let mut ranked: Vec<&(ExecutorUse, Resources)> = executors.iter().collect();
    ranked.sort_by_key(|(e, _)| {
        (
            e.holds_shuffle_outputs,
            e.holds_cache,
            e.idle_for.is_zero(),
            std::cmp::Reverse(e.idle_for),
            e.id.clone(),
        )
    });
    let mut given = Resources::ZERO;
    let mut chosen = Vec::new();
    for (e, resources) in ranked {
        let with = given.plus(resources);
        if amount.contains(&with) {
            given = with;
            chosen.push(e.id.clone());
        }
    }
    chosen
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

    #[test]
    fn what_is_given_back_costs_least_and_stays_within_what_was_asked() {
        let two = Resources::new(2.0, 1024);
        let executors = [
            (executor("busy", 0, false, false), two),
            (executor("cached", 30, true, false), two),
            (executor("idle", 5, false, false), two),
            (executor("idler", 50, false, false), two),
            (executor("shuffle", 90, false, true), two),
        ];
        assert_eq!(
            to_give_back(&executors, Resources::new(4.0, 2048)),
            ["idler", "idle"]
        );
        assert_eq!(
            to_give_back(&executors, Resources::new(6.0, 3072)),
            ["idler", "idle", "busy"],
            "a busy executor before one that holds cached partitions"
        );
        assert!(
            to_give_back(&executors, Resources::new(3.0, 1000)).is_empty(),
            "never more than asked: it would go below its own share"
        );
    }
}
