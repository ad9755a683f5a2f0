//! The operators of a shuffle. Map side: writers, actions that split a partition into one
//! bucket per output partition (combining values of a key first where the operation allows).
//! Reduce side: mergers, transformations that combine, group or sort what the buckets hold.
//! When the input is already partitioned as wanted, a merger (or [`CombineLocally`]) runs as a
//! narrow transformation instead, and nothing is shuffled.
//!
//! Every one of them spills past its budget (`crate::spill`): writers encode records into
//! per-bucket frames as they come and write them to a spill file, bucket by bucket, when they
//! hold too much, then stream one map output (each bucket its spilled pieces, then what is in
//! memory); sorts write sorted runs and merge them; merges and groups write runs ordered by the
//! key's hash and merge them, combining equal keys.
//!
//! `placement` picks a key's bucket; `writers` are the map side; `combiners` hold a combiner
//! per key (for the combining writer, the mergers and [`CombineLocally`]); `mergers` are the
//! reduce side.

mod combiners;
mod mergers;
mod placement;
mod writers;

pub(crate) use combiners::*;
pub(crate) use mergers::*;
pub(crate) use placement::*;
pub(crate) use writers::*;
