//! The election's nodes: each master's ephemeral sequential node under the election path,
//! named [`NODE_PREFIX`] and a sequence number and holding its [`MasterInfo`]; the lowest
//! sequence leads. Both sides read them: masters contending (`election`) and everyone
//! looking for the leader (`detector`).

use serde::{Deserialize, Serialize};

/// What a master writes into its election node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterInfo {
    /// Where agents and frameworks reach it, "HOST:PORT".
    pub address: String,
    /// Its HTTPS side, "HOST:PORT", if it serves one.
    #[serde(default)]
    pub http_address: Option<String>,
    /// Its process id, for operators.
    #[serde(default)]
    pub pid: u32,
}

/// The prefix of the masters' nodes under the election path (a 10-digit sequence follows).
pub(crate) const NODE_PREFIX: &str = "master_";

/// The leading node among `children` of the election path: the master node with the lowest
/// sequence number (other children are ignored).
pub fn leader_of(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|name| {
            let sequence: u64 = name.strip_prefix(NODE_PREFIX)?.parse().ok()?;
            Some((sequence, name.as_str()))
        })
        .min()
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_lowest_sequence_leads_whatever_the_order() {
        let children = names(&[
            "master_0000000012",
            "master_0000000003",
            "master_0000000010",
        ]);
        assert_eq!(leader_of(&children), Some("master_0000000003"));
        assert_eq!(
            leader_of(&names(&["master_0000000009", "master_0000000010"])),
            Some("master_0000000009")
        );
    }

    #[test]
    fn other_children_and_an_empty_election_have_no_leader() {
        assert_eq!(
            leader_of(&names(&["log", "master_x", "lock_0000000001"])),
            None
        );
        assert_eq!(leader_of(&[]), None);
        assert_eq!(
            leader_of(&names(&["log", "master_0000000005"])),
            Some("master_0000000005")
        );
    }
}
