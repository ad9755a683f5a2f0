//! Starts executor processes: for `local[N]` the driver starts one itself on this machine;
//! on a cluster, agents start them on the driver's behalf after it accepts resource offers.
//! Either way the executor runs the same binary with the same arguments.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tessera_credentials::{Credential, EXECUTOR_CREDENTIAL_ENV};
use tessera_wire::DRIVER_TIMEOUT_ENV;

/// How to start one executor, wherever it runs.
pub struct ExecutorCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl ExecutorCommand {
    /// The command of executor `executor_id` of the driver at `driver_address`, with `cores`
    /// task threads and `memory_mb` for cached partitions, held by its launcher to
    /// `limit_mb` (none for the executor of `local[N]`).
    pub fn new(
        bin_dir: &Path,
        driver_address: &str,
        executor_id: &str,
        cores: u32,
        memory_mb: u64,
        limit_mb: Option<u64>,
        credential: &Credential,
    ) -> Self {
        let mut args: Vec<String> = vec![
            "--driver".into(),
            driver_address.into(),
            "--executor-id".into(),
            executor_id.into(),
            "--cores".into(),
            cores.to_string(),
            "--memory-mb".into(),
            memory_mb.to_string(),
        ];
        if let Some(limit) = limit_mb {
            args.extend(["--memory-limit-mb".into(), limit.to_string()]);
        }
        // The session's executor credential travels in the launch, never on the command line,
        // which any local user can read.
        let mut env = vec![(EXECUTOR_CREDENTIAL_ENV.into(), credential.to_bundle())];
        // The session's own driver timeout, wherever its executors start.
        if let Ok(timeout) = std::env::var(DRIVER_TIMEOUT_ENV) {
            env.push((DRIVER_TIMEOUT_ENV.into(), timeout));
        }
        ExecutorCommand {
            program: bin_dir.join("tessera-executor"),
            args,
            env,
        }
    }

    /// The same command, loading `libraries` (by hash) before the executor registers.
    pub fn preloading(mut self, libraries: &[String]) -> Self {
        for library in libraries {
            self.args.extend(["--preload".into(), library.clone()]);
        }
        self
    }

    /// Starts the executor as a child of this process, with its log in the session's directory
    /// `session_dir` as `{name}.log` and its files in `work_dir`, the directory `name` there
    /// (as an agent gives its executors a sandbox), which its launcher removes once it has
    /// stopped it ([`LocalExecutor`]). It gets a process group of its own (a Ctrl-C in the
    /// terminal is for the session, not for it) and dies with the thread that started it.
    ///
    /// `host_libraries` are libraries this host has already, by hash and path (the toolchain's
    /// libstd): each is linked into the executor's library directory, where the executor
    /// loads it without fetching it from the driver. Fetching libstd's 5 MB (over TLS, hashed
    /// on the way) took 10 ms of every local session's first job.
    pub fn spawn_local(
        &self,
        session_dir: &Path,
        name: &str,
        host_libraries: &[(String, PathBuf)],
    ) -> std::io::Result<LocalExecutor> {
        if !self.program.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{} is missing; build it with `cargo build --workspace --bins`",
                    self.program.display()
                ),
            ));
        }
        let log_file = std::fs::File::create(session_dir.join(format!("{name}.log")))?;
        let work_dir = session_dir.join(name);
        link_host_libraries(&work_dir, host_libraries)?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .arg("--work-dir")
            .arg(&work_dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("TESSERA_SANDBOX", session_dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn()?;
        Ok(LocalExecutor { child, work_dir })
    }
}

/// Links each of `libraries` (hash, path) into the library directory of the executor whose
/// work directory is `work_dir`, under the name the executor looks for. A library that cannot
/// be linked is left out: the executor fetches it.
fn link_host_libraries(work_dir: &Path, libraries: &[(String, PathBuf)]) -> std::io::Result<()> {
    let dir = work_dir.join(tessera_plan::EXECUTOR_LIBRARY_DIR);
    std::fs::create_dir_all(&dir)?;
    for (hash, path) in libraries {
        let _ = std::os::unix::fs::symlink(path, dir.join(format!("{hash}.so")));
    }
    Ok(())
}

/// An executor this process started, with the directory of its files.
pub struct LocalExecutor {
    child: Child,
    work_dir: PathBuf,
}

impl Drop for LocalExecutor {
    /// Stops the executor and removes its files (fetched libraries, side files, spilled
    /// blocks, shuffle files): nothing reads them once it is gone, and a session left them
    /// behind for a day, a few megabytes each. Its log stays beside them.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_the_host_has_is_where_the_executor_looks_for_it_by_hash() {
        let scratch = tempfile::tempdir().unwrap();
        let libstd = scratch.path().join("libstd-0123.so");
        std::fs::write(&libstd, b"\x7fELF the toolchain's libstd").unwrap();
        let work_dir = scratch.path().join("executor-local-0");
        let hash = "ab".repeat(32);
        let missing = (
            "cd".repeat(32),
            scratch.path().join("gone").join("libstd.so"),
        );
        link_host_libraries(&work_dir, &[(hash.clone(), libstd.clone()), missing]).unwrap();
        let dir = work_dir.join(tessera_plan::EXECUTOR_LIBRARY_DIR);
        assert_eq!(
            std::fs::read(dir.join(format!("{hash}.so"))).unwrap(),
            std::fs::read(&libstd).unwrap()
        );
        // A link to nothing reads as no library: the executor fetches that one.
        assert!(!dir.join(format!("{}.so", "cd".repeat(32))).exists());
    }
}
