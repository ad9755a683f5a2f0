//! Test hosts made as Linux network namespaces: each gets one interface on a private bridge with
//! an address from the benchmarking range 198.18.0.0/15 (never routed anywhere), its own host
//! name (processes start in a UTS namespace of their own), and is removed with every process in
//! it when the [`TestNetwork`] is dropped. Needs root and iproute2's `ip`; without them,
//! [`TestNetwork::create`] fails saying so — a multi-host test must not pass by skipping.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Hosts on one private bridge.
pub struct TestNetwork {
    /// Unique to this test process, so concurrent runs do not collide.
    prefix: String,
    hosts: Vec<String>,
    created: Vec<String>,
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TestNetwork {
    /// Makes one namespace per name, all on one bridge, with addresses 198.18.0.1, .2, ... in
    /// the order given.
    pub fn create(names: &[&str]) -> Result<TestNetwork, String> {
        // SAFETY: plain syscall.
        if unsafe { libc_geteuid() } != 0 {
            return Err(
                "multi-host tests make network namespaces, which needs root; run them as root"
                    .into(),
            );
        }
        static NETWORKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NETWORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut net = TestNetwork {
            prefix: format!("ts{}n{n}", std::process::id()),
            hosts: names.iter().map(|n| n.to_string()).collect(),
            created: Vec::new(),
        };
        let hub = net.namespace("hub");
        ip(&["netns", "add", &hub])?;
        net.created.push(hub.clone());
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, name) in names.iter().enumerate() {
            let ns = net.namespace(name);
            ip(&["netns", "add", &ns])?;
            net.created.push(ns.clone());
            let port = format!("p{i}");
            ip(&[
                "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &hub,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            let address = format!("{}/24", net.address(name));
            ip(&["-n", &ns, "addr", "add", &address, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn namespace(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The address of host `name`.
    pub fn address(&self, name: &str) -> Ipv4Addr {
        let i = self
            .hosts
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no test host {name}"));
        Ipv4Addr::new(198, 18, 0, i as u8 + 1)
    }

    /// A command that runs `program` on host `name`, whose host name is `name`.
    pub fn command(&self, name: &str, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace(name)])
            .args(["unshare", "--uts", "--", "sh", "-c"])
            .arg(r#"hostname "$0" && exec "$@""#)
            .arg(name)
            .arg(program)
            .stdin(Stdio::null());
        command
    }

    /// Moves the calling thread onto host `name`: sockets it opens from now on are that host's.
    /// Other threads stay where they are, so a test runs one host's client calls on a thread of
    /// their own (with a current-thread runtime, which opens every socket on that thread).
    pub fn enter(&self, name: &str) -> Result<(), String> {
        use std::os::fd::AsRawFd;
        let path = format!("/run/netns/{}", self.namespace(name));
        let file = std::fs::File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
        // SAFETY: plain syscall on a descriptor that lives through the call.
        if unsafe { libc_setns(file.as_raw_fd(), CLONE_NEWNET) } != 0 {
            return Err(format!(
                "cannot enter {path}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// SIGKILLs every process on host `name`; returns how many there were.
    pub fn kill_all(&self, name: &str) -> usize {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.namespace(name)])
            .output();
        let pids: Vec<i32> = out
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        for pid in &pids {
            // SAFETY: plain syscall.
            unsafe { libc_kill(*pid, 9) };
        }
        pids.len()
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        for name in self.hosts.clone() {
            self.kill_all(&name);
        }
        for ns in self.created.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// setns(2)'s flag for a network namespace.
const CLONE_NEWNET: i32 = 0x4000_0000;

unsafe extern "C" {
    #[link_name = "setns"]
    fn libc_setns(fd: i32, nstype: i32) -> i32;
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
