//! Real peers for the notification tests, on free loopback ports: an SMTP server (aiosmtpd in the
//! test venv, writing each message it parses to a directory), a GNTP receiver (the `gntp`
//! package in `.venv-peers`, likewise), an IRC server (Debian's ngircd, on a
//! generated config) with a reader client, and an HTTP receiver (a thread here) that records
//! every request. All of them stop on drop.

use std::{
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{clean_command, client_script, free_port, python, python_peers};

/// Waits until something listens on 127.0.0.1:`port`.
pub(super) fn wait_listening(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{what} exited at start with {status}:\n{}", fs::read_to_string(log).unwrap_or_default());
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 20 s:\n{}", fs::read_to_string(log).unwrap_or_default());
}

/// The `N.json` files a Python peer wrote to `dir`, in the order of N.
fn numbered_json(dir: &Path) -> Vec<Value> {
    let mut found: Vec<(u64, Value)> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n: u64 = name.strip_suffix(".json")?.parse().ok()?;
                    let text = fs::read_to_string(e.path()).ok()?;
                    Some((n, serde_json::from_str(&text).ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|(n, _)| *n);
    found.into_iter().map(|(_, v)| v).collect()
}

/// Waits until `get` returns at least `n` items; returns them all.
#[track_caller]
fn wait_for_n(what: &str, n: usize, timeout: Duration, get: impl Fn() -> Vec<Value>) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = get();
        if got.len() >= n {
            return got;
        }
        if Instant::now() > deadline {
            panic!("{} {what} arrived within {timeout:?}, expected {n}: {got:#?}", got.len());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Kills and reaps a peer's process, if it runs.
pub(super) fn stop(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// SMTP
// ---------------------------------------------------------------------------------------------

/// aiosmtpd (`tests/clients/python/smtp_peer.py`): every message received becomes `N.json` in
/// its directory (subject, sender, to, message_id, rcpt_tos, text, html, tls, authenticated).
pub struct SmtpPeer {
    dir: tempfile::TempDir,
    port: u16,
    starttls: Option<(String, String)>,
    child: Option<Child>,
}

impl SmtpPeer {
    /// A plain SMTP server on a free port.
    pub fn start() -> SmtpPeer {
        let mut peer = SmtpPeer::on_port(free_port());
        peer.launch();
        peer
    }

    /// A server that requires STARTTLS and AUTH as `user`/`password`; its CA is [`SmtpPeer::ca`].
    pub fn start_tls(user: &str, password: &str) -> SmtpPeer {
        let mut peer = SmtpPeer::on_port(free_port());
        peer.starttls = Some((user.into(), password.into()));
        peer.launch();
        peer
    }

    /// A peer for `port` that is not started yet (to test a mail server that is down).
    pub fn on_port(port: u16) -> SmtpPeer {
        let dir = tempfile::Builder::new().prefix("sentry-smtp-").tempdir().expect("temp dir");
        SmtpPeer { dir, port, starttls: None, child: None }
    }

    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "SMTP peer already running");
        let log_path = self.dir.path().join("smtp.log");
        let log = fs::File::create(&log_path).expect("smtp log");
        let mut cmd = clean_command(python());
        cmd.arg(client_script("smtp_peer.py")).arg(self.port.to_string()).arg(self.mail_dir());
        if let Some((u, p)) = &self.starttls {
            cmd.args(["--starttls", u, p]);
        }
        cmd.env("PYTHONUNBUFFERED", "1").stdout(log.try_clone().expect("fd")).stderr(log);
        let mut child = cmd.spawn().expect("starting the SMTP peer");
        wait_listening(self.port, "the SMTP peer", &mut child, &log_path);
        self.child = Some(child);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// The certificate authority the STARTTLS server's certificate is signed by (PEM).
    pub fn ca(&self) -> PathBuf {
        self.mail_dir().join("ca.pem")
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        numbered_json(&self.mail_dir())
    }

    /// Waits until at least `n` messages arrived; returns them all.
    #[track_caller]
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        wait_for_n("mail(s)", n, timeout, || self.messages())
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        stop(&mut self.child);
        if thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("kept the SMTP peer's dir: {}", self.dir.path().display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GNTP (network Growl)
// ---------------------------------------------------------------------------------------------

/// A GNTP receiver (`tests/clients/python/gntp_peer.py`, parsing with the `gntp` package from
/// PyPI in `.venv-peers`) that wants `password`: every message becomes `N.json` in its
/// directory (type, headers, notifications, or the error it answered).
pub struct GntpPeer {
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    child: Option<Child>,
}

impl GntpPeer {
    pub fn start(password: &str) -> GntpPeer {
        let mut peer = GntpPeer::on_port(free_port(), password);
        peer.launch();
        peer
    }

    /// A receiver for `port` that is not started yet.
    pub fn on_port(port: u16, password: &str) -> GntpPeer {
        let dir = tempfile::Builder::new().prefix("sentry-gntp-").tempdir().expect("temp dir");
        GntpPeer { dir, port, password: password.into(), child: None }
    }

    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "GNTP peer already running");
        let log_path = self.dir.path().join("gntp.log");
        let log = fs::File::create(&log_path).expect("gntp log");
        let mut cmd = clean_command(python_peers());
        cmd.arg(client_script("gntp_peer.py")).arg(self.port.to_string()).arg(self.dir.path().join("messages")).arg(&self.password);
        cmd.env("PYTHONUNBUFFERED", "1").env("PYTHONDONTWRITEBYTECODE", "1").stdout(log.try_clone().expect("fd")).stderr(log);
        let mut child = cmd.spawn().expect("starting the GNTP peer");
        wait_listening(self.port, "the GNTP peer", &mut child, &log_path);
        self.child = Some(child);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        numbered_json(&self.dir.path().join("messages"))
    }

    #[track_caller]
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        wait_for_n("GNTP message(s)", n, timeout, || self.messages())
    }
}

impl Drop for GntpPeer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

// ---------------------------------------------------------------------------------------------
// IRC
// ---------------------------------------------------------------------------------------------

/// Debian's ngircd on a free port, with a generated config.
pub struct IrcServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// Where ngircd is: on PATH, or in /usr/sbin (off PATH for non-root users).
fn ngircd() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("ngircd")).find(|p| p.exists()))
        .unwrap_or_default();
    on_path.unwrap_or_else(|| {
        let p = PathBuf::from("/usr/sbin/ngircd");
        assert!(p.exists(), "ngircd is not installed: run ./scripts/test.sh, which installs it");
        p
    })
}

impl IrcServer {
    pub fn start() -> IrcServer {
        IrcServer::start_on(free_port())
    }

    /// A server on `port` (to restart one where clients expect it).
    pub fn start_on(port: u16) -> IrcServer {
        let dir = tempfile::Builder::new().prefix("sentry-irc-").tempdir().expect("temp dir");
        let conf = dir.path().join("ngircd.conf");
        let motd = dir.path().join("motd");
        fs::write(&motd, "Sentry tests\n").expect("motd");
        fs::write(
            &conf,
            format!(
                "[Global]\n  Name = irc.sentry.test\n  Info = Sentry test IRC server\n  Listen = 127.0.0.1\n  Ports = {port}\n\
                 \x20 PidFile = {pid}\n  MotdFile = {motd}\n  AdminInfo1 = Sentry tests\n  AdminEMail = tests@sentry.test\n\
                 [Limits]\n  MaxNickLength = 30\n  PingTimeout = 120\n  PongTimeout = 20\n\
                 [Options]\n  DNS = no\n  Ident = no\n  PAM = no\n",
                pid = dir.path().join("ngircd.pid").display(),
                motd = motd.display(),
            ),
        )
        .expect("ngircd.conf");
        // ngircd drops root privileges to `nobody`, who must be able to read its files.
        let _ = Command::new("chmod").arg("-R").arg("a+rX").arg(dir.path()).status();
        let log_path = dir.path().join("ngircd.log");
        let log = fs::File::create(&log_path).expect("ngircd log");
        let mut child = Command::new(ngircd())
            .args(["--nodaemon", "--config"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("fd"))
            .stderr(log)
            .spawn()
            .expect("starting ngircd");
        wait_listening(port, "ngircd", &mut child, &log_path);
        IrcServer { dir, port, child: Some(child) }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("ngircd.log")).unwrap_or_default()
    }
}

impl IrcServer {
    /// Stops the server (every client is disconnected).
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }
}

impl Drop for IrcServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A second IRC client that joins a channel and reads what is said there.
pub struct IrcReader {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub nick: String,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl IrcReader {
    /// Connects to 127.0.0.1:`port` as `nick` and waits for the welcome.
    pub fn connect(port: u16, nick: &str) -> IrcReader {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to the IRC server");
        stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let mut r = IrcReader {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            nick: nick.into(),
            seen: Vec::new(),
        };
        r.send(&format!("NICK {nick}"));
        r.send(&format!("USER {nick} 0 * :test reader"));
        r.wait_line(Duration::from_secs(10), |l| l.split(' ').nth(1) == Some("001"));
        r
    }

    pub fn send(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).expect("writing to IRC");
    }

    /// Joins `channel` (creating it, so we are its operator) and, with a `key`, locks it (+k).
    pub fn join_and_lock(&mut self, channel: &str, key: Option<&str>) {
        self.send(&format!("JOIN {channel}"));
        let me = format!(":{}!", self.nick);
        self.wait_line(Duration::from_secs(10), |l| l.starts_with(&me) && l.contains(" JOIN "));
        if let Some(key) = key {
            self.send(&format!("MODE {channel} +k {key}"));
            self.wait_line(Duration::from_secs(10), |l| l.contains(" MODE ") && l.contains("+k"));
        }
    }

    /// Reads lines (answering PING) until one matches; panics after `timeout`.
    #[track_caller]
    pub fn wait_line(&mut self, timeout: Duration, mut matching: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let mut buf = Vec::new();
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => panic!("the IRC server closed the connection; lines so far: {:#?}", self.seen),
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if let Some(token) = line.strip_prefix("PING ") {
                        self.send(&format!("PONG {token}"));
                    }
                    self.seen.push(line.clone());
                    if matching(&line) {
                        return line;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    // A partial line stays in `buf` only if the read was interrupted mid-line;
                    // IRC servers send whole lines, so this is rare and harmless here.
                }
                Err(e) => panic!("reading from IRC: {e}"),
            }
            if Instant::now() > deadline {
                panic!("no matching IRC line within {timeout:?}; lines: {:#?}", self.seen);
            }
        }
    }

    /// The PRIVMSGs to `channel` read so far, as (sender nick, text).
    pub fn messages(&self, channel: &str) -> Vec<(String, String)> {
        self.seen
            .iter()
            .filter_map(|l| {
                let rest = l.strip_prefix(':')?;
                let (prefix, rest) = rest.split_once(' ')?;
                let text = rest.strip_prefix(&format!("PRIVMSG {channel} :"))?;
                Some((prefix.split('!').next()?.to_string(), text.to_string()))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// One request the [`HttpReceiver`] got.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// How an [`HttpReceiver`] answers a request: a status and a JSON or text body.
pub type Answer = Arc<dyn Fn(&Received) -> (u16, String) + Send + Sync>;

/// An HTTP/1.1 server on a free port (a thread) that records every request and answers it
/// (`200 ok`, or what its [`Answer`] says).
pub struct HttpReceiver {
    port: u16,
    requests: Arc<Mutex<Vec<Received>>>,
}

impl HttpReceiver {
    pub fn start() -> HttpReceiver {
        HttpReceiver::answering(Arc::new(|_| (200, "ok".into())))
    }

    /// A receiver on a free port that answers with `answer`.
    pub fn answering(answer: Answer) -> HttpReceiver {
        HttpReceiver::start_on(0, answer)
    }

    /// A receiver on `port` (0: any free one) that answers with `answer`.
    pub fn start_on(port: u16, answer: Answer) -> HttpReceiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the HTTP receiver");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, answer) = (seen.clone(), answer.clone());
                thread::spawn(move || serve(stream, &seen, &*answer));
            }
        });
        HttpReceiver { port, requests }
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests matched `filter`; returns those.
    #[track_caller]
    pub fn wait_for(&self, n: usize, timeout: Duration, filter: impl Fn(&Received) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got: Vec<Received> = self.requests().into_iter().filter(|r| filter(r)).collect();
            if got.len() >= n {
                return got;
            }
            if Instant::now() > deadline {
                panic!("{} matching request(s) within {timeout:?}, expected {n}; all: {:#?}", got.len(), self.requests());
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Received>>, answer: &(dyn Fn(&Received) -> (u16, String) + Send + Sync)) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let received = Received { method, path, headers, body };
        let (status, text) = answer(&received);
        seen.lock().unwrap().push(received);
        let kind = if text.starts_with('{') { "application/json" } else { "text/plain" };
        let head = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nContent-Type: {kind}\r\n\r\n", text.len());
        let _ = writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(text.as_bytes()));
    }
}
