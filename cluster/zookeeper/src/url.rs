//! `zk://HOST:PORT[,HOST:PORT...]/PATH`: an ensemble's servers and the node under which
//! Tessera's masters stand for election (as Mesos' `--zk`).

use std::fmt;

use crate::error::ZkError;

/// The default ZooKeeper client port.
const DEFAULT_PORT: u16 = 2181;

/// A parsed `zk://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkUrl {
    /// The servers, "HOST:PORT" each.
    pub servers: Vec<String>,
    /// The election's node, e.g. "/tessera".
    pub path: String,
}

impl ZkUrl {
    /// Whether `text` is meant as a ZooKeeper URL (rather than a master's address).
    pub fn is_zk(text: &str) -> bool {
        text.trim().starts_with("zk://")
    }

    /// Parses `zk://HOST[:PORT][,HOST[:PORT]...]/PATH` (the port defaults to 2181).
    pub fn parse(text: &str) -> Result<ZkUrl, ZkError> {
        let bad = |reason: &str| ZkError::BadUrl {
            input: text.to_string(),
            reason: reason.to_string(),
        };
        let rest = text
            .trim()
            .strip_prefix("zk://")
            .ok_or_else(|| bad("it does not start with zk://"))?;
        let (hosts, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("it names no path after the servers"))?;
        let path = format!("/{}", path.trim_end_matches('/'));
        if path == "/" || path.contains("//") {
            return Err(bad("the path must name a node, such as /tessera"));
        }
        let mut servers = Vec::new();
        for host in hosts.split(',').map(str::trim) {
            if host.is_empty() {
                return Err(bad("a server is empty"));
            }
            let server = match host.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && !p.contains(']') => {
                    let port: u16 = p
                        .parse()
                        .ok()
                        .filter(|&p| p != 0)
                        .ok_or_else(|| bad(&format!("{p:?} is not a port")))?;
                    format!("{h}:{port}")
                }
                _ => format!("{host}:{DEFAULT_PORT}"),
            };
            servers.push(server);
        }
        Ok(ZkUrl { servers, path })
    }
}

impl fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zk://{}{}", self.servers.join(","), self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_path_are_read_with_default_ports() {
        let url = ZkUrl::parse("zk://10.0.0.1:2182,zk2,10.0.0.3:2183/tessera/").unwrap();
        assert_eq!(url.servers, ["10.0.0.1:2182", "zk2:2181", "10.0.0.3:2183"]);
        assert_eq!(url.path, "/tessera");
        assert_eq!(
            url.to_string(),
            "zk://10.0.0.1:2182,zk2:2181,10.0.0.3:2183/tessera"
        );
        assert_eq!(ZkUrl::parse("zk://h:1/a/b").unwrap().path, "/a/b");
        assert!(ZkUrl::is_zk(" zk://h/x") && !ZkUrl::is_zk("10.0.0.1:5050"));
    }

    #[test]
    fn malformed_urls_say_what_is_wrong_and_the_form() {
        for (bad, why) in [
            ("tessera://h:5050", "zk://"),
            ("zk://h:2181", "no path"),
            ("zk://h:2181/", "name a node"),
            ("zk://h:x/t", "not a port"),
            ("zk://h:1,,g:2/t", "empty"),
        ] {
            let error = ZkUrl::parse(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
            assert!(error.contains("zk://HOST:PORT"), "{bad}: {error}");
        }
    }
}
