//! `sentry notify test` (one test message through a plugin, now) and `sentry notify outbox`
//! (what was sent, what is pending, what was given up) and `sentry notify digest` (the daily or
//! weekly report, now).

use std::sync::Arc;

use anyhow::{Result, bail};
use serde_json::json;

use crate::cli::NotifyCommand;
use crate::config::Config;

pub fn run(config: &Config, cmd: NotifyCommand) -> Result<()> {
    match cmd {
        NotifyCommand::Test { project, plugin } => test(config, &project, &plugin),
        NotifyCommand::Outbox { limit, json } => outbox(config, limit, json),
        NotifyCommand::Digest { every } => digest(config, &every),
    }
}

fn links(config: &Config) -> Arc<dyn alerts::Links> {
    Arc::new(crate::serve::DashboardLinks(web::dashboard::Links::new(&config.public_url())))
}

fn digest(config: &Config, every: &str) -> Result<()> {
    let period = if every == "weekly" { alerts::DigestPeriod::Weekly } else { alerts::DigestPeriod::Daily };
    let store = crate::open_store(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let sent = runtime.block_on(alerts::send_digest(store, &config.alert_config(), links(config), period));
    match sent {
        Ok(d) => {
            let new: u64 = d.projects.iter().map(|p| p.new_count).sum();
            let back: u64 = d.projects.iter().map(|p| p.regression_count).sum();
            println!("Sent the {} report of {} project(s): {new} new issue(s), {back} regression(s).", every, d.projects.len());
            Ok(())
        }
        Err(e) => bail!("the {every} report was not sent: {e}"),
    }
}

fn test(config: &Config, project: &str, plugin: &str) -> Result<()> {
    let store = crate::open_store(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let alert_config = config.alert_config();
    let sent = runtime.block_on(alerts::send_test(store, &alert_config, links(config), project, plugin));
    // Let the plugin's connection say goodbye (IRC QUIT) before the runtime goes.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match sent {
        Ok(n) => {
            println!("Sent a test message through the {plugin} plugin:");
            println!("  {}", n.one_line());
            Ok(())
        }
        Err(e) => bail!("the test message through the {plugin} plugin was not delivered: {e}"),
    }
}

fn outbox(config: &Config, limit: usize, as_json: bool) -> Result<()> {
    let store = crate::open_store(config)?;
    let rows = store.deliveries(limit)?;
    if as_json {
        let items: Vec<_> = rows
            .iter()
            .map(|d| {
                json!({
                    "id": d.id, "firing_id": d.firing_id, "action": d.action, "rule": d.rule, "plugin": d.plugin,
                    "group_id": d.group_id, "attempts": d.attempts, "created_at": d.created_at,
                    "next_attempt_at": d.next_attempt_at, "delivered_at": d.delivered_at,
                    "failed_at": d.failed_at, "last_error": d.last_error,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("The outbox is empty: no rule has fired yet.");
    }
    for d in rows {
        let state = match (d.delivered_at, d.failed_at) {
            (Some(_), _) => "delivered".to_string(),
            (_, Some(_)) => format!("given up: {}", d.last_error.as_deref().unwrap_or("")),
            _ => match &d.last_error {
                Some(e) => format!("pending (attempt {} failed: {e})", d.attempts),
                None => "pending".to_string(),
            },
        };
        println!("#{} rule {:?} → {} for group {}: {state}", d.id, d.rule, d.plugin, d.group_id);
    }
    Ok(())
}
