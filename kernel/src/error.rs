//! Error types of the kernel library: connection files, wire messages, the kernel's
//! sockets and the kernelspec installer.

use std::path::PathBuf;

/// A connection file could not be read or does not describe a kernel Tessera can serve.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(
        "could not read connection file {path}: {source}; check that Jupyter wrote it and the path is right"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("connection file {path} is not valid JSON for a Jupyter kernel: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("connection file asks for transport {0:?}; tessera-kernel supports only \"tcp\"")]
    UnsupportedTransport(String),
    #[error(
        "connection file asks for signature scheme {0:?}; tessera-kernel supports only \"hmac-sha256\""
    )]
    UnsupportedSignatureScheme(String),
    #[error("connection file gives port 0 for the {0} socket; give every socket a concrete port")]
    ZeroPort(&'static str),
}

/// A multipart message is not a valid Jupyter wire message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("message has no <IDS|MSG> delimiter frame")]
    MissingDelimiter,
    #[error(
        "message has {0} frames after the <IDS|MSG> delimiter; at least 5 are needed (signature, header, parent header, metadata, content)"
    )]
    TooFewFrames(usize),
    #[error(
        "message signature does not match its content (wrong key, or the message was tampered with)"
    )]
    BadSignature,
    #[error("message {frame} frame is not valid JSON: {source}")]
    Json {
        frame: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("could not serialize message {frame}: {source}")]
    Serialize {
        frame: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// The kernel could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(
        "could not bind the {socket} socket to {endpoint}: {source}; is another kernel using that port?"
    )]
    Bind {
        socket: &'static str,
        endpoint: String,
        #[source]
        source: zeromq::ZmqError,
    },
    #[error("could not start the kernel's {what}: {source}")]
    Start {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The kernelspec could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum KernelspecError {
    #[error("give either --user or --prefix, not both")]
    UserAndPrefix,
    #[error(
        "cannot find the home directory for a --user install: HOME is not set; set HOME or use --prefix"
    )]
    NoHome,
    #[error("cannot find the path of the running tessera-kernel executable: {0}")]
    CurrentExe(#[source] std::io::Error),
    #[error("could not write the kernelspec to {path}: {source}{hint}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
        hint: &'static str,
    },
}

/// The kernel's history file could not be read or written. Never fails a cell: the kernel
/// logs it and keeps answering from the current session's cells, held in memory.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "could not read the kernel history file {path}: {source}; check its permissions, or set TESSERA_HISTORY_FILE to a file this user can read and write"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "could not write the kernel history file {path}: {source}; check that its directory is writable and the disk is not full, or set TESSERA_HISTORY_FILE to another file"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "could not claim a session number in the kernel history file {path}: other kernels kept taking the same one; restart this kernel"
    )]
    SessionContended { path: PathBuf },
}
