//! The notification engine: alert rules turn what the store recorded into deliveries in the
//! outbox, and a delivery loop claims them (with a lease, so several processes can share one
//! outbox) and hands them to plugins, retrying with backoff. It spells no dashboard URL: the
//! links in notifications come from [`Links`], given at wiring.
//!
//! Path of a notification:
//! 1. The writer commits a batch; `group_activity` has its `created` / `regression` rows, in the
//!    same transaction as the events.
//! 2. The ingest pipeline's broadcast of stored events wakes the rules task ([`rules`]); a one-second tick covers a
//!    missed wake-up. It reads the activity after its persisted cursor, and checks frequency and
//!    p95 rules for the groups the batch touched.
//! 3. A rule that matches (project, level, tags) and is not throttled for the group fires: one
//!    outbox row per action, the throttle mark and the cursor are committed together.
//! 4. The delivery task ([`deliver`]) claims what is due and sends it through the plugin; success marks the
//!    row delivered, a temporary failure schedules the next attempt (doubling, capped), a
//!    permanent one or the expiry time gives up. A restart makes every pending row due again.
//!
//! With `[notify] digest` set, a third task ([`digest`]) mails a daily or weekly report.

mod deliver;
mod digest;
mod owners;
mod rules;

pub use digest::DigestPeriod;

use std::sync::Arc;
use std::time::Duration;

use notify::{Notification, Plugin, Settings};
use store::{GroupId, Level, Store, StoredEvent};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;

/// Links to the dashboard's pages, for notifications. The web crate's route table provides them.
pub trait Links: Send + Sync {
    /// The page of a group (issue).
    fn issue(&self, project_slug: &str, group: GroupId) -> String;
    /// The page of a project's stream.
    fn project(&self, project_slug: &str) -> String;
}

/// Everything the engine is configured with (from `[plugins.*]`, `[[rules]]` and `[notify]`).
#[derive(Clone, Debug, PartialEq)]
pub struct AlertConfig {
    pub plugins: Vec<PluginSpec>,
    pub rules: Vec<RuleSpec>,
    pub retry: RetryPolicy,
    /// Mail a digest through the email plugin this often (`[notify] digest`).
    pub digest: Option<DigestPeriod>,
}

/// A `[plugins.<name>]` section: the plugin's settings as written (actions may add to them).
#[derive(Clone, Debug, PartialEq)]
pub struct PluginSpec {
    pub name: String,
    pub settings: Settings,
}

/// One `[[rules]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// Unique; names the throttle state and appears in messages.
    pub name: String,
    /// The project's slug.
    pub project: String,
    pub when: When,
    /// Only groups at this level or above (debug < info < warning < error < fatal).
    pub level: Option<Level>,
    /// Only events carrying every one of these tags.
    pub tags: Vec<(String, String)>,
    pub actions: Vec<ActionSpec>,
    /// At most one firing per group in this many minutes.
    pub throttle_minutes: u64,
}

/// What makes a rule fire.
#[derive(Clone, Debug, PartialEq)]
pub enum When {
    NewGroup,
    Regression,
    /// More than `count` events in the last `minutes` minutes.
    Frequency { count: u64, minutes: u64 },
    /// A Query or Transaction group's p95 duration above `p95_ms`.
    Slow { p95_ms: f64 },
    /// A cron monitor's run failed (missed, timed out, or checked in as an error): each new
    /// event of a monitor issue.
    MonitorFailed,
}

impl When {
    pub fn name(&self) -> &'static str {
        match self {
            When::NewGroup => "new_group",
            When::Regression => "regression",
            When::Frequency { .. } => "frequency",
            When::Slow { .. } => "slow",
            When::MonitorFailed => "monitor_failed",
        }
    }
}

/// One action of a rule: a plugin, with settings laid over its `[plugins.<name>]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionSpec {
    pub plugin: String,
    pub settings: Settings,
}

/// How deliveries are retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt; doubled after each further one.
    pub initial: Duration,
    /// The longest wait between attempts.
    pub max: Duration,
    /// Given up this long after the firing.
    pub expire: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { initial: Duration::from_secs(10), max: Duration::from_secs(900), expire: Duration::from_secs(24 * 3600) }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt (1-based).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// The effective settings of an action: its plugin's section with the action's own settings
/// laid over it, checked and completed by the plugin.
pub fn action_settings(config: &AlertConfig, plugin: &dyn Plugin, overrides: &Settings) -> Result<Settings, String> {
    let mut merged = config.plugins.iter().find(|p| p.name == plugin.name()).map(|p| p.settings.clone()).unwrap_or_default();
    for (k, v) in overrides {
        merged.insert(k.clone(), v.clone());
    }
    notify::check_settings(plugin, &merged).map_err(|e| e.problem)
}

/// The running engine: a rules task and a delivery task.
pub struct Alerts {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts the engine with the built-in plugins. `wakeups` is the ingest pipeline's broadcast
/// of stored events.
pub fn start(
    store: Arc<dyn Store>,
    wakeups: broadcast::Receiver<Arc<Vec<StoredEvent>>>,
    config: AlertConfig,
    links: Arc<dyn Links>,
) -> Alerts {
    start_with_plugins(store, wakeups, config, links, notify::registry())
}

/// [`start`] with a list of plugins of one's own.
pub fn start_with_plugins(
    store: Arc<dyn Store>,
    wakeups: broadcast::Receiver<Arc<Vec<StoredEvent>>>,
    config: AlertConfig,
    links: Arc<dyn Links>,
    plugins: Vec<Arc<dyn Plugin>>,
) -> Alerts {
    let config = Arc::new(config);
    let (stop, stopped) = watch::channel(false);
    let queued = Arc::new(Notify::new());
    let rules = tokio::spawn(rules::run(
        store.clone(),
        wakeups,
        config.clone(),
        links.clone(),
        plugins.clone(),
        queued.clone(),
        stopped.clone(),
    ));
    let mut tasks = vec![rules];
    if let Some(period) = config.digest {
        tasks.push(tokio::spawn(digest::run(store.clone(), config.clone(), links.clone(), plugins.clone(), period, stopped.clone())));
    }
    tasks.push(tokio::spawn(deliver::run(store, config, plugins, queued, stopped)));
    Alerts { stop, tasks }
}

impl Alerts {
    /// Queues what the last events caused, lets deliveries in flight finish (a few seconds at
    /// most), and stops. What is still pending stays in the outbox for the next start.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// `sentry notify test`: sends one test message for `project` through `plugin_name`, with
/// the plugin's section as settings, now, without the outbox. Uses the project's latest group
/// when it has one.
pub async fn send_test(
    store: Arc<dyn Store>,
    config: &AlertConfig,
    links: Arc<dyn Links>,
    project: &str,
    plugin_name: &str,
) -> Result<Notification, String> {
    let plugins = notify::registry();
    let plugin = notify::find(&plugins, plugin_name).ok_or_else(|| {
        let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
        format!("there is no plugin called {plugin_name:?}; the plugins are: {}", names.join(", "))
    })?;
    let settings = action_settings(config, plugin.as_ref(), &Settings::new())
        .map_err(|e| format!("[plugins.{plugin_name}] is not complete: {e}"))?;
    let slug = project.to_string();
    let n = store::off_thread(move || Ok::<_, store::StoreError>(rules::test_notification(&*store, &slug, &*links)))
        .await
        .map_err(|e| e.to_string())??;
    plugin.rule_fired(&n, &settings).await.map_err(|e| e.to_string())?;
    Ok(n)
}

/// `sentry notify digest`: mails the digest of the period that ends now through the email
/// plugin, at once.
pub async fn send_digest(store: Arc<dyn Store>, config: &AlertConfig, links: Arc<dyn Links>, period: DigestPeriod) -> Result<notify::Digest, String> {
    digest::send(store, config, links, &notify::registry(), period, store::now()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy { initial: Duration::from_secs(2), max: Duration::from_secs(60), expire: Duration::from_secs(600) };
        let waits: Vec<u64> = (1..=7).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.backoff(1000).as_secs(), 60);
    }
}
