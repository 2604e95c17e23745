//! The config file `sentry.toml`: declared once, validated strictly, overridden by `SENTRY_*`.
//!
//! Layers, lowest first: defaults < the file < `SENTRY_*` environment variables (< command-line
//! flags, which the CLI applies to the returned [`Config`]). Every key is declared once, in
//! [`declare::KEYS`]; that table drives parsing, the environment variable names, the "valid keys"
//! lists in errors and the commented reference file that `sentry init` writes
//! ([`reference_toml`]). Nothing reads the config from a global: [`Config`] is passed explicitly.

mod declare;
mod errors;
mod load;
mod notify;
pub mod projects;
mod reference;
pub mod slugs;
#[cfg(test)]
mod tests;
mod value;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use errors::ConfigError;
pub use notify::AlertsConfig;
pub use reference::reference_toml;

/// The whole configuration, validated. Every field has a default ([`Config::default`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// Address and port the HTTP server listens on.
    pub bind: SocketAddr,
    /// Public base URL used in DSNs and links; `None` means `http://{bind}`. See [`Config::public_url`].
    pub url: Option<String>,
    /// Reverse proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Directory for the database, the log file and the pid file.
    pub data_dir: PathBuf,
    /// How much the server logs.
    pub log_level: LogLevel,
    /// `[store]`: where events are kept.
    pub store: StoreConfig,
    /// `[redis]`: what several nodes share besides the database.
    pub redis: RedisConfig,
    /// `[limits]`: size limits for what clients send.
    pub limits: LimitsConfig,
    /// `[ingest]`: the queue between the HTTP edge and the disk writer.
    pub ingest: IngestConfig,
    /// `[rate_limits]`: default rate limits.
    pub rate_limits: RateLimitConfig,
    /// `[retention]`: how long events are kept.
    pub retention: RetentionConfig,
    /// `[monitors]`: how often cron monitors are checked for missed check-ins.
    pub monitors: MonitorsConfig,
    /// `[projects.<slug>]`: per-project dashboard settings (see [`projects`]).
    pub projects: projects::ProjectsConfig,
    /// `[notify]`: how notifications are retried.
    pub notify: NotifyConfig,
    /// `[plugins.<name>]` and `[[rules]]` (read by `config/notify.rs`, not the key table).
    #[serde(skip)]
    pub alerts: AlertsConfig,
}

/// `[notify]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NotifyConfig {
    /// Seconds before the second attempt of a failed delivery; doubled after each failure.
    pub retry_initial_seconds: u64,
    /// The longest wait between two attempts, in seconds.
    pub retry_max_seconds: u64,
    /// Hours after which an undelivered notification is given up.
    pub expire_hours: u64,
    /// How often the digest mail goes out.
    pub digest: Digest,
}

/// `[redis]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RedisConfig {
    /// `redis://host:port`: rate limits and live updates shared by the nodes; unset, each
    /// node keeps its own.
    pub url: Option<String>,
}

/// `[store]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreConfig {
    /// Which database holds the data.
    pub backend: Backend,
    /// SQLite database file; `None` means `data_dir/sentry.db`. See [`Config::sqlite_path`].
    pub sqlite_path: Option<PathBuf>,
    /// Connection URL for PostgreSQL (when `backend` is postgres).
    pub postgres_url: Option<String>,
    /// The most bytes the data may take (0: no cap); past it the oldest events go.
    pub max_bytes: u64,
    /// With PostgreSQL: how long a node holds the received events it took from the shared
    /// queue before another node may take them (when the first one died).
    pub queue_lease_secs: u64,
}

/// `[limits]`; turned into [`protocol::Limits`] by [`Config::protocol_limits`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    pub max_event_bytes: usize,
    pub max_attachment_bytes: usize,
    pub max_json_depth: usize,
    pub max_envelope_items: usize,
    /// Connections open at once.
    pub max_connections: usize,
    /// Password checks (logins, password changes) run at once.
    pub max_login_hashes: usize,
}

/// `[ingest]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IngestConfig {
    /// Acknowledged events waiting in the spool to be stored before ingest answers 503.
    pub queue_capacity: usize,
    /// Bytes of acknowledged records the spool may hold before ingest answers 503.
    pub spool_max_bytes: u64,
    /// The size of one spool file.
    pub spool_segment_bytes: u64,
    /// Most events written in one database transaction.
    pub batch_max: usize,
    /// Bytes of request bodies and queued events held in memory before ingest answers 503.
    pub max_inflight_bytes: usize,
    /// Seconds allowed for a request's headers, and again for its body.
    pub request_timeout_secs: u64,
    /// What happens to attachment items.
    pub attachments: Attachments,
    /// Logs accepted per second by this node (0: unlimited).
    pub max_logs_per_second: u64,
}

/// `[rate_limits]`; 0 means unlimited.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateLimitConfig {
    pub per_key_per_minute: u64,
    pub per_project_per_minute: u64,
}

/// `[retention]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetentionConfig {
    /// Days events are kept; 0 keeps them forever.
    pub days: u32,
    /// Days logs are kept; 0 keeps them forever.
    pub logs_days: u32,
}

/// `[monitors]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonitorsConfig {
    /// Seconds between two looks for missed check-ins, runs past their time and failures.
    pub check_interval_secs: u64,
}

/// Declares a closed enum written as a lowercase string, with its names in declaration order.
macro_rules! choice_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in the same order as [`Self::NAMES`].
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// How each value is written in the config file.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// How this value is written in the config file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

choice_enum! {
    /// How much the server logs.
    LogLevel {
        Error = "error",
        Warn = "warn",
        Info = "info",
        Debug = "debug",
        Trace = "trace",
    }
}

choice_enum! {
    /// Which database holds the data.
    Backend {
        Sqlite = "sqlite",
        /// Parsed, but refused by validation until the PostgreSQL store exists.
        Postgres = "postgres",
    }
}

choice_enum! {
    /// How often the digest mail goes out (`[notify] digest`).
    Digest {
        Off = "off",
        Daily = "daily",
        Weekly = "weekly",
    }
}

impl Digest {
    /// The engine's period, when there is one.
    pub fn period(self) -> Option<alerts::DigestPeriod> {
        match self {
            Digest::Off => None,
            Digest::Daily => Some(alerts::DigestPeriod::Daily),
            Digest::Weekly => Some(alerts::DigestPeriod::Weekly),
        }
    }
}

choice_enum! {
    /// What ingest does with attachment items (`"store"` will come later).
    Attachments {
        Drop = "drop",
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::defaults(&home_dir(&[]))
    }
}

impl Config {
    /// Reads the config file at `path`, then applies `SENTRY_*` variables from the process
    /// environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing { path });
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Config::load_from(&path, &text, &process_env())
    }

    /// Parses `text` (the contents of the file at `path`, which is only used in messages and to
    /// resolve relative paths), then applies the `SENTRY_*` variables in `env`.
    pub fn load_from(
        path: &Path,
        text: &str,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut config = Config::defaults(&home_dir(env));
        let mut origins = load::Origins::default();
        load::apply_file(&mut config, &mut origins, path, text, env)?;
        load::apply_env(&mut config, &mut origins, env)?;
        load::check(&config, &origins)?;
        Ok(config)
    }

    /// The defaults with the `SENTRY_*` variables in `env` applied, for running without a file.
    pub fn defaults_with_env(env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut config = Config::defaults(&home_dir(env));
        let mut origins = load::Origins::default();
        load::apply_env(&mut config, &mut origins, env)?;
        load::check(&config, &origins)?;
        Ok(config)
    }

    /// The base URL clients and links use: `url` if set, else `http://{bind}`; no trailing slash.
    pub fn public_url(&self) -> String {
        match &self.url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.bind),
        }
    }

    /// The SQLite database file: `store.sqlite_path`, else `data_dir/sentry.db`.
    pub fn sqlite_path(&self) -> PathBuf {
        match &self.store.sqlite_path {
            Some(path) => path.clone(),
            None => self.data_dir.join("sentry.db"),
        }
    }

    /// The data store in words, for messages: the SQLite file, or the PostgreSQL URL without
    /// its password.
    pub fn store_name(&self) -> String {
        match (self.store.backend, &self.store.postgres_url) {
            (Backend::Postgres, Some(url)) => format!("PostgreSQL {}", without_password(url)),
            _ => self.sqlite_path().display().to_string(),
        }
    }

    /// The `[limits]` section as the protocol crate wants it.
    pub fn protocol_limits(&self) -> protocol::Limits {
        let l = &self.limits;
        protocol::Limits {
            max_body_bytes: l.max_body_bytes,
            max_decompressed_bytes: l.max_decompressed_bytes,
            max_event_bytes: l.max_event_bytes,
            max_attachment_bytes: l.max_attachment_bytes,
            max_json_depth: l.max_json_depth,
            max_envelope_items: l.max_envelope_items,
        }
    }

    /// The notification engine's settings: plugins, rules and retries.
    pub fn alert_config(&self) -> alerts::AlertConfig {
        let n = &self.notify;
        alerts::AlertConfig {
            plugins: self.alerts.plugins.clone(),
            rules: self.alerts.rules.clone(),
            retry: alerts::RetryPolicy {
                initial: std::time::Duration::from_secs(n.retry_initial_seconds),
                max: std::time::Duration::from_secs(n.retry_max_seconds.max(n.retry_initial_seconds)),
                expire: std::time::Duration::from_secs(n.expire_hours * 3600),
            },
            digest: n.digest.period(),
        }
    }

    /// Where the daemon writes its log: `data_dir/sentry.log`.
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join("sentry.log")
    }

    /// Held by the running server: `data_dir/sentry.lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.data_dir.join("sentry.lock")
    }

    /// Where acknowledged events wait to be stored: `data_dir/spool`.
    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("spool")
    }

    /// Where the daemon writes its process id: `data_dir/sentry.pid`.
    pub fn pid_file(&self) -> PathBuf {
        self.data_dir.join("sentry.pid")
    }

    /// The defaults, with `~` in the default data directory meaning `home`.
    fn defaults(home: &Path) -> Config {
        let limits = protocol::Limits::default();
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 9000)),
            url: None,
            trusted_proxies: Vec::new(),
            data_dir: home.join(".sentry").join("data"),
            log_level: LogLevel::Info,
            store: StoreConfig {
                backend: Backend::Sqlite,
                sqlite_path: None,
                postgres_url: None,
                max_bytes: 0,
                queue_lease_secs: 30,
            },
            redis: RedisConfig { url: None },
            limits: LimitsConfig {
                max_body_bytes: limits.max_body_bytes,
                max_decompressed_bytes: limits.max_decompressed_bytes,
                max_event_bytes: limits.max_event_bytes,
                max_attachment_bytes: limits.max_attachment_bytes,
                max_json_depth: limits.max_json_depth,
                max_envelope_items: limits.max_envelope_items,
                max_connections: web::serve::MAX_CONNECTIONS,
                max_login_hashes: web::dashboard::auth::HASH_SLOTS,
            },
            ingest: IngestConfig {
                queue_capacity: 1_000_000,
                spool_max_bytes: 1 << 30,
                spool_segment_bytes: 4 << 20,
                batch_max: 2_000,
                max_inflight_bytes: 128 * 1024 * 1024,
                request_timeout_secs: 30,
                attachments: Attachments::Drop,
                max_logs_per_second: 5_000,
            },
            rate_limits: RateLimitConfig {
                per_key_per_minute: 0,
                per_project_per_minute: 0,
            },
            retention: RetentionConfig { days: 90, logs_days: 30 },
            monitors: MonitorsConfig { check_interval_secs: 15 },
            notify: NotifyConfig {
                retry_initial_seconds: 10,
                retry_max_seconds: 900,
                expire_hours: 24,
                digest: Digest::Off,
            },
            alerts: AlertsConfig::default(),
            projects: Default::default(),
        }
    }
}

/// Addresses and CIDR ranges separated by commas (an address is a range of one); `Err` names
/// the first part that is neither.
pub fn parse_networks(text: &str) -> Result<Vec<ipnet::IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| part.to_string())
        })
        .collect()
}

/// An address to listen on: `IP:PORT`, or a host name and a port (`localhost:9000`), which is
/// looked up and becomes its first IPv4 address (else its first address). `None`: neither.
pub fn parse_bind(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse() {
        return Some(addr);
    }
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).ok()?.collect();
    addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied()
}

/// Where `sentry` looks for its config file unless told otherwise: `~/.sentry/sentry.toml`.
pub fn default_config_path() -> PathBuf {
    home_dir(&[]).join(".sentry").join("sentry.toml")
}

/// `$HOME` from `env` if it is there, else from the process; the current directory without one.
fn home_dir(env: &[(String, String)]) -> PathBuf {
    let from_env = env
        .iter()
        .rev()
        .find(|(k, _)| k == "HOME")
        .map(|(_, v)| v.clone());
    match from_env.or_else(|| std::env::var("HOME").ok()) {
        Some(home) if !home.is_empty() => PathBuf::from(home),
        _ => PathBuf::from("."),
    }
}

/// Expands a leading `~` to `home`.
fn expand_home(path: &str, home: &Path) -> PathBuf {
    if path == "~" {
        home.to_path_buf()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(path)
    }
}

/// The process environment's `SENTRY_*` variables and `HOME`, as `load_from` takes them.
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("SENTRY_") || k == "HOME")
        .collect()
}

/// A connection URL fit for a log line: its password replaced by `***`.
pub(crate) fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
