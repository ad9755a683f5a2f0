//! Tasks bound for executors held while a round of a stage places them: each executor's sender
//! then sends the round's tasks for it in one call (`remote_executor.rs`), the next wave with the
//! first, instead of the first alone as soon as it is placed.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many rounds are placing their tasks now, and a wake-up for the senders waiting for none
/// to be.
#[derive(Default)]
pub struct SendHold {
    rounds: AtomicUsize,
    released: tokio::sync::Notify,
}

/// A round placing its tasks: the senders hold them until it is dropped. Placing takes no
/// waiting (a task that must wait for a slot is sent on its own later), so it is held for
/// microseconds.
pub struct Held<'a>(&'a SendHold);

impl SendHold {
    /// Holds the senders until the returned guard is dropped.
    pub fn hold(&self) -> Held<'_> {
        self.rounds.fetch_add(1, Ordering::SeqCst);
        Held(self)
    }

    /// Returns once no round is placing its tasks (at once, if none is).
    pub async fn released(&self) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Enabled before the look, so that a release in between is not missed.
            released.as_mut().enable();
            if self.rounds.load(Ordering::SeqCst) == 0 {
                return;
            }
            released.await;
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.0.rounds.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.released.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn senders_wait_while_any_round_places_its_tasks() {
        let hold = Arc::new(SendHold::default());
        // Nothing held: no wait.
        tokio::time::timeout(Duration::from_secs(5), hold.released())
            .await
            .expect("released at once");
        let first = hold.hold();
        let second = hold.hold();
        let waiter = tokio::spawn({
            let hold = hold.clone();
            async move { hold.released().await }
        });
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "released while a round still holds");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("released once every round let go")
            .unwrap();
    }
}
