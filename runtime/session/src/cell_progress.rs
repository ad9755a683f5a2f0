//! One progress display per cell, covering every job the cell runs (the LR loop's ten jobs
//! are one display, not ten), as the REPL's redrawn line and the notebook's updated
//! `display_data` show it: the running job's stage and tasks, rows and bytes, and at the end
//! whether the cell's jobs were done, failed (and why, in short) or cancelled.
//!
//! Front ends feed the driver's [`Progress`] events seen while a cell runs into a
//! [`CellProgress`] and render its [`CellProgress::text`] or [`CellProgress::html`]; what the
//! display says is decided here, from plain data, once for both.

use std::time::Duration;
use tessera_driver::{JobState, Progress};

/// The longest failure reason a progress display shows; the cell's error has the whole message.
const REASON_CHARS: usize = 120;

/// The jobs one cell ran, in the order they started, each as its latest event.
#[derive(Clone, Debug, Default)]
pub struct CellProgress {
    jobs: Vec<Progress>,
}

/// Where a cell stands, as its progress display says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CellProgressState {
    /// The cell is still running.
    Running,
    /// The cell ended and every job it ran succeeded.
    Done,
    /// A job of the cell failed: why, in short.
    Failed(String),
    /// A job of the cell was cancelled, or the cell was interrupted.
    Cancelled,
}

impl CellProgress {
    /// A display for a cell that has run no job yet.
    pub fn new() -> CellProgress {
        CellProgress::default()
    }

    /// Takes in one progress event of a job the cell runs.
    pub fn observe(&mut self, event: Progress) {
        match self.jobs.iter_mut().find(|job| job.job_id == event.job_id) {
            Some(job) => *job = event,
            None => self.jobs.push(event),
        }
    }

    /// Whether the cell has run no job (and so shows no progress).
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Where the cell stands: `Running` until `ended`; then, from its jobs, done, failed or
    /// cancelled. A cell that was `interrupted` counts as cancelled even if its jobs had all
    /// succeeded (it stopped before it finished).
    pub fn state(&self, ended: bool, interrupted: bool) -> CellProgressState {
        let failed = self.jobs.iter().find_map(|job| match &job.state {
            JobState::Failed(message) => Some(short_reason(message)),
            _ => None,
        });
        if let Some(reason) = failed {
            return CellProgressState::Failed(reason);
        }
        let cancelled = self.jobs.iter().any(|job| job.state == JobState::Cancelled);
        if cancelled || (ended && interrupted) {
            CellProgressState::Cancelled
        } else if ended {
            CellProgressState::Done
        } else {
            CellProgressState::Running
        }
    }

    /// The display as one line of text (`elapsed`: since the cell started).
    pub fn text(&self, state: &CellProgressState, elapsed: Duration) -> String {
        let seconds = format!("{:.1} s", elapsed.as_secs_f64());
        match state {
            CellProgressState::Running => match self.current() {
                Some((ordinal, job)) => {
                    format!("{}: {}, {seconds}", job_name(ordinal, job), counts(job))
                }
                None => format!("running, {seconds}"),
            },
            CellProgressState::Done => format!(
                "done: {} in {seconds}",
                totals(&self.jobs, self.jobs.len() == 1)
            ),
            CellProgressState::Failed(reason) => match self.ending_job() {
                Some((ordinal, job)) => format!(
                    "failed: {} at {}: {reason}",
                    job_name(ordinal, job),
                    position(job)
                ),
                None => format!("failed: {reason}"),
            },
            CellProgressState::Cancelled => match self.ending_job() {
                Some((ordinal, job)) if job.state != JobState::Succeeded => format!(
                    "cancelled: {} at {}, after {seconds}",
                    job_name(ordinal, job),
                    position(job)
                ),
                _ => format!(
                    "cancelled: the cell was interrupted after {} {}, {seconds}",
                    self.jobs.len(),
                    plural(self.jobs.len() as u32, "job")
                ),
            },
        }
    }

    /// The latest job's tasks: finished, and of its stages started so far.
    pub fn tasks(&self) -> (u32, u32) {
        self.current()
            .map_or((0, 0), |(_, job)| (job.tasks_done, job.tasks_total))
    }

    /// The display as HTML: a progress bar for the running job's tasks and the text.
    pub fn html(&self, state: &CellProgressState, elapsed: Duration) -> String {
        let text = tessera_display::escape_html(&self.text(state, elapsed));
        let (value, max) = match (state, self.tasks()) {
            (CellProgressState::Done, _) => (1, 1),
            (_, (done, total)) => (done, total.max(1)),
        };
        let colour = match state {
            CellProgressState::Running => "inherit",
            CellProgressState::Done => "#2e7d32",
            CellProgressState::Failed(_) => "#c62828",
            CellProgressState::Cancelled => "#8d6e00",
        };
        format!(
            "<div class=\"tessera-progress\"><progress value=\"{value}\" max=\"{max}\"></progress> \
             <code style=\"color: {colour}\">{text}</code></div>"
        )
    }

    /// The job shown while the cell runs: the latest to start, with its ordinal in the cell.
    fn current(&self) -> Option<(usize, &Progress)> {
        self.jobs.last().map(|job| (self.jobs.len(), job))
    }

    /// The job that ended the cell's run: the first that failed or was cancelled, else the last.
    fn ending_job(&self) -> Option<(usize, &Progress)> {
        self.jobs
            .iter()
            .position(|job| matches!(job.state, JobState::Failed(_) | JobState::Cancelled))
            .map(|i| (i + 1, &self.jobs[i]))
            .or_else(|| self.current())
    }
}

/// "job 3 (count)": the job's place in the cell and its action.
fn job_name(ordinal: usize, job: &Progress) -> String {
    format!("job {ordinal} ({})", job.description)
}

/// "stage 2 of 2, tasks 7 of 8": how far a job got.
fn position(job: &Progress) -> String {
    let stage = (job.stages_done + 1).min(job.stages_total.max(1));
    format!(
        "stage {stage} of {}, tasks {} of {}",
        job.stages_total.max(1),
        job.tasks_done,
        job.tasks_total
    )
}

/// "stage 2 of 2, tasks 7 of 8, 1.2 M rows, 40.0 MiB": a running job's line.
fn counts(job: &Progress) -> String {
    format!(
        "{}, {}, {}",
        position(job),
        rows(job.records),
        tessera_display::bytes(job.bytes)
    )
}

/// What every job of a finished cell did together: "2 jobs, 3 stages, 12 tasks, 1.2 M rows,
/// 40.0 MiB" (`single`: the one job's action instead of a count of jobs).
fn totals(jobs: &[Progress], single: bool) -> String {
    let stages: u32 = jobs.iter().map(|j| j.stages_done).sum();
    let tasks: u32 = jobs.iter().map(|j| j.tasks_done).sum();
    let records: u64 = jobs.iter().map(|j| j.records).sum();
    let bytes: u64 = jobs.iter().map(|j| j.bytes).sum();
    let what = match jobs {
        [job] if single => format!("1 job ({})", job.description),
        _ => format!("{} jobs", jobs.len()),
    };
    format!(
        "{what}, {stages} {}, {tasks} {}, {}, {}",
        plural(stages, "stage"),
        plural(tasks, "task"),
        rows(records),
        tessera_display::bytes(bytes)
    )
}

fn plural(n: u32, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// A count of records as people read it: "532 rows", "12.3 k rows", "1.2 M rows".
fn rows(n: u64) -> String {
    const STEPS: [(f64, &str); 3] = [(1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (size, unit) in STEPS {
        if n as f64 >= size {
            return format!("{:.1} {unit} rows", n as f64 / size);
        }
    }
    format!("{n} {}", if n == 1 { "row" } else { "rows" })
}

/// A failed job's reason in one short line: the driver's message without its "Job N failed: "
/// prefix (the display names the job), its first line, at most [`REASON_CHARS`] characters. A
/// longer one keeps its first clause (what failed) and its end (the cause, which error messages
/// put last: "closure panicked: ...").
fn short_reason(message: &str) -> String {
    let without_job = match message.split_once(" failed: ") {
        Some((job, rest)) if job.starts_with("Job ") => rest,
        _ => message,
    };
    let line = without_job.lines().next().unwrap_or("").trim();
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= REASON_CHARS {
        return line.to_string();
    }
    let head: String = match line.split_once("; ") {
        Some((first, _)) if first.chars().count() < REASON_CHARS / 2 => first.to_string(),
        _ => String::new(),
    };
    let room = REASON_CHARS - head.chars().count() - 2;
    let tail: String = chars[chars.len() - room..].iter().collect();
    format!("{head} …{}", tail.trim_start())
        .trim_start()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, description: &str, state: JobState) -> Progress {
        Progress {
            job_id: id,
            description: description.into(),
            stages_done: 1,
            stages_total: 2,
            tasks_done: 7,
            tasks_total: 8,
            records: 1_200_000,
            bytes: 40 * 1024 * 1024,
            state,
        }
    }

    const SECONDS: Duration = Duration::from_millis(3400);

    #[test]
    fn a_running_cell_shows_its_latest_job() {
        let mut cell = CellProgress::new();
        assert!(cell.is_empty());
        cell.observe(job(4, "count", JobState::Succeeded));
        cell.observe(job(5, "collect", JobState::Running));
        let state = cell.state(false, false);
        assert_eq!(state, CellProgressState::Running);
        assert_eq!(
            cell.text(&state, SECONDS),
            "job 2 (collect): stage 2 of 2, tasks 7 of 8, 1.2 M rows, 40.0 MiB, 3.4 s"
        );
        // A later event of a job replaces its earlier one; it does not add a job.
        cell.observe(job(5, "collect", JobState::Succeeded));
        assert_eq!(cell.state(true, false), CellProgressState::Done);
        assert!(
            cell.text(&CellProgressState::Done, SECONDS)
                .starts_with("done: 2 jobs, 2 stages, 14 tasks, 2.4 M rows, 80.0 MiB in 3.4 s"),
        );
    }

    #[test]
    fn a_single_job_is_named_when_done() {
        let mut cell = CellProgress::new();
        let mut one = job(0, "count", JobState::Succeeded);
        (one.stages_done, one.tasks_done, one.records, one.bytes) = (1, 1, 1, 8);
        cell.observe(one);
        assert_eq!(
            cell.text(&cell.state(true, false), SECONDS),
            "done: 1 job (count), 1 stage, 1 task, 1 row, 8 B in 3.4 s"
        );
    }

    #[test]
    fn a_failed_job_says_which_and_why_in_short() {
        let mut cell = CellProgress::new();
        cell.observe(job(1, "count", JobState::Succeeded));
        let long = format!(
            "Job 2 failed: task for partition 3 failed 4 times; most recent failure on executor \
             local-0: {} closure panicked: boom at 777\nstack backtrace:",
            "x".repeat(200)
        );
        cell.observe(job(2, "reduce", JobState::Failed(long)));
        let state = cell.state(true, false);
        let CellProgressState::Failed(reason) = &state else {
            panic!("{state:?}")
        };
        assert!(
            reason.starts_with("task for partition 3 failed 4 times …xxx"),
            "{reason}"
        );
        assert!(
            reason.ends_with("xxx closure panicked: boom at 777"),
            "{reason}"
        );
        assert!(reason.chars().count() <= REASON_CHARS, "{reason}");
        assert!(
            cell.text(&state, SECONDS)
                .starts_with("failed: job 2 (reduce) at stage 2 of 2, tasks 7 of 8: task for")
        );
        assert!(cell.html(&state, SECONDS).contains("#c62828"));
    }

    #[test]
    fn a_cancelled_job_or_an_interrupted_cell_is_cancelled_not_done() {
        let mut cell = CellProgress::new();
        cell.observe(job(1, "count", JobState::Succeeded));
        cell.observe(job(2, "count", JobState::Cancelled));
        let state = cell.state(true, true);
        assert_eq!(state, CellProgressState::Cancelled);
        assert_eq!(
            cell.text(&state, SECONDS),
            "cancelled: job 2 (count) at stage 2 of 2, tasks 7 of 8, after 3.4 s"
        );
        // Cancelled even before the cell returned.
        assert_eq!(cell.state(false, false), CellProgressState::Cancelled);

        // Every job done, then the cell looped until it was interrupted.
        let mut cell = CellProgress::new();
        cell.observe(job(1, "count", JobState::Succeeded));
        let state = cell.state(true, true);
        assert_eq!(state, CellProgressState::Cancelled);
        assert_eq!(
            cell.text(&state, SECONDS),
            "cancelled: the cell was interrupted after 1 job, 3.4 s"
        );
    }

    #[test]
    fn html_shows_the_bar_and_escapes_the_text() {
        let mut cell = CellProgress::new();
        cell.observe(job(1, "take<5>", JobState::Running));
        let html = cell.html(&CellProgressState::Running, SECONDS);
        assert!(html.contains("<progress value=\"7\" max=\"8\">"), "{html}");
        assert!(html.contains("take&lt;5&gt;"), "{html}");
        let done = cell.html(&CellProgressState::Done, SECONDS);
        assert!(done.contains("<progress value=\"1\" max=\"1\">"), "{done}");
    }

    #[test]
    fn short_reasons_keep_what_failed_and_why() {
        assert_eq!(short_reason("Job 3 failed: boom"), "boom");
        assert_eq!(
            short_reason("cannot plan: no such rdd 9"),
            "cannot plan: no such rdd 9"
        );
        assert_eq!(
            short_reason("Job 1 failed: first line\nsecond"),
            "first line"
        );
        let no_clause = format!("{} end", "y".repeat(300));
        let short = short_reason(&no_clause);
        assert!(
            short.starts_with("…y") && short.ends_with("y end"),
            "{short}"
        );
        assert!(short.chars().count() <= REASON_CHARS);
    }

    #[test]
    fn rows_read_as_people_count_them() {
        assert_eq!(rows(0), "0 rows");
        assert_eq!(rows(1), "1 row");
        assert_eq!(rows(999), "999 rows");
        assert_eq!(rows(12_345), "12.3 k rows");
        assert_eq!(rows(1_200_000), "1.2 M rows");
        assert_eq!(rows(3_400_000_000), "3.4 G rows");
    }
}
