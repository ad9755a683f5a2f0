//! [`Credential`]: one process's identity — the CA it trusts, its certificate and its key — and
//! the TLS settings it gives tonic's servers and clients.
//!
//! On disk a credential is a directory with `ca.pem`, `cert.pem` and `key.pem` (what every
//! `--credentials DIR` takes). An executor gets its session's credential through the launch, as
//! one environment variable holding the three PEM blocks ([`Credential::to_bundle`]), never on
//! its command line.

use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::error::CredentialError;
use crate::principal::Principal;

/// The environment variable through which an executor receives its session's credential
/// (a [`Credential::to_bundle`]).
pub const EXECUTOR_CREDENTIAL_ENV: &str = "TESSERA_EXECUTOR_CREDENTIAL";

pub(crate) const CA_FILE: &str = "ca.pem";
pub(crate) const CERT_FILE: &str = "cert.pem";
pub(crate) const KEY_FILE: &str = "key.pem";

/// How long a peer may take to finish the TLS handshake before its connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A process's identity and the CA it trusts.
#[derive(Clone)]
pub struct Credential {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for Credential {
    // Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("principal", &self.principal().ok())
            .finish_non_exhaustive()
    }
}

pub(crate) fn read(path: &Path) -> Result<String, CredentialError> {
    std::fs::read_to_string(path).map_err(|source| CredentialError::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), CredentialError> {
    std::fs::create_dir_all(dir).map_err(|source| CredentialError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

pub(crate) fn write_public(path: &Path, text: &str) -> Result<(), CredentialError> {
    std::fs::write(path, text).map_err(|source| CredentialError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a file only its owner can read, created so from the start.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), CredentialError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(text.as_bytes())
    };
    write().map_err(|source| CredentialError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The DER contents of every PEM block labelled `label` in `text`.
pub(crate) fn pem_blocks(text: &str, label: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
        .filter_map(Result::ok)
        .filter(|p| p.label == label)
        .map(|p| p.contents)
        .collect()
}

impl Credential {
    /// A credential from its three PEM texts.
    pub fn from_pem(ca_pem: String, cert_pem: String, key_pem: String) -> Credential {
        Credential {
            ca_pem,
            cert_pem,
            key_pem,
        }
    }

    /// The credential in `dir` (`ca.pem`, `cert.pem`, `key.pem`), checked: it must name a
    /// principal and be valid now.
    pub fn load(dir: &Path) -> Result<Credential, CredentialError> {
        if !dir.is_dir() {
            return Err(CredentialError::NoDirectory(dir.to_path_buf()));
        }
        let credential = Credential {
            ca_pem: read(&dir.join(CA_FILE))?,
            cert_pem: read(&dir.join(CERT_FILE))?,
            key_pem: read(&dir.join(KEY_FILE))?,
        };
        credential.check().map_err(|e| match e {
            CredentialError::Expired { not_after, .. } => CredentialError::Expired {
                path: Some(dir.to_path_buf()),
                not_after,
            },
            other => other,
        })?;
        Ok(credential)
    }

    /// Writes the credential into `dir` (the key readable by its owner only).
    pub fn save(&self, dir: &Path) -> Result<(), CredentialError> {
        create_dir(dir)?;
        write_public(&dir.join(CA_FILE), &self.ca_pem)?;
        write_public(&dir.join(CERT_FILE), &self.cert_pem)?;
        write_private(&dir.join(KEY_FILE), &self.key_pem)
    }

    /// The three PEM texts in one string, for an executor's environment.
    pub fn to_bundle(&self) -> String {
        format!("{}{}{}", self.ca_pem, self.cert_pem, self.key_pem)
    }

    /// A credential from [`Credential::to_bundle`]'s text: the first certificate is the CA's,
    /// the second the holder's, then the key.
    pub fn from_bundle(text: &str) -> Result<Credential, CredentialError> {
        let mut blocks: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if line.starts_with("-----BEGIN ") {
                current = Some(String::new());
            }
            if let Some(block) = current.as_mut() {
                block.push_str(line);
                block.push('\n');
            }
            if line.starts_with("-----END ") {
                blocks.extend(current.take());
            }
        }
        let [ca_pem, cert_pem, key_pem]: [String; 3] =
            blocks.try_into().map_err(|_| CredentialError::BadBundle {
                variable: EXECUTOR_CREDENTIAL_ENV,
                reason:
                    "it must hold three PEM blocks: the CA's certificate, the holder's, and its \
                         key"
                    .into(),
            })?;
        let credential = Credential {
            ca_pem,
            cert_pem,
            key_pem,
        };
        credential.check()?;
        Ok(credential)
    }

    /// The CA certificate this credential trusts, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub(crate) fn key_pem(&self) -> &str {
        &self.key_pem
    }

    fn cert_der(&self) -> Result<Vec<u8>, CredentialError> {
        pem_blocks(&self.cert_pem, "CERTIFICATE")
            .into_iter()
            .next()
            .ok_or_else(|| CredentialError::Unparsable("no PEM certificate".into()))
    }

    /// Who this credential says its holder is.
    pub fn principal(&self) -> Result<Principal, CredentialError> {
        Principal::from_certificate(&self.cert_der()?)
    }

    /// Fails if the certificate names no principal, or is not valid now.
    fn check(&self) -> Result<(), CredentialError> {
        let der = self.cert_der()?;
        Principal::from_certificate(&der)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| CredentialError::Unparsable(e.to_string()))?;
        if !cert.validity().is_valid() {
            return Err(CredentialError::Expired {
                path: None,
                not_after: cert.validity().not_after.to_string(),
            });
        }
        Ok(())
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    /// What a client holding this credential uses to dial `peer`: it presents its certificate
    /// and accepts only a server whose certificate, issued by the same CA, names `peer`.
    pub fn client_tls(&self, peer: &Principal) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(self.identity())
            .domain_name(peer.dns_name())
            .timeout(HANDSHAKE_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::Authority;

    #[test]
    fn a_bundle_round_trips_and_keeps_its_principal() {
        let ca = Authority::generate("test").unwrap();
        let cred = ca
            .issue(&Principal::Executor, Duration::from_secs(60))
            .unwrap();
        let back = Credential::from_bundle(&cred.to_bundle()).unwrap();
        assert_eq!(back.principal().unwrap(), Principal::Executor);
        assert_eq!(back.ca_pem(), cred.ca_pem());
        assert!(Credential::from_bundle("garbage").is_err());
    }

    #[test]
    fn an_expired_certificate_is_refused_when_loaded_naming_its_end() {
        let ca = Authority::generate("test").unwrap();
        let now = time::OffsetDateTime::now_utc();
        let old = ca
            .issue_between(
                &Principal::Agent("b".into()),
                now - Duration::from_secs(7200),
                now - Duration::from_secs(3600),
            )
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        old.save(dir.path()).unwrap();
        let err = Credential::load(dir.path()).unwrap_err();
        assert!(matches!(err, CredentialError::Expired { .. }), "{err}");
        assert!(err.to_string().contains("expired"), "{err}");
    }
}
