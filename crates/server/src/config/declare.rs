//! The one declaration table of `sentry.toml`: every section and key, its type, its help text
//! and how it is read from and written to a [`Config`]. Parsing, `SENTRY_*` names, the "valid
//! keys" lists in errors and the reference file are all derived from [`SECTIONS`] and [`KEYS`].

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{Attachments, Backend, Config, Digest, LogLevel};

/// A section of the file; `name` is empty for the keys before the first `[section]`.
pub(super) struct Section {
    pub name: &'static str,
    pub help: &'static str,
}

/// One key: where it lives, what it holds, what it means, and how to read and write it.
pub(super) struct Key {
    pub section: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    /// A key that may be left unset (an empty string also means unset).
    pub optional: bool,
    pub help: &'static str,
    pub set: fn(&mut Config, Parsed),
    pub get: fn(&Config) -> Parsed,
}

/// What a key holds, which decides how its value is read and described.
pub(super) enum Kind {
    /// `IP:PORT`.
    Address,
    /// A URL with one of the given schemes.
    Url {
        schemes: &'static [&'static str],
        example: &'static str,
    },
    /// A file or directory; a leading `~` means the home directory.
    Path { example: &'static str },
    /// One of `names`; the ones in `later` are recognised but refused as not available yet.
    Choice {
        names: &'static [&'static str],
        later: &'static [&'static str],
    },
    /// Addresses or CIDR ranges, separated by commas.
    Networks { example: &'static str },
    /// A whole number in `min..=max`; `unit` is said in messages ("bytes", "days", or "").
    Number {
        unit: &'static str,
        min: u64,
        max: u64,
    },
}

/// A value read for a key, before it is stored in the [`Config`].
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Parsed {
    Unset,
    Address(SocketAddr),
    Text(String),
    Path(PathBuf),
    /// Index into the choice's names (and the enum's `ALL`).
    Choice(usize),
    Number(u64),
}

/// The sections in file order. The top level comes first.
pub(super) const SECTIONS: &[Section] = &[
    Section { name: "", help: "" },
    Section {
        name: "store",
        help: "Where events, issues and projects are kept.",
    },
    Section {
        name: "redis",
        help: "What several sentry nodes on one PostgreSQL database share besides it.",
    },
    Section {
        name: "limits",
        help: "Size limits for what SDKs send. A request or event over a limit is refused with \
               HTTP 413 and the SDK drops it. The defaults match Sentry's own limits.",
    },
    Section {
        name: "ingest",
        help: "How incoming events wait to be written to disk.",
    },
    Section {
        name: "rate_limits",
        help: "Default rate limits. An SDK over a limit gets HTTP 429 and backs off. \
               0 means unlimited.",
    },
    Section {
        name: "retention",
        help: "How long events are kept.",
    },
    Section {
        name: "monitors",
        help: "Cron monitors: jobs that check in (sentry_sdk.crons.monitor, Sentry.withMonitor) \
               and become an issue when a check-in is missed, runs too long or fails.",
    },
    Section {
        name: "notify",
        help: "How notifications are retried. Every notification is written to disk before \
               it is sent, and retried until it is delivered or expires. Plugins are set up \
               in [plugins.<name>] sections (email, irc, webhook, xmpp, matrix, growl, pagerduty, opsgenie, ntfy, exec), and alert \
               rules in [[rules]] sections: see the README.",
    },
];

const BYTES: Kind = Kind::Number {
    unit: "bytes",
    min: 1,
    max: i64::MAX as u64,
};
const POSITIVE: Kind = Kind::Number {
    unit: "",
    min: 1,
    max: i64::MAX as u64,
};
const PER_MINUTE: Kind = Kind::Number {
    unit: "",
    min: 0,
    max: i64::MAX as u64,
};

/// Every key, grouped by section in [`SECTIONS`] order (a test checks the grouping).
pub(super) const KEYS: &[Key] = &[
    Key {
        section: "",
        name: "bind",
        kind: Kind::Address,
        optional: false,
        help: "The address and port the server listens on, for SDKs and for the web dashboard. \
               127.0.0.1 accepts connections from this machine only; use 0.0.0.0 to accept them \
               from other machines too.",
        set: |c, v| c.bind = v.address(),
        get: |c| Parsed::Address(c.bind),
    },
    Key {
        section: "",
        name: "url",
        kind: Kind::Url {
            schemes: &["http", "https"],
            example: "https://sentry.example.com",
        },
        optional: true,
        help: "The address people and SDKs use to reach this server, used in DSNs and in links. \
               Set it when the server is behind a proxy or reached by a name. \
               Unset, it is http:// followed by `bind`.",
        set: |c, v| c.url = v.text(),
        get: |c| c.url.clone().map_or(Parsed::Unset, Parsed::Text),
    },
    Key {
        section: "",
        name: "trusted_proxies",
        kind: Kind::Networks {
            example: "127.0.0.1, 10.0.0.0/8",
        },
        optional: true,
        help: "The reverse proxies in front of the server (addresses or ranges, separated by commas). \
               For a request from one of them, the client's address is read from X-Forwarded-For, so \
               that login limits count each person's address rather than the proxy's. \
               Unset, X-Forwarded-For is ignored: set it only when a proxy is in front.",
        set: |c, v| c.trusted_proxies = v.text().map(|t| super::parse_networks(&t).unwrap_or_default()).unwrap_or_default(),
        get: |c| {
            if c.trusted_proxies.is_empty() {
                Parsed::Unset
            } else {
                // A range of one address is written as the address, as it was given.
                let text = |n: &ipnet::IpNet| if n.prefix_len() == n.max_prefix_len() { n.addr().to_string() } else { n.to_string() };
                Parsed::Text(c.trusted_proxies.iter().map(text).collect::<Vec<_>>().join(", "))
            }
        },
    },
    Key {
        section: "",
        name: "data_dir",
        kind: Kind::Path {
            example: "/var/lib/sentry",
        },
        optional: false,
        help: "The directory where the server keeps its database, its log file (sentry.log) \
               and its process id file (sentry.pid). It is created if missing.",
        set: |c, v| c.data_dir = v.path().unwrap_or_default(),
        get: |c| Parsed::Path(c.data_dir.clone()),
    },
    Key {
        section: "",
        name: "log_level",
        kind: Kind::Choice {
            names: LogLevel::NAMES,
            later: &[],
        },
        optional: false,
        help: "How much the server writes to its log, from least to most.",
        set: |c, v| c.log_level = LogLevel::ALL[v.choice()],
        get: |c| Parsed::Choice(c.log_level as usize),
    },
    Key {
        section: "store",
        name: "backend",
        kind: Kind::Choice {
            names: Backend::NAMES,
            later: &[],
        },
        optional: false,
        help: "The database. sqlite keeps everything in one file and needs no setup; postgres is \
               a PostgreSQL database that several sentry nodes can share (set `postgres_url`).",
        set: |c, v| c.store.backend = Backend::ALL[v.choice()],
        get: |c| Parsed::Choice(c.store.backend as usize),
    },
    Key {
        section: "store",
        name: "sqlite_path",
        kind: Kind::Path {
            example: "/var/lib/sentry/sentry.db",
        },
        optional: true,
        help: "The SQLite database file. Unset, it is sentry.db inside `data_dir`.",
        set: |c, v| c.store.sqlite_path = v.path(),
        get: |c| {
            c.store
                .sqlite_path
                .clone()
                .map_or(Parsed::Unset, Parsed::Path)
        },
    },
    Key {
        section: "store",
        name: "postgres_url",
        kind: Kind::Url {
            schemes: &["postgres", "postgresql"],
            example: "postgres://sentry:password@localhost/sentry",
        },
        optional: true,
        help: "How to connect to PostgreSQL when `backend` is postgres. The database must exist; \
               its tables are created at the first start.",
        set: |c, v| c.store.postgres_url = v.text(),
        get: |c| {
            c.store
                .postgres_url
                .clone()
                .map_or(Parsed::Unset, Parsed::Text)
        },
    },
    Key {
        section: "store",
        name: "max_bytes",
        kind: Kind::Number { unit: "bytes", min: 0, max: i64::MAX as u64 },
        optional: false,
        help: "The most disk space the data may take, in bytes (for example 10000000000 for 10 GB); \
               0 means no cap. Past it the oldest events are deleted first, whatever their \
               project; issues and their counts stay. With postgres, whole days of events are \
               dropped, oldest first, checked every minute.",
        set: |c, v| c.store.max_bytes = v.number(),
        get: |c| Parsed::Number(c.store.max_bytes),
    },
    Key {
        section: "store",
        name: "queue_lease_secs",
        kind: Kind::Number { unit: "seconds", min: 1, max: 3600 },
        optional: false,
        help: "With postgres, received events wait in a table every node shares until one node                stores them. A node holds the events it took for this many seconds; if it dies                meanwhile, another node takes them once the time is over. Longer than any batch                takes to store.",
        set: |c, v| c.store.queue_lease_secs = v.number(),
        get: |c| Parsed::Number(c.store.queue_lease_secs),
    },
    Key {
        section: "redis",
        name: "url",
        kind: Kind::Url {
            schemes: &["redis", "rediss"],
            example: "redis://127.0.0.1:6379",
        },
        optional: true,
        help: "A Redis server the nodes share: rate limits are counted across all of them, and a \
               page shows live what any node stores. Unset, each node counts and updates alone. \
               While it is unreachable, ingest goes on as if it were unset.",
        set: |c, v| c.redis.url = v.text(),
        get: |c| c.redis.url.clone().map_or(Parsed::Unset, Parsed::Text),
    },
    Key {
        section: "limits",
        name: "max_body_bytes",
        kind: BYTES,
        optional: false,
        help: "The largest request body accepted, as sent (possibly compressed).",
        set: |c, v| c.limits.max_body_bytes = v.number() as usize,
        get: |c| Parsed::Number(c.limits.max_body_bytes as u64),
    },
    Key {
        section: "limits",
        name: "max_decompressed_bytes",
        kind: BYTES,
        optional: false,
        help: "The largest request body accepted once decompressed.",
        set: |c, v| c.limits.max_decompressed_bytes = v.number() as usize,
        get: |c| Parsed::Number(c.limits.max_decompressed_bytes as u64),
    },
    Key {
        section: "limits",
        name: "max_event_bytes",
        kind: BYTES,
        optional: false,
        help: "The largest single event or transaction, decompressed. \
               It can't be larger than `max_decompressed_bytes`.",
        set: |c, v| c.limits.max_event_bytes = v.number() as usize,
        get: |c| Parsed::Number(c.limits.max_event_bytes as u64),
    },
    Key {
        section: "limits",
        name: "max_attachment_bytes",
        kind: BYTES,
        optional: false,
        help: "The largest single attachment (a file sent along with an event).",
        set: |c, v| c.limits.max_attachment_bytes = v.number() as usize,
        get: |c| Parsed::Number(c.limits.max_attachment_bytes as u64),
    },
    Key {
        section: "limits",
        name: "max_json_depth",
        kind: POSITIVE,
        optional: false,
        help: "How deeply objects and lists may nest inside an event's JSON.",
        set: |c, v| c.limits.max_json_depth = v.number() as usize,
        get: |c| Parsed::Number(c.limits.max_json_depth as u64),
    },
    Key {
        section: "limits",
        name: "max_envelope_items",
        kind: POSITIVE,
        optional: false,
        help: "The most items (events, attachments, sessions, ...) one envelope may carry.",
        set: |c, v| c.limits.max_envelope_items = v.number() as usize,
        get: |c| Parsed::Number(c.limits.max_envelope_items as u64),
    },
    Key {
        section: "limits",
        name: "max_connections",
        kind: Kind::Number {
            unit: "",
            min: 1,
            max: 1_000_000,
        },
        optional: false,
        help: "The most connections open at once. When it is reached, the oldest connections that have \
               not sent a request yet are closed to make room. Keep it well below the open-file limit \
               (`ulimit -n`); the server raises its own limit as far as the system allows.",
        set: |c, v| c.limits.max_connections = v.number() as usize,
        get: |c| Parsed::Number(c.limits.max_connections as u64),
    },
    Key {
        section: "limits",
        name: "max_login_hashes",
        kind: Kind::Number {
            unit: "",
            min: 1,
            max: 1_000,
        },
        optional: false,
        help: "Password checks run at once (logins, password changes); each holds about 19 MiB for a \
               fraction of a second. More logins at once wait up to 3 s, then get 429.",
        set: |c, v| c.limits.max_login_hashes = v.number() as usize,
        get: |c| Parsed::Number(c.limits.max_login_hashes as u64),
    },
    Key {
        section: "ingest",
        name: "queue_capacity",
        kind: POSITIVE,
        optional: false,
        help: "How many acknowledged events may wait in the spool (on disk, in the data directory) \
               to be stored. Past it, SDKs get HTTP 503 and retry later.",
        set: |c, v| c.ingest.queue_capacity = v.number() as usize,
        get: |c| Parsed::Number(c.ingest.queue_capacity as u64),
    },
    Key {
        section: "ingest",
        name: "spool_max_bytes",
        kind: BYTES,
        optional: false,
        help: "Disk space for acknowledged events waiting to be stored (the spool, in the data \
               directory). It grows while the database cannot keep up or cannot write (a full \
               disk); past it, SDKs get HTTP 503 and retry later.",
        set: |c, v| c.ingest.spool_max_bytes = v.number(),
        get: |c| Parsed::Number(c.ingest.spool_max_bytes),
    },
    Key {
        section: "ingest",
        name: "spool_segment_bytes",
        kind: Kind::Number { unit: "bytes", min: 4096, max: 1 << 32 },
        optional: false,
        help: "The size of one spool file. Each is written out in full ahead of use (so that \
               saving an event is quick); a very small disk may want smaller ones.",
        set: |c, v| c.ingest.spool_segment_bytes = v.number(),
        get: |c| Parsed::Number(c.ingest.spool_segment_bytes),
    },
    Key {
        section: "ingest",
        name: "batch_max",
        kind: POSITIVE,
        optional: false,
        help: "The most events stored in one database transaction. Larger batches are faster under load.",
        set: |c, v| c.ingest.batch_max = v.number() as usize,
        get: |c| Parsed::Number(c.ingest.batch_max as u64),
    },
    Key {
        section: "ingest",
        name: "max_inflight_bytes",
        kind: BYTES,
        optional: false,
        help: "Memory for requests being received and events waiting to be written, in bytes. \
               Past it, SDKs get HTTP 503 and retry later: this bounds the server's memory.",
        set: |c, v| c.ingest.max_inflight_bytes = v.number() as usize,
        get: |c| Parsed::Number(c.ingest.max_inflight_bytes as u64),
    },
    Key {
        section: "ingest",
        name: "request_timeout_secs",
        kind: POSITIVE,
        optional: false,
        help: "Seconds a client may take to send a request's headers, and again its body. \
               Slower clients are cut off, so they can't hold connections open.",
        set: |c, v| c.ingest.request_timeout_secs = v.number(),
        get: |c| Parsed::Number(c.ingest.request_timeout_secs),
    },
    Key {
        section: "ingest",
        name: "attachments",
        kind: Kind::Choice {
            names: Attachments::NAMES,
            later: &["store"],
        },
        optional: false,
        help: "What to do with attachments: drop them (and count them as dropped).",
        set: |c, v| c.ingest.attachments = Attachments::ALL[v.choice()],
        get: |c| Parsed::Choice(c.ingest.attachments as usize),
    },
    Key {
        section: "ingest",
        name: "max_logs_per_second",
        kind: Kind::Number {
            unit: "",
            min: 0,
            max: 10_000_000,
        },
        optional: false,
        help: "Logs (from the SDKs' logger) this server accepts per second, apart from events. \
               Past it, logs are dropped and counted; the events that come with them are \
               still stored. 0 accepts every log.",
        set: |c, v| c.ingest.max_logs_per_second = v.number(),
        get: |c| Parsed::Number(c.ingest.max_logs_per_second),
    },
    Key {
        section: "rate_limits",
        name: "per_key_per_minute",
        kind: PER_MINUTE,
        optional: false,
        help: "Events accepted per minute for each client key (DSN), unless the key sets its own.",
        set: |c, v| c.rate_limits.per_key_per_minute = v.number(),
        get: |c| Parsed::Number(c.rate_limits.per_key_per_minute),
    },
    Key {
        section: "rate_limits",
        name: "per_project_per_minute",
        kind: PER_MINUTE,
        optional: false,
        help: "Events accepted per minute for each project, across all its keys.",
        set: |c, v| c.rate_limits.per_project_per_minute = v.number(),
        get: |c| Parsed::Number(c.rate_limits.per_project_per_minute),
    },
    Key {
        section: "retention",
        name: "days",
        kind: Kind::Number {
            unit: "days",
            min: 0,
            max: u32::MAX as u64,
        },
        optional: false,
        help: "How many days events are kept before they are deleted. 0 keeps them forever.",
        set: |c, v| c.retention.days = v.number() as u32,
        get: |c| Parsed::Number(u64::from(c.retention.days)),
    },
    Key {
        section: "retention",
        name: "logs_days",
        kind: Kind::Number {
            unit: "days",
            min: 0,
            max: u32::MAX as u64,
        },
        optional: false,
        help: "How many days logs are kept before they are deleted. 0 keeps them forever.",
        set: |c, v| c.retention.logs_days = v.number() as u32,
        get: |c| Parsed::Number(u64::from(c.retention.logs_days)),
    },
    Key {
        section: "monitors",
        name: "check_interval_secs",
        kind: Kind::Number {
            unit: "seconds",
            min: 1,
            max: 3600,
        },
        optional: false,
        help: "Seconds between two looks for missed check-ins and runs past their longest time. \
               A missed check-in is noticed within this long after its margin is over.",
        set: |c, v| c.monitors.check_interval_secs = v.number(),
        get: |c| Parsed::Number(c.monitors.check_interval_secs),
    },
    Key {
        section: "notify",
        name: "retry_initial_seconds",
        kind: POSITIVE,
        optional: false,
        help: "Seconds to wait after a failed delivery before trying again. The wait doubles \
               after each further failure.",
        set: |c, v| c.notify.retry_initial_seconds = v.number(),
        get: |c| Parsed::Number(c.notify.retry_initial_seconds),
    },
    Key {
        section: "notify",
        name: "retry_max_seconds",
        kind: POSITIVE,
        optional: false,
        help: "The longest wait between two delivery attempts, in seconds.",
        set: |c, v| c.notify.retry_max_seconds = v.number(),
        get: |c| Parsed::Number(c.notify.retry_max_seconds),
    },
    Key {
        section: "notify",
        name: "expire_hours",
        kind: POSITIVE,
        optional: false,
        help: "Hours after which a notification that could not be delivered is given up.",
        set: |c, v| c.notify.expire_hours = v.number(),
        get: |c| Parsed::Number(c.notify.expire_hours),
    },
    Key {
        section: "notify",
        name: "digest",
        kind: Kind::Choice {
            names: Digest::NAMES,
            later: &[],
        },
        optional: false,
        help: "Mail a report of each project's new issues, regressions, busiest issues and \
               slowest queries every day (after midnight UTC) or every week (after Monday \
               midnight UTC), through [plugins.email] to its recipients. `sentry notify digest` \
               sends one now.",
        set: |c, v| c.notify.digest = Digest::ALL[v.choice()],
        get: |c| Parsed::Choice(c.notify.digest as usize),
    },
];

impl Key {
    /// `bind`, or `limits.max_event_bytes`.
    pub fn full_name(&self) -> String {
        if self.section.is_empty() {
            self.name.to_string()
        } else {
            format!("{}.{}", self.section, self.name)
        }
    }

    /// `SENTRY_BIND`, or `SENTRY_LIMITS_MAX_EVENT_BYTES`.
    pub fn env_var(&self) -> String {
        format!(
            "SENTRY_{}",
            self.full_name().replace('.', "_").to_uppercase()
        )
    }
}

/// The keys of `section`, in declaration order.
pub(super) fn keys_of(section: &str) -> impl Iterator<Item = &'static Key> + '_ {
    KEYS.iter().filter(move |k| k.section == section)
}

/// The declared key `name` in `section`.
pub(super) fn find(section: &str, name: &str) -> Option<&'static Key> {
    keys_of(section).find(|k| k.name == name)
}

// The setters above trust that the value was read with the key's own `kind`; a test sets every
// key to a non-default value through its `SENTRY_*` variable to keep that true.
impl Parsed {
    fn address(self) -> SocketAddr {
        match self {
            Parsed::Address(a) => a,
            other => unreachable!("an address key got {other:?}"),
        }
    }

    fn text(self) -> Option<String> {
        match self {
            Parsed::Text(t) => Some(t),
            Parsed::Unset => None,
            other => unreachable!("a text key got {other:?}"),
        }
    }

    fn path(self) -> Option<PathBuf> {
        match self {
            Parsed::Path(p) => Some(p),
            Parsed::Unset => None,
            other => unreachable!("a path key got {other:?}"),
        }
    }

    fn choice(self) -> usize {
        match self {
            Parsed::Choice(i) => i,
            other => unreachable!("a choice key got {other:?}"),
        }
    }

    fn number(self) -> u64 {
        match self {
            Parsed::Number(n) => n,
            other => unreachable!("a number key got {other:?}"),
        }
    }
}
