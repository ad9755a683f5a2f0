//! An RDD's lineage, shown: [`Rdd::lineage`] asks the driver, which holds the graph, for the RDD
//! and those it is computed from; [`Lineage`] draws them as Spark's `toDebugString` does (a tree
//! whose `+-` marks a shuffle, with partition counts at every stage's start) and, for notebooks,
//! as a table with a stage column. An RDD handle that is a cell's value shows its lineage.

use crate::error::Error;
use crate::rdd::Rdd;
use crate::rich::RichDisplay;
use std::fmt;
use tessera_plan::cell_protocol::{CellRequest, CellResponse};
use tessera_table::Table;

pub use tessera_plan::cell_protocol::LineageEntry;

/// The lineage of an RDD: the RDD first, then those it is computed from, depth first.
#[derive(Clone, Debug, PartialEq)]
pub struct Lineage {
    entries: Vec<LineageEntry>,
}

impl<T> Rdd<T> {
    /// This RDD's lineage as the driver holds it now: every RDD it is computed from, their
    /// kinds, partitions, partitioners, storage levels and cached partitions.
    pub fn lineage(&self) -> Lineage {
        match self.context().call(CellRequest::Lineage { rdd: self.id() }) {
            Ok(CellResponse::Lineage { rdds }) => Lineage { entries: rdds },
            Ok(other) => Error::unexpected_reply(&other).raise(),
            Err(e) => e.raise(),
        }
    }

    /// The lineage as text, as Spark's `toDebugString`.
    pub fn to_debug_string(&self) -> String {
        self.lineage().to_string()
    }
}

/// An RDD handle shows its lineage.
impl<T> RichDisplay for Rdd<T> {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        self.lineage().mime_bundle()
    }
}

impl Lineage {
    /// The RDDs of the lineage, the RDD itself first.
    pub fn entries(&self) -> &[LineageEntry] {
        &self.entries
    }

    /// How an entry reads in the debug string: operation, id, kind, records, storage.
    fn describe(&self, entry: &LineageEntry) -> String {
        let mut text = format!("{} [{}] {}", entry.name, entry.rdd, entry.kind);
        if let Some(partitioner) = &entry.partitioner {
            text += &format!(" by {partitioner}");
        }
        let reader_partitions = entry
            .reader
            .and_then(|r| self.entries.get(r as usize))
            .map(|r| r.partitions);
        if !entry.shuffle_parent && reader_partitions.is_some_and(|n| n != entry.partitions) {
            text += &format!(" ({} partitions)", entry.partitions);
        }
        text += &format!(": {}", short_type_name(&entry.element_type));
        if let Some(level) = entry.storage {
            text += &format!(
                " [{level}, {}/{} cached]",
                entry.cached_partitions, entry.partitions
            );
        }
        if entry.repeated {
            text += " (listed above)";
        }
        text
    }

    /// The stage of each entry: 0 for the stage that computes the RDD itself, a new number at
    /// every shuffle's map side.
    fn stages(&self) -> Vec<u32> {
        let mut stages: Vec<u32> = Vec::with_capacity(self.entries.len());
        let mut next = 1;
        for entry in &self.entries {
            let stage = match entry.reader {
                Some(_) if entry.shuffle_parent => {
                    next += 1;
                    next - 1
                }
                Some(reader) => stages.get(reader as usize).copied().unwrap_or(0),
                None => 0,
            };
            stages.push(stage);
        }
        stages
    }

    /// The lineage as a table: a row per RDD, with its stage.
    pub fn table(&self) -> Table {
        let stages = self.stages();
        let rows = self.entries.iter().zip(stages).map(|(e, stage)| {
            vec![
                stage.to_string(),
                e.rdd.to_string(),
                if e.repeated {
                    format!("{} (listed above)", e.name)
                } else {
                    e.name.clone()
                },
                e.kind.clone(),
                short_type_name(&e.element_type),
                e.partitions.to_string(),
                e.partitioner.clone().unwrap_or_default(),
                e.storage.map(|l| l.to_string()).unwrap_or_default(),
                e.storage
                    .map(|_| format!("{}/{}", e.cached_partitions, e.partitions))
                    .unwrap_or_default(),
            ]
        });
        let title = match self.entries.first() {
            Some(rdd) => format!("Lineage of rdd {}", rdd.rdd),
            None => "Lineage".to_string(),
        };
        Table::new(
            &[
                "stage",
                "rdd",
                "operation",
                "kind",
                "records",
                "partitions",
                "partitioner",
                "storage",
                "cached",
            ],
            rows,
        )
        .titled(&title)
    }
}

/// Spark's `toDebugString` layout: the first line and every shuffle's map side start with their
/// partition count, `+-` marks a shuffle, and `|` continues a stage.
impl fmt::Display for Lineage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What the parents of each entry are written after.
        let mut parent_prefix: Vec<String> = Vec::with_capacity(self.entries.len());
        for (index, entry) in self.entries.iter().enumerate() {
            let count = format!("({})", entry.partitions);
            let left = (count.len() - 1) / 2;
            let bar = format!("{}|{}", " ".repeat(left), " ".repeat(count.len() - left));
            let reader_prefix = entry
                .reader
                .and_then(|r| parent_prefix.get(r as usize))
                .cloned();
            let (line, prefix) = match reader_prefix {
                None => (format!("{count} {}", self.describe(entry)), bar),
                Some(prefix) if entry.shuffle_parent => {
                    let trimmed = prefix.trim_end();
                    let this = trimmed.strip_suffix('|').unwrap_or(&prefix).to_string();
                    let next =
                        format!("{this}{}{bar}", if entry.last_parent { "  " } else { "| " });
                    (format!("{this}+-{count} {}", self.describe(entry)), next)
                }
                Some(prefix) => (format!("{prefix}{}", self.describe(entry)), prefix),
            };
            if index > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&line)?;
            parent_prefix.push(prefix);
        }
        Ok(())
    }
}

/// Text for terminals (the debug string) and a table for notebooks.
impl RichDisplay for Lineage {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        vec![
            ("text/plain".to_string(), self.to_string()),
            ("text/html".to_string(), self.table().html()),
        ]
    }
}

/// A type's name without its module paths: `(alloc::string::String, u64)` → `(String, u64)`.
pub(crate) fn short_type_name(name: &str) -> String {
    let mut short = String::with_capacity(name.len());
    let mut segment = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            segment.clear();
        } else {
            short += &segment;
            segment.clear();
            short.push(c);
        }
    }
    short + &segment
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plan::StorageLevel;

    fn entry(
        rdd: u64,
        name: &str,
        kind: &str,
        partitions: u32,
        reader: Option<u32>,
        shuffle_parent: bool,
    ) -> LineageEntry {
        LineageEntry {
            rdd,
            name: name.into(),
            kind: kind.into(),
            element_type: "(alloc::string::String, u64)".into(),
            partitions,
            partitioner: None,
            storage: None,
            cached_partitions: 0,
            reader,
            last_parent: true,
            shuffle_parent,
            repeated: false,
        }
    }

    #[test]
    fn the_debug_string_draws_shuffles_as_spark_does() {
        let mut reduced = entry(4, "reduce_by_key", "shuffle", 2, None, false);
        reduced.partitioner = Some("hash".into());
        let mut mapped = entry(3, "map", "narrow", 3, Some(0), true);
        mapped.storage = Some(StorageLevel::MemoryOnly);
        mapped.cached_partitions = 1;
        let mut words = entry(2, "flat_map", "narrow", 3, Some(1), false);
        words.element_type = "alloc::string::String".into();
        let mut lines = entry(1, "text_file(a.txt)", "text file", 3, Some(2), false);
        lines.element_type = "alloc::string::String".into();
        let lineage = Lineage {
            entries: vec![reduced, mapped, words, lines],
        };
        assert_eq!(
            lineage.to_string(),
            "(2) reduce_by_key [4] shuffle by hash: (String, u64)\n \
             +-(3) map [3] narrow: (String, u64) [MEMORY_ONLY, 1/3 cached]\n    \
             |  flat_map [2] narrow: String\n    \
             |  text_file(a.txt) [1] text file: String"
        );
        let table = lineage.table();
        assert_eq!(table.title.as_deref(), Some("Lineage of rdd 4"));
        let stages: Vec<&str> = table.rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(stages, ["0", "1", "1", "1"]);
        assert_eq!(table.rows[1][7], "MEMORY_ONLY");
        assert_eq!(table.rows[1][8], "1/3");
    }

    #[test]
    fn a_union_lists_its_parents_under_it_with_their_partitions() {
        let union = entry(3, "union", "union", 5, None, false);
        let mut left = entry(1, "parallelize", "parallelize", 2, Some(0), false);
        left.last_parent = false;
        let right = entry(2, "parallelize", "parallelize", 3, Some(0), false);
        let text = Lineage {
            entries: vec![union, left, right],
        }
        .to_string();
        assert_eq!(
            text,
            "(5) union [3] union: (String, u64)\n \
             |  parallelize [1] parallelize (2 partitions): (String, u64)\n \
             |  parallelize [2] parallelize (3 partitions): (String, u64)"
        );
    }

    #[test]
    fn type_names_lose_their_module_paths() {
        assert_eq!(
            short_type_name("(alloc::string::String, u64)"),
            "(String, u64)"
        );
        assert_eq!(
            short_type_name("alloc::vec::Vec<(u64, core::option::Option<f64>)>"),
            "Vec<(u64, Option<f64>)>"
        );
        assert_eq!(short_type_name("[f64; 10]"), "[f64; 10]");
    }
}
