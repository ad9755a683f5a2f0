//! `tessera-scale`: the cluster manager at Mesos' scale. Emulated agents (8 CPUs, 32 GiB
//! each) register in-process with a real master state machine ([`MasterState`]) — no network,
//! as Mesos' allocator benchmarks and the Mesos paper's emulated slaves — and 200 frameworks
//! in 10 roles, each with more demand than the cluster holds, take what they are offered.
//!
//! For each cluster size it measures:
//!
//! * the allocator alone ([`DrfAllocator`]): the first cycle (every agent free, one offer per
//!   agent) and a steady cycle (1% of the agents freed since the last cycle);
//! * the master's cycle (allocator, plus making the offers and queuing them to their
//!   frameworks), first and steady;
//! * offer→launch latency: from the start of a cycle to the master's answer to the accept that
//!   launches an executor on the offer (the frameworks accept every offer in turn, under the
//!   master's one lock, as the gRPC service would);
//! * master memory per agent: resident growth while the agents register, over their number.
//!
//! Every cycle's decisions are checked: each free agent offered once, whole, and no framework
//! more than one agent ahead of another (they all have the same demand and weight). The goal
//! (issue: 100,000 agents, a cycle under 100 ms) is printed beside each figure.
//!
//! `tessera-scale [AGENTS,AGENTS,...] [CYCLES]` (default `10000,50000,100000 10`); build it
//! with `cargo build --release --bin tessera-scale`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tessera_allocator::{Allocator, DrfAllocator, OfferDecision, Resources};
use tessera_cluster_proto::agent::agent_client::AgentClient;
use tessera_cluster_proto::master as pb;
use tessera_master::{AgentAction, MasterConfig, MasterState};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const FRAMEWORKS: usize = 200;
const ROLES: usize = 10;
/// What each emulated agent has.
const AGENT: Resources = Resources {
    cpus: 8.0,
    mem_mb: 32 * 1024,
};
/// The part of the agents whose executors end between two steady cycles.
const CHURN: f64 = 0.01;
/// Goal for one allocation cycle at 100,000 agents.
const GOAL: Duration = Duration::from_millis(100);

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn role_of(framework: usize) -> String {
    format!("role{}", framework % ROLES)
}

/// Checks one cycle's decisions: each of `free_agents` agents offered once and whole, and the
/// frameworks' holdings (counted in agents) never more than one apart.
fn check_cycle(
    decisions: &[(String, String, Resources)],
    free_agents: usize,
    held: &mut BTreeMap<String, usize>,
) -> anyhow::Result<()> {
    ensure!(
        decisions.len() == free_agents,
        "{} offers for {free_agents} free agents",
        decisions.len()
    );
    let mut agents: Vec<&str> = decisions.iter().map(|d| d.1.as_str()).collect();
    agents.sort_unstable();
    agents.dedup();
    ensure!(agents.len() == free_agents, "an agent was offered twice");
    ensure!(
        decisions.iter().all(|d| d.2 == AGENT),
        "an offer was not a whole agent"
    );
    for (framework, _, _) in decisions {
        *held.entry(framework.clone()).or_default() += 1;
    }
    let (least, most) = (held.values().min(), held.values().max());
    ensure!(
        held.len() == FRAMEWORKS && most.zip(least).is_some_and(|(m, l)| m - l <= 1),
        "the frameworks' shares are not fair: from {least:?} to {most:?} agents"
    );
    Ok(())
}

fn from_decisions(decisions: &[OfferDecision]) -> Vec<(String, String, Resources)> {
    decisions
        .iter()
        .map(|d| (d.framework_id.clone(), d.agent_id.clone(), d.resources))
        .collect()
}

/// The agents whose executors end before a steady cycle: every `1/CHURN`-th, shifted each
/// cycle.
fn churned<T>(items: &[T], cycle: usize) -> impl Iterator<Item = &T> {
    let step = (1.0 / CHURN) as usize;
    items.iter().skip(cycle % step).step_by(step)
}

struct AllocatorFigures {
    first: Duration,
    steady: Duration,
}

fn allocator_alone(agents: usize, cycles: usize) -> anyhow::Result<AllocatorFigures> {
    let mut alloc = DrfAllocator::new();
    for a in 0..agents {
        alloc.add_agent(&format!("agent-{a}"), AGENT);
    }
    let mut roles = HashMap::new();
    for f in 0..FRAMEWORKS {
        let id = format!("framework-{f}");
        alloc.add_framework(&id, &[&role_of(f)]);
        roles.insert(id, role_of(f));
    }
    let now = Instant::now();
    let started = Instant::now();
    let decisions = alloc.allocate(now);
    let first = started.elapsed();
    let mut holdings = from_decisions(&decisions);
    check_cycle(&holdings, agents, &mut BTreeMap::new())?;
    // Every offer is used whole by an executor; before each steady cycle, 1% of them end.
    let mut steady = Vec::new();
    for cycle in 0..cycles {
        let ended: Vec<_> = churned(&holdings, cycle).cloned().collect();
        for (framework_id, agent_id, resources) in &ended {
            alloc.recover_resources(
                framework_id,
                &roles[framework_id],
                agent_id,
                *resources,
                None,
            );
        }
        let ended_set: HashSet<&str> = ended.iter().map(|e| e.1.as_str()).collect();
        holdings.retain(|h| !ended_set.contains(h.1.as_str()));
        let mut held = held_by(&holdings);
        let started = Instant::now();
        let again = from_decisions(&alloc.allocate(now));
        steady.push(started.elapsed());
        check_cycle(&again, ended.len(), &mut held)?;
        holdings.extend(again);
    }
    Ok(AllocatorFigures {
        first,
        steady: median(steady),
    })
}

struct MasterFigures {
    register: Duration,
    bytes_per_agent: f64,
    first: Duration,
    steady: Duration,
    latency_median: Duration,
    latency_p99: Duration,
}

/// Resident memory of this process, in bytes.
fn resident_bytes() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("cannot read /proc")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("statm has no resident field")?
        .parse()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(pages * page as u64)
}

type Events = UnboundedReceiver<Result<pb::Event, tonic::Status>>;

/// The offers queued to a framework.
fn take_offers(events: &mut Events) -> Vec<pb::Offer> {
    let mut offers = Vec::new();
    while let Ok(Ok(pb::Event { event: Some(e) })) = events.try_recv() {
        if let pb::event::Event::Offers(o) = e {
            offers.extend(o.offers);
        }
    }
    offers
}

/// Every framework accepts each of its offers with one executor using all of it; returns
/// the (framework, agent, executor) launched and the latency of each launch from `cycle_start`.
fn accept_all(
    master: &mut MasterState,
    frameworks: &mut [(String, Events)],
    cycle_start: Instant,
    next_executor: &mut u64,
) -> anyhow::Result<(Vec<(String, String, String)>, Vec<Duration>)> {
    let mut launched = Vec::new();
    let mut latencies = Vec::new();
    for (framework_id, events) in frameworks.iter_mut() {
        for offer in take_offers(events) {
            let executor_id = format!("e{next_executor}");
            *next_executor += 1;
            let request = pb::AcceptRequest {
                framework_id: framework_id.clone(),
                offer_ids: vec![offer.id],
                launches: vec![pb::ExecutorLaunch {
                    executor_id: executor_id.clone(),
                    command: Some(pb::CommandInfo {
                        program: "tessera-executor".into(),
                        ..Default::default()
                    }),
                    resources: offer.resources,
                    files_credential: String::new(),
                }],
                refuse_seconds: 0.0,
                ..Default::default()
            };
            let actions = master
                .accept(request, "scheduler", Instant::now())
                .map_err(|s| anyhow::anyhow!("accept refused: {}", s.message()))?;
            latencies.push(cycle_start.elapsed());
            ensure!(
                matches!(actions.as_slice(), [AgentAction::Launch { .. }]),
                "an accept did not launch"
            );
            launched.push((framework_id.clone(), offer.agent_id, executor_id));
        }
    }
    Ok((launched, latencies))
}

/// The offers that `launched` used, each a whole agent.
fn as_offers(launched: &[(String, String, String)]) -> Vec<(String, String, Resources)> {
    launched
        .iter()
        .map(|(framework, agent, _)| (framework.clone(), agent.clone(), AGENT))
        .collect()
}

/// How many agents each framework holds.
fn held_by<A, B>(holdings: &[(String, A, B)]) -> BTreeMap<String, usize> {
    let mut held = BTreeMap::new();
    for (framework, _, _) in holdings {
        *held.entry(framework.clone()).or_default() += 1;
    }
    held
}

fn master_state(agents: usize, cycles: usize) -> anyhow::Result<MasterFigures> {
    let mut master = MasterState::new(&MasterConfig::default());
    let mut frameworks: Vec<(String, Events)> = Vec::new();
    for f in 0..FRAMEWORKS {
        let (tx, rx) = unbounded_channel();
        let (id, _) = master
            .subscribe(
                format!("framework-{f}"),
                "bench".into(),
                role_of(f),
                "scheduler".into(),
                None,
                tx,
            )
            .map_err(|s| anyhow::anyhow!("subscribe refused: {}", s.message()))?;
        frameworks.push((id, rx));
    }
    let before = resident_bytes()?;
    let started = Instant::now();
    let mut agent_ids = Vec::with_capacity(agents);
    for a in 0..agents {
        // As the gRPC service does: a client per agent, connected at its first use.
        let address = format!("198.18.{}.{}:5051", a / 250, a % 250 + 1);
        let client = AgentClient::new(
            tonic::transport::Endpoint::from_shared(format!("https://{address}"))?.connect_lazy(),
        );
        let (id, _) = master
            .register_agent(
                (format!("host-{a}"), address, format!("agent-{a}")),
                AGENT,
                "posix".into(),
                client,
                Instant::now(),
            )
            .map_err(|s| anyhow::anyhow!("registration refused: {}", s.message()))?;
        agent_ids.push(id);
    }
    let register = started.elapsed();
    let bytes_per_agent = resident_bytes()?.saturating_sub(before) as f64 / agents as f64;

    let mut next_executor = 0;
    let cycle_start = Instant::now();
    master.allocate(cycle_start);
    let first = cycle_start.elapsed();
    let (mut launched, mut latencies) = accept_all(
        &mut master,
        &mut frameworks,
        cycle_start,
        &mut next_executor,
    )?;
    check_cycle(&as_offers(&launched), agents, &mut BTreeMap::new())?;
    let agent_number: BTreeMap<&str, usize> = agent_ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.as_str(), n))
        .collect();
    let mut steady = Vec::new();
    for cycle in 0..cycles {
        let ended: Vec<(String, String, String)> = churned(&launched, cycle).cloned().collect();
        for (framework_id, agent_id, executor_id) in &ended {
            let update = pb::StatusUpdate {
                agent_id: agent_id.clone(),
                framework_id: framework_id.clone(),
                executor_id: executor_id.clone(),
                state: pb::ExecutorState::Finished as i32,
                message: String::new(),
                ..Default::default()
            };
            master
                .agent_update(
                    &format!("agent-{}", agent_number[agent_id.as_str()]),
                    update,
                )
                .map_err(|s| anyhow::anyhow!("status update refused: {}", s.message()))?;
        }
        let ended_set: HashSet<&str> = ended.iter().map(|e| e.1.as_str()).collect();
        launched.retain(|l| !ended_set.contains(l.1.as_str()));
        let mut held = held_by(&launched);
        let cycle_start = Instant::now();
        master.allocate(cycle_start);
        steady.push(cycle_start.elapsed());
        let (again, more_latencies) = accept_all(
            &mut master,
            &mut frameworks,
            cycle_start,
            &mut next_executor,
        )?;
        check_cycle(&as_offers(&again), ended.len(), &mut held)?;
        latencies.extend(more_latencies);
        launched.extend(again);
    }
    Ok(MasterFigures {
        register,
        bytes_per_agent,
        first,
        steady: median(steady),
        latency_median: percentile(&mut latencies, 0.5),
        latency_p99: percentile(&mut latencies, 0.99),
    })
}

/// Set for the process that measures one cluster size and prints its row.
const ONE_SIZE_ENV: &str = "TESSERA_SCALE_ONE_SIZE";

/// Measures one cluster size and prints its row of the table.
fn measure(agents: usize, cycles: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _entered = runtime.enter();
    let alloc = allocator_alone(agents, cycles)?;
    let master = master_state(agents, cycles)?;
    println!(
        "| {agents} | {} | {} | {} | {} | {} | {} | {} | {:.1} KiB |",
        ms(alloc.first),
        ms(alloc.steady),
        ms(master.first),
        ms(master.steady),
        ms(master.latency_median),
        ms(master.latency_p99),
        ms(master.register),
        master.bytes_per_agent / 1024.0
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = args
        .get(1)
        .map_or("10000,50000,100000", String::as_str)
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .with_context(|| format!("bad agent count {n:?}"))
        })
        .collect::<Result<_, _>>()?;
    let cycles: usize = args.get(2).map(|c| c.parse()).transpose()?.unwrap_or(10);
    if cycles == 0 {
        bail!("give at least one steady cycle");
    }
    if std::env::var_os(ONE_SIZE_ENV).is_some() {
        let [agents] = sizes[..] else {
            bail!("{ONE_SIZE_ENV}: give one agent count");
        };
        return measure(agents, cycles);
    }
    println!(
        "{FRAMEWORKS} frameworks in {ROLES} roles; agents of {AGENT}; steady cycles free {}% of the agents; goal: a cycle under {} at 100,000 agents",
        CHURN * 100.0,
        ms(GOAL)
    );
    println!();
    println!(
        "| agents | allocator: first cycle | allocator: steady cycle | master: first cycle | master: steady cycle | offer→launch median | offer→launch p99 | registering | master memory per agent |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // Each size in a process of its own: a heap that held a smaller cluster's maps makes the
    // next size's cycles slower and its memory per agent wrong.
    for agents in sizes {
        ensure!(agents >= FRAMEWORKS, "give at least {FRAMEWORKS} agents");
        let status = std::process::Command::new(std::env::current_exe()?)
            .args([agents.to_string(), cycles.to_string()])
            .env(ONE_SIZE_ENV, "1")
            .status()?;
        ensure!(status.success(), "the run with {agents} agents failed");
    }
    Ok(())
}
