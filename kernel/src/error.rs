//! Error types of the kernel library: connection files, wire messages, the kernel's
//! sockets and the kernelspec installer.

use std::path::PathBuf;

/// A connection file could not be read or does not describe a kernel Tessera can serve.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The connection file could not be read (missing, unreadable, or not UTF-8).
    #[error(
        "could not read connection file {path}: {source}; check that Jupyter wrote it and the path is right"
    )]
    Read {
        /// The connection file the kernel was started with.
        path: PathBuf,
        /// The I/O error from reading it.
        #[source]
        source: std::io::Error,
    },
    /// The connection file is not JSON, or lacks a field the kernel needs (such as a port).
    #[error("connection file {path} is not valid JSON for a Jupyter kernel: {source}")]
    Parse {
        /// The connection file the kernel was started with.
        path: PathBuf,
        /// What `serde_json` found wrong, with its line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The connection file's `transport` is not `tcp` (e.g. `ipc`); holds the transport it names.
    #[error("connection file asks for transport {0:?}; tessera-kernel supports only \"tcp\"")]
    UnsupportedTransport(String),
    /// The connection file gives an HMAC key with a `signature_scheme` other than
    /// `hmac-sha256`; holds that scheme.
    #[error(
        "connection file asks for signature scheme {0:?}; tessera-kernel supports only \"hmac-sha256\""
    )]
    UnsupportedSignatureScheme(String),
    /// A port in the connection file is 0; holds the name of that port's socket (`shell`,
    /// `iopub`, `stdin`, `control` or `heartbeat`).
    #[error("connection file gives port 0 for the {0} socket; give every socket a concrete port")]
    ZeroPort(&'static str),
}

/// A multipart message is not a valid Jupyter wire message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// No frame of a received multipart message is the `<IDS|MSG>` delimiter that separates
    /// routing identities from the message.
    #[error("message has no <IDS|MSG> delimiter frame")]
    MissingDelimiter,
    /// The message ends before its content frame; holds how many frames follow the delimiter.
    #[error(
        "message has {0} frames after the <IDS|MSG> delimiter; at least 5 are needed (signature, header, parent header, metadata, content)"
    )]
    TooFewFrames(usize),
    /// The HMAC signature frame is not hex or is not the HMAC-SHA256, under the connection
    /// file's key, of the header, parent_header, metadata and content frames.
    #[error(
        "message signature does not match its content (wrong key, or the message was tampered with)"
    )]
    BadSignature,
    /// A received frame does not parse as JSON, or the header lacks `msg_id` or `msg_type`.
    #[error("message {frame} frame is not valid JSON: {source}")]
    Json {
        /// Which frame: `header`, `parent_header`, `metadata` or `content`.
        frame: &'static str,
        /// What `serde_json` found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A part of an outgoing message could not be turned into JSON.
    #[error("could not serialize message {frame}: {source}")]
    Serialize {
        /// Which part: `header`, `parent_header`, `metadata` or `content`.
        frame: &'static str,
        /// Why `serde_json` could not serialize it.
        #[source]
        source: serde_json::Error,
    },
}

/// The kernel could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The connection file could not be read or describes a kernel Tessera cannot serve.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// A ZeroMQ socket could not bind to the address and port the connection file gives it.
    #[error(
        "could not bind the {socket} socket to {endpoint}: {source}; is another kernel using that port?"
    )]
    Bind {
        /// Which socket: `shell`, `control`, `stdin`, `iopub` or `heartbeat`.
        socket: &'static str,
        /// The ZeroMQ endpoint it tried, e.g. `tcp://127.0.0.1:5555`.
        endpoint: String,
        /// The ZeroMQ error.
        #[source]
        source: zeromq::ZmqError,
    },
    /// The operating system refused a thread the kernel needs at start-up.
    #[error("could not start the kernel's {what}: {source}")]
    Start {
        /// What could not start: `backend thread` or `async runtime`.
        what: &'static str,
        /// The I/O error from spawning it.
        #[source]
        source: std::io::Error,
    },
}

/// The kernelspec could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum KernelspecError {
    /// The install was asked to go both to the user's directory and under a prefix.
    #[error("give either --user or --prefix, not both")]
    UserAndPrefix,
    /// A per-user install has no `JUPYTER_DATA_DIR` (nor, off macOS, `XDG_DATA_HOME`) and
    /// `HOME` is unset or empty, so there is no directory to install into.
    #[error(
        "cannot find the home directory for a --user install: HOME is not set; set HOME or use --prefix"
    )]
    NoHome,
    /// The path of the running executable, which `kernel.json` names in its `argv`, could
    /// not be found; holds the I/O error.
    #[error("cannot find the path of the running tessera-kernel executable: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// Creating the kernelspec directory or writing its `kernel.json` failed.
    #[error("could not write the kernelspec to {path}: {source}{hint}")]
    Write {
        /// The directory or `kernel.json` that could not be written.
        path: PathBuf,
        /// The I/O error from writing it.
        #[source]
        source: std::io::Error,
        /// Advice added to the message when permission was denied (to use `--user` or
        /// `--prefix`); empty otherwise.
        hint: &'static str,
    },
}

/// The kernel's history file could not be read or written. Never fails a cell: the kernel
/// logs it and keeps answering from the current session's cells, held in memory.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The history file exists but could not be read.
    #[error(
        "could not read the kernel history file {path}: {source}; check its permissions, or set TESSERA_HISTORY_FILE to a file this user can read and write"
    )]
    Read {
        /// The history file (`TESSERA_HISTORY_FILE`, or its default under the data directory).
        path: PathBuf,
        /// The I/O error from reading it.
        #[source]
        source: std::io::Error,
    },
    /// Appending a record to the history file (or creating the file or its directory) failed.
    #[error(
        "could not write the kernel history file {path}: {source}; check that its directory is writable and the disk is not full, or set TESSERA_HISTORY_FILE to another file"
    )]
    Write {
        /// The history file (`TESSERA_HISTORY_FILE`, or its default under the data directory).
        path: PathBuf,
        /// The I/O error from writing it (or from serializing the record).
        #[source]
        source: std::io::Error,
    },
    /// Each session number this kernel tried to claim (ten tries) was claimed first by
    /// another kernel starting at the same time.
    #[error(
        "could not claim a session number in the kernel history file {path}: other kernels kept taking the same one; restart this kernel"
    )]
    SessionContended {
        /// The history file the kernels share.
        path: PathBuf,
    },
}
