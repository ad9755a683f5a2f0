//! Broadcast variables and accumulators: values a session shares with its tasks. A broadcast
//! value is kept here (encoded by the cell) and fetched by each executor once; accumulators
//! collect the partial values of tasks that succeeded, which the cell merges when it reads them.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct SharedValues {
    next_id: AtomicU64,
    broadcasts: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
    accumulators: Mutex<HashMap<u64, Vec<Vec<u8>>>>,
}

impl SharedValues {
    pub fn broadcast(&self, value: Vec<u8>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.broadcasts.lock().insert(id, Arc::new(value));
        id
    }

    pub fn broadcast_value(&self, id: u64) -> Option<Arc<Vec<u8>>> {
        self.broadcasts.lock().get(&id).cloned()
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
