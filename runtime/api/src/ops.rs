//! The operators a plan refers to, each exported to executors as a table of `extern "C"`
//! functions monomorphised for its closure and record types.

use crate::Data;
use crate::batch::{BatchOut, Batches, Stop, from_batch, guarded, type_name_of, write_bytes};
use crate::ship::rebuild;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::ffi::c_void;
use std::marker::PhantomData;
use tessera_plan::abi::{
    ABI_VERSION, ActionVTable, Batch, BatchSink, ByteSink, ErrorSink, OpenArgs, OperatorVTable,
    RawBytes, SourceVTable, Status,
};

/// A narrow transformation of one partition.
pub(crate) trait Transform: Sized + Send + 'static {
    type In: Data;
    type Out: Data;
    /// The user's closure (or `()` when there is none).
    type Func: Send + Sync + 'static;
    fn open(func: Self::Func, partition: u32) -> Self;
    fn push(&mut self, batch: Vec<Self::In>, out: &mut BatchOut<Self::Out>) -> Result<(), Stop>;
    fn finish(&mut self, _out: &mut BatchOut<Self::Out>) -> Result<(), Stop> {
        Ok(())
    }
}

/// Consumes a partition and produces the bytes of a per-partition result.
pub(crate) trait Action: Sized + Send + 'static {
    type In: Data;
    type Func: Send + Sync + 'static;
    fn open(func: Self::Func, params: &[u8]) -> Result<Self, String>;
    fn push(&mut self, batch: Vec<Self::In>) -> Result<(), Stop>;
    fn finish(&mut self) -> Result<Vec<u8>, Stop>;
}

/// Opens `func` from the arguments the executor passed, or reports why not.
unsafe fn open_func<F: Send + Sync + 'static>(args: &OpenArgs, err: ErrorSink) -> Option<F> {
    unsafe { rebuild::<F>(args.captures.as_slice(), args.env_decoder, err) }
}

pub(crate) struct OperatorTable<X>(PhantomData<X>);

impl<X: Transform> OperatorTable<X> {
    const VTABLE: OperatorVTable = OperatorVTable {
        abi_version: ABI_VERSION,
        input_type: type_name_of::<X::In>,
        output: Batches::<X::Out>::VTABLE,
        open: Self::open,
        push: Self::push,
        finish: Self::finish,
        close: Self::close,
    };

    /// The entry point a plan records for this operator.
    pub unsafe extern "C" fn entry() -> *const c_void {
        &Self::VTABLE as *const OperatorVTable as *const c_void
    }

    unsafe extern "C" fn open(args: OpenArgs, state: *mut *mut c_void, err: ErrorSink) -> Status {
        let mut opened = None;
        let status = guarded(err, || {
            let func = unsafe { open_func::<X::Func>(&args, err) }.ok_or(Stop::Downstream)?;
            opened = Some(X::open(func, args.partition));
            Ok(())
        });
        if let Some(op) = opened {
            unsafe { *state = Box::into_raw(Box::new(op)) as *mut c_void };
        }
        status
    }

    unsafe extern "C" fn push(
        state: *mut c_void,
        batch: Batch,
        out: BatchSink,
        err: ErrorSink,
    ) -> Status {
        let op = unsafe { &mut *(state as *mut X) };
        let records = unsafe { from_batch::<X::In>(batch) };
        guarded(err, || {
            let mut out = BatchOut::new(out);
            op.push(records, &mut out)?;
            out.flush()
        })
    }

    unsafe extern "C" fn finish(state: *mut c_void, out: BatchSink, err: ErrorSink) -> Status {
        let op = unsafe { &mut *(state as *mut X) };
        guarded(err, || {
            let mut out = BatchOut::new(out);
            op.finish(&mut out)?;
            out.flush()
        })
    }

    unsafe extern "C" fn close(state: *mut c_void) {
        // Dropping user state may run user code: keep a panic on this side of the boundary.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(state as *mut X) }));
    }
}

pub(crate) struct ActionTable<X>(PhantomData<X>);

impl<X: Action> ActionTable<X> {
    const VTABLE: ActionVTable = ActionVTable {
        abi_version: ABI_VERSION,
        input_type: type_name_of::<X::In>,
        open: Self::open,
        push: Self::push,
        finish: Self::finish,
        close: Self::close,
    };

    pub unsafe extern "C" fn entry() -> *const c_void {
        &Self::VTABLE as *const ActionVTable as *const c_void
    }

    unsafe extern "C" fn open(args: OpenArgs, state: *mut *mut c_void, err: ErrorSink) -> Status {
        let mut opened = None;
        let status = guarded(err, || {
            let func = unsafe { open_func::<X::Func>(&args, err) }.ok_or(Stop::Downstream)?;
            opened = Some(X::open(func, unsafe { args.params.as_slice() }).map_err(Stop::Failed)?);
            Ok(())
        });
        if let Some(op) = opened {
            unsafe { *state = Box::into_raw(Box::new(op)) as *mut c_void };
        }
        status
    }

    unsafe extern "C" fn push(state: *mut c_void, batch: Batch, err: ErrorSink) -> Status {
        let op = unsafe { &mut *(state as *mut X) };
        let records = unsafe { from_batch::<X::In>(batch) };
        guarded(err, || op.push(records))
    }

    unsafe extern "C" fn finish(state: *mut c_void, out: ByteSink, err: ErrorSink) -> Status {
        let op = unsafe { &mut *(state as *mut X) };
        guarded(err, || {
            let bytes = op.finish()?;
            write_bytes(out, &bytes);
            Ok(())
        })
    }

    unsafe extern "C" fn close(state: *mut c_void) {
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(state as *mut X) }));
    }
}

/// Sources: records shipped by the driver, serialized as one `Vec<T>` per partition.
pub(crate) struct RecordsSource<T>(PhantomData<T>);

impl<T: Data> RecordsSource<T> {
    const VTABLE: SourceVTable = SourceVTable {
        abi_version: ABI_VERSION,
        output: Batches::<T>::VTABLE,
        decode: Batches::<T>::VTABLE.decode,
    };

    pub unsafe extern "C" fn entry() -> *const c_void {
        &Self::VTABLE as *const SourceVTable as *const c_void
    }
}

/// Sources: the bytes of a text file split, turned into lines without their line ends.
pub(crate) struct TextSource;

impl TextSource {
    const VTABLE: SourceVTable = SourceVTable {
        abi_version: ABI_VERSION,
        output: Batches::<String>::VTABLE,
        decode: Self::decode,
    };

    pub unsafe extern "C" fn entry() -> *const c_void {
        &Self::VTABLE as *const SourceVTable as *const c_void
    }

    unsafe extern "C" fn decode(bytes: RawBytes, out: BatchSink, err: ErrorSink) -> Status {
        let text = unsafe { bytes.as_slice() };
        guarded(err, || {
            let mut out = BatchOut::new(out);
            // A split holds whole lines, each ended by '\n' except perhaps the file's last: the
            // piece after the final '\n' is not a line.
            let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            if lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            for line in lines {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                // Like Spark's textFile: malformed UTF-8 is replaced, never an error.
                out.push(String::from_utf8_lossy(line).into_owned())?;
            }
            out.flush()
        })
    }
}

fn failed(what: &str) -> impl Fn(bincode::Error) -> Stop + '_ {
    move |e| Stop::Failed(format!("cannot serialize the result of {what}: {e}"))
}

fn encode<R: Serialize>(what: &str, value: &R) -> Result<Vec<u8>, Stop> {
    bincode::serialize(value).map_err(failed(what))
}

fn decode_params<P: DeserializeOwned>(params: &[u8]) -> Result<P, String> {
    bincode::deserialize(params).map_err(|e| format!("cannot decode the action's parameters: {e}"))
}

pub(crate) struct Map<T, U, F>(F, PhantomData<fn(T) -> U>);
impl<T: Data, U: Data, F: Fn(T) -> U + Send + Sync + 'static> Transform for Map<T, U, F> {
    type In = T;
    type Out = U;
    type Func = F;
    fn open(func: F, _: u32) -> Self {
        Map(func, PhantomData)
    }
    fn push(&mut self, batch: Vec<T>, out: &mut BatchOut<U>) -> Result<(), Stop> {
        out.push_batch(batch.into_iter().map(&self.0).collect())
    }
}

pub(crate) struct Filter<T, F>(F, PhantomData<fn(T)>);
impl<T: Data, F: Fn(&T) -> bool + Send + Sync + 'static> Transform for Filter<T, F> {
    type In = T;
    type Out = T;
    type Func = F;
    fn open(func: F, _: u32) -> Self {
        Filter(func, PhantomData)
    }
    fn push(&mut self, mut batch: Vec<T>, out: &mut BatchOut<T>) -> Result<(), Stop> {
        batch.retain(|r| (self.0)(r));
        out.push_batch(batch)
    }
}

pub(crate) struct FlatMap<T, U, I, F>(F, PhantomData<fn(T) -> (U, I)>);
impl<T: Data, U: Data, I: IntoIterator<Item = U> + 'static, F: Fn(T) -> I + Send + Sync + 'static>
    Transform for FlatMap<T, U, I, F>
{
    type In = T;
    type Out = U;
    type Func = F;
    fn open(func: F, _: u32) -> Self {
        FlatMap(func, PhantomData)
    }
    fn push(&mut self, batch: Vec<T>, out: &mut BatchOut<U>) -> Result<(), Stop> {
        for record in batch {
            for produced in (self.0)(record) {
                out.push(produced)?;
            }
        }
        Ok(())
    }
}

/// `map_partitions`: the closure sees the whole partition as one iterator.
pub(crate) struct MapPartitions<T, U, I, F> {
    func: F,
    input: Vec<T>,
    _types: PhantomData<fn() -> (U, I)>,
}
impl<T: Data, U: Data, I: IntoIterator<Item = U> + 'static, F> Transform
    for MapPartitions<T, U, I, F>
where
    F: Fn(std::vec::IntoIter<T>) -> I + Send + Sync + 'static,
{
    type In = T;
    type Out = U;
    type Func = F;
    fn open(func: F, _: u32) -> Self {
        MapPartitions {
            func,
            input: Vec::new(),
            _types: PhantomData,
        }
    }
    fn push(&mut self, mut batch: Vec<T>, _: &mut BatchOut<U>) -> Result<(), Stop> {
        self.input.append(&mut batch);
        Ok(())
    }
    fn finish(&mut self, out: &mut BatchOut<U>) -> Result<(), Stop> {
        for produced in (self.func)(std::mem::take(&mut self.input).into_iter()) {
            out.push(produced)?;
        }
        Ok(())
    }
}

pub(crate) struct Collect<T>(Vec<T>);
impl<T: Data> Action for Collect<T> {
    type In = T;
    type Func = ();
    fn open(_: (), _: &[u8]) -> Result<Self, String> {
        Ok(Collect(Vec::new()))
    }
    fn push(&mut self, mut batch: Vec<T>) -> Result<(), Stop> {
        self.0.append(&mut batch);
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode("collect", &self.0)
    }
}

/// The first `n` records of a partition.
pub(crate) struct Take<T> {
    limit: usize,
    taken: Vec<T>,
}
impl<T: Data> Action for Take<T> {
    type In = T;
    type Func = ();
    fn open(_: (), params: &[u8]) -> Result<Self, String> {
        let limit: u64 = decode_params(params)?;
        Ok(Take {
            limit: limit as usize,
            taken: Vec::new(),
        })
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        let room = self.limit - self.taken.len();
        self.taken.extend(batch.into_iter().take(room));
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode("take", &self.taken)
    }
}

pub(crate) struct Reduce<T, F>(F, Option<T>);
impl<T: Data, F: Fn(T, T) -> T + Send + Sync + 'static> Action for Reduce<T, F> {
    type In = T;
    type Func = F;
    fn open(func: F, _: &[u8]) -> Result<Self, String> {
        Ok(Reduce(func, None))
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        let mut records = batch.into_iter();
        let mut acc = match self.1.take() {
            Some(acc) => acc,
            None => match records.next() {
                Some(first) => first,
                None => return Ok(()),
            },
        };
        for record in records {
            acc = (self.0)(acc, record);
        }
        self.1 = Some(acc);
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode("reduce", &self.1)
    }
}

/// Folds a partition, starting from the zero value the cell shipped as the action's parameter.
pub(crate) struct Fold<T, F>(F, Option<T>);
impl<T: Data, F: Fn(T, T) -> T + Send + Sync + 'static> Action for Fold<T, F> {
    type In = T;
    type Func = F;
    fn open(func: F, params: &[u8]) -> Result<Self, String> {
        Ok(Fold(func, Some(decode_params(params)?)))
    }
    fn push(&mut self, batch: Vec<T>) -> Result<(), Stop> {
        let mut acc = self
            .1
            .take()
            .expect("fold state is present between batches");
        for record in batch {
            acc = (self.0)(acc, record);
        }
        self.1 = Some(acc);
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>, Stop> {
        encode(
            "fold",
            &self.1.take().expect("fold state is present at the end"),
        )
    }
}
