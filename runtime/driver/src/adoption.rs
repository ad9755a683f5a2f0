//! Who adopts what a lost executor kept in host memory. An executor whose agent gives it a
//! directory of host memory keeps its cached partitions of plain-byte records there, and they
//! outlive it; when it is lost, another executor of the session *on the same host* (the only
//! ones that see those files: the same host name and address) takes them over as its own
//! blocks, and the partitions are read there, not computed again from lineage. Of several, the
//! one with the most memory to spare adopts them. With none (a host with one executor of the
//! session), they are left as *orphans* for the next executor of the session to register on
//! that host, its replacement, to adopt before it takes tasks ([`Orphans`]); meanwhile, and if
//! none comes, they are computed again as any lost partition is.
//!
//! The adopter also takes the *parts* of partitions the lost executor was computing from text
//! splits when it died (noted after each chunk of lines it took in whole): the tasks lost with
//! it would rather run there ([`crate::task_plan::preferences`]), and carry on from where it
//! got instead of reading their splits anew.

use parking_lot::Mutex;
use std::time::{Duration, Instant};
use tessera_plan::RddId;

/// How long the driver waits for an adoption: the tasks lost with the executor wait for it, and
/// an adopter that does not answer must not hold them (they compute the partitions again).
pub const ADOPTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Where an executor runs, as far as seeing another's files goes: its host name and the
/// address it listens on, without the port. Both, because machines simulated with network
/// namespaces share a host name (and a `/dev/shm`) but not an address: a process killed with
/// its "machine" there must lose its memory as it would on a machine of its own.
pub fn host_of(host_name: &str, address: &str) -> String {
    let ip = address.rsplit_once(':').map_or(address, |(ip, _)| ip);
    format!("{host_name}@{ip}")
}

/// A live executor, as the choice sees it.
#[derive(Clone, Debug)]
pub struct Survivor<'a> {
    pub id: &'a str,
    /// [`host_of`] it.
    pub host: String,
    /// Whether it keeps partitions in host memory (and so can adopt them).
    pub keeps_host_memory: bool,
    /// Bytes of memory it may cache in, and those its cached partitions hold.
    pub memory_bytes: u64,
    pub cached_bytes: u64,
}

/// The executor of `live` that adopts what a lost executor on `lost_host` ([`host_of`] it) kept
/// in host memory, if any can.
pub fn adopter<'a>(lost_host: &str, live: &[Survivor<'a>]) -> Option<&'a str> {
    live.iter()
        .filter(|s| s.host == lost_host && s.keeps_host_memory)
        .max_by(|a, b| {
            let spare = |s: &Survivor| s.memory_bytes.saturating_sub(s.cached_bytes);
            spare(a).cmp(&spare(b)).then(b.id.cmp(a.id))
        })
        .map(|s| s.id)
}

/// How long orphans wait for an executor to adopt them: under the minute after which the agent
/// removes what an ended executor left in host memory.
pub const ORPHANS_KEPT: Duration = Duration::from_secs(50);

/// What a lost executor left in host memory with no executor of the session on its host to
/// adopt it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orphan {
    /// The lost executor.
    pub lost: String,
    /// Its host, as [`host_of`] gives it.
    pub host: String,
    /// Its directory of host memory.
    pub from: String,
    /// The partitions it held.
    pub blocks: Vec<(RddId, u32)>,
    pub since: Instant,
}

/// The orphans waiting for an executor on their host.
#[derive(Default)]
pub struct Orphans(Mutex<Vec<Orphan>>);

impl Orphans {
    pub fn leave(&self, orphan: Orphan) {
        self.0.lock().push(orphan);
    }

    /// Takes the orphans an executor registering on `host` at `now` adopts; forgets those
    /// older than [`ORPHANS_KEPT`], whose files the agent removes.
    pub fn take_for(&self, host: &str, now: Instant) -> Vec<Orphan> {
        let mut orphans = self.0.lock();
        orphans.retain(|o| now.duration_since(o.since) < ORPHANS_KEPT);
        let (here, elsewhere) = orphans.drain(..).partition(|o| o.host == host);
        *orphans = elsewhere;
        here
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_go_to_the_first_executor_on_their_host_while_their_files_are_there() {
        let orphans = Orphans::default();
        let start = Instant::now();
        for (lost, host, since) in [
            ("a", "h1", start),
            ("b", "h2", start),
            ("c", "h1", start + Duration::from_secs(30)),
        ] {
            orphans.leave(Orphan {
                lost: lost.into(),
                host: host.into(),
                from: format!("/dev/shm/{lost}"),
                blocks: vec![(1, 0)],
                since,
            });
        }
        let lost = |taken: Vec<Orphan>| taken.into_iter().map(|o| o.lost).collect::<Vec<_>>();
        let later = start + Duration::from_secs(40);
        assert_eq!(lost(orphans.take_for("h1", later)), ["a", "c"]);
        assert!(orphans.take_for("h1", later).is_empty(), "taken once");
        // `b`'s files are gone by the time an executor comes to h2.
        assert!(orphans.take_for("h2", start + ORPHANS_KEPT).is_empty());
    }

    fn survivor<'a>(id: &'a str, host: &'a str, cached_bytes: u64) -> Survivor<'a> {
        Survivor {
            id,
            host: host.to_string(),
            keeps_host_memory: true,
            memory_bytes: 1000,
            cached_bytes,
        }
    }

    #[test]
    fn an_executor_on_the_lost_one_s_host_adopts_the_one_with_most_memory_to_spare() {
        let live = [
            survivor("a", "h1", 100),
            survivor("b", "h2", 0),
            survivor("c", "h1", 50),
            survivor("d", "h1", 50),
        ];
        // `b` has the most to spare, but another host does not see the files.
        assert_eq!(adopter("h1", &live), Some("c"), "ties go to the first id");
        assert_eq!(adopter("h2", &live), Some("b"));
        assert_eq!(adopter("h3", &live), None);
    }

    #[test]
    fn a_host_is_its_name_and_address_so_that_simulated_machines_stay_apart() {
        let here = host_of("vm", "127.0.0.1:4000");
        assert_eq!(here, host_of("vm", "127.0.0.1:5000"));
        assert_ne!(here, host_of("vm", "198.18.0.2:4000"));
        assert_ne!(here, host_of("other", "127.0.0.1:4000"));
        assert_eq!(host_of("vm", "[::1]:4000"), "vm@[::1]");
    }

    #[test]
    fn an_executor_without_host_memory_cannot_adopt() {
        let live = [Survivor {
            keeps_host_memory: false,
            ..survivor("a", "h1", 0)
        }];
        assert_eq!(adopter("h1", &live), None);
    }
}
