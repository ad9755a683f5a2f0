//! A ZooKeeper ensemble on loopback for the tests that need one: Debian's `zookeeper` package
//! (`.ci/run` installs it), each server a JVM of its own with its own ports and data directory,
//! started, killed and started again by the test, and stopped on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tessera_framework::spawn_daemon;

/// Where Debian's package puts the server's classes.
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// The server's classpath: its configuration directory (for `log4j.properties`), its classes,
/// and the log4j binding that makes it log to its console, so that a server that does not come
/// up says why in the log a failing test prints.
const CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:\
                         /usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar";
/// Where the ensembles' ports are picked: below Linux's ephemeral range (32768 and up). A port
/// found free with `bind(0)` and released is in that range, and another process's `bind(0)` or
/// outgoing connection may take it in the seconds before the JVM binds it, leaving a server
/// that never joins its quorum.
const PORTS: Range<u32> = 20_000..32_000;
/// How long a server may take to start and join a quorum.
const START_WAIT: Duration = Duration::from_secs(60);
/// The servers' tick: sessions may time out between 2 and 20 ticks, so a master's 2 s session
/// timeout is granted as asked.
const TICK_MS: u64 = 200;

/// A running ensemble.
pub struct ZkEnsemble {
    servers: Vec<Option<Child>>,
    client_ports: Vec<u16>,
    dir: tempfile::TempDir,
}

/// A port free now on 127.0.0.1 and never handed out before by this process; processes start
/// at different places in [`PORTS`].
fn free_port() -> u16 {
    static PICKED: AtomicU32 = AtomicU32::new(0);
    let span = PORTS.end - PORTS.start;
    let first = std::process::id().wrapping_mul(7919) % span;
    loop {
        let n = PICKED.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "no free port left in {PORTS:?} on 127.0.0.1");
        let port = (PORTS.start + (first + n) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A four-letter word's answer from the server on `port` (empty if it does not answer).
fn four_letter_word(port: u16, word: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.write_all(word.as_bytes());
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// The last lines of a server's log, where what stopped it is.
fn log_tail(log: &Path) -> String {
    const LINES: usize = 60;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

impl ZkEnsemble {
    /// Starts `n` servers and returns once each serves as leader or follower.
    pub fn start(n: usize) -> ZkEnsemble {
        assert!(
            Path::new(ZOOKEEPER_JAR).is_file(),
            "{ZOOKEEPER_JAR} is missing: install Debian's zookeeper package (`apt-get install \
             zookeeper`; .ci/run does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("tessera-zk-")
            .tempdir()
            .expect("a directory for ZooKeeper");
        let client_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let quorum: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        for (i, client_port) in client_ports.iter().enumerate() {
            let data = dir.path().join(format!("zk-{}", i + 1));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
            let mut config = format!(
                "tickTime={TICK_MS}\ninitLimit=50\nsyncLimit=25\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
                 4lw.commands.whitelist=srvr,ruok\n",
                data.display(),
                client_port
            );
            for (j, (peer, election)) in quorum.iter().enumerate() {
                config.push_str(&format!("server.{}=127.0.0.1:{peer}:{election}\n", j + 1));
            }
            std::fs::write(data.join("zoo.cfg"), config).unwrap();
        }
        let mut ensemble = ZkEnsemble {
            servers: (0..n).map(|_| None).collect(),
            client_ports,
            dir,
        };
        for i in 0..n {
            ensemble.spawn(i);
        }
        for i in 0..n {
            ensemble.wait_serving(i);
        }
        ensemble
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("zk-{}", i + 1))
    }

    fn spawn(&mut self, i: usize) {
        let data = self.data_dir(i);
        let args: Vec<String> = [
            "-Xmx96m",
            "-XX:+UseSerialGC",
            "-cp",
            CLASSPATH,
            &format!("-Dzookeeper.log.dir={}", data.display()),
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            &data.join("zoo.cfg").display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let child = spawn_daemon(Path::new("java"), &args, &self.log(i))
            .unwrap_or_else(|e| panic!("cannot start ZooKeeper server {}: {e}", i + 1));
        self.servers[i] = Some(child);
    }

    /// Server `i`'s log.
    pub fn log(&self, i: usize) -> PathBuf {
        self.data_dir(i).join("server.log")
    }

    /// Waits until server `i` serves clients as part of a quorum.
    pub fn wait_serving(&self, i: usize) {
        let deadline = Instant::now() + START_WAIT;
        loop {
            let answer = four_letter_word(self.client_ports[i], "srvr");
            if answer.contains("Mode: leader") || answer.contains("Mode: follower") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper server {} did not join a quorum within {START_WAIT:?}; the end of its \
                 log {}:\n{}",
                i + 1,
                self.log(i).display(),
                log_tail(&self.log(i))
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `zk://` URL of the whole ensemble with `path`.
    pub fn url(&self, path: &str) -> String {
        let servers: Vec<String> = (self.client_ports.iter())
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("zk://{}{path}", servers.join(","))
    }

    /// The index of the server that leads the ensemble now.
    pub fn leader(&self) -> Option<usize> {
        (0..self.servers.len())
            .find(|&i| four_letter_word(self.client_ports[i], "srvr").contains("Mode: leader"))
    }

    /// Kills server `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again (after [`ZkEnsemble::kill`]) and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_serving(i);
    }

    /// How many servers the ensemble has.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
