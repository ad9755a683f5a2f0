//! Why a call to the master failed, and what to do about it.

/// What went wrong talking to the master. Every message says what happened and
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum FrameworkError {
    /// The master cannot be reached: it is not running, the address is wrong, or the
    /// connection broke.
    #[error(
        "cannot reach the Tessera master at {master}: {reason} — is tessera-master running? \
         start it with `tessera-master --port {port}`"
    )]
    Unreachable {
        /// The master's "HOST:PORT".
        master: String,
        /// Its port, for the command the message suggests (5050 when the address names none).
        port: String,
        /// Why the connection failed, with its underlying causes.
        reason: String,
    },
    /// The TLS handshake failed: the master and this process do not accept each other's
    /// certificates.
    #[error("the Tessera master at {master} and this process do not trust each other: {reason}")]
    Untrusted {
        /// The master's "HOST:PORT".
        master: String,
        /// The TLS failure and its remedy.
        reason: String,
    },
    /// The master address is not "HOST:PORT" or a `zk://` URL.
    #[error("{master:?} is not a master address; expected HOST:PORT, e.g. 127.0.0.1:5050")]
    BadAddress {
        /// The address as given.
        master: String,
    },
    /// The master refused a call (e.g. an invalid request or a principal not allowed to make it).
    #[error("the Tessera master at {master} refused to {action}: {message}")]
    Rejected {
        /// The master's "HOST:PORT".
        master: String,
        /// What was asked, e.g. "accept the offer".
        action: &'static str,
        /// The master's reason.
        message: String,
    },
    /// The master did not answer a call in time (10 s).
    #[error(
        "the Tessera master at {master} did not answer {action} within {seconds} s; check that it is healthy (its log)"
    )]
    Timeout {
        /// The master's "HOST:PORT".
        master: String,
        /// What was asked, e.g. "subscribe".
        action: &'static str,
        /// How long the client waited, in seconds.
        seconds: u64,
    },
    /// The master does not know this framework (it was torn down or timed out, or the master
    /// restarted; subscribe again) or, in a call about an executor, that executor.
    #[error("the Tessera master at {master} knows no such framework or executor: {message}")]
    NotRegistered {
        /// The master's "HOST:PORT".
        master: String,
        /// The master's reason.
        message: String,
    },
    /// The master answered with something the client does not expect.
    #[error("the Tessera master at {master} sent something unexpected: {detail}")]
    Protocol {
        /// The master's "HOST:PORT".
        master: String,
        /// What was unexpected.
        detail: String,
    },
    /// No master was elected under the `zk://` URL in time.
    #[error(
        "no Tessera master leads under {masters} (waited {seconds} s): start masters with \
         `tessera-master --zk {masters}`, and check that they reach ZooKeeper (their logs)"
    )]
    NoLeader {
        /// The `zk://` URL the masters are elected under.
        masters: String,
        /// How long the client waited, in seconds.
        seconds: u64,
    },
    /// Following the leading master through ZooKeeper failed.
    #[error("cannot follow the leading Tessera master: {source}")]
    ZooKeeper {
        /// What went wrong with ZooKeeper.
        source: tessera_zookeeper::ZkError,
    },
}
