//! Summary statistics of numeric RDDs (Spark's `StatCounter`), mergeable across partitions.

use serde::{Deserialize, Serialize};

/// Numbers an RDD can summarize.
pub trait Numeric: crate::data::Data + Copy {
    /// The number as an `f64`, in which statistics are computed (an `as` cast: integers past
    /// 2^53 round).
    fn to_f64(self) -> f64;
}

macro_rules! numeric {
    ($($t:ty),*) => { $(impl Numeric for $t { fn to_f64(self) -> f64 { self as f64 } })* };
}
numeric!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64);

/// Count, mean, variance, min and max, computed in one pass (Welford) and merged per partition.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    count: u64,
    mean: f64,
    /// Sum of squared differences from the mean.
    m2: f64,
    min: f64,
    max: f64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Stats {
    /// Adds one number (Spark's `StatCounter.merge(value)`).
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Combines the statistics of two disjoint sets of numbers.
    pub fn merge(self, other: Stats) -> Stats {
        if self.count == 0 {
            return other;
        }
        if other.count == 0 {
            return self;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        Stats {
            count,
            mean: self.mean + delta * other.count as f64 / count as f64,
            m2: self.m2
                + other.m2
                + delta * delta * (self.count as f64 * other.count as f64) / count as f64,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    /// How many numbers were added.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Their mean; NaN for no numbers.
    pub fn mean(&self) -> f64 {
        if self.count == 0 { f64::NAN } else { self.mean }
    }
    /// Their sum; 0 for no numbers.
    pub fn sum(&self) -> f64 {
        self.mean * self.count as f64
    }
    /// Population variance.
    pub fn variance(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.m2 / self.count as f64
        }
    }
    /// Population standard deviation (Spark's `stdev`); NaN for no numbers.
    pub fn stdev(&self) -> f64 {
        self.variance().sqrt()
    }
    /// Sample variance, dividing by `count - 1` (Spark's `sampleVariance`); NaN for fewer
    /// than 2 numbers.
    pub fn sample_variance(&self) -> f64 {
        if self.count < 2 {
            f64::NAN
        } else {
            self.m2 / (self.count - 1) as f64
        }
    }
    /// Sample standard deviation (Spark's `sampleStdev`); NaN for fewer than 2 numbers.
    pub fn sample_stdev(&self) -> f64 {
        self.sample_variance().sqrt()
    }
    /// The smallest number; infinity for no numbers, as in Spark.
    pub fn min(&self) -> f64 {
        self.min
    }
    /// The largest number; minus infinity for no numbers, as in Spark.
    pub fn max(&self) -> f64 {
        self.max
    }
}

/// Spark's `StatCounter` text: `(count: 4, mean: 2.5, stdev: 1.118..., max: 4.0, min: 1.0)`.
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "(count: {}, mean: {:?}, stdev: {:?}, max: {:?}, min: {:?})",
            self.count(),
            self.mean(),
            self.stdev(),
            self.max(),
            self.min()
        )
    }
}

/// A one-row table: count, mean, stdev, min, max and sum.
impl crate::rich::RichDisplay for Stats {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        let (min, max) = if self.count == 0 {
            (f64::NAN, f64::NAN)
        } else {
            (self.min, self.max)
        };
        let table = tessera_table::Table::new(
            &["count", "mean", "stdev", "min", "max", "sum"],
            [vec![
                self.count.to_string(),
                format!("{:?}", self.mean()),
                format!("{:?}", self.stdev()),
                format!("{min:?}"),
                format!("{max:?}"),
                format!("{:?}", self.sum()),
            ]],
        );
        crate::rich::table_bundle(&table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rich::RichDisplay;

    #[test]
    fn stats_show_as_a_one_row_table() {
        let mut stats = Stats::default();
        [1.0, 2.0, 3.0, 4.0].iter().for_each(|&x| stats.add(x));
        let bundle = stats.mime_bundle();
        let text = &bundle[0].1;
        assert!(text.contains("count") && text.contains("stdev"), "{text}");
        assert!(text.contains("│     4 ┆  2.5 ┆"), "{text}");
        let html = &bundle[1].1;
        assert!(
            html.contains(">2.5</td>") && html.contains(">10.0</td>"),
            "{html}"
        );
        assert_eq!(
            stats.to_string(),
            "(count: 4, mean: 2.5, stdev: 1.118033988749895, max: 4.0, min: 1.0)"
        );
        let empty = Stats::default().mime_bundle();
        assert!(empty[0].1.contains("NaN"), "{}", empty[0].1);
    }

    #[test]
    fn merged_partitions_match_one_pass() {
        let xs: Vec<f64> = (1..=100).map(|i| (i * 37 % 101) as f64).collect();
        let mut whole = Stats::default();
        xs.iter().for_each(|&x| whole.add(x));
        let (mut a, mut b) = (Stats::default(), Stats::default());
        xs[..30].iter().for_each(|&x| a.add(x));
        xs[30..].iter().for_each(|&x| b.add(x));
        let merged = a.merge(b);
        assert_eq!(merged.count(), 100);
        assert!((merged.mean() - whole.mean()).abs() < 1e-9);
        assert!((merged.variance() - whole.variance()).abs() < 1e-9);
        assert_eq!((merged.min(), merged.max()), (whole.min(), whole.max()));
        assert!((merged.sum() - xs.iter().sum::<f64>()).abs() < 1e-6);
    }
}
