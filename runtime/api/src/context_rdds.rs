//! The RDDs a [`Context`] starts, as Spark's `SparkContext` does: from a local collection
//! (`parallelize`), from text files (`text_file`) and from other RDDs side by side (`union`),
//! and the request that adds any RDD to the session's lineage graph. Kept apart from the
//! handle itself so that the handle does not depend on the RDD type that holds it.

use crate::context::Context;
use crate::data::Data;
use crate::error::Error;
use crate::ops::{RecordsSource, TextSource};
use crate::rdd::{Rdd, source_operator};
use tessera_plan::cell_protocol::CellRequest;
use tessera_plan::{RddKind, RddNode};

impl Context {
    /// Adds the RDD `node` describes to the session's lineage graph and returns its handle.
    pub(crate) fn define<T>(&self, node: RddNode<tessera_plan::LocalCodeRef>) -> Rdd<T> {
        Rdd::new(*self, self.define_untyped(CellRequest::Define(node)))
    }

    /// Sends a request that adds an RDD and returns its handle.
    fn defined<T>(&self, request: CellRequest) -> Rdd<T> {
        Rdd::new(*self, self.define_untyped(request))
    }

    /// Distributes a local collection as an RDD of `num_partitions` partitions (at least one).
    pub fn parallelize<T: Data>(&self, data: Vec<T>, num_partitions: usize) -> Rdd<T> {
        let n = num_partitions.max(1);
        let len = data.len();
        let partitions = (0..n)
            .map(|i| {
                let (start, end) = (i * len / n, (i + 1) * len / n);
                crate::encoding::encode(&data[start..end]).unwrap_or_else(|source| {
                    Error::Serialize {
                        what: "the collection",
                        source,
                    }
                    .raise()
                })
            })
            .collect();
        let decoder = source_operator(RecordsSource::<T>::entry).unwrap_or_else(|e| e.raise());
        self.define(RddNode {
            kind: RddKind::Parallelize {
                partitions,
                decoder,
            },
            num_partitions: n as u32,
            element_type: std::any::type_name::<T>().to_string(),
            name: "parallelize".to_string(),
        })
    }

    /// The lines of a text file, of every file in a directory, or of every file a glob such as
    /// `logs/*.txt` matches, in at least `min_partitions` partitions.
    pub fn text_file(&self, path: &str, min_partitions: usize) -> Rdd<String> {
        let decoder = source_operator(TextSource::entry).unwrap_or_else(|e| e.raise());
        let request = CellRequest::TextFile {
            path: path.to_string(),
            min_partitions: min_partitions.max(1) as u32,
            decoder,
            name: format!("text_file({path})"),
        };
        self.defined(request)
    }

    /// The records of every RDD of `rdds`, in order: their partitions side by side.
    pub fn union<T: Data>(&self, rdds: &[Rdd<T>]) -> Rdd<T> {
        if rdds.is_empty() {
            Error::EmptyUnion.raise()
        }
        self.define(RddNode {
            kind: RddKind::Union {
                parents: rdds.iter().map(|r| r.id()).collect(),
            },
            num_partitions: 0, // the driver adds up the parents'
            element_type: std::any::type_name::<T>().to_string(),
            name: "union".to_string(),
        })
    }
}
