//! The agent's checkpoint (Mesos' `meta/` directory, in one file): what the agent must know
//! to find its executors again after it died — its agent id, for each executor its framework
//! and executor ids, process id and the process's start time (so that a pid the kernel gave to
//! another process since is not mistaken for the executor), what it was given, its sandbox and
//! its cgroup — the frameworks as the launches described them, and the status updates their
//! frameworks have not acknowledged yet.
//!
//! It is written in turn to two files, `WORK_DIR/meta/agent.checkpoint` and
//! `agent.checkpoint.1` ([`SLOTS`]), each overwritten in place and flushed to disk, and each
//! numbered one past the last ([`Checkpoint::sequence`]); a reader takes the newest whole one.
//! A write cut short by the agent's death leaves the other file, one write older, as a rename
//! over the old file would; and unlike a new file renamed over the old, it allocates and frees
//! no inode, which made a third of each write's cost, at every launch, while the session's
//! tasks run on the same cores. The agent writes it when an executor starts or ends, when a
//! status update is queued or acknowledged, when it registers, and every [`SAVE_INTERVAL`]
//! besides: `saved_at_ms` then tells a restarted agent how long it was away.
//!
//! Format: the magic `TSACKPT` and a version byte, the length of the payload (u32, little
//! endian), the first 8 bytes of the payload's SHA-256, then the payload — a protobuf message
//! ([`Checkpoint`]). [`decode`] returns a [`DecodeProblem`] for anything else, never panics,
//! and allocates no more than the input's size.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use prost::Message;
use sha2::Digest;
use tessera_cluster_proto::master::{FrameworkInfo, StatusUpdate};

/// The first bytes of a checkpoint file: `TSACKPT` and the format's version.
pub const MAGIC: &[u8; 8] = b"TSACKPT\x01";
/// Magic, length, checksum.
const HEADER_BYTES: usize = 8 + 4 + 8;
/// A checkpoint larger than this is not one the agent wrote (thousands of executors and
/// updates take a few MiB).
pub const MAX_CHECKPOINT_BYTES: usize = 256 << 20;
/// How often the agent writes its checkpoint when nothing else made it: the precision of the
/// time away a restarted agent measures.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// Everything the agent checkpoints.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Checkpoint {
    /// The id the master gave this agent; empty before it registered.
    #[prost(string, tag = "1")]
    pub agent_id: String,
    /// When it was written, in milliseconds since the Unix epoch.
    #[prost(uint64, tag = "2")]
    pub saved_at_ms: u64,
    /// The kernel's boot id when it was written: after a reboot no executor can still run.
    #[prost(string, tag = "3")]
    pub boot_id: String,
    /// The executors running when it was written.
    #[prost(message, repeated, tag = "4")]
    pub executors: Vec<CheckpointedExecutor>,
    /// The frameworks of the executors, as their launches described them.
    #[prost(message, repeated, tag = "5")]
    pub frameworks: Vec<FrameworkInfo>,
    /// Status updates not acknowledged yet, oldest first per executor.
    #[prost(message, repeated, tag = "6")]
    pub status_updates: Vec<StatusUpdate>,
    /// How many checkpoints the agent's work directory had before this one: of the two
    /// [`SLOTS`], the one with the larger number is the newer (a checkpoint from before there
    /// were two has 0).
    #[prost(uint64, tag = "7")]
    pub sequence: u64,
}

/// One executor the agent runs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckpointedExecutor {
    /// The id of the framework the executor belongs to.
    #[prost(string, tag = "1")]
    pub framework_id: String,
    /// The executor's id within its framework; with `framework_id`, it names the sandbox.
    #[prost(string, tag = "2")]
    pub executor_id: String,
    /// Its first process, the leader of its process group.
    #[prost(int32, tag = "3")]
    pub pid: i32,
    /// That process's start time, in clock ticks after boot (`/proc/PID/stat`, field 22).
    #[prost(uint64, tag = "4")]
    pub start_ticks: u64,
    /// The CPUs it was launched with.
    #[prost(double, tag = "5")]
    pub cpus: f64,
    /// The memory it was launched with, in MiB.
    #[prost(uint64, tag = "6")]
    pub mem_mb: u64,
    /// The agent's ports it was given, as ranges (`31000-31001,31005`).
    #[prost(string, tag = "7")]
    pub ports: String,
    /// Its sandbox directory (absolute).
    #[prost(string, tag = "8")]
    pub sandbox: String,
    /// Its cgroup directory (absolute) in cgroups mode; empty in posix mode.
    #[prost(string, tag = "9")]
    pub cgroup: String,
    /// How many messages were put in its sandbox so far (their numbering goes on).
    #[prost(uint64, tag = "10")]
    pub messages: u64,
}

/// What is wrong with bytes that should be a checkpoint.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeProblem {
    /// The bytes end before the header (magic, length, checksum) does.
    #[error("it is {len} bytes long, shorter than a checkpoint's {header}-byte header", header = HEADER_BYTES)]
    TooShort {
        /// How many bytes there are.
        len: usize,
    },
    /// The bytes do not start with `TSACKPT`.
    #[error("it does not start as a Tessera agent checkpoint does")]
    NotACheckpoint,
    /// The magic's version byte is not this agent's format version; holds that byte.
    #[error(
        "it is a checkpoint of format version {0}, which this agent does not read (it reads \
         version {version})",
        version = MAGIC[7]
    )]
    Version(u8),
    /// The payload is not as long as the header says (a truncated or appended-to file), or
    /// the file is larger than [`MAX_CHECKPOINT_BYTES`].
    #[error("its header announces {declared} bytes of contents but {actual} follow")]
    Length {
        /// The payload length the header gives ([`MAX_CHECKPOINT_BYTES`] for a file too large).
        declared: usize,
        /// How many bytes follow the header (the whole file's size for a file too large).
        actual: usize,
    },
    /// The payload's SHA-256 does not begin with the 8 bytes the header holds.
    #[error("its contents do not match their checksum")]
    Checksum,
    /// The payload is not a [`Checkpoint`] protobuf message; holds the decoder's error.
    #[error("its contents cannot be read: {0}")]
    Malformed(String),
    /// An executor's ids cannot name a sandbox, or its pid, CPUs, sandbox or cgroup are not
    /// ones the agent could have written; holds which executor and why.
    #[error("it names an executor that cannot be one: {0}")]
    BadExecutor(String),
}

/// The checkpoint cannot be read or written. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint file exists but could not be read (or its size not learnt).
    #[error(
        "cannot read the agent's checkpoint {path}: {source}; check the permissions of the \
         work directory, or start the agent with another --work-dir"
    )]
    Read {
        /// The checkpoint's file: one of its two slots under `WORK_DIR/meta`.
        path: PathBuf,
        /// The I/O error from reading it.
        source: std::io::Error,
    },
    /// The checkpoint file exists but is not a checkpoint this agent can use.
    #[error(
        "the agent's checkpoint {path} is damaged: {problem}; move {work_dir}/meta away to \
         start afresh (executors it names that still run are then not recovered: find them by \
         their sandboxes under {work_dir}/frameworks and end them)"
    )]
    Damaged {
        /// The checkpoint's file: one of its two slots under `WORK_DIR/meta`.
        path: PathBuf,
        /// The agent's work directory, under which the executors' sandboxes are.
        work_dir: PathBuf,
        /// What is wrong with the file's bytes.
        problem: DecodeProblem,
    },
    /// Writing the checkpoint failed, so executors running now could not be recovered.
    #[error(
        "cannot write the agent's checkpoint {path}: {source}; executors running now would not \
         be recovered if the agent died — free space or fix permissions under the work directory"
    )]
    Write {
        /// The checkpoint's file: one of its two slots under `WORK_DIR/meta`.
        path: PathBuf,
        /// The I/O error from creating `meta/`, or opening, writing or flushing the file.
        source: std::io::Error,
    },
}

/// Now, in milliseconds since the Unix epoch: what `saved_at_ms` says.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The names of the two files under `WORK_DIR/meta` the checkpoint is written to in turn. The
/// first is the one file agents wrote before, so that an agent upgraded from one of them
/// recovers its executors.
pub const SLOTS: [&str; 2] = ["agent.checkpoint", "agent.checkpoint.1"];

/// Where slot `slot` (0 or 1) of the checkpoint of an agent with this work directory is.
pub fn slot_path(work_dir: &Path, slot: usize) -> PathBuf {
    work_dir.join("meta").join(SLOTS[slot])
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    let digest = sha2::Sha256::digest(payload);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// The bytes of a checkpoint file.
pub fn encode(checkpoint: &Checkpoint) -> Vec<u8> {
    let payload = checkpoint.encode_to_vec();
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(&payload));
    out.extend_from_slice(&payload);
    out
}

/// An id that can name a directory (as the agent requires of launches).
fn usable_id(id: &str) -> bool {
    !(id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0'))
}

/// An absolute path without `..`: a cgroup or sandbox the agent could have made.
fn usable_path(path: &str) -> bool {
    let p = Path::new(path);
    p.is_absolute()
        && !path.contains('\0')
        && p.components()
            .all(|c| !matches!(c, std::path::Component::ParentDir))
}

/// Whether an executor is one the agent could have written (ids, pid, CPUs and paths): a
/// checkpoint's, or one recovery found running without it ([`crate::orphans`]).
pub(crate) fn check_executor(e: &CheckpointedExecutor) -> Result<(), DecodeProblem> {
    let what = format!(
        "executor {:?} of framework {:?}",
        e.executor_id, e.framework_id
    );
    let bad = |why: &str| Err(DecodeProblem::BadExecutor(format!("{what}: {why}")));
    if !usable_id(&e.framework_id) || !usable_id(&e.executor_id) {
        return bad("its ids cannot name a sandbox");
    }
    // Signals go to the process group -pid: 0 and 1 (and below) would reach far more.
    if e.pid <= 1 {
        return bad(&format!("pid {} is not an executor's", e.pid));
    }
    if !(e.cpus.is_finite() && e.cpus >= 0.0) {
        return bad(&format!("{} CPUs", e.cpus));
    }
    if !usable_path(&e.sandbox) {
        return bad(&format!("sandbox {:?} is not an absolute path", e.sandbox));
    }
    if !e.cgroup.is_empty() && !usable_path(&e.cgroup) {
        return bad(&format!("cgroup {:?} is not an absolute path", e.cgroup));
    }
    Ok(())
}

/// Reads checkpoint bytes; any damage is a [`DecodeProblem`].
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, DecodeProblem> {
    if bytes.len() < HEADER_BYTES {
        return Err(DecodeProblem::TooShort { len: bytes.len() });
    }
    if bytes[..7] != MAGIC[..7] {
        return Err(DecodeProblem::NotACheckpoint);
    }
    if bytes[7] != MAGIC[7] {
        return Err(DecodeProblem::Version(bytes[7]));
    }
    let declared = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    let payload = &bytes[HEADER_BYTES..];
    if declared != payload.len() {
        return Err(DecodeProblem::Length {
            declared,
            actual: payload.len(),
        });
    }
    if bytes[12..20] != checksum(payload) {
        return Err(DecodeProblem::Checksum);
    }
    let checkpoint =
        Checkpoint::decode(payload).map_err(|e| DecodeProblem::Malformed(e.to_string()))?;
    for e in &checkpoint.executors {
        check_executor(e)?;
    }
    Ok(checkpoint)
}

/// What one slot holds: nothing (no file), a checkpoint, or what is wrong with it.
type SlotContents = Result<Option<Checkpoint>, CheckpointError>;

/// Reads slot `slot` of the checkpoint under `work_dir`. An empty file holds none: the writer
/// creates both slots before its first write.
fn read_slot(work_dir: &Path, slot: usize) -> SlotContents {
    let path = slot_path(work_dir, slot);
    let damaged = |problem| CheckpointError::Damaged {
        path: path.clone(),
        work_dir: work_dir.to_path_buf(),
        problem,
    };
    let bytes = match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CheckpointError::Read { path, source }),
        Ok(m) if m.len() == 0 => return Ok(None),
        Ok(m) if m.len() > MAX_CHECKPOINT_BYTES as u64 => {
            return Err(damaged(DecodeProblem::Length {
                declared: MAX_CHECKPOINT_BYTES,
                actual: m.len() as usize,
            }));
        }
        Ok(_) => std::fs::read(&path).map_err(|source| CheckpointError::Read {
            path: path.clone(),
            source,
        })?,
    };
    decode(&bytes).map(Some).map_err(damaged)
}

/// Of the two slots' contents, the newest checkpoint and the slot it is in; `None` if neither
/// slot has a file. A slot that cannot be read is passed over when the other holds a
/// checkpoint: it is the write the agent's death cut short. When neither holds one, the first
/// slot's problem is the error.
fn newest(slots: [SlotContents; 2]) -> Result<Option<(usize, Checkpoint)>, CheckpointError> {
    let [first, second] = slots;
    match (first, second) {
        (Ok(None), Ok(None)) => Ok(None),
        (Ok(Some(a)), Ok(Some(b))) if b.sequence > a.sequence => Ok(Some((1, b))),
        (Ok(Some(a)), _) => Ok(Some((0, a))),
        (_, Ok(Some(b))) => Ok(Some((1, b))),
        (Err(e), _) | (Ok(None), Err(e)) => Err(e),
    }
}

/// The newest checkpoint under `work_dir` and the slot it is in ([`newest`]).
fn read_newest(work_dir: &Path) -> Result<Option<(usize, Checkpoint)>, CheckpointError> {
    newest([read_slot(work_dir, 0), read_slot(work_dir, 1)])
}

/// Reads the checkpoint of an agent with `work_dir`, the newer of its two slots; `None` if
/// there is none (a first start).
pub fn load(work_dir: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    read_newest(work_dir).map(|found| found.map(|(_, c)| c))
}

/// Writes checkpoints of one work directory, one at a time.
pub struct Writer {
    work_dir: PathBuf,
    slots: Mutex<Option<Slots>>,
    /// Whether the last write failed (the next failure is not logged again).
    failing: std::sync::atomic::AtomicBool,
}

/// The two files a [`Writer`] writes in turn, opened at its first write.
struct Slots {
    files: [std::fs::File; 2],
    /// The slot the next checkpoint goes to: not the one that holds the newest.
    next: usize,
    /// The newest checkpoint's [`Checkpoint::sequence`].
    sequence: u64,
}

impl Slots {
    /// Opens (or creates) both slots under `work_dir`, to write next over the one that does not
    /// hold the newest checkpoint.
    fn open(work_dir: &Path) -> Result<Slots, (PathBuf, std::io::Error)> {
        let (next, sequence) = match read_newest(work_dir).ok().flatten() {
            Some((slot, checkpoint)) => (1 - slot, checkpoint.sequence),
            None => (0, 0),
        };
        let meta = slot_path(work_dir, 0);
        if let Some(dir) = meta.parent() {
            std::fs::create_dir_all(dir).map_err(|e| (meta.clone(), e))?;
        }
        let open = |slot| {
            let path = slot_path(work_dir, slot);
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| (path, e))
        };
        Ok(Slots {
            files: [open(0)?, open(1)?],
            next,
            sequence,
        })
    }

    /// Overwrites the next slot with `checkpoint`, numbered one past the newest, and flushes
    /// it to disk; on success the other slot is the next.
    fn write(
        &mut self,
        work_dir: &Path,
        mut checkpoint: Checkpoint,
    ) -> Result<(), CheckpointError> {
        use std::os::unix::fs::FileExt;
        checkpoint.sequence = self.sequence + 1;
        let bytes = encode(&checkpoint);
        let file = &self.files[self.next];
        let written = file
            .write_all_at(&bytes, 0)
            .and_then(|()| file.set_len(bytes.len() as u64))
            .and_then(|()| file.sync_data());
        written.map_err(|source| CheckpointError::Write {
            path: slot_path(work_dir, self.next),
            source,
        })?;
        // A failed write leaves `next` where it was: the other slot still holds the newest.
        self.sequence = checkpoint.sequence;
        self.next = 1 - self.next;
        Ok(())
    }
}

impl Writer {
    /// A writer of the checkpoint under `work_dir` ([`slot_path`]); nothing is written until
    /// [`Writer::save`].
    pub fn new(work_dir: &Path) -> Writer {
        Writer {
            work_dir: work_dir.to_path_buf(),
            slots: Mutex::new(None),
            failing: Default::default(),
        }
    }

    /// Runs `make` and writes what it returns, atomically, as the newest checkpoint; writes
    /// are serialized, and `make` runs under the same lock, so a checkpoint made later is
    /// never overwritten by one made earlier. A failure is logged (once until writes work
    /// again) and returned.
    pub fn save(&self, make: impl FnOnce() -> Checkpoint) -> Result<(), CheckpointError> {
        use std::sync::atomic::Ordering;
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let result = self.write(&mut slots, make());
        match &result {
            Err(e) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::error!("{e}");
            }
            Err(_) => {}
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(work_dir = %self.work_dir.display(), "the agent's checkpoint is written again");
                }
            }
        }
        result
    }

    /// Writes `checkpoint` to the next slot, opening both first if they are not open.
    fn write(
        &self,
        slots: &mut Option<Slots>,
        checkpoint: Checkpoint,
    ) -> Result<(), CheckpointError> {
        if slots.is_none() {
            let opened = Slots::open(&self.work_dir)
                .map_err(|(path, source)| CheckpointError::Write { path, source })?;
            *slots = Some(opened);
        }
        let slots = slots.as_mut().expect("opened above");
        slots.write(&self.work_dir, checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            agent_id: "1a2b-S0".into(),
            saved_at_ms: 1_700_000_000_000,
            boot_id: "b0".into(),
            executors: vec![CheckpointedExecutor {
                framework_id: "F0".into(),
                executor_id: "e1".into(),
                pid: 4242,
                start_ticks: 123_456,
                cpus: 1.5,
                mem_mb: 512,
                ports: "31000-31001".into(),
                sandbox: "/var/lib/tessera/work/frameworks/F0/executors/e1".into(),
                cgroup: String::new(),
                messages: 3,
            }],
            frameworks: vec![FrameworkInfo {
                id: "F0".into(),
                principal: "alice".into(),
                ..Default::default()
            }],
            status_updates: vec![StatusUpdate {
                agent_id: "1a2b-S0".into(),
                framework_id: "F0".into(),
                executor_id: "e1".into(),
                state: 2,
                uuid: "u1".into(),
                ..Default::default()
            }],
            sequence: 0,
        }
    }

    #[test]
    fn a_checkpoint_reads_back_and_each_damage_is_named() {
        let bytes = encode(&sample());
        assert_eq!(decode(&bytes).unwrap(), sample());
        assert_eq!(
            decode(&bytes[..10]),
            Err(DecodeProblem::TooShort { len: 10 })
        );
        let mut other = bytes.clone();
        other[0] = b'X';
        assert_eq!(decode(&other), Err(DecodeProblem::NotACheckpoint));
        let mut newer = bytes.clone();
        newer[7] = 2;
        assert_eq!(decode(&newer), Err(DecodeProblem::Version(2)));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(DecodeProblem::Length { .. })
        ));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(decode(&flipped), Err(DecodeProblem::Checksum));
        // A checkpoint whose executor would make the agent signal every process.
        let mut dangerous = sample();
        dangerous.executors[0].pid = 1;
        let err = decode(&encode(&dangerous)).unwrap_err();
        assert!(
            err.to_string().contains("pid 1 is not an executor's"),
            "{err}"
        );
        let mut escaping = sample();
        escaping.executors[0].cgroup = "/sys/fs/cgroup/../../etc".into();
        assert!(matches!(
            decode(&encode(&escaping)),
            Err(DecodeProblem::BadExecutor(_))
        ));
        escaping.executors[0].cgroup.clear();
        escaping.executors[0].executor_id = "..".into();
        assert!(matches!(
            decode(&encode(&escaping)),
            Err(DecodeProblem::BadExecutor(_))
        ));
    }

    #[test]
    fn writes_alternate_between_two_files_and_load_reads_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none(), "a first start");
        let slot = |n| decode(&std::fs::read(slot_path(dir.path(), n)).unwrap()).unwrap();
        let writer = Writer::new(dir.path());
        writer.save(sample).unwrap();
        assert_eq!(
            std::fs::metadata(slot_path(dir.path(), 1)).unwrap().len(),
            0,
            "the second slot is made empty at the first write"
        );
        assert_eq!(load(dir.path()).unwrap(), Some(slot(0)));
        assert_eq!(slot(0).sequence, 1);

        let mut saved = Vec::new();
        for n in 0..3 {
            let mut checkpoint = sample();
            checkpoint.executors[0].messages = n;
            writer.save(|| checkpoint.clone()).unwrap();
            let read = load(dir.path()).unwrap().expect("a checkpoint");
            assert_eq!(read.executors[0].messages, n, "the newest is read");
            assert_eq!(read.sequence, n + 2);
            saved.push(read);
        }
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("meta"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, SLOTS, "only the two slots, no temporary file");
        // Numbers 2 and 4 went to slot 1, 3 to slot 0.
        assert_eq!((slot(0), slot(1)), (saved[1].clone(), saved[2].clone()));

        // A writer started later (a restarted agent) goes on after the newest, over the other.
        Writer::new(dir.path()).save(sample).unwrap();
        assert_eq!(slot(1), saved[2], "the newest before it is kept");
        assert_eq!(slot(0).sequence, 5);
        assert_eq!(load(dir.path()).unwrap(), Some(slot(0)));
    }

    #[test]
    fn a_write_cut_short_leaves_the_checkpoint_one_write_older() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::new(dir.path());
        let mut first = sample();
        first.agent_id = "first".into();
        writer.save(|| first.clone()).unwrap();
        writer.save(sample).unwrap();
        // The agent died while overwriting slot 1 with a longer checkpoint: its start is new,
        // its end the old one's.
        let newest = slot_path(dir.path(), 1);
        let old = std::fs::read(&newest).unwrap();
        let mut longer = sample();
        longer.executors.push(longer.executors[0].clone());
        longer.sequence = 3;
        let mut torn = encode(&longer);
        torn.truncate(old.len());
        std::fs::write(&newest, &torn).unwrap();
        let read = load(dir.path()).unwrap().expect("the older slot");
        assert_eq!(read.agent_id, "first");
        assert_eq!(read.sequence, 1);
    }

    #[test]
    fn the_newest_whole_slot_is_taken_and_an_error_only_when_neither_is_whole() {
        let at = |sequence| {
            let mut c = sample();
            c.sequence = sequence;
            c
        };
        let damaged = || {
            Err(CheckpointError::Damaged {
                path: "/w/meta/agent.checkpoint".into(),
                work_dir: "/w".into(),
                problem: DecodeProblem::Checksum,
            })
        };
        let slot = |found: Result<Option<(usize, Checkpoint)>, CheckpointError>| {
            found.map(|found| found.map(|(slot, c)| (slot, c.sequence)))
        };
        assert!(matches!(slot(newest([Ok(None), Ok(None)])), Ok(None)));
        assert!(matches!(
            slot(newest([Ok(Some(at(4))), Ok(Some(at(5)))])),
            Ok(Some((1, 5)))
        ));
        assert!(matches!(
            slot(newest([Ok(Some(at(6))), Ok(Some(at(5)))])),
            Ok(Some((0, 6)))
        ));
        // A checkpoint an agent wrote before there were two slots is in the first.
        assert!(matches!(
            slot(newest([Ok(Some(at(0))), Ok(None)])),
            Ok(Some((0, 0)))
        ));
        assert!(matches!(
            slot(newest([damaged(), Ok(Some(at(5)))])),
            Ok(Some((1, 5)))
        ));
        assert!(matches!(
            slot(newest([Ok(Some(at(4))), damaged()])),
            Ok(Some((0, 4)))
        ));
        assert!(matches!(
            slot(newest([Ok(None), damaged()])),
            Err(CheckpointError::Damaged { .. })
        ));
        assert!(matches!(
            slot(newest([damaged(), Ok(None)])),
            Err(CheckpointError::Damaged { .. })
        ));
    }

    #[test]
    fn a_damaged_checkpoint_stops_the_agent_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("meta")).unwrap();
        std::fs::write(slot_path(dir.path(), 0), b"TSACKPT\x01 torn").unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is damaged"), "{err}");
        let meta = dir.path().join("meta");
        assert!(
            err.contains(&format!("move {} away", meta.display())),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_checkpoint_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn damaged_checkpoints_never_panic_and_are_refused_or_read_whole(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
            with_valid_header in any::<bool>(),
        ) {
            let mut bytes = encode(&sample());
            for (at, value) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
            let bytes = &bytes[..cut.index(bytes.len() + 1)];
            if let Ok(read) = decode(bytes) {
                // Only an edit that left every byte as it was reads back.
                prop_assert_eq!(read, sample());
            }
            // The payload damaged under a header that matches it: protobuf's own checks.
            if with_valid_header && bytes.len() > HEADER_BYTES {
                let payload = &bytes[HEADER_BYTES..];
                let mut framed = MAGIC.to_vec();
                framed.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                framed.extend_from_slice(&checksum(payload));
                framed.extend_from_slice(payload);
                let _ = decode(&framed);
            }
        }
    }
}
