//! Jobs as people see them: what ran, how far it got, how it ended; and progress events for
//! the REPL's progress bar and the notebook's live display.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed(String),
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct JobInfo {
    pub id: u64,
    pub description: String,
    /// Stages run so far: the map stages of the shuffles it computed, and its result stage.
    pub stages: u32,
    pub tasks_total: u32,
    pub tasks_done: u32,
    /// Finished tasks whose partition came from an executor's cache.
    pub tasks_from_cache: u32,
    /// Bytes of shuffle output its map tasks wrote.
    pub shuffle_bytes: u64,
    pub state: JobState,
    pub started: Instant,
    pub duration: Option<Duration>,
}

/// Sent whenever a job starts, a stage starts, a task finishes, or a job ends.
#[derive(Clone, Debug)]
pub struct Progress {
    pub job_id: u64,
    pub description: String,
    pub stages: u32,
    pub tasks_done: u32,
    pub tasks_total: u32,
    pub shuffle_bytes: u64,
    pub finished: bool,
}

impl JobInfo {
    fn progress(&self) -> Progress {
        Progress {
            job_id: self.id,
            description: self.description.clone(),
            stages: self.stages,
            tasks_done: self.tasks_done,
            tasks_total: self.tasks_total,
            shuffle_bytes: self.shuffle_bytes,
            finished: self.state != JobState::Running,
        }
    }
}

pub struct JobTracker {
    jobs: Mutex<Vec<JobInfo>>,
    cancels: Mutex<HashMap<u64, watch::Sender<bool>>>,
    progress: broadcast::Sender<Progress>,
}

impl Default for JobTracker {
    fn default() -> Self {
        JobTracker {
            jobs: Mutex::new(Vec::new()),
            cancels: Mutex::new(HashMap::new()),
            progress: broadcast::channel(256).0,
        }
    }
}

impl JobTracker {
    /// Registers a new job whose result stage has `tasks_total` tasks; the receiver turns true
    /// when it is cancelled.
    pub fn start(&self, description: String, tasks_total: u32) -> (u64, watch::Receiver<bool>) {
        let mut jobs = self.jobs.lock();
        let id = jobs.len() as u64;
        jobs.push(JobInfo {
            id,
            description,
            stages: 1,
            tasks_total,
            tasks_done: 0,
            tasks_from_cache: 0,
            shuffle_bytes: 0,
            state: JobState::Running,
            started: Instant::now(),
            duration: None,
        });
        let (cancel, cancelled) = watch::channel(false);
        self.cancels.lock().insert(id, cancel);
        let _ = self.progress.send(jobs[id as usize].progress());
        (id, cancelled)
    }

    /// Updates job `id` with `f` and tells the progress displays.
    fn update(&self, id: u64, f: impl FnOnce(&mut JobInfo)) {
        let mut jobs = self.jobs.lock();
        let job = &mut jobs[id as usize];
        f(job);
        let _ = self.progress.send(job.progress());
    }

    /// A map stage of `tasks` tasks joins job `id`.
    pub fn add_stage(&self, id: u64, tasks: u32) {
        self.update(id, |job| {
            job.stages += 1;
            job.tasks_total += tasks;
        });
    }

    pub fn task_done(&self, id: u64, from_cache: bool, shuffle_bytes_written: u64) {
        self.update(id, |job| {
            job.tasks_done += 1;
            job.tasks_from_cache += from_cache as u32;
            job.shuffle_bytes += shuffle_bytes_written;
        });
    }

    pub fn finish(&self, id: u64, state: JobState) {
        self.cancels.lock().remove(&id);
        self.update(id, |job| {
            job.state = state;
            job.duration = Some(job.started.elapsed());
        });
    }

    /// Cancels every running job; returns how many there were.
    pub fn cancel_all(&self) -> usize {
        let cancels = self.cancels.lock();
        for cancel in cancels.values() {
            let _ = cancel.send(true);
        }
        cancels.len()
    }

    pub fn list(&self) -> Vec<JobInfo> {
        self.jobs.lock().clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Progress> {
        self.progress.subscribe()
    }
}
