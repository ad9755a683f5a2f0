//! The executor's watch on its driver (Spark's executor heartbeats): once registered, it calls
//! its driver every [`interval`], and ends itself when the driver has not answered for its
//! driver timeout (`--driver-timeout-s`, `$TESSERA_DRIVER_TIMEOUT_S`; 600 s by default, as
//! long as a Spark executor keeps trying: `spark.executor.heartbeat.maxFailures`, 60, heartbeats
//! 10 s apart).
//!
//! Usually an executor ends because its session asks it to or its agent kills it (the
//! master has the agent shut down the executors of a session gone longer than its failover
//! timeout). But executors outlive their agent, and an agent that never comes back leaves its
//! executors with nobody to end them; once their session is gone too, nothing else would. A
//! driver that is only out of reach for a while (a restart of the network, a pause longer
//! than a heartbeat, a session suspended with Ctrl-Z for a few minutes) costs nothing: one answer
//! within the timeout resets it.

use std::time::{Duration, Instant};

use tessera_wire::driver::HeartbeatRequest;
use tessera_wire::driver::driver_client::DriverClient;
use tonic::transport::Channel;

/// The driver timeout by default: Spark's executors give up after 60 failed heartbeats 10 s
/// apart.
pub const DEFAULT_DRIVER_TIMEOUT: Duration = Duration::from_secs(600);

/// Between two heartbeats: Spark's 10 s, or a quarter of a shorter timeout, so that several
/// heartbeats fail before the executor gives up.
pub fn interval(timeout: Duration) -> Duration {
    Duration::from_secs(10).min(timeout / 4)
}

/// How long the driver has been silent, against the timeout.
#[derive(Clone, Copy, Debug)]
pub struct Silence {
    timeout: Duration,
    last_heard: Instant,
}

impl Silence {
    /// The driver, just heard at `now` (it answered the registration), may be silent `timeout`.
    pub fn new(timeout: Duration, now: Instant) -> Silence {
        Silence {
            timeout,
            last_heard: now,
        }
    }

    /// The driver answered at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }

    /// How long the driver has been silent at `now`, if that is past the timeout.
    pub fn too_long(&self, now: Instant) -> Option<Duration> {
        let silent = now.saturating_duration_since(self.last_heard);
        (silent > self.timeout).then_some(silent)
    }
}

/// Calls the driver every [`interval`] until it has been silent longer than `timeout`; returns
/// how long it was silent then. Each call waits at most an interval, so that a driver whose
/// host stopped answering (no refusal, no reset) is seen as silent as surely as one that is
/// gone.
pub async fn until_silent(
    driver: DriverClient<Channel>,
    executor_id: String,
    timeout: Duration,
) -> Duration {
    let every = interval(timeout);
    let mut silence = Silence::new(timeout, Instant::now());
    loop {
        tokio::time::sleep(every).await;
        let request = HeartbeatRequest {
            executor_id: executor_id.clone(),
        };
        let call = tokio::time::timeout(every, driver.clone().heartbeat(request)).await;
        match call {
            Ok(Ok(_)) => silence.heard(Instant::now()),
            Ok(Err(status)) => {
                tracing::debug!(error = %status, "the driver did not answer a heartbeat")
            }
            Err(_) => {
                tracing::debug!(wait = ?every, "the driver did not answer a heartbeat in time")
            }
        }
        if let Some(silent) = silence.too_long(Instant::now()) {
            return silent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_is_given_up_only_after_a_whole_timeout_of_silence() {
        let start = Instant::now();
        let s = Duration::from_secs;
        let mut silence = Silence::new(s(120), start);
        assert_eq!(
            silence.too_long(start + s(120)),
            None,
            "the timeout itself is within"
        );
        assert_eq!(silence.too_long(start + s(121)), Some(s(121)));
        // One answer resets it, and an answer seen late does not move it back.
        silence.heard(start + s(100));
        silence.heard(start + s(90));
        assert_eq!(silence.too_long(start + s(220)), None);
        assert_eq!(silence.too_long(start + s(221)), Some(s(121)));
    }

    #[test]
    fn heartbeats_come_several_times_within_a_timeout() {
        assert_eq!(interval(DEFAULT_DRIVER_TIMEOUT), Duration::from_secs(10));
        assert_eq!(
            interval(Duration::from_secs(30)),
            Duration::from_millis(7500)
        );
        assert_eq!(interval(Duration::from_secs(2)), Duration::from_millis(500));
    }
}
