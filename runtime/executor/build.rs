//! Exports the executor's `exp` (from tessera-libm) in its dynamic symbol table, so that the
//! cell libraries it loads bind their `exp` calls to it rather than to the C library's, and
//! links the executor at a fixed address, so that it starts without relocating itself.

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
        // Linked at a fixed address: as a position-independent executable it carries about
        // 130,000 relocations, which the loader applies at every start, with the page faults
        // of the tables they write (`--help` took 7–15 ms of CPU, now 3). A replacement
        // executor starts while the session's other executors run its tasks. Executors run
        // the session's own code; a randomised base of their executable is not what guards it.
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
