//! Shipping closures to executors.
//!
//! Rust cannot serialize a closure, so Tessera ships its compiled code (the cell's library) and,
//! separately, the values it captured. A closure that captures nothing is zero-sized: the
//! executor conjures it. A closure written with `capture!` captures exactly one value, an
//! [`Env`] holding the captured variables; `Env` starts with a header that says how to
//! serialize it and how to rebuild it on the executor.

use crate::code_ref::locate;
use crate::error::Error;
use crate::op_error::OpError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::ffi::c_void;
use std::mem::{MaybeUninit, size_of};
use tessera_plan::LocalCodeRef;
use tessera_plan::abi::{EnvDecoder, ErrorSink, RawBytes, STATUS_ERROR, STATUS_OK, Status};

/// Values a closure may capture to run on executors.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be captured by a closure that runs on executors",
    label = "this captured variable is not serializable",
    note = "captured values are sent to executors: they must implement serde's `Serialize` and `Deserialize` (derive them), and be `Send + Sync + 'static`",
    note = "or build the value inside the closure instead of capturing it"
)]
pub trait Capturable: Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Capturable for T {}

/// Checked for every variable `capture!` lists, so that the error points at the variable.
pub fn must_be_capturable<T: Capturable>(_: &T) {}

/// Marks an [`EnvHeader`]: 128 random bits that no other closure's bytes start with.
const ENV_MAGIC: [u64; 2] = [0x7465_7373_6572_6121, 0x9e37_79b9_7f4a_7c15];

#[repr(C)]
#[derive(Clone, Copy)]
struct EnvHeader {
    magic: [u64; 2],
    size: usize,
    encode: unsafe fn(*const u8) -> bincode::Result<Vec<u8>>,
    decode_into: EnvDecoder,
}

/// The captured variables of a `capture!` closure, which captures nothing else.
#[repr(C)]
pub struct Env<C> {
    header: EnvHeader,
    value: C,
}

impl<C: Capturable> Env<C> {
    /// The environment of a `capture!` closure.
    pub fn new(value: C) -> Env<C> {
        Env::with_header(value)
    }
}

impl<C> Env<C> {
    /// The captured values.
    pub fn value(&self) -> &C {
        &self.value
    }
}

impl<C: Serialize + DeserializeOwned> Env<C> {
    /// The environment of a closure the session rewrote (see [`crate::auto_capture`]). Its
    /// slots serialize, or fail to when a slot cannot be sent; such a closure is not `Sync`, so
    /// RDD operations refuse it at compile time and it is never shipped.
    pub fn auto(value: C) -> Env<C> {
        Env::with_header(value)
    }

    fn with_header(value: C) -> Env<C> {
        Env {
            header: EnvHeader {
                magic: ENV_MAGIC,
                size: size_of::<Env<C>>(),
                encode: Self::encode,
                decode_into: Self::decode_into,
            },
            value,
        }
    }

    unsafe fn encode(this: *const u8) -> bincode::Result<Vec<u8>> {
        // SAFETY: the caller checked the magic and the size, so `this` is an `Env<C>`.
        let env = unsafe { &*(this as *const Env<C>) };
        crate::encoding::encode(&env.value)
    }

    unsafe extern "C" fn decode_into(
        bytes: RawBytes,
        out: *mut u8,
        out_size: usize,
        err: ErrorSink,
    ) -> Status {
        if out_size != size_of::<Env<C>>() {
            OpError::CapturesSize {
                captured: size_of::<Env<C>>(),
                closure: out_size,
            }
            .report(err);
            return STATUS_ERROR;
        }
        let decoded = std::panic::catch_unwind(|| {
            // SAFETY: the driver passes bytes that outlive this call.
            bincode::deserialize::<C>(unsafe { bytes.as_slice() })
        });
        match decoded {
            Ok(Ok(value)) => {
                // SAFETY: `out` has room and alignment for the closure, which is this `Env<C>`.
                unsafe { (out as *mut Env<C>).write(Env::with_header(value)) };
                STATUS_OK
            }
            Ok(Err(source)) => {
                OpError::ValuesDecode {
                    what: "captured values",
                    source,
                }
                .report(err);
                STATUS_ERROR
            }
            Err(payload) => {
                OpError::DecodePanicked {
                    what: "captured values",
                    message: crate::error::panic_message(payload.as_ref()),
                }
                .report(err);
                STATUS_ERROR
            }
        }
    }
}

/// A closure described for the plan: how to rebuild it, and what it captured.
pub(crate) struct ShippedClosure {
    pub env_decoder: Option<LocalCodeRef>,
    pub captures: Vec<u8>,
}

/// Describes closure `f` for shipping, or explains why it cannot be shipped.
pub(crate) fn ship<F: Send + Sync + 'static>(f: &F) -> Result<ShippedClosure, Error> {
    // SAFETY: `f` is `size_of::<F>()` readable bytes.
    unsafe { ship_bytes(size_of::<F>(), f as *const F as *const u8) }
}

/// [`ship`] for a closure of `size` bytes at `f`. Not generic, and never inlined, so that it is
/// compiled once here rather than for every closure of every cell (cells compile faster).
///
/// # Safety
/// `f` points to `size` readable bytes of a closure.
#[inline(never)]
unsafe fn ship_bytes(size: usize, f: *const u8) -> Result<ShippedClosure, Error> {
    if size == 0 {
        return Ok(ShippedClosure {
            env_decoder: None,
            captures: Vec::new(),
        });
    }
    if size >= size_of::<EnvHeader>() {
        // SAFETY: reading the first bytes of `f` as a header candidate. A `capture!` closure
        // holds exactly one `Env`, laid out at offset 0 (checked through magic and size below);
        // for any other closure the comparison fails and the bytes are not used.
        let header = unsafe { std::ptr::read_unaligned(f as *const EnvHeader) };
        if header.magic == ENV_MAGIC && header.size == size {
            // SAFETY: `f` is an `Env<C>` whose `encode` is this header's.
            let captures = unsafe { (header.encode)(f) }
                .map_err(|source| Error::CapturesNotSerializable { source })?;
            let env_decoder = locate(header.decode_into as *const c_void)?;
            return Ok(ShippedClosure {
                env_decoder: Some(env_decoder),
                captures,
            });
        }
    }
    Err(Error::UnlistedCaptures { size })
}

/// Rebuilds closure `F` on an executor.
///
/// # Safety
/// `captures` and `env_decoder` must be what [`ship`] produced for a closure of type `F`.
pub(crate) unsafe fn rebuild<F>(
    captures: &[u8],
    env_decoder: Option<EnvDecoder>,
    err: ErrorSink,
) -> Option<F> {
    // SAFETY: `F` is a shipped closure's type (the caller's contract).
    if let Some(closure) = unsafe { conjure::<F>() } {
        return Some(closure);
    }
    let Some(decode) = env_decoder else {
        OpError::NoCapturedEnvironment.report(err);
        return None;
    };
    let mut slot = MaybeUninit::<F>::uninit();
    // SAFETY: `slot` has the closure's size and alignment; decode checks the size.
    let status = unsafe {
        decode(
            RawBytes::from_slice(captures),
            slot.as_mut_ptr() as *mut u8,
            size_of::<F>(),
            err,
        )
    };
    // SAFETY: on success the decoder wrote a whole `Env`, which is the whole closure.
    (status == STATUS_OK).then(|| unsafe { slot.assume_init() })
}

/// Closure `F` made out of nothing, when it captures nothing (is zero-sized); `None` otherwise.
///
/// # Safety
/// `F` is the type of a closure some code made: a value of it has existed, and one that
/// captures nothing is like every other.
pub(crate) unsafe fn conjure<F>() -> Option<F> {
    // SAFETY: a zero-sized closure has no bytes to initialize (which clippy's lint, not knowing
    // the size, cannot see).
    #[allow(clippy::uninit_assumed_init)]
    (size_of::<F>() == 0).then(|| unsafe { MaybeUninit::<F>::uninit().assume_init() })
}

/// Binds a captured variable inside a `capture!` closure: by value when it is `Copy` (so
/// `x * factor` works as in the original closure), by reference otherwise.
pub struct Bind<'a, T>(pub &'a T);

/// Binds a `Copy` capture by value: method resolution on `&Bind` picks it before
/// [`BindByRef`] whenever the capture is `Copy`.
pub trait BindByValue<T> {
    /// A copy of the captured value.
    fn bind(&self) -> T;
}
impl<T: Copy> BindByValue<T> for Bind<'_, T> {
    fn bind(&self) -> T {
        *self.0
    }
}

/// Binds a capture that is not `Copy` by reference: what method resolution on `&Bind` falls
/// back to when [`BindByValue`] does not apply.
pub trait BindByRef<'a, T> {
    /// A reference to the captured value.
    fn bind(&self) -> &'a T;
}
impl<'a, T> BindByRef<'a, T> for &Bind<'a, T> {
    fn bind(&self) -> &'a T {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::c_void;

    unsafe extern "C" fn keep_error(ctx: *mut c_void, message: RawBytes) {
        let slot = unsafe { &mut *(ctx as *mut String) };
        *slot = String::from_utf8_lossy(unsafe { message.as_slice() }).into_owned();
    }

    /// What an executor does with a shipped closure: rebuild it from the captured bytes and the
    /// decoder at the recorded address (here, in this same process).
    fn round_trip<F: Send + Sync + 'static>(f: &F) -> F {
        let shipped = ship(f).expect("closure ships");
        let decoder = shipped.env_decoder.map(|code| {
            let here = locate(Env::<()>::decode_into as *const c_void).unwrap();
            assert_eq!(
                code.library_path, here.library_path,
                "the decoder lives in the closure's library"
            );
            // SAFETY: `code` was located from an `EnvDecoder` of this process.
            let base = Env::<()>::decode_into as *const () as usize - here.offset as usize;
            unsafe { std::mem::transmute::<usize, EnvDecoder>(base + code.offset as usize) }
        });
        let mut error = String::new();
        let sink = ErrorSink {
            ctx: &mut error as *mut String as *mut c_void,
            set: keep_error,
        };
        unsafe { rebuild::<F>(&shipped.captures, decoder, sink) }
            .unwrap_or_else(|| panic!("rebuild failed: {error}"))
    }

    #[test]
    fn a_closure_without_captures_is_conjured() {
        let f = |x: i32| x + 1;
        assert_eq!(round_trip(&f)(41), 42);
    }

    #[test]
    fn captured_values_travel_with_the_closure() {
        let words = vec!["a".to_string(), "b".to_string()];
        let factor = 2.5f64;
        let f = crate::capture!([words, factor] move |w: String| if words.contains(&w) { factor } else { 0.0 });
        let rebuilt = round_trip(&f);
        assert_eq!(rebuilt("a".to_string()), 2.5);
        assert_eq!(rebuilt("z".to_string()), 0.0);
    }

    #[test]
    fn a_closure_capturing_without_capture_is_refused() {
        let offset = 3i64;
        let f = move |x: i64| x + offset;
        let error = ship(&f).err().expect("refused");
        assert!(
            matches!(error, Error::UnlistedCaptures { size: 8 }),
            "{error:?}"
        );
        assert!(
            error.message().contains("capture!(["),
            "{}",
            error.message()
        );
    }
}
