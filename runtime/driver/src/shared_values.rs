//! Broadcast variables and accumulators: values a session shares with its tasks. A broadcast
//! value is kept here (encoded by the cell, or a join side the driver collected) and fetched
//! by each executor once; accumulators collect the partial values of tasks that succeeded,
//! which the cell merges when it reads them.
//!
//! A broadcast join's side is released when the cleaner finds that no live DataFrame reads it
//! (Spark's ContextCleaner unbroadcasts the same way). Its id stays known as released, so that
//! a job that reads it after all collects it again first (`lazy_inputs::restore_broadcasts`).
//! A cell's `Context::broadcast` value is kept for the session's life: which closures captured
//! it is known to the cell only.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct SharedValues {
    next_id: AtomicU64,
    broadcasts: Mutex<HashMap<u64, BroadcastValue>>,
    accumulators: Mutex<HashMap<u64, Vec<Vec<u8>>>>,
}

/// One broadcast variable.
struct BroadcastValue {
    /// What it holds, for `:storage`.
    about: String,
    /// Its encoded value; `None` once released.
    bytes: Option<Arc<Vec<u8>>>,
}

/// A broadcast variable the driver holds, as `:storage` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldBroadcast {
    /// The broadcast variable's id.
    pub id: u64,
    /// What it holds: a cell's value, or the small side of a join.
    pub about: String,
    /// The size of its encoded value (which each executor that used it holds too).
    pub bytes: u64,
}

impl SharedValues {
    /// Keeps `value`, described by `about`, as a new broadcast variable.
    pub fn broadcast(&self, value: Vec<u8>, about: String) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = Some(Arc::new(value));
        self.broadcasts
            .lock()
            .insert(id, BroadcastValue { about, bytes });
        id
    }

    /// The value of broadcast `id`; `None` if it is unknown or released.
    pub fn broadcast_value(&self, id: u64) -> Option<Arc<Vec<u8>>> {
        self.broadcasts.lock().get(&id)?.bytes.clone()
    }

    /// Lets the value of broadcast `id` go; returns whether it held one.
    pub fn release(&self, id: u64) -> bool {
        let mut broadcasts = self.broadcasts.lock();
        broadcasts
            .get_mut(&id)
            .is_some_and(|b| b.bytes.take().is_some())
    }

    /// Whether broadcast `id` was released (and not restored since).
    pub fn is_released(&self, id: u64) -> bool {
        self.broadcasts
            .lock()
            .get(&id)
            .is_some_and(|b| b.bytes.is_none())
    }

    /// Whether any broadcast is released: only then may a job need one collected again.
    pub fn any_released(&self) -> bool {
        self.broadcasts.lock().values().any(|b| b.bytes.is_none())
    }

    /// Gives released broadcast `id` its value again.
    pub fn restore(&self, id: u64, value: Vec<u8>) {
        if let Some(broadcast) = self.broadcasts.lock().get_mut(&id) {
            broadcast.bytes = Some(Arc::new(value));
        }
    }

    /// The broadcasts whose values the driver holds, by id.
    pub fn held(&self) -> Vec<HeldBroadcast> {
        let mut held: Vec<HeldBroadcast> = self
            .broadcasts
            .lock()
            .iter()
            .filter_map(|(&id, b)| {
                Some(HeldBroadcast {
                    id,
                    about: b.about.clone(),
                    bytes: b.bytes.as_ref()?.len() as u64,
                })
            })
            .collect();
        held.sort_by_key(|b| b.id);
        held
    }

    pub fn accumulator(&self) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.accumulators.lock().insert(id, Vec::new());
        id
    }

    /// Adds partial values (id, encoded value); those of unknown accumulators are ignored.
    pub fn accumulate(&self, updates: impl IntoIterator<Item = (u64, Vec<u8>)>) {
        let mut accumulators = self.accumulators.lock();
        for (id, value) in updates {
            if let Some(partials) = accumulators.get_mut(&id) {
                partials.push(value);
            }
        }
    }

    pub fn partials(&self, id: u64) -> Option<Vec<Vec<u8>>> {
        self.accumulators.lock().get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_broadcast_is_not_served_until_restored() {
        let shared = SharedValues::default();
        let side = shared.broadcast(vec![1, 2, 3], "the small side of q".into());
        let other = shared.broadcast(vec![4], "a cell's value".into());
        assert!(!shared.any_released());
        assert!(shared.release(side));
        // Released once: there is nothing more to let go.
        assert!(!shared.release(side));
        assert!(shared.is_released(side) && shared.any_released());
        assert_eq!(shared.broadcast_value(side), None);
        assert_eq!(
            shared.held(),
            [HeldBroadcast {
                id: other,
                about: "a cell's value".into(),
                bytes: 1,
            }]
        );
        shared.restore(side, vec![1, 2, 3]);
        assert_eq!(
            shared.broadcast_value(side).as_deref(),
            Some(&vec![1, 2, 3])
        );
        assert!(!shared.any_released());
        // An id never given out is neither released nor restored.
        shared.restore(99, vec![9]);
        assert!(!shared.is_released(99) && shared.broadcast_value(99).is_none());
    }
}
