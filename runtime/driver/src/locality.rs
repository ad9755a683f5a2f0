//! Locality levels and delay scheduling (Zaharia et al., EuroSys 2010), as Spark's task
//! scheduler applies them: a task first waits for a free slot where its data is (in an
//! executor's memory, then on its host), one locality wait per level, and only then runs
//! anywhere.

use crate::executors::ExecutorHandle;
use std::time::Duration;

/// How long a task waits at each locality level by default, as Spark's `spark.locality.wait`.
pub const DEFAULT_LOCALITY_WAIT: Duration = Duration::from_secs(3);

/// How close a task runs to its data, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Locality {
    /// The executor caches the partition the task reads.
    ProcessLocal,
    /// The executor is on the host that holds the task's input file.
    NodeLocal,
    /// Anywhere: the task reads shuffle output or driver-shipped records, or waited too long.
    Any,
}

impl std::fmt::Display for Locality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Locality::ProcessLocal => "PROCESS_LOCAL",
            Locality::NodeLocal => "NODE_LOCAL",
            Locality::Any => "ANY",
        })
    }
}

/// Where a task's data is.
#[derive(Clone, Debug, Default)]
pub struct Preferences {
    /// Executors caching the partition the task reads.
    pub executors: Vec<String>,
    /// Hosts holding the task's input file.
    pub hosts: Vec<String>,
}

impl Preferences {
    /// The level `executor` would run the task at.
    pub fn level_of(&self, executor: &ExecutorHandle) -> Locality {
        self.level_at(&executor.id, &executor.host)
    }

    fn level_at(&self, executor: &str, host: &str) -> Locality {
        if self.executors.iter().any(|e| e == executor) {
            Locality::ProcessLocal
        } else if self.hosts.iter().any(|h| h == host) {
            Locality::NodeLocal
        } else {
            Locality::Any
        }
    }

    /// The least local level the task may run at after waiting `waited`, given the live
    /// executors as (id, host): each level some live executor offers gets one `wait` before the
    /// next is allowed; levels no live executor offers are skipped at once (a lost executor's
    /// cache is not worth waiting for).
    pub fn allowed<'a>(
        &self,
        live: impl IntoIterator<Item = (&'a str, &'a str)>,
        waited: Duration,
        wait: Duration,
    ) -> Locality {
        if wait.is_zero() {
            return Locality::Any;
        }
        let mut levels: Vec<Locality> = live
            .into_iter()
            .map(|(e, h)| self.level_at(e, h))
            .filter(|level| *level != Locality::Any)
            .collect();
        levels.sort();
        levels.dedup();
        let waits_over = (waited.as_nanos() / wait.as_nanos()) as usize;
        levels.get(waits_over).copied().unwrap_or(Locality::Any)
    }
}

/// How long after `waited` the level [`Preferences::allowed`] gives may next change: at the next
/// multiple of `wait`; never with delay scheduling off.
pub fn next_relaxation(waited: Duration, wait: Duration) -> Option<Duration> {
    if wait.is_zero() {
        return None;
    }
    let into = waited.as_nanos() % wait.as_nanos();
    Some(wait - Duration::from_nanos(into as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowed_level_may_change_only_when_a_wait_is_over() {
        let wait = Duration::from_secs(3);
        let next = |ms| next_relaxation(Duration::from_millis(ms), wait);
        assert_eq!(next(0), Some(wait));
        assert_eq!(next(2_999), Some(Duration::from_millis(1)));
        assert_eq!(next(3_000), Some(wait));
        assert_eq!(next(4_500), Some(Duration::from_millis(1_500)));
        assert_eq!(
            next_relaxation(Duration::from_secs(5), Duration::ZERO),
            None
        );
    }

    #[test]
    fn each_level_waits_one_locality_wait_before_the_next() {
        let live = [("a", "h1"), ("b", "h1"), ("c", "h2")];
        let prefs = Preferences {
            executors: vec!["a".into()],
            hosts: vec!["h1".into()],
        };
        let wait = Duration::from_secs(3);
        let at = |ms| prefs.allowed(live, Duration::from_millis(ms), wait);
        assert_eq!(at(0), Locality::ProcessLocal);
        assert_eq!(at(2_999), Locality::ProcessLocal);
        assert_eq!(at(3_000), Locality::NodeLocal);
        assert_eq!(at(6_000), Locality::Any);
        assert_eq!(prefs.level_at("a", "h1"), Locality::ProcessLocal);
        assert_eq!(prefs.level_at("b", "h1"), Locality::NodeLocal);
        assert_eq!(prefs.level_at("c", "h2"), Locality::Any);
        // A zero wait disables delay scheduling.
        assert_eq!(
            prefs.allowed(live, Duration::ZERO, Duration::ZERO),
            Locality::Any
        );
    }

    #[test]
    fn levels_no_live_executor_offers_are_not_waited_for() {
        // The caching executor is gone: the task waits for its host only.
        let live = [("b", "h1"), ("c", "h2")];
        let prefs = Preferences {
            executors: vec!["a".into()],
            hosts: vec!["h1".into()],
        };
        let wait = Duration::from_secs(3);
        assert_eq!(
            prefs.allowed(live, Duration::ZERO, wait),
            Locality::NodeLocal
        );
        assert_eq!(prefs.allowed(live, wait, wait), Locality::Any);
        // No preference at all: anywhere, at once.
        let none = Preferences::default();
        assert_eq!(none.allowed(live, Duration::ZERO, wait), Locality::Any);
    }
}
