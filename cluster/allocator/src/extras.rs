//! [`Extras`]: an agent's resources besides CPUs and memory — disk, port ranges and custom
//! scalars (Mesos' `disk`, `ports` and any `name:N`).
//!
//! The allocator shares out CPUs and memory by DRF ([`crate::Resources`], kept `Copy` and
//! fixed-size because a round over 100,000 agents adds and compares them at every agent).
//! Extras are not part of DRF shares (Mesos counts every scalar in shares; Tessera's
//! frameworks — sessions and command tasks — ask for CPUs and memory, so shares over those two
//! order them the same while the hot path stays cheap). The master keeps each agent's free
//! extras and hands them out with the offer of the agent's unreserved CPUs and memory;
//! launches take from them, and they come back when an offer is declined or rescinded or an
//! executor ends.

use std::collections::BTreeMap;
use std::fmt;

use crate::ranges::Ranges;

/// Scalars closer than this are equal (float drift from adding and taking away).
const EPSILON: f64 = 1e-9;

/// Disk, ports and custom scalars.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    /// Disk in MiB.
    pub disk_mb: u64,
    /// Port ranges (Mesos' `ports`).
    pub ports: Ranges,
    /// Custom scalars by name (e.g. `gpus`, `licenses`); no zero entries.
    pub scalars: BTreeMap<String, f64>,
}

impl Extras {
    /// Whether there is no disk, no port and no custom scalar.
    pub fn is_empty(&self) -> bool {
        self.disk_mb == 0 && self.ports.is_empty() && self.scalars.is_empty()
    }

    /// Whether `other` fits in `self`: its disk, every one of its ports, every scalar.
    pub fn contains(&self, other: &Extras) -> bool {
        other.disk_mb <= self.disk_mb
            && self.ports.contains(&other.ports)
            && other
                .scalars
                .iter()
                .all(|(name, v)| *v <= self.scalars.get(name).copied().unwrap_or(0.0) + EPSILON)
    }

    /// `self + other`.
    pub fn plus(&self, other: &Extras) -> Extras {
        let mut scalars = self.scalars.clone();
        for (name, v) in &other.scalars {
            *scalars.entry(name.clone()).or_insert(0.0) += v;
        }
        Extras {
            disk_mb: self.disk_mb.saturating_add(other.disk_mb),
            ports: self.ports.plus(&other.ports),
            scalars,
        }
    }

    /// `self - other`, never below zero (scalars that reach zero are dropped).
    pub fn minus(&self, other: &Extras) -> Extras {
        let mut scalars = self.scalars.clone();
        for (name, v) in &other.scalars {
            if let Some(have) = scalars.get_mut(name) {
                *have -= v;
            }
        }
        scalars.retain(|_, v| *v >= EPSILON);
        Extras {
            disk_mb: self.disk_mb.saturating_sub(other.disk_mb),
            ports: self.ports.minus(&other.ports),
            scalars,
        }
    }

    /// What of `self` is missing from `have`, as text for an error (empty when it fits).
    pub fn missing_from(&self, have: &Extras) -> Vec<String> {
        let mut missing = Vec::new();
        if self.disk_mb > have.disk_mb {
            missing.push(format!("disk {} MiB (has {})", self.disk_mb, have.disk_mb));
        }
        let ports = self.ports.minus(&have.ports);
        if !ports.is_empty() {
            missing.push(format!("ports {ports} (has [{}])", have.ports));
        }
        for (name, v) in &self.scalars {
            let h = have.scalars.get(name).copied().unwrap_or(0.0);
            if *v > h + EPSILON {
                missing.push(format!("{name} {v} (has {h})"));
            }
        }
        missing
    }
}

impl fmt::Display for Extras {
    /// Mesos' text: `disk:100; ports:[31000-32000]; gpus:2` (parts that are zero left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.disk_mb > 0 {
            parts.push(format!("disk:{}", self.disk_mb));
        }
        if !self.ports.is_empty() {
            parts.push(format!("ports:[{}]", self.ports));
        }
        for (name, v) in &self.scalars {
            parts.push(format!("{name}:{v}"));
        }
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extras(disk_mb: u64, ports: &[(u64, u64)], scalars: &[(&str, f64)]) -> Extras {
        Extras {
            disk_mb,
            ports: Ranges::new(ports.iter().copied()),
            scalars: scalars.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn fit_arithmetic_and_what_is_missing() {
        let have = extras(1000, &[(31000, 31010)], &[("gpus", 2.0)]);
        let want = extras(100, &[(31000, 31000)], &[("gpus", 1.0)]);
        assert!(have.contains(&want));
        let rest = have.minus(&want);
        assert_eq!(rest, extras(900, &[(31001, 31010)], &[("gpus", 1.0)]));
        assert_eq!(rest.plus(&want), have);
        assert!(have.minus(&have).is_empty());
        let too_much = extras(2000, &[(8080, 8080)], &[("gpus", 3.0), ("licenses", 1.0)]);
        assert!(!have.contains(&too_much));
        assert_eq!(
            too_much.missing_from(&have),
            vec![
                "disk 2000 MiB (has 1000)".to_string(),
                "ports 8080 (has [31000-31010])".to_string(),
                "gpus 3 (has 2)".to_string(),
                "licenses 1 (has 0)".to_string(),
            ]
        );
        assert!(want.missing_from(&have).is_empty());
        assert_eq!(have.to_string(), "disk:1000; ports:[31000-31010]; gpus:2");
    }
}
