//! User feedback: what a person wrote about a problem (the SDKs' `feedback` item and the older
//! `user_report`), with the event it is about, when they named one; and the SDKs' client
//! reports (what a client dropped before sending, and why).

use serde::Serialize;

use crate::{EventId, GroupId, ProjectId};

/// Feedback to store, as ingest read it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFeedback {
    pub project_id: ProjectId,
    /// Its own id: a client's retry of the same feedback changes nothing.
    pub feedback_id: EventId,
    /// The event it is about, if it names one.
    pub event_id: Option<EventId>,
    pub name: String,
    pub email: String,
    pub message: String,
    /// The page it was sent from, if known.
    pub url: Option<String>,
    /// Unix seconds.
    pub timestamp: f64,
    pub received: f64,
}

/// Stored feedback, with the issue of its event when that event is stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeedbackRow {
    pub id: i64,
    pub project_id: ProjectId,
    pub feedback_id: String,
    pub event_id: Option<String>,
    pub group_id: Option<GroupId>,
    pub name: String,
    pub email: String,
    pub message: String,
    pub url: Option<String>,
    pub timestamp: f64,
}

/// A client report's count for one reason and category, to add to the project's sum.
#[derive(Clone, Debug, PartialEq)]
pub struct NewClientReport {
    pub project_id: ProjectId,
    pub reason: String,
    pub category: String,
    pub quantity: u64,
}

/// What a project's SDKs dropped before sending, summed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientReportSum {
    pub reason: String,
    pub category: String,
    pub quantity: u64,
}
