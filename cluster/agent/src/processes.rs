//! Which process a pid is: its process group and start time, read from `/proc/PID/stat`, and
//! this boot's id. A pid alone does not name a process across an agent's restart (the kernel
//! hands pids out again); a pid with its start time on the same boot does. Recovery
//! and the search for executors the checkpoint does not name use it, and
//! so does the watch over an adopted executor, which is not the agent's child.

/// The start time of `pid` in clock ticks after boot (`/proc/PID/stat`, field 22), or `None`
/// if there is no such process or it is a zombie (it ended; its parent has not reaped it).
pub(crate) fn start_ticks(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_ticks(&text)
}

/// The start time in a `/proc/PID/stat` line, `None` for a zombie or a line that is not one.
pub(crate) fn parse_start_ticks(stat: &str) -> Option<u64> {
    parse_group_and_start(stat).map(|(_, ticks)| ticks)
}

/// The process group and start time in a `/proc/PID/stat` line, `None` for a zombie or a line
/// that is not one.
pub(crate) fn parse_group_and_start(stat: &str) -> Option<(i32, u64)> {
    let (_, fields) = crate::isolation::procfs::stat_fields(stat)?;
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | None) {
        return None;
    }
    Some((fields.get(2)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Whether `pid` still runs and is the process that started at `ticks`.
pub(crate) fn is_running(pid: i32, ticks: u64) -> bool {
    start_ticks(pid) == Some(ticks)
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), or "" where the kernel has none.
pub(crate) fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_group_and_start_time_of_a_live_process_only() {
        let stat = "4242 (tessera-exec (1)) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 \
                    4 0 987654 100000 200 18446744073709551615";
        assert_eq!(parse_start_ticks(stat), Some(987654));
        assert_eq!(parse_group_and_start(stat), Some((4242, 987654)));
        let zombie = stat.replace(") S ", ") Z ");
        assert_eq!(parse_start_ticks(&zombie), None);
        assert_eq!(parse_start_ticks("garbage"), None);

        let me = std::process::id() as i32;
        let ticks = start_ticks(me).expect("this process has a start time");
        assert!(is_running(me, ticks));
        assert!(!is_running(me, ticks + 1), "a pid given to another process");
    }
}
