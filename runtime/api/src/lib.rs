//! Tessera's user-facing API: what a REPL, notebook or script cell links.
//!
//! A [`Context`] (`sc` in a session) creates [`Rdd`]s; transformations are lazy and recorded by
//! the driver; actions run jobs on executors and bring results back. Handles are `Copy` and hold
//! no state of their own — the lineage lives in the driver — so a cell that fails loses nothing.
//!
//! Closures run on executors: their compiled code is shipped as part of the cell's library, and
//! whatever they capture must be serializable. A closure that captures nothing can be passed as
//! it is. In a session, a `move` closure may capture earlier variables: the session rewrites it
//! (see `auto_capture`) so that they travel with it. Elsewhere (compiled code, or explicitly),
//! [`capture!`] lists them:
//!
//! ```ignore
//! let stop = vec!["the".to_string(), "a".to_string()];
//! let words = lines.flat_map(|l: String| l.split(' ').map(String::from).collect::<Vec<_>>());
//! let kept = words.filter(move |w| !stop.contains(w));            // in a session
//! let kept = words.filter(capture!([stop] move |w: &String| !stop.contains(w))); // anywhere
//! ```

#![deny(missing_docs)]

mod auto_capture;
mod batch;
mod capture;
mod client;
mod code_ref;
mod combine_table;
mod context;
mod context_rdds;
mod data;
mod data_frame;
mod encoding;
mod error;
pub mod files;
mod hash;
mod lineage;
pub mod notebook;
mod numeric_rdd;
mod op_error;
mod ops;
mod pair_rdd;
mod panic_hook;
mod partitioner;
pub mod plot;
mod plot_error;
mod rdd;
mod record_cells;
mod rich;
mod shared;
mod ship;
mod shuffle_rdd;
mod side;
mod side_file_error;
mod spill;
mod stats;
#[cfg(test)]
mod test_messages;

pub use context::Context;
pub use data::Data;
pub use data_frame::{DataFrame, Explain, GroupBy, GroupKey};
pub use error::Error;
pub use hash::hash_partition;
pub use lineage::{Lineage, LineageEntry};
pub use panic_hook::install_panic_hook;
pub use partitioner::CustomPartitioner;
pub use rdd::Rdd;
pub use rich::{MAX_CELL_CHARS, MAX_ROWS, RichDisplay};
pub use shared::{Accumulable, Accumulator, Broadcast};
pub use ship::Capturable;
pub use shuffle_rdd::Key;
pub use side::Side;
pub use stats::{Numeric, Stats};
pub use tessera_plan::frame::{
    CsvOptions, DataType, Expr, Field, JoinKind, JsonOptions, Rows, Schema, Value, col, len, lit,
    when,
};
pub use tessera_plan::{Partitioner, StorageLevel};

/// `use tessera::prelude::*;` brings what a session needs.
pub mod prelude {
    pub use crate::notebook::{clear_output, display, display_html, input, show};
    pub use crate::{
        Accumulator, Broadcast, Context, CustomPartitioner, Data, Key, Partitioner, Rdd,
        StorageLevel, capture,
    };
    // DataFrames and their expressions.
    pub use crate::{
        CsvOptions, DataFrame, DataType, Expr, JoinKind, JsonOptions, Schema, Value, col, len, lit,
        when,
    };
    // Results of actions (`Vec`s of records, maps, `Stats`), RDD handles and plots show richly.
    pub use crate::RichDisplay;
    pub use serde::{Deserialize, Serialize};
}

/// Re-exported so that cells can derive serde traits for their own record types.
pub use serde;

#[doc(hidden)]
pub mod __private {
    pub use crate::ship::{Bind, BindByRef, BindByValue, Env, must_be_capturable};
    /// What the session's rewrite of `move` closures expands to.
    pub mod auto {
        pub use crate::auto_capture::*;
    }
}
