//! `/metrics`: counters in the Prometheus text format — ingest requests by status, what was
//! discarded by reason and item, the pipeline's gauges (events queued, memory budget in use), and
//! the passwords hashed for logins.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;

use crate::AppState;

/// Statuses the ingest endpoints answer with, in the order they are reported.
const STATUSES: [u16; 10] = [200, 400, 401, 403, 404, 408, 413, 429, 503, 500];

/// Request counters, shared by the handlers.
#[derive(Default)]
pub struct Metrics {
    by_status: [AtomicU64; STATUSES.len()],
    other: AtomicU64,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub fn count(&self, status: u16) {
        match STATUSES.iter().position(|s| *s == status) {
            Some(i) => self.by_status[i].fetch_add(1, Ordering::Relaxed),
            None => self.other.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Requests answered with `status` so far.
    pub fn requests(&self, status: u16) -> u64 {
        STATUSES.iter().position(|s| *s == status).map_or(0, |i| self.by_status[i].load(Ordering::Relaxed))
    }
}

pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let mut out = String::new();
    out.push_str("# HELP sentry_ingest_requests_total Ingest requests answered, by status.\n");
    out.push_str("# TYPE sentry_ingest_requests_total counter\n");
    for (i, status) in STATUSES.iter().enumerate() {
        out.push_str(&format!("sentry_ingest_requests_total{{status=\"{status}\"}} {}\n", m.by_status[i].load(Ordering::Relaxed)));
    }
    out.push_str(&format!("sentry_ingest_requests_total{{status=\"other\"}} {}\n", m.other.load(Ordering::Relaxed)));
    let p = &state.pipeline;
    let spool = p.spool_stats();
    out.push_str("# HELP sentry_ingest_queued_events Acknowledged events waiting in the spool to be stored.\n");
    out.push_str("# TYPE sentry_ingest_queued_events gauge\n");
    out.push_str(&format!("sentry_ingest_queued_events {}\n", spool.waiting_events));
    out.push_str("# HELP sentry_spool_bytes Bytes of acknowledged records in the spool not yet stored (ingest.spool_max_bytes bounds it).\n");
    out.push_str("# TYPE sentry_spool_bytes gauge\n");
    out.push_str(&format!("sentry_spool_bytes {}\n", spool.unapplied_bytes));
    out.push_str("# HELP sentry_spool_disk_bytes Disk space the spool's segment files take.\n");
    out.push_str("# TYPE sentry_spool_disk_bytes gauge\n");
    out.push_str(&format!("sentry_spool_disk_bytes {}\n", spool.disk_bytes));
    out.push_str("# HELP sentry_spool_oldest_age_seconds Age of the oldest acknowledged event not yet stored (0 when none waits).\n");
    out.push_str("# TYPE sentry_spool_oldest_age_seconds gauge\n");
    let age = spool.oldest_unapplied.map_or(0.0, |t| (store::now() - t).max(0.0));
    out.push_str(&format!("sentry_spool_oldest_age_seconds {age:.3}\n"));
    out.push_str("# HELP sentry_spool_apply_lag_seconds Time from an event's acknowledgement to its commit in the store.\n");
    out.push_str("# TYPE sentry_spool_apply_lag_seconds histogram\n");
    let (buckets, sum) = p.apply_lag().snapshot();
    for (bound, n) in &buckets {
        let le = if bound.is_infinite() { "+Inf".to_string() } else { bound.to_string() };
        out.push_str(&format!("sentry_spool_apply_lag_seconds_bucket{{le=\"{le}\"}} {n}\n"));
    }
    out.push_str(&format!("sentry_spool_apply_lag_seconds_sum {sum:.6}\n"));
    out.push_str(&format!("sentry_spool_apply_lag_seconds_count {}\n", buckets.last().map_or(0, |b| b.1)));
    out.push_str("# HELP sentry_events_stored_total Events stored since start (duplicates not counted).\n");
    out.push_str("# TYPE sentry_events_stored_total counter\n");
    out.push_str(&format!("sentry_events_stored_total {}\n", p.stored_total()));
    out.push_str("# HELP sentry_ingest_memory_bytes Bytes of request bodies and queued events held in memory.\n");
    out.push_str("# TYPE sentry_ingest_memory_bytes gauge\n");
    out.push_str(&format!("sentry_ingest_memory_bytes {}\n", p.budget().in_use()));
    out.push_str("# HELP sentry_ingest_memory_limit_bytes The configured bound of sentry_ingest_memory_bytes.\n");
    out.push_str("# TYPE sentry_ingest_memory_limit_bytes gauge\n");
    out.push_str(&format!("sentry_ingest_memory_limit_bytes {}\n", p.budget().total()));
    out.push_str("# HELP sentry_discarded_total Requests refused and items dropped on purpose, by reason and item.\n");
    out.push_str("# TYPE sentry_discarded_total counter\n");
    for (reason, item, n) in p.discards() {
        out.push_str(&format!("sentry_discarded_total{{reason=\"{}\",item=\"{item}\"}} {n}\n", reason.as_str()));
    }
    out.push_str("# HELP sentry_login_hashes_total Passwords hashed for the login and setup forms since start.\n");
    out.push_str("# TYPE sentry_login_hashes_total counter\n");
    out.push_str(&format!("sentry_login_hashes_total {}\n", state.dashboard.logins.hashes()));
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
