//! The operators of a shuffle. Map side: writers, actions that split a partition into one
//! bucket per output partition (combining values of a key first where the operation allows).
//! Reduce side: mergers, transformations that combine, group or sort what the buckets hold.
//! When the input is already partitioned as wanted, a merger (or [`CombineLocally`]) runs as a
//! narrow transformation instead, and nothing is shuffled.
//!
//! Every one of them spills past its budget (`crate::spill`): writers encode records into
//! per-bucket frames as they come and write them to a spill file, bucket by bucket, when they
//! hold too much, then stream one map output (each bucket its spilled pieces, then what is in
//! memory); sorts write sorted runs and merge them; merges and groups write runs ordered by the
//! key's hash and merge them, combining equal keys.

use super::{Action, OpError, Transform, decode_params};
use crate::Data;
use crate::batch::{BatchOut, Stop};
use crate::combine_table::{CombineTable, Found};
use crate::hash::{hash_partition, key_hash};
use crate::partitioner::CustomPartitioner;
use crate::spill::{
    FrameBuilder, MERGED_BATCH_BYTES, SizeEstimate, SpillConfig, SpillFile, SpilledRuns, merge_runs,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Range;
use tessera_plan::Partitioner;

/// What every writer is opened with.
#[derive(Serialize, Deserialize)]
pub(crate) struct WriterParams {
    pub partitioner: Partitioner,
    /// The zero value of `fold_by_key` or `aggregate_by_key` (bincode), if any.
    pub zero: Vec<u8>,
}

/// Picks the output partition of a key.
pub(crate) trait Placement<K>: Sized + Send + 'static {
    fn new(partitioner: &Partitioner) -> Result<Self, OpError>;
    fn partitions(&self) -> usize;
    fn place(&self, key: &K) -> usize;
}

/// The hash partitioner.
pub(crate) struct ByHash(u32);
impl<K: Hash> Placement<K> for ByHash {
    fn new(partitioner: &Partitioner) -> Result<Self, OpError> {
        match partitioner {
            Partitioner::Hash { partitions } => Ok(ByHash(*partitions)),
            other => Err(OpError::Placement {
                writer: "hash",
                partitioner: format!("{other:?}"),
            }),
        }
    }
    fn partitions(&self) -> usize {
        self.0 as usize
    }
    fn place(&self, key: &K) -> usize {
        hash_partition(key, self.0) as usize
    }
}

/// A user-defined partitioner, rebuilt from its value in the plan.
pub(crate) struct ByCustom<P>(P, u32);
impl<K, P: CustomPartitioner<K>> Placement<K> for ByCustom<P> {
    fn new(partitioner: &Partitioner) -> Result<Self, OpError> {
        match partitioner {
            Partitioner::Custom {
                partitions, state, ..
            } => Ok(ByCustom(decode_params(state)?, *partitions)),
            other => Err(OpError::Placement {
                writer: "custom",
                partitioner: format!("{other:?}"),
            }),
        }
    }
    fn partitions(&self) -> usize {
        self.1 as usize
    }
    fn place(&self, key: &K) -> usize {
        let partition = self.0.partition(key);
        if partition >= self.1 {
            // Caught at the ABI boundary: the task fails with this message.
            panic!(
                "the custom partitioner {} placed a key in partition {partition}, but it has \
                 {} partitions; `partition` must return a value below `num_partitions()`",
                std::any::type_name::<P>(),
                self.1
            );
        }
        partition as usize
    }
}

/// The range partitioner: partition `i` holds the keys up to `bounds[i]` (reversed when
/// descending), the last one the rest.
pub(crate) struct ByRange<K> {
    bounds: Vec<K>,
    ascending: bool,
}
impl<K: Ord + DeserializeOwned + Send + 'static> Placement<K> for ByRange<K> {
    fn new(partitioner: &Partitioner) -> Result<Self, OpError> {
        match partitioner {
            Partitioner::Range {
                bounds, ascending, ..
            } => Ok(ByRange {
                bounds: decode_params(bounds)?,
                ascending: *ascending,
            }),
            other => Err(OpError::Placement {
                writer: "range",
                partitioner: format!("{other:?}"),
            }),
        }
    }
    fn partitions(&self) -> usize {
        self.bounds.len() + 1
    }
    fn place(&self, key: &K) -> usize {
        let below = self.bounds.partition_point(|bound| bound < key);
        if self.ascending {
            below
        } else {
            self.bounds.len() - below
        }
    }
}

/// The map side's buckets, encoded as records arrive: per bucket, closed record frames and one
/// frame being filled. Past the budget every bucket's frames go to the spill file, in bucket
/// order (one partition-ordered run per spill); `finish` streams the one map output.
pub(crate) struct BucketWriter {
    open: Vec<FrameBuilder>,
    closed: Vec<Vec<Vec<u8>>>,
    held: u64,
    spill: SpillConfig,
    file: Option<SpillFile>,
    /// Per spill, where each bucket's frames are in the file.
    spills: Vec<Vec<Range<u64>>>,
}

impl BucketWriter {
    pub(crate) fn new(buckets: usize, spill: SpillConfig) -> BucketWriter {
        BucketWriter {
            open: (0..buckets).map(|_| FrameBuilder::default()).collect(),
            closed: vec![Vec::new(); buckets],
            held: 0,
            spill,
            file: None,
            spills: Vec::new(),
        }
    }

    pub(crate) fn buckets(&self) -> usize {
        self.open.len()
    }

    /// Adds `record` to `bucket`; spills when the writer holds more than its budget.
    pub(crate) fn add<R: Serialize>(&mut self, bucket: usize, record: &R) -> Result<(), Stop> {
        let frame = &mut self.open[bucket];
        self.held += frame.add(record)?;
        if frame.full() {
            let bytes = frame.close();
            self.closed[bucket].push(bytes);
        }
        if self.spill.over(self.held) {
            self.spill_buckets()?;
        }
        Ok(())
    }

    fn close_frames(&mut self) {
        for (frame, closed) in self.open.iter_mut().zip(&mut self.closed) {
            let bytes = frame.close();
            if !bytes.is_empty() {
                closed.push(bytes);
            }
        }
    }

    fn spill_buckets(&mut self) -> Result<(), Stop> {
        self.close_frames();
        if self.file.is_none() {
            self.file = Some(self.spill.file()?);
        }
        let file = self.file.as_mut().expect("made above");
        let mut ranges = Vec::with_capacity(self.closed.len());
        for closed in &mut self.closed {
            let start = file.append(&[])?.start;
            for frame in closed.drain(..) {
                file.append(&frame)?;
            }
            *closed = Vec::new();
            ranges.push(start..file.append(&[])?.end);
        }
        let written = ranges.last().map_or(0, |r| r.end) - ranges.first().map_or(0, |r| r.start);
        self.spill.note_spilled(written);
        self.spills.push(ranges);
        self.held = 0;
        Ok(())
    }

    /// Streams the map output: its table, then each bucket's spilled frames and those in
    /// memory.
    pub(crate) fn finish_into(&mut self, out: &mut dyn FnMut(&[u8])) -> Result<(), Stop> {
        self.close_frames();
        if let Some(file) = &mut self.file {
            file.flush()?;
        }
        let lens: Vec<u64> = (0..self.buckets())
            .map(|b| {
                let spilled: u64 = self.spills.iter().map(|s| s[b].end - s[b].start).sum();
                spilled + self.closed[b].iter().map(|f| f.len() as u64).sum::<u64>()
            })
            .collect();
        out(&tessera_plan::map_output::header(&lens));
        for bucket in 0..self.buckets() {
            if let Some(file) = &self.file {
                for spill in &self.spills {
                    file.copy_range(spill[bucket].clone(), out)?;
                }
            }
            for frame in std::mem::take(&mut self.closed[bucket]) {
                out(&frame);
            }
        }
        Ok(())
    }

    /// The whole map output in memory (for [`Action::finish`]).
    pub(crate) fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        let mut bytes = Vec::new();
        self.finish_into(&mut |piece| bytes.extend_from_slice(piece))?;
        Ok(bytes)
    }
}

/// Map side without combining: each pair goes to its key's bucket as it is (`group_by_key`,
/// `partition_by`, `sort_by_key`, `cogroup`).
pub(crate) struct PairWriter<K, V, P> {
    placement: P,
    buckets: BucketWriter,
    _pairs: PhantomData<fn(K, V)>,
}
impl<K: Data, V: Data, P: Placement<K>> Action for PairWriter<K, V, P> {
    type In = (K, V);
    type Func = ();
    fn open(_: (), params: &[u8], _: u32) -> Result<Self, OpError> {
        let params: WriterParams = decode_params(params)?;
        let placement = P::new(&params.partitioner)?;
        let buckets = BucketWriter::new(placement.partitions(), SpillConfig::from_opening_host());
        Ok(PairWriter {
            placement,
            buckets,
            _pairs: PhantomData,
        })
    }
    fn push(&mut self, batch: Vec<(K, V)>) -> Result<(), Stop> {
        for pair in &batch {
            let bucket = self.placement.place(&pair.0);
            self.buckets.add(bucket, pair)?;
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        self.buckets.finish()
    }
    fn finish_into(&mut self, out: &mut dyn FnMut(&[u8])) -> Result<(), Stop> {
        self.buckets.finish_into(out)
    }
}

/// Map side of `repartition`: records dealt round-robin, from a starting bucket that depends on
/// the partition, so that small partitions do not all fill bucket 0.
pub(crate) struct RoundRobinWriter<T> {
    next: usize,
    buckets: BucketWriter,
    _records: PhantomData<fn(T)>,
}
impl<T: Data> Action for RoundRobinWriter<T> {
    type In = T;
    type Func = ();
    fn open(_: (), params: &[u8], partition: u32) -> Result<Self, OpError> {
        let params: WriterParams = decode_params(params)?;
        let partitions = params.partitioner.partitions().max(1) as usize;
        Ok(RoundRobinWriter {
            next: hash_partition(&partition, partitions as u32) as usize,
            buckets: BucketWriter::new(partitions, SpillConfig::from_opening_host()),
            _records: PhantomData,
        })
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        for record in &batch {
            self.buckets.add(self.next, record)?;
            self.next = (self.next + 1) % self.buckets.buckets();
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        self.buckets.finish()
    }
    fn finish_into(&mut self, out: &mut dyn FnMut(&[u8])) -> Result<(), Stop> {
        self.buckets.finish_into(out)
    }
}

/// How the values of one key become its combiner on the map side: Spark's `createCombiner`
/// and `mergeValue`.
pub(crate) trait MapCombine<V>: Sized + Send + 'static {
    type C: Data;
    type Func: Send + Sync + 'static;
    fn open(func: Self::Func, zero: &[u8]) -> Result<Self, OpError>;
    fn create(&self, value: V) -> Self::C;
    fn merge_value(&self, combiner: Self::C, value: V) -> Self::C;
}

/// `reduce_by_key`: the first value is the combiner; later ones are merged into it by `f`.
pub(crate) struct ReduceValues<V, F>(F, PhantomData<fn(V)>);
impl<V: Data, F: Fn(V, V) -> V + Send + Sync + 'static> MapCombine<V> for ReduceValues<V, F> {
    type C = V;
    type Func = F;
    fn open(f: F, _: &[u8]) -> Result<Self, OpError> {
        Ok(ReduceValues(f, PhantomData))
    }
    fn create(&self, value: V) -> V {
        value
    }
    fn merge_value(&self, combiner: V, value: V) -> V {
        (self.0)(combiner, value)
    }
}

/// `fold_by_key` and `aggregate_by_key`: values are folded into a copy of `zero` by `f`.
pub(crate) struct FoldValues<V, U, F> {
    f: F,
    zero: U,
    _values: PhantomData<fn(V)>,
}
impl<V: Data, U: Data, F: Fn(U, V) -> U + Send + Sync + 'static> MapCombine<V>
    for FoldValues<V, U, F>
{
    type C = U;
    type Func = F;
    fn open(f: F, zero: &[u8]) -> Result<Self, OpError> {
        Ok(FoldValues {
            f,
            zero: decode_params(zero)?,
            _values: PhantomData,
        })
    }
    fn create(&self, value: V) -> U {
        (self.f)(self.zero.clone(), value)
    }
    fn merge_value(&self, combiner: U, value: V) -> U {
        (self.f)(combiner, value)
    }
}

/// Combiners by key.
struct Combiners<K, C>(CombineTable<K, C>);

impl<K: Hash + Eq + 'static, C> Combiners<K, C> {
    fn new() -> Self {
        Combiners(CombineTable::new())
    }

    /// Combines each record's value into its key's combiner, first telling `noted` the value
    /// and, if the key is new to the map, the key.
    fn add_all<V>(
        &mut self,
        records: Vec<(K, V)>,
        combine: &impl MapCombine<V, C = C>,
        mut noted: impl FnMut(Option<&K>, &V),
    ) {
        self.0.upsert_all(records, |found, value| match found {
            Found::New(key) => {
                noted(Some(key), &value);
                combine.create(value)
            }
            Found::Held(combiner) => {
                noted(None, &value);
                combine.merge_value(combiner, value)
            }
        });
    }

    /// Merges `combiner` into `key`'s with `merge`, first telling `noted` the combiner and, if
    /// the key is new to the map, the key.
    fn merge(
        &mut self,
        key: K,
        combiner: C,
        merge: impl Fn(C, C) -> C,
        noted: impl FnOnce(Option<&K>, &C),
    ) {
        self.0.upsert(key, |found| match found {
            Found::New(key) => {
                noted(Some(key), &combiner);
                combiner
            }
            Found::Held(existing) => {
                noted(None, &combiner);
                merge(existing, combiner)
            }
        });
    }

    fn drain(&mut self) -> impl Iterator<Item = (K, C)> + '_ {
        self.0.drain()
    }
}

/// What a map of combiners holds, estimated from what was added to it: a new key adds itself
/// and a combiner made of its value; a value merged into a key's combiner adds itself if the
/// combiner can grow, that is if it owns memory elsewhere (a list keeps its values). One that
/// owns none (a sum, a count, a tuple or array of numbers) keeps its size however much is
/// merged into it, and merging adds nothing.
///
/// Counting every record as a new key overstated word count's map about sevenfold, and drained
/// it, with its hundred thousand keys, in the middle of every task; counting every merged value
/// still made a map of a few thousand counts look as large as its input.
struct HeldCombiners<K, C> {
    keys: SizeEstimate,
    merged: SizeEstimate,
    _types: PhantomData<fn() -> (K, C)>,
}

impl<K: Serialize, C> HeldCombiners<K, C> {
    /// Whether merging into a combiner can make it hold more: a type without drop glue owns
    /// no memory beyond its own bytes.
    const MERGES_GROW: bool = std::mem::needs_drop::<C>();

    /// An empty map's.
    fn new() -> Self {
        HeldCombiners {
            keys: SizeEstimate::default(),
            merged: SizeEstimate::default(),
            _types: PhantomData,
        }
    }

    /// Notes `value` added to the map, and `new_key` if its key was new to it.
    fn note<V: Serialize>(&mut self, new_key: Option<&K>, value: &V) {
        match new_key {
            Some(key) => self.keys.add(&(key, value)),
            None if Self::MERGES_GROW => self.merged.add(value),
            None => {}
        }
    }

    /// Notes a record that is kept whole, as a key of its own would be.
    fn note_kept<T: Serialize>(&mut self, record: &T) {
        self.keys.add(record);
    }

    fn bytes(&self) -> u64 {
        self.keys.bytes::<(K, C)>() + self.merged.bytes::<()>()
    }
}

/// Map side with combining: one combiner per key crosses the network (`reduce_by_key`,
/// `fold_by_key`, `aggregate_by_key`, `combine_by_key`, `distinct`). Keys are combined in one
/// map for the partition and placed in buckets only when the map is drained, once per distinct
/// key rather than once per record: at the end, and whenever the map holds more than the
/// writer's budget (the reducers merge the combiners of a key that several drains wrote).
pub(crate) struct CombineWriter<K, V, M: MapCombine<V>, P> {
    combine: M,
    placement: P,
    combiners: Combiners<K, M::C>,
    /// What the map holds since it was last drained, estimated.
    held: HeldCombiners<K, M::C>,
    buckets: BucketWriter,
}
impl<K, V, M, P> CombineWriter<K, V, M, P>
where
    K: Data + Hash + Eq,
    V: Data,
    M: MapCombine<V>,
    P: Placement<K>,
{
    fn drain(&mut self) -> Result<(), Stop> {
        for pair in self.combiners.drain() {
            self.buckets.add(self.placement.place(&pair.0), &pair)?;
        }
        self.combiners = Combiners::new();
        self.held = HeldCombiners::new();
        Ok(())
    }
}
impl<K, V, M, P> Action for CombineWriter<K, V, M, P>
where
    K: Data + Hash + Eq,
    V: Data,
    M: MapCombine<V>,
    P: Placement<K>,
{
    type In = (K, V);
    type Func = M::Func;
    fn open(func: M::Func, params: &[u8], _: u32) -> Result<Self, OpError> {
        let params: WriterParams = decode_params(params)?;
        let placement = P::new(&params.partitioner)?;
        let buckets = BucketWriter::new(placement.partitions(), SpillConfig::from_opening_host());
        Ok(CombineWriter {
            combine: M::open(func, &params.zero)?,
            placement,
            combiners: Combiners::new(),
            held: HeldCombiners::new(),
            buckets,
        })
    }
    fn push(&mut self, batch: Vec<(K, V)>) -> Result<(), Stop> {
        let held = &mut self.held;
        self.combiners
            .add_all(batch, &self.combine, |key, value| held.note(key, value));
        if self.buckets.spill.over(self.held.bytes()) {
            self.drain()?;
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        self.drain()?;
        self.buckets.finish()
    }
    fn finish_into(&mut self, out: &mut dyn FnMut(&[u8])) -> Result<(), Stop> {
        self.drain()?;
        self.buckets.finish_into(out)
    }
}

/// Combines the values of each key within one partition, whose keys no other partition holds:
/// the whole of a `*_by_key` on an RDD already partitioned as asked.
pub(crate) struct CombineLocally<K, V, M: MapCombine<V>> {
    combine: M,
    combiners: Combiners<K, M::C>,
}
impl<K, V, M> Transform for CombineLocally<K, V, M>
where
    K: Data + Hash + Eq,
    V: Data,
    M: MapCombine<V>,
{
    type In = (K, V);
    type Out = (K, M::C);
    type Func = M::Func;
    fn open(func: M::Func, params: &[u8], _: u32) -> Result<Self, OpError> {
        let params: WriterParams = decode_params(params)?;
        Ok(CombineLocally {
            combine: M::open(func, &params.zero)?,
            combiners: Combiners::new(),
        })
    }
    fn push(&mut self, batch: Vec<(K, V)>, _: &mut BatchOut<(K, M::C)>) -> Result<(), Stop> {
        self.combiners.add_all(batch, &self.combine, |_, _| {});
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, M::C)>) -> Result<(), Stop> {
        for pair in self.combiners.drain() {
            out.push(pair)?;
        }
        Ok(())
    }
}

/// The error of a merge of `runs` spilled runs (and what was in memory) that stopped at a
/// run's error, `source`.
fn merge_failed(runs: usize, source: OpError) -> OpError {
    OpError::MergeFailed {
        runs,
        source: Box::new(source),
    }
}

/// Hands on `record`, a merged one, flushing the batch once the records handed on since the
/// last flush take about [`MERGED_BATCH_BYTES`] (`emitted` estimates them).
fn push_bounded<R: Serialize>(
    out: &mut BatchOut<R>,
    emitted: &mut SizeEstimate,
    record: R,
) -> Result<(), Stop> {
    emitted.add(&record);
    out.push(record)?;
    if emitted.bytes::<R>() >= MERGED_BATCH_BYTES {
        emitted.clear();
        out.flush()?;
    }
    Ok(())
}

/// A map from keys to combiners that spills past its budget (Spark's
/// `ExternalAppendOnlyMap`): each spill is the map's pairs ordered by their key's hash, and
/// the end merges the runs by hash, combining the pairs of equal keys (a hash shared by
/// different keys only makes a short list to search).
struct ExternalCombiners<K, C> {
    combiners: Combiners<K, C>,
    held: HeldCombiners<K, C>,
    runs: SpilledRuns,
}

impl<K: Data + Hash + Eq, C: Data> ExternalCombiners<K, C> {
    fn new() -> Self {
        ExternalCombiners {
            combiners: Combiners::new(),
            held: HeldCombiners::new(),
            runs: SpilledRuns::new(SpillConfig::from_opening_host()),
        }
    }

    /// Merges `combiner` into `key`'s with `merge`; spills if the map then holds too much.
    fn merge(&mut self, key: K, combiner: C, merge: impl Fn(C, C) -> C) -> Result<(), Stop> {
        let held = &mut self.held;
        self.combiners.merge(key, combiner, merge, |key, combiner| {
            held.note(key, combiner)
        });
        self.spill_if_over()
    }

    /// Notes a record of `T` kept whole in the map (a value appended to its key's list);
    /// spills if the map holds too much.
    fn kept<T: Serialize>(&mut self, record: &T) -> Result<(), Stop> {
        self.held.note_kept(record);
        self.spill_if_over()
    }

    fn spill_if_over(&mut self) -> Result<(), Stop> {
        if self.runs.spill.over(self.held.bytes()) {
            let pairs = self.sorted_by_hash();
            self.runs.write(pairs)?;
            self.held = HeldCombiners::new();
        }
        Ok(())
    }

    /// Empties the map into a run ordered by hash.
    fn sorted_by_hash(&mut self) -> Vec<(K, C)> {
        let mut pairs: Vec<(u64, (K, C))> = self
            .combiners
            .drain()
            .map(|pair| (key_hash(&pair.0), pair))
            .collect();
        self.combiners = Combiners::new();
        pairs.sort_by_key(|(hash, _)| *hash);
        pairs.into_iter().map(|(_, pair)| pair).collect()
    }

    /// Hands every key with its combiner (merged by `merge` across spills) to `out`.
    fn finish(
        &mut self,
        merge: impl Fn(C, C) -> C,
        out: &mut BatchOut<(K, C)>,
    ) -> Result<(), Stop> {
        if self.runs.len() == 0 {
            for pair in self.combiners.drain() {
                out.push(pair)?;
            }
            return Ok(());
        }
        // Merged pairs go on in batches of bounded size.
        let mut emitted = SizeEstimate::default();
        let mut out = |pair: (K, C)| push_bounded(out, &mut emitted, pair);
        let mut runs = self.runs.readers::<(K, C)>()?;
        let spilled = runs.len();
        // What is still in memory is the last run: equal keys keep the order they came in.
        let in_memory = self.sorted_by_hash();
        runs.push(Box::new(in_memory.into_iter().map(Ok)));
        let mut same_hash: Vec<(K, C)> = Vec::new();
        let mut current = 0u64;
        for pair in merge_runs(runs, |a: &(K, C), b: &(K, C)| {
            key_hash(&a.0).cmp(&key_hash(&b.0))
        }) {
            let (key, combiner) = pair.map_err(|e| merge_failed(spilled, e))?;
            let hash = key_hash(&key);
            if hash != current {
                for pair in same_hash.drain(..) {
                    out(pair)?;
                }
                current = hash;
            }
            match same_hash.iter().position(|(k, _)| *k == key) {
                Some(i) => {
                    let (key, existing) = same_hash.swap_remove(i);
                    same_hash.push((key, merge(existing, combiner)));
                }
                None => same_hash.push((key, combiner)),
            }
        }
        for pair in same_hash.drain(..) {
            out(pair)?;
        }
        Ok(())
    }
}

/// Reduce side of a combining shuffle: merges the combiners of a key from every map output
/// with `f` (Spark's `mergeCombiners`), spilling past its budget.
pub(crate) struct MergeCombiners<K, C, F> {
    f: F,
    combiners: ExternalCombiners<K, C>,
}
impl<K, C, F> Transform for MergeCombiners<K, C, F>
where
    K: Data + Hash + Eq,
    C: Data,
    F: Fn(C, C) -> C + Send + Sync + 'static,
{
    type In = (K, C);
    type Out = (K, C);
    type Func = F;
    fn open(f: F, _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(MergeCombiners {
            f,
            combiners: ExternalCombiners::new(),
        })
    }
    fn push(&mut self, batch: Vec<(K, C)>, _: &mut BatchOut<(K, C)>) -> Result<(), Stop> {
        for (key, combiner) in batch {
            self.combiners.merge(key, combiner, &self.f)?;
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, C)>) -> Result<(), Stop> {
        let f = &self.f;
        self.combiners.finish(f, out)
    }
}

/// `group_by_key`: every value of a key, in one vector (in the order they came), spilling past
/// its budget.
pub(crate) struct GroupValues<K, V>(ExternalCombiners<K, Vec<V>>);
impl<K: Data + Hash + Eq, V: Data> Transform for GroupValues<K, V> {
    type In = (K, V);
    type Out = (K, Vec<V>);
    type Func = ();
    fn open(_: (), _: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(GroupValues(ExternalCombiners::new()))
    }
    fn push(&mut self, batch: Vec<(K, V)>, _: &mut BatchOut<(K, Vec<V>)>) -> Result<(), Stop> {
        for (k, v) in batch {
            self.0.kept(&(&k, &v))?;
            self.0.combiners.merge(k, vec![v], append_lists, |_, _| {});
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, Vec<V>)>) -> Result<(), Stop> {
        self.0.finish(append_lists, out)
    }
}

/// `b`'s values after `a`'s.
fn append_lists<V>(mut a: Vec<V>, mut b: Vec<V>) -> Vec<V> {
    a.append(&mut b);
    a
}

/// Reduce side of `sort_by_key`: the partition's pairs sorted by key (stably). Past its budget
/// it sorts what it holds into a run on disk; the end merges the runs (Spark's
/// `ExternalSorter`).
pub(crate) struct SortByKey<K, V> {
    ascending: bool,
    pairs: Vec<(K, V)>,
    held: SizeEstimate,
    runs: SpilledRuns,
}
impl<K: Data + Ord, V: Data> SortByKey<K, V> {
    fn order(ascending: bool) -> impl Fn(&(K, V), &(K, V)) -> std::cmp::Ordering + Copy {
        move |a: &(K, V), b: &(K, V)| {
            if ascending {
                a.0.cmp(&b.0)
            } else {
                b.0.cmp(&a.0)
            }
        }
    }

    fn sorted(&mut self) -> Vec<(K, V)> {
        let mut pairs = std::mem::take(&mut self.pairs);
        pairs.sort_by(Self::order(self.ascending));
        self.held.clear();
        pairs
    }
}
impl<K: Data + Ord, V: Data> Transform for SortByKey<K, V> {
    type In = (K, V);
    type Out = (K, V);
    type Func = ();
    fn open(_: (), params: &[u8], _: u32) -> Result<Self, OpError> {
        Ok(SortByKey {
            ascending: decode_params(params)?,
            pairs: Vec::new(),
            held: SizeEstimate::default(),
            runs: SpilledRuns::new(SpillConfig::from_opening_host()),
        })
    }
    fn push(&mut self, mut batch: Vec<(K, V)>, _: &mut BatchOut<(K, V)>) -> Result<(), Stop> {
        for pair in &batch {
            self.held.add(pair);
        }
        self.pairs.append(&mut batch);
        if self.runs.spill.over(self.held.bytes::<(K, V)>()) {
            let run = self.sorted();
            self.runs.write(run)?;
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<(K, V)>) -> Result<(), Stop> {
        let last = self.sorted();
        if self.runs.len() == 0 {
            return out.push_batch(last);
        }
        let mut runs = self.runs.readers::<(K, V)>()?;
        let spilled = runs.len();
        runs.push(Box::new(last.into_iter().map(Ok)));
        let mut emitted = SizeEstimate::default();
        for pair in merge_runs(runs, Self::order(self.ascending)) {
            let pair = pair.map_err(|e| merge_failed(spilled, e))?;
            push_bounded(out, &mut emitted, pair)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::output;
    use crate::spill::tests::TestDir;
    use std::collections::BTreeMap;
    use tessera_plan::map_output::{MapOutput, split_frame};

    /// Every record of bucket `r` of a map output, frame by frame.
    fn bucket_records<R: Data>(output: &MapOutput, r: usize) -> Vec<R> {
        let mut rest = &output.bytes()[output.range(r).unwrap()];
        let mut records = Vec::new();
        while let Some((frame, after)) = split_frame(rest).unwrap() {
            records.extend(crate::encoding::decode::<Vec<R>>(frame).unwrap());
            rest = after;
        }
        records
    }

    #[test]
    fn a_combining_writer_drained_past_its_budget_still_counts_every_word() {
        // Word count's map side: 200,000 words of 20,000 distinct, in batches as they come.
        let dir = TestDir::new("combine");
        let words: Vec<(String, u64)> = (0..200_000u64)
            .map(|i| (format!("w{}", (i * 7919) % 20_000), 1))
            .collect();
        let count = |spill: SpillConfig| {
            let params = bincode::serialize(&WriterParams {
                partitioner: Partitioner::Hash { partitions: 3 },
                zero: Vec::new(),
            })
            .unwrap();
            let sum: fn(u64, u64) -> u64 = |a, b| a + b;
            let mut writer =
                CombineWriter::<String, u64, ReduceValues<u64, _>, ByHash>::open(sum, &params, 0)
                    .unwrap();
            writer.buckets.spill = spill;
            for batch in words.chunks(4096) {
                writer.push(batch.to_vec()).unwrap();
            }
            let mut bytes = Vec::new();
            writer
                .finish_into(&mut |piece| bytes.extend_from_slice(piece))
                .unwrap();
            let output = MapOutput::parse(bytes).unwrap();
            let mut pairs = 0;
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for r in 0..3 {
                for (word, n) in bucket_records::<(String, u64)>(&output, r) {
                    assert_eq!(hash_partition(&word, 3) as usize, r, "{word} in bucket {r}");
                    *counts.entry(word).or_default() += n;
                    pairs += 1;
                }
            }
            (pairs, counts)
        };
        let (pairs, counts) = count(SpillConfig::unlimited());
        assert_eq!(
            pairs, 20_000,
            "one combiner a word when the map is never drained"
        );
        assert_eq!(counts.len(), 20_000);
        assert!(counts.values().all(|&n| n == 10));
        // The smallest budget (256 KiB) drains the map several times: a word's count comes in
        // pieces, which the reducers add up.
        let (drained_pairs, drained_counts) = count(SpillConfig::in_dir(1, dir.0.clone()));
        assert!(drained_pairs > 20_000, "{drained_pairs}");
        assert_eq!(drained_counts, counts);
    }

    #[test]
    fn a_writer_past_its_budget_spills_and_streams_one_output_of_every_record() {
        let dir = TestDir::new("writer");
        let records: Vec<(u64, String)> = (0..60_000).map(|i| (i, format!("value {i}"))).collect();
        let write = |spill: SpillConfig| {
            let mut writer = BucketWriter::new(3, spill);
            for record in &records {
                writer.add((record.0 % 3) as usize, record).unwrap();
            }
            let spills = writer.spills.len();
            let mut pieces = 0;
            let mut bytes = Vec::new();
            writer
                .finish_into(&mut |piece| {
                    pieces += 1;
                    bytes.extend_from_slice(piece)
                })
                .unwrap();
            (spills, pieces, MapOutput::parse(bytes).unwrap())
        };
        let (spills, pieces, spilled) = write(SpillConfig::in_dir(1, dir.0.clone()));
        // About 1.2 MB of records in 256 KiB spills, merged and streamed in pieces.
        assert!(spills >= 4, "{spills} spills");
        assert!(pieces > 3, "{pieces} pieces");
        let (none, _, in_memory) = write(SpillConfig::unlimited());
        assert_eq!(none, 0);
        for r in 0..3 {
            let expected: Vec<(u64, String)> = records
                .iter()
                .filter(|p| p.0 % 3 == r as u64)
                .cloned()
                .collect();
            assert_eq!(bucket_records::<(u64, String)>(&spilled, r), expected);
            assert_eq!(bucket_records::<(u64, String)>(&in_memory, r), expected);
        }
        // The writers are gone, and their spill file with them.
        assert_eq!(dir.files(), 0);
    }

    /// What a map of combiners is estimated to hold once `records` are combined into it.
    fn held_after<V: Data, C: Data>(
        records: Vec<(String, V)>,
        combine: &impl MapCombine<V, C = C>,
    ) -> u64 {
        let mut combiners = Combiners::new();
        let mut held = HeldCombiners::<String, C>::new();
        combiners.add_all(records, combine, |key, value| held.note(key, value));
        held.bytes()
    }

    #[test]
    fn a_map_of_counts_holds_its_keys_and_a_map_of_lists_its_values_too() {
        // Word count's shape: 10,000 records of 100 words.
        let word = |i: u64| format!("word {}", i % 100);
        let counts: Vec<(String, u64)> = (0..10_000).map(|i| (word(i), 1)).collect();
        let lists: Vec<(String, Vec<u64>)> = (0..10_000).map(|i| (word(i), vec![i])).collect();
        let sum: fn(u64, u64) -> u64 = |a, b| a + b;
        let append: fn(Vec<u64>, Vec<u64>) -> Vec<u64> = append_lists;
        let counted = held_after(counts.clone(), &ReduceValues(sum, PhantomData));
        let listed = held_after(lists, &ReduceValues(append, PhantomData));
        // The counts: 100 keys, each a word and a number (under 80 bytes with its entry); the
        // 9,900 counts merged into them take no room.
        assert!(counted <= 100 * 80, "{counted} bytes held for 100 counts");
        // The lists hold every value (16 bytes encoded each).
        let values = 10_000 * 16;
        assert!(
            listed >= values,
            "{listed} bytes held for {values} bytes of values"
        );
        // Each record as a key of its own: what the writer counted at first.
        let mut per_record = SizeEstimate::default();
        for record in &counts {
            per_record.add(record);
        }
        assert!(per_record.bytes::<(String, u64)>() > 50 * counted);
    }

    fn pairs(n: u64, keys: u64) -> Vec<(u64, u64)> {
        (0..n).map(|i| ((i * 7919) % keys, i)).collect()
    }

    #[test]
    fn a_sort_past_its_budget_merges_sorted_runs_stably() {
        let dir = TestDir::new("sort");
        let input = pairs(100_000, 1000);
        for ascending in [true, false] {
            let mut sort = SortByKey::<u64, u64> {
                ascending,
                pairs: Vec::new(),
                held: SizeEstimate::default(),
                runs: SpilledRuns::new(SpillConfig::in_dir(1, dir.0.clone())),
            };
            let sorted = output(|out| {
                for chunk in input.chunks(3000) {
                    sort.push(chunk.to_vec(), out)?;
                }
                assert!(sort.runs.len() >= 3, "{} runs", sort.runs.len());
                sort.finish(out)
            });
            let mut expected = input.clone();
            if ascending {
                expected.sort_by_key(|p| p.0);
            } else {
                expected.sort_by_key(|p| std::cmp::Reverse(p.0));
            }
            assert_eq!(sorted, expected, "ascending: {ascending}");
        }
    }

    #[test]
    fn a_group_past_its_budget_merges_runs_keeping_each_keys_values_in_order() {
        let dir = TestDir::new("group");
        let input = pairs(100_000, 5000);
        let mut group = GroupValues::<u64, u64>(ExternalCombiners::new());
        group.0.runs = SpilledRuns::new(SpillConfig::in_dir(1, dir.0.clone()));
        let grouped = output(|out| {
            for chunk in input.chunks(3000) {
                group.push(chunk.to_vec(), out)?;
            }
            assert!(group.0.runs.len() >= 3, "{} runs", group.0.runs.len());
            group.finish(out)
        });
        let mut expected: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (k, v) in &input {
            expected.entry(*k).or_default().push(*v);
        }
        assert_eq!(grouped.len(), expected.len(), "each key once");
        assert_eq!(grouped.into_iter().collect::<BTreeMap<_, _>>(), expected);
    }

    /// A key whose hash is the same for every value: every pair shares one hash.
    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    struct Colliding(u32);
    impl Hash for Colliding {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            state.write_u8(0);
        }
    }

    #[test]
    fn merging_spilled_combiners_tells_apart_keys_of_one_hash() {
        let dir = TestDir::new("collide");
        // Lists, which grow as they merge, so that the map spills.
        let mut merge = MergeCombiners::<Colliding, Vec<u64>, _> {
            f: append_lists::<u64>,
            combiners: ExternalCombiners::new(),
        };
        merge.combiners.runs = SpilledRuns::new(SpillConfig::in_dir(1, dir.0.clone()));
        let input: Vec<(Colliding, Vec<u64>)> = (0..40_000u64)
            .map(|i| (Colliding((i % 3) as u32), vec![i]))
            .collect();
        let merged = output(|out| {
            for chunk in input.chunks(1000) {
                merge.push(chunk.to_vec(), out)?;
            }
            assert!(merge.combiners.runs.len() > 0);
            merge.finish(out)
        });
        let mut expected: BTreeMap<Colliding, Vec<u64>> = BTreeMap::new();
        for (k, v) in input {
            expected.entry(k).or_default().extend(v);
        }
        assert_eq!(merged.len(), 3);
        let merged: BTreeMap<Colliding, Vec<u64>> = merged
            .into_iter()
            .map(|(k, mut values)| {
                values.sort_unstable();
                (k, values)
            })
            .collect();
        assert_eq!(merged, expected);
    }

    #[test]
    fn merging_counts_into_few_keys_holds_the_keys_only_and_does_not_spill() {
        let dir = TestDir::new("counts");
        let mut merge = MergeCombiners::<u64, u64, _> {
            f: |a: u64, b: u64| a + b,
            combiners: ExternalCombiners::new(),
        };
        merge.combiners.runs = SpilledRuns::new(SpillConfig::in_dir(1, dir.0.clone()));
        // 100 keys' counts from 400 map outputs: 40,000 pairs, 1.3 MB counted one by one, past
        // the least budget (256 KiB); the map holds 100 counts.
        let input = pairs(40_000, 100);
        let merged = output(|out| {
            for chunk in input.chunks(1000) {
                merge.push(chunk.to_vec(), out)?;
            }
            merge.finish(out)
        });
        assert_eq!(merge.combiners.runs.len(), 0, "nothing spilled");
        assert_eq!(dir.files(), 0);
        let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
        for (k, v) in input {
            *expected.entry(k).or_default() += v;
        }
        assert_eq!(merged.into_iter().collect::<BTreeMap<_, _>>(), expected);
    }

    #[test]
    fn range_placement_puts_each_key_at_or_below_its_bound() {
        let bounds = bincode::serialize(&vec![10u32, 20]).unwrap();
        let partitioner = |ascending| Partitioner::Range {
            partitions: 3,
            bounds: bounds.clone(),
            ascending,
        };
        let up = <ByRange<u32> as Placement<u32>>::new(&partitioner(true)).unwrap();
        let placed: Vec<usize> = [0, 10, 11, 20, 21, 99]
            .iter()
            .map(|k| up.place(k))
            .collect();
        assert_eq!(placed, vec![0, 0, 1, 1, 2, 2]);
        let down = <ByRange<u32> as Placement<u32>>::new(&partitioner(false)).unwrap();
        let placed: Vec<usize> = [0, 10, 11, 20, 21, 99]
            .iter()
            .map(|k| down.place(k))
            .collect();
        assert_eq!(placed, vec![2, 2, 1, 1, 0, 0]);
    }
}
