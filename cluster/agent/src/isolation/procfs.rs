//! What an executor's processes use, read from `/proc` (posix mode): its process tree is the
//! process group it was started in plus every descendant of its first process (a process
//! that left the group is still found through its parents); memory is the sum of their
//! resident sets, CPU time the sum of their user and system time, including that of children
//! they have waited for.
//!
//! The agent reads the tree every quarter second for as long as the executor runs
//! ([`ProcessTree`]). Reading every process's `stat` each time costs the agent about a
//! hundredth of a core per executor on a quiet machine, and grows with the processes the host
//! runs; so most reads follow the tree's own links instead (`/proc/PID/task/TID/children`), and
//! only one read in [`FULL_READ_EVERY`] goes through every process, to find group members whose
//! parent ended (the kernel gives them another parent, so links from the executor miss them).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use super::Usage;

/// The fields of `/proc/PID/stat` that matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// The id of the process the `stat` line describes.
    pub pid: i32,
    /// The id of its parent process.
    pub ppid: i32,
    /// The id of its process group (an executor's is its first process's pid).
    pub pgrp: i32,
    /// utime + stime + cutime + cstime, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set, in pages.
    pub rss_pages: u64,
}

/// A `/proc/PID/stat` line cut at its command name, which may hold spaces and parentheses:
/// what stands before the name (the pid first), and the fields after it, from the state on —
/// state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
/// cstime priority nice threads itrealvalue starttime vsize rss ...
pub fn stat_fields(text: &str) -> Option<(&str, Vec<&str>)> {
    let (head, rest) = text.rsplit_once(')')?;
    Some((head, rest.split_whitespace().collect()))
}

/// Parses a `/proc/PID/stat` line.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let (head, fields) = stat_fields(text)?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let num = |i: usize| fields.get(i)?.parse::<i64>().ok();
    let ticks = (11..=14).map(num).sum::<Option<i64>>()?;
    Some(ProcStat {
        pid,
        ppid: num(1)? as i32,
        pgrp: num(2)? as i32,
        cpu_ticks: ticks.max(0) as u64,
        rss_pages: num(21)?.max(0) as u64,
    })
}

/// The processes of the executor whose first process (and process group) is `root`.
pub fn tree(procs: &[ProcStat], root: i32) -> BTreeSet<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut members: BTreeSet<i32> = procs
        .iter()
        .filter(|p| p.pgrp == root)
        .map(|p| p.pid)
        .collect();
    if procs.iter().any(|p| p.pid == root) {
        members.insert(root);
    }
    let mut todo: Vec<i32> = members.iter().copied().collect();
    while let Some(pid) = todo.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if members.insert(child) {
                todo.push(child);
            }
        }
    }
    members
}

/// What the processes of `root`'s tree use, given the page size and clock ticks per second.
pub fn usage_of(procs: &[ProcStat], root: i32, page_size: u64, ticks_per_second: u64) -> Usage {
    let members = tree(procs, root);
    let (pages, ticks) = procs
        .iter()
        .filter(|p| members.contains(&p.pid))
        .fold((0u64, 0u64), |(pages, ticks), p| {
            (pages + p.rss_pages, ticks + p.cpu_ticks)
        });
    Usage {
        memory_bytes: pages.saturating_mul(page_size),
        cpu_seconds: ticks as f64 / ticks_per_second.max(1) as f64,
    }
}

/// Every process's stat now.
fn all_processes() -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect()
}

/// The members of `root`'s tree in `procs` that its links do not reach: those (its first
/// process aside) whose parent is not a member. A read that follows links starts from them too.
pub fn strays(procs: &[ProcStat], root: i32) -> BTreeSet<i32> {
    let members = tree(procs, root);
    procs
        .iter()
        .filter(|p| p.pid != root && members.contains(&p.pid) && !members.contains(&p.ppid))
        .map(|p| p.pid)
        .collect()
}

/// The processes of `root`'s tree found by following links from `root` and from `strays`
/// (each still in `root`'s group: a pid may have been taken by another process since), given
/// each process's children and `stat` as `/proc` shows them (`None`: gone).
pub fn walk(
    root: i32,
    strays: &BTreeSet<i32>,
    children_of: impl Fn(i32) -> Vec<i32>,
    stat_of: impl Fn(i32) -> Option<ProcStat>,
) -> Vec<ProcStat> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    // Each with whether it must be in `root`'s group to count: a stray must, a descendant not.
    let mut todo: Vec<(i32, bool)> = strays.iter().map(|&s| (s, true)).collect();
    todo.push((root, false));
    while let Some((pid, in_group)) = todo.pop() {
        if !seen.insert(pid) {
            continue;
        }
        let Some(stat) = stat_of(pid).filter(|p| !in_group || p.pgrp == root) else {
            continue;
        };
        found.push(stat);
        todo.extend(children_of(pid).into_iter().map(|child| (child, false)));
    }
    found
}

/// How many reads of a [`ProcessTree`] go by between two that read every process (4 s at the
/// agent's quarter-second watch): a member whose parent ended is counted at most that late.
pub const FULL_READ_EVERY: u32 = 16;

/// One executor's process tree, read again and again: what it uses now, from links between its
/// processes, and, every [`FULL_READ_EVERY`] reads (the last among them), from every
/// process's `stat`, which also finds its strays ([`strays`]).
#[derive(Debug, Default)]
pub struct ProcessTree {
    reads: Mutex<Reads>,
}

/// What a [`ProcessTree`]'s reads so far leave for the next.
#[derive(Debug, Default)]
struct Reads {
    count: u32,
    /// The strays the last full read found.
    strays: BTreeSet<i32>,
}

impl ProcessTree {
    /// What the executor whose first process (and group) is `root` uses now.
    pub fn usage(&self, root: i32) -> Usage {
        if root <= 0 {
            return Usage::default();
        }
        let mut reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        // The last of every FULL_READ_EVERY reads, not the first: at launch the executor is
        // one process without strays, and its first read then costs what its start does.
        let full = (reads.count % FULL_READ_EVERY == FULL_READ_EVERY - 1) || !children_links();
        reads.count = reads.count.wrapping_add(1);
        let procs = if full {
            let all = all_processes();
            reads.strays = strays(&all, root);
            all
        } else {
            walk(root, &reads.strays, children_in_proc, stat_in_proc)
        };
        // SAFETY: sysconf only reads configuration.
        let (page, ticks) = unsafe {
            (
                libc::sysconf(libc::_SC_PAGESIZE),
                libc::sysconf(libc::_SC_CLK_TCK),
            )
        };
        usage_of(&procs, root, page.max(1) as u64, ticks.max(1) as u64)
    }
}

/// Whether this kernel lists each thread's children in `/proc` (`CONFIG_PROC_CHILDREN`, on in
/// the kernels distributions ship); without, every read goes through every process.
fn children_links() -> bool {
    static LINKS: OnceLock<bool> = OnceLock::new();
    *LINKS.get_or_init(|| {
        let me = std::process::id();
        std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists()
    })
}

/// `pid`'s children now: those of each of its threads (a child belongs to the thread that
/// forked it); none for a process that is gone.
fn children_in_proc(pid: i32) -> Vec<i32> {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    threads
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// `pid`'s `stat` now, if it still runs.
fn stat_in_proc(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, pgrp: i32, rss_pages: u64) -> ProcStat {
        ProcStat {
            pid,
            ppid,
            pgrp,
            cpu_ticks: 100,
            rss_pages,
        }
    }

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    30 20 5 5 20 0 1 0 123 1000000 2560 18446744073709551615 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                pid: 4242,
                ppid: 1,
                pgrp: 4242,
                cpu_ticks: 60,
                rss_pages: 2560
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    /// An executor (100) and its processes, among others'.
    fn family() -> [ProcStat; 8] {
        [
            p(1, 0, 1, 64),
            p(100, 1, 100, 1),    // the executor
            p(101, 100, 100, 2),  // its child
            p(102, 101, 555, 4),  // a grandchild in a group of its own
            p(103, 1, 100, 8),    // orphaned, still in the group
            p(104, 103, 777, 16), // the orphan's child, in a group of its own
            p(105, 1, 555, 64),   // orphaned and out of the group: no longer the executor's
            p(200, 1, 200, 64),   // someone else
        ]
    }

    #[test]
    fn the_tree_is_the_group_and_every_descendant() {
        let procs = family();
        assert_eq!(tree(&procs, 100), BTreeSet::from([100, 101, 102, 103, 104]));
        let usage = usage_of(&procs, 100, 4096, 100);
        assert_eq!(usage.memory_bytes, 31 * 4096);
        assert_eq!(usage.cpu_seconds, 5.0);
        assert_eq!(usage_of(&procs, 999, 4096, 100), Usage::default());
    }

    #[test]
    fn strays_are_group_members_the_links_from_the_first_process_miss() {
        assert_eq!(strays(&family(), 100), BTreeSet::from([103]));
    }

    /// A fake `/proc`: `procs`, with each process's children from their parents.
    fn links(procs: &[ProcStat]) -> (impl Fn(i32) -> Vec<i32>, impl Fn(i32) -> Option<ProcStat>) {
        let table = procs.to_vec();
        let children = move |pid| {
            table
                .iter()
                .filter(|p| p.ppid == pid)
                .map(|p| p.pid)
                .collect()
        };
        let table = procs.to_vec();
        let stat = move |pid| table.iter().find(|p| p.pid == pid).copied();
        (children, stat)
    }

    #[test]
    fn following_links_from_the_first_process_and_the_strays_finds_the_whole_tree() {
        let procs = family();
        let (children, stat) = links(&procs);
        let walked = |strays: &BTreeSet<i32>| -> BTreeSet<i32> {
            walk(100, strays, &children, &stat)
                .iter()
                .map(|p| p.pid)
                .collect()
        };
        let found = strays(&procs, 100);
        assert_eq!(walked(&found), tree(&procs, 100));
        assert_eq!(
            usage_of(&walk(100, &found, &children, &stat), 100, 4096, 100),
            usage_of(&procs, 100, 4096, 100)
        );
        // Until the next full read, an orphan not yet known as a stray is missed.
        assert_eq!(walked(&BTreeSet::new()), BTreeSet::from([100, 101, 102]));
    }

    #[test]
    fn a_stray_whose_pid_went_to_another_process_is_not_counted() {
        let procs = [p(100, 1, 100, 1), p(103, 1, 300, 64)];
        let (children, stat) = links(&procs);
        let walked = walk(100, &BTreeSet::from([103, 104]), children, stat);
        assert_eq!(walked, vec![procs[0]]);
    }

    #[test]
    fn an_executors_first_process_is_found_in_proc_by_every_read() {
        use std::os::unix::process::CommandExt;
        // Started as an agent starts an executor: the leader of a process group of its own.
        let mut leader = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let root = leader.id() as i32;
        // The kernel sums a new process's resident set lazily (per-CPU counters): wait until
        // its `stat` shows it, as a watch a quarter second later would see it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stat_in_proc(root).is_none_or(|p| p.rss_pages == 0) {
            assert!(
                std::time::Instant::now() < deadline,
                "no resident set shown"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let tree = ProcessTree::default();
        // Reads that follow links, then the one that reads every process.
        let reads: Vec<Usage> = (0..FULL_READ_EVERY).map(|_| tree.usage(root)).collect();
        leader.kill().unwrap();
        leader.wait().unwrap();
        for (read, usage) in reads.iter().enumerate() {
            assert!(usage.memory_bytes > 0, "read {read}: {usage:?}");
        }
        assert!(children_links(), "this kernel lists children in /proc");
    }
}
