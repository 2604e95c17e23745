//! The delivery task: claims what is due in the outbox (a lease per row, so that another
//! process sharing the outbox never sends the same row meanwhile), sends it through its plugin,
//! a few at a time, and records each attempt — delivered, retried later with backoff, or given
//! up — which releases the claim.

use std::sync::Arc;
use std::time::Duration;

use notify::{DeliveryError, Notification, Plugin, Settings};
use store::{Delivery, Store, now};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::{AlertConfig, action_settings};

/// Deliveries in flight at once.
const CONCURRENCY: usize = 8;
/// The longest one attempt may take, whatever the plugin does.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long shutdown waits for deliveries in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a claim holds: longer than any attempt may take, so a row is only taken over from
/// a claimer that died.
const LEASE: Duration = Duration::from_secs(ATTEMPT_TIMEOUT.as_secs() + 30);

/// A name for this process's claims, unique per run.
fn claimer() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    format!("{}-{}", std::process::id(), hex::encode(bytes))
}

pub(super) async fn run(
    store: Arc<dyn Store>,
    config: Arc<AlertConfig>,
    plugins: Vec<Arc<dyn Plugin>>,
    queued: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let claimer = Arc::new(claimer());
    let resumed = blocking(&store, |s| s.resume_deliveries(now())).await.unwrap_or(0);
    if resumed > 0 {
        tracing::info!(deliveries = resumed, "resuming pending notifications");
    }
    let mut tasks: JoinSet<i64> = JoinSet::new();
    loop {
        if let Ok(n) = blocking(&store, |s| s.expire_deliveries(now())).await
            && n > 0
        {
            tracing::warn!(deliveries = n, "notifications expired before they could be delivered");
        }
        let room = CONCURRENCY.saturating_sub(tasks.len());
        if room > 0 {
            let who = claimer.clone();
            let claimed = blocking(&store, move |s| s.claim_deliveries(&who, now(), LEASE.as_secs_f64(), room))
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "could not read the notification outbox");
                    Vec::new()
                });
            for d in claimed {
                tasks.spawn(attempt(store.clone(), config.clone(), plugins.clone(), d));
            }
        }
        let wait = next_wait(&store).await;
        tokio::select! {
            _ = stop.changed() => break,
            _ = queued.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Let what is in flight finish; the rest stays pending for the next start.
    let drain = async {
        while tasks.join_next().await.is_some() {}
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!("stopping with notifications in flight; they are sent again at the next start");
    }
}

/// How long to sleep: until the next pending attempt, between 100 ms and 1 s.
async fn next_wait(store: &Arc<dyn Store>) -> Duration {
    let next = blocking(store, |s| s.next_delivery_at()).await.ok().flatten();
    let secs = next.map_or(1.0, |at| (at - now()).clamp(0.1, 1.0));
    Duration::from_secs_f64(secs)
}

/// One attempt at one delivery, recorded in the store. Returns the delivery's id.
async fn attempt(store: Arc<dyn Store>, config: Arc<AlertConfig>, plugins: Vec<Arc<dyn Plugin>>, d: Delivery) -> i64 {
    let id = d.id;
    let result = send(&config, &plugins, &d).await;
    let attempts = d.attempts as u32 + 1;
    let outcome = match &result {
        Ok(()) => {
            tracing::info!(delivery = id, plugin = %d.plugin, rule = %d.rule, group = %d.group_id, "notification delivered");
            blocking(&store, move |s| s.delivery_done(id)).await
        }
        Err(DeliveryError::Retry(e)) => {
            let at = now() + config.retry.backoff(attempts).as_secs_f64();
            tracing::warn!(delivery = id, plugin = %d.plugin, attempts, error = %e, retry_in_s = at - now(), "notification not delivered; will retry");
            let e = e.clone();
            blocking(&store, move |s| s.delivery_failed(id, &e, Some(at))).await
        }
        Err(DeliveryError::Permanent(e)) => {
            tracing::error!(delivery = id, plugin = %d.plugin, error = %e, "notification refused; giving up");
            let e = e.clone();
            blocking(&store, move |s| s.delivery_failed(id, &e, None)).await
        }
    };
    if let Err(e) = outcome {
        tracing::error!(delivery = id, error = %e, "could not record a notification attempt");
    }
    id
}

async fn send(config: &AlertConfig, plugins: &[Arc<dyn Plugin>], d: &Delivery) -> Result<(), DeliveryError> {
    let plugin = notify::find(plugins, &d.plugin)
        .ok_or_else(|| DeliveryError::Permanent(format!("there is no plugin called {:?} any more", d.plugin)))?;
    let overrides: Settings = serde_json::from_str(&d.settings).unwrap_or_default();
    let settings = action_settings(config, plugin.as_ref(), &overrides)
        .map_err(|e| DeliveryError::Permanent(format!("the {} plugin's settings are not complete: {e}", d.plugin)))?;
    let n: Notification = serde_json::from_str(&d.payload)
        .map_err(|e| DeliveryError::Permanent(format!("the queued notification can't be read: {e}")))?;
    match tokio::time::timeout(ATTEMPT_TIMEOUT, plugin.rule_fired(&n, &settings)).await {
        Ok(result) => result,
        Err(_) => Err(DeliveryError::Retry(format!("no answer within {ATTEMPT_TIMEOUT:?}"))),
    }
}

/// Runs a store call through the store's bridge off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> store::Result<T> + Send + 'static,
) -> store::Result<T> {
    let store = store.clone();
    store::off_thread(move || f(&*store)).await
}
