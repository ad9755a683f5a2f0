//! Functions of RDDs of numbers (Spark's `DoubleRDDFunctions`).

use crate::ops::PartitionStats;
use crate::rdd::Rdd;
use crate::stats::{Numeric, Stats};

impl<T: Numeric> Rdd<T> {
    /// Count, mean, variance, min and max, in one job.
    pub fn stats(&self) -> Stats {
        self.stats_job("stats")
    }

    /// The sum, as `f64`.
    pub fn sum(&self) -> f64 {
        self.stats_job("sum").sum()
    }

    /// The mean, as `f64` (NaN for an empty RDD).
    pub fn mean(&self) -> f64 {
        self.stats_job("mean").mean()
    }

    /// The statistics, from a job that `:jobs` and the progress line call `action`: the one
    /// the user called, not the job's means.
    fn stats_job(&self, action: &str) -> Stats {
        self.run_action::<PartitionStats<T>, Stats>(action, &(), Vec::new(), None)
            .into_iter()
            .fold(Stats::default(), Stats::merge)
    }
}
