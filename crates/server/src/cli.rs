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
    /// Copy everything from this installation's SQLite file into a PostgreSQL database, to run
    /// on PostgreSQL from then on. Stop the server first. If it is interrupted, run it again: it
    /// goes on where it stopped. At the end it compares what each table holds in both.
    MigrateStore {
        /// The PostgreSQL database to copy into (it must exist), for example
        /// postgres://sentry:password@localhost/sentry
        #[arg(long, value_name = "URL")]
        to: String,
    },
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
    /// Create and list organisations (they own teams and projects).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Create teams (a project belongs to teams; members see their teams' projects).
    #[command(subcommand)]
    Team(TeamCommand),
    /// Add, list, change and remove the members of an organisation.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Create, list and revoke API tokens (Authorization: Bearer …).
    #[command(subcommand)]
    Token(TokenCommand),
    /// List the groups (issues) of a project.
    Groups(GroupsArgs),
    /// List the events of a group, newest first.
    Events(EventsArgs),
    /// Assign a group (issue) to a member or a team of its organisation, or to nobody; the
    /// people it is assigned to get an email when [plugins.email] is set.
    Assign(AssignArgs),
    /// List what people wrote about problems in a project (user feedback), newest first.
    Feedback(FeedbackArgs),
    /// List a project's releases with their health: sessions reported in the last 14 days, and
    /// how many of them (and of their users) did not crash.
    Releases(ReleasesArgs),
    /// List a project's logs (what apps send with the SDK's logger), newest first.
    Logs(LogsArgs),
    /// List a project's cron monitors (jobs that check in), with their recent runs.
    Monitors(MonitorsArgs),
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
        /// The organisation's slug (default: the first organisation).
        #[arg(long, value_name = "SLUG")]
        org: Option<String>,
        /// The team it belongs to (default: the organisation's first team).
        #[arg(long, value_name = "SLUG")]
        team: Option<String>,
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
    /// Delete a project with its issues and events; its keys stop working at once. Asks you
    /// to type its slug first.
    Delete {
        /// The project's slug (see `sentry project list`).
        slug: String,
        /// Don't ask: delete it (for scripts).
        #[arg(long)]
        yes: bool,
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
        /// Make the user an owner of the organisation (everything, members included).
        #[arg(long)]
        admin: bool,
        /// The organisation the user joins (default: the first one).
        #[arg(long, value_name = "SLUG")]
        org: Option<String>,
        /// Their role there: owner, manager, admin or member (default: owner with --admin,
        /// else member).
        #[arg(long)]
        role: Option<String>,
        /// A team they join (default: the organisation's first team).
        #[arg(long, value_name = "SLUG")]
        team: Option<String>,
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
    /// Delete a user: they can't log in any more, their sessions and tokens end, the issues
    /// assigned to them are unassigned. Asks you to type their email first.
    Delete {
        /// The email address the user logs in with.
        email: String,
        /// Don't ask: delete them (for scripts).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organisation, with a team of the same name; the owner must be a user already.
    Create {
        /// The organisation's name; its slug is derived from it.
        name: String,
        /// The email of its first owner.
        #[arg(long, value_name = "EMAIL")]
        owner: String,
    },
    /// List the organisations.
    List,
    /// Set up single sign-on with an OpenID Connect provider (or turn it off with --off).
    Sso {
        /// The organisation's slug (see `sentry org list`).
        #[arg(long, value_name = "SLUG")]
        org: String,
        /// The provider's issuer URL (its discovery document is at
        /// ISSUER/.well-known/openid-configuration).
        #[arg(long, value_name = "URL", required_unless_present = "off")]
        issuer: Option<String>,
        /// The client id Sentry has at the provider.
        #[arg(long, value_name = "ID", required_unless_present = "off")]
        client_id: Option<String>,
        /// Its secret (the redirect URI to register is PUBLIC_URL/sso/callback).
        #[arg(long, value_name = "SECRET", required_unless_present = "off")]
        client_secret: Option<String>,
        /// Members must sign in through the provider (owners may still use their password).
        #[arg(long)]
        required: bool,
        /// An email domain whose people become members at their first sign-in (repeatable);
        /// without one, only existing members may sign in.
        #[arg(long = "domain", value_name = "DOMAIN")]
        domains: Vec<String>,
        /// The role of a member made by a first sign-in.
        #[arg(long, default_value = "member")]
        role: String,
        /// Turn single sign-on off.
        #[arg(long)]
        off: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TeamCommand {
    /// Create a team in an organisation.
    Create {
        /// The organisation's slug (see `sentry org list`).
        #[arg(long, value_name = "SLUG")]
        org: String,
        /// The team's name; its slug is derived from it.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Add a user to an organisation with a role.
    Add {
        /// The organisation's slug (see `sentry org list`).
        #[arg(long, value_name = "SLUG")]
        org: String,
        /// The user's email (see `sentry user list`).
        email: String,
        /// owner, manager, admin or member.
        #[arg(long, default_value = "member")]
        role: String,
        /// A team of the organisation they join.
        #[arg(long, value_name = "SLUG")]
        team: Option<String>,
    },
    /// Change a member's role.
    Role {
        /// The organisation's slug (see `sentry org list`).
        #[arg(long, value_name = "SLUG")]
        org: String,
        /// The member's email.
        email: String,
        /// owner, manager, admin or member.
        role: String,
    },
    /// Remove a member: they lose access at their next request.
    Remove {
        /// The organisation's slug (see `sentry org list`).
        #[arg(long, value_name = "SLUG")]
        org: String,
        /// The member's email.
        email: String,
    },
    /// List an organisation's members.
    List {
        /// The organisation's slug (see `sentry org list`).
        #[arg(long, value_name = "SLUG")]
        org: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token and print it (it is shown this once).
    Create {
        /// The organisation the token belongs to.
        #[arg(long, value_name = "SLUG")]
        org: String,
        /// Scopes, comma- or space-separated: org:read, project:read, project:write,
        /// project:releases, event:read, event:write, member:read, …
        #[arg(long, value_name = "SCOPES")]
        scopes: String,
        /// A personal token, acting as this member within their role (default: the
        /// organisation's own token).
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
        /// A name to remember it by.
        #[arg(long, default_value = "token")]
        name: String,
    },
    /// List an organisation's tokens, revoked ones included.
    List {
        /// The organisation's slug (see `sentry org list`).
        #[arg(long, value_name = "SLUG")]
        org: String,
    },
    /// Revoke a token: it is refused from its next request.
    Revoke {
        /// The organisation's slug (see `sentry org list`).
        #[arg(long, value_name = "SLUG")]
        org: String,
        /// The token's id (see `sentry token list`).
        id: i64,
    },
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
pub struct AssignArgs {
    /// The group id (from `sentry groups`).
    pub group: i64,
    /// A member's email, `#team` (a team's slug), or `nobody`.
    #[arg(long, value_name = "WHO")]
    pub to: String,
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
pub struct ReleasesArgs {
    /// The project's slug (see `sentry project list`).
    #[arg(long, value_name = "SLUG")]
    pub project: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FeedbackArgs {
    /// The project's slug (see `sentry project list`).
    #[arg(long, value_name = "SLUG")]
    pub project: String,
    /// Show at most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The project's slug (see `sentry project list`).
    #[arg(long, value_name = "SLUG")]
    pub project: String,
    /// Only logs of this level: trace, debug, info, warn, error or fatal.
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<String>,
    /// Words the message contains, and key:value terms for attributes (order_id:7), as in the
    /// dashboard's search box.
    #[arg(long, value_name = "QUERY", default_value = "")]
    pub search: String,
    /// Show at most this many (up to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct MonitorsArgs {
    /// The project's slug (see `sentry project list`).
    #[arg(long, value_name = "SLUG")]
    pub project: String,
    /// Show this many recent runs of each monitor.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
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
