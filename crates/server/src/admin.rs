//! The operator commands: init, upgrade, projects, keys, and the read-side views of groups
//! and events.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use protocol::{Dsn, PublicKey};
use serde_json::{json, Value};
use std::sync::Arc;

use store::{GroupId, GroupStatus, ProjectId, Sort, StatusFilter, Store, StreamQuery};

use crate::cli::{EventsArgs, GroupsArgs, KeyCommand, ProjectCommand};
use crate::config::{self, Config};
use crate::{open_store, process_env};

/// The DSN clients use to send to a project with a key, on the server's public URL.
pub fn dsn(config: &Config, public_key: &str, project_id: ProjectId) -> Result<String> {
    let url = config.public_url();
    let dsn = Dsn::for_project(&url, &PublicKey(public_key.to_string()), project_id)
        .with_context(|| format!("the public URL {url} (the `url` setting) cannot be used in a DSN"))?;
    Ok(dsn.to_string())
}

/// `sentry init`: writes the config, creates the data directory, the store and a first project,
/// and prints its DSN.
pub fn init(path: &Path) -> Result<()> {
    let config = write_config(path, None)?;
    let store = open_store(&config)?;
    println!("Data will be kept in {}", config.data_dir.display());
    if ensure_default_project(&store)? {
        let p = store.projects()?.into_iter().next().context("the project just created is missing")?;
        let key = store.keys(p.id)?.into_iter().find(|k| k.is_active()).context("the new project has no key")?;
        println!("Created the project \"{}\". Send events to it with this DSN:", p.slug);
        println!("  {}", dsn(&config, &key.public_key, p.id)?);
    }
    Ok(())
}

/// Writes a new commented config file (the defaults and `SENTRY_*` variables, with `bind` if
/// given) and creates the data directory. Refuses to overwrite a file. Returns the config
/// written.
pub fn write_config(path: &Path, bind: Option<SocketAddr>) -> Result<Config> {
    if path.exists() {
        bail!(
            "{} already exists; sentry init does not overwrite it. Edit it, or remove it first to start over.",
            path.display()
        );
    }
    let mut config = Config::defaults_with_env(&process_env())?;
    if let Some(bind) = bind {
        config.bind = bind;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, config::reference_toml(&config.bind.to_string(), &config.data_dir))
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    println!("Wrote the config file {}", path.display());
    Ok(config)
}

/// Creates the project `default` when there is no project yet; says whether it did. The
/// callers print its DSN.
pub fn ensure_default_project(store: &Arc<dyn Store>) -> Result<bool> {
    if store.projects()?.is_empty() {
        return match store.create_project("default") {
            Ok(_) => Ok(true),
            // Another node sharing the database made it at the same moment.
            Err(store::StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        };
    }
    Ok(false)
}

/// `sentry cleanup`: deletes what is past retention now, with a progress bar.
pub fn cleanup(config: &Config, days: Option<u32>) -> Result<()> {
    let store = open_store(config)?;
    let retention = retention(config, &*store, days)?;
    if let Some(n) = delete_old_logs(config, &*store)? {
        println!("Deleted {n} logs older than {} days (retention.logs_days).", config.retention.logs_days);
    }
    if retention.keeps_everything() {
        println!("Retention is 0 days, which means keep everything: nothing to delete.");
        return Ok(());
    }
    let total = store.expired_events(&retention)?;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("Deleting events {bar:40} {pos}/{len} ({eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let cleaned = store.cleanup(&retention, &mut |done| bar.set_position(done.min(total)))?;
    bar.finish_and_clear();
    println!("Deleted {} events and {} issues {}.", cleaned.events, cleaned.groups, describe_retention(config, days));
    Ok(())
}

/// Deletes the logs older than `retention.logs_days` (their own retention); `None` when they
/// are kept forever.
pub fn delete_old_logs(config: &Config, store: &dyn Store) -> Result<Option<u64>> {
    let days = config.retention.logs_days;
    if days == 0 {
        return Ok(None);
    }
    Ok(Some(store.delete_logs_before(retention_cutoff(days))?))
}

/// What retention keeps, from the config: `retention.days` for every project, except those
/// whose `[projects.<slug>]` sets `retention_days`; `days` (from `sentry cleanup --days`) for
/// every project instead. 0 days keeps everything. Read each time, so a project created since
/// the start gets its setting.
pub fn retention(config: &Config, store: &dyn Store, days: Option<u32>) -> Result<store::Retention> {
    let cutoff = |d: u32| (d > 0).then(|| retention_cutoff(d));
    if let Some(d) = days {
        return Ok(store::Retention { cutoff: cutoff(d), projects: Vec::new() });
    }
    let mut projects = Vec::new();
    if config.projects.values().any(|p| p.retention_days.is_some()) {
        for p in store.projects()? {
            if let Some(d) = config.projects.get(&p.slug).and_then(|c| c.retention_days) {
                projects.push((p.id, cutoff(d)));
            }
        }
    }
    Ok(store::Retention { cutoff: cutoff(config.retention.days), projects })
}

/// "older than 90 days (shop: 7 days, archive: kept)", for people.
pub fn describe_retention(config: &Config, days: Option<u32>) -> String {
    let days_text = |d: u32| if d == 0 { "kept".to_string() } else { format!("{d} days") };
    let all = days.unwrap_or(config.retention.days);
    let mut text = if all == 0 { "in no project by default".to_string() } else { format!("older than {all} days") };
    if days.is_none() {
        let own: Vec<String> = config
            .projects
            .iter()
            .filter_map(|(slug, p)| p.retention_days.map(|d| format!("{slug}: {}", days_text(d))))
            .collect();
        if !own.is_empty() {
            text.push_str(&format!(" ({})", own.join(", ")));
        }
    }
    text
}

/// Unix seconds `days` ago.
pub fn retention_cutoff(days: u32) -> f64 {
    let now = store::now();
    now - f64::from(days) * 86_400.0
}

/// `sentry migrate-store --to URL`: the SQLite file into PostgreSQL, with a progress line, then
/// each table's count in both.
pub fn migrate_store(config: &Config, to: &str) -> Result<()> {
    use std::io::Write as _;
    if !to.starts_with("postgres://") && !to.starts_with("postgresql://") {
        bail!("--to must be a PostgreSQL URL, like postgres://sentry:password@localhost/sentry");
    }
    let path = config.sqlite_path();
    if !path.exists() {
        bail!("there is nothing to copy: {} does not exist", path.display());
    }
    if server_running(config) {
        bail!("a server is running on {}: stop it first (sentry stop), so that nothing changes while it is copied", config.data_dir.display());
    }
    // What the spool still holds belongs in the SQLite file first.
    let dir = config.spool_dir();
    if let Some(end) = spool::written_end(&dir)? {
        let store = open_store(config)?;
        let id = spool::Spool::identity(&dir)?;
        if store.spool_mark(&id)?.unwrap_or(0) < end {
            bail!("some events received are not stored yet: start the server and stop it again (it stores them when it starts), then copy");
        }
    }
    let target = crate::config::without_password(to);
    eprintln!("Copying {} into PostgreSQL {target}", path.display());
    let mut last = String::new();
    let copied = store::migrate_sqlite_to_postgres(&path, to, &mut |p| {
        let line = if p.total == 0 {
            format!("  {}: nothing to copy", p.table)
        } else {
            format!("  {}: {} of {} ({}%)", p.table, p.done, p.total, p.done * 100 / p.total.max(1))
        };
        if p.done == 0 || p.done >= p.total {
            if !last.is_empty() {
                eprintln!();
            }
            eprint!("{line}");
        } else {
            eprint!("\r{line}");
        }
        last = line;
        let _ = std::io::stderr().flush();
    })
    .with_context(|| format!("copying into {target}"))?;
    eprintln!();
    println!("{:<20} {:>12} {:>12}", "table", "SQLite", "PostgreSQL");
    for (table, a, b) in &copied.tables {
        println!("{table:<20} {a:>12} {b:>12}");
    }
    let bad = copied.mismatches();
    if !bad.is_empty() {
        bail!(
            "{} tables hold a different number of rows in PostgreSQL than in SQLite ({}): run the command again; if it stays so, the PostgreSQL database held other data before",
            bad.len(),
            bad.iter().map(|(t, _, _)| t.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    println!(
        "Done. To run on PostgreSQL, set in [store]: backend = \"postgres\" and postgres_url = \"{target}\" (with its password), then start the server."
    );
    Ok(())
}

pub fn upgrade(config: &Config) -> Result<()> {
    let store = open_store(config)?;
    let (now, latest) = store.schema_version()?;
    println!("The data store {} is at schema version {now} (latest {latest}).", config.store_name());
    Ok(())
}

fn project_json(config: &Config, store: &Arc<dyn Store>, p: &store::Project) -> Result<Value> {
    let key = store.keys(p.id)?.into_iter().find(|k| k.is_active());
    Ok(json!({
        "id": p.id,
        "slug": p.slug,
        "name": p.name,
        "dsn": key.map(|k| dsn(config, &k.public_key, p.id)).transpose()?,
    }))
}

pub fn project(config: &Config, cmd: ProjectCommand) -> Result<()> {
    let store = open_store(config)?;
    match cmd {
        ProjectCommand::Create { name, org, team, json } => {
            let org = crate::orgs::org_by_slug(&store, org.as_deref())?;
            let team = crate::orgs::team_by_slug(&store, &org, team.as_deref())?
                .with_context(|| format!("the organisation {} has no team; create one with: sentry team create --org {} NAME", org.slug, org.slug))?;
            let (p, key) = store.create_project_in(team, &name)?;
            store.record_audit(org.id, crate::orgs::CLI_ACTOR, "project.create", &p.slug)?;
            let dsn = dsn(config, &key.public_key, p.id)?;
            if json {
                println!("{}", json!({"id": p.id, "slug": p.slug, "dsn": dsn}));
            } else {
                println!("Created the project \"{}\" (id {}). Its DSN:\n  {dsn}", p.slug, p.id);
            }
        }
        ProjectCommand::List { json } => {
            let rows = store
                .projects()?
                .iter()
                .map(|p| project_json(config, &store, p))
                .collect::<Result<Vec<_>>>()?;
            if json {
                println!("{}", Value::Array(rows));
            } else if rows.is_empty() {
                println!("No projects yet. Create one with: sentry project create NAME");
            } else {
                for r in rows {
                    println!("{:>4}  {:<24} {}", r["id"], r["slug"].as_str().unwrap_or(""), r["dsn"].as_str().unwrap_or("(no active key)"));
                }
            }
        }
        ProjectCommand::Delete { slug, yes } => {
            let p = project_by_slug(&store, &slug)?;
            let events = store.event_count(p.id)?;
            confirm(&format!("Deleting the project \"{}\" and its {events} events", p.slug), &p.slug, yes)?;
            store.delete_project(p.id)?;
            store.record_audit(p.org_id, crate::orgs::CLI_ACTOR, "project.delete", &p.slug)?;
            let issues = store::purge_deleted_projects(&*store, None)?;
            let issues = if issues == 1 { "1 issue".to_string() } else { format!("{issues} issues") };
            println!("Deleted the project \"{}\": {issues} and their events. Its keys no longer work.", p.slug);
        }
    }
    Ok(())
}

/// Asks on the terminal to type `word` before something that can't be undone (`what`), unless
/// `yes`. Without a terminal, and without `yes`, nothing is done and the hint names `--yes`.
pub fn confirm(what: &str, word: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("{what} can't be undone, and standard input is not a terminal to ask you; add --yes to do it anyway");
    }
    eprint!("{what} can't be undone. Type {word} to go on: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the answer")?;
    if line.trim() != word {
        bail!("you typed something else than {word}; nothing was deleted");
    }
    Ok(())
}

fn project_by_slug(store: &Arc<dyn Store>, slug: &str) -> Result<store::Project> {
    match store.project_by_slug(slug)? {
        Some(p) => Ok(p),
        None => {
            let names: Vec<String> = store.projects()?.into_iter().map(|p| p.slug).collect();
            bail!("there is no project \"{slug}\"; the projects are: {}", names.join(", "))
        }
    }
}

pub fn key(config: &Config, cmd: KeyCommand) -> Result<()> {
    let store = open_store(config)?;
    match cmd {
        KeyCommand::Create { project, label, rate_limit, json } => {
            let p = project_by_slug(&store, &project)?;
            let key = store.create_key(p.id, label.as_deref(), rate_limit)?;
            let dsn = dsn(config, &key.public_key, p.id)?;
            if json {
                println!("{}", json!({"key": key.public_key, "dsn": dsn, "project": p.slug, "rate_limit_per_minute": rate_limit}));
            } else {
                println!("Created a key for \"{}\". Its DSN:\n  {dsn}", p.slug);
            }
        }
        KeyCommand::List { project, json } => {
            let p = project_by_slug(&store, &project)?;
            let keys = store.keys(p.id)?;
            if json {
                let rows: Vec<Value> = keys
                    .iter()
                    .map(|k| {
                        Ok(json!({
                            "key": k.public_key, "label": k.label, "dsn": dsn(config, &k.public_key, p.id)?,
                            "rate_limit_per_minute": k.rate_limit_per_minute, "revoked": !k.is_active(),
                        }))
                    })
                    .collect::<Result<_>>()?;
                println!("{}", Value::Array(rows));
            } else {
                for k in keys {
                    let state = if k.is_active() { "active " } else { "revoked" };
                    println!("{state}  {}  {}", dsn(config, &k.public_key, p.id)?, k.label.unwrap_or_default());
                }
            }
        }
        KeyCommand::Revoke { key } => {
            if !store.revoke_key(&key)? {
                bail!("there is no key {key}; `sentry key list --project SLUG` shows a project's keys");
            }
            println!("Revoked the key {key}. Events sent with it are refused from now on.");
        }
    }
    Ok(())
}

/// RFC 3339 text of unix seconds, in UTC, to the millisecond.
pub fn rfc3339(ts: f64) -> String {
    let nanos = (ts * 1e9) as i128;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// RFC 3339 text of unix seconds, in UTC, always with three digits of milliseconds
/// (`2026-12-01T12:00:03.120Z`), so that a column of them lines up.
pub fn rfc3339_millis(ts: f64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos((ts * 1e9) as i128)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

pub fn group_json(store: &Arc<dyn Store>, g: &store::GroupRow) -> Result<Value> {
    let tags: serde_json::Map<String, Value> = store
        .group_tags(g.id, 10)?
        .into_iter()
        .map(|(k, vals)| (k, serde_json::to_value(vals).unwrap_or(Value::Null)))
        .collect();
    Ok(json!({
        "id": g.id,
        "project_id": g.project_id,
        "kind": g.kind,
        "title": g.title,
        "culprit": g.culprit,
        "count": g.count,
        "first_seen": rfc3339(g.first_seen),
        "last_seen": rfc3339(g.last_seen),
        "status": g.status.as_str(),
        "level": g.level,
        "logger": g.logger,
        "hash": g.hash,
        "last_event_id": g.last_event_id,
        "time_spent": g.time_spent.as_ref().map(|t| json!({
            "count": t.count, "avg_ms": t.avg_ms, "p95_ms": t.p95_ms, "max_ms": t.max_ms, "min_ms": t.min_ms,
        })),
        "tags": tags,
        "components": serde_json::from_str::<Value>(&g.components).unwrap_or(Value::Null),
    }))
}

/// How long `sentry groups` and `sentry events` wait for a running server to store what it
/// has acknowledged.
const SPOOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The store, once a server running on the same data has stored every event it acknowledged
/// before now (they wait in its spool for a moment): what was just sent is in the answer.
fn settled_store(config: &Config) -> Result<Arc<dyn store::Store>> {
    let store = open_store(config)?;
    if let Some(queue) = store.queue() {
        // Any node may have received it; whichever stores it, it leaves the shared queue.
        let target = queue.newest()?;
        let deadline = std::time::Instant::now() + SPOOL_WAIT;
        while !queue.stored_through(target)? {
            if std::time::Instant::now() >= deadline {
                eprintln!("note: the nodes have not stored everything they received yet; this shows what is stored so far");
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        return Ok(store);
    }
    if !server_running(config) {
        return Ok(store);
    }
    let dir = config.spool_dir();
    let Some(target) = spool::written_end(&dir)? else { return Ok(store) };
    let id = spool::Spool::identity(&dir)?;
    let deadline = std::time::Instant::now() + SPOOL_WAIT;
    while store.spool_mark(&id)?.unwrap_or(0) < target {
        if std::time::Instant::now() >= deadline {
            eprintln!(
                "note: the running server has not stored everything it received yet; this shows what is stored so far"
            );
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(store)
}

/// Whether a server holds the data directory's lock.
fn server_running(config: &Config) -> bool {
    let Ok(file) = std::fs::File::open(config.lock_file()) else { return false };
    matches!(file.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
}

pub fn groups(config: &Config, args: GroupsArgs) -> Result<()> {
    let store = settled_store(config)?;
    let p = project_by_slug(&store, &args.project)?;
    let mut q = StreamQuery::new(p.id, store::now());
    q.sparkline_points = 0;
    q.sort = Sort::parse(&args.sort)
        .with_context(|| format!("unknown sort \"{}\"; use one of: {}", args.sort, Sort::NAMES.join(", ")))?;
    q.status = match args.status.as_str() {
        "all" => StatusFilter::All,
        s => StatusFilter::Only(
            GroupStatus::parse(s)
                .with_context(|| format!("unknown status \"{s}\"; use unresolved, resolved, ignored or all"))?,
        ),
    };
    q.limit = args.limit;
    let rows: Vec<store::GroupRow> = store.stream(&q)?.rows.into_iter().map(|r| r.group).collect();
    if args.json {
        let out = rows.iter().map(|g| group_json(&store, g)).collect::<Result<Vec<_>>>()?;
        println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No {} groups in \"{}\".", args.status, p.slug);
        return Ok(());
    }
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|g| {
            let avg = g.time_spent.as_ref().map(|t| format!("{:.1}", t.avg_ms)).unwrap_or_default();
            [g.id.to_string(), g.count.to_string(), g.kind.clone(), g.level.clone(), avg, g.title.clone()]
        })
        .collect();
    let table = Table::new(["ID", "COUNT", "KIND", "LEVEL", "AVG MS", "TITLE"], &cells);
    println!("{}", table.line(&table.header));
    for (g, row) in rows.iter().zip(&cells) {
        println!("{}", table.line(row));
        // The culprit (where it happened) goes under the title.
        if !g.culprit.is_empty() {
            println!("{:width$}{}", "", g.culprit, width = table.offset(5));
        }
    }
    Ok(())
}

/// A table of left-aligned columns, each as wide as its widest cell, two spaces apart.
struct Table<const N: usize> {
    header: [String; N],
    widths: [usize; N],
}

impl<const N: usize> Table<N> {
    fn new(header: [&str; N], rows: &[[String; N]]) -> Self {
        let header = header.map(str::to_string);
        let mut widths = [0; N];
        for row in std::iter::once(&header).chain(rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        Table { header, widths }
    }

    /// Where column `i` starts, in characters.
    fn offset(&self, i: usize) -> usize {
        self.widths[..i].iter().map(|w| w + 2).sum()
    }

    /// One row as text; the last column is not padded.
    fn line(&self, row: &[String; N]) -> String {
        let mut out = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < N {
                out.push_str(&format!("{cell:<width$}  ", width = self.widths[i]));
            } else {
                out.push_str(cell);
            }
        }
        out
    }
}

/// `sentry assign GROUP --to WHO`.
pub fn assign(config: &Config, args: crate::cli::AssignArgs) -> Result<()> {
    let store = open_store(config)?;
    let g = store.group(GroupId(args.group))?.with_context(|| format!("there is no group {}; see `sentry groups --project SLUG`", args.group))?;
    let p = store.project(g.project_id)?.with_context(|| format!("group {} belongs to a deleted project", g.id))?;
    let who = args.to.trim();
    let to = if who.eq_ignore_ascii_case("nobody") {
        None
    } else {
        // Named as the dashboard's assign menu and search name them.
        let ctx = web::dashboard::search::SearchContext::of_org(&*store, p.org_id)?;
        Some(ctx.assignee(who).map_err(|why| anyhow::anyhow!("{why} (the organisation of \"{}\"), or nobody", p.slug))?)
    };
    let changed = store.assign_group(g.id, to)?;
    let whom = if to.is_none() { "nobody".to_string() } else { who.to_string() };
    if changed {
        println!("Assigned group {} ({}) to {whom}.", g.id, g.title);
    } else {
        println!("Group {} was already assigned to {whom}; nothing changed.", g.id);
    }
    Ok(())
}

pub fn events(config: &Config, args: EventsArgs) -> Result<()> {
    let store = settled_store(config)?;
    let group = GroupId(args.group);
    if store.group(group)?.is_none() {
        bail!("there is no group {}; `sentry groups --project SLUG` lists them", args.group);
    }
    let rows = store.group_events(group, None, args.limit)?;
    if args.json {
        let out: Vec<Value> = rows
            .iter()
            .map(|e| {
                json!({
                    "event_id": e.event_id,
                    "group_id": e.group_id,
                    "project_id": e.project_id,
                    "kind": e.kind,
                    "timestamp": rfc3339(e.timestamp),
                    "received": rfc3339(e.received),
                    "level": e.level,
                    "title": e.title,
                    "tags": e.tags,
                    "time_spent": e.time_spent,
                    "payload": serde_json::from_slice::<Value>(&e.payload).unwrap_or(Value::Null),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
        return Ok(());
    }
    for e in rows {
        println!("{}  {}  {:<8} {}", e.event_id, rfc3339_millis(e.timestamp), e.level, e.title);
    }
    Ok(())
}

/// `sentry logs --project SLUG [--level L] [--search Q]`: the project's logs, newest first.
pub fn logs(config: &Config, args: crate::cli::LogsArgs) -> Result<()> {
    if args.limit == 0 || args.limit > store::MAX_LOG_PAGE {
        anyhow::bail!("--limit must be between 1 and {}", store::MAX_LOG_PAGE);
    }
    let search = match &args.level {
        Some(level) => format!("{} level:{level}", args.search),
        None => args.search.clone(),
    };
    let store = settled_store(config)?;
    let p = project_by_slug(&store, &args.project)?;
    let (query, problems) = web::dashboard::logs::log_query(p.id, &search, args.limit);
    if let Some(first) = problems.first() {
        anyhow::bail!("{first}");
    }
    let rows = store.logs(&query)?;
    if args.json {
        let out: Vec<Value> = rows
            .iter()
            .map(|l| {
                json!({
                    "id": l.log_id,
                    "timestamp": rfc3339(l.timestamp),
                    "level": l.level,
                    "body": l.body,
                    "template": l.template,
                    "trace_id": l.trace_id,
                    "release": l.release,
                    "environment": l.environment,
                    "attributes": serde_json::from_str::<Value>(&l.attributes).unwrap_or(Value::Null),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No logs in \"{}\"{}.", p.slug, if search.trim().is_empty() { "" } else { " that match" });
        return Ok(());
    }
    for l in rows {
        println!("{}  {:<5}  {}", rfc3339_millis(l.timestamp), l.level, l.body);
    }
    Ok(())
}

/// `sentry releases --project SLUG`: the project's releases (created ones, newest first, then
/// those known only from the sessions SDKs report), with their health over the last 14 days.
pub fn releases(config: &Config, args: crate::cli::ReleasesArgs) -> Result<()> {
    let store = settled_store(config)?;
    let p = project_by_slug(&store, &args.project)?;
    let now = store::now();
    let mut health = store.release_health(p.id, now - 14.0 * 86_400.0)?;
    let mut rows: Vec<(String, Option<f64>, Option<f64>, store::ReleaseHealth)> = Vec::new();
    for r in store.releases(p.org_id, Some(p.id), None, 1000)? {
        let h = health.iter().position(|h| h.release == r.version).map(|i| health.swap_remove(i)).unwrap_or_default();
        rows.push((r.version, Some(r.created_at), r.released_at, h));
    }
    rows.extend(health.into_iter().map(|h| (h.release.clone(), None, None, h)));
    if args.json {
        let out: Vec<Value> = rows
            .iter()
            .map(|(version, created, released, h)| {
                json!({
                    "version": version,
                    "created": created.map(rfc3339),
                    "released": released.map(rfc3339),
                    "sessions": h.sessions,
                    "crashed": h.crashed,
                    "abnormal": h.abnormal,
                    "errored": h.errored,
                    "users": h.users,
                    "crashed_users": h.crashed_users,
                    "crash_free_sessions": h.crash_free_sessions(),
                    "crash_free_users": h.crash_free_users(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No releases in \"{}\" yet.", p.slug);
        return Ok(());
    }
    let pct = |r: Option<f64>| r.map(|r| format!("{r:.2}%")).unwrap_or_else(|| "-".into());
    println!("{:<32} {:>9} {:>12} {:>12}", "RELEASE", "SESSIONS", "CRASH-FREE", "USERS OK");
    for (version, _, _, h) in &rows {
        println!("{version:<32} {:>9} {:>12} {:>12}", h.sessions, pct(h.crash_free_sessions()), pct(h.crash_free_users()));
    }
    Ok(())
}

/// `sentry feedback --project SLUG`: the project's user feedback, newest first.
pub fn feedback(config: &Config, args: crate::cli::FeedbackArgs) -> Result<()> {
    let store = settled_store(config)?;
    let p = project_by_slug(&store, &args.project)?;
    let rows = store.feedback(p.id, args.limit)?;
    if args.json {
        let out: Vec<Value> = rows
            .iter()
            .map(|f| {
                json!({
                    "id": f.feedback_id,
                    "timestamp": rfc3339(f.timestamp),
                    "name": f.name,
                    "email": f.email,
                    "message": f.message,
                    "url": f.url,
                    "event_id": f.event_id,
                    "group_id": f.group_id,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No feedback in \"{}\".", p.slug);
        return Ok(());
    }
    for f in rows {
        let who = match (f.name.is_empty(), f.email.is_empty()) {
            (false, false) => format!("{} <{}>", f.name, f.email),
            (false, true) => f.name.clone(),
            (true, false) => f.email.clone(),
            (true, true) => "someone".to_string(),
        };
        let issue = f.group_id.map(|g| format!("  (issue {g})")).unwrap_or_default();
        println!("{}  {who}{issue}", rfc3339_millis(f.timestamp));
        for line in f.message.lines() {
            println!("    {line}");
        }
    }
    Ok(())
}

/// `sentry monitors`: a project's cron monitors, each with its schedule, state and recent runs.
pub fn monitors(config: &Config, args: crate::cli::MonitorsArgs) -> Result<()> {
    let store = settled_store(config)?;
    let p = project_by_slug(&store, &args.project)?;
    let monitors = store.monitors(p.id)?;
    let runs_limit = args.runs.min(1000);
    let opt_time = |t: Option<f64>| t.map(rfc3339);
    if args.json {
        let mut out = Vec::new();
        for m in &monitors {
            let runs: Vec<Value> = store
                .monitor_runs(m.id, runs_limit)?
                .iter()
                .map(|r| {
                    json!({
                        "status": r.status,
                        "check_in_id": r.check_in_id,
                        "started": rfc3339(r.started),
                        "finished": opt_time(r.finished),
                        "duration": r.duration,
                        "release": r.release,
                        "environment": r.environment,
                    })
                })
                .collect();
            out.push(json!({
                "slug": m.slug,
                "status": m.status,
                "schedule": { "type": m.config.schedule.kind(), "value": m.config.schedule.value() },
                "schedule_text": m.config.describe(),
                "timezone": m.config.timezone,
                "checkin_margin": m.config.margin_minutes,
                "max_runtime": m.config.max_runtime_minutes,
                "last_check_in": opt_time(m.last_check_in),
                "next_expected": opt_time(m.next_expected),
                "runs": runs,
            }));
        }
        println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
        return Ok(());
    }
    if monitors.is_empty() {
        println!("No cron monitors in \"{}\": a job's first check-in with a monitor_config creates one.", p.slug);
        return Ok(());
    }
    for m in &monitors {
        println!("{}  {}  {}", m.slug, m.status, m.config.describe());
        let last = m.last_check_in.map_or("never".to_string(), rfc3339);
        let next = m.next_expected.map_or("-".to_string(), rfc3339);
        println!("    last check-in {last}, next expected {next}");
        for r in store.monitor_runs(m.id, runs_limit)? {
            let took = r.duration.map(|d| format!("  {d:.1} s")).unwrap_or_default();
            println!("    {}  {}{took}", rfc3339(r.started), r.status);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_dsn_parses_back_to_the_same_parts() {
        let key = "0123456789abcdef0123456789abcdef";
        let cases = [
            (None, "127.0.0.1:9000", ""),
            (Some("https://example.com/sentry"), "example.com", "/sentry"),
            (Some("https://example.com/sentry/"), "example.com", "/sentry"),
            (Some("http://sentry.internal:8080"), "sentry.internal:8080", ""),
            (Some("https://example.com:8443/a/b"), "example.com:8443", "/a/b"),
        ];
        for (url, host, path) in cases {
            let config = Config { url: url.map(String::from), bind: "127.0.0.1:9000".parse().unwrap(), ..Config::default() };
            let printed = dsn(&config, key, ProjectId(42)).unwrap();
            let back: Dsn = printed.parse().unwrap_or_else(|e| panic!("{printed}: {e}"));
            assert_eq!(back.key(), PublicKey(key.into()), "{printed}");
            assert_eq!(back.host, host, "{printed}");
            assert_eq!(back.path, path, "{printed}");
            assert_eq!(back.project(), Some(ProjectId(42)), "{printed}");
            assert_eq!(back.to_string(), printed);
        }
    }

    #[test]
    fn a_public_url_that_cannot_make_a_dsn_is_an_error() {
        let config = Config { url: Some("http://host:port".into()), ..Config::default() };
        let err = dsn(&config, "k", ProjectId(1)).unwrap_err();
        assert!(format!("{err:#}").contains("http://host:port"), "{err:#}");
    }
}
