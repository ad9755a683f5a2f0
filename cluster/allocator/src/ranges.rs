//! [`Ranges`]: sets of whole numbers kept as sorted, disjoint, inclusive ranges — how agents
//! offer ports (Mesos' `ports:[31000-32000]`) and how launches name the ports they take.

use std::fmt;

use thiserror::Error;

/// A set of whole numbers as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ranges(Vec<(u64, u64)>);

/// Text that is not a set of ranges.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RangesError {
    /// A part that is neither `BEGIN-END` nor a single number.
    #[error(
        "{0:?} is not a range: write ranges as BEGIN-END or single numbers, separated by \
         commas, e.g. 31000-32000,8080"
    )]
    Malformed(String),
    /// A range whose end is below its begin.
    #[error("range {begin}-{end} ends before it begins; write the smaller number first")]
    Reversed {
        /// Its first number.
        begin: u64,
        /// Its last number, below `begin`.
        end: u64,
    },
}

impl Ranges {
    /// The set of the given inclusive ranges (in any order, overlapping or not). A pair
    /// whose end is below its begin is empty.
    pub fn new(pairs: impl IntoIterator<Item = (u64, u64)>) -> Ranges {
        let mut pairs: Vec<(u64, u64)> = pairs.into_iter().filter(|(b, e)| b <= e).collect();
        pairs.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(pairs.len());
        for (b, e) in pairs {
            match merged.last_mut() {
                Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((b, e)),
            }
        }
        Ranges(merged)
    }

    /// Parses `31000-32000,8080` (optionally in brackets, `[31000-32000]`, as Mesos writes
    /// them; spaces are ignored).
    pub fn parse(text: &str) -> Result<Ranges, RangesError> {
        let inner = text.trim();
        let inner = inner
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(inner);
        let mut pairs = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let number = |t: &str| {
                t.trim()
                    .parse::<u64>()
                    .map_err(|_| RangesError::Malformed(part.to_string()))
            };
            let (begin, end) = match part.split_once('-') {
                Some((b, e)) => (number(b)?, number(e)?),
                None => (number(part)?, number(part)?),
            };
            if end < begin {
                return Err(RangesError::Reversed { begin, end });
            }
            pairs.push((begin, end));
        }
        Ok(Ranges::new(pairs))
    }

    /// The ranges, sorted and disjoint.
    pub fn pairs(&self) -> &[(u64, u64)] {
        &self.0
    }

    /// Whether the set holds no number.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many numbers the set holds.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|(b, e)| e - b + 1).sum()
    }

    /// Whether every number of `other` is in `self`.
    pub fn contains(&self, other: &Ranges) -> bool {
        other.0.iter().all(|&(b, e)| {
            // The one range of `self` that could hold `b`.
            let at = self.0.partition_point(|&(_, end)| end < b);
            self.0.get(at).is_some_and(|&(sb, se)| sb <= b && e <= se)
        })
    }

    /// The union.
    pub fn plus(&self, other: &Ranges) -> Ranges {
        Ranges::new(self.0.iter().chain(&other.0).copied())
    }

    /// The numbers of `self` not in `other`.
    pub fn minus(&self, other: &Ranges) -> Ranges {
        let mut out = Vec::new();
        for &(mut b, e) in &self.0 {
            let mut all_taken = false;
            for &(ob, oe) in &other.0 {
                if oe < b || ob > e {
                    continue;
                }
                if ob > b {
                    out.push((b, ob - 1));
                }
                if oe >= e {
                    all_taken = true;
                    break;
                }
                b = oe + 1;
            }
            if !all_taken {
                out.push((b, e));
            }
        }
        Ranges(out)
    }
}

impl fmt::Display for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (b, e)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if b == e {
                write!(f, "{b}")?;
            } else {
                write!(f, "{b}-{e}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_merges_and_prints() {
        let r = Ranges::parse("[31000-32000, 8080,8081-8090,31500-32010]").unwrap();
        assert_eq!(r.pairs(), &[(8080, 8090), (31000, 32010)]);
        assert_eq!(r.to_string(), "8080-8090,31000-32010");
        assert_eq!(r.count(), 11 + 1011);
        assert_eq!(Ranges::parse("").unwrap(), Ranges::default());
        assert_eq!(
            Ranges::parse("9-3"),
            Err(RangesError::Reversed { begin: 9, end: 3 })
        );
        assert_eq!(
            Ranges::parse("80-http"),
            Err(RangesError::Malformed("80-http".into()))
        );
        assert!(
            RangesError::Malformed("x".into())
                .to_string()
                .contains("e.g. 31000-32000,8080")
        );
    }

    #[test]
    fn containment_union_and_difference() {
        let offer = Ranges::new([(31000, 32000), (8080, 8080)]);
        assert!(offer.contains(&Ranges::new([(31000, 31001), (8080, 8080)])));
        assert!(offer.contains(&Ranges::default()));
        assert!(!offer.contains(&Ranges::new([(31999, 32001)])));
        assert!(!offer.contains(&Ranges::new([(8081, 8081)])));
        let taken = Ranges::new([(31000, 31000), (31500, 31600), (8080, 8080)]);
        let rest = offer.minus(&taken);
        assert_eq!(rest.pairs(), &[(31001, 31499), (31601, 32000)]);
        assert_eq!(rest.plus(&taken), offer);
        assert_eq!(offer.minus(&offer), Ranges::default());
        assert_eq!(
            Ranges::new([(0, u64::MAX)]).minus(&Ranges::new([(5, u64::MAX)])),
            Ranges::new([(0, 4)])
        );
    }
}
