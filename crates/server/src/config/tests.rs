//! Tests for `sentry.toml`: defaults, every kind of refusal with its file, line and valid names,
//! the environment layer, and the guards that keep the reference file and the table in step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::declare::{KEYS, Kind, Parsed, SECTIONS};
use super::*;

const FILE: &str = "/etc/sentry/sentry.toml";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![("HOME".to_string(), "/home/ada".to_string())];
    env.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

fn load(text: &str) -> Config {
    Config::load_from(Path::new(FILE), text, &env(&[])).unwrap_or_else(|e| panic!("{e}"))
}

/// The message for `text`, checked to start with the file and `line`.
fn error(text: &str, line: usize) -> String {
    let err = Config::load_from(Path::new(FILE), text, &env(&[])).expect_err("should be refused");
    let message = err.to_string();
    let at = format!("{FILE}:{line}:");
    assert!(message.starts_with(&at), "expected {at} in: {message}");
    message
}

fn env_error(pairs: &[(&str, &str)]) -> String {
    Config::defaults_with_env(&env(pairs))
        .expect_err("should be refused")
        .to_string()
}

#[test]
fn defaults() {
    let config = Config::defaults_with_env(&env(&[])).unwrap();
    assert_eq!(config.bind.to_string(), "127.0.0.1:9000");
    assert_eq!(config.public_url(), "http://127.0.0.1:9000");
    assert_eq!(config.data_dir, Path::new("/home/ada/.sentry/data"));
    assert_eq!(
        config.sqlite_path(),
        Path::new("/home/ada/.sentry/data/sentry.db")
    );
    assert_eq!(
        config.log_file(),
        Path::new("/home/ada/.sentry/data/sentry.log")
    );
    assert_eq!(
        config.pid_file(),
        Path::new("/home/ada/.sentry/data/sentry.pid")
    );
    assert_eq!(config.log_level, LogLevel::Info);
    assert_eq!(config.store.backend, Backend::Sqlite);
    assert_eq!(config.protocol_limits(), protocol::Limits::default());
    assert_eq!(config.ingest.queue_capacity, 1_000_000);
    assert_eq!(config.ingest.spool_max_bytes, 1 << 30);
    assert_eq!(config.ingest.batch_max, 2_000);
    assert_eq!(config.ingest.attachments, Attachments::Drop);
    assert_eq!(config.rate_limits.per_key_per_minute, 0);
    assert_eq!(config.rate_limits.per_project_per_minute, 0);
    assert_eq!(config.retention.days, 90);
    assert_eq!(load(""), config);
    assert_eq!(load("# only a comment\n\n[limits]\n"), config);
}

#[test]
fn a_full_file_sets_every_section() {
    let config = load(
        "bind = \"0.0.0.0:8080\"\nurl = \"https://errors.example.com/\"\ndata_dir = \"data\"\n\
         log_level = \"debug\"\n\n[store]\nbackend = \"sqlite\"\nsqlite_path = \"~/db/s.db\"\n\n\
         [limits]\nmax_event_bytes = 2_097_152\nmax_json_depth = 0x20\n\n[ingest]\n\
         queue_capacity = 5\nbatch_max = 7\nattachments = \"drop\"\n\n[rate_limits]\n\
         per_key_per_minute = 600\nper_project_per_minute = 6000\n\n[retention]\ndays = 0\n",
    );
    assert_eq!(config.bind.to_string(), "0.0.0.0:8080");
    assert_eq!(config.public_url(), "https://errors.example.com");
    assert_eq!(
        config.data_dir,
        Path::new("/etc/sentry/data"),
        "relative to the file"
    );
    assert_eq!(config.sqlite_path(), Path::new("/home/ada/db/s.db"));
    assert_eq!(config.log_level, LogLevel::Debug);
    assert_eq!(config.limits.max_event_bytes, 2 * 1024 * 1024);
    assert_eq!(config.limits.max_json_depth, 32);
    assert_eq!(
        (config.ingest.queue_capacity, config.ingest.batch_max),
        (5, 7)
    );
    assert_eq!(config.rate_limits.per_key_per_minute, 600);
    assert_eq!(config.rate_limits.per_project_per_minute, 6000);
    assert_eq!(config.retention.days, 0);
}

#[test]
fn inline_tables_and_dotted_keys_are_checked_too() {
    let config = load("limits = { max_json_depth = 10 }\nretention.days = 7\n");
    assert_eq!(
        (config.limits.max_json_depth, config.retention.days),
        (10, 7)
    );
    let message = error(
        "bind = \"127.0.0.1:1\"\nlimits = { max_json_depht = 10 }\n",
        2,
    );
    assert!(
        message.contains("unknown key `max_json_depht` in [limits]"),
        "{message}"
    );
    error("\nretention.days = \"soon\"\n", 2);
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let message = error(
        "bind = \"127.0.0.1:9000\"\n\n[limits\nmax_json_depth = 3\n",
        3,
    );
    assert!(
        message.starts_with(&format!("{FILE}:3:8: this is not valid TOML: ")),
        "{message}"
    );
    let message = error("[limits]\nmax_json_depth = 3\nmax_json_depth = 4\n", 3);
    assert!(
        message.contains("duplicate key (at `max_json_depth`)"),
        "{message}"
    );
}

#[test]
fn unknown_key_lists_the_valid_keys_of_its_section() {
    let message = error(
        "bind = \"127.0.0.1:9000\"\n\n[limits]\nmax_json_depth = 3\nworkres = 4\n",
        5,
    );
    assert_eq!(
        message,
        format!(
            "{FILE}:5: unknown key `workres` in [limits]; valid keys are: max_body_bytes, \
             max_decompressed_bytes, max_event_bytes, max_attachment_bytes, max_json_depth, \
             max_envelope_items, max_connections, max_login_hashes"
        )
    );
    let message = error("\n[store]\nbind = \"127.0.0.1:1\"\n", 3);
    assert!(message.ends_with("(`bind` goes at the top of the file, before any [section])"));
}

#[test]
fn unknown_top_level_key_points_to_its_section() {
    let message = error("# limits\nmax_event_bytes = 10\n", 2);
    assert_eq!(
        message,
        format!(
            "{FILE}:2: unknown key `max_event_bytes` at the top of the file; valid keys there \
             are: bind, url, trusted_proxies, data_dir, log_level; the other keys go in the sections [store], \
             [redis], [limits], [ingest], [rate_limits], [retention], [monitors], [notify], [projects.<slug>], \
             [plugins.<name>], [[rules]] (`max_event_bytes` belongs in [limits])"
        )
    );
}

#[test]
fn unknown_section_lists_the_valid_sections() {
    let message = error(
        "bind = \"127.0.0.1:9000\"\n\n[limts]\nmax_json_depth = 3\n",
        3,
    );
    assert_eq!(
        message,
        format!(
            "{FILE}:3: unknown section [limts]; valid sections are: [store], [redis], [limits], \
             [ingest], [rate_limits], [retention], [monitors], [notify], [projects.<slug>], \
             [plugins.<name>], [[rules]]"
        )
    );
    error("\n\n\n[[store]]\nbackend = \"sqlite\"\n", 4);
}

#[test]
fn wrong_type_says_what_is_expected_with_an_example() {
    let message = error("[limits]\n\nmax_event_bytes = \"1MB\"\n", 3);
    assert_eq!(
        message,
        format!(
            "{FILE}:3: `limits.max_event_bytes` must be a whole number of bytes \
             (for example 1048576), not a string"
        )
    );
    let message = error("log_level = 3\n", 1);
    assert!(message.ends_with(
        "`log_level` must be one of \"error\", \"warn\", \"info\", \"debug\", \"trace\", \
         not a whole number"
    ));
    let message = error("\nlimits = 5\n", 2);
    assert!(
        message.contains("`limits` must be a section, written [limits]"),
        "{message}"
    );
    let message = error("[ingest]\nbatch_max = 1.5\n", 2);
    assert!(message.ends_with("not a decimal number"), "{message}");
}

#[test]
fn invalid_values_say_why_and_what_is_valid() {
    let message = error("\nbind = \"nonsense\"\n", 2);
    assert_eq!(
        message,
        format!(
            "{FILE}:2: `bind` = \"nonsense\": not an address; write it as IP:PORT, \
             for example \"127.0.0.1:9000\""
        )
    );
    let message = error("log_level = \"loud\"\n", 1);
    assert!(message.ends_with(
        "`log_level` = \"loud\": not a valid value; valid: error, warn, info, debug, trace"
    ));
    let message = error("[store]\nbackend = \"postgres\"\n", 2);
    assert!(
        message.contains("`store.backend` is postgres, but `store.postgres_url` is not set"),
        "{message}"
    );
    let message = error("[store]\nbackend = \"mysql\"\n", 2);
    assert!(
        message.ends_with("`store.backend` = \"mysql\": not a valid value; valid: sqlite, postgres"),
        "{message}"
    );
    let message = error("[ingest]\nattachments = \"store\"\n", 2);
    assert!(
        message.ends_with("store is not available yet; valid: drop"),
        "{message}"
    );
    let message = error("[ingest]\nqueue_capacity = 0\n", 2);
    assert!(
        message.ends_with("`ingest.queue_capacity` = 0: must be at least 1"),
        "{message}"
    );
    let message = error("[retention]\ndays = -1\n", 2);
    assert!(
        message.ends_with("`retention.days` = -1: can't be negative"),
        "{message}"
    );
    let message = error("url = \"sentry.example.com\"\n", 1);
    assert!(message.contains("not a URL; write it starting with http:// or https://"));
    error("data_dir = \"\"\n", 1);
}

#[test]
fn event_limit_above_decompressed_limit_is_refused_where_it_was_set() {
    let message = error(
        "[limits]\nmax_decompressed_bytes = 1000\nmax_event_bytes = 2000\n",
        3,
    );
    assert!(
        message.contains("`limits.max_event_bytes` (2000) is larger than"),
        "{message}"
    );
    let config = Config::load_from(
        Path::new(FILE),
        "[limits]\nmax_event_bytes = 2000\n",
        &env(&[("SENTRY_LIMITS_MAX_DECOMPRESSED_BYTES", "1000")]),
    );
    let message = config.unwrap_err().to_string();
    assert!(
        message.starts_with("SENTRY_LIMITS_MAX_DECOMPRESSED_BYTES=1000: "),
        "{message}"
    );
}

#[test]
fn environment_beats_the_file_and_ignores_other_sentry_variables() {
    let text =
        "bind = \"127.0.0.1:1\"\nurl = \"http://a.example\"\n[limits]\nmax_event_bytes = 5\n";
    let config = Config::load_from(
        Path::new(FILE),
        text,
        &env(&[
            ("SENTRY_BIND", "0.0.0.0:9999"),
            ("SENTRY_URL", ""),
            ("SENTRY_LIMITS_MAX_EVENT_BYTES", "7"),
            ("SENTRY_LOG_LEVEL", "WARN"),
            ("SENTRY_DATA_DIR", "~/elsewhere"),
            ("SENTRY_DSN", "https://key@o1.ingest.sentry.io/1"),
            ("SENTRY_CONF", "/nowhere"),
            ("SENTRY_ENVIRONMENT", "production"),
        ]),
    )
    .unwrap();
    assert_eq!(config.bind.to_string(), "0.0.0.0:9999");
    assert_eq!(config.url, None, "an empty variable unsets an optional key");
    assert_eq!(config.limits.max_event_bytes, 7);
    assert_eq!(config.log_level, LogLevel::Warn);
    assert_eq!(config.data_dir, Path::new("/home/ada/elsewhere"));
}

#[test]
fn environment_errors_name_the_variable() {
    assert_eq!(
        env_error(&[("SENTRY_BIND", "nonsense")]),
        "SENTRY_BIND=nonsense: not an address; write it as IP:PORT, for example \"127.0.0.1:9000\""
    );
    assert_eq!(
        env_error(&[("SENTRY_LIMITS_MAX_EVENT_BYTES", "1MB")]),
        "SENTRY_LIMITS_MAX_EVENT_BYTES=1MB: must be a whole number of bytes (for example 1048576)"
    );
    assert!(
        env_error(&[("SENTRY_STORE_BACKEND", "postgres")])
            .contains("`store.backend` is postgres, but `store.postgres_url` is not set"),
    );
    let config = Config::defaults_with_env(&env(&[
        ("SENTRY_STORE_BACKEND", "postgres"),
        ("SENTRY_STORE_POSTGRES_URL", "postgres://sentry@db.internal/sentry"),
    ]))
    .unwrap();
    assert_eq!(config.store.postgres_url.as_deref(), Some("postgres://sentry@db.internal/sentry"));
}

#[test]
fn every_key_can_be_set_through_its_variable() {
    let defaults = Config::defaults_with_env(&env(&[])).unwrap();
    let mut names = BTreeSet::new();
    for key in KEYS {
        let var = key.env_var();
        assert!(names.insert(var.clone()), "{var} is declared twice");
        let value = match (&key.kind, (key.get)(&defaults)) {
            (Kind::Address, _) => "10.0.0.1:1".to_string(),
            (Kind::Url { example, .. }, _) => example.to_string(),
            (Kind::Path { .. }, _) => "/srv/x".to_string(),
            (Kind::Networks { example }, _) => example.to_string(),
            (Kind::Choice { names, later }, Parsed::Choice(i)) => {
                let other = names
                    .iter()
                    .enumerate()
                    .find(|(j, n)| *j != i && !later.contains(n));
                // A choice with a single usable value can only be set to its default.
                other.map_or(names[i], |(_, n)| n).to_string()
            }
            (Kind::Number { .. }, Parsed::Number(n)) => (n + 1).to_string(),
            (_, other) => panic!("{var}: default {other:?} does not match its kind"),
        };
        // A PostgreSQL backend needs its URL beside it.
        let mut pairs = vec![(var.as_str(), value.as_str())];
        if var == "SENTRY_STORE_BACKEND" {
            pairs.push(("SENTRY_STORE_POSTGRES_URL", "postgres://sentry@localhost/sentry"));
        }
        let config = Config::defaults_with_env(&env(&pairs)).unwrap_or_else(|e| panic!("{e}"));
        let read = key.kind.to_toml(&(key.get)(&config)).unwrap();
        assert!(
            read.contains(value.trim_matches('"')),
            "{var}={value} read back as {read}"
        );
    }
}

#[test]
fn reference_parses_back_to_the_defaults() {
    let data_dir = Path::new("/var/lib/sentry");
    let text = reference_toml("0.0.0.0:9100", data_dir);
    let config = load(&text);
    let expected = Config {
        bind: "0.0.0.0:9100".parse().unwrap(),
        data_dir: PathBuf::from(data_dir),
        ..Config::default()
    };
    assert_eq!(config, expected);
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}

#[test]
fn reference_mentions_every_declared_key_and_section_in_order() {
    let text = reference_toml("127.0.0.1:9000", Path::new("/data"));
    let mut position = 0;
    for section in SECTIONS.iter().filter(|s| !s.name.is_empty()) {
        let header = format!("\n[{}]\n", section.name);
        position = text[position..].find(&header).expect(&header) + position;
    }
    for key in KEYS {
        let line = format!("{} = ", key.name);
        assert!(
            text.lines()
                .any(|l| l.starts_with(&line) || l.starts_with(&format!("# {line}"))),
            "{} is missing from the reference",
            key.full_name()
        );
        assert!(
            text.contains(&key.env_var()),
            "{} is not named",
            key.env_var()
        );
    }
}

/// The staleness guard: a field added to a config struct without a declaration (or the other way
/// round) fails here.
#[test]
fn declaration_table_matches_the_config_structs() {
    let value = serde_json::to_value(Config::default()).unwrap();
    let mut fields = BTreeSet::new();
    for (name, field) in value.as_object().unwrap() {
        match field.as_object() {
            Some(section) => fields.extend(section.keys().map(|k| format!("{name}.{k}"))),
            None => {
                fields.insert(name.clone());
            }
        }
    }
    let declared: BTreeSet<String> = KEYS.iter().map(|k| k.full_name()).collect();
    assert_eq!(fields, declared);
    let order: Vec<usize> = KEYS
        .iter()
        .map(|k| SECTIONS.iter().position(|s| s.name == k.section).unwrap())
        .collect();
    assert!(
        order.is_sorted(),
        "KEYS must be grouped by section in SECTIONS order"
    );
}

#[test]
fn public_url_has_no_trailing_slash_and_brackets_ipv6() {
    let mut config = Config {
        bind: "[::1]:9000".parse().unwrap(),
        ..Config::default()
    };
    assert_eq!(config.public_url(), "http://[::1]:9000");
    config.url = Some("https://sentry.example.com/base/".into());
    assert_eq!(config.public_url(), "https://sentry.example.com/base");
}

#[test]
fn a_missing_file_says_how_to_make_one() {
    let err = Config::load(Path::new("/nonexistent/sentry.toml")).unwrap_err();
    assert!(err.to_string().contains("run `sentry init`"), "{err}");
}

#[test]
fn a_logged_url_shows_no_password() {
    use super::without_password;
    assert_eq!(without_password("postgres://sentry:s3cret@db:5432/sentry"), "postgres://sentry:***@db:5432/sentry");
    assert_eq!(without_password("postgres://sentry@db/sentry"), "postgres://sentry@db/sentry");
}

#[test]
fn trusted_proxies_are_addresses_or_ranges() {
    let message = error("trusted_proxies = \"10.0.0.0/8, nonsense\"\n", 1);
    assert!(message.contains("`nonsense` is not an address or a range"), "{message}");
    assert!(message.contains("for example \"127.0.0.1, 10.0.0.0/8\""), "{message}");
    let nets = super::parse_networks("127.0.0.1, 10.0.0.0/8,::1").unwrap();
    assert_eq!(nets.len(), 3);
    assert!(nets[1].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
}
