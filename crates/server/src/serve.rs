//! `sentry start` and `sentry stop`: the server in the foreground (`--no-daemon`) or detached
//! with a pid file and a log file; graceful shutdown on SIGTERM or Ctrl-C (stop accepting,
//! finish requests in flight, write everything queued, exit).

use std::net::{SocketAddr, TcpStream};
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
    let mut config = if path.exists() {
        Config::load(path)?
    } else {
        println!("No config file at {} yet: creating one first.", path.display());
        admin::init(path)?
    };
    if let Some(bind) = &args.bind {
        config.bind = bind
            .parse()
            .with_context(|| format!("--bind {bind}: not an address; write it as IP:PORT, for example 127.0.0.1:9000"))?;
    }
    if args.no_daemon {
        serve(config, args.debug)
    } else {
        detach(path, &config, &args)
    }
}

/// Starts this same binary in the background with `--no-daemon`, logging to the log file, and
/// waits until it answers.
fn detach(path: &Path, config: &Config, args: &StartArgs) -> Result<()> {
    if let Some(pid) = running_pid(config) {
        bail!("Sentry is already running (pid {pid}); stop it with `sentry stop`");
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.log_file())
        .with_context(|| format!("opening the log file {}", config.log_file().display()))?;
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
            bail!("the server stopped at once ({status}); see its log: {}", config.log_file().display());
        }
        if TcpStream::connect_timeout(&connect_addr(config.bind), Duration::from_millis(200)).is_ok() {
            println!("Sentry is running in the background (pid {}).", child.id());
            println!("  Dashboard and API: {}/", config.public_url());
            println!("  Data: {}", config.data_dir.display());
            println!("  Log: {}", config.log_file().display());
            println!("  Stop it with: sentry stop");
            // The server printed its setup link to the log; show a fresh one here instead.
            if let Ok(store) = crate::open_store(config)
                && let Ok(Some(link)) = crate::users::setup_link(config, &store)
            {
                println!("  No one can log in yet. Open this one-time link to set the administrator's password:\n    {link}");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the server did not answer within 30 s; see its log: {}", config.log_file().display())
}

fn connect_addr(bind: SocketAddr) -> SocketAddr {
    if bind.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], bind.port()))
    } else {
        bind
    }
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

/// Runs the server in this process until SIGTERM or Ctrl-C.
fn serve(config: Config, debug: bool) -> Result<()> {
    init_logging(&config, debug);
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = Arc::new(crate::open_store(&config)?);
    admin::ensure_default_project(&config, &store)?;
    let writer = store.start_writer(config.ingest.batch_max)?;
    let pipeline = Arc::new(Pipeline::new(
        store.clone(),
        writer,
        PipelineConfig {
            limits: config.protocol_limits(),
            queue_capacity: config.ingest.queue_capacity,
            per_key_per_minute: config.rate_limits.per_key_per_minute,
            per_project_per_minute: config.rate_limits.per_project_per_minute,
        },
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.bind).await.with_context(|| {
            format!("cannot listen on {}: is another server using that port? Choose another with --bind", config.bind)
        })?;
        let addr = listener.local_addr()?;
        if std::env::var_os(DAEMON_CHILD).is_some() {
            std::fs::write(config.pid_file(), std::process::id().to_string())?;
        }
        let public = config.public_url();
        println!("Sentry is listening on http://{addr} (public URL {public}/)");
        println!("Data is kept in {}", config.data_dir.display());
        for p in store.projects()? {
            if let Some(k) = store.keys(p.id)?.into_iter().find(|k| k.is_active()) {
                println!("Project \"{}\": DSN {}", p.slug, admin::dsn(&config, &k.public_key, p.id));
            }
        }
        println!("Dashboard: {public}/");
        if let Some(link) = crate::users::setup_link(&config, &store)? {
            println!("No one can log in yet. Open this one-time link to set the administrator's password:\n  {link}");
        }
        tracing::info!(%addr, data = %config.data_dir.display(), "listening");
        let dashboard = web::dashboard::DashboardConfig {
            slices: config.projects.iter().filter_map(|(slug, p)| Some((slug.clone(), p.slices.clone()?))).collect(),
        };
        let dashboard = Arc::new(web::dashboard::Dashboard::new(dashboard, &public));
        let app = web::router(web::AppState { pipeline: pipeline.clone(), public_url: public, dashboard: dashboard.clone() });
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let stop = async move {
            shutdown_signal().await;
            dashboard.shutdown();
        };
        axum::serve(listener, app).with_graceful_shutdown(stop).await?;
        anyhow::Ok(())
    });
    tracing::info!("writing what is still queued");
    pipeline.shutdown();
    runtime.shutdown_timeout(Duration::from_secs(5));
    if std::env::var_os(DAEMON_CHILD).is_some() {
        let _ = std::fs::remove_file(config.pid_file());
    }
    tracing::info!("stopped");
    result
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
