//! Generated gRPC types and services of Tessera's offer-based cluster manager.
//!
//! * [`master`] (`proto/master.proto`, package `tessera.master`): the master's
//!   service, used by agents (register, heartbeat, status updates) and by
//!   frameworks (subscribe to offers, accept, decline, kill, teardown) and by
//!   `tessera cluster status`.
//! * [`agent`] (`proto/agent.proto`, package `tessera.agent`): the agent's
//!   service, used by the master to launch and kill executors.
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

/// Describes a failed call for a person: the status message plus the chain of
/// underlying causes (e.g. "connection refused"), which tonic keeps apart.
pub fn describe_status(status: &tonic::Status) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |text: String| {
        // tonic's wrapper adds nothing a person needs.
        if !text.is_empty() && text != "transport error" && !parts.iter().any(|p| p.contains(&text))
        {
            parts.push(text);
        }
    };
    push(status.message().to_string());
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        format!("{:?}", status.code())
    } else {
        parts.join(": ")
    }
}
