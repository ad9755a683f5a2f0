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
        // Both questions at once: this is on the way to a session's first result.
        let (verbose_version, sysroot) = std::thread::scope(|scope| {
            let sysroot = scope
                .spawn(|| output_of(Command::new(&rustc).args(["--print", "sysroot"]), &rustc));
            let version = output_of(Command::new(&rustc).arg("-vV"), &rustc);
            let sysroot = sysroot.join().unwrap_or_else(|_| {
                Err(CellsError::Toolchain {
                    program: rustc.display().to_string(),
                    reason: "asking it for its sysroot panicked".into(),
                })
            });
            (version, sysroot)
        });
        let (verbose_version, sysroot) = (verbose_version?, sysroot?);
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

impl Toolchain {
    /// The toolchain's `libstd-*.so`, which cell libraries link (executors load it first).
    pub fn libstd(&self) -> Option<PathBuf> {
        std::fs::read_dir(&self.std_lib_dir)
            .ok()?
            .flatten()
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("libstd-") && name.ends_with(".so"))
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
