//! A framework's roles (Mesos' MULTI_ROLE): which roles a subscription names, decided by a
//! pure function from its `role`, `roles` and capabilities, with typed errors that say what to
//! change.

/// The capability a framework claims to subscribe in more than one role.
pub(crate) const MULTI_ROLE: &str = "MULTI_ROLE";

/// Why a subscription's roles are refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum RolesError {
    #[error(
        "a framework in several roles ({roles:?}) must claim the {MULTI_ROLE} capability; add \
         it to the framework's capabilities, or subscribe in one role"
    )]
    MultiRoleNotClaimed { roles: Vec<String> },
    #[error(
        "role {role:?} is not among roles {roles:?}; leave `role` empty when naming `roles`, \
         or name it among them"
    )]
    RoleNotInRoles { role: String, roles: Vec<String> },
}

/// The roles a framework subscribes in, sorted and without repeats: `roles`, or when that is
/// empty `[role]` (the default role `*` when that is empty too), as Mesos keeps the single
/// `role` for frameworks without MULTI_ROLE. Names are checked elsewhere.
pub(crate) fn subscription_roles(
    role: &str,
    roles: &[String],
    capabilities: &[String],
) -> Result<Vec<String>, RolesError> {
    let mut named: Vec<String> = if roles.is_empty() {
        let role = if role.is_empty() {
            tessera_allocator::DEFAULT_ROLE
        } else {
            role
        };
        vec![role.to_string()]
    } else {
        roles.to_vec()
    };
    named.sort();
    named.dedup();
    if !role.is_empty() && !named.iter().any(|r| r == role) {
        return Err(RolesError::RoleNotInRoles {
            role: role.to_string(),
            roles: named,
        });
    }
    if named.len() > 1 && !capabilities.iter().any(|c| c == MULTI_ROLE) {
        return Err(RolesError::MultiRoleNotClaimed { roles: named });
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_role_from_role_or_the_default() {
        assert_eq!(subscription_roles("", &[], &[]).unwrap(), ["*"]);
        assert_eq!(subscription_roles("web", &[], &[]).unwrap(), ["web"]);
        assert_eq!(
            subscription_roles("", &strings(&["web", "web"]), &[]).unwrap(),
            ["web"],
            "a role named twice is one role"
        );
    }

    #[test]
    fn several_roles_need_multi_role() {
        let err = subscription_roles("", &strings(&["b", "a"]), &[]).unwrap_err();
        assert_eq!(
            err,
            RolesError::MultiRoleNotClaimed {
                roles: strings(&["a", "b"])
            }
        );
        assert!(err.to_string().contains("claim the MULTI_ROLE capability"));
        let with = strings(&[MULTI_ROLE]);
        assert_eq!(
            subscription_roles("", &strings(&["b", "a"]), &with).unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            subscription_roles("a", &strings(&["b", "a"]), &with).unwrap(),
            ["a", "b"],
            "role among roles"
        );
    }

    #[test]
    fn role_outside_roles_is_refused() {
        let err = subscription_roles("c", &strings(&["a"]), &[]).unwrap_err();
        assert!(matches!(err, RolesError::RoleNotInRoles { .. }), "{err}");
        assert!(err.to_string().contains("leave `role` empty"), "{err}");
    }
}
