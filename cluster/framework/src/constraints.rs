//! [`Constraints`]: where a framework may launch, over agents' attributes, in the syntax of
//! Spark's `spark.mesos.constraints`: `rack:r1,r2;zone:z1` — every named attribute must be
//! present and, when values are listed, have one of them; a name alone (`gpu`) asks only that
//! the attribute be there.
//!
//! As in Spark, a value that is a number on both sides matches an agent whose value is at
//! least that number (`level:2` matches `level:3`); any other value must be equal as text.

use std::fmt;

use tessera_allocator::Attribute;

/// Where a framework may launch (empty: anywhere).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Constraints {
    /// Attribute names and the values each may have (empty: any value).
    entries: Vec<(String, Vec<String>)>,
}

/// A constraint text that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConstraintError {
    /// An entry whose attribute name is empty or holds whitespace, or with an empty value.
    #[error(
        "{entry:?} is not a constraint: write ATTRIBUTE:VALUE,VALUE or ATTRIBUTE alone, \
         separated by `;`, e.g. rack:r1,r2;zone:z1"
    )]
    Malformed {
        /// The entry as written.
        entry: String,
    },
    /// An attribute named in two entries.
    #[error(
        "attribute {name} is constrained twice; list all its values in one entry (e.g. {name}:a,b)"
    )]
    Duplicate {
        /// The attribute's name.
        name: String,
    },
}

impl Constraints {
    /// Reads `rack:r1,r2;zone:z1` (spaces around parts are ignored; empty text: none).
    pub fn parse(text: &str) -> Result<Constraints, ConstraintError> {
        let mut entries: Vec<(String, Vec<String>)> = Vec::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let malformed = || ConstraintError::Malformed {
                entry: entry.to_string(),
            };
            let (name, values) = match entry.split_once(':') {
                Some((name, values)) => {
                    let values: Vec<String> =
                        values.split(',').map(|v| v.trim().to_string()).collect();
                    if values.iter().any(String::is_empty) {
                        return Err(malformed());
                    }
                    (name.trim(), values)
                }
                None => (entry, Vec::new()),
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(malformed());
            }
            if entries.iter().any(|(n, _)| n == name) {
                return Err(ConstraintError::Duplicate {
                    name: name.to_string(),
                });
            }
            entries.push((name.to_string(), values));
        }
        Ok(Constraints { entries })
    }

    /// Whether there are no constraints (any agent will do).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether an agent with `attributes` is a place to launch.
    pub fn matches(&self, attributes: &[Attribute]) -> bool {
        self.mismatch(attributes).is_none()
    }

    /// Why an agent with `attributes` is not a place to launch (`None`: it is), e.g.
    /// `rack is r1, not one of r2`.
    pub fn mismatch(&self, attributes: &[Attribute]) -> Option<String> {
        self.entries.iter().find_map(|(name, values)| {
            let Some(have) = attributes.iter().find(|a| &a.name == name) else {
                return Some(format!("it has no attribute {name}"));
            };
            if values.is_empty() || values.iter().any(|v| value_matches(v, &have.value)) {
                return None;
            }
            Some(format!(
                "{name} is {}, not one of {}",
                have.value,
                values.join(",")
            ))
        })
    }
}

/// A number matches an agent's number at least as large; anything else matches equal text.
fn value_matches(wanted: &str, have: &str) -> bool {
    match (wanted.parse::<f64>(), have.parse::<f64>()) {
        (Ok(w), Ok(h)) => w <= h,
        _ => wanted == have,
    }
}

impl fmt::Display for Constraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .entries
            .iter()
            .map(|(name, values)| match values.is_empty() {
                true => name.clone(),
                false => format!("{name}:{}", values.join(",")),
            })
            .collect();
        f.write_str(&parts.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(text: &str) -> Vec<Attribute> {
        tessera_allocator::agent_spec::parse_attributes(text).unwrap()
    }

    #[test]
    fn every_named_attribute_must_have_one_of_its_values() {
        let c = Constraints::parse("rack:r1,r2; zone:z1").unwrap();
        assert_eq!(c.to_string(), "rack:r1,r2;zone:z1");
        assert!(c.matches(&attrs("rack:r2;zone:z1;os:linux")));
        assert_eq!(
            c.mismatch(&attrs("rack:r3;zone:z1")),
            Some("rack is r3, not one of r1,r2".into())
        );
        assert_eq!(
            c.mismatch(&attrs("rack:r1")),
            Some("it has no attribute zone".into())
        );
        assert!(Constraints::parse("").unwrap().matches(&[]));
        assert!(Constraints::parse("").unwrap().is_empty());
    }

    #[test]
    fn a_name_alone_asks_for_the_attribute_and_numbers_are_lower_bounds() {
        let c = Constraints::parse("gpu;level:2").unwrap();
        assert!(c.matches(&attrs("gpu:any;level:3")));
        assert!(c.matches(&attrs("gpu:x;level:2.0")));
        assert!(!c.matches(&attrs("gpu:x;level:1")));
        assert!(!c.matches(&attrs("level:5")));
    }

    #[test]
    fn unreadable_constraints_say_how_to_write_them() {
        let err = Constraints::parse("rack:").unwrap_err();
        assert_eq!(
            err,
            ConstraintError::Malformed {
                entry: "rack:".into()
            }
        );
        assert!(err.to_string().contains("e.g. rack:r1,r2;zone:z1"));
        assert!(matches!(
            Constraints::parse("rack:r1;rack:r2"),
            Err(ConstraintError::Duplicate { .. })
        ));
        assert!(matches!(
            Constraints::parse(":r1"),
            Err(ConstraintError::Malformed { .. })
        ));
    }
}
