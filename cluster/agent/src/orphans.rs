//! Executors running in this agent's sandboxes that its checkpoint does not name (Mesos'
//! orphan containers).
//!
//! The agent checkpoints an executor once its process has started (its pid is known only
//! then), so an agent killed in the few milliseconds between the two comes back without it in
//! its checkpoint while the process runs on. Recovery finds such processes by what the agent
//! gave them: a process-group leader whose `TESSERA_SANDBOX` is the sandbox this work
//! directory gives its own `TESSERA_FRAMEWORK_ID` and `TESSERA_EXECUTOR_ID`. Its environment
//! also holds its CPUs, memory and ports, and `/proc` its start time and cgroup, which is all
//! a checkpoint would have said ([`orphan`]); recovery then treats it as a checkpointed
//! executor ([`crate::recovery::decide`]): adopted within the recovery timeout, killed and
//! reported LOST past it.
//!
//! Where this differs from Mesos: Mesos' agent makes the forked child wait, before exec,
//! until the agent has checkpointed its pid, and destroys orphan containers at recovery.
//! `std`'s `Command::spawn` returns only once the child has exec'd, so the child cannot wait
//! for a checkpoint that needs the pid `spawn` returns; the window is closed at recovery
//! instead, and by adopting rather than destroying: the executor and its cached partitions
//! survive, as they do for an agent killed at any other moment.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::checkpoint::{self, CheckpointedExecutor};
use crate::sandbox::{env, sandbox_in};

/// What `/proc` says of one process.
#[derive(Clone, Debug)]
pub struct ProcessFacts<'a> {
    /// Its pid.
    pub pid: i32,
    /// Its process group (an executor leads its own).
    pub pgrp: i32,
    /// Its start time, in clock ticks after boot.
    pub start_ticks: u64,
    /// `/proc/PID/environ`: `NAME=value` entries, each ended by a NUL byte.
    pub environ: &'a [u8],
    /// Its cgroup v2 directory: the cgroup2 mount point joined with `/proc/PID/cgroup`'s path.
    pub cgroup: Option<PathBuf>,
}

/// The executor a process is, if it is one this work directory's agent launched: it leads
/// its process group, and its environment names a framework, an executor and their sandbox
/// under `work_dir`, with the CPUs and memory of its launch. Its cgroup counts only if it is
/// the executor's own (`…/FRAMEWORK/EXECUTOR`, cgroups mode); in posix mode it runs in the
/// agent's.
pub fn orphan(work_dir: &Path, process: &ProcessFacts) -> Option<CheckpointedExecutor> {
    if process.pid != process.pgrp {
        return None;
    }
    let var = |name: &str| variable(process.environ, name);
    let framework_id = var(env::FRAMEWORK_ID)?;
    let executor_id = var(env::EXECUTOR_ID)?;
    let sandbox = sandbox_in(work_dir, framework_id, executor_id);
    if Path::new(var(env::SANDBOX)?) != sandbox {
        return None;
    }
    let cgroup = (process.cgroup.as_deref())
        .filter(|dir| dir.ends_with(Path::new(framework_id).join(executor_id)))
        .map(|dir| dir.display().to_string())
        .unwrap_or_default();
    let executor = CheckpointedExecutor {
        framework_id: framework_id.to_string(),
        executor_id: executor_id.to_string(),
        pid: process.pid,
        start_ticks: process.start_ticks,
        cpus: var(env::CPUS)?.parse().ok()?,
        mem_mb: var(env::MEM_MB)?.parse().ok()?,
        ports: var(env::PORTS).unwrap_or_default().to_string(),
        sandbox: sandbox.display().to_string(),
        cgroup,
        // Messages reach an executor only through the agent, which checkpoints it within
        // milliseconds of its start: one that is not named can hardly have had any.
        messages: 0,
    };
    checkpoint::check_executor(&executor).ok()?;
    Some(executor)
}

/// The value of `name` in an environment block, if it is there and is UTF-8.
fn variable<'a>(environ: &'a [u8], name: &str) -> Option<&'a str> {
    environ.split(|&b| b == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        std::str::from_utf8(value).ok()
    })
}

/// The executors of this work directory running now that `named` (framework and executor
/// ids, the checkpoint's) leaves out. Processes whose environment this agent may not read
/// are not its executors; nor is one still inside its exec, whose environment reads empty
/// until the kernel has set it up, microseconds against the agent's own restart.
pub(crate) fn find(
    work_dir: &Path,
    named: &BTreeSet<(String, String)>,
) -> Vec<CheckpointedExecutor> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let cgroup_mount = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|m| crate::isolation::cgroup2_mount(&m));
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let dir = entry.path();
        let Some(stat) = std::fs::read_to_string(dir.join("stat")).ok() else {
            continue;
        };
        let Some((pgrp, start_ticks)) = crate::processes::parse_group_and_start(&stat) else {
            continue;
        };
        // Only a group leader can be an executor: skip the rest before reading more.
        if pgrp != pid {
            continue;
        }
        let Ok(environ) = std::fs::read(dir.join("environ")) else {
            continue;
        };
        let cgroup = (cgroup_mount.as_deref()).and_then(|mount| {
            let text = std::fs::read_to_string(dir.join("cgroup")).ok()?;
            Some(mount.join(cgroup_v2_path(&text)?.trim_start_matches('/')))
        });
        let facts = ProcessFacts {
            pid,
            pgrp,
            start_ticks,
            environ: &environ,
            cgroup,
        };
        if let Some(executor) = orphan(work_dir, &facts) {
            let key = (executor.framework_id.clone(), executor.executor_id.clone());
            if !named.contains(&key) {
                found.push(executor);
            }
        }
    }
    found
}

/// The cgroup v2 path in a `/proc/PID/cgroup` text (its `0::PATH` line).
fn cgroup_v2_path(text: &str) -> Option<&str> {
    text.lines().find_map(|line| line.strip_prefix("0::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environ(vars: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        for (name, value) in vars {
            block.extend_from_slice(format!("{name}={value}").as_bytes());
            block.push(0);
        }
        block
    }

    fn launched(work_dir: &Path, framework: &str, executor: &str) -> Vec<(String, String)> {
        let sandbox = sandbox_in(work_dir, framework, executor);
        [
            ("PATH", "/usr/bin".to_string()),
            (env::FRAMEWORK_ID, framework.to_string()),
            (env::EXECUTOR_ID, executor.to_string()),
            (env::SANDBOX, sandbox.display().to_string()),
            (env::CPUS, "1.5".to_string()),
            (env::MEM_MB, "512".to_string()),
            (env::PORTS, "31000-31001".to_string()),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
    }

    fn facts<'a>(environ: &'a [u8], cgroup: Option<&str>) -> ProcessFacts<'a> {
        ProcessFacts {
            pid: 4242,
            pgrp: 4242,
            start_ticks: 987,
            environ,
            cgroup: cgroup.map(PathBuf::from),
        }
    }

    fn block(vars: &[(String, String)]) -> Vec<u8> {
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        environ(&pairs)
    }

    #[test]
    fn a_process_the_agent_launched_is_read_back_as_its_checkpoint_would_have_it() {
        let work = Path::new("/var/lib/tessera-agent");
        let vars = block(&launched(work, "fw-1", "exec-0"));
        let cgroup = "/sys/fs/cgroup/tessera-agent-7/fw-1/exec-0";
        let executor = orphan(work, &facts(&vars, Some(cgroup))).expect("an executor");
        assert_eq!(
            executor,
            CheckpointedExecutor {
                framework_id: "fw-1".into(),
                executor_id: "exec-0".into(),
                pid: 4242,
                start_ticks: 987,
                cpus: 1.5,
                mem_mb: 512,
                ports: "31000-31001".into(),
                sandbox: "/var/lib/tessera-agent/frameworks/fw-1/executors/exec-0".into(),
                cgroup: cgroup.into(),
                messages: 0,
            }
        );
        // In posix mode it runs in the agent's cgroup, which is not its own.
        let posix = orphan(work, &facts(&vars, Some("/sys/fs/cgroup/user.slice"))).unwrap();
        assert_eq!(posix.cgroup, "");
    }

    #[test]
    fn other_processes_are_not_taken_for_executors() {
        let work = Path::new("/var/lib/tessera-agent");
        let vars = launched(work, "fw-1", "exec-0");
        let good = block(&vars);
        // A process the executor started, in its group but not leading it.
        let child = ProcessFacts {
            pgrp: 4000,
            ..facts(&good, None)
        };
        assert_eq!(orphan(work, &child), None);
        // Another agent's executor (another work directory).
        assert_eq!(
            orphan(Path::new("/srv/other-agent"), &facts(&good, None)),
            None
        );
        // A sandbox that is not the one its ids give.
        let mut moved = vars.clone();
        moved[3].1 = "/var/lib/tessera-agent/frameworks/fw-1/executors/exec-9".into();
        assert_eq!(orphan(work, &facts(&block(&moved), None)), None);
        // Ids that cannot name a sandbox.
        let bad_ids = block(&launched(work, "..", "exec-0"));
        assert_eq!(orphan(work, &facts(&bad_ids, None)), None);
        // A variable missing or unreadable.
        for missing in [env::FRAMEWORK_ID, env::SANDBOX, env::CPUS, env::MEM_MB] {
            let without: Vec<_> = vars.iter().filter(|(n, _)| n != missing).cloned().collect();
            assert_eq!(
                orphan(work, &facts(&block(&without), None)),
                None,
                "{missing}"
            );
        }
        let mut garbled = vars.clone();
        garbled[5].1 = "lots".into();
        assert_eq!(orphan(work, &facts(&block(&garbled), None)), None);
        // Any process at all.
        assert_eq!(
            orphan(work, &facts(b"PATH=/usr/bin\0HOME=/root\0", None)),
            None
        );
        assert_eq!(orphan(work, &facts(b"", None)), None);
    }

    #[test]
    fn variables_are_read_whole_and_by_their_exact_name() {
        let vars = environ(&[
            ("TESSERA_EXECUTOR_ID_OLD", "x"),
            ("TESSERA_EXECUTOR_ID", "a=b"),
        ]);
        assert_eq!(variable(&vars, "TESSERA_EXECUTOR_ID"), Some("a=b"));
        assert_eq!(variable(&vars, "TESSERA_EXECUTOR"), None);
        assert_eq!(variable(b"A=\xff\0", "A"), None);
        assert_eq!(
            cgroup_v2_path("12:pids:/x\n0::/tessera/fw/e\n"),
            Some("/tessera/fw/e")
        );
        assert_eq!(cgroup_v2_path("12:pids:/x\n"), None);
    }
}
