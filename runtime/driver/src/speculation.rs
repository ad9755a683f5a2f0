//! Speculative execution, as Spark's `spark.speculation`: a task that runs much longer than
//! the stage's finished tasks took gets a second attempt on another executor, and whichever
//! attempt ends first is the task's. It is for executors that hang without dying (a frozen
//! machine, a stalled disk): they answer nothing, are never found lost, and without a copy their
//! tasks hold the job for good. (Against executors killed on a loaded two-core machine, the
//! chaos suite's case, copies made early did not lower the cost: BENCHMARKS.md.)
//!
//! Off by default, as in Spark: a task's side effects (`foreach`, files it writes) may happen
//! twice. Accumulators count the accepted attempt only. The decision is
//! [`Speculation::tasks_to_copy`], over plain durations.

use std::time::Duration;

/// When a running task gets a copy (Spark's `spark.speculation.*` settings).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speculation {
    /// The share of the stage's tasks that must have finished first (`quantile`, 0.75).
    pub quantile: f64,
    /// How many times the finished tasks' median a task must have run (`multiplier`, 1.5).
    pub multiplier: f64,
    /// And at least this long (`minTaskRuntime`, 100 ms).
    pub min_runtime: Duration,
}

impl Default for Speculation {
    fn default() -> Self {
        Speculation {
            quantile: 0.75,
            multiplier: 1.5,
            min_runtime: Duration::from_millis(100),
        }
    }
}

/// A task of the stage still running, with nothing accepted yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Running {
    pub partition: u32,
    /// Since its first attempt was sent.
    pub elapsed: Duration,
    /// Whether it has a copy already (a task gets one at most).
    pub copied: bool,
}

impl Speculation {
    /// This policy from `TESSERA_SPECULATION` (unset or `0`: off) and its settings
    /// `TESSERA_SPECULATION_QUANTILE`, `_MULTIPLIER` and `_MIN_MS`; a setting that does not parse
    /// keeps its default.
    pub fn from_env() -> Option<Speculation> {
        let var = |name: &str| std::env::var(name).ok();
        Speculation::from_settings(
            var("TESSERA_SPECULATION").as_deref(),
            var("TESSERA_SPECULATION_QUANTILE").as_deref(),
            var("TESSERA_SPECULATION_MULTIPLIER").as_deref(),
            var("TESSERA_SPECULATION_MIN_MS").as_deref(),
        )
    }

    fn from_settings(
        on: Option<&str>,
        quantile: Option<&str>,
        multiplier: Option<&str>,
        min_ms: Option<&str>,
    ) -> Option<Speculation> {
        if !matches!(on.map(str::trim), Some("1" | "true" | "on")) {
            return None;
        }
        let number = |text: Option<&str>| text.and_then(|t| t.trim().parse::<f64>().ok());
        let default = Speculation::default();
        Some(Speculation {
            quantile: number(quantile)
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(default.quantile),
            multiplier: number(multiplier)
                .filter(|m| *m >= 1.0)
                .unwrap_or(default.multiplier),
            min_runtime: number(min_ms)
                .filter(|ms| *ms >= 0.0)
                .map_or(default.min_runtime, |ms| Duration::from_secs_f64(ms / 1e3)),
        })
    }

    /// The running tasks of a stage of `tasks` tasks that get a copy now, given how long its
    /// `finished` tasks took: none until a `quantile` of the tasks finished; then each task
    /// without a copy that has run `multiplier` times their median, and at least
    /// `min_runtime`.
    pub fn tasks_to_copy(
        &self,
        tasks: usize,
        finished: &[Duration],
        running: &[Running],
    ) -> Vec<u32> {
        let needed = ((tasks as f64) * self.quantile).ceil().max(1.0) as usize;
        if finished.is_empty() || finished.len() < needed {
            return Vec::new();
        }
        let mut sorted = finished.to_vec();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        let threshold = median.mul_f64(self.multiplier).max(self.min_runtime);
        running
            .iter()
            .filter(|task| !task.copied && task.elapsed > threshold)
            .map(|task| task.partition)
            .collect()
    }

    /// How often a stage with tasks that could still get a copy looks for slow ones: a
    /// quarter of the minimum run time, between 1 and 50 ms.
    pub fn look_every(&self) -> Duration {
        (self.min_runtime / 4).clamp(Duration::from_millis(1), Duration::from_millis(50))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn running(partition: u32, elapsed: u64, copied: bool) -> Running {
        Running {
            partition,
            elapsed: ms(elapsed),
            copied,
        }
    }

    #[test]
    fn a_task_far_slower_than_the_finished_ones_gets_one_copy() {
        let policy = Speculation {
            quantile: 0.5,
            multiplier: 1.5,
            min_runtime: ms(2),
        };
        let finished = [ms(3), ms(4)];
        // 4 tasks, 2 finished (half): the threshold is 1.5 x the median (4 ms) = 6 ms.
        let tasks = [running(2, 7, false), running(3, 5, false)];
        assert_eq!(policy.tasks_to_copy(4, &finished, &tasks), vec![2]);
        // A task that has a copy gets no second one.
        assert!(
            policy
                .tasks_to_copy(4, &finished, &[running(2, 70, true)])
                .is_empty()
        );
    }

    #[test]
    fn no_copy_before_the_quantile_or_under_the_minimum() {
        let policy = Speculation::default();
        // 3 of 4 must have finished (0.75).
        assert!(
            policy
                .tasks_to_copy(4, &[ms(1), ms(1)], &[running(3, 500, false)])
                .is_empty()
        );
        // 3 finished in 1 ms, but Spark's minimum of 100 ms holds.
        let finished = [ms(1), ms(1), ms(1)];
        assert!(
            policy
                .tasks_to_copy(4, &finished, &[running(3, 99, false)])
                .is_empty()
        );
        assert_eq!(
            policy.tasks_to_copy(4, &finished, &[running(3, 101, false)]),
            vec![3]
        );
    }

    #[test]
    fn settings_come_from_the_environment_and_bad_ones_keep_their_defaults() {
        assert_eq!(
            Speculation::from_settings(None, Some("0.5"), None, None),
            None
        );
        assert_eq!(
            Speculation::from_settings(Some("0"), None, None, None),
            None
        );
        assert_eq!(
            Speculation::from_settings(Some("1"), Some("0.5"), Some("2"), Some("3")),
            Some(Speculation {
                quantile: 0.5,
                multiplier: 2.0,
                min_runtime: ms(3),
            })
        );
        assert_eq!(
            Speculation::from_settings(Some("on"), Some("2"), Some("0.5"), Some("x")),
            Some(Speculation::default())
        );
    }
}
