//! How the agent isolates what it launches (Mesos' isolators): which mode it runs in, chosen
//! once at start from what the machine offers, and, per executor, a [`Container`] that limits
//! it, reads back what it uses and tells when it went past its memory.
//!
//! * **cgroups-v2** ([`cgroups_v2`]): a cgroup per executor under the agent's own cgroup;
//!   `cpu.max` from its CPUs, `memory.max` from its memory, `pids.max`. The kernel enforces all
//!   three; usage comes from `memory.current` and `cpu.stat`, and `memory.events` tells an OOM
//!   kill apart from any other death.
//! * **posix**: when no cgroup v2 with the cpu, memory and pids controllers is writable.
//!   rlimits for what rlimits can do ([`posix`]: no core files, a bounded number of open
//!   files); memory is enforced by the agent, which reads the resident memory of the
//!   executor's process tree from `/proc` ([`procfs`]) every [`WATCH_INTERVAL`] and kills it
//!   past its limit (Mesos' posix/mem isolator with its watchers). CPU is not enforced in this
//!   mode: executors share the machine's CPUs.
//!
//! `--isolation auto` (the default) takes cgroups-v2 when it can and posix otherwise;
//! `--isolation cgroups` refuses to start without cgroups; `--isolation posix` never uses them.
//! The mode goes to the master at registration and is shown by `tessera cluster status`.
//!
//! Both modes apply the same rlimits (see [`posix::rlimits`]). cgroup v1 hierarchies are not
//! used: a hybrid host (v1 controllers, a v2 mount without them) runs in posix mode.

pub mod cgroups_v2;
pub mod posix;
pub mod procfs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cgroups_v2::{CgroupContainer, CgroupsV2};
use posix::ChildSetup;

/// How often a running executor's usage is read (and, in posix mode, its memory checked).
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// The default `pids.max` of an executor's cgroup.
pub const DEFAULT_PIDS_MAX: u64 = 4096;
/// The cgroup v2 controllers the cgroups mode needs.
pub const REQUIRED_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// What `--isolation` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IsolationChoice {
    /// cgroups v2 when available and writable, else posix.
    #[default]
    Auto,
    /// cgroups v2, or refuse to start.
    Cgroups,
    /// rlimits and memory watched from /proc.
    Posix,
}

impl std::str::FromStr for IsolationChoice {
    type Err = IsolationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cgroups" => Ok(Self::Cgroups),
            "posix" => Ok(Self::Posix),
            other => Err(IsolationError::UnknownChoice(other.to_string())),
        }
    }
}

/// The isolation an agent runs its executors in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationMode {
    /// A cgroup v2 per executor, whose `cpu.max`, `memory.max` and `pids.max` the kernel enforces.
    CgroupsV2,
    /// rlimits, and memory watched by the agent from `/proc`; CPU is not limited.
    Posix,
}

impl std::fmt::Display for IsolationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CgroupsV2 => "cgroups-v2",
            Self::Posix => "posix",
        })
    }
}

/// The agent's isolation settings (its flags).
#[derive(Clone, Debug)]
pub struct IsolationConfig {
    /// The mode asked for (`--isolation`).
    pub choice: IsolationChoice,
    /// An existing cgroup v2 directory the agent creates its cgroups under (default: the
    /// cgroup2 mount point).
    pub cgroups_root: Option<PathBuf>,
    /// `pids.max` of each executor's cgroup.
    pub pids_max: u64,
}

impl Default for IsolationConfig {
    fn default() -> Self {
        IsolationConfig {
            choice: IsolationChoice::Auto,
            cgroups_root: None,
            pids_max: DEFAULT_PIDS_MAX,
        }
    }
}

/// Isolation that cannot be set up. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    /// `--isolation` names none of `auto`, `cgroups` and `posix`; holds what it names.
    #[error("--isolation {0:?} is not a mode; use auto, cgroups or posix")]
    UnknownChoice(String),
    /// `--isolation cgroups` was asked for, but cgroups v2 cannot be used here; holds why.
    #[error(
        "--isolation cgroups: {0}; run with --isolation posix (or auto), or give --cgroups-root \
         a writable cgroup v2 directory whose cgroup.controllers lists cpu, memory and pids"
    )]
    CgroupsUnavailable(CgroupsMissing),
    /// Making a cgroup (the agent's, a framework's or an executor's) or writing one of its
    /// control files failed.
    #[error(
        "cannot set up the cgroup {path}: {source}; check that the agent may write there \
         (root, or a delegated cgroup), or run it with --isolation posix"
    )]
    Cgroup {
        /// The cgroup directory, or the control file in it (e.g. `memory.max`), that could not
        /// be made or written.
        path: PathBuf,
        /// The I/O error from making or writing it.
        source: std::io::Error,
    },
}

/// Why cgroups v2 cannot be used here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CgroupsMissing {
    /// `/proc/self/mountinfo` shows no cgroup2 mount and no `--cgroups-root` was given.
    #[error("no cgroup2 file system is mounted")]
    NotMounted,
    /// The cgroup v2 directory does not offer every controller of [`REQUIRED_CONTROLLERS`].
    #[error(
        "the cgroup v2 directory {root} lacks the {missing} controller(s) (it offers: {offered})"
    )]
    Controllers {
        /// The cgroup v2 directory looked at (the cgroup2 mount point or `--cgroups-root`).
        root: PathBuf,
        /// The required controllers it lacks, comma-separated.
        missing: String,
        /// The controllers its `cgroup.controllers` lists, comma-separated, or `none`.
        offered: String,
    },
    /// The agent may not write the directory or its `cgroup.subtree_control`.
    #[error("the agent may not create cgroups in {root}")]
    NotWritable {
        /// The cgroup v2 directory looked at (the cgroup2 mount point or `--cgroups-root`).
        root: PathBuf,
    },
}

/// What the agent found of cgroup v2 on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupProbe {
    /// The directory cgroups would go under, if a cgroup2 file system is mounted.
    pub root: Option<PathBuf>,
    /// The controllers listed in its `cgroup.controllers`.
    pub controllers: Vec<String>,
    /// Whether the agent may write its `cgroup.subtree_control` and make directories there.
    pub writable: bool,
}

/// Looks at the machine: the cgroup2 mount (from `/proc/self/mountinfo`) or `root`, its
/// controllers, and whether this process may write there.
pub fn probe(root: Option<&Path>) -> CgroupProbe {
    let root = root.map(Path::to_path_buf).or_else(|| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|text| cgroup2_mount(&text))
    });
    let Some(root) = root else {
        return CgroupProbe {
            root: None,
            controllers: Vec::new(),
            writable: false,
        };
    };
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers"))
        .map(|t| t.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let writable = writable(&root) && writable(&root.join("cgroup.subtree_control"));
    CgroupProbe {
        root: Some(root),
        controllers,
        writable,
    }
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path; access only reads it.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// The mount point of the first cgroup2 file system in a `/proc/self/mountinfo` text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPER_OPTIONS"
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mount_point = left.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

/// Decides the mode from the flag and what was probed.
pub fn choose(
    choice: IsolationChoice,
    probe: &CgroupProbe,
) -> Result<IsolationMode, IsolationError> {
    let usable = cgroups_usable(probe);
    match (choice, usable) {
        (IsolationChoice::Posix, _) => Ok(IsolationMode::Posix),
        (IsolationChoice::Cgroups, Err(missing)) => {
            Err(IsolationError::CgroupsUnavailable(missing))
        }
        (IsolationChoice::Auto, Err(missing)) => {
            tracing::info!("not isolating with cgroups: {missing}");
            Ok(IsolationMode::Posix)
        }
        (_, Ok(())) => Ok(IsolationMode::CgroupsV2),
    }
}

fn cgroups_usable(probe: &CgroupProbe) -> Result<(), CgroupsMissing> {
    let root = probe.root.clone().ok_or(CgroupsMissing::NotMounted)?;
    let missing: Vec<&str> = REQUIRED_CONTROLLERS
        .into_iter()
        .filter(|c| !probe.controllers.iter().any(|have| have == c))
        .collect();
    if !missing.is_empty() {
        return Err(CgroupsMissing::Controllers {
            root,
            missing: missing.join(", "),
            offered: if probe.controllers.is_empty() {
                "none".into()
            } else {
                probe.controllers.join(", ")
            },
        });
    }
    if !probe.writable {
        return Err(CgroupsMissing::NotWritable { root });
    }
    Ok(())
}

/// What an executor was given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// The CPUs it was given: its `cpu.max` quota in cgroups mode (0: no limit); not
    /// enforced in posix mode.
    pub cpus: f64,
    /// 0: no memory limit.
    pub mem_mb: u64,
}

/// What an executor uses.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Memory in use, in bytes: its cgroup's `memory.current`, or in posix mode the resident
    /// sets of its process tree.
    pub memory_bytes: u64,
    /// CPU time used since it started, in seconds: `usage_usec` of its cgroup's `cpu.stat`, or
    /// in posix mode the user and system time of its process tree.
    pub cpu_seconds: f64,
}

/// An executor went past what it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Limitation {
    /// It used more memory than it was given: the OOM killer acted in its cgroup, or, in posix
    /// mode, the resident memory of its process tree went past its limit.
    #[error("memory limit {limit_mb} MiB exceeded")]
    Memory {
        /// The memory it was given, in MiB.
        limit_mb: u64,
    },
}

/// Whether `memory_bytes` in use is past a limit of `limit_mb` MiB (0: no limit).
pub fn memory_exceeded(memory_bytes: u64, limit_mb: u64) -> bool {
    limit_mb > 0 && memory_bytes > limit_mb.saturating_mul(1 << 20)
}

/// The agent's isolator: sets up a [`Container`] for each executor.
pub enum Isolator {
    /// cgroups v2: each executor in a cgroup of its own under the agent's cgroup.
    CgroupsV2(CgroupsV2),
    /// posix: rlimits, and each executor's memory watched from `/proc`.
    Posix,
}

impl Isolator {
    /// Chooses the mode (see [`choose`]) and, for cgroups, makes the agent's cgroup
    /// `ROOT/tessera-agent-PID`.
    pub fn new(config: &IsolationConfig) -> Result<Isolator, IsolationError> {
        let probe = probe(config.cgroups_root.as_deref());
        Ok(match choose(config.choice, &probe)? {
            IsolationMode::Posix => Isolator::Posix,
            IsolationMode::CgroupsV2 => {
                let root = probe.root.expect("cgroups are usable only with a root");
                let name = format!("tessera-agent-{}", std::process::id());
                Isolator::CgroupsV2(CgroupsV2::create(&root, &name, config.pids_max)?)
            }
        })
    }

    /// The mode the agent isolates the executors it launches in (sent to the master at
    /// registration).
    pub fn mode(&self) -> IsolationMode {
        match self {
            Isolator::CgroupsV2(_) => IsolationMode::CgroupsV2,
            Isolator::Posix => IsolationMode::Posix,
        }
    }

    /// Sets up the container of an executor about to start.
    pub fn prepare(
        &self,
        framework_id: &str,
        executor_id: &str,
        limits: Limits,
    ) -> Result<Container, IsolationError> {
        Ok(match self {
            Isolator::CgroupsV2(c) => {
                Container::Cgroup(c.prepare(framework_id, executor_id, limits)?)
            }
            Isolator::Posix => Container::posix(limits),
        })
    }

    /// The container of an executor recovered from the agent's checkpoint: its cgroup if it
    /// had one that is still there (whatever this agent's mode: the kernel enforces its
    /// limits), else posix watching of its process tree from `/proc`.
    pub fn recover(&self, cgroup: Option<&Path>, limits: Limits) -> Container {
        let recovered = cgroup.and_then(|dir| match self {
            Isolator::CgroupsV2(c) => c.recover(dir, limits),
            // An agent restarted in posix mode reads the cgroup all the same.
            Isolator::Posix => cgroups_v2::recover(dir, limits, None),
        });
        match recovered {
            Some(c) => Container::Cgroup(c),
            None => {
                if let Some(dir) = cgroup {
                    tracing::warn!(cgroup = %dir.display(), "a recovered executor's cgroup is gone; watching its memory from /proc");
                }
                Container::posix(limits)
            }
        }
    }

    /// Removes the agent's own cgroup (when it stops; best effort).
    pub fn close(&self) {
        if let Isolator::CgroupsV2(c) = self {
            c.remove();
        }
    }
}

/// One executor's isolation.
pub enum Container {
    /// The executor runs in this cgroup, whose limits the kernel enforces.
    Cgroup(CgroupContainer),
    /// The executor runs with rlimits only; the agent checks its memory from `/proc`.
    Posix {
        /// What the executor was given; its memory is checked against `mem_mb`.
        limits: Limits,
        /// Its processes, as the last reads found them.
        tree: procfs::ProcessTree,
    },
}

impl Container {
    /// A container of posix mode, limited to `limits`.
    fn posix(limits: Limits) -> Container {
        Container::Posix {
            limits,
            tree: procfs::ProcessTree::default(),
        }
    }

    /// Its cgroup directory, in cgroups mode (checkpointed, to find it again).
    pub fn cgroup_path(&self) -> Option<PathBuf> {
        match self {
            Container::Cgroup(c) => Some(c.path().to_path_buf()),
            Container::Posix { .. } => None,
        }
    }

    /// How it is isolated.
    pub fn mode(&self) -> IsolationMode {
        match self {
            Container::Cgroup(_) => IsolationMode::CgroupsV2,
            Container::Posix { .. } => IsolationMode::Posix,
        }
    }

    /// What the forked child does before it runs the executor's program.
    pub fn child_setup(&self) -> std::io::Result<ChildSetup> {
        let cgroup_procs = match self {
            Container::Cgroup(c) => Some(c.open_procs()?),
            Container::Posix { .. } => None,
        };
        Ok(ChildSetup::new(cgroup_procs))
    }

    /// What the executor (whose process group leader is `pid`) uses now.
    pub fn usage(&self, pid: i32) -> Usage {
        match self {
            Container::Cgroup(c) => c.usage(),
            Container::Posix { tree, .. } => tree.usage(pid),
        }
    }

    /// Whether the executor went past its limits, given what it uses now (posix: the agent
    /// enforces memory) or what the kernel recorded (cgroups: an OOM kill).
    pub fn limitation(&self, usage: &Usage) -> Option<Limitation> {
        match self {
            Container::Cgroup(c) => c.oom_killed().then_some(Limitation::Memory {
                limit_mb: c.limits().mem_mb,
            }),
            Container::Posix { limits, .. } => memory_exceeded(usage.memory_bytes, limits.mem_mb)
                .then_some(Limitation::Memory {
                    limit_mb: limits.mem_mb,
                }),
        }
    }

    /// Whether the kernel killed it for its memory (cgroups: an OOM kill; posix mode knows
    /// only what [`Container::limitation`] saw while it ran).
    pub fn limitation_at_exit(&self) -> Option<Limitation> {
        match self {
            Container::Cgroup(_) => self.limitation(&Usage::default()),
            Container::Posix { .. } => None,
        }
    }

    /// Kills whatever is left in the container and removes it; the executor's process group
    /// has been killed already.
    pub async fn destroy(&self) {
        if let Container::Cgroup(c) = self {
            c.kill_all();
            for _ in 0..40 {
                match c.remove() {
                    Ok(()) => return,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            if let Err(e) = c.remove() {
                tracing::warn!(cgroup = %c.path().display(), error = %e, "cannot remove an executor's cgroup");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_of(root: Option<&str>, controllers: &str, writable: bool) -> CgroupProbe {
        CgroupProbe {
            root: root.map(PathBuf::from),
            controllers: controllers.split_whitespace().map(String::from).collect(),
            writable,
        }
    }

    #[test]
    fn auto_takes_cgroups_only_with_the_three_controllers_writable() {
        use IsolationChoice::*;
        let full = probe_of(Some("/sys/fs/cgroup"), "cpuset cpu io memory pids", true);
        assert_eq!(choose(Auto, &full).unwrap(), IsolationMode::CgroupsV2);
        assert_eq!(choose(Cgroups, &full).unwrap(), IsolationMode::CgroupsV2);
        assert_eq!(choose(Posix, &full).unwrap(), IsolationMode::Posix);

        // A hybrid host: the v2 mount has only hugetlb.
        let hybrid = probe_of(Some("/sys/fs/cgroup/unified"), "hugetlb", true);
        assert_eq!(choose(Auto, &hybrid).unwrap(), IsolationMode::Posix);
        let err = choose(Cgroups, &hybrid).unwrap_err().to_string();
        assert!(
            err.contains("lacks the cpu, memory, pids controller(s) (it offers: hugetlb)"),
            "{err}"
        );
        assert!(err.contains("--isolation posix"), "{err}");

        let read_only = probe_of(Some("/sys/fs/cgroup"), "cpu memory pids", false);
        assert_eq!(choose(Auto, &read_only).unwrap(), IsolationMode::Posix);
        assert!(
            choose(Cgroups, &read_only)
                .unwrap_err()
                .to_string()
                .contains("may not create cgroups in /sys/fs/cgroup")
        );
        let none = probe_of(None, "", false);
        assert_eq!(choose(Auto, &none).unwrap(), IsolationMode::Posix);
        assert!(matches!(
            choose(Cgroups, &none),
            Err(IsolationError::CgroupsUnavailable(
                CgroupsMissing::NotMounted
            ))
        ));
    }

    #[test]
    fn the_flag_parses_and_the_mode_prints_as_status_shows_it() {
        assert_eq!(
            "auto".parse::<IsolationChoice>().unwrap(),
            IsolationChoice::Auto
        );
        assert_eq!(
            "cgroups".parse::<IsolationChoice>().unwrap(),
            IsolationChoice::Cgroups
        );
        assert_eq!(
            "posix".parse::<IsolationChoice>().unwrap(),
            IsolationChoice::Posix
        );
        assert!("v1".parse::<IsolationChoice>().is_err());
        assert_eq!(IsolationMode::CgroupsV2.to_string(), "cgroups-v2");
        assert_eq!(IsolationMode::Posix.to_string(), "posix");
    }

    #[test]
    fn the_cgroup2_mount_is_found_in_mountinfo() {
        let hybrid = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_mount("1 0 0:1 / / rw - ext4 /dev/sda rw"), None);
    }

    #[test]
    fn memory_is_exceeded_only_past_a_set_limit() {
        assert!(!memory_exceeded(128 << 20, 128));
        assert!(memory_exceeded((128 << 20) + 1, 128));
        assert!(!memory_exceeded(u64::MAX, 0), "0 is no limit");
        assert_eq!(
            Limitation::Memory { limit_mb: 1024 }.to_string(),
            "memory limit 1024 MiB exceeded"
        );
    }

    #[test]
    fn posix_containers_enforce_memory_from_usage() {
        let c = Container::posix(Limits {
            cpus: 1.0,
            mem_mb: 64,
        });
        let under = Usage {
            memory_bytes: 10 << 20,
            cpu_seconds: 0.0,
        };
        let over = Usage {
            memory_bytes: 65 << 20,
            cpu_seconds: 0.0,
        };
        assert_eq!(c.limitation(&under), None);
        assert_eq!(
            c.limitation(&over),
            Some(Limitation::Memory { limit_mb: 64 })
        );
    }
}
