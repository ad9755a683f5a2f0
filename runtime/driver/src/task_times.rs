//! Where a task's time went besides running it, as Spark's task metrics say it: when its attempt
//! was sent, and its scheduler delay, the time from then to its result less what its executor
//! spent waiting for a core and running it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_plan::TaskMetrics;

/// When a task's attempt was sent, on the driver's clocks.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    /// The wall clock, for the metrics log.
    pub at: SystemTime,
    /// The monotonic clock, for durations.
    pub instant: Instant,
}

impl Sent {
    /// Now.
    pub fn now() -> Sent {
        Sent {
            at: SystemTime::now(),
            instant: Instant::now(),
        }
    }

    /// The scheduler delay of a task whose result, with `metrics`, has just come back.
    pub fn scheduler_delay(&self, metrics: &TaskMetrics) -> Duration {
        scheduler_delay(self.instant.elapsed(), metrics)
    }
}

/// The part of `round_trip`, from sending a task to having its result, that its executor did
/// not spend waiting for a core or running it: the task's trip and its result's (encoding, the
/// network, the runtimes on both sides) and the executor's preparations (fetching the task's
/// libraries and its shuffle input). The clocks of the driver and of the executor are never
/// compared, so that this holds across hosts.
fn scheduler_delay(round_trip: Duration, metrics: &TaskMetrics) -> Duration {
    let on_executor =
        Duration::from_micros(metrics.run_micros.saturating_add(metrics.slot_wait_micros));
    round_trip.saturating_sub(on_executor)
}

/// `at` in microseconds since the Unix epoch (0 before it).
pub fn unix_micros(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plan::PartitionOrigin;

    fn ran(run_micros: u64, slot_wait_micros: u64) -> TaskMetrics {
        TaskMetrics {
            executor_id: "e".into(),
            executor_pid: 1,
            origin: PartitionOrigin::Computed,
            records: 0,
            run_micros,
            slot_wait_micros,
            stored: Vec::new(),
            accumulator_updates: Vec::new(),
            evicted: Vec::new(),
            not_cached: Vec::new(),
            shuffle_read_bytes: 0,
            shuffle_write_bytes: 0,
            spilled_bytes: 0,
            threads: 1,
        }
    }

    #[test]
    fn the_delay_is_the_round_trip_less_the_executors_wait_and_run() {
        let round_trip = Duration::from_micros(3_500);
        assert_eq!(
            scheduler_delay(round_trip, &ran(2_800, 500)),
            Duration::from_micros(200)
        );
        assert_eq!(
            scheduler_delay(round_trip, &ran(2_800, 0)),
            Duration::from_micros(700)
        );
    }

    #[test]
    fn an_executor_reporting_more_than_the_round_trip_gives_no_delay_not_an_underflow() {
        // Its clock runs at another rate, or it rounded up: nothing is left to the trip.
        assert_eq!(
            scheduler_delay(Duration::from_micros(100), &ran(150, 10)),
            Duration::ZERO
        );
    }
}
