//! Helpers shared by the kernel's integration tests.

pub mod toy_backend;
