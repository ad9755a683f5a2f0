//! What an executor's processes use, read from `/proc` (posix mode): its process tree is the
//! process group it was started in plus every descendant of its first process (a process
//! that left the group is still found through its parents); memory is the sum of their
//! resident sets, CPU time the sum of their user and system time, including that of children
//! they have waited for.

use std::collections::{BTreeMap, BTreeSet};

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

/// What the executor whose first process is `pid` uses now.
pub fn tree_usage(pid: i32) -> Usage {
    if pid <= 0 {
        return Usage::default();
    }
    // SAFETY: sysconf only reads configuration.
    let (page, ticks) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    usage_of(
        &all_processes(),
        pid,
        page.max(1) as u64,
        ticks.max(1) as u64,
    )
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

    #[test]
    fn the_tree_is_the_group_and_every_descendant() {
        let procs = [
            p(1, 0, 1, 10),
            p(100, 1, 100, 1),   // the executor
            p(101, 100, 100, 2), // its child
            p(102, 101, 555, 4), // a grandchild in a group of its own
            p(103, 1, 100, 8),   // orphaned, still in the group
            p(200, 1, 200, 16),  // someone else
        ];
        assert_eq!(tree(&procs, 100), BTreeSet::from([100, 101, 102, 103]));
        let usage = usage_of(&procs, 100, 4096, 100);
        assert_eq!(usage.memory_bytes, 15 * 4096);
        assert_eq!(usage.cpu_seconds, 4.0);
        assert_eq!(usage_of(&procs, 999, 4096, 100), Usage::default());
    }

    #[test]
    fn this_process_is_found_in_proc() {
        // SAFETY: getpgrp has no preconditions.
        let group = unsafe { libc::getpgrp() };
        let usage = tree_usage(group);
        assert!(usage.memory_bytes > 0, "{usage:?}");
    }
}
