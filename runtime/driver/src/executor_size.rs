//! How much memory an executor asks its agent for, and how much of it may hold cached
//! partitions.
//!
//! Agents enforce what an executor was given (cgroups, or a watch on its resident memory), so
//! the request must cover the process itself, not only its cache: as Spark adds
//! `spark.executor.memoryOverhead` (the larger of 384 MiB and 10%) to `spark.executor.memory`,
//! a session asks for `--executor-memory-mb` plus an overhead, the larger of
//! [`MIN_OVERHEAD_MB`] (a Tessera executor's own code, runtime and task buffers take some
//! 50 MiB, not a JVM's hundreds) and 10%. An offer smaller than that still takes an executor,
//! with a cache shrunk to what is left after the overhead.

/// The least memory kept for the executor process beside its cache.
pub(crate) const MIN_OVERHEAD_MB: u64 = 64;
/// The least cache worth an executor.
pub(crate) const MIN_CACHE_MB: u64 = 1;
/// The smallest offer of memory that takes an executor.
pub(crate) const MIN_EXECUTOR_MEM_MB: u64 = MIN_OVERHEAD_MB + MIN_CACHE_MB;

/// An executor's memory: what the agent gives it, and what it may cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExecutorSize {
    /// Asked of the agent; the executor is killed past it.
    pub container_mb: u64,
    /// The block manager's budget for cached partitions.
    pub cache_mb: u64,
}

/// The overhead beside a cache of `cache_mb`.
fn overhead_mb(cache_mb: u64) -> u64 {
    (cache_mb / 10).max(MIN_OVERHEAD_MB)
}

/// The executor to launch from an offer of `offered_mb` for a session that caches up to
/// `memory_mb` per executor; `None` if the offer cannot hold the overhead and a cache.
pub(crate) fn executor_size(offered_mb: u64, memory_mb: u64) -> Option<ExecutorSize> {
    let wanted = memory_mb + overhead_mb(memory_mb);
    if offered_mb >= wanted {
        return Some(ExecutorSize {
            container_mb: wanted,
            cache_mb: memory_mb,
        });
    }
    // The largest cache whose cache + overhead fits the offer.
    let cache_mb = offered_mb
        .saturating_sub(MIN_OVERHEAD_MB)
        .min(offered_mb * 10 / 11);
    (cache_mb >= MIN_CACHE_MB).then_some(ExecutorSize {
        container_mb: offered_mb,
        cache_mb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executor_asks_for_its_cache_and_an_overhead() {
        // Large enough offers: Spark's 10%, at least 64 MiB.
        assert_eq!(
            executor_size(8192, 4096),
            Some(ExecutorSize {
                container_mb: 4505,
                cache_mb: 4096
            })
        );
        assert_eq!(
            executor_size(8192, 100),
            Some(ExecutorSize {
                container_mb: 164,
                cache_mb: 100
            })
        );
    }

    #[test]
    fn a_smaller_offer_shrinks_the_cache_not_the_overhead() {
        let size = executor_size(1024, 1024).expect("fits");
        assert_eq!(size.container_mb, 1024);
        assert!(
            size.cache_mb + overhead_mb(size.cache_mb) <= 1024,
            "{size:?}"
        );
        assert!(size.cache_mb >= 900, "{size:?}");
        let small = executor_size(100, 1024).expect("fits");
        assert_eq!(
            small,
            ExecutorSize {
                container_mb: 100,
                cache_mb: 36
            }
        );
        assert_eq!(executor_size(64, 1024), None, "no room for a cache");
    }
}
