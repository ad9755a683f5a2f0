//! The map side of a shuffle: writers, actions that split a partition into one bucket per
//! output partition, encoding records into per-bucket frames as they come, combining the
//! values of a key first where the operation allows.

use super::combiners::{Combiners, HeldCombiners, MapCombine};
use super::placement::{Placement, WriterParams};
use crate::batch::Stop;
use crate::data::Data;
use crate::hash::hash_partition;
use crate::op_error::OpError;
use crate::ops::{Action, decode_params};
use crate::spill::{FrameBuilder, SpillConfig, SpillFile};
use serde::Serialize;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Range;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::shuffle::{ByHash, ReduceValues};
    use crate::spill::tests::TestDir;
    use std::collections::BTreeMap;
    use tessera_plan::Partitioner;
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
}
