//! A real Rust application using the real `sentry` crate, for the real-client tests.
//!
//! Usage: `SENTRY_DSN=http://KEY@127.0.0.1:PORT/ID rust-client SCENARIO`
//!
//! Scenarios (each flushes before it exits; see `crates/server/tests/it/clients.rs`):
//! - `panic`: a panic on a worker thread, caught by the panic integration (level fatal).
//! - `capture-error`: `sentry::capture_error` on an error whose source is an `io::Error`.
//! - `message`: `sentry::capture_message` at warning level with a scope tag.
//! - `log`: `log::error!` through `sentry::integrations::log::SentryLogger`.
//! - `tracing`: `tracing::error!` inside span `load_batch` through the `sentry` tracing layers
//!   (an error event, and the span as a transaction).
//! - `transaction`: a transaction `GET /orders` with a db child span and a serialize span.
//! - `session-ok`, `session-crash`: release health with `auto_session_tracking`: one run
//!   that ends well, one that a panic on a worker thread crashes.
use std::{env, thread, time::Duration};

use anyhow::{Context, bail};
use tracing_subscriber::prelude::*;

/// The release, environment and server name every scenario reports; the tests assert on them.
pub const RELEASE: &str = "shop@1.2.3";
pub const ENVIRONMENT: &str = "production";
pub const SERVER_NAME: &str = "web-1";

#[derive(Debug)]
struct ConfigError {
    path: String,
    source: std::io::Error,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config {} unavailable", self.path)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn load_config(path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError {
        path: path.to_string(),
        source,
    })
}

fn process_order(items: &[&str]) -> String {
    items[3].to_string() // index out of bounds: panics
}

fn main() -> anyhow::Result<()> {
    let scenario = env::args()
        .nth(1)
        .context("usage: rust-client SCENARIO (env SENTRY_DSN)")?;
    let dsn = env::var("SENTRY_DSN").context("SENTRY_DSN is not set")?;

    let mut opts = sentry::ClientOptions::new()
        .dsn(dsn.as_str())
        .release(RELEASE)
        .environment(ENVIRONMENT)
        .server_name(SERVER_NAME)
        .send_default_pii(true)
        .shutdown_timeout(Duration::from_secs(10));
    if matches!(scenario.as_str(), "transaction" | "tracing") {
        opts = opts.traces_sample_rate(1.0);
    }
    if scenario.starts_with("session-") {
        opts.auto_session_tracking = true;
    }
    if opts.dsn.is_none() {
        bail!("SENTRY_DSN {dsn:?} is not a valid DSN");
    }

    match scenario.as_str() {
        "log" => {
            log::set_boxed_logger(Box::new(sentry::integrations::log::SentryLogger::new()))
                .context("installing the logger")?;
            log::set_max_level(log::LevelFilter::Info);
        }
        "tracing" => {
            // The split layers the 0.49 docs recommend: span -> transaction, ERROR -> event,
            // INFO/WARN -> breadcrumbs.
            use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer, SpanLayer};
            use tracing_subscriber::filter::LevelFilter;
            let subscriber = tracing_subscriber::registry()
                .with(SpanLayer::new().with_filter(LevelFilter::INFO))
                .with(ErrorLayer::new().with_filter(LevelFilter::ERROR))
                .with(BreadcrumbLayer::new().with_filter(LevelFilter::INFO));
            tracing::subscriber::set_global_default(subscriber)
                .context("installing the tracing subscriber")?;
        }
        _ => {}
    }

    let guard = sentry::init(opts);
    sentry::configure_scope(|scope| {
        scope.set_tag("component", "rust-worker");
        scope.set_user(Some(sentry::User {
            id: Some("42".into()),
            email: Some("alice@example.com".into()),
            ..Default::default()
        }));
    });

    match scenario.as_str() {
        "session-ok" => {}
        "session-crash" => {
            let worker = thread::Builder::new()
                .name("order-worker".into())
                .spawn(|| process_order(&["a"]))
                .context("spawning the worker")?;
            let _ = worker.join();
        }
        "panic" => {
            sentry::add_breadcrumb(sentry::Breadcrumb {
                category: Some("cart".into()),
                message: Some("cart loaded".into()),
                ..Default::default()
            });
            // The panic integration captures it in the panic hook; main keeps the guard alive.
            let worker = thread::Builder::new()
                .name("order-worker".into())
                .spawn(|| process_order(&["a", "b"]))
                .context("spawning the worker")?;
            let _ = worker.join();
        }
        "capture-error" => {
            let err = load_config("/etc/shop/missing.toml").unwrap_err();
            sentry::capture_error(&err);
        }
        "message" => {
            sentry::configure_scope(|s| s.set_tag("customer_tier", "gold"));
            sentry::capture_message("hello from rust", sentry::Level::Warning);
        }
        "log" => {
            log::info!("worker started pid={}", 4242);
            log::warn!(target: "billing", "retrying charge for order {} (attempt {})", "A-17", 2);
            log::error!(target: "billing", "Failed to charge order {} for customer {}", "A-17", "alice");
        }
        "tracing" => {
            let span = tracing::info_span!("load_batch", batch_id = 7, size = 3);
            let _entered = span.enter();
            tracing::info!(order = "A-17", "loaded order");
            tracing::warn!(attempt = 2, "retrying charge");
            thread::sleep(Duration::from_millis(5));
            tracing::error!(order = "A-17", customer = "alice", "Failed to charge order");
        }
        "transaction" => {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "GET /orders",
                "http.server",
            ));
            tx.set_tag("warehouse", "berlin");
            let db = tx.start_child("db.query", "SELECT * FROM orders WHERE id = 42");
            db.set_data("db.system", "postgresql".into());
            thread::sleep(Duration::from_millis(30));
            db.finish();
            let ser = tx.start_child("serialize", "encode rows");
            thread::sleep(Duration::from_millis(5));
            ser.finish();
            tx.set_status(sentry::protocol::SpanStatus::Ok);
            tx.finish();
        }
        other => {
            drop(guard);
            bail!(
                "unknown scenario {other:?}; known: panic, capture-error, message, log, tracing, transaction, session-ok, session-crash"
            );
        }
    }

    // Dropping the guard flushes the transport (up to shutdown_timeout).
    if !guard.flush(Some(Duration::from_secs(10))) {
        bail!("the sentry transport did not flush within 10 s");
    }
    drop(guard);
    Ok(())
}
