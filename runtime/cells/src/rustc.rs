//! One rustc run for a cell: the library that runs it, or the type probe beside it.
//!
//! The library is a `cdylib` linking the toolchain's libstd dynamically (as executors load
//! it; DESIGN.md, the artifact path) and the dependencies statically, optimised (executors run
//! this code) unless none of its code can reach an executor, without ThinLTO, which on two
//! cores halves the time of a cell with closures against rustc's defaults; in two codegen units
//! or one, as the session chooses ([`Optimisation`]).
//!
//! The probe only type-checks (`--emit=metadata`) and asks for paths in full
//! (`-Z trim-diagnostic-paths=no`, allowed on a stable rustc by `RUSTC_BOOTSTRAP=1` for this
//! one run, which produces no code): `std::collections::HashMap<..>`, not `HashMap<..>`, so the
//! type can be written in a later cell.

use crate::deps::BuiltDependencies;
use crate::diagnostics::{RustcDiagnostic, parse_errors};
use crate::error::CellsError;
use crate::optimisation::Optimisation;
use crate::toolchain::Toolchain;
use std::path::Path;
use std::process::Command;

/// The crate name every cell is compiled with (see [`crate::crate_source`]).
const CRATE_NAME: &str = "ctx";

/// Whether a cell's library is optimised: always when its code may run on executors, not when
/// it cannot (see `engine::optimise`), which compiles a fifth faster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Optimise {
    /// As the session asks ([`crate::EngineConfig::optimisation`]).
    Yes(Optimisation),
    /// [`Optimisation::UNOPTIMISED`].
    No,
}

/// What to build.
pub(crate) enum Output<'a> {
    /// The cell's library, at this path; optimised or not.
    Library(&'a Path, Optimise),
    /// Type-check only.
    Probe,
}

/// Compiles `source_file`; the errors rustc reports, if any.
pub(crate) fn compile(
    toolchain: &Toolchain,
    dependencies: &BuiltDependencies,
    source_file: &Path,
    output: Output<'_>,
) -> Result<Result<(), Vec<RustcDiagnostic>>, CellsError> {
    let mut command = Command::new(&toolchain.rustc);
    command
        .arg(source_file)
        .args(["--edition", "2024", "--crate-name", CRATE_NAME])
        .args(["-C", "metadata=tessera-cells", "-C", "panic=unwind"])
        .args(["-C", "overflow-checks=on", "--error-format=json"])
        .args(&dependencies.search_args)
        .env_remove("RUSTFLAGS");
    for (name, path) in &dependencies.externs {
        command
            .arg("--extern")
            .arg(format!("{name}={}", path.display()));
    }
    match output {
        Output::Library(path, optimise) => {
            let Optimisation {
                opt_level,
                codegen_units,
                inline_threshold,
            } = match optimise {
                Optimise::Yes(optimisation) => optimisation,
                Optimise::No => Optimisation::UNOPTIMISED,
            };
            command
                .args(["--crate-type", "cdylib"])
                .args(["-C", &format!("opt-level={opt_level}")])
                .args(["-C", &format!("codegen-units={codegen_units}")])
                .args(inline_threshold.iter().flat_map(|threshold| {
                    [
                        "-C".to_string(),
                        format!("llvm-args=-inline-threshold={threshold}"),
                    ]
                }))
                .args(["-C", "lto=off", "-C", "prefer-dynamic"])
                .args(["-C", "debuginfo=0", "-C", "strip=debuginfo", "-o"])
                .arg(path);
        }
        Output::Probe => {
            let out = source_file.with_extension("rmeta");
            command
                .args(["--crate-type", "lib", "--emit=metadata", "-o"])
                .arg(out)
                .args(["-Z", "trim-diagnostic-paths=no"])
                .env("RUSTC_BOOTSTRAP", "1");
        }
    }
    let started = std::time::Instant::now();
    let result = command.output().map_err(|e| CellsError::Toolchain {
        program: toolchain.rustc.display().to_string(),
        reason: e.to_string(),
    })?;
    tracing::debug!(elapsed = ?started.elapsed(), file = %source_file.display(), "rustc ran");
    if result.status.success() {
        return Ok(Ok(()));
    }
    let stderr = String::from_utf8_lossy(&result.stderr);
    let errors = parse_errors(&stderr);
    if errors.is_empty() {
        // rustc failed without a diagnostic (the linker, a crash): its words are the error.
        return Err(CellsError::Toolchain {
            program: toolchain.rustc.display().to_string(),
            reason: stderr.trim().to_string(),
        });
    }
    Ok(Err(errors))
}
