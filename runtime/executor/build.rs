//! Exports the executor's `exp` (from tessera-libm) in its dynamic symbol table, so that the
//! cell libraries it loads bind their `exp` calls to it rather than to the C library's.

fn main() {
    // tessera-libm defines `exp` on glibc only (elsewhere the C library's stays).
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol=exp");
        // `exp` on a cache line of its own (tessera-libm's build script says why).
        let script =
            std::env::var("DEP_TESSERA_LIBM_EXP_LD").expect("tessera-libm's build sets it");
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{script}");
    }
}
