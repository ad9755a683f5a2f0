//! What an agent says it has, in Mesos' text: [`parse_resources`] reads
//! `--resources "cpus:4;mem:8192;disk:100000;ports:[31000-32000];gpus:2;cpus(analytics):2"`
//! and [`parse_attributes`] reads `--attributes "rack:r1;zone:z1"`.
//!
//! `NAME(ROLE):VALUE` is a static reservation, as Mesos' `cpus(role):N`: those resources are
//! offered only to frameworks of `ROLE`, on top of the unreserved ones. Only CPUs and memory
//! can be reserved: disk, ports and custom scalars are [`crate::Extras`] the master hands out
//! with an agent's unreserved offer (see [`crate::extras`]).

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use crate::ranges::{Ranges, RangesError};
use crate::resources::Resources;

/// An agent attribute (Mesos' `--attributes`): a name and a text or scalar value, kept as
/// written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attribute {
    /// The attribute's name, e.g. `rack`.
    pub name: String,
    /// Its value as written, e.g. `r1` or `3`.
    pub value: String,
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.value)
    }
}

/// What a `--resources` text names; `None` where it names nothing (the agent's flags or
/// defaults apply).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceSpec {
    /// Unreserved CPUs (`cpus:N`; fractions allowed).
    pub cpus: Option<f64>,
    /// Unreserved memory in MiB (`mem:N`).
    pub mem_mb: Option<u64>,
    /// Disk in MiB (`disk:N`).
    pub disk_mb: Option<u64>,
    /// Port ranges (`ports:[BEGIN-END,...]`).
    pub ports: Option<Ranges>,
    /// Custom scalars (any other name).
    pub scalars: BTreeMap<String, f64>,
    /// CPUs and memory reserved for each role.
    pub reserved: BTreeMap<String, Resources>,
}

/// A `--resources` or `--attributes` text that cannot be read.
#[derive(Debug, Error, PartialEq)]
pub enum SpecError {
    /// An entry that is not `NAME:VALUE` or `NAME(ROLE):VALUE`.
    #[error(
        "{entry:?} is not a resource: write NAME:VALUE or NAME(ROLE):VALUE separated by `;`, \
         e.g. cpus:4;mem:8192;disk:10000;ports:[31000-32000];gpus:2;cpus(analytics):2"
    )]
    Malformed {
        /// The entry as written.
        entry: String,
    },
    /// A CPU or custom scalar amount that is not a finite, non-negative number.
    #[error("{name}: {value:?} is not a non-negative number; give e.g. {name}:2")]
    BadNumber {
        /// The resource.
        name: String,
        /// What was given.
        value: String,
    },
    /// A `mem` or `disk` amount that is not a whole number of MiB.
    #[error("{name}: {value:?} is not a whole number of MiB; give e.g. {name}:4096")]
    BadMebibytes {
        /// The resource (`mem` or `disk`).
        name: String,
        /// What was given.
        value: String,
    },
    /// A `ports` value that is not a set of ranges.
    #[error("ports: {0}")]
    BadPorts(RangesError),
    /// A reservation of something other than CPUs or memory (e.g. `disk(ROLE):N`).
    #[error(
        "{name}({role}) cannot be reserved: only cpus and mem can be reserved for a role; \
         offer {name} unreserved ({name}:VALUE)"
    )]
    OnlyCpusAndMemReserved {
        /// The resource.
        name: String,
        /// The role it was to be reserved for.
        role: String,
    },
    /// A reservation whose role is empty or holds whitespace or `/`.
    #[error("{role:?} is not a role name; use e.g. cpus(analytics):2")]
    BadRole {
        /// The role as written.
        role: String,
    },
    /// A resource, or a reservation for the same role, given twice.
    #[error("{name} is given twice; give each resource (and each reservation) once")]
    Duplicate {
        /// The resource, as `NAME` or `NAME(ROLE)`.
        name: String,
    },
    /// An `--attributes` entry that is not `NAME:VALUE`.
    #[error(
        "{entry:?} is not an attribute: write NAME:VALUE separated by `;`, e.g. rack:r1;zone:z1"
    )]
    MalformedAttribute {
        /// The entry as written.
        entry: String,
    },
    /// An attribute given twice.
    #[error("attribute {name} is given twice; give each attribute once")]
    DuplicateAttribute {
        /// The attribute's name.
        name: String,
    },
    /// A resource given both by its own flag and in `--resources` (see [`flag_or_spec`]).
    #[error("{name} is given both as --{flag} and in --resources; give it once")]
    GivenTwice {
        /// The resource, e.g. `cpus`.
        name: &'static str,
        /// Its flag, without the `--`.
        flag: &'static str,
    },
}

fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.split(';').map(str::trim).filter(|e| !e.is_empty())
}

fn number(name: &str, value: &str) -> Result<f64, SpecError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| SpecError::BadNumber {
            name: name.to_string(),
            value: value.to_string(),
        })
}

fn mebibytes(name: &str, value: &str) -> Result<u64, SpecError> {
    value.parse::<u64>().map_err(|_| SpecError::BadMebibytes {
        name: name.to_string(),
        value: value.to_string(),
    })
}

fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), SpecError> {
    if slot.replace(value).is_some() {
        return Err(SpecError::Duplicate {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Reads a Mesos-style resources text (see the module's documentation).
pub fn parse_resources(text: &str) -> Result<ResourceSpec, SpecError> {
    let mut spec = ResourceSpec::default();
    for entry in entries(text) {
        let malformed = || SpecError::Malformed {
            entry: entry.to_string(),
        };
        let (key, value) = entry.split_once(':').ok_or_else(malformed)?;
        let (key, value) = (key.trim(), value.trim());
        let (name, role) = match key.split_once('(') {
            Some((name, rest)) => {
                let role = rest.strip_suffix(')').ok_or_else(malformed)?;
                (name.trim(), Some(role.trim()))
            }
            None => (key, None),
        };
        if name.is_empty() || value.is_empty() || name.contains(char::is_whitespace) {
            return Err(malformed());
        }
        match role {
            // `cpus(*)` is Mesos' spelling of unreserved.
            Some(role) if role != "*" => {
                if role.is_empty() || role.contains(|c: char| c.is_whitespace() || c == '/') {
                    return Err(SpecError::BadRole {
                        role: role.to_string(),
                    });
                }
                let reserved = spec.reserved.entry(role.to_string()).or_default();
                let duplicate = || SpecError::Duplicate {
                    name: format!("{name}({role})"),
                };
                match name {
                    "cpus" if reserved.cpus == 0.0 => reserved.cpus = number(name, value)?,
                    "mem" if reserved.mem_mb == 0 => reserved.mem_mb = mebibytes(name, value)?,
                    "cpus" | "mem" => return Err(duplicate()),
                    _ => {
                        return Err(SpecError::OnlyCpusAndMemReserved {
                            name: name.to_string(),
                            role: role.to_string(),
                        });
                    }
                }
            }
            _ => match name {
                "cpus" => set_once(&mut spec.cpus, name, number(name, value)?)?,
                "mem" => set_once(&mut spec.mem_mb, name, mebibytes(name, value)?)?,
                "disk" => set_once(&mut spec.disk_mb, name, mebibytes(name, value)?)?,
                "ports" => set_once(
                    &mut spec.ports,
                    name,
                    Ranges::parse(value).map_err(SpecError::BadPorts)?,
                )?,
                _ => {
                    let v = number(name, value)?;
                    if spec.scalars.insert(name.to_string(), v).is_some() {
                        return Err(SpecError::Duplicate {
                            name: name.to_string(),
                        });
                    }
                }
            },
        }
    }
    spec.scalars.retain(|_, v| *v > 0.0);
    Ok(spec)
}

/// The value of `name` from its own flag (`--FLAG`) or from `--resources`, not both.
pub fn flag_or_spec<T>(
    name: &'static str,
    flag: &'static str,
    from_flag: Option<T>,
    from_spec: Option<T>,
) -> Result<Option<T>, SpecError> {
    match (from_flag, from_spec) {
        (Some(_), Some(_)) => Err(SpecError::GivenTwice { name, flag }),
        (a, b) => Ok(a.or(b)),
    }
}

/// Reads `rack:r1;zone:z1;level:3` (names and values as written; sorted by name).
pub fn parse_attributes(text: &str) -> Result<Vec<Attribute>, SpecError> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries(text) {
        let malformed = || SpecError::MalformedAttribute {
            entry: entry.to_string(),
        };
        let (name, value) = entry.split_once(':').ok_or_else(malformed)?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || value.is_empty() || name.contains(char::is_whitespace) {
            return Err(malformed());
        }
        if out.insert(name.to_string(), value.to_string()).is_some() {
            return Err(SpecError::DuplicateAttribute {
                name: name.to_string(),
            });
        }
    }
    Ok(out
        .into_iter()
        .map(|(name, value)| Attribute { name, value })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unreserved_reserved_ports_and_custom_scalars() {
        let spec = parse_resources(
            "cpus:4; mem:8192;disk:100000;ports:[31000-32000];gpus:2;\
             cpus(analytics):2;mem(analytics):4096;cpus(*):0.5x",
        );
        assert_eq!(
            spec,
            Err(SpecError::BadNumber {
                name: "cpus".into(),
                value: "0.5x".into()
            })
        );
        let spec = parse_resources(
            "cpus:4; mem:8192;disk:100000;ports:[31000-32000];gpus:2;\
             cpus(analytics):2;mem(analytics):4096;licenses:0",
        )
        .unwrap();
        assert_eq!(spec.cpus, Some(4.0));
        assert_eq!(spec.mem_mb, Some(8192));
        assert_eq!(spec.disk_mb, Some(100000));
        assert_eq!(spec.ports, Some(Ranges::new([(31000, 32000)])));
        assert_eq!(spec.scalars, BTreeMap::from([("gpus".to_string(), 2.0)]));
        assert_eq!(
            spec.reserved,
            BTreeMap::from([("analytics".to_string(), Resources::new(2.0, 4096))])
        );
        assert_eq!(parse_resources("  ").unwrap(), ResourceSpec::default());
        assert_eq!(parse_resources("cpus(*):3").unwrap().cpus, Some(3.0));
    }

    #[test]
    fn refuses_what_it_cannot_read_with_the_remedy() {
        let err = |t: &str| parse_resources(t).unwrap_err();
        assert!(matches!(err("cpus"), SpecError::Malformed { .. }));
        assert!(matches!(
            err("cpus(analytics:2"),
            SpecError::Malformed { .. }
        ));
        assert!(matches!(err("mem:1.5"), SpecError::BadMebibytes { .. }));
        assert!(matches!(err("gpus:-1"), SpecError::BadNumber { .. }));
        assert!(matches!(err("ports:[2-1]"), SpecError::BadPorts(_)));
        assert_eq!(
            err("cpus:1;cpus:2"),
            SpecError::Duplicate {
                name: "cpus".into()
            }
        );
        assert_eq!(
            err("cpus(a):1;cpus(a):2"),
            SpecError::Duplicate {
                name: "cpus(a)".into()
            }
        );
        let e = err("disk(analytics):10");
        assert!(e.to_string().contains("only cpus and mem can be reserved"));
        assert!(matches!(err("cpus(a b):1"), SpecError::BadRole { .. }));
        assert!(
            err("x").to_string().contains("e.g. cpus:4;mem:8192"),
            "the message shows the syntax"
        );
        assert_eq!(
            flag_or_spec("cpus", "cpus", Some(1.0), Some(2.0)),
            Err(SpecError::GivenTwice {
                name: "cpus",
                flag: "cpus"
            })
        );
        assert_eq!(flag_or_spec("cpus", "cpus", None, Some(2.0)), Ok(Some(2.0)));
    }

    #[test]
    fn reads_attributes() {
        let attrs = parse_attributes("zone:z1; rack:r1;level:3").unwrap();
        let text: Vec<String> = attrs.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["level:3", "rack:r1", "zone:z1"]);
        assert!(matches!(
            parse_attributes("rack"),
            Err(SpecError::MalformedAttribute { .. })
        ));
        assert!(matches!(
            parse_attributes("rack:r1;rack:r2"),
            Err(SpecError::DuplicateAttribute { .. })
        ));
        assert_eq!(parse_attributes("").unwrap(), vec![]);
    }
}
