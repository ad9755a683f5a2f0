//! Jobs as people see them: what ran, how far it got, how it ended; and progress events for
//! the REPL's progress line and the notebook's live display.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// How far a job got: still running, or how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Its tasks are running (or waiting for a slot).
    Running,
    /// Every task of every stage succeeded.
    Succeeded,
    /// A task failed after its retries (or the job could not be planned); the message says why.
    Failed(String),
    /// Cancelled before it finished (an interrupt).
    Cancelled,
}

/// One job of the session as `:jobs` lists it: its action, stages, tasks, bytes moved and how
/// it ended.
#[derive(Clone, Debug)]
pub struct JobInfo {
    /// The job's id in the session, counting from 0 in the order jobs started.
    pub id: u64,
    /// The action that runs it (`count`, `collect`, ...).
    pub description: String,
    /// Stages run so far: the map stages of the shuffles it computed, and its result stage.
    pub stages: u32,
    /// Stages whose every task finished.
    pub stages_done: u32,
    /// Stages the job was planned with when it started (its result stage and the map stages
    /// whose output was missing); more run if map output is lost on the way.
    pub stages_planned: u32,
    /// Tasks of the stages started so far: its result stage's, and those of each map stage
    /// that joined.
    pub tasks_total: u32,
    /// Tasks finished, of every stage.
    pub tasks_done: u32,
    /// Finished tasks whose partition came from an executor's cache.
    pub tasks_from_cache: u32,
    /// Bytes of shuffle output its map tasks wrote.
    pub shuffle_bytes: u64,
    /// Records its finished tasks passed to their action (counted, collected, shuffled).
    pub records: u64,
    /// Bytes its finished tasks moved: shuffle buckets read and written, results returned.
    pub bytes: u64,
    /// Running, or how it ended.
    pub state: JobState,
    /// When the driver registered it.
    pub started: Instant,
    /// How long it ran, from `started` to its end; `None` while it runs.
    pub duration: Option<Duration>,
}

/// One job's progress, sent whenever it starts, a stage starts or ends, a task finishes, or it
/// ends: what a progress display shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The job's id in the session (`:jobs`).
    pub job_id: u64,
    /// The action that runs it (`count`, `collect`, ...).
    pub description: String,
    /// Stages finished.
    pub stages_done: u32,
    /// Stages it runs: those planned when it started, or more if more were needed since.
    pub stages_total: u32,
    /// Tasks finished, of the stages started so far.
    pub tasks_done: u32,
    /// Tasks of the stages started so far.
    pub tasks_total: u32,
    /// Records the finished tasks passed to their action.
    pub records: u64,
    /// Bytes the finished tasks moved: shuffle buckets read and written, results returned.
    pub bytes: u64,
    /// Running, or how it ended.
    pub state: JobState,
}

impl JobInfo {
    fn progress(&self) -> Progress {
        Progress {
            job_id: self.id,
            description: self.description.clone(),
            stages_done: self.stages_done,
            stages_total: self.stages.max(self.stages_planned),
            tasks_done: self.tasks_done,
            tasks_total: self.tasks_total,
            records: self.records,
            bytes: self.bytes,
            state: self.state.clone(),
        }
    }
}

/// What a finished task adds to its job's progress.
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskCounts {
    /// Its partition came from an executor's cache.
    pub from_cache: bool,
    /// Records it passed to its action.
    pub records: u64,
    /// Shuffle bytes it wrote (map side).
    pub shuffle_written: u64,
    /// Shuffle bytes it read (reduce side).
    pub shuffle_read: u64,
    /// Bytes of the result it returned to the driver.
    pub result_bytes: u64,
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
    /// Registers a new job whose result stage has `tasks_total` tasks, planned to run
    /// `stages_planned` stages in all; the receiver turns true when it is cancelled.
    pub fn start(
        &self,
        description: String,
        tasks_total: u32,
        stages_planned: u32,
    ) -> (u64, watch::Receiver<bool>) {
        let mut jobs = self.jobs.lock();
        let id = jobs.len() as u64;
        jobs.push(JobInfo {
            id,
            description,
            stages: 1,
            stages_done: 0,
            stages_planned: stages_planned.max(1),
            tasks_total,
            tasks_done: 0,
            tasks_from_cache: 0,
            shuffle_bytes: 0,
            records: 0,
            bytes: 0,
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

    /// A map stage of job `id` finished every task.
    pub fn stage_done(&self, id: u64) {
        self.update(id, |job| job.stages_done += 1);
    }

    /// A task of job `id` finished.
    pub fn task_done(&self, id: u64, task: TaskCounts) {
        self.update(id, |job| {
            job.tasks_done += 1;
            job.tasks_from_cache += task.from_cache as u32;
            job.shuffle_bytes += task.shuffle_written;
            job.records += task.records;
            job.bytes += task.shuffle_read + task.shuffle_written + task.result_bytes;
        });
    }

    /// Job `id` ended in `state`; a job that succeeded finished its result stage too.
    pub fn finish(&self, id: u64, state: JobState) {
        self.cancels.lock().remove(&id);
        self.update(id, |job| {
            if state == JobState::Succeeded {
                // Stages planned but found computed meanwhile (by another job) did not run.
                job.stages_planned = job.stages;
                job.stages_done = job.stages;
            }
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

/// A job that did not succeed: the error its cell received, and whether it was cancelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedJob {
    /// The error the cell received (`Job N failed: ...` or `Job N was cancelled`).
    pub message: String,
    /// Whether the job was cancelled (an interrupt) rather than failed.
    pub cancelled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(receiver: &mut broadcast::Receiver<Progress>) -> Vec<Progress> {
        std::iter::from_fn(|| receiver.try_recv().ok()).collect()
    }

    #[test]
    fn a_job_reports_its_stages_tasks_rows_and_bytes_and_ends_done() {
        let jobs = JobTracker::default();
        let mut receiver = jobs.subscribe();
        let (id, _) = jobs.start("count".into(), 2, 2);
        jobs.add_stage(id, 3);
        for _ in 0..3 {
            jobs.task_done(
                id,
                TaskCounts {
                    records: 10,
                    shuffle_written: 100,
                    ..TaskCounts::default()
                },
            );
        }
        jobs.stage_done(id);
        jobs.task_done(
            id,
            TaskCounts {
                records: 5,
                shuffle_read: 150,
                result_bytes: 8,
                ..TaskCounts::default()
            },
        );
        let seen = events(&mut receiver);
        let first = &seen[0];
        assert_eq!(
            (first.stages_done, first.stages_total, first.tasks_total),
            (0, 2, 2)
        );
        let last = seen.last().unwrap();
        assert_eq!((last.stages_done, last.stages_total), (1, 2));
        assert_eq!((last.tasks_done, last.tasks_total), (4, 5));
        assert_eq!((last.records, last.bytes), (35, 458));
        assert_eq!(last.state, JobState::Running);

        jobs.task_done(id, TaskCounts::default());
        jobs.finish(id, JobState::Succeeded);
        let done = events(&mut receiver).pop().unwrap();
        assert_eq!(done.state, JobState::Succeeded);
        assert_eq!((done.stages_done, done.stages_total), (2, 2));
    }

    #[test]
    fn a_job_that_ran_fewer_stages_than_planned_ends_with_those_it_ran() {
        let jobs = JobTracker::default();
        let mut receiver = jobs.subscribe();
        let (id, _) = jobs.start("count".into(), 1, 3);
        jobs.finish(id, JobState::Succeeded);
        let last = events(&mut receiver).pop().unwrap();
        assert_eq!((last.stages_done, last.stages_total), (1, 1));
    }

    #[test]
    fn more_stages_than_planned_raise_the_total() {
        let jobs = JobTracker::default();
        let mut receiver = jobs.subscribe();
        let (id, _) = jobs.start("collect".into(), 1, 1);
        jobs.add_stage(id, 2);
        let last = events(&mut receiver).pop().unwrap();
        assert_eq!((last.stages_done, last.stages_total), (0, 2));
    }

    #[test]
    fn a_cancelled_or_failed_job_says_so_and_keeps_its_counts() {
        let jobs = JobTracker::default();
        let mut receiver = jobs.subscribe();
        let (cancelled, signal) = jobs.start("count".into(), 4, 1);
        jobs.task_done(cancelled, TaskCounts::default());
        assert_eq!(jobs.cancel_all(), 1);
        assert!(*signal.borrow());
        jobs.finish(cancelled, JobState::Cancelled);
        let last = events(&mut receiver).pop().unwrap();
        assert_eq!(last.state, JobState::Cancelled);
        assert_eq!((last.tasks_done, last.stages_done), (1, 0));

        let (failed, _) = jobs.start("collect".into(), 1, 1);
        jobs.finish(failed, JobState::Failed("boom".into()));
        let last = events(&mut receiver).pop().unwrap();
        assert_eq!(last.state, JobState::Failed("boom".into()));
        assert_eq!(jobs.cancel_all(), 0, "ended jobs cannot be cancelled");
    }
}
