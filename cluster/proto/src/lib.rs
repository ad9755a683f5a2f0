//! Generated gRPC types and services of Tessera's offer-based cluster manager.
//!
//! * [`master`] (`proto/master.proto`, package `tessera.master`): the master's
//!   service, used by agents (register, heartbeat, status updates) and by
//!   frameworks (subscribe to offers, accept, decline, kill, teardown) and by
//!   `tessera cluster status`.
//! * [`agent`] (`proto/agent.proto`, package `tessera.agent`): the agent's
//!   service, used by the master to launch and kill executors.
//! * [`files`] (`proto/files.proto`, package `tessera.files`): what an agent serves a
//!   framework's processes of its executors' sandbox files, with the framework's credential.
//! * [`convert`]: wire resources and attributes to and from the allocator's types.

pub mod convert;

/// Messages and the `Master` service of package `tessera.master`.
pub mod master {
    tonic::include_proto!("tessera.master");
}

/// Messages and the `Agent` service of package `tessera.agent`.
pub mod agent {
    tonic::include_proto!("tessera.agent");
}

/// Messages and the `SandboxFiles` service of package `tessera.files`.
pub mod files {
    tonic::include_proto!("tessera.files");
}
