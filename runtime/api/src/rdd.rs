//! `Rdd<T>`: a typed, `Copy` handle on an RDD whose lineage the driver holds.

use crate::code_ref::locate;
use crate::context::Context;
use crate::data::Data;
use crate::encoding::encode_params;
use crate::error::Error;
use crate::ops::{
    Action, ActionTable, Aggregate, Collect, CountByValue, Filter, FlatMap, Foreach,
    ForeachPartition, Glom, KeyBy, Map, MapPartitions, MapReduce, OperatorTable, OrderedParams,
    Product, RecordsSource, Reduce, Sample, SampleParams, SaveAsText, SaveCheckpoint, Take,
    TakeOrdered, Transform, WriterParams,
};
use crate::ship::ship;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use tessera_plan::cell_protocol::{CellAction, CellRequest, CellResponse};
use tessera_plan::{LocalCodeRef, Operator, Partitioner, RddId, RddKind, RddNode, StorageLevel};

/// A resilient distributed dataset of `T` records.
///
/// Transformations (`map`, `filter`, ...) are lazy: they return a new handle at once. Actions
/// (`count`, `collect`, ...) run a job on the executors; when a job fails they raise a
/// [`crate::Error`] in the cell, which loses no variable and no cached partition.
pub struct Rdd<T> {
    ctx: Context,
    id: RddId,
    _records: PhantomData<fn() -> T>,
}

impl<T> Clone for Rdd<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Rdd<T> {}

impl<T> fmt::Debug for Rdd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rdd<{}>#{}", std::any::type_name::<T>(), self.id)
    }
}

type EntryFn = unsafe extern "C" fn() -> *const c_void;

fn entry_ref(entry: EntryFn) -> Result<LocalCodeRef, Error> {
    locate(entry as *const c_void)
}

/// Describes an operator built from closure `func` for the plan.
fn operator<F: Send + Sync + 'static>(
    entry: EntryFn,
    func: &F,
    params: Vec<u8>,
) -> Result<Operator<LocalCodeRef>, Error> {
    let shipped = ship(func)?;
    Ok(Operator {
        entry: entry_ref(entry)?,
        env_decoder: shipped.env_decoder,
        captures: shipped.captures,
        params,
    })
}

/// A source's operator (its table names the type of records it produces).
pub(crate) fn source_operator(entry: EntryFn) -> Result<Operator<LocalCodeRef>, Error> {
    operator(entry, &(), Vec::new())
}

/// The operator of action `X` with closure `func` and `params`.
pub(crate) fn action_operator<X: Action>(
    func: &X::Func,
    params: Vec<u8>,
) -> Result<Operator<LocalCodeRef>, Error> {
    operator(ActionTable::<X>::entry, func, params)
}

pub(crate) fn transform_operator<X: Transform>(
    func: &X::Func,
    params: Vec<u8>,
) -> Result<Operator<LocalCodeRef>, Error> {
    operator(OperatorTable::<X>::entry, func, params)
}

/// `path`, given to `operation`, made absolute (relative paths start at the session's working
/// directory, where the executors of a local session also start).
fn absolute(operation: &'static str, path: &str) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|source| {
        Error::UnresolvedPath {
            operation,
            path: path.to_string(),
            source,
        }
        .raise()
    })
}

/// Creates the directory `operation` writes into.
fn create_dir(operation: &'static str, path: &std::path::Path) {
    std::fs::create_dir_all(path).unwrap_or_else(|source| {
        Error::CreateDirectory {
            operation,
            path: path.to_path_buf(),
            source,
        }
        .raise()
    })
}

impl<T> Rdd<T> {
    /// Raises the error of `action` (which returns a record) on this RDD, which has none.
    fn empty(&self, action: &'static str) -> ! {
        Error::EmptyRdd {
            action,
            rdd: format!("{self:?}"),
        }
        .raise()
    }

    pub(crate) fn new(ctx: Context, id: RddId) -> Rdd<T> {
        Rdd {
            ctx,
            id,
            _records: PhantomData,
        }
    }

    /// This RDD's id within the session, as `:storage` and `:jobs` show it.
    pub fn id(&self) -> RddId {
        self.id
    }

    /// The handle on RDD `id` of the driver `ctx` talks to. For the session alone: after the
    /// process that runs cells was restarted, it declares an RDD variable again with its type
    /// and the id it held (the driver kept the lineage). `T` must be the RDD's record type.
    #[doc(hidden)]
    pub fn __rebuilt(ctx: Context, id: RddId) -> Rdd<T> {
        Rdd::new(ctx, id)
    }

    /// The session this RDD belongs to.
    pub(crate) fn context(&self) -> Context {
        self.ctx
    }
}

impl<T: Data> Rdd<T> {
    pub(crate) fn narrow<X: Transform<In = T>>(
        &self,
        func: X::Func,
        params: Vec<u8>,
        name: &str,
    ) -> Rdd<X::Out> {
        self.narrow_keeping::<X>(&func, params, false, name)
    }

    /// A narrow transformation; `keeps_keys` says it leaves every record's key where it was,
    /// so the result keeps this RDD's partitioner.
    pub(crate) fn narrow_keeping<X: Transform<In = T>>(
        &self,
        func: &X::Func,
        params: Vec<u8>,
        keeps_keys: bool,
        name: &str,
    ) -> Rdd<X::Out> {
        let op = transform_operator::<X>(func, params).unwrap_or_else(|e| e.raise());
        self.ctx.define(RddNode {
            kind: RddKind::Narrow {
                parent: self.id,
                op,
                preserves_partitioning: keeps_keys,
            },
            num_partitions: 0, // the driver takes the parent's
            element_type: std::any::type_name::<X::Out>().to_string(),
            name: name.to_string(),
        })
    }

    /// Applies `f` to every record.
    pub fn map<U: Data, F: Fn(T) -> U + Send + Sync + 'static>(&self, f: F) -> Rdd<U> {
        self.narrow::<Map<T, U, F>>(f, Vec::new(), "map")
    }

    /// Keeps the records for which `f` is true (and the partitioner, if any).
    pub fn filter<F: Fn(&T) -> bool + Send + Sync + 'static>(&self, f: F) -> Rdd<T> {
        self.narrow_keeping::<Filter<T, F>>(&f, Vec::new(), true, "filter")
    }

    /// Applies `f` to every record and flattens what it returns.
    pub fn flat_map<
        U: Data,
        I: IntoIterator<Item = U> + 'static,
        F: Fn(T) -> I + Send + Sync + 'static,
    >(
        &self,
        f: F,
    ) -> Rdd<U> {
        self.narrow::<FlatMap<T, U, I, F>>(f, Vec::new(), "flat_map")
    }

    /// Applies `f` once per partition, to an iterator over all its records.
    pub fn map_partitions<U, I, F>(&self, f: F) -> Rdd<U>
    where
        U: Data,
        I: IntoIterator<Item = U> + 'static,
        F: Fn(std::vec::IntoIter<T>) -> I + Send + Sync + 'static,
    {
        self.narrow::<MapPartitions<T, U, I, F, ()>>(f, Vec::new(), "map_partitions")
    }

    /// Keeps this RDD's partitions in executor memory once computed (`MEMORY_ONLY`).
    pub fn cache(&self) -> Rdd<T> {
        self.persist(StorageLevel::MemoryOnly)
    }

    /// Keeps this RDD's partitions at `level` once computed.
    pub fn persist(&self, level: StorageLevel) -> Rdd<T> {
        self.set_storage(Some(level));
        *self
    }

    /// Drops this RDD's cached partitions from every executor.
    pub fn unpersist(&self) -> Rdd<T> {
        self.set_storage(None);
        *self
    }

    fn set_storage(&self, level: Option<StorageLevel>) {
        self.ctx.set_storage(self.id, level)
    }

    /// Runs a job and returns one result per partition (all, or those given).
    fn run_job(
        &self,
        name: &str,
        action: CellAction,
        partitions: Option<Vec<u32>>,
    ) -> Vec<Vec<u8>> {
        self.ctx.run_job(self.id, name, action, partitions)
    }

    pub(crate) fn run_action<X: Action<In = T>, R: DeserializeOwned>(
        &self,
        name: &str,
        func: &X::Func,
        params: Vec<u8>,
        partitions: Option<Vec<u32>>,
    ) -> Vec<R> {
        let op = operator(ActionTable::<X>::entry, func, params).unwrap_or_else(|e| e.raise());
        self.run_job(name, CellAction::Run(op), partitions)
            .iter()
            .map(|bytes| {
                bincode::deserialize(bytes).unwrap_or_else(|source| {
                    Error::Decode {
                        what: "a task's result",
                        source,
                    }
                    .raise()
                })
            })
            .collect()
    }

    /// The number of records.
    pub fn count(&self) -> u64 {
        self.ctx.run_count_job(self.id, "count", CellAction::Count)
    }

    /// All records, in partition order, brought into the cell.
    pub fn collect(&self) -> Vec<T> {
        self.run_action::<Collect<T>, Vec<T>>("collect", &(), Vec::new(), None)
            .into_iter()
            .flatten()
            .collect()
    }

    /// The first `n` records. Like Spark, it scans one partition first, then more at a time,
    /// until it has `n`.
    pub fn take(&self, n: usize) -> Vec<T> {
        let total = self.num_partitions();
        let mut taken = Vec::new();
        let mut next = 0u32;
        let mut batch = 1u32;
        while taken.len() < n && next < total {
            let partitions: Vec<u32> = (next..total.min(next + batch)).collect();
            next += partitions.len() as u32;
            let wanted = (n - taken.len()) as u64;
            for part in self.run_action::<Take<T>, Vec<T>>(
                "take",
                &(),
                encode_params(&wanted),
                Some(partitions),
            ) {
                taken.extend(part);
            }
            batch = batch.saturating_mul(4);
        }
        taken.truncate(n);
        taken
    }

    /// The first record; raises an error if the RDD is empty.
    pub fn first(&self) -> T {
        self.take(1)
            .into_iter()
            .next()
            .unwrap_or_else(|| self.empty("first"))
    }

    /// Combines all records with `f`, which must be associative and commutative; raises an
    /// error if the RDD is empty.
    pub fn reduce<F: Fn(T, T) -> T + Send + Sync + 'static>(&self, f: F) -> T {
        let partials = self.run_action::<Reduce<T, F>, Option<T>>("reduce", &f, Vec::new(), None);
        self.reduce_partials(partials, f)
    }

    /// The partitions' results of a `reduce` combined with `f` in partition order; raises an
    /// error when every partition was empty.
    fn reduce_partials<U>(&self, partials: Vec<Option<U>>, f: impl Fn(U, U) -> U) -> U {
        partials
            .into_iter()
            .flatten()
            .reduce(f)
            .unwrap_or_else(|| self.empty("reduce"))
    }

    /// `self.map(f).reduce(g)`, with each record mapped and folded in one pass: the mapped
    /// records are never gathered into batches in between. The session writes that chain this
    /// way when it is called on a variable an earlier cell left (`:expand` shows it). When `g`
    /// captures variables, this is `map` followed by `reduce`.
    pub fn map_reduce<U, F, G>(&self, f: F, g: G) -> U
    where
        U: Data,
        F: Fn(T) -> U + Send + Sync + 'static,
        G: Fn(U, U) -> U + Send + Sync + 'static,
    {
        // Only the map's closure travels with the action; a reduce closure that captures
        // nothing is rebuilt from its type on the executor (see `MapReduce`).
        if std::mem::size_of::<G>() != 0 {
            return self.map(f).reduce(g);
        }
        let partials =
            self.run_action::<MapReduce<T, U, F, G>, Option<U>>("reduce", &f, Vec::new(), None);
        self.reduce_partials(partials, g)
    }

    /// Folds each partition from `zero` with `f`, then folds the partitions' results from `zero`.
    pub fn fold<F: Fn(T, T) -> T + Send + Sync + 'static>(&self, zero: T, f: F) -> T {
        let partials =
            self.run_action::<Aggregate<T, T, F>, T>("fold", &f, encode_params(&zero), None);
        partials.into_iter().fold(zero, &f)
    }

    /// Applies `f` once per partition, with the partition's index.
    pub fn map_partitions_with_index<U, I, F>(&self, f: F) -> Rdd<U>
    where
        U: Data,
        I: IntoIterator<Item = U> + 'static,
        F: Fn(u32, std::vec::IntoIter<T>) -> I + Send + Sync + 'static,
    {
        self.narrow::<MapPartitions<T, U, I, F, u32>>(f, Vec::new(), "map_partitions_with_index")
    }

    /// Each partition as one vector.
    pub fn glom(&self) -> Rdd<Vec<T>> {
        self.narrow::<Glom<T>>((), Vec::new(), "glom")
    }

    /// Pairs each record with the key `f` computes: `(f(&record), record)`.
    pub fn key_by<K: Data, F: Fn(&T) -> K + Send + Sync + 'static>(&self, f: F) -> Rdd<(K, T)> {
        self.narrow::<KeyBy<T, K, F>>(f, Vec::new(), "key_by")
    }

    /// A random sample: each record is kept with probability `fraction` (without replacement),
    /// or appears a Poisson(`fraction`) number of times (with replacement). The same seed gives
    /// the same sample.
    pub fn sample(&self, with_replacement: bool, fraction: f64, seed: u64) -> Rdd<T> {
        let params = encode_params(&SampleParams {
            with_replacement,
            fraction,
            seed,
        });
        self.narrow_keeping::<Sample<T>>(&(), params, true, "sample")
    }

    /// The records of this RDD followed by those of `other`: its partitions are theirs.
    pub fn union(&self, other: &Rdd<T>) -> Rdd<T> {
        self.ctx.union(&[*self, *other])
    }

    /// Partition `i` of the result is the listed (rdd, partition)s one after the other.
    fn concatenated<U>(&self, inputs: Vec<Vec<(RddId, u32)>>, name: &str) -> Rdd<U> {
        self.ctx.define(RddNode {
            kind: RddKind::Concatenated { inputs },
            num_partitions: 0, // the driver counts them
            element_type: std::any::type_name::<U>().to_string(),
            name: name.to_string(),
        })
    }

    /// The same records in at most `partitions` partitions, each a run of neighbouring
    /// partitions of this RDD: no shuffle, so it cannot add partitions (`repartition` can).
    pub fn coalesce(&self, partitions: u32) -> Rdd<T> {
        let current = self.num_partitions();
        let n = partitions.clamp(1, current.max(1));
        let groups = (0..n)
            .map(|i| {
                let (start, end) = (i * current / n, (i + 1) * current / n);
                (start..end).map(|p| (self.id, p)).collect()
            })
            .collect();
        self.concatenated(groups, "coalesce")
    }

    /// Every pair of a record of this RDD and one of `other`, one partition per pair of
    /// partitions.
    pub fn cartesian<U: Data>(&self, other: &Rdd<U>) -> Rdd<(T, U)> {
        let left = self.map(|t: T| crate::side::Side::<T, U>::Left(t));
        let right = other.map(|u: U| crate::side::Side::<T, U>::Right(u));
        let (a, b) = (left.num_partitions(), right.num_partitions());
        let pairs = (0..a)
            .flat_map(|i| (0..b).map(move |j| vec![(left.id, i), (right.id, j)]))
            .collect();
        left.concatenated::<crate::side::Side<T, U>>(pairs, "cartesian")
            .narrow::<Product<T, U>>((), Vec::new(), "cartesian")
    }

    /// Pairs each record with its index in the RDD's order: partition 0's first, then
    /// partition 1's, ... (one job counts the partitions first, as in Spark).
    pub fn zip_with_index(&self) -> Rdd<(T, u64)> {
        let sizes: Vec<u64> = self.glom().map(|p: Vec<T>| p.len() as u64).collect();
        let starts: Vec<u64> = sizes
            .iter()
            .scan(0u64, |next, n| {
                let start = *next;
                *next += n;
                Some(start)
            })
            .collect();
        self.map_partitions_with_index(
            crate::capture!([starts] move |i: u32, records: std::vec::IntoIter<T>| {
                let start = starts[i as usize];
                records.enumerate().map(move |(n, t)| (t, start + n as u64)).collect::<Vec<_>>()
            }),
        )
    }

    /// Runs `f` on every record, on the executors, for its side effects.
    pub fn foreach<F: Fn(T) + Send + Sync + 'static>(&self, f: F) {
        self.run_action::<Foreach<T, F>, ()>("foreach", &f, Vec::new(), None);
    }

    /// Runs `f` once per partition, on the executors, with an iterator over its records.
    pub fn foreach_partition<F: Fn(std::vec::IntoIter<T>) + Send + Sync + 'static>(&self, f: F) {
        self.run_action::<ForeachPartition<T, F>, ()>("foreach_partition", &f, Vec::new(), None);
    }

    /// Folds each partition into a `U` with `seq_op` from `zero`, then combines the partitions'
    /// results with `comb_op` (in the cell) from `zero`.
    pub fn aggregate<U, S, C>(&self, zero: U, seq_op: S, comb_op: C) -> U
    where
        U: Data,
        S: Fn(U, T) -> U + Send + Sync + 'static,
        C: Fn(U, U) -> U,
    {
        let partials = self.run_action::<Aggregate<T, U, S>, U>(
            "aggregate",
            &seq_op,
            encode_params(&zero),
            None,
        );
        partials.into_iter().fold(zero, comb_op)
    }

    /// How many times each distinct record occurs.
    pub fn count_by_value(&self) -> HashMap<T, u64>
    where
        T: Hash + Eq,
    {
        let mut counts = HashMap::new();
        for part in self.run_action::<CountByValue<T>, Vec<(T, u64)>>(
            "count_by_value",
            &(),
            Vec::new(),
            None,
        ) {
            for (record, n) in part {
                *counts.entry(record).or_insert(0) += n;
            }
        }
        counts
    }

    fn ordered(&self, n: usize, largest: bool, name: &str) -> Vec<T>
    where
        T: Ord,
    {
        let params = encode_params(&OrderedParams {
            n: n as u64,
            largest,
        });
        let mut all: Vec<T> = self
            .run_action::<TakeOrdered<T>, Vec<T>>(name, &(), params, None)
            .into_iter()
            .flatten()
            .collect();
        if largest {
            all.sort_by(|a, b| b.cmp(a))
        } else {
            all.sort()
        }
        all.truncate(n);
        all
    }

    /// The `n` smallest records, in ascending order.
    pub fn take_ordered(&self, n: usize) -> Vec<T>
    where
        T: Ord,
    {
        self.ordered(n, false, "take_ordered")
    }

    /// The `n` largest records, in descending order.
    pub fn top(&self, n: usize) -> Vec<T>
    where
        T: Ord,
    {
        self.ordered(n, true, "top")
    }

    /// Writes the records, one a line, as `DIR/part-NNNNN` files (one per partition) on the
    /// executors' file system. `DIR` is created if needed; relative paths start at the
    /// session's working directory.
    pub fn save_as_text_file(&self, dir: &str)
    where
        T: std::fmt::Display,
    {
        let dir = absolute("save_as_text_file", dir);
        create_dir("save_as_text_file", &dir);
        let params = encode_params(&dir.to_string_lossy().into_owned());
        self.run_action::<SaveAsText<T>, ()>("save_as_text_file", &(), params, None);
    }

    /// Saves this RDD's partitions under `dir` (a directory every executor can write and read)
    /// and truncates its lineage there: later jobs read the saved partitions instead of
    /// recomputing them, and a long iterative chain stops growing. Unlike Spark's, which waits
    /// for the next action, this runs a job at once.
    pub fn checkpoint(&self, dir: &str) -> Rdd<T> {
        let dir = absolute("checkpoint", dir).join(format!("rdd-{}", self.id));
        create_dir("checkpoint", &dir);
        let dir = dir.to_string_lossy().into_owned();
        self.run_action::<SaveCheckpoint<T>, ()>("checkpoint", &(), encode_params(&dir), None);
        let decoder = source_operator(RecordsSource::<T>::entry).unwrap_or_else(|e| e.raise());
        if let Err(e) = self.ctx.call(CellRequest::Checkpointed {
            rdd: self.id,
            dir,
            decoder,
        }) {
            e.raise()
        }
        *self
    }

    /// How many partitions this RDD has.
    pub fn num_partitions(&self) -> u32 {
        self.describe().0
    }

    /// How this RDD's keys are placed in its partitions, if a shuffle placed them and nothing
    /// moved them since.
    pub fn partitioner(&self) -> Option<Partitioner> {
        self.describe().1
    }

    fn describe(&self) -> (u32, Option<Partitioner>) {
        match self.ctx.call(CellRequest::Describe { rdd: self.id }) {
            Ok(CellResponse::Defined {
                num_partitions,
                partitioner,
                ..
            }) => (num_partitions, partitioner),
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }

    /// This RDD's records redistributed by `partitioner`: `writer` splits each partition into
    /// buckets of `R` records; each output partition reads its buckets (as a source of `R`)
    /// and, if given, runs `merge` over them.
    pub(crate) fn shuffle<W, R, U>(
        &self,
        partitioner: Partitioner,
        writer_func: &W::Func,
        zero: Vec<u8>,
        merge: Option<Operator<LocalCodeRef>>,
        name: &str,
    ) -> Rdd<U>
    where
        W: Action<In = T>,
        R: Data,
        U: Data,
    {
        let params = encode_params(&WriterParams {
            partitioner: partitioner.clone(),
            zero,
        });
        let defined = (|| {
            Ok::<_, Error>(RddKind::Shuffled {
                parent: self.id,
                partitioner,
                writer: action_operator::<W>(writer_func, params)?,
                reader: source_operator(RecordsSource::<R>::entry)?,
                merge,
            })
        })();
        self.ctx.define(RddNode {
            kind: defined.unwrap_or_else(|e| e.raise()),
            num_partitions: 0, // the driver takes the partitioner's
            element_type: std::any::type_name::<U>().to_string(),
            name: name.to_string(),
        })
    }
}
