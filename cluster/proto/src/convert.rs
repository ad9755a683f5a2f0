//! Conversions between the wire's resources and attributes and the allocator's types
//! ([`Resources`] for CPUs and memory, [`Extras`] for disk, ports and custom scalars,
//! [`Attribute`]), so that the master, agents and frameworks convert them one way.

use tessera_allocator::{Attribute, Extras, Ranges, Resources};

use crate::master as pb;

impl pb::Resources {
    /// The wire form of CPUs and memory plus extras.
    pub fn of(resources: &Resources, extras: &Extras) -> pb::Resources {
        pb::Resources {
            cpus: resources.cpus,
            mem_mb: resources.mem_mb,
            disk_mb: extras.disk_mb,
            ports: extras
                .ports
                .pairs()
                .iter()
                .map(|&(begin, end)| pb::Range { begin, end })
                .collect(),
            scalars: extras
                .scalars
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }

    /// CPUs and memory only.
    pub fn of_cpus_mem(resources: &Resources) -> pb::Resources {
        pb::Resources::of(resources, &Extras::default())
    }

    /// The CPUs and memory.
    pub fn cpus_mem(&self) -> Resources {
        Resources::new(self.cpus, self.mem_mb)
    }

    /// The disk, ports and custom scalars (zero and negative scalars left out; NaN kept, for
    /// the master to refuse).
    pub fn extras(&self) -> Extras {
        Extras {
            disk_mb: self.disk_mb,
            ports: Ranges::new(self.ports.iter().map(|r| (r.begin, r.end))),
            scalars: self
                .scalars
                .iter()
                .filter(|(_, v)| v.is_nan() || **v > 0.0)
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }
}

/// Both halves of optional wire resources (zero when absent).
pub fn split(r: Option<&pb::Resources>) -> (Resources, Extras) {
    r.map(|r| (r.cpus_mem(), r.extras())).unwrap_or_default()
}

impl From<&Attribute> for pb::Attribute {
    fn from(a: &Attribute) -> pb::Attribute {
        pb::Attribute {
            name: a.name.clone(),
            value: a.value.clone(),
        }
    }
}

impl From<pb::Attribute> for Attribute {
    fn from(a: pb::Attribute) -> Attribute {
        Attribute {
            name: a.name,
            value: a.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_round_trip() {
        let extras = Extras {
            disk_mb: 10,
            ports: Ranges::new([(31000, 31010), (8080, 8080)]),
            scalars: [("gpus".to_string(), 2.0)].into(),
        };
        let r = Resources::new(1.5, 512);
        let wire = pb::Resources::of(&r, &extras);
        assert_eq!(split(Some(&wire)), (r, extras));
        assert_eq!(split(None), (Resources::ZERO, Extras::default()));
    }
}
