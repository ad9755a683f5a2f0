//! Why a credential could not be made, read or used, and what to do about it.

use std::path::PathBuf;

/// What went wrong making, reading or using a credential. Each message names the file or
/// principal and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A credential directory does not exist.
    #[error(
        "no credentials at {0}: create them with `tessera cluster init-credentials DIR` and pass \
         the directory made for this process (DIR/master, DIR/agents/NAME or DIR/frameworks/NAME)"
    )]
    NoDirectory(PathBuf),
    /// A file could not be read.
    #[error(
        "cannot read {path}: {source}; a credential directory holds ca.pem, cert.pem and key.pem"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds something else than expected.
    #[error("{path} is not usable: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A certificate could not be parsed.
    #[error("the certificate cannot be read: {0}")]
    Unparsable(String),
    /// A certificate names no Tessera principal.
    #[error(
        "the certificate names no Tessera principal (no DNS name under `tessera`); use one issued \
         by `tessera cluster init-credentials`"
    )]
    NoPrincipal,
    /// A certificate is past its end (or not yet valid).
    #[error(
        "the certificate{} expired or is not valid yet (valid until {not_after}); issue a new one: \
         remove it and run `tessera cluster init-credentials` again",
        path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default()
    )]
    Expired {
        /// Its directory, when read from one.
        path: Option<PathBuf>,
        /// The end of its validity.
        not_after: String,
    },
    /// A CA certificate is there without its key: issuing from a new CA would split the cluster.
    #[error(
        "{0} holds a CA certificate but not its key (ca-key.pem): put the key back to issue \
         more credentials of this cluster, or pass a new directory to start another cluster"
    )]
    MissingCaKey(PathBuf),
    /// An executor's credential from its environment is malformed.
    #[error("the executor credential in ${variable} is malformed: {reason}")]
    BadBundle {
        /// The environment variable it came from.
        variable: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A name cannot be a principal's.
    #[error(
        "{0:?} cannot name an agent or a framework principal: use lowercase letters, digits and \
         `-` (at most 63, not starting or ending with `-`)"
    )]
    BadName(String),
    /// Making a key or certificate failed.
    #[error("cannot make a key or certificate: {0}")]
    Generate(String),
    /// The system's random number generator failed.
    #[error(
        "cannot read random bytes from the operating system ({0}); keys and secrets cannot be made \
         without them"
    )]
    Random(String),
}
