//! Broadcast variables and accumulators, Spark's two kinds of shared variables.
//!
//! Both travel inside `capture!` closures as small handles (an id). On an executor, the handle
//! is rebuilt while the operator opens, when the executor's host table is at hand for this
//! thread: a broadcast handle then points at the value the executor fetched and decoded once,
//! and an accumulator handle collects a partial value that it hands to the executor when the
//! operator closes. The executor passes those on only if the task succeeds, so an action's
//! updates count once even when a task is retried.

use crate::context::Context;
use crate::data::Data;
use crate::error::Error;
use crate::op_error::OpError;
use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::ffi::c_void;
use tessera_plan::abi::{ErrorSink, Host, RawBytes};
use tessera_plan::cell_protocol::{CellRequest, CellResponse};

thread_local! {
    /// The executor's host table while an operator's closure is rebuilt on this thread (and
    /// null otherwise: in the cell, handles are made by the `Context`).
    static OPENING_WITH: Cell<*const Host> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` (which rebuilds a closure) with `host` available to the handles it decodes.
pub(crate) fn with_host<R>(host: *const Host, f: impl FnOnce() -> R) -> R {
    let previous = OPENING_WITH.with(|h| h.replace(host));
    let result = f();
    OPENING_WITH.with(|h| h.set(previous));
    result
}

pub(crate) fn opening_host() -> *const Host {
    OPENING_WITH.with(Cell::get)
}

unsafe extern "C" fn keep_message(ctx: *mut c_void, message: RawBytes) {
    let message = String::from_utf8_lossy(unsafe { message.as_slice() }).into_owned();
    unsafe { *(ctx as *mut String) = message };
}

/// A read-only value shipped to each executor once, however many tasks use it.
pub struct Broadcast<T> {
    id: u64,
    value: *const T,
}

// SAFETY: the value is shared read-only and lives as long as the process that holds it.
unsafe impl<T: Sync> Send for Broadcast<T> {}
unsafe impl<T: Sync> Sync for Broadcast<T> {}

impl<T> Clone for Broadcast<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Broadcast<T> {}

impl<T> std::fmt::Debug for Broadcast<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Broadcast<{}>#{}", std::any::type_name::<T>(), self.id)
    }
}

impl<T> Broadcast<T> {
    /// The value, in the cell or in a closure running on an executor.
    pub fn value(&self) -> &T {
        if self.value.is_null() {
            Error::BroadcastUnavailable {
                broadcast: format!("{self:?}"),
            }
            .raise()
        }
        // SAFETY: non-null values are leaked (cell) or kept by the executor while the task that
        // decoded this handle runs (the driver never releases a `Context::broadcast` value).
        unsafe { &*self.value }
    }
}

impl<T> Serialize for Broadcast<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.id.serialize(s)
    }
}

/// Frees a value [`decode_boxed`] made, when the executor lets it go.
unsafe extern "C" fn drop_boxed<T: Data>(value: *mut c_void) {
    // A panic in `T`'s destructor must not unwind into the executor.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(unsafe { Box::from_raw(value as *mut T) })
    }));
}

unsafe extern "C" fn decode_boxed<T: Data>(bytes: RawBytes, err: ErrorSink) -> *mut c_void {
    let decoded =
        std::panic::catch_unwind(|| bincode::deserialize::<T>(unsafe { bytes.as_slice() }));
    match decoded {
        Ok(Ok(value)) => Box::into_raw(Box::new(value)) as *mut c_void,
        Ok(Err(source)) => {
            OpError::ValuesDecode {
                what: "a broadcast value",
                source,
            }
            .report(err);
            std::ptr::null_mut()
        }
        Err(payload) => {
            OpError::DecodePanicked {
                what: "a broadcast value",
                message: crate::error::panic_message(payload.as_ref()),
            }
            .report(err);
            std::ptr::null_mut()
        }
    }
}

impl<'de, T: Data> Deserialize<'de> for Broadcast<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = u64::deserialize(d)?;
        let host = opening_host();
        if host.is_null() {
            return Ok(Broadcast {
                id,
                value: std::ptr::null(),
            });
        }
        let mut message = String::new();
        let err = ErrorSink {
            ctx: &mut message as *mut String as *mut c_void,
            set: keep_message,
        };
        // SAFETY: the host table is valid while the operator opens.
        let value = unsafe {
            ((*host).broadcast)((*host).ctx, id, decode_boxed::<T>, drop_boxed::<T>, err)
        };
        if value.is_null() {
            return Err(serde::de::Error::custom(message));
        }
        Ok(Broadcast {
            id,
            value: value as *const T,
        })
    }
}

/// Values tasks add to, which the cell reads as one sum (Spark's accumulators).
pub trait Accumulable: Data + Default + std::ops::AddAssign {}
impl<T: Data + Default + std::ops::AddAssign> Accumulable for T {}

/// A sum that tasks add to with [`Accumulator::add`] and the cell reads with
/// [`Accumulator::value`]. Updates from actions count once per task, however many times it
/// ran; updates from transformations count each time their partition is computed, as in Spark.
pub struct Accumulator<T: Accumulable> {
    id: u64,
    /// Set in the cell, which can read the value.
    ctx: Option<Context>,
    /// Set on an executor: what this copy's tasks added, reported when it is dropped.
    partial: Option<Partial<T>>,
}

struct Partial<T: Accumulable> {
    id: u64,
    host: *const Host,
    sum: std::sync::Mutex<T>,
}

// SAFETY: the host table is only used from the task that owns this copy.
unsafe impl<T: Accumulable> Send for Partial<T> {}
unsafe impl<T: Accumulable> Sync for Partial<T> {}

impl<T: Accumulable> Drop for Partial<T> {
    fn drop(&mut self) {
        let sum = std::mem::take(&mut *self.sum.lock().unwrap_or_else(|p| p.into_inner()));
        if let Ok(bytes) = crate::encoding::encode(&sum) {
            // SAFETY: the host table outlives the task's operators, which drop this.
            unsafe {
                ((*self.host).accumulate)((*self.host).ctx, self.id, RawBytes::from_slice(&bytes))
            };
        }
    }
}

impl<T: Accumulable> Accumulator<T> {
    pub(crate) fn new(ctx: Context, id: u64) -> Accumulator<T> {
        Accumulator {
            id,
            ctx: Some(ctx),
            partial: None,
        }
    }

    /// This accumulator's id within the session. For the session alone, which reads it to
    /// declare the variable again after the process that runs cells was restarted.
    #[doc(hidden)]
    pub fn __id(&self) -> u64 {
        self.id
    }

    /// The handle on accumulator `id` of the driver `ctx` talks to, which holds its sum. For the
    /// session alone (see [`Accumulator::__id`]); `T` must be the accumulator's type.
    #[doc(hidden)]
    pub fn __rebuilt(ctx: Context, id: u64) -> Accumulator<T> {
        Accumulator::new(ctx, id)
    }

    /// Adds `value`: on an executor to this task's partial sum, in the cell to the total.
    pub fn add(&self, value: T) {
        match (&self.partial, &self.ctx) {
            (Some(partial), _) => *partial.sum.lock().unwrap_or_else(|p| p.into_inner()) += value,
            (None, Some(ctx)) => {
                let value = crate::encoding::encode_params(&value);
                if let Err(e) = ctx.call(CellRequest::Accumulate { id: self.id, value }) {
                    e.raise()
                }
            }
            (None, None) => Error::AccumulatorNotAddable { id: self.id }.raise(),
        }
    }

    /// The sum of everything added so far (in the cell).
    pub fn value(&self) -> T {
        let Some(ctx) = &self.ctx else {
            Error::AccumulatorNotReadable.raise()
        };
        match ctx.call(CellRequest::AccumulatorValue { id: self.id }) {
            Ok(CellResponse::Partials { values }) => {
                let mut sum = T::default();
                for bytes in values {
                    sum += bincode::deserialize(&bytes).unwrap_or_else(|source| {
                        Error::Decode {
                            what: "an accumulator update",
                            source,
                        }
                        .raise()
                    });
                }
                sum
            }
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }
}

impl<T: Accumulable> Clone for Accumulator<T> {
    fn clone(&self) -> Self {
        Accumulator {
            id: self.id,
            ctx: self.ctx,
            partial: None,
        }
    }
}

impl<T: Accumulable> std::fmt::Debug for Accumulator<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Accumulator<{}>#{}", std::any::type_name::<T>(), self.id)
    }
}

impl<T: Accumulable> Serialize for Accumulator<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.id.serialize(s)
    }
}

impl<'de, T: Accumulable> Deserialize<'de> for Accumulator<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = u64::deserialize(d)?;
        let host = opening_host();
        Ok(Accumulator {
            id,
            ctx: None,
            partial: (!host.is_null()).then(|| Partial {
                id,
                host,
                sum: std::sync::Mutex::new(T::default()),
            }),
        })
    }
}

impl Context {
    /// Ships `value` to each executor once; closures read it with `.value()`.
    pub fn broadcast<T: Data>(&self, value: T) -> Broadcast<T> {
        let encoded = crate::encoding::encode_params(&value);
        match self.call(CellRequest::Broadcast { value: encoded }) {
            Ok(CellResponse::Created { id }) => Broadcast {
                id,
                // The cell keeps its copy for the session's life, as Spark's driver does.
                value: Box::leak(Box::new(value)),
            },
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }

    /// A new accumulator starting at `T::default()`.
    pub fn accumulator<T: Accumulable>(&self) -> Accumulator<T> {
        match self.call(CellRequest::Accumulator) {
            Ok(CellResponse::Created { id }) => Accumulator::new(*self, id),
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }
}
