//! DataFrames on executors: Tessera's plain-data DataFrame plans ([`tessera_plan::frame`])
//! executed with polars.
//!
//! The executor links this crate and nothing else does but the driver, which uses it to read
//! schemas and to plan; the crate cells link never does, so cells keep compiling fast. The
//! executor runs DataFrames as it runs cell code: through the C ABI's tables
//! ([`tables::entry`]), with DataFrames as batches it caches, counts and frees like any other
//! ([`batch`]).

#![deny(missing_docs)]

pub mod batch;
pub mod convert;
mod counts;
pub mod error;
pub mod files;
pub mod ipc;
pub mod join;
mod keeps_column;
mod key_bits;
mod key_values;
mod mask;
pub mod merge_join;
mod packed_keys;
pub mod ranges;
pub mod read;
mod row_bits;
pub mod rows;
pub mod runtime_filter;
pub mod shuffle;
pub mod steps;
pub mod tables;

pub use error::FrameError;
