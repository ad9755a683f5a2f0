//! What an agent offers and where it talks.

use crate::isolation::IsolationConfig;
use crate::recovery::RecoverMode;
use std::path::{Path, PathBuf};
use tessera_credentials::Credential;

/// What the agent offers and where it talks.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The master's "host:port", or `zk://HOST:PORT,.../PATH` to follow the masters' leader.
    pub master: String,
    /// CPUs offered to frameworks.
    pub cpus: f64,
    /// Memory offered to frameworks, in MiB.
    pub mem_mb: u64,
    /// Disk, ports and custom scalars offered besides (`--disk-mb`, `--ports`,
    /// `--resources`).
    pub extras: tessera_allocator::Extras,
    /// CPUs and memory reserved for roles, on top of `cpus` and `mem_mb` (`--resources
    /// "cpus(ROLE):N;mem(ROLE):M"`).
    pub reserved: std::collections::BTreeMap<String, tessera_allocator::Resources>,
    /// Shown in offers, for frameworks' constraints (`--attributes rack:r1;zone:z1`).
    pub attributes: Vec<tessera_allocator::Attribute>,
    /// Executors' sandboxes go under `work_dir/frameworks/`.
    pub work_dir: PathBuf,
    /// A memory-backed directory (tmpfs) where executors keep the cached partitions that
    /// outlive them (`--memory-dir`, `/dev/shm` by default); `None`: they keep them in their
    /// own memory, lost with them.
    pub memory_dir: Option<PathBuf>,
    /// The host name shown in offers.
    pub hostname: String,
    /// The HOST:PORT the master should dial (default: the bound address, or
    /// the host name when bound to every interface).
    pub advertise_address: Option<String>,
    /// The agent's identity (an agent certificate of the cluster's CA).
    pub credential: Credential,
    /// How to isolate executors.
    pub isolation: IsolationConfig,
    /// What to do with the executors of a checkpoint found at start (`--recover`).
    pub recover: RecoverMode,
    /// Executors of a checkpoint older than this are killed at start (`--recovery-timeout-s`).
    pub recovery_timeout: std::time::Duration,
}

/// Where executors keep the cached partitions that outlive them, as `--memory-dir` says: `none`
/// for nowhere, a directory, or by default `/dev/shm` where the machine has it.
pub fn memory_dir_from_flag(flag: Option<&str>) -> Option<PathBuf> {
    match flag {
        Some("none") => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => Some(PathBuf::from("/dev/shm")).filter(|dir| dir.is_dir()),
    }
}

/// This agent's directory under `memory_dir`: named after its work directory, so that an
/// agent restarted on the same work directory finds (and cleans) what its executors left, and
/// agents of one machine never share one.
pub(crate) fn memory_root(memory_dir: &Path, work_dir: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let work_dir = work_dir
        .canonicalize()
        .unwrap_or_else(|_| work_dir.to_path_buf());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    work_dir.hash(&mut hasher);
    memory_dir.join(format!("tessera-agent-{:016x}", hasher.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_dir_is_none_a_directory_or_dev_shm_where_there_is_one() {
        assert_eq!(memory_dir_from_flag(Some("none")), None);
        assert_eq!(
            memory_dir_from_flag(Some("/mnt/ram")),
            Some(PathBuf::from("/mnt/ram"))
        );
        let default = memory_dir_from_flag(None);
        assert_eq!(default.is_some(), Path::new("/dev/shm").is_dir());
    }

    #[test]
    fn each_work_directory_has_a_memory_root_of_its_own() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let shm = Path::new("/dev/shm");
        assert_eq!(memory_root(shm, a.path()), memory_root(shm, a.path()));
        assert_ne!(memory_root(shm, a.path()), memory_root(shm, b.path()));
        assert!(memory_root(shm, a.path()).starts_with(shm));
    }
}
