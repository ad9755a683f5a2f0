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
    pub offset: u64,
}

/// Code as a cell describes it, before the driver has hashed the library it lives in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LocalCodeRef {
    /// Path of the loaded library (from `dladdr`).
    pub library_path: String,
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
    pub captures: Vec<u8>,
    /// Serialized arguments of the operator itself (e.g. the `n` of `take(n)`).
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
        partitions: Vec<Vec<u8>>,
        decoder: Operator<C>,
    },
    /// Lines of text files, one partition per split; the decoder turns a split's bytes into lines.
    TextFile {
        splits: Vec<FileSplit>,
        decoder: Operator<C>,
    },
    /// A one-to-one (narrow) transformation of the parent's partition with the same index.
    Narrow { parent: RddId, op: Operator<C> },
    /// The partitions of every parent, in order: partition `i` is some parent's partition.
    Union { parents: Vec<RddId> },
}

/// A byte range of a file. A line belongs to the split that holds its first byte.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSplit {
    pub path: String,
    pub start: u64,
    pub end: u64,
}

/// Spark's storage levels.
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
}

impl std::fmt::Display for StorageLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StorageLevel::MemoryOnly => "MEMORY_ONLY",
            StorageLevel::MemoryOnlySer => "MEMORY_ONLY_SER",
            StorageLevel::MemoryAndDisk => "MEMORY_AND_DISK",
            StorageLevel::DiskOnly => "DISK_ONLY",
        })
    }
}

/// One node of the lineage graph.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RddNode<C> {
    pub kind: RddKind<C>,
    pub num_partitions: u32,
    /// Type name of the records, for error messages and `:storage`.
    pub element_type: String,
    /// What built it, e.g. `map at cell 3`; shown in `:storage` and `:jobs`.
    pub name: String,
}
