//! Launching an executor: its ids checked, its sandbox, stdout and stderr files and container
//! made, its process started in a process group of its own, then supervised.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use tessera_cluster_proto::master::{CommandInfo, ExecutorState, FrameworkInfo, Resources};

use super::framework_dirs::{LIBRARY_CACHE_ENV, MEMORY_DIR_ENV};
use super::supervision::Process;
use super::{Executors, Running};
use crate::isolation::{Limits, Usage};
use crate::sandbox::env;

/// Why a launch was refused before any process started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "{what} {value:?} cannot be used as a directory name (empty, `.`, `..`, or contains `/`)"
    )]
    BadId { what: &'static str, value: String },
    #[error("executor {executor_id} of framework {framework_id} is already running on this agent")]
    AlreadyRunning {
        framework_id: String,
        executor_id: String,
    },
    #[error("the launch has no command")]
    NoCommand,
    #[error("cannot create the sandbox {path}: {source}")]
    Sandbox {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the launch request carries.
pub struct LaunchSpec {
    pub agent_id: String,
    pub framework_id: String,
    pub executor_id: String,
    pub command: Option<CommandInfo>,
    pub cpus: f64,
    pub mem_mb: u64,
    /// The ports of the agent it was given, as ranges (`31000-31001,31005`; empty: none).
    pub ports: String,
    /// Its framework, as the master described it.
    pub framework: Option<FrameworkInfo>,
    /// Where its framework's sandbox files are served, if they are: the executor learns it as
    /// `TESSERA_SANDBOX_FILES`.
    pub files_address: Option<String>,
}

fn check_id(what: &'static str, value: &str) -> Result<(), LaunchError> {
    if value.is_empty()
        || value == "."
        || value == ".."
        || value.contains('/')
        || value.contains('\0')
    {
        return Err(LaunchError::BadId {
            what,
            value: value.to_string(),
        });
    }
    Ok(())
}

impl Executors {
    /// Starts an executor. Refusals (bad ids, already running) are errors; a
    /// program that cannot be started is reported FAILED through a status
    /// update instead.
    pub fn launch(self: &Arc<Self>, spec: LaunchSpec) -> Result<(), LaunchError> {
        check_id("framework id", &spec.framework_id)?;
        check_id("executor id", &spec.executor_id)?;
        let command = spec.command.ok_or(LaunchError::NoCommand)?;
        let key = (spec.framework_id.clone(), spec.executor_id.clone());
        // Hold the table lock until the child is recorded, so a concurrent
        // launch of the same id or a kill cannot slip in between.
        let mut running = self.lock();
        if running.contains_key(&key) {
            return Err(LaunchError::AlreadyRunning {
                framework_id: spec.framework_id,
                executor_id: spec.executor_id,
            });
        }
        {
            let mut early = self.early();
            let reason = if early.frameworks.contains(&spec.framework_id) {
                Some("its framework was shut down before it could start")
            } else if early.executors.remove(&key) {
                Some("killed at the framework's request before it started")
            } else {
                None
            };
            if let Some(reason) = reason {
                let (agent, fid, eid) = (&spec.agent_id, &spec.framework_id, &spec.executor_id);
                tracing::info!(framework_id = %fid, executor_id = %eid, reason, "launch skipped");
                self.report(agent, fid, eid, ExecutorState::Killed, reason.to_string());
                return Ok(());
            }
        }
        if let Some(info) = &spec.framework {
            self.frameworks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(spec.framework_id.clone(), info.clone());
        }
        let sandbox = self.sandbox(&spec.framework_id, &spec.executor_id);
        std::fs::create_dir_all(&sandbox).map_err(|source| LaunchError::Sandbox {
            path: sandbox.clone(),
            source,
        })?;
        let (agent, fid, eid) = (&spec.agent_id, &spec.framework_id, &spec.executor_id);
        self.report(agent, fid, eid, ExecutorState::Starting, String::new());
        let files = std::fs::File::create(sandbox.join("stdout"))
            .and_then(|out| Ok((out, std::fs::File::create(sandbox.join("stderr"))?)));
        let (stdout, stderr) = match files {
            Ok(f) => f,
            Err(e) => {
                let msg = format!(
                    "cannot create stdout/stderr files in {}: {e}",
                    sandbox.display()
                );
                self.report(agent, fid, eid, ExecutorState::Failed, msg);
                return Ok(());
            }
        };
        let limits = Limits {
            cpus: spec.cpus,
            mem_mb: spec.mem_mb,
        };
        let prepared = self
            .isolator
            .prepare(fid, eid, limits)
            .and_then(|container| {
                let setup = container.child_setup().map_err(|source| {
                    crate::isolation::IsolationError::Cgroup {
                        path: sandbox.clone(),
                        source,
                    }
                })?;
                Ok((container, setup))
            });
        let (container, setup) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                let msg = format!("cannot isolate the executor: {e}");
                tracing::warn!(framework_id = %fid, executor_id = %eid, error = %msg, "executor failed to start");
                self.report(agent, fid, eid, ExecutorState::Failed, msg);
                return Ok(());
            }
        };

        let mut cmd = tokio::process::Command::new(&command.program);
        cmd.args(&command.args)
            .envs(&command.env)
            .env("TESSERA_AGENT_ID", agent)
            .env(env::FRAMEWORK_ID, fid)
            .env(env::EXECUTOR_ID, eid)
            .env(env::SANDBOX, &sandbox)
            .env(LIBRARY_CACHE_ENV, self.library_cache(fid))
            .envs(
                self.host_memory(fid)
                    .map(|dir| (MEMORY_DIR_ENV, dir.join(eid))),
            )
            .env("TESSERA_AGENT_HOST", &self.host)
            .env(env::CPUS, spec.cpus.to_string())
            .env(env::MEM_MB, spec.mem_mb.to_string())
            .env(env::PORTS, &spec.ports)
            .envs(
                spec.files_address
                    .iter()
                    .map(|a| ("TESSERA_SANDBOX_FILES", a)),
            )
            .current_dir(&sandbox)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(false);
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (write, setrlimit). No parent-death signal: executors
        // outlive the agent, which finds them again when it restarts.
        unsafe {
            cmd.pre_exec(move || setup.apply());
        }
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let msg = format!(
                    "cannot start `{}` in {}: {e}",
                    command.program,
                    sandbox.display()
                );
                tracing::warn!(framework_id = %fid, executor_id = %eid, error = %msg, "executor failed to start");
                self.report(agent, fid, eid, ExecutorState::Failed, msg);
                drop(running);
                tokio::spawn(async move { container.destroy().await });
                return Ok(());
            }
        };
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        // Its start time is fixed at fork, so it is there before exec.
        let start_ticks = crate::processes::start_ticks(pid).unwrap_or(0);
        running.insert(
            key.clone(),
            Running {
                pid,
                start_ticks,
                // CPUs and memory: what a re-registration reports (ports are given anew).
                resources: Resources {
                    cpus: spec.cpus,
                    mem_mb: spec.mem_mb,
                    ..Default::default()
                },
                ports: spec.ports.clone(),
                cgroup: container.cgroup_path(),
                kill_reason: None,
                report_lost: false,
                messages: 0,
                usage: Usage::default(),
            },
        );
        drop(running);
        self.save_checkpoint();
        let mode = self.isolator.mode();
        tracing::info!(framework_id = %fid, executor_id = %eid, pid, program = %command.program, sandbox = %sandbox.display(), isolation = %mode, "executor running");
        self.report(
            agent,
            fid,
            eid,
            ExecutorState::Running,
            format!("pid {pid}, sandbox {} ({mode})", sandbox.display()),
        );
        self.supervise(agent.clone(), key, pid, Process::Child(child), container);
        Ok(())
    }
}
