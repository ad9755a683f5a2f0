//! Where an executor runs and what it is told: its sandbox directory under the agent's work
//! directory, and the environment variables that name it. Recovery reads those variables back
//! from `/proc` to find an executor its checkpoint does not name (`orphans`).

use std::path::{Path, PathBuf};

/// The sandbox of an executor under an agent's work directory:
/// `WORK_DIR/frameworks/<framework>/executors/<executor>`.
pub(crate) fn sandbox_in(work_dir: &Path, framework_id: &str, executor_id: &str) -> PathBuf {
    work_dir
        .join("frameworks")
        .join(framework_id)
        .join("executors")
        .join(executor_id)
}

/// The variables through which the agent tells an executor who and where it is.
pub(crate) mod env {
    /// The executor's framework id.
    pub const FRAMEWORK_ID: &str = "TESSERA_FRAMEWORK_ID";
    /// The executor's id within its framework.
    pub const EXECUTOR_ID: &str = "TESSERA_EXECUTOR_ID";
    /// Its sandbox directory, its working directory.
    pub const SANDBOX: &str = "TESSERA_SANDBOX";
    /// The CPUs it was launched with.
    pub const CPUS: &str = "TESSERA_EXECUTOR_CPUS";
    /// The memory it was launched with, in MiB.
    pub const MEM_MB: &str = "TESSERA_EXECUTOR_MEM_MB";
    /// The agent's ports it was given, as ranges.
    pub const PORTS: &str = "TESSERA_EXECUTOR_PORTS";
}
