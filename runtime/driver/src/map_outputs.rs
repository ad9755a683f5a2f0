//! The map output tracker: for every shuffle, which executor holds the output of each map
//! partition. Reducers are told where to fetch from; outputs lost with an executor (or that a
//! reducer failed to fetch) are forgotten, and the map stage runs again for just those.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tessera_plan::{MapOutputLocation, ShuffleId};

#[derive(Default)]
pub struct MapOutputTracker {
    /// shuffle -> the executor holding each map partition's output.
    outputs: Mutex<HashMap<ShuffleId, Vec<Option<String>>>>,
    /// Held while a shuffle's missing map outputs are computed, so that tasks that find them
    /// missing at once compute them once.
    computing: Mutex<HashMap<ShuffleId, Arc<tokio::sync::Mutex<()>>>>,
}

impl MapOutputTracker {
    pub fn computing_lock(&self, shuffle: ShuffleId) -> Arc<tokio::sync::Mutex<()>> {
        self.computing.lock().entry(shuffle).or_default().clone()
    }

    /// Map partitions of `shuffle` (of `map_partitions`) whose output no executor holds.
    pub fn missing(&self, shuffle: ShuffleId, map_partitions: u32) -> Vec<u32> {
        let mut outputs = self.outputs.lock();
        let statuses = outputs.entry(shuffle).or_default();
        statuses.resize(map_partitions as usize, None);
        (0..map_partitions)
            .filter(|&m| statuses[m as usize].is_none())
            .collect()
    }

    pub fn register(&self, shuffle: ShuffleId, map_partition: u32, executor_id: &str) {
        let mut outputs = self.outputs.lock();
        let statuses = outputs.entry(shuffle).or_default();
        if statuses.len() <= map_partition as usize {
            statuses.resize(map_partition as usize + 1, None);
        }
        statuses[map_partition as usize] = Some(executor_id.to_string());
    }

    /// Where every map output of `shuffle` is, grouped by executor (`address_of` gives an
    /// executor's address); `None` if some output is missing or its executor is gone.
    pub fn locations(
        &self,
        shuffle: ShuffleId,
        address_of: impl Fn(&str) -> Option<String>,
    ) -> Option<Vec<MapOutputLocation>> {
        let outputs = self.outputs.lock();
        let mut by_executor: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for (map_partition, status) in outputs.get(&shuffle)?.iter().enumerate() {
            by_executor
                .entry(status.as_deref()?)
                .or_default()
                .push(map_partition as u32);
        }
        by_executor
            .into_iter()
            .map(|(executor_id, map_partitions)| {
                Some(MapOutputLocation {
                    executor_id: executor_id.to_string(),
                    address: address_of(executor_id)?,
                    map_partitions,
                })
            })
            .collect()
    }

    /// Whether some executor holds a map output of `shuffle`.
    pub fn holds_shuffle(&self, shuffle: ShuffleId) -> bool {
        self.outputs
            .lock()
            .get(&shuffle)
            .is_some_and(|statuses| statuses.iter().any(Option::is_some))
    }

    /// Forgets every map output of `shuffle`: it was dropped.
    pub fn forget_shuffle(&self, shuffle: ShuffleId) {
        self.outputs.lock().remove(&shuffle);
    }

    /// Whether `executor_id` holds any map output.
    pub fn holds_any(&self, executor_id: &str) -> bool {
        self.outputs
            .lock()
            .values()
            .flatten()
            .any(|holder| holder.as_deref() == Some(executor_id))
    }

    /// Forgets the outputs `executor_id` held: of one shuffle, or of all.
    pub fn forget_executor(&self, executor_id: &str, shuffle: Option<ShuffleId>) {
        self.forget(shuffle, |holder| holder == executor_id);
    }

    /// Forgets the outputs of `shuffle` held by executors not in `live`.
    pub fn forget_all_but(&self, live: &[String], shuffle: ShuffleId) {
        self.forget(Some(shuffle), |holder| !live.iter().any(|l| l == holder));
    }

    fn forget(&self, shuffle: Option<ShuffleId>, lost: impl Fn(&str) -> bool) {
        let mut outputs = self.outputs.lock();
        for (id, statuses) in outputs.iter_mut() {
            if shuffle.is_some_and(|s| s != *id) {
                continue;
            }
            for status in statuses.iter_mut() {
                if status.as_deref().is_some_and(&lost) {
                    *status = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_lost_with_an_executor_are_missing_again() {
        let tracker = MapOutputTracker::default();
        assert_eq!(tracker.missing(7, 3), vec![0, 1, 2]);
        tracker.register(7, 0, "a");
        tracker.register(7, 1, "b");
        tracker.register(7, 2, "a");
        assert!(tracker.missing(7, 3).is_empty());
        let locations = tracker
            .locations(7, |id| Some(format!("http://{id}")))
            .unwrap();
        assert_eq!(locations.len(), 2);
        assert_eq!(locations[0].executor_id, "a");
        assert_eq!(locations[0].map_partitions, vec![0, 2]);

        tracker.forget_executor("a", None);
        assert_eq!(tracker.missing(7, 3), vec![0, 2]);
        assert!(tracker.locations(7, |id| Some(id.to_string())).is_none());
    }

    #[test]
    fn an_output_on_an_executor_without_an_address_is_not_located() {
        let tracker = MapOutputTracker::default();
        tracker.register(1, 0, "gone");
        assert!(tracker.locations(1, |_| None).is_none());
    }
}
