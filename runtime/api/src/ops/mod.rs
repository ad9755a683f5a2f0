//! The operators a plan refers to, each exported to executors as a table of `extern "C"`
//! functions monomorphised for its closure and record types.

mod actions;
mod shuffle;
mod sources;
mod transforms;

pub(crate) use actions::*;
pub(crate) use shuffle::*;
pub(crate) use sources::*;
pub(crate) use transforms::*;

use crate::batch::{
    BatchOut, Batches, Stop, from_batch, guarded, shared_records, type_name_of, write_bytes,
};
use crate::data::Data;
use crate::op_error::OpError;
use crate::ship::rebuild;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::ffi::c_void;
use std::marker::PhantomData;
use tessera_plan::abi::{
    ABI_VERSION, ActionVTable, Batch, BatchSink, ByteSink, ErrorSink, OpenArgs, OperatorVTable,
    SharedRecords, Status,
};

/// A narrow transformation of one partition.
pub(crate) trait Transform: Sized + Send + 'static {
    type In: Data;
    type Out: Data;
    /// The user's closure (or `()` when there is none).
    type Func: Send + Sync + 'static;
    /// Whether each record's output depends on that record alone (see
    /// [`OperatorVTable::recordwise`]).
    const RECORDWISE: bool = false;
    /// `params` are the operator's own arguments, serialized by the cell.
    fn open(func: Self::Func, params: &[u8], partition: u32) -> Result<Self, OpError>;
    fn push(&mut self, batch: Vec<Self::In>, out: &mut BatchOut<Self::Out>) -> Result<(), Stop>;
    /// As [`Transform::push`], over records the caller keeps (a cached partition's): an
    /// operator that can read records in place copies only what it passes on. By default
    /// every record is copied.
    fn push_shared(
        &mut self,
        batch: &[Self::In],
        out: &mut BatchOut<Self::Out>,
    ) -> Result<(), Stop> {
        self.push(batch.to_vec(), out)
    }
    fn finish(&mut self, _out: &mut BatchOut<Self::Out>) -> Result<(), Stop> {
        Ok(())
    }
}

/// Consumes a partition and produces the bytes of a per-partition result.
pub(crate) trait Action: Sized + Send + 'static {
    type In: Data;
    type Func: Send + Sync + 'static;
    /// Whether the action only computes its result, so that running it again over part of
    /// its input has no other effect (see [`ActionVTable::replayable`]).
    const REPLAYABLE: bool = false;
    /// Whether [`Action::merge`] is implemented (see [`ActionVTable::merge`]).
    const MERGES: bool = false;
    fn open(func: Self::Func, params: &[u8], partition: u32) -> Result<Self, OpError>;
    fn push(&mut self, batch: Vec<Self::In>) -> Result<(), Stop>;
    /// As [`Transform::push_shared`]: records the caller keeps, copied only as needed.
    fn push_shared(&mut self, batch: &[Self::In]) -> Result<(), Stop> {
        self.push(batch.to_vec())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop>;
    /// Hands the result to `out`, in pieces if it likes (a shuffle writer's output may be
    /// larger than memory); by default the bytes of [`Action::finish`] in one piece.
    fn finish_into(&mut self, out: &mut dyn FnMut(&[u8])) -> Result<(), Stop> {
        let bytes = self.finish()?;
        out(&bytes);
        Ok(())
    }
    /// Folds what `later`, opened for the same partition and pushed the records after those
    /// `self` was pushed, into `self`. Called only on actions whose [`Action::MERGES`] is
    /// true, which implement it.
    fn merge(&mut self, _later: &mut Self) -> Result<(), Stop> {
        unreachable!("merge is called only on an action whose MERGES is true, which implements it")
    }
}

/// Rebuilds the closure from the arguments the executor passed, opens the operator or action
/// with `open`, and hands the executor a boxed state; or reports why it could not.
unsafe fn open_boxed<F: Send + Sync + 'static, S>(
    args: OpenArgs,
    state: *mut *mut c_void,
    err: ErrorSink,
    open: impl FnOnce(F, &[u8], u32) -> Result<S, OpError>,
) -> Status {
    let mut opened = None;
    let status = guarded(err, || {
        // The host is at hand while the closure is rebuilt and while the operator opens (a
        // spilling operator reads its budget from it).
        crate::shared::with_host(args.host, || {
            let func = unsafe { rebuild::<F>(args.captures.as_slice(), args.env_decoder, err) }
                .ok_or(Stop::Downstream)?;
            opened = Some(open(
                func,
                unsafe { args.params.as_slice() },
                args.partition,
            )?);
            Ok(())
        })
    });
    if let Some(opened) = opened {
        unsafe { *state = Box::into_raw(Box::new(opened)) as *mut c_void };
    }
    status
}

/// Frees a state made by [`open_boxed`]. Dropping user state may run user code: a panic stays
/// on this side of the boundary.
unsafe fn close_boxed<S>(state: *mut c_void) {
    let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(state as *mut S) }));
}

/// Runs `push` with a fresh output towards `out`, flushing what it buffered after, behind the
/// ABI's guard.
fn with_output<T>(
    out: BatchSink,
    err: ErrorSink,
    push: impl FnOnce(&mut BatchOut<T>) -> Result<(), Stop>,
) -> Status {
    guarded(err, || {
        let mut out = BatchOut::new(out);
        push(&mut out)?;
        out.flush()
    })
}

pub(crate) struct OperatorTable<X>(PhantomData<X>);

impl<X: Transform> OperatorTable<X> {
    const VTABLE: OperatorVTable = OperatorVTable {
        abi_version: ABI_VERSION,
        input_type: type_name_of::<X::In>,
        output: Batches::<X::Out>::VTABLE,
        open: Self::open,
        push: Self::push,
        push_shared: Some(Self::push_shared),
        finish: Self::finish,
        close: Self::close,
        recordwise: X::RECORDWISE,
    };

    /// The entry point a plan records for this operator.
    pub unsafe extern "C" fn entry() -> *const c_void {
        &Self::VTABLE as *const OperatorVTable as *const c_void
    }

    unsafe extern "C" fn open(args: OpenArgs, state: *mut *mut c_void, err: ErrorSink) -> Status {
        unsafe { open_boxed(args, state, err, X::open) }
    }

    unsafe extern "C" fn push(
        state: *mut c_void,
        batch: Batch,
        out: BatchSink,
        err: ErrorSink,
    ) -> Status {
        let op = unsafe { &mut *(state as *mut X) };
        let records = unsafe { from_batch::<X::In>(batch) };
        with_output(out, err, |out| op.push(records, out))
    }

    unsafe extern "C" fn push_shared(
        state: *mut c_void,
        records: SharedRecords,
        out: BatchSink,
        err: ErrorSink,
    ) -> Status {
        let op = unsafe { &mut *(state as *mut X) };
        let records = unsafe { shared_records::<X::In>(records) };
        with_output(out, err, |out| op.push_shared(records, out))
    }

    unsafe extern "C" fn finish(state: *mut c_void, out: BatchSink, err: ErrorSink) -> Status {
        let op = unsafe { &mut *(state as *mut X) };
        with_output(out, err, |out| op.finish(out))
    }

    unsafe extern "C" fn close(state: *mut c_void) {
        unsafe { close_boxed::<X>(state) }
    }
}

pub(crate) struct ActionTable<X>(PhantomData<X>);

impl<X: Action> ActionTable<X> {
    const VTABLE: ActionVTable = ActionVTable {
        abi_version: ABI_VERSION,
        input_type: type_name_of::<X::In>,
        open: Self::open,
        push: Self::push,
        push_shared: Some(Self::push_shared),
        finish: Self::finish,
        close: Self::close,
        replayable: X::REPLAYABLE,
        merge: if X::MERGES { Some(Self::merge) } else { None },
    };

    pub unsafe extern "C" fn entry() -> *const c_void {
        &Self::VTABLE as *const ActionVTable as *const c_void
    }

    unsafe extern "C" fn open(args: OpenArgs, state: *mut *mut c_void, err: ErrorSink) -> Status {
        unsafe { open_boxed(args, state, err, X::open) }
    }

    unsafe extern "C" fn push(state: *mut c_void, batch: Batch, err: ErrorSink) -> Status {
        let op = unsafe { &mut *(state as *mut X) };
        let records = unsafe { from_batch::<X::In>(batch) };
        guarded(err, || op.push(records))
    }

    unsafe extern "C" fn push_shared(
        state: *mut c_void,
        records: SharedRecords,
        err: ErrorSink,
    ) -> Status {
        let op = unsafe { &mut *(state as *mut X) };
        let records = unsafe { shared_records::<X::In>(records) };
        guarded(err, || op.push_shared(records))
    }

    unsafe extern "C" fn finish(state: *mut c_void, out: ByteSink, err: ErrorSink) -> Status {
        let op = unsafe { &mut *(state as *mut X) };
        guarded(err, || op.finish_into(&mut |bytes| write_bytes(out, bytes)))
    }

    unsafe extern "C" fn merge(state: *mut c_void, other: *mut c_void, err: ErrorSink) -> Status {
        let (op, other) = unsafe { (&mut *(state as *mut X), &mut *(other as *mut X)) };
        guarded(err, || op.merge(other))
    }

    unsafe extern "C" fn close(state: *mut c_void) {
        unsafe { close_boxed::<X>(state) }
    }
}

/// `value`, the result of `what`, encoded for the cell.
pub(crate) fn encode<R: Serialize>(what: &'static str, value: &R) -> Result<Vec<u8>, Stop> {
    let mut bytes = Vec::new();
    encode_into(what, &mut bytes, value)?;
    Ok(bytes)
}

/// As [`encode`], appending to `bytes`.
pub(crate) fn encode_into<R: Serialize>(
    what: &'static str,
    bytes: &mut Vec<u8>,
    value: &R,
) -> Result<(), Stop> {
    bincode::serialize_into(bytes, value)
        .map_err(|source| Stop::Failed(OpError::ResultEncode { what, source }))
}

/// An operator's parameters, as the cell encoded them.
pub(crate) fn decode_params<P: DeserializeOwned>(params: &[u8]) -> Result<P, OpError> {
    bincode::deserialize(params).map_err(|source| OpError::Params { source })
}
