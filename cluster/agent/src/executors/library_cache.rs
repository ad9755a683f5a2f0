//! The directory a framework's executors on this agent share for the libraries their driver
//! sends (Spark's fetch cache), and its removal once none of them runs here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Executors;

/// How long a framework's library cache outlives its last executor on this agent: long enough
/// for the replacement of a lost executor, which its framework launches within seconds.
pub const LIBRARY_CACHE_GRACE: Duration = Duration::from_secs(60);
/// The variable that names a framework's library cache to its executors.
pub(super) const LIBRARY_CACHE_ENV: &str = "TESSERA_LIBRARY_CACHE";

impl Executors {
    /// The directory a framework's executors here share for the libraries their driver sends.
    pub fn library_cache(&self, framework_id: &str) -> PathBuf {
        self.work_dir
            .join("frameworks")
            .join(framework_id)
            .join("libraries")
    }

    /// Removes the framework's library cache if none of its executors runs here; returns
    /// whether it did. The table stays locked meanwhile, so that no launch of the framework
    /// starts while its cache goes (a launch holds it until its executor is recorded).
    pub(crate) fn remove_library_cache_if_unused(&self, framework_id: &str) -> bool {
        let running = self.lock();
        if running.keys().any(|(f, _)| f == framework_id) {
            return false;
        }
        let dir = self.library_cache(framework_id);
        let removed = std::fs::remove_dir_all(&dir).is_ok();
        if removed {
            tracing::debug!(framework_id, dir = %dir.display(), "removed an unused library cache");
        }
        drop(running);
        removed
    }

    /// Removes the framework's library cache [`LIBRARY_CACHE_GRACE`] from now if none of its
    /// executors runs here by then.
    pub(super) fn remove_library_cache_later(self: &Arc<Self>, framework_id: String) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LIBRARY_CACHE_GRACE).await;
            this.remove_library_cache_if_unused(&framework_id);
        });
    }

    /// Schedules the removal of every framework's library cache, as
    /// [`Self::remove_library_cache_later`] does: at start, for frameworks whose executors
    /// ended while the agent was down.
    pub fn remove_library_caches_later(self: &Arc<Self>) {
        let Ok(frameworks) = std::fs::read_dir(self.work_dir.join("frameworks")) else {
            return;
        };
        for framework in frameworks.flatten() {
            if let Some(id) = framework.file_name().to_str() {
                self.remove_library_cache_later(id.to_string());
            }
        }
    }
}
