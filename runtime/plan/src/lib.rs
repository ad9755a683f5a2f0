//! Types shared by the three places an RDD lives: the cell that defines it (through the thin
//! `tessera` crate), the driver that schedules it, and the executors that compute it.
//!
//! Everything here is plain data (serde) or `#[repr(C)]` ABI; it links nothing heavy, because
//! every cell library links it.

#![deny(missing_docs)]

pub mod abi;
pub mod builtin;
pub mod bytes;
pub mod cell_protocol;
pub mod decode;
pub mod frame;
pub mod fusion;
pub mod host_block;
pub mod map_output;
pub mod panic_text;
pub mod range_bounds;
pub mod rdd;
pub mod replica;
pub mod task;

pub use rdd::*;
pub use replica::{BatchCode, ReplicaHeader, ReplicaPeer};
pub use task::*;
