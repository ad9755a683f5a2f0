//! [`Resources`]: the amounts the cluster manager accounts for (CPUs and memory).

use std::fmt;

/// An amount of CPUs (fractional) and memory (MiB).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Resources {
    /// CPUs; fractions allowed (e.g. 0.5).
    pub cpus: f64,
    /// Memory in MiB.
    pub mem_mb: u64,
}

/// Below this many CPUs and this much memory, free resources are not worth an
/// offer (the same thresholds as Mesos).
pub const MIN_OFFER_CPUS: f64 = 0.01;
/// See [`MIN_OFFER_CPUS`].
pub const MIN_OFFER_MEM_MB: u64 = 32;

/// CPU amounts closer than this are equal (guards float drift from repeated
/// add/subtract of fractional CPUs).
const CPU_EPSILON: f64 = 1e-9;

impl Resources {
    /// No CPUs and no memory.
    pub const ZERO: Resources = Resources {
        cpus: 0.0,
        mem_mb: 0,
    };

    /// `cpus` CPUs and `mem_mb` MiB of memory.
    pub fn new(cpus: f64, mem_mb: u64) -> Self {
        Resources { cpus, mem_mb }
    }

    /// Whether `other` fits in `self`.
    pub fn contains(&self, other: &Resources) -> bool {
        other.cpus <= self.cpus + CPU_EPSILON && other.mem_mb <= self.mem_mb
    }

    /// `self + other`.
    pub fn plus(&self, other: &Resources) -> Resources {
        Resources {
            cpus: self.cpus + other.cpus,
            mem_mb: self.mem_mb.saturating_add(other.mem_mb),
        }
    }

    /// `self - other`, never below zero.
    pub fn minus(&self, other: &Resources) -> Resources {
        let cpus = self.cpus - other.cpus;
        Resources {
            cpus: if cpus < CPU_EPSILON { 0.0 } else { cpus },
            mem_mb: self.mem_mb.saturating_sub(other.mem_mb),
        }
    }

    /// The smaller of each kind (`self` capped by `other`).
    pub fn min(&self, other: &Resources) -> Resources {
        Resources {
            cpus: self.cpus.min(other.cpus),
            mem_mb: self.mem_mb.min(other.mem_mb),
        }
    }

    /// Nothing at all.
    pub fn is_zero(&self) -> bool {
        self.cpus < CPU_EPSILON && self.mem_mb == 0
    }

    /// Enough to be worth offering: at least [`MIN_OFFER_CPUS`] or
    /// [`MIN_OFFER_MEM_MB`].
    pub fn is_offerable(&self) -> bool {
        self.cpus >= MIN_OFFER_CPUS || self.mem_mb >= MIN_OFFER_MEM_MB
    }

    /// The largest fraction of `total` over resource kinds (0 for kinds the
    /// total has none of).
    pub fn dominant_share_of(&self, total: &Resources) -> f64 {
        let cpu = if total.cpus > 0.0 {
            self.cpus / total.cpus
        } else {
            0.0
        };
        let mem = if total.mem_mb > 0 {
            self.mem_mb as f64 / total.mem_mb as f64
        } else {
            0.0
        };
        cpu.max(mem)
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpus:{}; mem:{}MB", self.cpus, self.mem_mb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_fit() {
        let a = Resources::new(2.0, 1024);
        let b = Resources::new(0.5, 256);
        assert!(a.contains(&b));
        assert!(!b.contains(&a));
        assert_eq!(a.minus(&b), Resources::new(1.5, 768));
        assert_eq!(b.minus(&a), Resources::ZERO);
        assert_eq!(a.minus(&b).plus(&b), a);
        // Float drift: ten tenths of a CPU fit in one CPU.
        let tenth = Resources::new(0.1, 0);
        let mut sum = Resources::ZERO;
        for _ in 0..10 {
            sum = sum.plus(&tenth);
        }
        assert!(Resources::new(1.0, 0).contains(&sum));
        assert!(Resources::new(1.0, 0).minus(&sum).is_zero());
        assert_eq!(a.min(&Resources::new(4.0, 512)), Resources::new(2.0, 512));
    }

    #[test]
    fn dominant_share() {
        let total = Resources::new(9.0, 18 * 1024);
        assert_eq!(
            Resources::new(3.0, 1024).dominant_share_of(&total),
            3.0 / 9.0
        );
        assert_eq!(
            Resources::new(1.0, 4 * 1024).dominant_share_of(&total),
            4.0 / 18.0
        );
        assert_eq!(
            Resources::new(1.0, 1).dominant_share_of(&Resources::ZERO),
            0.0
        );
    }

    #[test]
    fn offerable_thresholds() {
        assert!(!Resources::new(0.0, 16).is_offerable());
        assert!(Resources::new(0.0, 32).is_offerable());
        assert!(Resources::new(0.01, 0).is_offerable());
    }
}
