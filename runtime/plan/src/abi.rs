//! The C ABI between an executor and the code of a cell library.
//!
//! An executor never interprets a user's record type. It moves opaque *batches* (a boxed
//! `Vec<T>` owned by cell code) between tables of `extern "C"` functions that cell libraries
//! export, and frees every batch through the table of the library that made it. Each function
//! catches panics inside its own library: a Rust panic must never unwind across this boundary,
//! because every cell library carries its own copy of the standard library.

use std::ffi::c_void;

/// Bumped whenever a table below changes shape; executors refuse tables of another version.
pub const ABI_VERSION: u32 = 9;

/// Return value of every fallible ABI function.
pub type Status = i32;
/// The callee succeeded.
pub const STATUS_OK: Status = 0;
/// The callee failed and has reported why through the [`ErrorSink`].
pub const STATUS_ERROR: Status = 1;

/// How the message a callee reports begins when a closure of the user's panicked (the panic's
/// own message follows), as opposed to an error the operator itself returned.
pub const PANIC_PREFIX: &str = "closure panicked: ";

/// How the message of an operator that met a row it cannot read (a CSV or JSON row that does
/// not fit its schema) begins, so that the executor finds and names the row's line.
pub const MALFORMED_PREFIX: &str = "malformed row: ";

/// A borrowed byte slice.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RawBytes {
    /// The first byte (not read when `len` is 0).
    pub ptr: *const u8,
    /// How many bytes.
    pub len: usize,
}

impl RawBytes {
    /// Borrows `bytes`: valid for as long as they are.
    pub fn from_slice(bytes: &[u8]) -> RawBytes {
        RawBytes {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive the returned slice.
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// An opaque batch of records: a `Box<Vec<T>>` made by cell code.
pub type Batch = *mut c_void;

/// Where a callee writes the message of the error it returns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ErrorSink {
    /// The receiver's state, passed back to `set`.
    pub ctx: *mut c_void,
    /// Keeps `message` (UTF-8 text) as the callee's error.
    pub set: unsafe extern "C" fn(ctx: *mut c_void, message: RawBytes),
}

/// Where a callee writes bytes it produces (an action's result, an encoded batch).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ByteSink {
    /// The receiver's state, passed back to `write`.
    pub ctx: *mut c_void,
    /// Appends `bytes` to what the sink holds (a callee may write in several pieces).
    pub write: unsafe extern "C" fn(ctx: *mut c_void, bytes: RawBytes),
}

/// Where a callee hands batches it produces; the sink takes ownership of each batch.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BatchSink {
    /// The receiver's state, passed back to `push`.
    pub ctx: *mut c_void,
    /// Takes `batch`, and ownership of it; anything but [`STATUS_OK`] means the receiver
    /// failed (and has reported why), so the callee stops and returns [`STATUS_ERROR`].
    pub push: unsafe extern "C" fn(ctx: *mut c_void, batch: Batch) -> Status,
}

/// Functions over batches of one record type, from the library that produces them.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BatchVTable {
    /// Type name of the records (a function: type names are not constants).
    pub type_name: unsafe extern "C" fn() -> RawBytes,
    /// The number of records in the batch.
    pub len: unsafe extern "C" fn(batch: Batch) -> usize,
    /// Estimated bytes of memory the batch holds, for the block manager's accounting.
    pub memory_bytes: unsafe extern "C" fn(batch: Batch) -> usize,
    /// A copy of the batch; the original stays with the caller.
    pub clone: unsafe extern "C" fn(batch: Batch) -> Batch,
    /// Frees the batch.
    pub drop: unsafe extern "C" fn(batch: Batch),
    /// Serializes the batch (without consuming it).
    pub encode: unsafe extern "C" fn(batch: Batch, out: ByteSink, err: ErrorSink) -> Status,
    /// Deserializes what `encode` wrote, as one or more batches.
    pub decode: unsafe extern "C" fn(bytes: RawBytes, out: BatchSink, err: ErrorSink) -> Status,
    /// How a partition being cached is gathered into long runs of records, or `None` where
    /// its batches are kept as they come (version 8).
    pub runs: Option<RunsVTable>,
}

/// Records its owner keeps, read in place ([`OperatorVTable::push_shared`]): records
/// `start..start + len` of a batch (a range past the batch's end is cut at it), or, where
/// `first` is not null, the `len` records laid out from `first` in memory the executor keeps
/// ([`FlatRecords`]; version 9).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SharedRecords {
    /// The batch (null where `first` is not).
    pub batch: Batch,
    /// The first record read, of the batch.
    pub start: usize,
    /// How many records are read.
    pub len: usize,
    /// The first record read, where the records are not in a batch; else null.
    pub first: *const u8,
}

/// Functions that gather a partition's records into *runs*, batches each in one allocation
/// of many records (version 8). A cached partition kept as the batches it came in (a few
/// thousand records each, each allocated apart) is read a little slower, on every pass, than
/// the same records side by side (`BENCHMARKS.md`, "Cached partitions in runs"); a run is
/// read in pieces the size of a batch ([`SharedRecords`]).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RunsVTable {
    /// Appends copies of `from`'s records to `run` and returns `run`, if they fit in the room
    /// `run` was made with. Otherwise, or when `run` is null, returns a new run holding copies
    /// of them, with room for more; the old run is then left with no room to spare, and the
    /// caller keeps it as it is. `from` stays with the caller.
    pub gather: unsafe extern "C" fn(run: Batch, from: Batch) -> Batch,
    /// Gives back the room `run` has to spare, once nothing more is gathered into it.
    pub seal: unsafe extern "C" fn(run: Batch),
    /// A copy of the records `records` names, as a batch of their own.
    pub copy: unsafe extern "C" fn(records: SharedRecords) -> Batch,
    /// Where the records are plain bytes, how to copy them as such; else `None` (version 9).
    pub flat: Option<FlatRecords>,
}

/// Records that are plain bytes: they own no memory elsewhere and need nothing done when they
/// go (no drop glue), so copies of their bytes, anywhere and in any process that loads the
/// same library, are the same records. The executor may then keep a cached partition's
/// records in memory of its own, which outlives it (version 9).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FlatRecords {
    /// Bytes of one record, as laid out one after another (a multiple of `align`, not 0).
    pub size: usize,
    /// The alignment a record needs.
    pub align: usize,
    /// Where a batch's records are, as `len × size` bytes. Padding between fields may be in
    /// them: the caller copies them as they are, and never reads them as numbers.
    pub bytes: unsafe extern "C" fn(batch: Batch) -> RawBytes,
}

/// Rebuilds a closure's captured environment from its serialized bytes into `out`, which has
/// room for `out_size` bytes and the closure's alignment.
pub type EnvDecoder =
    unsafe extern "C" fn(bytes: RawBytes, out: *mut u8, out_size: usize, err: ErrorSink) -> Status;

/// Arguments every operator and action is opened with.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OpenArgs {
    /// The closure's captured values, as the cell serialized them ([`crate::Operator::captures`]).
    pub captures: RawBytes,
    /// Rebuilds the closure from `captures`; `None` when it captures nothing.
    pub env_decoder: Option<EnvDecoder>,
    /// The operator's own serialized arguments ([`crate::Operator::params`]).
    pub params: RawBytes,
    /// The partition being computed: of the step's RDD for an operator, the task's for an action.
    pub partition: u32,
    /// What the executor offers the task's code; valid until the task ends.
    pub host: *const Host,
}

/// Decodes a broadcast value's bytes into a `Box<T>` of the calling library (null on error,
/// reported through `err`).
pub type BroadcastDecoder = unsafe extern "C" fn(bytes: RawBytes, err: ErrorSink) -> *mut c_void;

/// Frees a value a [`BroadcastDecoder`] of the same library made (its `Box<T>`).
pub type BroadcastDropper = unsafe extern "C" fn(value: *mut c_void);

/// Services of the executor to the code of a running task.
#[repr(C)]
pub struct Host {
    /// The executor's state for the task, passed back to each function below.
    pub ctx: *mut c_void,
    /// The value of broadcast `id`, fetched once per executor and decoded once per executor
    /// and `decode` (that is, per cell library). Valid until the task ends: the executor frees
    /// it with `drop` once the driver releases the broadcast and no running task holds it
    /// (version 5). Null on error.
    pub broadcast: unsafe extern "C" fn(
        ctx: *mut c_void,
        id: u64,
        decode: BroadcastDecoder,
        drop: BroadcastDropper,
        err: ErrorSink,
    ) -> *const c_void,
    /// Adds a partial value of accumulator `id` (encoded by cell code) to the task's updates,
    /// which reach the driver only if the task succeeds.
    pub accumulate: unsafe extern "C" fn(ctx: *mut c_void, id: u64, bytes: RawBytes),
    /// Bytes of memory one operator of the task (a shuffle writer, a merge, a sort) may hold
    /// before it writes what it holds to a spill file (version 3).
    pub spill_budget: u64,
    /// The directory (a UTF-8 path) where the task's operators make their spill files, each
    /// removed by the operator that made it; valid while the task runs (version 3).
    pub spill_dir: RawBytes,
    /// Adds `bytes` written to spill files to the task's metrics (version 3).
    pub spilled: unsafe extern "C" fn(ctx: *mut c_void, bytes: u64),
}

/// A narrow transformation: batches in, batches out.
#[repr(C)]
pub struct OperatorVTable {
    /// The [`ABI_VERSION`] the library was built with; checked before the table is used.
    pub abi_version: u32,
    /// Type name of the records it takes, checked against the type of its input batches.
    pub input_type: unsafe extern "C" fn() -> RawBytes,
    /// The table of the batches it produces.
    pub output: BatchVTable,
    /// Makes the operator's state for one partition from `args`, written to `*state`.
    pub open:
        unsafe extern "C" fn(args: OpenArgs, state: *mut *mut c_void, err: ErrorSink) -> Status,
    /// Takes ownership of `batch`.
    pub push: unsafe extern "C" fn(
        state: *mut c_void,
        batch: Batch,
        out: BatchSink,
        err: ErrorSink,
    ) -> Status,
    /// Reads records of a batch without taking it: the caller keeps it, unchanged, as a cached
    /// partition's batches are kept (version 4; a range of it since version 8). Only the records
    /// the operator passes on are copied. `None`: the executor pushes a copy of them instead.
    pub push_shared: Option<
        unsafe extern "C" fn(
            state: *mut c_void,
            records: SharedRecords,
            out: BatchSink,
            err: ErrorSink,
        ) -> Status,
    >,
    /// Called once after the last batch.
    pub finish: unsafe extern "C" fn(state: *mut c_void, out: BatchSink, err: ErrorSink) -> Status,
    /// Frees the state, whether or not `finish` ran.
    pub close: unsafe extern "C" fn(state: *mut c_void),
    /// Whether each record's output depends on that record alone and each batch's output is
    /// put out before `push` returns (`map`, `filter`, `flat_map`...; not `map_partitions`,
    /// `sample` or `glom`): the executor may then push some of a partition's batches through
    /// one state and the rest through another, on another thread, and leave `finish`
    /// uncalled; the records out are the same (version 7).
    pub recordwise: bool,
}

/// Turns bytes shipped by the driver or read by the executor into the first batches of a task.
#[repr(C)]
pub struct SourceVTable {
    /// The [`ABI_VERSION`] the library was built with; checked before the table is used.
    pub abi_version: u32,
    /// The table of the batches it produces.
    pub output: BatchVTable,
    /// Decodes one piece of input (a partition's shipped records, a chunk of a split's lines, a
    /// record frame of a shuffle bucket, a saved partition's file) into batches handed to `out`.
    pub decode: unsafe extern "C" fn(bytes: RawBytes, out: BatchSink, err: ErrorSink) -> Status,
}

/// An action: consumes a partition's batches and produces result bytes for the cell.
#[repr(C)]
pub struct ActionVTable {
    /// The [`ABI_VERSION`] the library was built with; checked before the table is used.
    pub abi_version: u32,
    /// Type name of the records it takes, checked against the type of its input batches.
    pub input_type: unsafe extern "C" fn() -> RawBytes,
    /// Makes the action's state for one partition from `args`, written to `*state`.
    pub open:
        unsafe extern "C" fn(args: OpenArgs, state: *mut *mut c_void, err: ErrorSink) -> Status,
    /// Takes ownership of `batch`.
    pub push: unsafe extern "C" fn(state: *mut c_void, batch: Batch, err: ErrorSink) -> Status,
    /// As [`OperatorVTable::push_shared`]: reads records of a batch the caller keeps (version
    /// 4; a range of it since version 8).
    pub push_shared: Option<
        unsafe extern "C" fn(state: *mut c_void, records: SharedRecords, err: ErrorSink) -> Status,
    >,
    /// Called once after the last batch: writes the action's result to `out`.
    pub finish: unsafe extern "C" fn(state: *mut c_void, out: ByteSink, err: ErrorSink) -> Status,
    /// Frees the state, whether or not `finish` ran.
    pub close: unsafe extern "C" fn(state: *mut c_void),
    /// Whether running the action again over part of its input does nothing but compute a
    /// result (a fold; not a writer, nor `foreach`): an executor that looks for the line that
    /// made a closure panic may then run it again (version 6).
    pub replayable: bool,
    /// Folds what the state `other` was pushed into `state`, as if `state` had been pushed
    /// those batches too, after its own: states opened for the same partition, each pushed a
    /// run of its batches, merged in the runs' order, give the partition's result (`reduce`,
    /// `collect`, `count_by_value`, `stats`; not `fold`, whose zero value would be counted
    /// once per state). The caller still closes `other`. `None`: the action sees a partition's
    /// batches through one state (version 7).
    pub merge: Option<
        unsafe extern "C" fn(state: *mut c_void, other: *mut c_void, err: ErrorSink) -> Status,
    >,
}

/// Every code reference in a plan points at one of these: it returns a `&'static` table
/// (an [`OperatorVTable`], [`SourceVTable`] or [`ActionVTable`], as the plan says).
pub type TableEntry = unsafe extern "C" fn() -> *const c_void;
