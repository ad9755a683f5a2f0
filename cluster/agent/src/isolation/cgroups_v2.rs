//! cgroups v2 isolation: the agent's cgroup `ROOT/tessera-agent-PID/`, and under it one cgroup
//! per executor, `FRAMEWORK/EXECUTOR/`, limited by `cpu.max` (its CPUs as a quota per 100 ms
//! period), `memory.max` (its memory; `memory.oom.group` so an OOM kill takes the whole
//! executor) and `pids.max`. The child joins its cgroup before it runs the program (it writes
//! 0, "myself", to `cgroup.procs`, opened by the agent), so nothing it starts escapes.
//!
//! Usage is read back from `memory.current` and `cpu.stat`; a non-zero `oom_kill` in
//! `memory.events` tells that the kernel killed it for its memory. Everything here is plain
//! file I/O on the cgroup directory, so it is tested against a directory tree that looks like
//! one.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::{IsolationError, Limits, REQUIRED_CONTROLLERS, Usage};

/// The `cpu.max` period, in microseconds (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel takes, in microseconds.
const MIN_CPU_QUOTA_US: u64 = 1_000;

/// `cpu.max` for `cpus` CPUs: "QUOTA PERIOD", or "max PERIOD" without a limit.
pub fn cpu_max(cpus: f64) -> String {
    if cpus.is_finite() && cpus > 0.0 {
        let quota = ((cpus * CPU_PERIOD_US as f64).round() as u64).max(MIN_CPU_QUOTA_US);
        format!("{quota} {CPU_PERIOD_US}")
    } else {
        format!("max {CPU_PERIOD_US}")
    }
}

/// `memory.max` for `mem_mb` MiB: bytes, or "max" for 0 (no limit).
pub fn memory_max(mem_mb: u64) -> String {
    if mem_mb == 0 {
        "max".into()
    } else {
        mem_mb.saturating_mul(1 << 20).to_string()
    }
}

/// The value of `key` in a flat-keyed cgroup file ("key value" lines: `cpu.stat`,
/// `memory.events`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == key).then(|| words.next()?.parse().ok())?
    })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IsolationError + '_ {
    move |source| IsolationError::Cgroup {
        path: path.to_path_buf(),
        source,
    }
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), IsolationError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(io_error(&path))
}

/// Lets the cgroups under `dir` use the controllers Tessera needs.
fn enable_controllers(dir: &Path) -> Result<(), IsolationError> {
    let wanted: Vec<String> = REQUIRED_CONTROLLERS
        .iter()
        .map(|c| format!("+{c}"))
        .collect();
    write(dir, "cgroup.subtree_control", &wanted.join(" "))
}

/// Makes `dir` (a cgroup) if it is not there, with controllers for its children when
/// `parent_of_more`.
fn make(dir: &Path, parent_of_more: bool) -> Result<(), IsolationError> {
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_error(dir)(e)),
    }
    if parent_of_more {
        enable_controllers(dir)?;
    }
    Ok(())
}

/// The agent's cgroup, under which its executors' cgroups go.
pub struct CgroupsV2 {
    base: PathBuf,
    pids_max: u64,
}

impl CgroupsV2 {
    /// Makes `root/name` with the cpu, memory and pids controllers enabled for its children.
    pub fn create(root: &Path, name: &str, pids_max: u64) -> Result<CgroupsV2, IsolationError> {
        enable_controllers(root)?;
        let base = root.join(name);
        make(&base, true)?;
        tracing::info!(cgroup = %base.display(), "isolating executors with cgroups v2");
        Ok(CgroupsV2 { base, pids_max })
    }

    /// The agent's cgroup.
    pub fn path(&self) -> &Path {
        &self.base
    }

    /// Makes the executor's cgroup `FRAMEWORK/EXECUTOR` and writes its limits.
    pub fn prepare(
        &self,
        framework_id: &str,
        executor_id: &str,
        limits: Limits,
    ) -> Result<CgroupContainer, IsolationError> {
        let framework = self.base.join(framework_id);
        make(&framework, true)?;
        let dir = framework.join(executor_id);
        make(&dir, false)?;
        write(&dir, "cpu.max", &cpu_max(limits.cpus))?;
        write(&dir, "memory.max", &memory_max(limits.mem_mb))?;
        write(&dir, "pids.max", &self.pids_max.to_string())?;
        // Older kernels have no memory.oom.group: the OOM killer then takes one process, and
        // the agent kills the rest when it sees the OOM kill.
        let _ = write(&dir, "memory.oom.group", "1");
        Ok(CgroupContainer {
            dir,
            limits,
            old_agent_cgroup: None,
        })
    }

    /// The cgroup `dir` of an executor an earlier run of the agent launched; see [`recover`].
    pub fn recover(&self, dir: &Path, limits: Limits) -> Option<CgroupContainer> {
        recover(dir, limits, Some(&self.base))
    }

    /// Removes the agent's cgroup and its (empty) framework cgroups.
    pub fn remove(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.base) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&self.base);
    }
}

/// The cgroup `dir` of an executor an earlier run of the agent launched (its checkpoint names
/// it), if it is still there: its limits are the kernel's already. When it is removed, so are
/// its framework's cgroup and the earlier agent's, once empty — unless that is
/// `current_agent`, the cgroup of the agent running now.
pub fn recover(
    dir: &Path,
    limits: Limits,
    current_agent: Option<&Path>,
) -> Option<CgroupContainer> {
    if !dir.join("cgroup.procs").exists() {
        return None;
    }
    let old_agent = dir.parent().and_then(Path::parent);
    Some(CgroupContainer {
        dir: dir.to_path_buf(),
        limits,
        old_agent_cgroup: old_agent
            .filter(|old| Some(*old) != current_agent)
            .map(Path::to_path_buf),
    })
}

/// One executor's cgroup.
pub struct CgroupContainer {
    dir: PathBuf,
    limits: Limits,
    /// The cgroup of the agent's earlier run, for an executor recovered from it: removed,
    /// with the executor's framework cgroup, when empty.
    old_agent_cgroup: Option<PathBuf>,
}

impl CgroupContainer {
    /// The executor's cgroup directory, `AGENT_CGROUP/FRAMEWORK/EXECUTOR`.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// What the executor was given (for a recovered one, as the checkpoint says).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// `cgroup.procs`, open for the child to write itself in (closed on exec).
    pub fn open_procs(&self) -> std::io::Result<File> {
        OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.procs"))
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    /// Memory in use (`memory.current`) and CPU time (`cpu.stat` usage_usec).
    pub fn usage(&self) -> Usage {
        Usage {
            memory_bytes: self.read("memory.current").trim().parse().unwrap_or(0),
            cpu_seconds: keyed(&self.read("cpu.stat"), "usage_usec").unwrap_or(0) as f64 / 1e6,
        }
    }

    /// Whether the kernel's OOM killer killed something in it (`memory.events` oom_kill).
    pub fn oom_killed(&self) -> bool {
        keyed(&self.read("memory.events"), "oom_kill").unwrap_or(0) > 0
    }

    /// SIGKILLs everything in it: `cgroup.kill` where the kernel has it, else each process
    /// listed in `cgroup.procs`.
    pub fn kill_all(&self) {
        if self.dir.join("cgroup.kill").exists()
            && std::fs::write(self.dir.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for pid in self.read("cgroup.procs").lines() {
            if let Ok(pid) = pid.trim().parse::<i32>()
                && pid > 0
            {
                // SAFETY: a plain syscall on a pid from the cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    /// Removes the cgroup (fails while processes are still in it); for a recovered executor,
    /// its framework's and the earlier agent's cgroups too once they are empty.
    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_dir(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        if let Some(old_agent) = &self.old_agent_cgroup {
            if let Some(framework) = self.dir.parent() {
                let _ = std::fs::remove_dir(framework);
            }
            let _ = std::fs::remove_dir(old_agent);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory laid out as a cgroup v2 root that offers cpu, memory and pids.
    fn fake_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cgroup.controllers"),
            "cpu io memory pids\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("cgroup.subtree_control"), "").unwrap();
        dir
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn limits_are_written_as_the_kernel_reads_them() {
        assert_eq!(cpu_max(1.0), "100000 100000");
        assert_eq!(cpu_max(2.5), "250000 100000");
        assert_eq!(cpu_max(0.001), "1000 100000", "the kernel's smallest quota");
        assert_eq!(cpu_max(0.0), "max 100000");
        assert_eq!(memory_max(128), "134217728");
        assert_eq!(memory_max(0), "max");
        let events = "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(1));
        assert_eq!(keyed(events, "oom"), Some(1));
        assert_eq!(keyed(events, "missing"), None);
    }

    #[test]
    fn an_executor_gets_a_cgroup_with_its_limits() {
        let root = fake_root();
        let agent = CgroupsV2::create(root.path(), "tessera-agent-1", 512).unwrap();
        assert_eq!(
            read(&root.path().join("cgroup.subtree_control")),
            "+cpu +memory +pids"
        );
        assert_eq!(
            read(&agent.path().join("cgroup.subtree_control")),
            "+cpu +memory +pids"
        );
        let limits = Limits {
            cpus: 1.5,
            mem_mb: 1024,
        };
        let c = agent.prepare("F0", "e1", limits).unwrap();
        assert_eq!(c.path(), agent.path().join("F0").join("e1"));
        assert_eq!(
            read(&agent.path().join("F0").join("cgroup.subtree_control")),
            "+cpu +memory +pids"
        );
        assert_eq!(read(&c.path().join("cpu.max")), "150000 100000");
        assert_eq!(
            read(&c.path().join("memory.max")),
            (1024u64 << 20).to_string()
        );
        assert_eq!(read(&c.path().join("pids.max")), "512");
        assert_eq!(read(&c.path().join("memory.oom.group")), "1");
        // A second executor of the framework shares its framework's cgroup.
        agent.prepare("F0", "e2", limits).unwrap();
    }

    #[test]
    fn usage_and_oom_kills_are_read_back() {
        let root = fake_root();
        let agent = CgroupsV2::create(root.path(), "a", 64).unwrap();
        let c = agent
            .prepare(
                "F0",
                "e1",
                Limits {
                    cpus: 1.0,
                    mem_mb: 128,
                },
            )
            .unwrap();
        std::fs::write(c.path().join("memory.current"), "52428800\n").unwrap();
        std::fs::write(
            c.path().join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        )
        .unwrap();
        assert_eq!(
            c.usage(),
            Usage {
                memory_bytes: 50 << 20,
                cpu_seconds: 2.5
            }
        );
        std::fs::write(c.path().join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
        assert!(!c.oom_killed());
        std::fs::write(c.path().join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert!(c.oom_killed());
        let container = super::super::Container::Cgroup(c);
        assert_eq!(
            container
                .limitation(&Usage::default())
                .map(|l| l.to_string()),
            Some("memory limit 128 MiB exceeded".to_string())
        );
    }

    #[test]
    fn a_recovered_cgroup_is_read_again_and_takes_the_earlier_agents_cgroup_with_it() {
        let root = fake_root();
        let limits = Limits {
            cpus: 1.0,
            mem_mb: 128,
        };
        let old = CgroupsV2::create(root.path(), "tessera-agent-1", 64).unwrap();
        let launched = old.prepare("F0", "e1", limits).unwrap();
        std::fs::write(launched.path().join("cgroup.procs"), "4242\n").unwrap();
        std::fs::write(launched.path().join("memory.current"), "1048576\n").unwrap();
        // The agent restarted: a new agent cgroup, the executor's found again by its path.
        let new = CgroupsV2::create(root.path(), "tessera-agent-2", 64).unwrap();
        let c = new.recover(launched.path(), limits).expect("still there");
        assert_eq!(c.usage().memory_bytes, 1 << 20);
        assert!(
            new.recover(&old.path().join("F0/gone"), limits).is_none(),
            "a cgroup that is gone is not recovered"
        );
        // Emptied (a real cgroup's files go with it), it goes, and the earlier agent's too.
        for entry in std::fs::read_dir(c.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        std::fs::remove_file(old.path().join("F0/cgroup.subtree_control")).unwrap();
        std::fs::remove_file(old.path().join("cgroup.subtree_control")).unwrap();
        c.remove().unwrap();
        assert!(
            !old.path().exists(),
            "the earlier agent's cgroup is removed"
        );
        assert!(new.path().exists(), "the running agent's stays");
        // One recovered under the running agent's own cgroup never removes it.
        let own = new.prepare("F1", "e2", limits).unwrap();
        std::fs::write(own.path().join("cgroup.procs"), "").unwrap();
        let again = recover(own.path(), limits, Some(new.path())).unwrap();
        assert!(again.old_agent_cgroup.is_none());
    }

    #[test]
    fn the_child_writes_itself_into_cgroup_procs_and_the_cgroup_goes_when_empty() {
        let root = fake_root();
        let agent = CgroupsV2::create(root.path(), "a", 64).unwrap();
        let limits = Limits {
            cpus: 1.0,
            mem_mb: 16,
        };
        let c = agent.prepare("F0", "e1", limits).unwrap();
        std::fs::write(c.path().join("cgroup.procs"), "").unwrap();
        let setup = super::super::Container::Cgroup(agent.prepare("F0", "e1", limits).unwrap())
            .child_setup()
            .unwrap();
        setup.join_cgroup().unwrap();
        assert_eq!(read(&c.path().join("cgroup.procs")), "0");
        // A real cgroup directory goes with its interface files; here they go first.
        for entry in std::fs::read_dir(c.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        c.remove().unwrap();
        assert!(!c.path().exists());
        c.remove().unwrap();
        std::fs::remove_file(agent.path().join("F0").join("cgroup.subtree_control")).unwrap();
        std::fs::remove_file(agent.path().join("cgroup.subtree_control")).unwrap();
        agent.remove();
        assert!(!agent.path().exists());
    }
}
