//! What a job's status changes tell the outside world: webhook events and the event stream.
//!
//! Each status a job enters that people care about is one kind of notice; the rest (the steps
//! between, `rendering` and `finalizing`) are progress, not news. Renderjuice documents
//! `onRenderComplete` and `onRenderFail`; the others are Orchard's, sent only to endpoints that
//! ask for them.

use crate::status::JobStatus;

/// A kind of notice, by the name webhooks and the event stream carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub enum Notice {
    /// The job completed: its outputs can be downloaded (Renderjuice).
    #[serde(rename = "onRenderComplete")]
    RenderComplete,
    /// The job failed, in validation, rendering or finalizing (Renderjuice, planned there).
    #[serde(rename = "onRenderFail")]
    RenderFail,
    /// The scene was analysed and the job can render (Orchard).
    #[serde(rename = "onValidated")]
    Validated,
    /// A render started: its tasks are queued (Orchard; a retry starts one again).
    #[serde(rename = "onRenderStart")]
    RenderStart,
    /// The job was canceled (Orchard).
    #[serde(rename = "onRenderCancel")]
    RenderCancel,
    /// The job was suspended (Orchard).
    #[serde(rename = "onRenderSuspend")]
    RenderSuspend,
}

impl Notice {
    /// Every kind, Renderjuice's first.
    pub const ALL: [Notice; 6] = [
        Notice::RenderComplete,
        Notice::RenderFail,
        Notice::Validated,
        Notice::RenderStart,
        Notice::RenderCancel,
        Notice::RenderSuspend,
    ];

    /// The notice a job entering `status` gives, if any.
    pub fn for_status(status: JobStatus) -> Option<Notice> {
        match status {
            JobStatus::Completed => Some(Notice::RenderComplete),
            JobStatus::Failed => Some(Notice::RenderFail),
            JobStatus::Validated => Some(Notice::Validated),
            JobStatus::Booting => Some(Notice::RenderStart),
            JobStatus::Canceled => Some(Notice::RenderCancel),
            JobStatus::Suspended => Some(Notice::RenderSuspend),
            _ => None,
        }
    }

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Notice::RenderComplete => "onRenderComplete",
            Notice::RenderFail => "onRenderFail",
            Notice::Validated => "onValidated",
            Notice::RenderStart => "onRenderStart",
            Notice::RenderCancel => "onRenderCancel",
            Notice::RenderSuspend => "onRenderSuspend",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|it| it.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_news_makes_a_notice() {
        for notice in Notice::ALL {
            assert_eq!(Notice::parse(notice.name()), Some(notice));
            assert_eq!(serde_json::to_value(notice).unwrap(), notice.name());
        }
        assert_eq!(Notice::parse("onRenderDone"), None);
        assert_eq!(Notice::for_status(JobStatus::Rendering), None);
        assert_eq!(Notice::for_status(JobStatus::Completed), Some(Notice::RenderComplete));
    }
}
