//! The `sentry` server's library half: config file, command line and wiring, so the
//! integration tests and the binary share them. Only this crate knows the config file, the
//! command line and signals.

mod admin;
mod capture;
mod cluster;
mod monitors;
pub mod cli;
pub mod config;
mod notify_cmd;
mod orgs;
mod serve;
mod users;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use cli::{Cli, Command, ConfigCommand};
use config::{Config, ConfigError};

/// Runs one command.
pub fn run(cli: Cli) -> Result<()> {
    let explicit = cli.config.is_some();
    let path = cli.config.clone().unwrap_or_else(config::default_config_path);
    match cli.command {
        Command::Init => admin::init(&path),
        Command::Start(args) => serve::start(&path, args),
        Command::Stop => serve::stop(&load(&path, explicit)?),
        Command::Upgrade => admin::upgrade(&load(&path, explicit)?),
        Command::MigrateStore { to } => admin::migrate_store(&load(&path, explicit)?, &to),
        Command::Config(ConfigCommand::Check) => {
            let config = Config::load(&path)?;
            println!("{} is valid.", path.display());
            println!("  listens on {}, data in {}", config.bind, config.data_dir.display());
            let plugins: Vec<&str> = config.alerts.plugins.iter().map(|p| p.name.as_str()).collect();
            println!(
                "  notifications: {} rule(s); plugins set up: {}",
                config.alerts.rules.len(),
                if plugins.is_empty() { "none".to_string() } else { plugins.join(", ") }
            );
            check_project_slugs(&path, &config)
        }
        Command::Project(cmd) => admin::project(&load(&path, explicit)?, cmd),
        Command::Key(cmd) => admin::key(&load(&path, explicit)?, cmd),
        Command::User(cmd) => users::user(&load(&path, explicit)?, cmd),
        Command::Org(cmd) => orgs::org(&load(&path, explicit)?, cmd),
        Command::Team(cmd) => orgs::team(&load(&path, explicit)?, cmd),
        Command::Member(cmd) => orgs::member(&load(&path, explicit)?, cmd),
        Command::Token(cmd) => orgs::token(&load(&path, explicit)?, cmd),
        Command::Groups(args) => admin::groups(&load(&path, explicit)?, args),
        Command::Events(args) => admin::events(&load(&path, explicit)?, args),
        Command::Assign(args) => admin::assign(&load(&path, explicit)?, args),
        Command::Feedback(args) => admin::feedback(&load(&path, explicit)?, args),
        Command::Releases(args) => admin::releases(&load(&path, explicit)?, args),
        Command::Logs(args) => admin::logs(&load(&path, explicit)?, args),
        Command::Monitors(args) => admin::monitors(&load(&path, explicit)?, args),
        Command::Capture(args) => capture::capture(args),
        Command::Cleanup { days } => admin::cleanup(&load(&path, explicit)?, days),
        Command::Notify(cmd) => notify_cmd::run(&load(&path, explicit)?, cmd),
    }
}

/// `sentry config check`, last part: warns (on standard error, without failing) about each
/// `[projects.<slug>]` and rule `project = "<slug>"` whose slug names no project in the store.
/// Without a data store yet there is nothing to compare with, and it says so.
fn check_project_slugs(path: &Path, config: &Config) -> Result<()> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mentions = config::slugs::slug_mentions(&text);
    if mentions.is_empty() {
        return Ok(());
    }
    if config.store.backend == config::Backend::Sqlite && !config.sqlite_path().exists() {
        println!(
            "  project slugs not checked: there is no data yet ({} does not exist)",
            config.sqlite_path().display()
        );
        return Ok(());
    }
    let store = open_store(config)?;
    let slugs: Vec<String> = store.projects()?.into_iter().map(|p| p.slug).collect();
    let known = if slugs.is_empty() { "none yet".to_string() } else { slugs.join(", ") };
    for m in mentions.iter().filter(|m| !slugs.contains(&m.slug)) {
        eprintln!("warning: {}:{}: {} names no project; the projects are: {known}", path.display(), m.line, m.written);
    }
    Ok(())
}

/// The config for commands that need one: the file if it exists; without a file (and without
/// `--config`), the defaults and `SENTRY_*` variables.
fn load(path: &Path, explicit: bool) -> Result<Config> {
    match Config::load(path) {
        Ok(c) => Ok(c),
        Err(ConfigError::Missing { .. }) if !explicit => Ok(Config::defaults_with_env(&process_env())?),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn process_env() -> Vec<(String, String)> {
    std::env::vars().collect()
}

/// Opens the store of a config, applying migrations: the one place that chooses a backend.
pub(crate) fn open_store(config: &Config) -> Result<std::sync::Arc<dyn store::Store>> {
    match (config.store.backend, &config.store.postgres_url) {
        (config::Backend::Postgres, Some(url)) => store::open(&store::Backend::Postgres { url: url.clone() })
            .with_context(|| format!("opening the data store {}", config.store_name())),
        _ => {
            let path: PathBuf = config.sqlite_path();
            store::open(&store::Backend::Sqlite { path: path.clone() })
                .with_context(|| format!("opening the data store {}", path.display()))
        }
    }
}
