//! `exp` for the closures executors run: the C library's, except that inputs whose result
//! saturates — to `+inf` above about 709.8, to `+0` below about -745.1 — are answered at once.
//!
//! glibc's `exp` computes those results the slow way, on purpose: it multiplies a huge or tiny
//! number by itself to raise the floating-point overflow or underflow flag, and sets `errno`.
//! On the x86 machine of our benchmarks `exp(-800)` takes 13.5 ns that way, against 5.2 ns for
//! `exp(-5)`. Closures hit that case wherever a sigmoid saturates — logistic regression on
//! well-separated data, whose margins grow without bound — and then most of a task's time is
//! spent raising a flag that Rust code cannot read (it has no stable access to the
//! floating-point environment). The JVM's `Math.exp`, which Spark's closures call, has no such
//! cost.
//!
//! So the executor defines `exp` itself and exports it, and the cell libraries it loads bind
//! their `exp` calls to this one (as they bind `malloc` to its allocator). Every result is the
//! C library's, bit for bit: inputs past the thresholds get exactly the `+inf` or `+0` glibc
//! returns, with `errno` set to `ERANGE` as glibc sets it; every other input, NaN included, goes
//! to the C library's own `exp`. Only the floating-point flags differ.
//!
//! Defined on glibc targets only; elsewhere `exp` is the C library's.

#![deny(missing_docs)]

/// From here up, `exp` overflows: `ln(f64::MAX)` is 709.782712893384, and glibc returns `+inf`
/// for every input above it. The threshold leaves a margin so that rounding near the boundary
/// stays glibc's to decide.
pub const OVERFLOWS_FROM: f64 = 709.8;

/// From here down, `exp` underflows to `+0`: results below half the smallest subnormal
/// (`2^-1075`, at `x = -745.1332191019412`) round to zero. The same margin as above.
pub const UNDERFLOWS_FROM: f64 = -745.2;

/// `exp(x)`, as the C library computes it, with saturated inputs answered at once. Exported
/// under the C library's name, which is what makes it replace that one.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub extern "C" fn exp(x: f64) -> f64 {
    if x >= OVERFLOWS_FROM {
        set_range_error();
        f64::INFINITY
    } else if x <= UNDERFLOWS_FROM {
        set_range_error();
        0.0
    } else {
        c_library_exp()(x)
    }
}

/// What glibc does for a result out of range. `errno`'s address is kept per thread: finding it
/// is a call into the C library, which took 6% of LR's executor time when made every time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_range_error() {
    use std::cell::Cell;
    thread_local! {
        static ERRNO: Cell<*mut libc::c_int> = const { Cell::new(std::ptr::null_mut()) };
    }
    ERRNO.with(|errno| {
        if errno.get().is_null() {
            // SAFETY: `__errno_location` returns this thread's `errno`, valid while it lives.
            errno.set(unsafe { libc::__errno_location() });
        }
        // SAFETY: as above; this thread's `errno`.
        unsafe { *errno.get() = libc::ERANGE };
    });
}

/// The C library's own `exp`, found once in `libm.so.6` itself (the name `exp` would find
/// ours): what [`exp`] answers with below the thresholds, and what a benchmark compares it to.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn c_library_exp() -> extern "C" fn(f64) -> f64 {
    use std::sync::OnceLock;
    static EXP: OnceLock<extern "C" fn(f64) -> f64> = OnceLock::new();
    *EXP.get_or_init(|| {
        // SAFETY: both strings are NUL-terminated, and the symbol found has `exp`'s C
        // signature. `libm.so.6` is opened by name, not found among what is loaded: a
        // program that calls no other function of it (this crate's tests) is linked without
        // it, since this `exp` is all it needed.
        unsafe {
            let libm = libc::dlopen(c"libm.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            let found = if libm.is_null() {
                std::ptr::null_mut()
            } else {
                libc::dlsym(libm, c"exp".as_ptr())
            };
            if found.is_null() {
                // No way to compute exp at all: stop here, saying why, rather than answer
                // wrongly. glibc always has libm.so.6.
                eprintln!("tessera: cannot find exp in libm.so.6; the C math library is missing");
                std::process::abort();
            }
            std::mem::transmute::<*mut libc::c_void, extern "C" fn(f64) -> f64>(found)
        }
    })
}

/// The C library's `exp`, where this crate does not replace it.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn c_library_exp() -> extern "C" fn(f64) -> f64 {
    extern "C" fn exp(x: f64) -> f64 {
        x.exp()
    }
    exp
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Inputs around both thresholds, the boundaries glibc itself has, and ordinary ones.
    fn inputs() -> Vec<f64> {
        let mut xs = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -5.0,
            88.7,
            -103.9,
            700.0,
            -700.0,
            709.782712893384,
            709.7827128933841,
            -708.3964185322641,
            -745.1332191019411,
            -745.1332191019412,
            -745.14,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            1e-300,
            -1e-300,
        ];
        for threshold in [
            OVERFLOWS_FROM,
            UNDERFLOWS_FROM,
            709.782712893384,
            -745.1332191019412,
        ] {
            let mut below = threshold;
            let mut above = threshold;
            for _ in 0..64 {
                below = below.next_down();
                above = above.next_up();
                xs.extend([below, above]);
            }
            for step in 1..200 {
                xs.push(threshold + step as f64 * 0.01);
                xs.push(threshold - step as f64 * 0.01);
            }
        }
        xs.extend((0..20_000).map(|i| -1600.0 + i as f64 * 0.16));
        xs
    }

    #[test]
    fn every_result_is_the_c_librarys_bit_for_bit() {
        let theirs = c_library_exp();
        for x in inputs() {
            let (ours, expected) = (exp(x), theirs(x));
            assert_eq!(
                ours.to_bits(),
                expected.to_bits(),
                "exp({x:e}): {ours:e} against glibc's {expected:e}"
            );
        }
        let nan = exp(f64::NAN);
        assert!(nan.is_nan() && theirs(f64::NAN).is_nan());
    }

    #[test]
    fn a_saturated_result_sets_errno_as_the_c_library_does() {
        for x in [800.0, -800.0, OVERFLOWS_FROM, UNDERFLOWS_FROM] {
            for function in [exp as extern "C" fn(f64) -> f64, c_library_exp()] {
                // SAFETY: this thread's errno.
                unsafe { *libc::__errno_location() = 0 };
                function(x);
                // SAFETY: as above.
                assert_eq!(
                    unsafe { *libc::__errno_location() },
                    libc::ERANGE,
                    "exp({x})"
                );
            }
        }
    }
}
