//! Writes the linker script that starts `exp` on a cache line of its own, and hands its path to
//! the packages that link this one (`DEP_TESSERA_LIBM_EXP_LD` in their build scripts), which
//! pass it to the linker of their programs: the executor, whose `exp` cells call for every
//! record, and the plain loop it is measured against.
//!
//! `exp`'s code is the same in every build, but where the linker happens to put it is not: 48
//! bytes into a 64-byte line, the same instructions made LR's steady iterations 10% slower than
//! at a line's start (BENCHMARKS.md, "Where the executor's `exp` lands"). Stable Rust cannot
//! align a function; a script added to the linker's default one (`INSERT`) can align the
//! section that holds it.

fn main() {
    let script =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("exp.ld");
    std::fs::write(
        &script,
        "SECTIONS { .text.exp : ALIGN(64) { *(.text.exp) } } INSERT BEFORE .text;\n",
    )
    .expect("OUT_DIR is writable");
    println!("cargo:exp_ld={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
}
