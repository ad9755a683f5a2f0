//! The directories a framework's executors on this agent share, and their removal once none
//! of them runs here: the library cache, for the libraries their driver sends (Spark's fetch
//! cache), and the directory of host memory, where each keeps the cached partitions that
//! outlive it (each in a directory of its own, which another executor of the framework adopts
//! partitions from when it is lost).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Executors;

/// How long a framework's directories outlive its last executor on this agent: long enough
/// for the replacement of a lost executor, which its framework launches within seconds.
pub const FRAMEWORK_DIRS_GRACE: Duration = Duration::from_secs(60);
/// The variable that names a framework's library cache to its executors.
pub(super) const LIBRARY_CACHE_ENV: &str = "TESSERA_LIBRARY_CACHE";
/// The variable that names an executor's directory of host memory to it.
pub(super) const MEMORY_DIR_ENV: &str = "TESSERA_MEMORY_DIR";

impl Executors {
    /// The directory a framework's executors here share for the libraries their driver sends.
    pub fn library_cache(&self, framework_id: &str) -> PathBuf {
        self.work_dir
            .join("frameworks")
            .join(framework_id)
            .join("libraries")
    }

    /// The directory under which a framework's executors here keep cached partitions in host
    /// memory, each in its own; `None` where the agent has no host memory to give.
    pub fn host_memory(&self, framework_id: &str) -> Option<PathBuf> {
        Some(self.memory_root.as_ref()?.join(framework_id))
    }

    /// Removes the framework's shared directories if none of its executors runs here; returns
    /// whether it did. The table stays locked meanwhile, so that no launch of the framework
    /// starts while they go (a launch holds it until its executor is recorded).
    pub(crate) fn remove_framework_dirs_if_unused(&self, framework_id: &str) -> bool {
        let running = self.lock();
        if running.keys().any(|(f, _)| f == framework_id) {
            return false;
        }
        let dirs = [
            Some(self.library_cache(framework_id)),
            self.host_memory(framework_id),
        ];
        let mut removed = false;
        for dir in dirs.into_iter().flatten() {
            if std::fs::remove_dir_all(&dir).is_ok() {
                tracing::debug!(framework_id, dir = %dir.display(), "removed an unused directory");
                removed = true;
            }
        }
        drop(running);
        removed
    }

    /// Removes every framework's directory of host memory, at a graceful stop (its executors
    /// killed).
    pub fn remove_host_memory(&self) {
        if let Some(root) = &self.memory_root {
            let _ = std::fs::remove_dir_all(root);
        }
    }

    /// Removes what an executor that ended left in host memory [`FRAMEWORK_DIRS_GRACE`] from
    /// now: long enough for another executor to adopt it (within milliseconds of the loss),
    /// and no longer, even while other executors of its framework run here (its replacement
    /// among them), so that a partition nobody adopted does not take memory twice.
    pub(super) fn remove_host_memory_later(&self, framework_id: &str, executor_id: &str) {
        self.remove_host_memory_after(framework_id, executor_id, FRAMEWORK_DIRS_GRACE);
    }

    /// [`Self::remove_host_memory_later`], after `grace`.
    pub(super) fn remove_host_memory_after(
        &self,
        framework_id: &str,
        executor_id: &str,
        grace: Duration,
    ) {
        let Some(dir) = self
            .host_memory(framework_id)
            .map(|dir| dir.join(executor_id))
        else {
            return;
        };
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if std::fs::remove_dir_all(&dir).is_ok() {
                tracing::debug!(dir = %dir.display(), "removed what an ended executor left in host memory");
            }
        });
    }

    /// Removes the framework's shared directories [`FRAMEWORK_DIRS_GRACE`] from now if none of
    /// its executors runs here by then.
    pub(super) fn remove_framework_dirs_later(self: &Arc<Self>, framework_id: String) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(FRAMEWORK_DIRS_GRACE).await;
            this.remove_framework_dirs_if_unused(&framework_id);
        });
    }

    /// Schedules the removal of every framework's shared directories, as
    /// [`Self::remove_framework_dirs_later`] does: at start, for frameworks whose executors
    /// ended while the agent was down.
    pub fn remove_framework_dirs_later_everywhere(self: &Arc<Self>) {
        let sandboxes = std::fs::read_dir(self.work_dir.join("frameworks"));
        let memory = self.memory_root.as_ref().map(std::fs::read_dir);
        let listed = [Some(sandboxes), memory].into_iter().flatten().flatten();
        for framework in listed.flatten().flatten() {
            if let Some(id) = framework.file_name().to_str() {
                self.remove_framework_dirs_later(id.to_string());
            }
        }
    }
}
