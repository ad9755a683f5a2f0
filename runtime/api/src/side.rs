//! Values of two RDDs that travel together, each tagged with the RDD it came from.

use serde::{Deserialize, Serialize};

/// A value of one side of a `cogroup` or a `cartesian`, tagged with its side while both sides
/// travel together.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Side<V, W> {
    /// A value of the RDD the operation is called on.
    Left(V),
    /// A value of the `other` RDD it is given.
    Right(W),
}
