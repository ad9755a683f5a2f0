//! Identity for every Tessera process, and mutual TLS on every gRPC link.
//!
//! A cluster has one certificate authority (`tessera cluster init-credentials DIR`); it issues
//! each master, agent and framework principal a certificate whose DNS name carries the
//! [`Principal`]. Every server requires a client certificate from its CA; every client checks
//! that the server's certificate names the principal it meant to reach. A server reads the
//! caller's principal from the connection ([`caller`]) and decides what that principal may do.
//!
//! A session makes a second, private authority of its own when it starts: its driver and its
//! executors hold certificates from it, so no other session (and nothing without the
//! credential, which executors receive through their launch) can talk to them.
//!
//! Also here: the address a server advertises to its peers ([`advertised_address`]),
//! randomness that fails loudly ([`random_bytes`]), a constant-time comparison
//! ([`secrets_equal`]), and the words for a failed call or handshake ([`describe_status`]).

#![deny(missing_docs)]

mod advertise;
mod authority;
mod credential;
mod principal;
mod server;

use std::path::PathBuf;

pub use advertise::{advertised_address, hostname, local_address_towards};
pub use authority::{Authority, Issued, init_credentials, principal_dir};
pub use credential::{Credential, HANDSHAKE_TIMEOUT};
pub use principal::{Principal, check_name};
/// A certificate as a TLS peer presents it ([`Authenticator::verify`]).
pub use rustls::pki_types::CertificateDer;
pub use server::{Authenticator, Refusal, TlsServer};
/// Instants of a certificate's validity ([`Authority::issue_between`]).
pub use time::OffsetDateTime;

/// The environment variable through which an executor receives its session's credential
/// (a [`Credential::to_bundle`]).
pub const EXECUTOR_CREDENTIAL_ENV: &str = "TESSERA_EXECUTOR_CREDENTIAL";

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
        "{0} holds a CA certificate but not its key (ca-key.pem): put the key back to issue          more credentials of this cluster, or pass a new directory to start another cluster"
    )]
    MissingCaKey(PathBuf),
    /// An executor's credential from its environment is malformed.
    #[error("the executor credential in ${EXECUTOR_CREDENTIAL_ENV} is malformed: {0}")]
    BadBundle(String),
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

/// Fills `buf` from the operating system's random number generator, or fails: a secret made
/// of zeros is worse than no secret.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CredentialError> {
    getrandom::fill(buf).map_err(|e| CredentialError::Random(e.to_string()))
}

/// A new unique id, as a UUID's 128 bits in 32 hex digits: random bytes from the operating
/// system. Ids need to be unique, not secret: should the random number generator fail, the
/// time, the process id and a counter make it.
pub fn random_uuid() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if random_bytes(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&nanos.to_le_bytes());
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        bytes[12..].copy_from_slice(&(count as u32).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random `u64` from the operating system, or an error.
pub fn random_u64() -> Result<u64, CredentialError> {
    let mut bytes = [0u8; 8];
    random_bytes(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// Compares two secrets in time that depends only on their lengths.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The principal of the peer that made `request`, as the service's [`Authenticator`] found it.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Principal, tonic::Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| {
            tonic::Status::internal(
                "this service does not authenticate its callers (it is not wrapped in an \
             Authenticator); this is a bug in Tessera",
            )
        })
}

/// What a failed TLS handshake or connection means, and what to do, from the words rustls and
/// tonic use for it; `None` if `text` is no such failure.
pub fn tls_remedy(text: &str) -> Option<&'static str> {
    const NOT_VALID_FOR_NAME: &str = "the server's certificate names another principal than the \
         one dialed: the address belongs to another process";
    const SERVER_EXPIRED: &str = "the server's certificate expired: issue it a new one with \
         `tessera cluster init-credentials`";
    const REMEDIES: [(&str, &str); 11] = [
        (
            "CertificateRequired",
            "the server requires a client certificate: pass --credentials DIR (made by `tessera \
             cluster init-credentials`)",
        ),
        (
            "UnknownIssuer",
            "the server's certificate was not issued by the CA in your credentials: it belongs to \
             another cluster, or your ca.pem is another cluster's",
        ),
        (
            "UnknownCA",
            "the server does not trust your certificate: it was issued by another cluster's CA",
        ),
        ("NotValidForName", NOT_VALID_FOR_NAME),
        // rustls' Display words for the same errors.
        ("not valid for name", NOT_VALID_FOR_NAME),
        (
            "CertificateExpired",
            "the server says your certificate expired: issue a new one with `tessera cluster \
             init-credentials`",
        ),
        ("Expired", SERVER_EXPIRED),
        ("certificate expired", SERVER_EXPIRED),
        (
            "BadCertificate",
            "the server refused your certificate (another CA's, expired, or malformed)",
        ),
        (
            "InvalidContentType",
            "the peer does not speak TLS: is it a Tessera process of this version?",
        ),
        (
            "DecryptError",
            "the TLS handshake failed: the peer's key does not match its certificate",
        ),
    ];
    REMEDIES
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map(|(_, remedy)| *remedy)
}

/// Describes a failed call for a person: the status message, the chain of underlying causes
/// (e.g. "connection refused"), which tonic keeps apart, and the remedy of a TLS failure.
pub fn describe_status(status: &tonic::Status) -> String {
    let mut parts = vec![status.message().to_string()];
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    join_causes(parts).unwrap_or_else(|| format!("{:?}", status.code()))
}

/// Describes an error and its causes on one line, with the remedy of a TLS failure.
pub fn describe_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        parts.push(e.to_string());
        next = e.source();
    }
    join_causes(parts).unwrap_or_else(|| "transport error".to_string())
}

fn join_causes(causes: Vec<String>) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for text in causes {
        // tonic's wrappers add nothing a person needs.
        if !text.is_empty() && text != "transport error" && !parts.iter().any(|p| p.contains(&text))
        {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        return None;
    }
    let mut text = parts.join(": ");
    if let Some(remedy) = tls_remedy(&text) {
        text.push_str(" — ");
        text.push_str(remedy);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_32_hex_digits_and_differ() {
        let (a, b) = (random_uuid(), random_uuid());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_compare_by_value_and_length() {
        assert!(secrets_equal(b"abc", b"abc"));
        assert!(!secrets_equal(b"abc", b"abd"));
        assert!(!secrets_equal(b"abc", b"abcd"));
    }

    #[test]
    fn random_bytes_are_not_all_zero() {
        let mut a = [0u8; 32];
        random_bytes(&mut a).unwrap();
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn tls_failures_get_a_remedy() {
        let text = "invalid peer certificate: UnknownIssuer";
        assert!(tls_remedy(text).unwrap().contains("another cluster"));
        assert!(
            tls_remedy("received fatal alert: CertificateRequired")
                .unwrap()
                .contains("--credentials")
        );
        for text in [
            "invalid peer certificate: NotValidForNameContext { expected: .. }",
            "invalid peer certificate: certificate not valid for name \"x\"",
        ] {
            assert!(
                tls_remedy(text).unwrap().contains("another principal"),
                "{text}"
            );
        }
        for text in [
            "invalid peer certificate: ExpiredContext { .. }",
            "invalid peer certificate: certificate expired: verification time 2",
        ] {
            assert!(
                tls_remedy(text)
                    .unwrap()
                    .contains("server's certificate expired"),
                "{text}"
            );
        }
        assert_eq!(tls_remedy("connection refused"), None);
    }
}
