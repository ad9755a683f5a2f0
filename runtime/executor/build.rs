//! Exports the executor's `exp` (from tessera-libm) in its dynamic symbol table, so that the
//! cell libraries it loads bind their `exp` calls to it rather than to the C library's.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol=exp");
}
