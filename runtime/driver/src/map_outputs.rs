//! The map output tracker: for every shuffle, which executor holds the output of each map
//! partition. Reducers are told where to fetch from; outputs lost with an executor (or that a
//! reducer failed to fetch) are forgotten, and the map stage runs again for just those.
//!
//! An executor whose agent serves its sandbox files keeps a copy of each output there: when
//! it is lost, its outputs are read through the agent instead ([`MapOutputTracker::keep_served`]),
//! as Spark's external shuffle service keeps them, and are forgotten only if that read fails.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tessera_plan::{MapOutputLocation, ShuffleId};

/// A map output a task could not fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchFailure {
    /// The executor that held it.
    pub executor: String,
    /// Whether it was read through the executor's agent (its copies).
    pub through_agent: bool,
    pub message: String,
}

/// Who holds one map output.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Holder {
    executor_id: String,
    /// Once the executor is gone: the address of the agent's sandbox files service that serves
    /// its copy.
    served_by: Option<String>,
}

#[derive(Default)]
pub struct MapOutputTracker {
    /// shuffle -> who holds each map partition's output.
    outputs: Mutex<HashMap<ShuffleId, Vec<Option<Holder>>>>,
    /// Held while a shuffle's missing map outputs are computed, so that tasks that find them
    /// missing at once compute them once.
    computing: Mutex<HashMap<ShuffleId, Arc<tokio::sync::Mutex<()>>>>,
}

/// Where a reducer read the map outputs it could not fetch.
pub enum ReadFrom {
    /// From the executor that wrote them; `agent_files` is where its agent serves their
    /// copies, if it does.
    Executor { agent_files: Option<String> },
    /// Through the agent that serves the executor's copies.
    Agent,
}

/// The copies of one shuffle's map outputs that an agent serves for an executor that is gone.
#[derive(Debug, PartialEq)]
pub struct ServedOutputs {
    pub agent_files: String,
    pub executor_id: String,
    pub map_partitions: Vec<u32>,
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
        statuses[map_partition as usize] = Some(Holder {
            executor_id: executor_id.to_string(),
            served_by: None,
        });
    }

    /// Where every map output of `shuffle` is, grouped by executor (`address_of` gives a live
    /// executor's address); `None` if some output is missing or its executor is gone and not
    /// served.
    pub fn locations(
        &self,
        shuffle: ShuffleId,
        address_of: impl Fn(&str) -> Option<String>,
    ) -> Option<Vec<MapOutputLocation>> {
        let outputs = self.outputs.lock();
        let mut by_holder: BTreeMap<&Holder, Vec<u32>> = BTreeMap::new();
        for (map_partition, status) in outputs.get(&shuffle)?.iter().enumerate() {
            by_holder
                .entry(status.as_ref()?)
                .or_default()
                .push(map_partition as u32);
        }
        by_holder
            .into_iter()
            .map(|(holder, map_partitions)| {
                let address = match &holder.served_by {
                    Some(agent_files) => agent_files.clone(),
                    None => address_of(&holder.executor_id)?,
                };
                Some(MapOutputLocation {
                    executor_id: holder.executor_id.clone(),
                    address,
                    map_partitions,
                    from_agent: holder.served_by.is_some(),
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

    /// Forgets every map output of `shuffle`: it was dropped. Returns the copies agents serve
    /// of it, for their files to be removed too.
    pub fn forget_shuffle(&self, shuffle: ShuffleId) -> Vec<ServedOutputs> {
        let Some(statuses) = self.outputs.lock().remove(&shuffle) else {
            return Vec::new();
        };
        let mut served: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
        for (map_partition, holder) in statuses.into_iter().enumerate() {
            if let Some(Holder {
                executor_id,
                served_by: Some(agent_files),
            }) = holder
            {
                served
                    .entry((agent_files, executor_id))
                    .or_default()
                    .push(map_partition as u32);
            }
        }
        served
            .into_iter()
            .map(
                |((agent_files, executor_id), map_partitions)| ServedOutputs {
                    agent_files,
                    executor_id,
                    map_partitions,
                },
            )
            .collect()
    }

    /// Whether the live executor `executor_id` holds any map output.
    pub fn holds_any(&self, executor_id: &str) -> bool {
        self.outputs
            .lock()
            .values()
            .flatten()
            .flatten()
            .any(|holder| holder.executor_id == executor_id && holder.served_by.is_none())
    }

    /// The executor `executor_id` is gone, and the agent at `agent_files` serves the copies of
    /// its outputs: reducers read them there from now on.
    pub fn keep_served(&self, executor_id: &str, agent_files: &str) {
        let mut outputs = self.outputs.lock();
        for holder in outputs.values_mut().flatten().flatten() {
            if holder.executor_id == executor_id && holder.served_by.is_none() {
                holder.served_by = Some(agent_files.to_string());
            }
        }
    }

    /// Forgets the outputs `executor_id` held, or its agent serves.
    pub fn forget_executor(&self, executor_id: &str) {
        self.forget(None, |holder| holder.executor_id == executor_id);
    }

    /// A reducer could not fetch `shuffle`'s outputs of `executor_id`. Read from the executor,
    /// they are read through its agent from now on if it serves them (the executor may be gone
    /// before the driver knows), else they are lost; read through the agent, they are lost. A
    /// failure of a way the tracker no longer points at (a task planned before the change)
    /// changes nothing.
    pub fn fetch_failed(&self, executor_id: &str, shuffle: ShuffleId, read_from: ReadFrom) {
        let mut outputs = self.outputs.lock();
        let Some(statuses) = outputs.get_mut(&shuffle) else {
            return;
        };
        for status in statuses.iter_mut() {
            let Some(holder) = status.as_mut().filter(|h| h.executor_id == executor_id) else {
                continue;
            };
            match (&holder.served_by, &read_from) {
                (
                    None,
                    ReadFrom::Executor {
                        agent_files: Some(agent_files),
                    },
                ) => {
                    holder.served_by = Some(agent_files.clone());
                }
                (None, ReadFrom::Executor { agent_files: None }) | (Some(_), ReadFrom::Agent) => {
                    *status = None;
                }
                (Some(_), ReadFrom::Executor { .. }) | (None, ReadFrom::Agent) => {}
            }
        }
    }

    /// Forgets the outputs of `shuffle` held by executors not in `live`, but those their agents
    /// serve.
    pub fn forget_all_but(&self, live: &[String], shuffle: ShuffleId) {
        self.forget(Some(shuffle), |holder| {
            holder.served_by.is_none() && !live.contains(&holder.executor_id)
        });
    }

    fn forget(&self, shuffle: Option<ShuffleId>, lost: impl Fn(&Holder) -> bool) {
        let mut outputs = self.outputs.lock();
        for (id, statuses) in outputs.iter_mut() {
            if shuffle.is_some_and(|s| s != *id) {
                continue;
            }
            for status in statuses.iter_mut() {
                if status.as_ref().is_some_and(&lost) {
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

        tracker.forget_executor("a");
        assert_eq!(tracker.missing(7, 3), vec![0, 2]);
        assert!(tracker.locations(7, |id| Some(id.to_string())).is_none());
    }

    #[test]
    fn a_lost_executors_served_outputs_are_read_through_its_agent_until_that_fails() {
        let tracker = MapOutputTracker::default();
        tracker.register(7, 0, "a");
        tracker.register(7, 1, "b");
        tracker.register(8, 0, "a");
        tracker.keep_served("a", "agent-1:9");
        assert!(!tracker.holds_any("a"));
        assert!(tracker.missing(7, 2).is_empty());
        // Only live executors have an address of their own.
        let live = |id: &str| (id == "b").then(|| "b:1".to_string());
        let locations = tracker.locations(7, live).unwrap();
        assert_eq!(locations.len(), 2);
        let a = locations.iter().find(|l| l.executor_id == "a").unwrap();
        assert_eq!((a.address.as_str(), a.from_agent), ("agent-1:9", true));
        assert_eq!(a.map_partitions, vec![0]);
        let b = locations.iter().find(|l| l.executor_id == "b").unwrap();
        assert_eq!((b.address.as_str(), b.from_agent), ("b:1", false));

        // A stage that starts keeps what agents serve, and forgets what died unserved.
        tracker.forget_all_but(&[], 7);
        assert_eq!(tracker.missing(7, 2), vec![1]);

        // A failed read through the agent forgets the copies of that shuffle only.
        tracker.fetch_failed("a", 7, ReadFrom::Agent);
        assert_eq!(tracker.missing(7, 2), vec![0, 1]);
        assert!(tracker.missing(8, 1).is_empty());

        // Dropping a shuffle names the served copies whose files go.
        assert_eq!(
            tracker.forget_shuffle(8),
            vec![ServedOutputs {
                agent_files: "agent-1:9".into(),
                executor_id: "a".into(),
                map_partitions: vec![0],
            }]
        );
        assert!(tracker.forget_shuffle(8).is_empty());
    }

    #[test]
    fn a_failed_fetch_from_an_executor_turns_to_its_agent_then_forgets() {
        let tracker = MapOutputTracker::default();
        tracker.register(3, 0, "a");
        tracker.register(3, 1, "b");
        tracker.register(4, 0, "a");
        // The executor is gone before the driver knows: its agent serves the copies.
        let agent = || ReadFrom::Executor {
            agent_files: Some("agent-1:9".into()),
        };
        tracker.fetch_failed("a", 3, agent());
        let locations = tracker.locations(3, |id| Some(format!("{id}:1"))).unwrap();
        assert!(
            locations
                .iter()
                .any(|l| l.executor_id == "a" && l.from_agent)
        );
        // Other shuffles of the executor are read from it until they fail too.
        let other = tracker.locations(4, |id| Some(format!("{id}:1"))).unwrap();
        assert!(!other[0].from_agent);
        // A task planned before read from the executor, and failed: nothing changes.
        tracker.fetch_failed("a", 3, agent());
        assert!(tracker.missing(3, 2).is_empty());
        // The agent failed as well: the outputs are lost.
        tracker.fetch_failed("a", 3, ReadFrom::Agent);
        assert_eq!(tracker.missing(3, 2), vec![0]);
        // With no agent serving its copies, a failed fetch loses them at once.
        tracker.fetch_failed("b", 3, ReadFrom::Executor { agent_files: None });
        assert_eq!(tracker.missing(3, 2), vec![0, 1]);
    }

    #[test]
    fn an_output_on_an_executor_without_an_address_is_not_located() {
        let tracker = MapOutputTracker::default();
        tracker.register(1, 0, "gone");
        assert!(tracker.locations(1, |_| None).is_none());
    }
}
