//! What an executor's process does between fork and exec to enter its isolation: join its
//! cgroup (cgroups mode) and take its rlimits (every mode).
//!
//! The rlimits are what rlimits can bound for one process tree without breaking ordinary
//! programs: no core files (a crashing executor would write gigabytes into its sandbox) and at
//! most [`MAX_OPEN_FILES`] open files. Memory is not an rlimit: `RLIMIT_AS` counts reserved
//! address space, which runtimes reserve far beyond what they use, so in posix mode the agent
//! watches the resident memory of the tree instead (see [`super::procfs`]). Nor is CPU:
//! `RLIMIT_CPU` ends a process after so many CPU seconds, it does not share CPUs.

use std::fs::File;
use std::io::Write;

/// The open-file limit executors get (lowered to the agent's hard limit if that is smaller).
pub const MAX_OPEN_FILES: u64 = 65_536;

/// An rlimit: soft and hard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    /// The soft limit, the one the kernel enforces; a process may raise it up to `hard`.
    pub soft: u64,
    /// The hard limit, the ceiling of the soft one; an unprivileged process can only lower it.
    pub hard: u64,
}

/// The executor's rlimits: `(core, open files)`, given the agent's own open-file limit.
pub fn rlimits(agent_nofile: Rlimit) -> (Rlimit, Rlimit) {
    let hard = agent_nofile.hard.min(MAX_OPEN_FILES);
    let core = Rlimit { soft: 0, hard: 0 };
    let nofile = Rlimit {
        soft: agent_nofile.soft.min(hard),
        hard,
    };
    (core, nofile)
}

fn to_libc(r: Rlimit) -> libc::rlimit {
    libc::rlimit {
        rlim_cur: r.soft as libc::rlim_t,
        rlim_max: r.hard as libc::rlim_t,
    }
}

/// What the forked child does before exec; made in the agent, applied in the child.
pub struct ChildSetup {
    /// The executor cgroup's `cgroup.procs`, open for writing (closed on exec).
    cgroup_procs: Option<File>,
    core: libc::rlimit,
    nofile: libc::rlimit,
}

impl ChildSetup {
    /// The setup for a child that joins the cgroup whose `cgroup.procs` is given (none in
    /// posix mode), with rlimits computed from the agent's own open-file limit.
    pub fn new(cgroup_procs: Option<File>) -> ChildSetup {
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct it is given.
        let agent_nofile = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) } == 0 {
            Rlimit {
                soft: current.rlim_cur,
                hard: current.rlim_max,
            }
        } else {
            Rlimit {
                soft: 1024,
                hard: 1024,
            }
        };
        let (core, nofile) = rlimits(agent_nofile);
        ChildSetup {
            cgroup_procs,
            core: to_libc(core),
            nofile: to_libc(nofile),
        }
    }

    /// Moves the calling process into the cgroup (writing 0 to `cgroup.procs` means "me").
    pub fn join_cgroup(&self) -> std::io::Result<()> {
        if let Some(mut procs) = self.cgroup_procs.as_ref() {
            procs.write_all(b"0")?;
        }
        Ok(())
    }

    /// Runs in the forked child before exec: only async-signal-safe calls (write, setrlimit).
    pub fn apply(&self) -> std::io::Result<()> {
        self.join_cgroup()?;
        // SAFETY: setrlimit reads the structs it is given.
        unsafe {
            if libc::setrlimit(libc::RLIMIT_CORE, &self.core) != 0
                || libc::setrlimit(libc::RLIMIT_NOFILE, &self.nofile) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_core_files_and_a_bounded_number_of_open_files() {
        let (core, nofile) = rlimits(Rlimit {
            soft: 1024,
            hard: 1 << 20,
        });
        assert_eq!(core, Rlimit { soft: 0, hard: 0 });
        assert_eq!(
            nofile,
            Rlimit {
                soft: 1024,
                hard: MAX_OPEN_FILES
            }
        );
        // Never above what the agent itself may have.
        let (_, nofile) = rlimits(Rlimit {
            soft: 4096,
            hard: 4096,
        });
        assert_eq!(
            nofile,
            Rlimit {
                soft: 4096,
                hard: 4096
            }
        );
        let (_, nofile) = rlimits(Rlimit {
            soft: u64::MAX,
            hard: u64::MAX,
        });
        assert_eq!(nofile.soft, MAX_OPEN_FILES);
    }
}
