//! What agents and frameworks may send: ids and role names, resources and their amounts,
//! capabilities and filter durations, each refused with a message that says what to send
//! instead.

use std::time::Duration;

use tessera_allocator::{Extras, Resources};
use tessera_cluster_proto::master as pb;
use tonic::Status;

/// Ids longer than this are refused.
const MAX_ID_LEN: usize = 256;
/// The longest a decline filter lasts; longer requests are shortened to it (as
/// Mesos caps its filters).
pub(crate) const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);
/// Most CPUs one agent may offer.
const MAX_AGENT_CPUS: f64 = 1e6;
/// Most memory one agent or executor may hold, in MiB (1 EiB): sums of many
/// stay far from overflowing.
const MAX_MEM_MB: u64 = 1 << 40;

/// A role name as Mesos allows it: not empty, `.` or `..`, no `/` at its start, no
/// whitespace, control characters or backslash; at most [`MAX_ID_LEN`] bytes.
pub(crate) fn check_role(role: &str) -> Result<(), Status> {
    if role.is_empty()
        || role == "."
        || role == ".."
        || role.starts_with('/')
        || role.len() > MAX_ID_LEN
        || role
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(Status::invalid_argument(format!(
            "{role:?} is not a role name (empty, `.`, `..`, starting with `/`, longer than \
             {MAX_ID_LEN} bytes, or holding whitespace, control characters or `\\`); pick \
             another, e.g. analytics"
        )));
    }
    Ok(())
}

/// Fails unless `id` can name a framework or an executor (and so a sandbox directory on an
/// agent).
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), Status> {
    if id.is_empty()
        || id == "."
        || id == ".."
        || id.len() > MAX_ID_LEN
        || id.contains('/')
        || id.chars().any(char::is_control)
    {
        return Err(Status::invalid_argument(format!(
            "{what} {id:?} cannot name a sandbox directory (empty, `.`, `..`, longer than \
             {MAX_ID_LEN} bytes, or holding `/` or control characters); pick another"
        )));
    }
    Ok(())
}

/// The decline filter `seconds` asks for: zero for none, at most
/// [`MAX_REFUSE`]; NaN and negative values are refused.
pub(crate) fn refuse_duration(seconds: f64) -> Result<Duration, Status> {
    seconds_up_to_a_year("refuse_seconds", seconds)
}

/// `seconds` of `field` as a duration of at most a year ([`MAX_REFUSE`]); NaN and negative
/// values are refused.
pub(crate) fn seconds_up_to_a_year(field: &str, seconds: f64) -> Result<Duration, Status> {
    if seconds.is_nan() || seconds < 0.0 {
        return Err(Status::invalid_argument(format!(
            "{field} must be zero or a positive number of seconds, got {seconds}"
        )));
    }
    Ok(Duration::try_from_secs_f64(seconds)
        .unwrap_or(MAX_REFUSE)
        .min(MAX_REFUSE))
}

/// The extras of `resources` of `whom`, or an error naming what is wrong: scalars must be
/// finite and non-negative, ports at most 65535.
pub(crate) fn check_extras(
    whom: &str,
    resources: Option<&pb::Resources>,
) -> Result<Extras, Status> {
    let Some(r) = resources else {
        return Ok(Extras::default());
    };
    if let Some((name, v)) = r.scalars.iter().find(|(_, v)| !v.is_finite() || **v < 0.0) {
        return Err(Status::invalid_argument(format!(
            "{whom} has an invalid amount of {name} ({v}); give a finite number from 0"
        )));
    }
    if let Some(range) = r.ports.iter().find(|p| p.begin > p.end || p.end > 65535) {
        return Err(Status::invalid_argument(format!(
            "{whom} has an invalid port range {}-{}; give ranges of ports 0 to 65535, the \
             smaller number first",
            range.begin, range.end
        )));
    }
    if r.disk_mb > MAX_MEM_MB {
        return Err(Status::invalid_argument(format!(
            "{whom} has more disk than can be ({} MiB); at most {MAX_MEM_MB} MiB",
            r.disk_mb
        )));
    }
    Ok(r.extras())
}

/// Checks a framework's capabilities. They are recorded and shown (and kept by agents with
/// its executors); only `MULTI_ROLE` changes what this master does (it allows several
/// roles, [`roles::subscription_roles`]), so, as Mesos' master does with capabilities it does
/// not know, other names are accepted.
pub(crate) fn check_capabilities(capabilities: &[String]) -> Result<(), Status> {
    for c in capabilities {
        check_id("capability", c)?;
    }
    Ok(())
}

/// `resources` of `whom`, or an error naming what is wrong: CPUs must be a
/// finite, non-negative number and memory below 1 EiB.
pub(crate) fn check_resources(
    whom: &str,
    resources: Option<&pb::Resources>,
) -> Result<Resources, Status> {
    let r = tessera_cluster_proto::convert::split(resources).0;
    if !r.cpus.is_finite() || r.cpus < 0.0 || r.cpus > MAX_AGENT_CPUS {
        return Err(Status::invalid_argument(format!(
            "{whom} has an invalid number of CPUs ({}); give a number from 0 to {MAX_AGENT_CPUS}",
            r.cpus
        )));
    }
    if r.mem_mb > MAX_MEM_MB {
        return Err(Status::invalid_argument(format!(
            "{whom} has more memory than can be ({} MiB); at most {MAX_MEM_MB} MiB",
            r.mem_mb
        )));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_recorded_if_they_are_names() {
        assert!(check_capabilities(&["PARTITION_AWARE".into()]).is_ok());
        assert!(check_capabilities(&["MULTI_ROLE".into()]).is_ok());
        assert!(check_capabilities(&["".into()]).is_err());
    }
}
