//! Tessera across hosts: each host is a Linux network namespace of its own on a private bridge
//! (addresses from 198.18.0.0/15), with its own host name. Host A runs `tessera-master`, hosts B
//! and C one `tessera-agent` each, host D the session (`tessera run`), host E a stranger. Every
//! link is mutual TLS with certificates from `tessera cluster init-credentials`.
//!
//! These tests need root (to make namespaces); without it they fail saying so.
//! The binaries must be built first: `cargo build --workspace --bins`.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tessera_credentials::Credential;
use tessera_e2e::netns::TestNetwork;
use tessera_e2e::refusals::{ClusterUnderTest, Vantage, every_refusal};
use tessera_e2e::{Scratch, TaskLine, bin, log_file, read_task_metrics};
use tessera_framework::{MasterEndpoint, cluster_status};

const MASTER_PORT: u16 = 5050;
const AGENT_PORT: u16 = 5051;
/// The session's first cell compiles the tessera crate: give it time on a cold cache.
const SESSION_WAIT: Duration = Duration::from_secs(300);

/// A master on host `a` and agents on hosts `b` and `c`, started on a test network.
struct Cluster {
    net: TestNetwork,
    dir: Scratch,
    children: Vec<Child>,
}

impl Cluster {
    /// Makes `hosts` (the first three are master, agent, agent), the cluster's credentials and
    /// its processes, and waits until both agents are registered.
    fn start(name: &str, hosts: &[&str]) -> Cluster {
        let net = TestNetwork::create(hosts).unwrap_or_else(|e| panic!("{e}"));
        let dir = Scratch::new(name);
        let init = Command::new(bin("tessera"))
            .args(["cluster", "init-credentials"])
            .arg(dir.0.join("creds"))
            .args(["--agent", "b", "--agent", "c", "--framework", "alice"])
            .output()
            .expect("tessera runs");
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let mut cluster = Cluster {
            net,
            dir,
            children: Vec::new(),
        };
        let master = cluster.master();
        let creds = cluster.dir.0.join("creds");
        let bind = cluster.net.address("a").to_string();
        cluster.spawn("a", "tessera-master", |c| {
            c.args(["--bind", &bind, "--port", &MASTER_PORT.to_string()])
                .arg("--credentials")
                .arg(creds.join("master"));
        });
        for agent in ["b", "c"] {
            let bind = cluster.net.address(agent).to_string();
            let work = cluster.dir.0.join(format!("work-{agent}"));
            cluster.spawn(agent, "tessera-agent", |c| {
                c.args(["--master", &master, "--bind", &bind])
                    .args(["--port", &AGENT_PORT.to_string()])
                    .args(["--cpus", "2", "--mem-mb", "2048"])
                    .arg("--credentials")
                    .arg(creds.join("agents").join(agent))
                    .arg("--work-dir")
                    .arg(work);
            });
        }
        let endpoint = MasterEndpoint {
            address: master,
            credential: cluster.alice(),
        };
        let hosts = cluster.on_host("d", async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let hosts: Vec<String> = match cluster_status(&endpoint).await {
                    Ok(status) => status.agents.into_iter().map(|a| a.hostname).collect(),
                    Err(_) => Vec::new(),
                };
                if hosts.len() == 2 || Instant::now() > deadline {
                    return hosts;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut sorted = hosts.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["b", "c"],
            "both agents register, each under its host's name\n{}",
            cluster.logs()
        );
        cluster
    }

    fn master(&self) -> String {
        format!("{}:{MASTER_PORT}", self.net.address("a"))
    }

    fn alice_dir(&self) -> PathBuf {
        self.dir.0.join("creds/frameworks/alice")
    }

    fn alice(&self) -> Credential {
        Credential::load(&self.alice_dir()).expect("alice's credential")
    }

    fn log(&self, host: &str, program: &str) -> PathBuf {
        self.dir.0.join(format!("{host}-{program}.log"))
    }

    /// Starts `program` on `host`, its output in the host's log.
    fn spawn(&mut self, host: &str, program: &str, args: impl FnOnce(&mut Command)) {
        let log = std::fs::File::create(self.log(host, program)).unwrap();
        let mut command = self.net.command(host, &bin(program));
        command
            .current_dir(&self.dir.0)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        args(&mut command);
        self.children
            .push(command.spawn().expect("ip netns exec runs"));
    }

    /// Runs `work` on a thread of its own on `host`.
    fn on_host<T: Send>(&self, host: &str, work: impl std::future::Future<Output = T> + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.net.enter(host).unwrap_or_else(|e| panic!("{e}"));
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(work)
            })
            .join()
            .expect("the thread on the test host")
        })
    }

    /// Every process's log, for a failure message.
    fn logs(&self) -> String {
        let mut text = String::new();
        for (host, program) in [
            ("a", "tessera-master"),
            ("b", "tessera-agent"),
            ("c", "tessera-agent"),
            ("d", "tessera"),
        ] {
            let log = std::fs::read_to_string(self.log(host, program)).unwrap_or_default();
            text += &format!("--- {program} on {host}:\n{log}\n");
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The cache script, a shuffle, a side file, a broadcast variable and an accumulator on the
/// executors, and a slow shuffle during which the test kills host C.
const SCRIPT: &str = r#"
let lines = sc.text_file("app.log", 8);
let errors = lines.filter(|l: &String| l.starts_with("ERROR")).cache();
fn number(line: &str) -> u64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}
// %%
errors.count()
// %%
errors.count()
// %%
:storage
// %%
let sums = errors.map(|l: String| ((number(&l) / 10) % 16, number(&l))).reduce_by_key(|a: u64, b: u64| a + b);
let mut sums = sums.collect();
sums.sort();
println!("{:?}", sums);
// %%
sc.add_file("levels.txt");
fn weight(level: &str) -> u64 {
    let table = std::fs::read_to_string(tessera::files::get("levels.txt")).unwrap();
    table.lines().find_map(|l| l.strip_prefix(level)?.trim().parse().ok()).unwrap()
}
let factor = sc.broadcast(2u64);
let weighed = sc.accumulator::<u64>();
errors.foreach(capture!([factor, weighed] |l: String| weighed.add(weight(l.split(' ').next().unwrap()) * *factor.value())));
weighed.value()
// %%
let slow = errors.map(|l: String| {
    std::thread::sleep(std::time::Duration::from_millis(100));
    ((number(&l) / 10) % 3, 1u64)
});
let mut counts = slow.reduce_by_key(|a: u64, b: u64| a + b).collect();
counts.sort();
println!("{:?}", counts);
"#;

/// The job the test interrupts by killing host C.
const SLOW_JOB: u64 = 4;

fn expected_lines() -> (Vec<String>, String, String) {
    let errors: Vec<u64> = (1..=1000).filter(|i| i % 10 == 0).collect();
    let group = |modulus: u64, value: &dyn Fn(u64) -> u64| {
        let mut groups = std::collections::BTreeMap::new();
        for &i in &errors {
            *groups.entry((i / 10) % modulus).or_insert(0u64) += value(i);
        }
        format!("{:?}", groups.into_iter().collect::<Vec<_>>())
    };
    (
        vec![errors.len().to_string(), errors.len().to_string()],
        // 16 keys: every one of the 8 reduce partitions reads some, whichever executor runs it.
        group(16, &|i| i),
        group(3, &|_| 1),
    )
}

/// The executor the storage table shows on `host`.
fn executor_on(storage_row: &str, host: &str) -> Option<String> {
    let words: Vec<&str> = storage_row.split_whitespace().collect();
    words
        .windows(3)
        .find(|w| w[1] == "on" && w[2] == format!("{host}:"))
        .map(|w| w[0].to_string())
}

fn executors_of(tasks: &[&TaskLine]) -> std::collections::BTreeSet<String> {
    tasks.iter().map(|t| t.executor.clone()).collect()
}

#[test]
fn a_session_on_a_third_host_caches_on_two_agents_and_survives_losing_one() {
    let mut cluster = Cluster::start("multi-host", &["a", "b", "c", "d"]);
    std::fs::write(cluster.dir.0.join("app.log"), log_file()).unwrap();
    std::fs::write(cluster.dir.0.join("script.rs"), SCRIPT).unwrap();
    std::fs::write(cluster.dir.0.join("levels.txt"), "ERROR 3\nINFO 1\n").unwrap();
    let metrics = cluster.dir.0.join("tasks.jsonl");
    let out = cluster.dir.0.join("session.out");
    let master = format!("tessera://{}", cluster.master());
    let alice = cluster.alice_dir();
    let stdout = std::fs::File::create(&out).unwrap();
    let mut command = cluster.net.command("d", &bin("tessera"));
    command
        .current_dir(&cluster.dir.0)
        .args(["--master", &master, "--credentials"])
        .arg(&alice)
        .arg("--task-metrics")
        .arg(&metrics)
        .args(["run", "script.rs"])
        .env("NO_COLOR", "1")
        // Host D has no route to a package registry: cargo works from its local cache, as on an
        // offline machine.
        .env("CARGO_NET_OFFLINE", "true")
        .stdout(stdout)
        .stderr(std::fs::File::create(cluster.log("d", "tessera")).unwrap());
    let mut session = command.spawn().expect("ip netns exec runs");

    // Once the slow job has finished its first task, every process on host C dies at once:
    // agent, executor, and the executor's cached partitions and shuffle outputs with them.
    let deadline = Instant::now() + SESSION_WAIT;
    while !read_task_metrics(&metrics)
        .iter()
        .any(|t| t.job == SLOW_JOB)
    {
        if let Some(status) = session.try_wait().unwrap() {
            panic!(
                "the session ended ({status}) before job {SLOW_JOB}:\n{}",
                cluster.logs()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no task of job {SLOW_JOB} within {SESSION_WAIT:?}:\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = cluster.net.kill_all("c");
    assert!(
        killed >= 2,
        "host C ran an agent and an executor; killed {killed}"
    );
    let status = loop {
        if let Some(status) = session.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the session did not finish:\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    cluster.children.push(session);
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert!(status.success(), "{stdout}\n{}", cluster.logs());

    // Right results, before and after losing host C.
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let (counts, sums, slow) = expected_lines();
    assert_eq!(lines[..2], counts, "{stdout}");
    assert_eq!(lines[lines.len() - 3], sums, "{stdout}");
    assert_eq!(
        lines[lines.len() - 2],
        (2 * 3 * 100).to_string(),
        "{stdout}"
    );
    assert_eq!(lines[lines.len() - 1], slow, "{stdout}");

    // The second count came from executor memory on both agents' hosts.
    let tasks = read_task_metrics(&metrics);
    let job = |n: u64| tasks.iter().filter(|t| t.job == n).collect::<Vec<_>>();
    let storage = lines
        .iter()
        .find(|l| l.contains("MEMORY_ONLY"))
        .unwrap_or_else(|| panic!("no storage row in:\n{stdout}"));
    assert!(storage.contains("8/8"), "{storage}");
    let on_b = executor_on(storage, "b").unwrap_or_else(|| panic!("no executor on b: {storage}"));
    let on_c = executor_on(storage, "c").unwrap_or_else(|| panic!("no executor on c: {storage}"));
    assert_eq!(job(1).len(), 8);
    assert!(
        job(1).iter().all(|t| t.origin.starts_with("cached:")),
        "{:?}",
        job(1)
    );
    assert_eq!(
        executors_of(&job(1)),
        [on_b.clone(), on_c.clone()].into(),
        "{:?}",
        job(1)
    );

    // The shuffle wrote map outputs on both hosts and read them across.
    let maps: Vec<&TaskLine> = job(2)
        .into_iter()
        .filter(|t| t.stage.starts_with("map:"))
        .collect();
    let reduces: Vec<&TaskLine> = job(2).into_iter().filter(|t| t.stage == "result").collect();
    assert_eq!(
        executors_of(&maps),
        [on_b.clone(), on_c.clone()].into(),
        "{maps:?}"
    );
    assert!(maps.iter().all(|t| t.shuffle_written > 0), "{maps:?}");
    let read_on = |e: &str| {
        reduces
            .iter()
            .filter(|t| t.executor == e)
            .map(|t| t.shuffle_read)
            .sum::<u64>()
    };
    assert!(read_on(&on_b) > 0 && read_on(&on_c) > 0, "{reduces:?}");

    // The side file and the broadcast value reached the executors on both hosts.
    assert_eq!(
        executors_of(&job(3)),
        [on_b.clone(), on_c.clone()].into(),
        "{:?}",
        job(3)
    );

    // Every partition that was cached on C was computed again from its lineage on B.
    let stderr = std::fs::read_to_string(cluster.log("d", "tessera")).unwrap();
    assert!(stderr.contains("executor lost"), "{stderr}");
    let cached_on_c: Vec<u64> = job(1)
        .iter()
        .filter(|t| t.executor == on_c)
        .map(|t| t.partition)
        .collect();
    assert!(!cached_on_c.is_empty());
    for partition in cached_on_c {
        assert!(
            job(SLOW_JOB).iter().any(|t| t.partition == partition
                && t.stage.starts_with("map:")
                && t.executor == on_b
                && t.origin == "computed"),
            "partition {partition}, cached on C, recomputed on B: {:?}",
            job(SLOW_JOB)
        );
    }
}

#[test]
fn a_fifth_host_without_the_right_certificate_is_refused_everything() {
    let cluster = Cluster::start("refusals", &["a", "b", "c", "d", "e"]);
    let under_test = ClusterUnderTest {
        master: cluster.master(),
        credentials: cluster.dir.0.join("creds"),
        owner: cluster.alice(),
        agents: vec!["b".into(), "c".into()],
    };
    let net = &cluster.net;
    cluster.on_host(
        "d",
        every_refusal(&under_test, |from| {
            let host = match from {
                Vantage::Owner => "d",
                Vantage::Stranger => "e",
            };
            net.enter(host).unwrap_or_else(|e| panic!("{e}"));
        }),
    );
}
