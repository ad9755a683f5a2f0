//! A framework's messages to its running executors, put in their sandboxes as files.

use std::path::PathBuf;

use super::Executors;

/// Why a message could not be put in an executor's sandbox.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error(
        "executor {executor_id} of framework {framework_id} does not run on this agent; send \
         messages to running executors"
    )]
    NotRunning {
        framework_id: String,
        executor_id: String,
    },
    #[error("cannot write the message to {path} (is the sandbox's disk full?): {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Executors {
    /// Puts a framework's message for a running executor in its sandbox, as the file
    /// `messages/NNNNNNNNNN` (numbered from 1 in the order they came; written under another
    /// name and renamed, so that it appears whole). The executor reads them in name order and
    /// may delete what it has read.
    pub fn deliver_message(
        &self,
        framework_id: &str,
        executor_id: &str,
        data: &[u8],
    ) -> Result<PathBuf, MessageError> {
        // Numbered and written under the table's lock: two messages never take one number.
        let mut running = self.lock();
        let key = (framework_id.to_string(), executor_id.to_string());
        let Some(entry) = running.get_mut(&key) else {
            return Err(MessageError::NotRunning {
                framework_id: framework_id.to_string(),
                executor_id: executor_id.to_string(),
            });
        };
        let dir = self.sandbox(framework_id, executor_id).join("messages");
        let n = entry.messages + 1;
        let path = dir.join(format!("{n:010}"));
        let tmp = dir.join(format!(".{n:010}.part"));
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&tmp, data))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| MessageError::Write {
                path: path.clone(),
                source,
            })?;
        entry.messages = n;
        drop(running);
        // Its numbering goes on after a restart of the agent.
        self.save_checkpoint();
        Ok(path)
    }
}
