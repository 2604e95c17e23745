//! From request body to storable events: scrub each event's secrets (`scrub`), normalise it
//! (lenient), group it (pure), and derive a Query event from every db span of a transaction.
//! `span` items become transactions and Query events the same way (`items::spans`); user
//! feedback, client reports, logs, sessions and cron monitors' check-ins are kept
//! (`items::feedback`, `items::client_reports`, `items::logs`, `items::sessions`,
//! `items::check_ins`). Other envelope items (attachments, unknown types) are counted per type
//! and dropped: never an error, so no SDK retries them forever.

use grouping::GroupingConfig;
use protocol::event::{normalize_item_bytes, normalize_slice, span_queries};
use protocol::{Envelope, Event, EventId, ItemType, Limits, NormalizeError};
use std::collections::HashMap;

use store::{NewEvent, ProjectId};

use crate::scrub::Scrubber;

/// Why a body could not be turned into events.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{what} is not a valid event: {source}")]
    Event { what: String, source: NormalizeError },
    #[error("the event is {size} bytes after decompression; the limit is {limit} bytes")]
    EventTooLarge { size: usize, limit: usize },
    #[error("the feedback is not valid: send a JSON object with `comments` (and `event_id`, `name`, `email`)")]
    Feedback,
}

impl ProcessError {
    /// Whether this refusal is about size (413) rather than content (400).
    pub fn is_too_large(&self) -> bool {
        match self {
            ProcessError::EventTooLarge { .. } => true,
            ProcessError::Event { source, .. } => source.is_too_large(),
            ProcessError::Feedback => false,
        }
    }
}

/// The result of processing one request.
#[derive(Debug, Default)]
pub struct Processed {
    pub event_id: Option<EventId>,
    pub events: Vec<NewEvent>,
    /// (project, item type, count) of accepted non-event items.
    pub counts: Vec<(ProjectId, String, u64)>,
    /// The same items by category, for discard accounting.
    pub not_stored: Vec<(&'static str, u64)>,
    /// The other items that are stored (user feedback, client reports, …).
    pub items: store::NewItems,
    /// Parts of used items that were dropped (over a bound, unreadable), by reason and category.
    pub discarded: Vec<(crate::DiscardReason, &'static str, u64)>,
}

/// Processes every item of an envelope.
pub fn envelope(
    project_id: ProjectId,
    env: &Envelope,
    limits: &Limits,
    grouping: &GroupingConfig,
    scrubber: &Scrubber,
    received: f64,
) -> Result<Processed, ProcessError> {
    let mut out = Processed { event_id: env.event_id(), ..Processed::default() };
    // Where each item type's count is, so counting stays linear in the number of items.
    let mut slots: HashMap<&str, usize> = HashMap::new();
    let mut categories: HashMap<&'static str, u64> = HashMap::new();
    let mut span_budget = crate::items::spans::MAX_SPANS;
    let mut log_budget = crate::items::logs::MAX_LOGS;
    for (index, item) in env.items.iter().enumerate() {
        match item.ty {
            ItemType::ClientReport => match crate::items::client_reports::read(&item.payload, project_id) {
                Some(mut reports) => out.items.client_reports.append(&mut reports),
                None => out.discarded.push((crate::DiscardReason::Invalid, "client_report", 1)),
            },
            ItemType::Other(ref ty) if crate::items::feedback::is_feedback(ty) => {
                match crate::items::feedback::read(ty, &item.payload, project_id, env.event_id(), scrubber, received) {
                    Some(f) => out.items.feedback.push(f),
                    None => out.discarded.push((crate::DiscardReason::Invalid, "feedback", 1)),
                }
            }
            ItemType::Session => match crate::items::sessions::read_session(&item.payload, project_id, received) {
                Some(s) => out.items.sessions.push(s),
                None => out.discarded.push((crate::DiscardReason::Invalid, "session", 1)),
            },
            ItemType::Sessions => match crate::items::sessions::read_counts(&item.payload, project_id, received) {
                Some((mut counts, left)) => {
                    out.items.session_counts.append(&mut counts);
                    if left > 0 {
                        out.discarded.push((crate::DiscardReason::TooLarge, "session", left));
                    }
                }
                None => out.discarded.push((crate::DiscardReason::Invalid, "session", 1)),
            },
            ItemType::CheckIn => match crate::items::check_ins::read(&item.payload, project_id, received) {
                Ok(c) => out.items.check_ins.push(c),
                Err(why) => {
                    tracing::debug!(project = project_id.0, reason = %why, "dropped a check-in that is not valid");
                    out.discarded.push((crate::DiscardReason::Invalid, "check_in", 1));
                }
            },
            ItemType::Span => {
                let spans = crate::items::spans::read(&item.payload, &mut span_budget);
                out.discarded.extend(spans.discarded);
                for segment in spans.segments {
                    if let Err(reason) = push_segment(&mut out.events, project_id, segment, limits, grouping, scrubber, received) {
                        out.discarded.push((reason, "span", 1));
                    }
                }
            }
            ItemType::Log => {
                let logs = crate::items::logs::read(&item.payload, project_id, env.event_id(), scrubber, received, &mut log_budget);
                out.discarded.extend(logs.discarded);
                out.items.logs.extend(logs.logs);
            }
            ItemType::Event | ItemType::Transaction => {
                let scrubbed = scrubber.payload(&item.payload);
                let payload = scrubbed.as_deref().unwrap_or(&item.payload);
                let event = normalize_item_bytes(item, payload, &grown(limits, item.payload.len(), payload.len()), received, out.event_id)
                    .map_err(|source| ProcessError::Event {
                        what: format!("envelope item {index} ({})", item.ty.as_str()),
                        source,
                    })?;
                if out.event_id.is_none() {
                    out.event_id = Some(event.event_id);
                }
                push_event(&mut out.events, project_id, event, payload, grouping, received);
            }
            _ => {
                let ty = item.ty.as_str();
                match slots.get(ty) {
                    Some(&i) => out.counts[i].2 += 1,
                    None => {
                        slots.insert(ty, out.counts.len());
                        out.counts.push((project_id, ty.to_string(), 1));
                    }
                }
                *categories.entry(item.ty.category()).or_default() += 1;
            }
        }
    }
    out.not_stored = categories.into_iter().collect();
    out.not_stored.sort_unstable();
    Ok(out)
}

/// Processes a legacy store body: one event as JSON (already decoded and decompressed).
pub fn store_body(
    project_id: ProjectId,
    body: &[u8],
    limits: &Limits,
    grouping: &GroupingConfig,
    scrubber: &Scrubber,
    received: f64,
) -> Result<Processed, ProcessError> {
    if body.len() > limits.max_event_bytes {
        return Err(ProcessError::EventTooLarge { size: body.len(), limit: limits.max_event_bytes });
    }
    let sent = body.len();
    let scrubbed = scrubber.payload(body);
    let body = scrubbed.as_deref().unwrap_or(body);
    let event = normalize_slice(body, &grown(limits, sent, body.len()), received, None)
        .map_err(|source| ProcessError::Event { what: "the request body".into(), source })?;
    let mut out = Processed { event_id: Some(event.event_id), ..Processed::default() };
    push_event(&mut out.events, project_id, event, body, grouping, received);
    Ok(out)
}

/// Processes a body of the user feedback endpoint: one user report.
pub fn user_feedback(project_id: ProjectId, body: &[u8], scrubber: &Scrubber, received: f64) -> Result<Processed, ProcessError> {
    let feedback = crate::items::feedback::read("user_report", body, project_id, None, scrubber, received).ok_or(ProcessError::Feedback)?;
    Ok(Processed { event_id: Some(feedback.feedback_id), items: store::NewItems { feedback: vec![feedback], ..Default::default() }, ..Processed::default() })
}

/// The limits for a scrubbed payload: `[Filtered]` and `_meta` may make it a little larger than
/// what the client sent, which was within the limit.
fn grown(limits: &Limits, sent: usize, scrubbed: usize) -> std::borrow::Cow<'_, Limits> {
    if scrubbed <= limits.max_event_bytes || sent > limits.max_event_bytes {
        return std::borrow::Cow::Borrowed(limits);
    }
    let mut grown = limits.clone();
    grown.max_event_bytes = scrubbed;
    std::borrow::Cow::Owned(grown)
}

/// Groups one event and appends it, with the Query events of its db spans.
fn push_event(out: &mut Vec<NewEvent>, project_id: ProjectId, event: Event, payload: &[u8], cfg: &GroupingConfig, received: f64) {
    push_queries(out, project_id, &event, cfg, received);
    out.push(new_event(project_id, &event, payload.to_vec(), cfg, received));
}

fn push_queries(out: &mut Vec<NewEvent>, project_id: ProjectId, event: &Event, cfg: &GroupingConfig, received: f64) {
    for query in span_queries(event) {
        let payload = span_query_payload(event, &query);
        out.push(new_event(project_id, &query, payload, cfg, received));
    }
}

/// The spans of one segment, from `span` items: scrubbed and normalised as a transaction; its
/// Query events, and the transaction itself when its segment span was there.
fn push_segment(
    out: &mut Vec<NewEvent>,
    project_id: ProjectId,
    segment: crate::items::spans::Segment,
    limits: &Limits,
    cfg: &GroupingConfig,
    scrubber: &Scrubber,
    received: f64,
) -> Result<(), crate::DiscardReason> {
    let mut payload = segment.payload;
    scrubber.value(&mut payload);
    let payload = serde_json::to_vec(&payload).map_err(|_| crate::DiscardReason::Invalid)?;
    let event = normalize_slice(&payload, limits, received, None).map_err(|e| {
        if e.is_too_large() { crate::DiscardReason::TooLarge } else { crate::DiscardReason::Invalid }
    })?;
    if segment.complete {
        push_event(out, project_id, event, &payload, cfg, received);
    } else {
        push_queries(out, project_id, &event, cfg, received);
    }
    Ok(())
}

/// Builds the storable form of a normalised event.
pub fn new_event(project_id: ProjectId, event: &Event, payload: Vec<u8>, cfg: &GroupingConfig, received: f64) -> NewEvent {
    let g = grouping::group(event, cfg);
    NewEvent {
        project_id,
        event_id: event.event_id,
        kind: event.kind.as_str().to_string(),
        timestamp: event.timestamp,
        received,
        level: event.level,
        logger: event.logger.clone(),
        title: g.title,
        culprit: g.culprit,
        hash: g.hash,
        components: serde_json::to_string(&g.components).unwrap_or_else(|_| "[]".into()),
        tags: event.tags.clone(),
        time_spent: event.time_spent,
        payload,
    }
}

/// A Query event derived from a span has no JSON of its own: this is what we keep for it.
fn span_query_payload(tx: &Event, query: &Event) -> Vec<u8> {
    let q = query.query.as_ref();
    serde_json::json!({
        "event_id": query.event_id.to_string(),
        "type": "query",
        "timestamp": query.timestamp,
        "level": query.level.as_str(),
        "query": { "query": q.map(|q| q.query.as_str()), "engine": q.and_then(|q| q.engine.as_deref()) },
        "time_spent": query.time_spent,
        "transaction": tx.transaction,
        "parent_event_id": tx.event_id.to_string(),
        "tags": query.tags,
    })
    .to_string()
    .into_bytes()
}
