//! The Rust toolchain cells are compiled with: rustc, cargo, and the directory of the
//! toolchain's `libstd-*.so`, which cell libraries link dynamically.

use crate::error::CellsError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// rustc and cargo, as found from `RUSTC` / `CARGO` or the `PATH`.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// The compiler.
    pub rustc: PathBuf,
    /// cargo, for building dependencies.
    pub cargo: PathBuf,
    /// `rustc -vV`'s first line: part of every cache key, since libraries built by another
    /// rustc do not fit together.
    pub version: String,
    /// `SYSROOT/lib/rustlib/HOST/lib`, where `libstd-*.so` is.
    pub std_lib_dir: PathBuf,
}

impl Toolchain {
    /// Finds the toolchain and asks rustc its version, host and sysroot.
    pub fn find() -> Result<Toolchain, CellsError> {
        let rustc = PathBuf::from(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
        let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        let verbose_version = output_of(Command::new(&rustc).arg("-vV"), &rustc)?;
        let version = verbose_version
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let host = verbose_version
            .lines()
            .find_map(|line| line.strip_prefix("host: "))
            .unwrap_or("x86_64-unknown-linux-gnu")
            .to_string();
        let sysroot = output_of(Command::new(&rustc).args(["--print", "sysroot"]), &rustc)?;
        let sysroot = Path::new(sysroot.trim());
        let std_lib_dir = sysroot.join("lib/rustlib").join(&host).join("lib");
        // rustup's `rustc` is a proxy that starts the toolchain's: run that one directly, once
        // per cell, unless `RUSTC` names a compiler of its own.
        let direct = sysroot.join("bin/rustc");
        let rustc = if std::env::var_os("RUSTC").is_none() && direct.exists() {
            direct
        } else {
            rustc
        };
        Ok(Toolchain {
            rustc,
            cargo,
            version,
            std_lib_dir,
        })
    }
}

fn output_of(command: &mut Command, program: &Path) -> Result<String, CellsError> {
    let failed = |reason: String| CellsError::Toolchain {
        program: program.display().to_string(),
        reason,
    };
    let output = command.output().map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
