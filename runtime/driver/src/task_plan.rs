//! What a task carries and where it would rather run, decided from what the driver knows of
//! where data is: which executors cache which partitions, and where each shuffle's map outputs
//! are. Pure functions over that knowledge, so that every case is a unit test.
//!
//! A task is a [`Chain`] (a source and the narrow steps after it) and an action. An executor
//! that caches a step of the chain gets no source: it resumes from its cache, and answers
//! `CacheMiss` if the block went away, after which the task is sent again with its source. A
//! chain that reads a shuffle carries where the shuffle's map outputs are.

use crate::locality::Preferences;
use tessera_plan::{Chain, MapOutputLocation, RddId, ShuffleId, Step, TaskSource};

/// Where data is, as the driver knows it when it plans a task.
pub struct DataLocations<'a> {
    /// The executors caching partition `.1` of RDD `.0`.
    pub cached: &'a dyn Fn(RddId, u32) -> Vec<String>,
    /// Where every map output of a shuffle is, grouped by executor; `None` while one is missing.
    pub map_outputs: &'a dyn Fn(ShuffleId) -> Option<Vec<MapOutputLocation>>,
    /// The executor holding part of partition `.1` of RDD `.0`, adopted from a lost executor
    /// that was computing it.
    pub partial: &'a dyn Fn(RddId, u32) -> Option<String>,
}

/// Where the task of `chain` would rather run: on an executor caching the partition of its last
/// cached step (for a partitionwise union, of one of the chains it concatenates); failing that,
/// on the executor that holds part of its first cached step's partition, which it carries on
/// from there; and on this session's host when it reads files there.
pub fn preferences(chain: &Chain, known: &DataLocations, session_host: &str) -> Preferences {
    let mut executors = caching_executors(&chain.steps, chain.source.as_ref(), known);
    if executors.is_empty() {
        let first = first_cached(&chain.steps);
        executors.extend(first.and_then(|step| (known.partial)(step.rdd, step.partition)));
    }
    Preferences {
        executors,
        hosts: if chain.source.as_ref().is_some_and(reads_files) {
            vec![session_host.to_string()]
        } else {
            Vec::new()
        },
    }
}

/// The first step of `steps` that caches its partition: the one whose task notes how far into
/// its source it got, so the only one a lost executor leaves part of to carry on from.
pub fn first_cached(steps: &[Step]) -> Option<&Step> {
    steps.iter().find(|step| step.persist.is_some())
}

/// The chain to send `executor`: without its source when the executor caches a step of it
/// (unless `ship_source`, after a cache miss), with the sources of the concatenated chains it
/// caches left out, and with the map outputs of every shuffle it reads located. The error is
/// the first shuffle with a map output missing: it must be computed before the task can run.
pub fn chain_for(
    chain: &Chain,
    executor: &str,
    ship_source: bool,
    known: &DataLocations,
) -> Result<Chain, ShuffleId> {
    let cached_here = |steps: &[Step]| {
        !ship_source
            && caching_executors(steps, None, known)
                .iter()
                .any(|e| e == executor)
    };
    if cached_here(&chain.steps) {
        return Ok(Chain {
            source: None,
            steps: chain.steps.clone(),
        });
    }
    let mut source = chain.source.clone();
    if let Some(source) = &mut source {
        if !ship_source {
            leave_out_cached_chains(source, &|steps| cached_here(steps));
        }
        locate_map_outputs(source, known)?;
    }
    Ok(Chain {
        source,
        steps: chain.steps.clone(),
    })
}

/// Executors holding the partition of the last cached step of `steps`; failing that, those
/// holding a cached step of one of the chains a partitionwise union `source` concatenates.
fn caching_executors(
    steps: &[Step],
    source: Option<&TaskSource>,
    known: &DataLocations,
) -> Vec<String> {
    let cached = steps
        .iter()
        .rev()
        .filter(|step| step.persist.is_some())
        .map(|step| (known.cached)(step.rdd, step.partition))
        .find(|locations| !locations.is_empty());
    match (cached, source) {
        (Some(locations), _) => locations,
        (None, Some(TaskSource::Concat(chains))) => chains
            .iter()
            .map(|c| caching_executors(&c.steps, c.source.as_ref(), known))
            .find(|locations| !locations.is_empty())
            .unwrap_or_default(),
        (None, _) => Vec::new(),
    }
}

/// In a concatenation, drops the sources of the chains whose steps `cached_here` says the
/// executor caches: it resumes them from its cache.
fn leave_out_cached_chains(source: &mut TaskSource, cached_here: &dyn Fn(&[Step]) -> bool) {
    if let TaskSource::Concat(chains) = source {
        for chain in chains {
            if cached_here(&chain.steps) {
                chain.source = None;
            } else if let Some(source) = &mut chain.source {
                leave_out_cached_chains(source, cached_here);
            }
        }
    }
}

/// Fills in where the map outputs of every shuffle `source` reads are.
fn locate_map_outputs(source: &mut TaskSource, known: &DataLocations) -> Result<(), ShuffleId> {
    match source {
        TaskSource::ShuffleRead {
            shuffle, locations, ..
        } => {
            *locations = (known.map_outputs)(*shuffle).ok_or(*shuffle)?;
            Ok(())
        }
        TaskSource::Concat(chains) => chains
            .iter_mut()
            .filter_map(|chain| chain.source.as_mut())
            .try_for_each(|source| locate_map_outputs(source, known)),
        TaskSource::Records { .. }
        | TaskSource::TextSplit { .. }
        | TaskSource::SavedPartition { .. } => Ok(()),
    }
}

/// Whether the task reads files (text splits, checkpoints) that are on the session's host.
fn reads_files(source: &TaskSource) -> bool {
    match source {
        TaskSource::TextSplit { .. } | TaskSource::SavedPartition { .. } => true,
        TaskSource::Concat(chains) => chains
            .iter()
            .any(|chain| chain.source.as_ref().is_some_and(reads_files)),
        TaskSource::Records { .. } | TaskSource::ShuffleRead { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tessera_plan::{CodeRef, FileSplit, Operator, StorageLevel};

    fn op() -> Operator<CodeRef> {
        Operator {
            entry: CodeRef {
                library: "lib".into(),
                offset: 0,
            },
            env_decoder: None,
            captures: Vec::new(),
            params: Vec::new(),
        }
    }

    fn step(rdd: RddId, persist: bool) -> Step {
        Step {
            rdd,
            partition: 0,
            op: None,
            persist: persist.then_some(StorageLevel::MemoryOnly),
            element_type: "u64".into(),
        }
    }

    fn text(path: &str) -> TaskSource {
        TaskSource::TextSplit {
            split: FileSplit {
                path: path.into(),
                start: 0,
                end: 10,
            },
            decoder: op(),
        }
    }

    fn shuffle_read(shuffle: ShuffleId) -> TaskSource {
        TaskSource::ShuffleRead {
            shuffle,
            partition: 0,
            decoder: op(),
            locations: Vec::new(),
        }
    }

    /// Plain knowledge: cached blocks, complete shuffles, and parts of partitions.
    struct Known {
        cached: HashMap<RddId, Vec<String>>,
        shuffles: HashMap<ShuffleId, Vec<MapOutputLocation>>,
        partial: HashMap<RddId, String>,
    }

    impl Known {
        fn new(cached: &[(RddId, &str)], shuffles: &[ShuffleId]) -> Known {
            let mut by_rdd: HashMap<RddId, Vec<String>> = HashMap::new();
            for (rdd, executor) in cached {
                by_rdd.entry(*rdd).or_default().push(executor.to_string());
            }
            Known {
                cached: by_rdd,
                shuffles: shuffles
                    .iter()
                    .map(|s| {
                        let here = MapOutputLocation {
                            executor_id: "m".into(),
                            address: "127.0.0.1:1".into(),
                            map_partitions: vec![0],
                            from_agent: false,
                        };
                        (*s, vec![here])
                    })
                    .collect(),
                partial: HashMap::new(),
            }
        }

        fn with<R>(&self, f: impl FnOnce(&DataLocations) -> R) -> R {
            let cached = |rdd, _| self.cached.get(&rdd).cloned().unwrap_or_default();
            let map_outputs = |s| self.shuffles.get(&s).cloned();
            let partial = |rdd, _| self.partial.get(&rdd).cloned();
            f(&DataLocations {
                cached: &cached,
                map_outputs: &map_outputs,
                partial: &partial,
            })
        }
    }

    #[test]
    fn a_task_would_rather_carry_on_where_part_of_its_partition_was_adopted() {
        let chain = Chain {
            source: Some(text("/data")),
            steps: vec![step(1, false), step(2, true), step(3, true)],
        };
        let mut known = Known::new(&[], &[]);
        known.partial.insert(2, "b".into());
        known.with(|k| {
            let prefs = preferences(&chain, k, "h1");
            assert_eq!(prefs.executors, ["b"]);
            assert_eq!(prefs.hosts, ["h1"]);
            // It carries on from its source, which it gets.
            assert!(chain_for(&chain, "b", false, k).unwrap().source.is_some());
        });
        // A whole cached partition comes first.
        let mut known = Known::new(&[(3, "a")], &[]);
        known.partial.insert(2, "b".into());
        known.with(|k| assert_eq!(preferences(&chain, k, "h1").executors, ["a"]));
        // Part of a later cached step is not carried on (only the first notes where it got).
        let mut known = Known::new(&[], &[]);
        known.partial.insert(3, "b".into());
        known.with(|k| assert!(preferences(&chain, k, "h1").executors.is_empty()));
    }

    #[test]
    fn an_executor_caching_a_step_gets_no_source_unless_it_missed() {
        let chain = Chain {
            source: Some(text("/data")),
            steps: vec![step(1, false), step(2, true), step(3, false)],
        };
        let known = Known::new(&[(2, "a")], &[]);
        known.with(|k| {
            assert!(chain_for(&chain, "a", false, k).unwrap().source.is_none());
            assert!(chain_for(&chain, "b", false, k).unwrap().source.is_some());
            // After a cache miss the source goes even to the executor the block map names.
            assert!(chain_for(&chain, "a", true, k).unwrap().source.is_some());
            let prefs = preferences(&chain, k, "h1");
            assert_eq!(prefs.executors, ["a"]);
            assert_eq!(prefs.hosts, ["h1"]);
        });
    }

    #[test]
    fn the_last_cached_step_decides_where_a_task_would_rather_run() {
        let chain = Chain {
            source: Some(shuffle_read(9)),
            steps: vec![step(1, true), step(2, true)],
        };
        let known = Known::new(&[(1, "a"), (2, "b")], &[9]);
        known.with(|k| {
            let prefs = preferences(&chain, k, "h1");
            assert_eq!(prefs.executors, ["b"]);
            // Shuffle output is fetched from wherever it is: no host is nearer.
            assert!(prefs.hosts.is_empty());
        });
    }

    #[test]
    fn a_shuffle_read_carries_its_map_outputs_or_names_the_missing_shuffle() {
        let reads = |shuffle| Chain {
            source: Some(shuffle_read(shuffle)),
            steps: vec![step(1, false)],
        };
        let known = Known::new(&[], &[9]);
        known.with(|k| {
            let sent = chain_for(&reads(9), "a", false, k).unwrap();
            let Some(TaskSource::ShuffleRead { locations, .. }) = sent.source else {
                panic!("a shuffle read");
            };
            assert_eq!(locations[0].executor_id, "m");
            assert_eq!(chain_for(&reads(7), "a", false, k).unwrap_err(), 7);
        });
    }

    #[test]
    fn a_union_leaves_out_the_sources_of_chains_the_executor_caches() {
        let chain = Chain {
            source: Some(TaskSource::Concat(vec![
                Chain {
                    source: Some(text("/left")),
                    steps: vec![step(1, true)],
                },
                Chain {
                    source: Some(shuffle_read(7)),
                    steps: vec![step(2, false)],
                },
            ])),
            steps: vec![step(3, false)],
        };
        // The left side is cached on `a`; the right side's shuffle is complete.
        let known = Known::new(&[(1, "a")], &[7]);
        known.with(|k| {
            let sent = chain_for(&chain, "a", false, k).unwrap();
            let Some(TaskSource::Concat(chains)) = &sent.source else {
                panic!("a concatenation");
            };
            assert!(chains[0].source.is_none());
            assert!(matches!(
                &chains[1].source,
                Some(TaskSource::ShuffleRead { locations, .. }) if !locations.is_empty()
            ));
            // Elsewhere both sides are shipped; the union prefers `a` and the files' host.
            let elsewhere = chain_for(&chain, "b", false, k).unwrap();
            let Some(TaskSource::Concat(chains)) = &elsewhere.source else {
                panic!("a concatenation");
            };
            assert!(chains.iter().all(|c| c.source.is_some()));
            let prefs = preferences(&chain, k, "h1");
            assert_eq!(prefs.executors, ["a"]);
            assert_eq!(prefs.hosts, ["h1"]);
        });
        // A missing shuffle below a union is found too.
        Known::new(&[], &[]).with(|k| assert_eq!(chain_for(&chain, "b", false, k).unwrap_err(), 7));
    }
}
