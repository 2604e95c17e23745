//! The cron monitors' scheduler: every `monitors.check_interval_secs`, off the request path, it
//! marks monitors whose check-in is overdue past its margin as missed and runs in progress past
//! their longest time as timed out (the store does each with a conditional update, so with
//! several nodes one of them wins), then makes every failed run not yet reported — those two and
//! `error` check-ins — an event through the pipeline, so that it becomes an issue, counts,
//! regresses and fires alert rules like any event. An event's id comes from its run: reported
//! twice (a crash between the two steps, two nodes), it is stored once.

use std::sync::Arc;
use std::time::Duration;

use ingest::Pipeline;
use store::Store;

/// Failures reported per pass (the rest wait for the next).
const PER_PASS: usize = 500;

/// Starts the scheduler on the current runtime.
pub(crate) fn start(store: Arc<dyn Store>, pipeline: Arc<Pipeline>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = pass(&store, &pipeline).await {
                tracing::warn!(error = %e, "could not check the cron monitors");
            }
        }
    })
}

/// One look: mark what is overdue, report what failed. Returns how many failures it reported.
async fn pass(store: &Arc<dyn Store>, pipeline: &Pipeline) -> anyhow::Result<usize> {
    let s = store.clone();
    let failures = store::off_thread(move || {
        let now = store::now();
        let missed = s.mark_missed(now)?;
        let timed_out = s.mark_timeouts(now)?;
        if missed + timed_out > 0 {
            tracing::info!(missed, timed_out, "cron monitors missed a check-in or ran too long");
        }
        s.unreported_failures(PER_PASS)
    })
    .await?;
    if failures.is_empty() {
        return Ok(0);
    }
    pipeline.report_monitor_failures(&failures).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let runs: Vec<i64> = failures.iter().map(|f| f.run_id).collect();
    let s = store.clone();
    store::off_thread(move || s.mark_reported(&runs)).await?;
    Ok(failures.len())
}
