//! Links the plain loop (`tessera-baseline`) with `exp` on a cache line of its own, as the
//! executors' is (tessera-libm's build script says why), so that where the linker puts `exp`
//! weighs on neither side of the comparison.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        let script =
            std::env::var("DEP_TESSERA_LIBM_EXP_LD").expect("tessera-libm's build sets it");
        println!("cargo:rustc-link-arg-bin=tessera-baseline=-Wl,-T,{script}");
    }
}
