//! The Tessera agent: runs on each machine of the cluster, registers the
//! machine's CPUs and memory with the master, heartbeats, and launches and kills
//! executor processes when the master asks (on behalf of frameworks whose
//! offers were accepted). Executor state changes go back to the master as
//! status updates, in order, sent again and again until their framework
//! acknowledges them (`status_updates`).
//!
//! If the master does not know the agent any more (it restarted), the agent
//! registers again under its id with the executors it runs, and they keep
//! running; a master that declared the agent lost (it reported those executors
//! LOST) gives it a new id instead, and the agent kills them.
//!
//! Executors outlive the agent itself ([`recovery`]): it checkpoints what it runs and the
//! status updates that wait ([`checkpoint`]) under its work directory, and, restarted there
//! within `--recovery-timeout-s`, adopts the executors still running and registers under its
//! old id with them; past the timeout it kills them and reports them LOST. A graceful stop
//! (SIGTERM) kills them, as before.
//!
//! Executors run isolated ([`isolation`]): in a cgroup v2 each where the agent may make
//! them, else with rlimits and their memory watched from `/proc`; the mode in use goes to the
//! master at registration, and what each executor uses goes with the heartbeats. An executor
//! past its memory is killed and reported FAILED, "memory limit N MiB exceeded".
//!
//! Every link is mutual TLS with the cluster's certificates: the agent dials the
//! master expecting the master's certificate, and runs launches and kills only
//! when the caller's certificate is the master's. Its executors learn the host
//! to listen on from `TESSERA_AGENT_HOST`.
//!
//! A framework may ask, at launch, that the files its executors leave in their sandboxes be
//! served to its other processes with a credential of its own ([`sandbox_files`]); the agent
//! tells such executors where in `TESSERA_SANDBOX_FILES`.
//!
//! The binary `tessera-agent` wraps [`run`]; see `src/main.rs` for flags.

#![deny(missing_docs)]

pub mod checkpoint;
mod config;
mod ending;
mod error;
mod executors;
pub mod isolation;
mod master_link;
mod orphans;
mod outbox;
mod processes;
pub mod recovery;
mod sandbox;
mod sandbox_files;
mod service;
mod status_updates;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tessera_cluster_proto::agent::agent_server::AgentServer;
use tokio::net::TcpListener;

pub use config::{AgentConfig, memory_dir_from_flag};
pub use error::AgentError;
pub use executors::KILL_GRACE;
pub use isolation::{IsolationChoice, IsolationConfig, IsolationError, IsolationMode};
pub use recovery::{DEFAULT_RECOVERY_TIMEOUT, RecoverMode, RecoveryError};

/// Largest request the agent decodes (a launch is a few KiB).
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// The machine's CPUs, as the agent's default.
pub fn detect_cpus() -> f64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0)
}

/// Disk to offer, in MiB, as Mesos has it: the space free where sandboxes go, less 5 GiB for
/// the system (or half of it, when there is less than 10 GiB).
pub fn detect_disk_mb(work_dir: &std::path::Path) -> u64 {
    // The work dir may not exist yet: ask about the nearest directory that does.
    let existing = work_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(work_dir);
    let free_mb = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes())
        .ok()
        .and_then(|path| {
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            // SAFETY: `path` is NUL-terminated and `st` is a valid, writable statvfs.
            let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
            (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64 / (1024 * 1024))
        })
        .unwrap_or(0);
    disk_to_offer(free_mb)
}

/// Of `free_mb` MiB free, what to offer: all but 5 GiB, or half below 10 GiB.
fn disk_to_offer(free_mb: u64) -> u64 {
    if free_mb >= 10 * 1024 {
        free_mb - 5 * 1024
    } else {
        free_mb / 2
    }
}

/// The machine's memory less what the OS keeps (1 GiB, or half on machines
/// with less than 2 GiB), in MiB, as the agent's default.
pub fn detect_mem_mb() -> u64 {
    let total_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(1024);
    if total_mb >= 2048 {
        total_mb - 1024
    } else {
        total_mb / 2
    }
}

/// The machine's host name, as the agent's default.
pub fn detect_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(s) = std::str::from_utf8(&buf[..end])
            && !s.is_empty()
        {
            return s.to_string();
        }
    }
    "localhost".to_string()
}

/// Runs the agent: serves the Agent service on `listener`, registers with the
/// master and heartbeats until `shutdown` completes, then kills its executors.
pub async fn run(
    config: AgentConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let addr: SocketAddr = listener.local_addr().map_err(AgentError::LocalAddr)?;
    std::fs::create_dir_all(&config.work_dir).map_err(|source| AgentError::WorkDir {
        path: config.work_dir.clone(),
        source,
    })?;
    let link = master_link::MasterLink::new(&config.master, &config.credential).await?;
    let (updates_tx, updates_rx) = tokio::sync::mpsc::unbounded_channel();
    let address = config
        .advertise_address
        .clone()
        .unwrap_or_else(|| tessera_credentials::advertised_address(addr));
    let host = address
        .rsplit_once(':')
        .map(|(host, _)| host.trim_matches(['[', ']']).to_string())
        .unwrap_or_else(|| address.clone());
    let files = Arc::new(sandbox_files::SandboxFileServers::new(
        config.work_dir.clone(),
        host.clone(),
    ));
    let isolator = isolation::Isolator::new(&config.isolation)?;
    let pending = Arc::new(status_updates::PendingUpdates::default());
    let memory_root = config
        .memory_dir
        .as_deref()
        .map(|dir| config::memory_root(dir, &config.work_dir));
    let executors = executors::Executors::new(
        config.work_dir.clone(),
        memory_root,
        host,
        updates_tx,
        isolator,
        pending.clone(),
    );
    tracing::info!(%address, master = %config.master, cpus = config.cpus, mem_mb = config.mem_mb,
        work_dir = %config.work_dir.display(), isolation = %executors.isolation(), "tessera-agent listening");
    let recovered = recovery::recover(
        &config.work_dir,
        config.recover,
        config.recovery_timeout,
        &executors,
        &pending,
    )?;
    executors.remove_framework_dirs_later_everywhere();

    let registration = Arc::new(master_link::Registration::default());
    let tasks = [
        tokio::spawn(master_link::register_and_heartbeat(
            link.clone(),
            config.clone(),
            address,
            registration.clone(),
            executors.clone(),
            pending.clone(),
            recovered.agent_id,
        )),
        tokio::spawn(outbox::forward(
            link.clone(),
            registration.clone(),
            executors.clone(),
        )),
        tokio::spawn(master_link::forward_status_updates(
            link,
            registration.clone(),
            pending.clone(),
            executors.clone(),
            updates_rx,
        )),
        tokio::spawn(checkpoint_periodically(executors.clone())),
    ];
    let service = service::AgentService::new(executors.clone(), registration, pending, files);
    let tls = config.credential.server()?;
    let result = tonic::transport::Server::builder()
        .serve_with_incoming_shutdown(
            tonic::service::interceptor::InterceptedService::new(
                AgentServer::new(service).max_decoding_message_size(MAX_REQUEST_BYTES),
                tls.authenticator(),
            ),
            tls.incoming(listener),
            shutdown,
        )
        .await;
    let n = executors.kill_all_now("the agent is shutting down");
    tracing::info!(
        killed = n,
        "tessera-agent stopped; its executors were killed"
    );
    // Give the status updates of the killed executors a moment to reach the master.
    if n > 0 {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(500);
        while executors.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Nothing outlives a graceful stop: what the executors kept in host memory goes too.
    executors.remove_host_memory();
    for task in tasks {
        task.abort();
    }
    executors.close_isolation();
    result.map_err(AgentError::from)
}

/// Writes the checkpoint every [`checkpoint::SAVE_INTERVAL`], so that its age tells a
/// restarted agent how long it was away.
async fn checkpoint_periodically(executors: Arc<executors::Executors>) {
    let mut ticks = tokio::time::interval(checkpoint::SAVE_INTERVAL);
    loop {
        ticks.tick().await;
        let executors = executors.clone();
        let _ = tokio::task::spawn_blocking(move || executors.save_checkpoint()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_offered_keeps_room_for_the_system() {
        assert_eq!(disk_to_offer(100 * 1024), 95 * 1024);
        assert_eq!(disk_to_offer(10 * 1024), 5 * 1024);
        assert_eq!(disk_to_offer(8 * 1024), 4 * 1024);
        assert_eq!(disk_to_offer(0), 0);
        assert!(detect_disk_mb(&std::env::temp_dir().join("not-there-yet")) > 0);
    }
}
