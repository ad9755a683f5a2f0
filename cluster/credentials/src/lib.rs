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
mod error;
mod principal;
mod random;
mod server;

pub use advertise::{advertised_address, hostname, local_address_towards};
pub use authority::{Authority, Issued, init_credentials, principal_dir};
pub use credential::EXECUTOR_CREDENTIAL_ENV;
pub use credential::{Credential, HANDSHAKE_TIMEOUT};
pub use error::CredentialError;
pub use principal::{Principal, check_name};
pub use random::{random_bytes, random_u64, random_uuid, secrets_equal};
/// A certificate as a TLS peer presents it ([`Authenticator::verify`]).
pub use rustls::pki_types::CertificateDer;
pub use server::{Authenticator, Refusal, TlsServer};
/// Instants of a certificate's validity ([`Authority::issue_between`]).
pub use time::OffsetDateTime;

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
