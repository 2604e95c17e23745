//! The command line: every command and flag, with the help a newcomer reads.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Sentry: a self-hosted error tracker. Applications send it errors, log messages and slow
/// queries; it groups them into issues and shows them on a dashboard.
#[derive(Parser, Debug)]
#[command(name = "sentry", version, propagate_version = true)]
pub struct Cli {
    /// The config file to use (default: ~/.sentry/sentry.toml).
    #[arg(long, global = true, env = "SENTRY_CONF", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a commented config file, create the data directory and a first project, and print
    /// its DSN.
    Init,
    /// Start the server (creating a config first if there is none).
    Start(StartArgs),
    /// Stop a server started in the background.
    Stop,
    /// Bring the data store up to date with this version (start does this too).
    Upgrade,
    /// Check the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create and list projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Create, list and revoke client keys (the key part of a DSN).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Create users who log in to the web dashboard.
    #[command(subcommand)]
    User(UserCommand),
    /// List the groups (issues) of a project.
    Groups(GroupsArgs),
    /// List the events of a group, newest first.
    Events(EventsArgs),
    /// Send one event to a running server, like an application would.
    Capture(CaptureArgs),
    /// Delete events older than the retention period, and issues not seen since (the server
    /// also does this every hour).
    Cleanup {
        /// Keep this many days (default: the config's retention.days).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Notifications: send a test message, look at the outbox.
    #[command(subcommand)]
    Notify(NotifyCommand),
}

#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Send a test message through a plugin, with its [plugins.NAME] settings, and say whether
    /// it was delivered.
    Test {
        /// The project's slug (see `sentry project list`).
        #[arg(long, value_name = "SLUG")]
        project: String,
        /// email, irc, webhook, xmpp, matrix, growl, pagerduty, opsgenie, ntfy or exec.
        #[arg(long, value_name = "NAME")]
        plugin: String,
    },
    /// Mail the report of the last day or week (new issues, regressions, busiest issues, slowest
    /// queries) through [plugins.email], now.
    Digest {
        /// daily (the last 24 hours) or weekly (the last 7 days).
        #[arg(long, default_value = "daily", value_parser = ["daily", "weekly"])]
        every: String,
    },
    /// List the newest notifications in the outbox: delivered, pending or given up.
    Outbox {
        /// Show at most this many notifications.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Stay in the foreground and log to the terminal instead of detaching.
    #[arg(long)]
    pub no_daemon: bool,
    /// Log in detail (debug level).
    #[arg(long)]
    pub debug: bool,
    /// Address and port to listen on, for example 0.0.0.0:9000 (overrides the config file).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate the config file; exits with an error that names the file and line if it is wrong.
    Check,
}

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// Create a project and print its DSN.
    Create {
        /// The project's name; its slug is derived from it.
        name: String,
        /// Print JSON: {"id", "slug", "dsn"}.
        #[arg(long)]
        json: bool,
    },
    /// List projects with their DSNs.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create another client key for a project and print its DSN.
    Create {
        /// The project's slug (see `sentry project list`).
        #[arg(long, value_name = "SLUG")]
        project: String,
        /// A name to remember the key by.
        #[arg(long)]
        label: Option<String>,
        /// Events per minute this key may send (default: the config's rate_limits.per_key_per_minute).
        #[arg(long, value_name = "N")]
        rate_limit: Option<u64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List a project's keys, revoked ones included.
    List {
        /// The project's slug (see `sentry project list`).
        #[arg(long, value_name = "SLUG")]
        project: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: events sent with it are refused from then on.
    Revoke {
        /// The public key (the part before @ in the DSN).
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user of the web dashboard; asks for the password.
    Create {
        /// The email address the user logs in with.
        email: String,
        /// Make the user an administrator (can manage users).
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's new password; the old one stops working and the user's sessions end.
    Passwd {
        /// The email address the user logs in with.
        email: String,
        /// Read the new password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users.
    List,
}

#[derive(Args, Debug)]
pub struct GroupsArgs {
    /// The project's slug (see `sentry project list`).
    #[arg(long, value_name = "SLUG")]
    pub project: String,
    /// Order: last_seen, first_seen, frequency, time_spent, total_time_spent or priority.
    #[arg(long, default_value = "last_seen")]
    pub sort: String,
    /// Which groups: unresolved, resolved, ignored or all.
    #[arg(long, default_value = "unresolved")]
    pub status: String,
    /// Show at most this many groups.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// The group id (from `sentry groups`).
    #[arg(long)]
    pub group: i64,
    /// Show at most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CaptureArgs {
    /// The kind of event: Exception, Message, Query, or any name of your own (Deploy, Job, …).
    pub kind: String,
    /// Where to send it: a project's DSN (or set SENTRY_DSN).
    #[arg(long, env = "SENTRY_DSN")]
    pub dsn: String,
    /// A field of the event, KEY=VALUE. Query: query=…, engine=…; Exception: type=…, value=….
    #[arg(long = "field", value_name = "KEY=VALUE")]
    pub fields: Vec<String>,
    /// A tag, KEY=VALUE (server, logger, url, …).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// How long it took, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub time_spent: Option<f64>,
    /// debug, info, warning, error or fatal.
    #[arg(long)]
    pub level: Option<String>,
    /// The message text.
    #[arg(long)]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every option and argument of every command says what it is for in `--help`.
    #[test]
    fn every_option_has_a_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && !matches!(arg.get_id().as_str(), "help" | "version") {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "sentry", &mut missing);
        assert!(missing.is_empty(), "options without a help text: {missing:?}");
    }
}
