//! `sentry start` and `sentry stop`: the server in the foreground (`--no-daemon`) or detached
//! with a pid file and a log file; graceful shutdown on SIGTERM or Ctrl-C (stop accepting,
//! finish requests in flight, write everything queued, exit). A running server holds a lock on
//! its data directory (`sentry.lock`), so a second one on the same data refuses to start.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ingest::{Pipeline, PipelineConfig};

use crate::admin;
use crate::cli::StartArgs;
use crate::config::Config;

/// Set in the environment of the detached child, so that it writes the pid file.
const DAEMON_CHILD: &str = "SENTRY_DAEMON_CHILD";

pub fn start(path: &Path, args: StartArgs) -> Result<()> {
    let bind = match &args.bind {
        Some(text) => Some(crate::config::parse_bind(text).with_context(|| {
            format!("--bind {text}: not an address; write it as IP:PORT or HOST:PORT, for example 127.0.0.1:9000 or localhost:9000")
        })?),
        None => None,
    };
    let mut config = if path.exists() {
        Config::load(path)?
    } else {
        println!("No config file at {} yet: creating one first.", path.display());
        // The project and its DSN come with the server's first start, on the right address.
        admin::write_config(path, bind)?
    };
    if let Some(bind) = bind {
        config.bind = bind;
    }
    if args.no_daemon {
        serve(config, args.debug)
    } else {
        detach(path, &config, &args)
    }
}

/// Starts this same binary in the background with `--no-daemon`, logging to the log file, and
/// waits until that child is listening: it writes its pid to the pid file only once it has
/// bound the port. If the child exits instead, its last words in the log are shown.
fn detach(path: &Path, config: &Config, args: &StartArgs) -> Result<()> {
    if let Some(pid) = running_pid(config) {
        bail!("Sentry is already running (pid {pid}); stop it with `sentry stop`");
    }
    std::fs::create_dir_all(&config.data_dir)?;
    // No live process has this pid file: it is left over from a crash.
    let _ = std::fs::remove_file(config.pid_file());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.log_file())
        .with_context(|| format!("opening the log file {}", config.log_file().display()))?;
    // Where this start's lines begin in the log.
    let log_start = log.metadata()?.len();
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--config").arg(path).arg("start").arg("--no-daemon").arg("--bind").arg(config.bind.to_string());
    if args.debug {
        cmd.arg("--debug");
    }
    use std::os::unix::process::CommandExt;
    cmd.env(DAEMON_CHILD, "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().context("starting the server in the background")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            let said = log_since(&config.log_file(), log_start, 10);
            bail!(
                "the server stopped at once ({status}). Its log said:\n{said}\nThe whole log: {}",
                config.log_file().display()
            );
        }
        let listening = std::fs::read_to_string(config.pid_file())
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            == Some(child.id());
        if listening {
            println!("Sentry is running in the background (pid {}).", child.id());
            println!("  Dashboard and API: {}/", config.public_url());
            println!("  Data: {}", config.data_dir.display());
            println!("  Log: {}", config.log_file().display());
            println!("  Stop it with: sentry stop");
            if let Ok(store) = crate::open_store(config) {
                print_dsns(config, &store, "  ")?;
            }
            // The server printed its setup link to the log before it wrote the pid file. Show
            // that same link: making another one here would make the logged one stop working.
            if let Some(link) = setup_link_in_log(&config.log_file(), log_start) {
                println!("  No one can log in yet. Open this one-time link to set the administrator's password:\n    {link}");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the server (pid {}) did not start listening within 30 s; see its log: {}",
        child.id(),
        config.log_file().display()
    )
}

/// What the log file says after byte `start`, indented: its `error:` lines if it has some,
/// else its last `max` non-empty lines.
fn log_since(log: &Path, start: u64, max: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(log)
        && file.seek(SeekFrom::Start(start)).is_ok()
    {
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    // The error the server exited with is what matters; else the last lines say the most.
    let errors: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("error: ")).collect();
    if !errors.is_empty() {
        lines = errors;
    }
    if lines.is_empty() {
        return "  (nothing)".to_string();
    }
    lines[lines.len().saturating_sub(max)..].iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

/// The last setup link (`…/setup/TOKEN`) the log file shows after byte `start`: the one this
/// start's server printed.
fn setup_link_in_log(log: &Path, start: u64) -> Option<String> {
    let mut file = File::open(log).ok()?;
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines().map(str::trim).rfind(|l| l.starts_with("http") && l.contains("/setup/")).map(str::to_string)
}

/// One line per project with an active key: `Project "slug": DSN …`.
fn print_dsns(config: &Config, store: &Arc<dyn store::Store>, indent: &str) -> Result<()> {
    for p in store.projects()? {
        if let Some(k) = store.keys(p.id)?.into_iter().find(|k| k.is_active()) {
            println!("{indent}Project \"{}\": DSN {}", p.slug, admin::dsn(config, &k.public_key, p.id)?);
        }
    }
    Ok(())
}

/// Takes the data directory's lock file for as long as the returned file is open (the life of
/// the process), and writes this process's id into it. Another server holding it: an error
/// that names its pid.
fn lock_data_dir(config: &Config) -> Result<File> {
    let path = config.lock_file();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let who = match text.trim().parse::<u32>() {
                Ok(pid) => format!("another Sentry (pid {pid})"),
                Err(_) => "another Sentry".to_string(),
            };
            bail!(
                "{who} is using the data directory {}; stop it first (`sentry stop`, or Ctrl-C where it runs), \
                 or give this one another data_dir",
                config.data_dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    file.set_len(0)?;
    file.write_all(std::process::id().to_string().as_bytes())?;
    Ok(file)
}

fn running_pid(config: &Config) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(config.pid_file()).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// `sentry stop`: SIGTERM to the daemon, then wait for it to finish writing.
pub fn stop(config: &Config) -> Result<()> {
    let Some(pid) = running_pid(config) else {
        bail!("Sentry is not running in the background (no live process in {})", config.pid_file().display());
    };
    let status = Command::new("kill").arg("-TERM").arg(pid.to_string()).status()?;
    if !status.success() {
        bail!("could not signal process {pid}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        bail!("process {pid} is still running after 60 s");
    }
    let _ = std::fs::remove_file(config.pid_file());
    println!("Sentry stopped.");
    Ok(())
}

fn init_logging(config: &Config, debug: bool) {
    let level = if debug { "debug" } else { config.log_level.as_str() };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SENTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},hyper=info,h2=info")));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// Files the server keeps open besides its connections: the database, the spool's segments,
/// logs, outgoing connections to plugins and databases.
const FILES_BESIDE_CONNECTIONS: u64 = 1_024;

/// Raises the soft open-file limit to the hard one, since every connection is a file; warns
/// when even that is too low for `limits.max_connections`, because accepting then fails with
/// "Too many open files" before the cap is reached.
fn raise_open_file_limit(max_connections: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    let below_hard = match (limit.current, limit.maximum) {
        (Some(current), Some(maximum)) => current < maximum,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard && setrlimit(Resource::Nofile, rustix::process::Rlimit { current: limit.maximum, ..limit }).is_ok() {
        limit.current = limit.maximum;
    }
    // None: unlimited.
    let Some(current) = limit.current else { return };
    let needed = max_connections as u64 + FILES_BESIDE_CONNECTIONS;
    if current < needed {
        tracing::warn!(
            open_file_limit = current,
            max_connections,
            "the open-file limit is below limits.max_connections + {FILES_BESIDE_CONNECTIONS}: raise it (`ulimit -n`, or LimitNOFILE= \
             in a systemd unit) or lower limits.max_connections, or new connections fail with \"Too many open files\" before the cap"
        );
    }
}

/// Runs the server in this process until SIGTERM or Ctrl-C.
fn serve(config: Config, debug: bool) -> Result<()> {
    init_logging(&config, debug);
    raise_open_file_limit(config.limits.max_connections);
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    // Held until this function returns: while the server runs.
    let _lock = lock_data_dir(&config)?;
    let store = crate::open_store(&config)?;
    if admin::ensure_default_project(&store)? {
        println!("Created the project \"default\"; its DSN is below.");
    }
    let writer = store.start_writer(config.ingest.batch_max)?;
    start_housekeeping(store.clone(), Arc::new(config.clone()));
    let spool = open_spooler(&config, &store)?;
    let pipeline = Pipeline::new(
        store.clone(),
        writer,
        spool,
        PipelineConfig {
            limits: config.protocol_limits(),
            queue_capacity: config.ingest.queue_capacity,
            batch_max: config.ingest.batch_max,
            per_key_per_minute: config.rate_limits.per_key_per_minute,
            per_project_per_minute: config.rate_limits.per_project_per_minute,
            max_inflight_bytes: config.ingest.max_inflight_bytes,
            project_limits: project_limits(&config, &store)?,
            scrub: ingest::scrub::ScrubConfig::default(),
            project_scrub: project_scrub(&config, &store)?,
            max_logs_per_second: config.ingest.max_logs_per_second,
        },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let cluster = match &config.redis.url {
        Some(url) => {
            let _guard = runtime.enter();
            Some(crate::cluster::join(url, &pipeline)?)
        }
        None => None,
    };
    // Notifications: rules over what the pipeline stores, deliveries through the outbox.
    let alerts = {
        let _guard = runtime.enter();
        let links: Arc<dyn alerts::Links> = Arc::new(DashboardLinks(web::dashboard::Links::new(&config.public_url())));
        alerts::start(store.clone(), pipeline.subscribe(), config.alert_config(), links)
    };
    // Cron monitors: missed check-ins, runs past their time, failures made issues.
    let _monitors = {
        let _guard = runtime.enter();
        crate::monitors::start(store.clone(), pipeline.clone(), Duration::from_secs(config.monitors.check_interval_secs))
    };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.bind).await.with_context(|| {
            format!("cannot listen on {}: is another server using that port? Choose another with --bind", config.bind)
        })?;
        let addr = listener.local_addr()?;
        ignore_file_size_signal();
        let public = config.public_url();
        println!("Sentry is listening on http://{addr} (public URL {public}/)");
        println!("Data is kept in {}", config.data_dir.display());
        print_dsns(&config, &store, "")?;
        println!("Dashboard: {public}/");
        if let Some(link) = crate::users::setup_link(&config, &store)? {
            println!("No one can log in yet. Open this one-time link to set the administrator's password:\n  {link}");
        }
        // Only now: the parent (`detach`) waits for the pid file, then reads the setup link
        // printed above from the log.
        if std::env::var_os(DAEMON_CHILD).is_some() {
            std::fs::write(config.pid_file(), std::process::id().to_string())?;
        }
        tracing::info!(%addr, data = %config.data_dir.display(), "listening");
        let timeout = Duration::from_secs(config.ingest.request_timeout_secs);
        let dashboard = web::dashboard::DashboardConfig {
            slices: config.projects.iter().filter_map(|(slug, p)| Some((slug.clone(), p.slices.clone()?))).collect(),
            retention_days: config.retention.days,
            project_retention_days: config.projects.iter().filter_map(|(slug, p)| Some((slug.clone(), p.retention_days?))).collect(),
            max_bytes: config.store.max_bytes,
            login_hashes: config.limits.max_login_hashes,
        };
        let dashboard = Arc::new(web::dashboard::Dashboard::new(dashboard, &public));
        if let Some(redis) = &cluster {
            crate::cluster::share_logins(redis, &dashboard);
        }
        let app = web::router(web::AppState {
            store: store.clone(),
            pipeline: pipeline.clone(),
            public_url: public,
            request_timeout: timeout,
            metrics: web::Metrics::new(),
            dashboard: dashboard.clone(),
            probes: cluster.iter().map(crate::cluster::probe).collect(),
            upload_dir: config.data_dir.clone(),
        });
        // Live streams (server-sent events) never end by themselves: they are closed first, so
        // the requests in flight can finish.
        let stop = async move {
            shutdown_signal().await;
            dashboard.shutdown();
        };
        let options = web::serve::Options {
            header_timeout: timeout,
            max_connections: config.limits.max_connections,
            trusted_proxies: config.trusted_proxies.clone(),
        };
        web::serve::serve_with(listener, app, options, stop).await;
        anyhow::Ok(())
    });
    tracing::info!("writing what is still queued");
    pipeline.shutdown();
    runtime.block_on(alerts.shutdown());
    runtime.shutdown_timeout(Duration::from_secs(5));
    if std::env::var_os(DAEMON_CHILD).is_some() {
        let _ = std::fs::remove_file(config.pid_file());
    }
    tracing::info!("stopped");
    result
}

/// Where received events wait to be stored: with PostgreSQL, the queue every node shares
/// (after what a spool in the data directory still holds from before); else the spool in the
/// data directory.
fn open_spooler(config: &Config, store: &Arc<dyn store::Store>) -> Result<ingest::Spooler> {
    let Some(queue) = store.queue() else { return Ok(ingest::Spooler::Local(open_spool(config, store)?)) };
    let dir = config.spool_dir();
    let leftover = match spool::written_end(&dir)? {
        Some(end) if store.spool_mark(&spool::Spool::identity(&dir)?)?.unwrap_or(0) < end => {
            let local = open_spool(config, store)?;
            // Nothing more is appended to it: read to its end, it is done.
            local.close();
            Some(local)
        }
        _ => None,
    };
    let lease = std::time::Duration::from_secs(config.store.queue_lease_secs);
    Ok(ingest::Spooler::Shared(ingest::SharedSpool::new(queue, config.ingest.spool_max_bytes, lease, leftover)))
}

/// Opens the spool in the data directory, from where the store says it was applied; what was
/// acknowledged and not yet stored (a crash, a stop during an outage) is stored first.
fn open_spool(config: &Config, store: &Arc<dyn store::Store>) -> Result<spool::Spool> {
    let dir = config.spool_dir();
    let id = spool::Spool::identity(&dir).with_context(|| format!("opening the spool in {}", dir.display()))?;
    let mark = store.spool_mark(&id)?;
    let settings =
        spool::SpoolConfig { max_bytes: config.ingest.spool_max_bytes, segment_bytes: config.ingest.spool_segment_bytes };
    let opened = spool::Spool::open(&dir, settings, mark).with_context(|| format!("opening the spool in {}", dir.display()))?;
    if opened.replay_events > 0 || opened.replay_records > 0 {
        tracing::info!(
            events = opened.replay_events,
            records = opened.replay_records,
            "storing events acknowledged before the last stop"
        );
    }
    Ok(opened.spool)
}

/// `[projects.<slug>] rate_limit_per_minute`, by project id. Slugs with no project yet are
/// named in the log.
fn project_limits(config: &Config, store: &Arc<dyn store::Store>) -> Result<std::collections::HashMap<store::ProjectId, u64>> {
    let mut limits = std::collections::HashMap::new();
    for (slug, p) in &config.projects {
        let Some(limit) = p.rate_limit_per_minute else { continue };
        match store.project_by_slug(slug)? {
            Some(project) => {
                limits.insert(project.id, limit);
            }
            None => tracing::warn!(project = %slug, "[projects.{slug}] names no project; its rate limit is not used"),
        }
    }
    Ok(limits)
}

/// `[projects.<slug>]` scrubbing settings, by project id, for the projects that set any.
fn project_scrub(
    config: &Config,
    store: &Arc<dyn store::Store>,
) -> Result<std::collections::HashMap<store::ProjectId, ingest::scrub::ScrubConfig>> {
    let mut out = std::collections::HashMap::new();
    for (slug, p) in &config.projects {
        let scrub = p.scrub();
        if scrub == ingest::scrub::ScrubConfig::default() {
            continue;
        }
        match store.project_by_slug(slug)? {
            Some(project) => {
                out.insert(project.id, scrub);
            }
            None => tracing::warn!(project = %slug, "[projects.{slug}] names no project; its scrubbing settings are not used"),
        }
    }
    Ok(out)
}

/// Every minute: brings back issues whose snooze time is over, deletes what deleted projects
/// left (up to 10,000 issues a minute), and keeps the size cap (SQLite's writer also keeps it
/// after each batch); a minute after start and then every hour, deletes what is past retention
/// (logs past their own, `retention.logs_days`) and upload chunks never assembled within a day.
fn start_housekeeping(store: Arc<dyn store::Store>, config: Arc<Config>) {
    let cap = config.store.max_bytes;
    if cap > 0 {
        store.set_size_cap(cap);
    }
    let spawned = std::thread::Builder::new().name("housekeeping".into()).spawn(move || {
        let mut next_retention = Instant::now() + Duration::from_secs(60);
        loop {
            // Issues snoozed until a time come back by themselves (those snoozed for more events
            // or users come back when the writer stores them).
            match store.wake_snoozed(store::now()) {
                Ok(woken) if !woken.is_empty() => tracing::info!(issues = woken.len(), "snoozed issues came back: their time is over"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not bring back snoozed issues"),
            }
            match store::purge_deleted_projects(&*store, Some(20)) {
                Ok(n) if n > 0 => tracing::info!(issues = n, "deleted the issues of deleted projects"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not delete the data of deleted projects"),
            }
            if cap > 0 {
                match store.trim_to(cap) {
                    Ok(t) if t.events > 0 => tracing::info!(
                        events = t.events,
                        used = t.bytes_after,
                        max_bytes = cap,
                        "deleted the oldest events to stay under store.max_bytes"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not keep the data under store.max_bytes"),
                }
            }
            if Instant::now() >= next_retention {
                next_retention = Instant::now() + Duration::from_secs(3600);
                let run = admin::retention(&config, &*store, None)
                    .map_err(|e| e.to_string())
                    .and_then(|r| if r.keeps_everything() { Ok(None) } else { store.cleanup(&r, &mut |_| {}).map(Some).map_err(|e| e.to_string()) });
                match run {
                    Ok(Some(c)) if c.events + c.groups > 0 => tracing::info!(
                        events = c.events,
                        issues = c.groups,
                        retention = %admin::describe_retention(&config, None),
                        "deleted data past the retention period"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not delete data past the retention period"),
                }
                match admin::delete_old_logs(&config, &*store) {
                    Ok(Some(n)) if n > 0 => tracing::info!(logs = n, days = config.retention.logs_days, "deleted logs past their retention period"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not delete logs past their retention period"),
                }
                // Chunks uploaded but never put together into a file (an upload given up).
                match store.delete_stale_chunks(store::now() - store::UNASSEMBLED_CHUNK_SECS) {
                    Ok(n) if n > 0 => tracing::info!(chunks = n, "deleted upload chunks never assembled within a day"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not delete old upload chunks"),
                }
            }
            std::thread::sleep(Duration::from_secs(60));
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the retention cleanup");
    }
}

/// The dashboard's links, for notifications (the alert engine spells no dashboard URL).
pub(crate) struct DashboardLinks(pub(crate) web::dashboard::Links);

impl alerts::Links for DashboardLinks {
    fn issue(&self, project_slug: &str, group: store::GroupId) -> String {
        self.0.issue(project_slug, group)
    }
    fn project(&self, project_slug: &str) -> String {
        self.0.project(project_slug)
    }
}

/// A file-size limit (`ulimit -f`) reached while writing would kill the process with SIGXFSZ;
/// handled instead, the write fails like a full disk: the requests get 503 and nothing is lost.
fn ignore_file_size_signal() {
    let kind = tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ);
    if let Ok(mut signals) = tokio::signal::unix::signal(kind) {
        tokio::spawn(async move {
            while signals.recv().await.is_some() {
                tracing::error!("the file size limit was reached while writing the data file");
            }
        });
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: no new connections; finishing requests in flight");
}
