//! `tessera-master`: the daemon that pools agents' resources and offers them to
//! frameworks. Logs go to stderr (`RUST_LOG` filters them); nothing is printed
//! to stdout.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tessera_allocator::Resources;
use tessera_credentials::{Credential, Principal};
use tessera_master::MasterConfig;
use tessera_zookeeper::{MasterInfo, Standing, ZkUrl};

/// Tessera's cluster master: agents register with it, frameworks subscribe to
/// it for resource offers.
#[derive(Parser, Debug)]
#[command(name = "tessera-master", version)]
struct Args {
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The HOST:PORT agents and sessions should be given as --master, when it is not the
    /// bound address (default: the bound address, or this host's name when bound to every
    /// interface); logged and written to --address-file.
    #[arg(long)]
    advertise_address: Option<String>,
    /// The master's credentials: the directory `tessera cluster
    /// init-credentials DIR` made as DIR/master (ca.pem, cert.pem, key.pem).
    #[arg(long)]
    credentials: PathBuf,
    /// Port to listen on; 0 picks a free port (see --address-file).
    #[arg(long, default_value_t = 5050)]
    port: u16,
    /// Once listening, write "HOST:PORT" to this file.
    #[arg(long)]
    address_file: Option<PathBuf>,
    /// Serve HTTPS on this port of the --bind address: /state (JSON), /metrics (Prometheus),
    /// /health and a page at /; 0 picks a free port (see --http-address-file). No HTTP without
    /// it.
    #[arg(long)]
    http_port: Option<u16>,
    /// Once listening, write the HTTP side's "HOST:PORT" to this file (before --address-file).
    #[arg(long, requires = "http_port")]
    http_address_file: Option<PathBuf>,
    /// The HTTP endpoints other than /health answer only requests that come with a client
    /// certificate of the cluster's CA (by default they answer anyone who reaches the port).
    #[arg(long, requires = "http_port")]
    authenticate_http_readonly: bool,
    /// How often the allocator makes offers, in milliseconds.
    #[arg(long, default_value_t = 200)]
    allocation_interval_ms: u64,
    /// An agent silent for this long is declared lost, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    agent_timeout_ms: u64,
    /// How long a disconnected framework may take to subscribe again before
    /// its executors are killed, in milliseconds (0: at once), for frameworks that name no
    /// failover timeout of their own when they subscribe.
    #[arg(long, default_value_t = 0)]
    framework_failover_timeout_ms: u64,
    /// How often connected frameworks get a Heartbeat event, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    framework_heartbeat_interval_ms: u64,
    /// When a framework has wanted offers below its fair share, with nothing free, for this
    /// long, frameworks above their share are asked to give back what they hold beyond it, in
    /// milliseconds (0: never).
    #[arg(long, default_value_t = 5_000)]
    reclaim_after_ms: u64,
    /// Offers not answered for this long are rescinded and offered again, in milliseconds
    /// (0: offers wait for an answer).
    #[arg(long, default_value_t = 0)]
    offer_timeout_ms: u64,
    /// The allocation policy: weighted DRF between roles (Mesos' default), or strict priority
    /// (a role's weight is its priority).
    #[arg(long, value_enum, default_value = "drf")]
    allocator: Policy,
    /// A role's weight, ROLE=WEIGHT (repeat for more roles; 1 for any other role).
    #[arg(long = "role-weight", value_parser = parse_role_weight)]
    role_weights: Vec<(String, f64)>,
    /// Resources a role is offered first and that others are not offered while it lacks them,
    /// ROLE=CPUS,MEM_MB (repeat for more roles).
    #[arg(long = "quota-guarantee", value_parser = parse_role_resources)]
    quota_guarantees: Vec<(String, Resources)>,
    /// The most a role may hold, ROLE=CPUS,MEM_MB (repeat for more roles).
    #[arg(long = "quota-limit", value_parser = parse_role_resources)]
    quota_limits: Vec<(String, Resources)>,
    /// Stand for election with other masters through ZooKeeper,
    /// zk://HOST:PORT[,HOST:PORT...]/PATH: the elected master serves, the others stand by
    /// and take over when it goes. Agents and sessions are given the same URL.
    #[arg(long)]
    zk: Option<String>,
    /// The ZooKeeper session timeout, in milliseconds: how long after a leader dies a standby
    /// takes over. The ensemble grants between 2 and 20 of its ticks (tickTime), so a short
    /// timeout needs a short tick.
    #[arg(long, default_value_t = 2_000)]
    zk_session_timeout_ms: u64,
}

/// Each role's quota from the guarantee and limit flags.
fn quotas(
    guarantees: &[(String, Resources)],
    limits: &[(String, Resources)],
) -> Vec<(String, tessera_allocator::Quota)> {
    let mut quotas: std::collections::BTreeMap<String, tessera_allocator::Quota> =
        Default::default();
    for (role, guarantee) in guarantees {
        quotas.entry(role.clone()).or_default().guarantee = *guarantee;
    }
    for (role, limit) in limits {
        quotas.entry(role.clone()).or_default().limit = Some(*limit);
    }
    quotas.into_iter().collect()
}

/// `ROLE=CPUS,MEM_MB`.
fn parse_role_resources(text: &str) -> Result<(String, Resources), String> {
    let usage = || format!("`{text}` is not ROLE=CPUS,MEM_MB (e.g. analytics=4,8192)");
    let (role, amounts) = text.split_once('=').ok_or_else(usage)?;
    let (cpus, mem_mb) = amounts.split_once(',').ok_or_else(usage)?;
    let cpus: f64 = cpus.trim().parse().map_err(|_| usage())?;
    let mem_mb: u64 = mem_mb.trim().parse().map_err(|_| usage())?;
    if role.trim().is_empty() || cpus.is_nan() || cpus < 0.0 {
        return Err(usage());
    }
    Ok((role.trim().to_string(), Resources::new(cpus, mem_mb)))
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Policy {
    Drf,
    Priority,
}

/// `ROLE=WEIGHT`, a positive weight.
fn parse_role_weight(text: &str) -> Result<(String, f64), String> {
    let (role, weight) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not ROLE=WEIGHT (e.g. analytics=2)"))?;
    let weight: f64 = weight
        .trim()
        .parse()
        .map_err(|_| format!("the weight in `{text}` is not a number (e.g. analytics=2)"))?;
    if role.trim().is_empty() || weight.is_nan() || weight <= 0.0 {
        return Err(format!(
            "`{text}` needs a role and a positive weight (e.g. analytics=2)"
        ));
    }
    Ok((role.trim().to_string(), weight))
}

/// Writes the file atomically, so a reader never sees half an address.
fn write_address_file(path: &Path, addr: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, addr)
        .with_context(|| format!("cannot write the address file {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot write the address file {}", path.display()))?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tessera_logging::init("info");
    let args = Args::parse();
    if args.allocation_interval_ms == 0 {
        bail!("--allocation-interval-ms must be at least 1");
    }
    if args.agent_timeout_ms == 0 {
        bail!("--agent-timeout-ms must be at least 1");
    }
    let credential = Credential::load(&args.credentials)?;
    if credential.principal()? != Principal::Master {
        bail!(
            "the credentials in {} are not a master's (they name {}); pass the directory \
             `tessera cluster init-credentials DIR` made as DIR/master",
            args.credentials.display(),
            credential.principal()?
        );
    }
    let config = MasterConfig {
        allocation_interval: Duration::from_millis(args.allocation_interval_ms),
        agent_timeout: Duration::from_millis(args.agent_timeout_ms),
        framework_failover_timeout: Duration::from_millis(args.framework_failover_timeout_ms),
        policy: match args.allocator {
            Policy::Drf => tessera_master::AllocationPolicy::Drf,
            Policy::Priority => tessera_master::AllocationPolicy::Priority,
        },
        role_weights: args.role_weights,
        role_quotas: quotas(&args.quota_guarantees, &args.quota_limits),
        offer_timeout: (args.offer_timeout_ms > 0)
            .then(|| Duration::from_millis(args.offer_timeout_ms)),
        reclaim_after: (args.reclaim_after_ms > 0)
            .then(|| Duration::from_millis(args.reclaim_after_ms)),
        framework_heartbeat_interval: Duration::from_millis(
            args.framework_heartbeat_interval_ms.max(10),
        ),
        authenticate_http_readonly: args.authenticate_http_readonly,
    };
    let (listener, addr) = listen(args.bind, args.port, "--port").await?;
    let advertised = args
        .advertise_address
        .clone()
        .unwrap_or_else(|| tessera_credentials::advertised_address(addr));
    tracing::info!(%advertised, "agents and frameworks reach this master at the advertised address");
    let (http_listener, http_advertised) = match args.http_port {
        Some(port) => {
            let (http_listener, http_addr) = listen(args.bind, port, "--http-port").await?;
            let http_advertised = with_port(&advertised, http_addr.port());
            tracing::info!("operators see this master at https://{http_advertised}/");
            if let Some(path) = &args.http_address_file {
                write_address_file(path, &http_advertised)?;
            }
            (Some(http_listener), Some(http_advertised))
        }
        None => (None, None),
    };
    if let Some(path) = &args.address_file {
        write_address_file(path, &advertised)?;
    }
    let Some(zk) = &args.zk else {
        let leadership = tessera_master::Leadership::Sole;
        tessera_master::serve(
            config,
            listener,
            http_listener,
            credential,
            leadership,
            shutdown_signal(),
        )
        .await?;
        return Ok(());
    };
    let url = ZkUrl::parse(zk)?;
    let info = MasterInfo {
        address: advertised,
        http_address: http_advertised,
        pid: std::process::id(),
    };
    let session_timeout = Duration::from_millis(args.zk_session_timeout_ms.max(1));
    let mut contender = tessera_zookeeper::contend(&url, &info, session_timeout)
        .await
        .with_context(|| format!("cannot stand for election through {url}"))?;
    let leadership = tessera_master::Leadership::Elected(contender.standing_receiver());
    let serving = tessera_master::serve(
        config,
        listener,
        http_listener,
        credential,
        leadership,
        async {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = lost_leadership(&mut contender) => {}
            }
        },
    );
    serving.await?;
    match contender.standing() {
        Standing::Lost { reason } => bail!(
            "this master lost its leadership ({reason}) and stops, as another master may lead \
             now; start it again to stand by"
        ),
        _ => {
            contender.withdraw().await;
            Ok(())
        }
    }
}

/// Logs the election as it goes and returns once this master has lost its standing.
async fn lost_leadership(contender: &mut tessera_zookeeper::Contender) {
    let elected = contender
        .elected(|leader| match leader {
            Some(leader) => tracing::info!(
                leader = %leader.address,
                "standing by: another master leads"
            ),
            None => tracing::info!("standing by: no master leads yet"),
        })
        .await;
    if elected.is_ok() {
        tracing::info!("elected: this master leads; agents and frameworks will register again");
        contender.lost().await;
    }
}

/// A listener on `bind`:`port` (`flag` names the port's flag), and its address.
async fn listen(
    bind: IpAddr,
    port: u16,
    flag: &str,
) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let requested = SocketAddr::new(bind, port);
    let listener = tokio::net::TcpListener::bind(requested).await.with_context(|| {
        format!("cannot listen on {requested} (is another tessera-master running? pick another {flag}, or 0 for any free port)")
    })?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    Ok((listener, addr))
}

/// `advertised` ("HOST:PORT") with another port: where the HTTP side is reached.
fn with_port(advertised: &str, port: u16) -> String {
    let host = advertised
        .rsplit_once(':')
        .map_or(advertised, |(host, _)| host);
    format!("{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_weights_are_role_equals_a_positive_number() {
        assert_eq!(
            parse_role_weight("analytics=2"),
            Ok(("analytics".to_string(), 2.0))
        );
        assert_eq!(
            parse_role_weight(" etl = 0.5"),
            Ok(("etl".to_string(), 0.5))
        );
        for bad in ["analytics", "analytics=two", "=2", "etl=0", "etl=-1"] {
            let error = parse_role_weight(bad).unwrap_err();
            assert!(error.contains("analytics=2"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_http_side_is_advertised_on_the_same_host() {
        assert_eq!(
            with_port("master.example.net:5050", 5051),
            "master.example.net:5051"
        );
        assert_eq!(with_port("[::1]:5050", 8080), "[::1]:8080");
        assert_eq!(with_port("10.0.0.1:0", 1), "10.0.0.1:1");
    }

    #[test]
    fn quota_flags_make_one_quota_per_role() {
        let etl = parse_role_resources("etl=4,8192").unwrap();
        assert_eq!(etl, ("etl".to_string(), Resources::new(4.0, 8192)));
        assert!(
            parse_role_resources("etl=4")
                .unwrap_err()
                .contains("ROLE=CPUS,MEM_MB")
        );
        assert!(parse_role_resources("etl=-1,5").is_err());
        let limit = parse_role_resources("etl=8,16384").unwrap();
        let web = parse_role_resources("web=2,1024").unwrap();
        let made = quotas(&[etl], &[limit, web]);
        assert_eq!(made.len(), 2);
        assert_eq!(made[0].0, "etl");
        assert_eq!(made[0].1.guarantee, Resources::new(4.0, 8192));
        assert_eq!(made[0].1.limit, Some(Resources::new(8.0, 16384)));
        assert_eq!(made[1].1.guarantee, Resources::ZERO);
    }
}
