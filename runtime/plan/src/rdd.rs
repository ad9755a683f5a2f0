//! The lineage graph as the driver records it: an RDD is its partitions, its dependency, the code
//! that computes it and where its partitions are preferred to run.

use serde::{Deserialize, Serialize};

/// Identifies an RDD within one session.
pub type RddId = u64;

/// Where a piece of compiled code lives: a library known by its content hash, and an offset from
/// that library's load base. ASLR moves the base, never the offset.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodeRef {
    /// Lower-case hex SHA-256 of the library file.
    pub library: String,
    /// Bytes from the library's load base to the entry point (for built-in code, the
    /// [`crate::builtin::Builtin`]'s number).
    pub offset: u64,
}

/// Code as a cell describes it, before the driver has hashed the library it lives in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LocalCodeRef {
    /// Path of the loaded library (from `dladdr`).
    pub library_path: String,
    /// Bytes from the library's load base to the entry point.
    pub offset: u64,
}

/// A closure (or other operator) that runs on executors: the entry point that builds its
/// operator table, and the serialized values it captured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator<C> {
    /// Address of an `extern "C" fn() -> &'static OperatorVTable` (or source/action table).
    pub entry: C,
    /// Address of the decoder for the captured environment, when the closure captures values.
    pub env_decoder: Option<C>,
    /// The captured values, serialized by the cell.
    #[serde(with = "crate::bytes")]
    pub captures: Vec<u8>,
    /// Serialized arguments of the operator itself (e.g. the `n` of `take(n)`).
    #[serde(with = "crate::bytes")]
    pub params: Vec<u8>,
}

impl<C> Operator<C> {
    /// The same operator with its code references mapped (e.g. library path to content hash).
    pub fn try_map<D, E>(self, mut f: impl FnMut(C) -> Result<D, E>) -> Result<Operator<D>, E> {
        Ok(Operator {
            entry: f(self.entry)?,
            env_decoder: self.env_decoder.map(&mut f).transpose()?,
            captures: self.captures,
            params: self.params,
        })
    }
}

/// How an RDD's partitions are produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RddKind<C> {
    /// Records shipped from the driver: one serialized `Vec<T>` per partition.
    Parallelize {
        /// Each partition's records, as the cell serialized them.
        #[serde(with = "crate::bytes::lists")]
        partitions: Vec<Vec<u8>>,
        /// The source that decodes a partition's bytes into batches.
        decoder: Operator<C>,
    },
    /// Lines of text files, one partition per split; the decoder turns a split's bytes into lines.
    TextFile {
        /// The byte ranges read, one per partition, in partition order.
        splits: Vec<FileSplit>,
        /// The source that turns a split's lines into batches (of lines, or of line chunks for a
        /// DataFrame).
        decoder: Operator<C>,
    },
    /// A one-to-one (narrow) transformation of the parent's partition with the same index.
    Narrow {
        /// The RDD it transforms.
        parent: RddId,
        /// The operator that computes a partition from the parent's.
        op: Operator<C>,
        /// The operator keeps every record's key (`map_values`, `filter`, ...), so the RDD keeps
        /// its parent's partitioner.
        preserves_partitioning: bool,
    },
    /// The partitions of every parent, in order: partition `i` is some parent's partition.
    Union {
        /// The RDDs united, in order.
        parents: Vec<RddId>,
    },
    /// A union of parents that share a partitioner (the driver turns a `Union` into one):
    /// partition `i` is the parents' partitions `i` one after the other, so the union keeps
    /// the partitioner and a join of co-partitioned RDDs moves nothing.
    PartitionwiseUnion {
        /// The co-partitioned RDDs united, in order.
        parents: Vec<RddId>,
    },
    /// Partition `i` is the listed (parent, partition)s one after the other: `coalesce` (a few
    /// partitions of one parent each) and `cartesian` (a partition of each side).
    Concatenated {
        /// For each partition, the (parent, partition)s it concatenates, in order.
        inputs: Vec<Vec<(RddId, u32)>>,
    },
    /// Partitions saved to files by `checkpoint` (one bincode `Vec<T>` each), which replace
    /// the RDD's lineage.
    Checkpoint {
        /// Each partition's file (`DIR/part-NNNNN`), in partition order.
        files: Vec<String>,
        /// The source that decodes a file's bytes into batches.
        decoder: Operator<C>,
    },
    /// The parent's records redistributed by `partitioner` (a wide dependency: every partition
    /// may need every parent partition). Its shuffle is known by this RDD's id.
    Shuffled {
        /// The RDD whose records are redistributed.
        parent: RddId,
        /// How keys are placed in this RDD's partitions.
        partitioner: Partitioner,
        /// Map side: an action that splits (and may combine) one parent partition into one
        /// encoded bucket per partition of this RDD; its result is a bincode `Vec<Vec<u8>>`.
        writer: Operator<C>,
        /// Reduce side: the source that decodes one bucket into batches.
        reader: Operator<C>,
        /// Reduce side: the operator that merges the buckets' records (combines values of one
        /// key, groups, sorts), if any.
        merge: Option<Operator<C>>,
    },
}

impl<C> RddKind<C> {
    /// The RDDs it is computed from, in order (a concatenation's each once); none for a
    /// source or a checkpoint.
    pub fn parents(&self) -> Vec<RddId> {
        match self {
            RddKind::Narrow { parent, .. } | RddKind::Shuffled { parent, .. } => vec![*parent],
            RddKind::Union { parents } | RddKind::PartitionwiseUnion { parents } => parents.clone(),
            RddKind::Concatenated { inputs } => {
                let mut distinct = Vec::new();
                for (parent, _) in inputs.iter().flatten() {
                    if !distinct.contains(parent) {
                        distinct.push(*parent);
                    }
                }
                distinct
            }
            RddKind::Parallelize { .. } | RddKind::TextFile { .. } | RddKind::Checkpoint { .. } => {
                Vec::new()
            }
        }
    }

    /// The same kind with every code reference mapped (e.g. library path to content hash).
    pub fn try_map_code<D, E>(self, mut f: impl FnMut(C) -> Result<D, E>) -> Result<RddKind<D>, E> {
        Ok(match self {
            RddKind::Parallelize {
                partitions,
                decoder,
            } => RddKind::Parallelize {
                partitions,
                decoder: decoder.try_map(&mut f)?,
            },
            RddKind::TextFile { splits, decoder } => RddKind::TextFile {
                splits,
                decoder: decoder.try_map(&mut f)?,
            },
            RddKind::Narrow {
                parent,
                op,
                preserves_partitioning,
            } => RddKind::Narrow {
                parent,
                op: op.try_map(&mut f)?,
                preserves_partitioning,
            },
            RddKind::Union { parents } => RddKind::Union { parents },
            RddKind::PartitionwiseUnion { parents } => RddKind::PartitionwiseUnion { parents },
            RddKind::Concatenated { inputs } => RddKind::Concatenated { inputs },
            RddKind::Checkpoint { files, decoder } => RddKind::Checkpoint {
                files,
                decoder: decoder.try_map(&mut f)?,
            },
            RddKind::Shuffled {
                parent,
                partitioner,
                writer,
                reader,
                merge,
            } => RddKind::Shuffled {
                parent,
                partitioner,
                writer: writer.try_map(&mut f)?,
                reader: reader.try_map(&mut f)?,
                merge: merge.map(|m| m.try_map(&mut f)).transpose()?,
            },
        })
    }
}

/// How keys are assigned to the partitions of a shuffle's output. Two RDDs with equal
/// partitioners hold each key in the partition of the same index, so a join or a `*_by_key` of
/// them needs no shuffle (the RDD paper's controlled partitioning).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Partitioner {
    /// By a hash of the key that every process computes alike.
    Hash {
        /// How many partitions it places keys in.
        partitions: u32,
    },
    /// By ranges of keys: `bounds` (a bincode `Vec<K>`, sorted) holds the greatest key of
    /// each partition but the last, from samples of the data.
    Range {
        /// How many partitions it places keys in.
        partitions: u32,
        /// The greatest key of each partition but the last (a bincode `Vec<K>`, sorted).
        #[serde(with = "crate::bytes")]
        bounds: Vec<u8>,
        /// Partition 0 holds the least keys (else the greatest, for a descending sort).
        ascending: bool,
    },
    /// Records dealt round-robin (`repartition`): no key decides, so the output has no
    /// partitioner that a later operation could rely on.
    RoundRobin {
        /// How many partitions records are dealt to.
        partitions: u32,
    },
    /// A placement the user defined (a type implementing the API's `CustomPartitioner`):
    /// `name` is the type's name and `state` its value (bincode), so that two are equal when
    /// they are the same type with the same value, as Spark compares partitioners by `equals`.
    Custom {
        /// How many partitions it places keys in.
        partitions: u32,
        /// The type name of the user's partitioner.
        name: String,
        /// The partitioner's value (bincode).
        #[serde(with = "crate::bytes")]
        state: Vec<u8>,
    },
}

impl Partitioner {
    /// Hash partitioning into `partitions` partitions (at least one), as Spark's
    /// `HashPartitioner`.
    pub fn hash(partitions: u32) -> Partitioner {
        Partitioner::Hash {
            partitions: partitions.max(1),
        }
    }

    /// How many partitions it places keys (or records) in.
    pub fn partitions(&self) -> u32 {
        match self {
            Partitioner::Hash { partitions }
            | Partitioner::Range { partitions, .. }
            | Partitioner::RoundRobin { partitions }
            | Partitioner::Custom { partitions, .. } => *partitions,
        }
    }

    /// Whether records of one key are sure to be in one partition.
    pub fn places_keys(&self) -> bool {
        !matches!(self, Partitioner::RoundRobin { .. })
    }
}

/// A byte range of a file. A line belongs to the split that holds its first byte.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSplit {
    /// The file's path, as the executors open it.
    pub path: String,
    /// Offset in the file of the split's first byte.
    pub start: u64,
    /// Offset just past its last byte.
    pub end: u64,
}

/// Spark's storage levels. A level ending in `2` keeps each partition on two executors, as
/// Spark's `_2` levels do: the executor that computed it copies it to another before the task
/// ends, so losing one executor loses no cached partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StorageLevel {
    /// Deserialized records in executor memory (what `cache()` means).
    MemoryOnly,
    /// Serialized records in executor memory: smaller, slower to read.
    MemoryOnlySer,
    /// In memory, spilling to the executor's local disk under memory pressure.
    MemoryAndDisk,
    /// Serialized on the executor's local disk only.
    DiskOnly,
    /// `MemoryOnly` on two executors.
    MemoryOnly2,
    /// `MemoryOnlySer` on two executors.
    MemoryOnlySer2,
    /// `MemoryAndDisk` on two executors.
    MemoryAndDisk2,
    /// `DiskOnly` on two executors.
    DiskOnly2,
}

impl StorageLevel {
    /// How each executor that holds a copy keeps it.
    pub fn one_copy(self) -> StorageLevel {
        match self {
            StorageLevel::MemoryOnly2 => StorageLevel::MemoryOnly,
            StorageLevel::MemoryOnlySer2 => StorageLevel::MemoryOnlySer,
            StorageLevel::MemoryAndDisk2 => StorageLevel::MemoryAndDisk,
            StorageLevel::DiskOnly2 => StorageLevel::DiskOnly,
            level => level,
        }
    }

    /// How many executors keep a copy of each partition.
    pub fn replication(self) -> usize {
        if self.one_copy() == self { 1 } else { 2 }
    }
}

impl std::fmt::Display for StorageLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.one_copy() {
            StorageLevel::MemoryOnly => "MEMORY_ONLY",
            StorageLevel::MemoryOnlySer => "MEMORY_ONLY_SER",
            StorageLevel::MemoryAndDisk => "MEMORY_AND_DISK",
            _ => "DISK_ONLY",
        })?;
        if self.replication() > 1 {
            write!(f, "_{}", self.replication())?;
        }
        Ok(())
    }
}

/// One node of the lineage graph.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RddNode<C> {
    /// How its partitions are computed.
    pub kind: RddKind<C>,
    /// How many partitions it has.
    pub num_partitions: u32,
    /// Type name of the records, for error messages and `:storage`.
    pub element_type: String,
    /// What built it, e.g. `map at cell 3`; shown in `:storage` and `:jobs`.
    pub name: String,
}
