//! Functions of RDDs of numbers (Spark's `DoubleRDDFunctions`).

use crate::ops::PartitionStats;
use crate::rdd::Rdd;
use crate::stats::{Numeric, Stats};

impl<T: Numeric> Rdd<T> {
    /// Count, mean, variance, min and max, in one job.
    pub fn stats(&self) -> Stats {
        self.run_action::<PartitionStats<T>, Stats>("stats", &(), Vec::new(), None)
            .into_iter()
            .fold(Stats::default(), Stats::merge)
    }

    /// The sum, as `f64`.
    pub fn sum(&self) -> f64 {
        self.stats().sum()
    }

    /// The mean, as `f64` (NaN for an empty RDD).
    pub fn mean(&self) -> f64 {
        self.stats().mean()
    }
}
