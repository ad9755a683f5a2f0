//! A planned query: a tree of the DataFrame operations a cell's DataFrame API makes, over the
//! tables the session registered.

use std::collections::BTreeMap;
use tessera_plan::frame::{FrameStep, JoinOn};

/// The tables a query may read: each registered name with its column names, in order.
pub type Tables = BTreeMap<String, Vec<String>>;

/// A planned query: DataFrame operations over registered tables.
#[derive(Clone, Debug, PartialEq)]
pub enum Relation {
    /// A registered table, by the name it was registered under.
    Table(String),
    /// The DataFrame `step` makes of `input`'s.
    Step {
        /// What the step reads.
        input: Box<Relation>,
        /// The step, as a cell's DataFrame operation would make it.
        step: FrameStep,
    },
    /// The join of two DataFrames.
    Join {
        /// The left side.
        left: Box<Relation>,
        /// The right side.
        right: Box<Relation>,
        /// The keys and the kind of join.
        on: JoinOn,
    },
    /// The rows of every input, which have the same columns.
    Union(Vec<Relation>),
}

impl Relation {
    /// This relation with `step` applied to it.
    pub(crate) fn then(self, step: FrameStep) -> Relation {
        Relation::Step {
            input: Box::new(self),
            step,
        }
    }
}
