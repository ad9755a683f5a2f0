//! Tessera's Jupyter kernel: speaks the Jupyter messaging protocol (5.3) over ZeroMQ
//! and installs the kernelspec.
//!
//! The kernel is generic over a [`KernelBackend`], the thing that actually runs code
//! (the Tessera session implements it). The backend is synchronous and runs on a thread
//! of its own; the kernel's async ZeroMQ loops talk to it through channels, so the
//! heartbeat and the control channel (interrupt, shutdown) stay responsive while a cell
//! runs.
//!
//! * [`run_kernel`] serves one kernel for a connection file until a client asks it to
//!   shut down, remembering executed cells in a [`History`] that outlives it.
//! * [`install_kernelspec`] writes `kernel.json` so Jupyter can find and start the
//!   kernel.
//! * [`cli`] holds the command line shared by the `tessera-kernel` binary and anything
//!   else that wants the same flags.

#![deny(missing_docs)]

pub mod backend;
mod backend_thread;
mod cell_output;
pub mod cli;
pub mod connection;
pub mod error;
pub mod history;
pub mod kernelspec;
mod requests;
mod server;
pub mod session_backend;
mod shared;
pub mod wire;
mod zmq_frames;

pub use backend::{
    Completion, ExecuteError, ExecuteOutput, Interrupter, IsComplete, KernelBackend, LanguageInfo,
    MimeBundle, OutputSink, StdinError,
};
pub use connection::ConnectionInfo;
pub use error::{ConnectionError, HistoryError, KernelError, KernelspecError, WireError};
pub use history::History;
pub use kernelspec::{KERNEL_NAME, install_kernelspec, kernelspec_json, write_kernelspec};
pub use server::{run_kernel, run_kernel_with_info};
