//! Messages executors send their frameworks (Mesos' executor→framework MESSAGE): an executor
//! puts each message in its sandbox as a file in `outbox/`, written under a name that starts
//! with a dot and then renamed (so that the agent never reads half a file); the agent sends
//! them to the master in name order every [`POLL_INTERVAL`] and removes each one the master
//! took. Best effort, as Mesos' messages: one the master refuses (its executor ended) is
//! dropped, and one it cannot reach waits for the next poll.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tessera_cluster_proto::master::ExecutorMessage;

use crate::executors::Executors;
use crate::master_link::{MasterLink, Registration};
use tessera_credentials::describe_status;

/// How often outboxes are looked at.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// The directory of a sandbox messages are put in.
pub const OUTBOX: &str = "outbox";
/// Larger files are not messages: they are dropped with a warning.
pub const MAX_MESSAGE_BYTES: u64 = 1 << 20;

/// The messages waiting in `outbox`, in the order to send them: whole files (not dot files),
/// by name.
pub fn waiting(outbox: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// Sends the messages of every running executor to the master, every [`POLL_INTERVAL`].
pub(crate) async fn forward(
    link: MasterLink,
    registration: Arc<Registration>,
    executors: Arc<Executors>,
) {
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    loop {
        ticks.tick().await;
        let Some(agent_id) = registration.current() else {
            continue;
        };
        for (framework_id, executor_id) in executors.running() {
            let outbox = executors.sandbox(&framework_id, &executor_id).join(OUTBOX);
            for file in waiting(&outbox) {
                let too_large = std::fs::metadata(&file).is_ok_and(|m| m.len() > MAX_MESSAGE_BYTES);
                let data = match std::fs::read(&file) {
                    Ok(data) if !too_large => data,
                    Ok(_) => {
                        tracing::warn!(%executor_id, file = %file.display(), "a message over {MAX_MESSAGE_BYTES} bytes is dropped: send large data another way");
                        let _ = std::fs::remove_file(&file);
                        continue;
                    }
                    Err(_) => continue,
                };
                let message = ExecutorMessage {
                    agent_id: agent_id.clone(),
                    framework_id: framework_id.clone(),
                    executor_id: executor_id.clone(),
                    data,
                };
                match async { link.client()?.send_executor_message(message).await }.await {
                    Ok(_) => {
                        let _ = std::fs::remove_file(&file);
                    }
                    Err(status) if status.code() == tonic::Code::PermissionDenied => {
                        tracing::warn!(%executor_id, "the master refused a message: {}", describe_status(&status));
                        let _ = std::fs::remove_file(&file);
                    }
                    // The master is away: this and the rest wait for the next poll, in order.
                    Err(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_messages_go_in_name_order_and_files_being_written_wait() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join(OUTBOX);
        assert!(
            waiting(&outbox).is_empty(),
            "no outbox yet: nothing to send"
        );
        std::fs::create_dir(&outbox).unwrap();
        for name in ["0002", "0001", ".0003", "0010"] {
            std::fs::write(outbox.join(name), name).unwrap();
        }
        std::fs::create_dir(outbox.join("a-directory")).unwrap();
        let names: Vec<String> = waiting(&outbox)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["0001", "0002", "0010"]);
    }
}
