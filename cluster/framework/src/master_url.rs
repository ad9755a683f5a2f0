//! Master URLs, as a session's `--master` takes them (Spark's syntax):
//! `local`, `local[N]`, `local[*]`, `local-cluster[A,C,M]`,
//! `tessera://HOST:PORT`, and `zk://HOST:PORT,.../PATH` for masters that elect their leader
//! through ZooKeeper.

use std::fmt;

/// Where a session gets its executors.
#[derive(Clone, Debug, PartialEq)]
pub enum MasterUrl {
    /// `local` (1 core), `local[N]`, `local[*]` (all cores): executors on this
    /// machine without a cluster manager. `*` is resolved to the machine's
    /// available parallelism.
    Local {
        /// How many cores the one local executor runs tasks on (at least 1).
        cores: usize,
    },
    /// `local-cluster[A,C,M]`: a real master and `agents` agents on loopback,
    /// each offering `cpus_per_agent` CPUs and `mem_mb_per_agent` MiB (see
    /// [`crate::LocalCluster`]).
    LocalCluster {
        /// How many agents to start (at least 1).
        agents: usize,
        /// CPUs each agent offers (positive; fractions allowed).
        cpus_per_agent: f64,
        /// Memory each agent offers, in MiB.
        mem_mb_per_agent: u64,
    },
    /// `tessera://HOST:PORT`: a running `tessera-master`; `address` is
    /// "HOST:PORT". The port defaults to 5050. Or `zk://HOST:PORT,.../PATH`: the leader of
    /// masters started with `--zk` that URL, followed as it changes; `address` is the URL.
    Tessera {
        /// The master's "HOST:PORT", or the `zk://` URL.
        address: String,
    },
}

/// The master URL could not be understood.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "invalid master URL {input:?}: {reason}; expected one of `local`, `local[N]`, `local[*]`, \
     `local-cluster[AGENTS,CPUS,MEM_MB]`, `tessera://HOST:PORT` or \
     `zk://HOST:PORT[,HOST:PORT...]/PATH`"
)]
pub struct MasterUrlError {
    /// The URL as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The default port of `tessera-master`.
pub const DEFAULT_MASTER_PORT: u16 = 5050;

fn bracketed<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.strip_prefix(prefix)?.strip_prefix('[')?.strip_suffix(']')
}

/// Parses a master URL. See [`MasterUrl`] for the forms.
pub fn parse_master_url(s: &str) -> Result<MasterUrl, MasterUrlError> {
    let input = s.trim();
    let err = |reason: String| MasterUrlError {
        input: s.to_string(),
        reason,
    };
    if input == "local" {
        return Ok(MasterUrl::Local { cores: 1 });
    }
    if let Some(inner) = bracketed(input, "local") {
        let inner = inner.trim();
        if inner == "*" {
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            return Ok(MasterUrl::Local { cores });
        }
        return match inner.parse::<usize>() {
            Ok(0) => Err(err("the number of cores must be at least 1".into())),
            Ok(cores) => Ok(MasterUrl::Local { cores }),
            Err(_) => Err(err(format!("{inner:?} is not a number of cores or `*`"))),
        };
    }
    if let Some(inner) = bracketed(input, "local-cluster") {
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        let [agents, cpus, mem] = parts[..] else {
            return Err(err(format!(
                "local-cluster takes three numbers (agents, CPUs per agent, MiB per agent), got {}",
                parts.len()
            )));
        };
        let agents: usize = agents
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| err(format!("{agents:?} is not a number of agents (at least 1)")))?;
        let cpus_per_agent: f64 = cpus
            .parse()
            .ok()
            .filter(|c: &f64| c.is_finite() && *c > 0.0)
            .ok_or_else(|| {
                err(format!(
                    "{cpus:?} is not a positive number of CPUs per agent"
                ))
            })?;
        let mem_mb_per_agent: u64 = mem.parse().ok().filter(|&m| m >= 1).ok_or_else(|| {
            err(format!(
                "{mem:?} is not a number of MiB per agent (at least 1)"
            ))
        })?;
        return Ok(MasterUrl::LocalCluster {
            agents,
            cpus_per_agent,
            mem_mb_per_agent,
        });
    }
    if let Some(rest) = input.strip_prefix("tessera://") {
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(err("expected tessera://HOST:PORT".into()));
        }
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 literal without a port: [::1]
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (rest, None),
        };
        if host.is_empty() {
            return Err(err("the host is empty".into()));
        }
        let port = match port {
            None => DEFAULT_MASTER_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| err(format!("{p:?} is not a port number")))?,
        };
        return Ok(MasterUrl::Tessera {
            address: format!("{host}:{port}"),
        });
    }
    if tessera_zookeeper::ZkUrl::is_zk(input) {
        let url = tessera_zookeeper::ZkUrl::parse(input).map_err(|e| match e {
            tessera_zookeeper::ZkError::BadUrl { reason, .. } => err(reason),
            other => err(other.to_string()),
        })?;
        return Ok(MasterUrl::Tessera {
            address: url.to_string(),
        });
    }
    if input.starts_with("mesos://") || input.starts_with("spark://") || input == "yarn" {
        return Err(err(
            "Tessera runs on its own cluster manager; use tessera://HOST:PORT".into(),
        ));
    }
    Err(err("unknown form".into()))
}

impl std::str::FromStr for MasterUrl {
    type Err = MasterUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_master_url(s)
    }
}

impl fmt::Display for MasterUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterUrl::Local { cores } => write!(f, "local[{cores}]"),
            MasterUrl::LocalCluster {
                agents,
                cpus_per_agent,
                mem_mb_per_agent,
            } => {
                write!(
                    f,
                    "local-cluster[{agents},{cpus_per_agent},{mem_mb_per_agent}]"
                )
            }
            MasterUrl::Tessera { address } if tessera_zookeeper::ZkUrl::is_zk(address) => {
                write!(f, "{address}")
            }
            MasterUrl::Tessera { address } => write!(f, "tessera://{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(parse_master_url("local"), Ok(MasterUrl::Local { cores: 1 }));
        assert_eq!(
            parse_master_url("local[4]"),
            Ok(MasterUrl::Local { cores: 4 })
        );
        match parse_master_url("local[*]") {
            Ok(MasterUrl::Local { cores }) => assert!(cores >= 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_master_url("local-cluster[2, 1, 1024]"),
            Ok(MasterUrl::LocalCluster {
                agents: 2,
                cpus_per_agent: 1.0,
                mem_mb_per_agent: 1024
            })
        );
        assert_eq!(
            parse_master_url("tessera://127.0.0.1:5051"),
            Ok(MasterUrl::Tessera {
                address: "127.0.0.1:5051".into()
            })
        );
        assert_eq!(
            parse_master_url("tessera://node7"),
            Ok(MasterUrl::Tessera {
                address: "node7:5050".into()
            })
        );
        assert_eq!(
            parse_master_url("zk://10.0.0.1:2181,10.0.0.2/tessera"),
            Ok(MasterUrl::Tessera {
                address: "zk://10.0.0.1:2181,10.0.0.2:2181/tessera".into()
            })
        );
        assert_eq!(
            parse_master_url("tessera://[::1]:6000"),
            Ok(MasterUrl::Tessera {
                address: "[::1]:6000".into()
            })
        );
    }

    #[test]
    fn round_trips_through_display() {
        for s in [
            "local[3]",
            "local-cluster[2,1.5,512]",
            "tessera://h:1",
            "zk://a:1,b:2/t",
        ] {
            assert_eq!(parse_master_url(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_with_a_clear_error() {
        for bad in [
            "",
            "locl",
            "local[0]",
            "local[x]",
            "local[2",
            "local-cluster[2,1]",
            "local-cluster[0,1,1024]",
            "local-cluster[2,-1,1024]",
            "tessera://",
            "tessera://h:99999",
            "mesos://h:5050",
            "zk://h:2181",
        ] {
            let e = parse_master_url(bad).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("invalid master URL"), "{text}");
            assert!(text.contains("tessera://HOST:PORT"), "{text}");
        }
        let e = parse_master_url("local[x]").unwrap_err();
        assert!(e.reason.contains("\"x\""), "{}", e.reason);
    }
}
