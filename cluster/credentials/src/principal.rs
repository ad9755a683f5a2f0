//! [`Principal`]: who a certificate says its holder is, and the DNS name that carries it.
//!
//! A principal travels in a certificate as one DNS subject alternative name under `tessera`
//! (`hostb.agent.tessera`, `alice.framework.tessera`, `master.tessera`). TLS checks a server's
//! certificate against the name the client expects, so a client dials *a principal*, not an
//! address: an agent that claims another agent's address still cannot answer for it.

use std::fmt;

use crate::error::CredentialError;

/// The domain every principal's DNS name ends in.
const DOMAIN: &str = "tessera";
/// Longest principal name (a DNS label).
const MAX_NAME_LEN: usize = 63;

/// Who holds a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// A master of the cluster (every master holds the same identity: agents and frameworks
    /// must reach whichever leads).
    Master,
    /// An agent, by the name its certificate was issued for.
    Agent(String),
    /// A framework principal (a user, or a service): the master binds each framework id to the
    /// principal that subscribed it.
    Framework(String),
    /// A session's driver, in the session's own credentials.
    Driver,
    /// An executor of a session, in the session's own credentials.
    Executor,
}

impl Principal {
    /// The DNS subject alternative name that carries this principal.
    pub fn dns_name(&self) -> String {
        match self {
            Principal::Master => format!("master.{DOMAIN}"),
            Principal::Agent(name) => format!("{name}.agent.{DOMAIN}"),
            Principal::Framework(name) => format!("{name}.framework.{DOMAIN}"),
            Principal::Driver => format!("driver.session.{DOMAIN}"),
            Principal::Executor => format!("executor.session.{DOMAIN}"),
        }
    }

    /// The principal a DNS name carries, if it is one of Tessera's.
    pub fn from_dns_name(dns: &str) -> Option<Principal> {
        let rest = dns.strip_suffix(DOMAIN)?.strip_suffix('.')?;
        let principal = match rest.rsplit_once('.') {
            None if rest == "master" => Principal::Master,
            Some(("driver", "session")) => Principal::Driver,
            Some(("executor", "session")) => Principal::Executor,
            Some((name, "agent")) => Principal::Agent(name.to_string()),
            Some((name, "framework")) => Principal::Framework(name.to_string()),
            _ => return None,
        };
        match &principal {
            Principal::Agent(name) | Principal::Framework(name) => {
                check_name(name).ok()?;
            }
            _ => {}
        }
        Some(principal)
    }

    /// The principal named by the first of Tessera's DNS names in a DER certificate.
    pub fn from_certificate(der: &[u8]) -> Result<Principal, CredentialError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| CredentialError::Unparsable(e.to_string()))?;
        let names = cert
            .subject_alternative_name()
            .map_err(|e| CredentialError::Unparsable(e.to_string()))?;
        names
            .into_iter()
            .flat_map(|ext| ext.value.general_names.iter())
            .find_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Principal::from_dns_name(dns),
                _ => None,
            })
            .ok_or(CredentialError::NoPrincipal)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Master => f.write_str("master"),
            Principal::Agent(name) => write!(f, "agent {name}"),
            Principal::Framework(name) => write!(f, "framework principal {name}"),
            Principal::Driver => f.write_str("the session's driver"),
            Principal::Executor => f.write_str("an executor of the session"),
        }
    }
}

/// Checks that `name` can name an agent or a framework principal: a DNS label of lowercase
/// letters, digits and `-`.
pub fn check_name(name: &str) -> Result<(), CredentialError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(CredentialError::BadName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_principal_survives_its_dns_name() {
        for p in [
            Principal::Master,
            Principal::Agent("host-b".into()),
            Principal::Framework("alice".into()),
            Principal::Driver,
            Principal::Executor,
        ] {
            assert_eq!(Principal::from_dns_name(&p.dns_name()), Some(p));
        }
    }

    #[test]
    fn foreign_and_malformed_names_are_no_principal() {
        for dns in [
            "example.com",
            "tessera",
            "x.master.tessera",
            "Host.agent.tessera",
            "a.b.agent.tessera",
            ".agent.tessera",
            "alice.framework.tessera.evil.com",
        ] {
            assert_eq!(Principal::from_dns_name(dns), None, "{dns}");
        }
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(check_name("node-7").is_ok());
        for bad in ["", "-a", "a-", "Alice", "a.b", "a_b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
