//! Job and task states. Each has exactly one transition function; nothing else decides
//! what state follows what.

use std::fmt;

/// The status of a job, as the Renderjuice API names it.
///
/// `created → validating → validated → booting → rendering → finalizing → completed`;
/// `failed` and `canceled` are terminal. `suspended` and `debugging` are part of the
/// documented enum; Orchard never enters `debugging`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[schema(as = JobStatusName, rename_all = "lowercase")]
pub enum JobStatus {
    /// Uploaded and recorded; nothing started.
    Created,
    /// Scene analysis is running.
    Validating,
    /// Analysis finished; ready for `/render`.
    Validated,
    /// Tasks exist, but no worker has started one yet.
    Booting,
    /// At least one task has started.
    Rendering,
    /// Every frame is rendered; outputs are being packaged.
    Finalizing,
    /// Outputs are ready to download.
    Completed,
    /// Validation or rendering failed (terminal).
    Failed,
    /// Canceled by the client (terminal).
    Canceled,
    /// Paused: no new tasks start.
    Suspended,
    /// Reserved by Renderjuice; never emitted by Orchard.
    Debugging,
}

/// Something that happens to a job. [`JobStatus::apply`] decides the status that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    /// `POST /validate`.
    ValidationStarted,
    /// Analysis read the file.
    ValidationSucceeded,
    /// A render was requested and its tasks were created.
    RenderRequested,
    /// A worker started a task of this job.
    TaskStarted,
    /// Every task is done.
    AllTasksDone,
    /// Outputs are packaged.
    Finalized,
    /// Something failed beyond retrying.
    Failed,
    /// `POST /cancel`.
    Canceled,
    /// `POST /suspend`: no new task starts.
    Suspended,
    /// `POST /retry`: frames of a finished job render again.
    Retried,
    /// `POST /resume`; `started` says whether any task of the job ever started.
    Resumed {
        /// A task started before the suspension: the job was rendering.
        started: bool,
    },
}

/// An event that is not allowed in the current status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a job that is {from} cannot take {event:?}")]
pub struct IllegalTransition {
    /// The status the job was in.
    pub from: String,
    /// What was attempted.
    pub event: String,
}

impl JobStatus {
    /// Every status, in the order the Renderjuice enum lists them.
    pub const ALL: [JobStatus; 11] = [
        JobStatus::Created,
        JobStatus::Validating,
        JobStatus::Validated,
        JobStatus::Debugging,
        JobStatus::Rendering,
        JobStatus::Finalizing,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Canceled,
        JobStatus::Booting,
        JobStatus::Suspended,
    ];

    /// The wire name (`"rendering"`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "created",
            JobStatus::Validating => "validating",
            JobStatus::Validated => "validated",
            JobStatus::Booting => "booting",
            JobStatus::Rendering => "rendering",
            JobStatus::Finalizing => "finalizing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
            JobStatus::Suspended => "suspended",
            JobStatus::Debugging => "debugging",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|it| it.as_str() == s)
    }

    /// Terminal statuses: nothing happens to the job any more, unless it is retried.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Canceled)
    }

    /// Statuses in which `/progress` reports counters.
    pub fn is_in_progress(self) -> bool {
        matches!(self, JobStatus::Booting | JobStatus::Rendering | JobStatus::Finalizing)
    }

    /// The one transition function for jobs.
    pub fn apply(self, event: JobEvent) -> Result<JobStatus, IllegalTransition> {
        use JobEvent as E;
        use JobStatus as S;
        let next = match (self, event) {
            (S::Created, E::ValidationStarted) => S::Validating,
            (S::Validating, E::ValidationSucceeded) => S::Validated,
            (S::Validated, E::RenderRequested) => S::Booting,
            (S::Booting | S::Rendering, E::TaskStarted) => S::Rendering,
            // A job whose only task finished before its start was observed still passes rendering.
            (S::Booting | S::Rendering, E::AllTasksDone) => S::Finalizing,
            (S::Finalizing, E::Finalized) => S::Completed,
            (S::Booting | S::Rendering, E::Suspended) => S::Suspended,
            (S::Suspended, E::Resumed { started: false }) => S::Booting,
            (S::Suspended, E::Resumed { started: true }) => S::Rendering,
            // Its running tasks finished every frame while it was suspended.
            (S::Suspended, E::AllTasksDone) => S::Finalizing,
            // The one way out of a terminal status: frames render again, as new tasks.
            (S::Failed | S::Canceled | S::Completed, E::Retried) => S::Booting,
            (from, E::Failed | E::Canceled) if !from.is_terminal() => match event {
                E::Failed => S::Failed,
                _ => S::Canceled,
            },
            (from, event) => {
                return Err(IllegalTransition { from: from.to_string(), event: format!("{event:?}") });
            }
        };
        Ok(next)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of one task (a chunk of a job's frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[schema(as = TaskStatusName, rename_all = "lowercase")]
pub enum TaskStatus {
    /// Waiting for a worker.
    Queued,
    /// Leased to a worker.
    Running,
    /// Every frame rendered, checked and stored.
    Completed,
    /// Failed beyond retrying.
    Failed,
    /// Its job was canceled.
    Canceled,
}

/// Something that happens to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEvent {
    /// A worker claimed it.
    Claimed,
    /// The worker delivered checked outputs.
    Completed,
    /// The attempt failed but the task may run again.
    Requeued,
    /// The task failed for good.
    Failed,
    /// The job was canceled.
    Canceled,
}

impl TaskStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Canceled => "canceled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<TaskStatus> {
        [TaskStatus::Queued, TaskStatus::Running, TaskStatus::Completed, TaskStatus::Failed, TaskStatus::Canceled]
            .into_iter()
            .find(|it| it.as_str() == s)
    }

    /// The one transition function for tasks.
    pub fn apply(self, event: TaskEvent) -> Result<TaskStatus, IllegalTransition> {
        use TaskEvent as E;
        use TaskStatus as S;
        let next = match (self, event) {
            (S::Queued, E::Claimed) => S::Running,
            (S::Running, E::Completed) => S::Completed,
            (S::Running, E::Requeued) => S::Queued,
            (S::Running | S::Queued, E::Failed) => S::Failed,
            (S::Running | S::Queued, E::Canceled) => S::Canceled,
            (from, event) => {
                return Err(IllegalTransition { from: from.as_str().to_string(), event: format!("{event:?}") });
            }
        };
        Ok(next)
    }
}

/// The status of a job's packaging task (its video, made while the job is `finalizing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackagingStatus {
    /// Waiting for a worker with ffmpeg.
    Queued,
    /// Leased to a worker.
    Running,
    /// The video is made, checked and stored.
    Done,
    /// Failed beyond retrying: the job completes without its video, with a warning.
    Failed,
}

/// Something that happens to a packaging task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackagingEvent {
    /// A worker claimed it (also the taking over of a lease that ran out).
    Claimed,
    /// The worker delivered the checked video.
    Finished,
    /// An attempt failed; `last` when no attempt is left.
    Failed {
        /// No attempt is left.
        last: bool,
    },
}

impl PackagingStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PackagingStatus::Queued => "queued",
            PackagingStatus::Running => "running",
            PackagingStatus::Done => "done",
            PackagingStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<PackagingStatus> {
        [PackagingStatus::Queued, PackagingStatus::Running, PackagingStatus::Done, PackagingStatus::Failed]
            .into_iter()
            .find(|it| it.as_str() == s)
    }

    /// The one transition function for packaging tasks.
    pub fn apply(self, event: PackagingEvent) -> Result<PackagingStatus, IllegalTransition> {
        use PackagingEvent as E;
        use PackagingStatus as S;
        let next = match (self, event) {
            (S::Queued | S::Running, E::Claimed) => S::Running,
            (S::Running, E::Finished) => S::Done,
            (S::Running, E::Failed { last: false }) => S::Queued,
            (S::Running, E::Failed { last: true }) => S::Failed,
            (from, event) => {
                return Err(IllegalTransition { from: from.as_str().to_string(), event: format!("{event:?}") });
            }
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_reaches_completed() {
        let mut status = JobStatus::Created;
        for event in [
            JobEvent::ValidationStarted,
            JobEvent::ValidationSucceeded,
            JobEvent::RenderRequested,
            JobEvent::TaskStarted,
            JobEvent::AllTasksDone,
            JobEvent::Finalized,
        ] {
            status = status.apply(event).unwrap();
        }
        assert_eq!(status, JobStatus::Completed);
    }

    #[test]
    fn a_suspended_job_resumes_where_it_was_or_finalizes_when_nothing_is_left() {
        assert_eq!(JobStatus::Rendering.apply(JobEvent::Suspended), Ok(JobStatus::Suspended));
        assert_eq!(JobStatus::Booting.apply(JobEvent::Suspended), Ok(JobStatus::Suspended));
        let suspended = JobStatus::Suspended;
        assert_eq!(suspended.apply(JobEvent::Resumed { started: false }), Ok(JobStatus::Booting));
        assert_eq!(suspended.apply(JobEvent::Resumed { started: true }), Ok(JobStatus::Rendering));
        assert_eq!(suspended.apply(JobEvent::AllTasksDone), Ok(JobStatus::Finalizing));
        assert_eq!(suspended.apply(JobEvent::Canceled), Ok(JobStatus::Canceled));
        for from in [JobStatus::Validated, JobStatus::Finalizing, JobStatus::Completed, JobStatus::Suspended] {
            assert!(from.apply(JobEvent::Suspended).is_err(), "{from}");
        }
        assert!(JobStatus::Rendering.apply(JobEvent::Resumed { started: true }).is_err());
    }

    #[test]
    fn only_a_finished_render_is_retried() {
        for from in [JobStatus::Failed, JobStatus::Canceled, JobStatus::Completed] {
            assert_eq!(from.apply(JobEvent::Retried), Ok(JobStatus::Booting), "{from}");
        }
        for from in [JobStatus::Created, JobStatus::Validated, JobStatus::Rendering, JobStatus::Suspended] {
            assert!(from.apply(JobEvent::Retried).is_err(), "{from}");
        }
    }

    #[test]
    fn validate_is_refused_unless_created() {
        for from in [JobStatus::Validating, JobStatus::Validated, JobStatus::Rendering] {
            assert!(from.apply(JobEvent::ValidationStarted).is_err(), "{from}");
        }
    }

    #[test]
    fn render_is_refused_unless_validated() {
        for from in [JobStatus::Created, JobStatus::Validating, JobStatus::Booting] {
            assert!(from.apply(JobEvent::RenderRequested).is_err(), "{from}");
        }
    }

    #[test]
    fn terminal_statuses_refuse_cancel_and_fail() {
        for from in [JobStatus::Completed, JobStatus::Failed, JobStatus::Canceled] {
            assert!(from.apply(JobEvent::Canceled).is_err(), "{from}");
            assert!(from.apply(JobEvent::Failed).is_err(), "{from}");
        }
    }

    #[test]
    fn every_in_progress_status_can_be_canceled() {
        for from in JobStatus::ALL.into_iter().filter(|it| !it.is_terminal()) {
            assert_eq!(from.apply(JobEvent::Canceled), Ok(JobStatus::Canceled), "{from}");
        }
    }

    #[test]
    fn status_names_round_trip() {
        for it in JobStatus::ALL {
            assert_eq!(JobStatus::parse(it.as_str()), Some(it));
        }
        assert_eq!(JobStatus::parse("Rendering"), None);
    }

    #[test]
    fn a_completed_task_cannot_be_requeued() {
        assert!(TaskStatus::Completed.apply(TaskEvent::Requeued).is_err());
        assert_eq!(TaskStatus::Running.apply(TaskEvent::Requeued), Ok(TaskStatus::Queued));
    }

    #[test]
    fn packaging_runs_until_done_or_out_of_attempts() {
        use PackagingEvent as E;
        use PackagingStatus as S;
        assert_eq!(S::Queued.apply(E::Claimed), Ok(S::Running));
        assert_eq!(S::Running.apply(E::Claimed), Ok(S::Running), "a lease that ran out is taken over");
        assert_eq!(S::Running.apply(E::Finished), Ok(S::Done));
        assert_eq!(S::Running.apply(E::Failed { last: false }), Ok(S::Queued));
        assert_eq!(S::Running.apply(E::Failed { last: true }), Ok(S::Failed));
        assert!(S::Done.apply(E::Claimed).is_err());
        assert!(S::Queued.apply(E::Finished).is_err());
        for status in [S::Queued, S::Running, S::Done, S::Failed] {
            assert_eq!(S::parse(status.as_str()), Some(status));
        }
    }
}
