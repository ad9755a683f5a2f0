//! [`Authority`]: a certificate authority that issues [`Credential`]s naming principals — the
//! cluster's (`tessera cluster init-credentials`, kept on disk) or a session's (made in memory
//! when the session starts, for its driver and executors).

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use crate::credential::Credential;
use crate::credential::{CA_FILE, CERT_FILE, KEY_FILE, write_private};
use crate::error::CredentialError;
use crate::principal::Principal;
use crate::random::random_bytes;

/// The CA's own key, beside its certificate in the authority directory.
const CA_KEY_FILE: &str = "ca-key.pem";
/// How long a CA is valid.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Certificates start being valid this long before they are issued (clocks differ).
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// A certificate authority: its certificate and the key that signs with it.
pub struct Authority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

fn rcgen_error(e: rcgen::Error) -> CredentialError {
    CredentialError::Generate(e.to_string())
}

fn serial() -> Result<rcgen::SerialNumber, CredentialError> {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes)?;
    // Positive, as DER integers for serials must be.
    bytes[0] &= 0x7f;
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

impl Authority {
    /// A new CA named `name` (shown as its common name).
    pub fn generate(name: &str) -> Result<Authority, CredentialError> {
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(serial()?);
        let cert = params.self_signed(&key).map_err(rcgen_error)?;
        Ok(Authority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA kept in `dir` (`ca.pem` and `ca-key.pem`).
    pub fn load(dir: &Path) -> Result<Authority, CredentialError> {
        let cert_pem = crate::credential::read(&dir.join(CA_FILE))?;
        let key_path = dir.join(CA_KEY_FILE);
        let key = KeyPair::from_pem(&crate::credential::read(&key_path)?).map_err(|e| {
            CredentialError::BadFile {
                path: key_path.clone(),
                reason: e.to_string(),
            }
        })?;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| CredentialError::BadFile {
                path: dir.join(CA_FILE),
                reason: e.to_string(),
            })?;
        Ok(Authority { cert_pem, issuer })
    }

    /// Whether `dir` holds a CA.
    pub fn exists(dir: &Path) -> bool {
        dir.join(CA_FILE).is_file() && dir.join(CA_KEY_FILE).is_file()
    }

    /// Writes the CA into `dir` (its key readable by the owner only).
    pub fn save(&self, dir: &Path) -> Result<(), CredentialError> {
        crate::credential::create_dir(dir)?;
        crate::credential::write_public(&dir.join(CA_FILE), &self.cert_pem)?;
        write_private(&dir.join(CA_KEY_FILE), &self.issuer.key().serialize_pem())
    }

    /// The CA's certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a credential for `principal`, valid from now for `validity`.
    pub fn issue(
        &self,
        principal: &Principal,
        validity: Duration,
    ) -> Result<Credential, CredentialError> {
        let now = OffsetDateTime::now_utc();
        self.issue_between(principal, now - CLOCK_SKEW, now + validity)
    }

    /// Issues a credential valid between two instants (tests make expired ones with it).
    pub fn issue_between(
        &self,
        principal: &Principal,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Credential, CredentialError> {
        if let Principal::Agent(name) | Principal::Framework(name) = principal {
            crate::principal::check_name(name)?;
        }
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, principal.dns_name());
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::DnsName(
            principal.dns_name().try_into().map_err(rcgen_error)?,
        )];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        // Every process is both a server and a client of its peers.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(serial()?);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(rcgen_error)?;
        Ok(Credential::from_pem(
            self.cert_pem.clone(),
            cert.pem(),
            key.serialize_pem(),
        ))
    }
}

/// What `tessera cluster init-credentials DIR` writes, beside the CA in `DIR/ca/`: one
/// directory per principal holding `ca.pem`, `cert.pem` and `key.pem` — what that process's
/// `--credentials` takes.
pub fn principal_dir(root: &Path, principal: &Principal) -> std::path::PathBuf {
    match principal {
        Principal::Master => root.join("master"),
        Principal::Agent(name) => root.join("agents").join(name),
        Principal::Framework(name) => root.join("frameworks").join(name),
        Principal::Driver => root.join("session").join("driver"),
        Principal::Executor => root.join("session").join("executor"),
    }
}

/// What [`init_credentials`] did for one principal.
#[derive(Debug, PartialEq, Eq)]
pub enum Issued {
    /// A new credential was written here.
    Created(std::path::PathBuf),
    /// One existed already and was left as it was.
    Kept(std::path::PathBuf),
}

/// Creates the cluster CA under `root/ca/` unless it exists, and a credential for each
/// principal that has none yet (the master always). Running it again with new names adds
/// them; existing ones are kept.
pub fn init_credentials(
    root: &Path,
    principals: &[Principal],
    validity: Duration,
) -> Result<Vec<(Principal, Issued)>, CredentialError> {
    let ca_dir = root.join("ca");
    let authority = if Authority::exists(&ca_dir) {
        Authority::load(&ca_dir)?
    } else if ca_dir.join(CA_FILE).exists() {
        // The key may be kept offline; a new CA would not be trusted by what exists.
        return Err(CredentialError::MissingCaKey(ca_dir));
    } else {
        let mut tag = [0u8; 4];
        random_bytes(&mut tag)?;
        let name = format!(
            "Tessera cluster CA {:02x}{:02x}{:02x}{:02x}",
            tag[0], tag[1], tag[2], tag[3]
        );
        let authority = Authority::generate(&name)?;
        authority.save(&ca_dir)?;
        authority
    };
    let mut wanted = vec![Principal::Master];
    for p in principals {
        if !wanted.contains(p) {
            wanted.push(p.clone());
        }
    }
    let mut done = Vec::new();
    for principal in wanted {
        let dir = principal_dir(root, &principal);
        if dir.join(CERT_FILE).is_file() && dir.join(KEY_FILE).is_file() {
            done.push((principal, Issued::Kept(dir)));
            continue;
        }
        authority.issue(&principal, validity)?.save(&dir)?;
        done.push((principal, Issued::Created(dir)));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_name_their_principal() {
        let ca = Authority::generate("test CA").unwrap();
        for p in [
            Principal::Master,
            Principal::Agent("b".into()),
            Principal::Framework("alice".into()),
        ] {
            let cred = ca.issue(&p, Duration::from_secs(60)).unwrap();
            assert_eq!(cred.principal().unwrap(), p);
        }
        assert!(matches!(
            ca.issue(&Principal::Agent("B!".into()), Duration::from_secs(60)),
            Err(CredentialError::BadName(_))
        ));
    }

    #[test]
    fn init_credentials_keeps_what_exists_and_adds_new_principals() {
        let dir = tempfile::tempdir().unwrap();
        let year = Duration::from_secs(365 * 24 * 3600);
        let first = init_credentials(dir.path(), &[Principal::Agent("b".into())], year).unwrap();
        assert!(
            first
                .iter()
                .all(|(_, issued)| matches!(issued, Issued::Created(_)))
        );
        let ca_before = std::fs::read(dir.path().join("ca/ca.pem")).unwrap();
        let second = init_credentials(
            dir.path(),
            &[
                Principal::Agent("b".into()),
                Principal::Framework("alice".into()),
            ],
            year,
        )
        .unwrap();
        assert!(matches!(second[0].1, Issued::Kept(_)));
        assert!(matches!(second[1].1, Issued::Kept(_)));
        assert!(matches!(second[2].1, Issued::Created(_)));
        assert_eq!(
            std::fs::read(dir.path().join("ca/ca.pem")).unwrap(),
            ca_before
        );
        // A credential issued by the reloaded CA chains to the same CA certificate.
        let alice = Credential::load(&dir.path().join("frameworks/alice")).unwrap();
        assert_eq!(alice.ca_pem().as_bytes(), &ca_before[..]);
        // Without the CA's key, nothing is issued from a CA of another name.
        std::fs::remove_file(dir.path().join("ca/ca-key.pem")).unwrap();
        let refused = init_credentials(dir.path(), &[Principal::Agent("c".into())], year);
        assert!(matches!(refused, Err(CredentialError::MissingCaKey(_))));
        assert_eq!(
            std::fs::read(dir.path().join("ca/ca.pem")).unwrap(),
            ca_before
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("frameworks/alice/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are private to their owner");
    }
}
