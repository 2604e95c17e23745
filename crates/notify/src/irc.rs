//! The IRC plugin: a small client that connects (plain or TLS), registers, joins the channel
//! (with its key), posts one line per notification, answers PINGs, stays connected, and
//! reconnects with backoff when the connection drops.
//!
//! A post counts as delivered once the server has answered a PING sent right after the
//! PRIVMSG without an error in between (IRC has no acknowledgement of its own), so a refused
//! message ("cannot send to channel") is retried instead of being lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, timeout};

use crate::plugin::{Delivery, DeliveryError, Field, FieldKind, Plugin, SettingError, Settings, SettingsExt};
use crate::Notification;

const FIELDS: &[Field] = &[
    Field { name: "server", kind: FieldKind::Text, required: true, default: "", help: "the IRC server's host name, for example \"irc.libera.chat\"" },
    Field { name: "port", kind: FieldKind::Port, required: false, default: "", help: "unset, 6697 with tls and 6667 without" },
    Field { name: "tls", kind: FieldKind::Bool, required: false, default: "false", help: "connect with TLS" },
    Field { name: "nick", kind: FieldKind::Text, required: false, default: "\"sentry\"", help: "the nickname to post as (a _ is added while it is taken)" },
    Field { name: "password", kind: FieldKind::Secret, required: false, default: "", help: "the server password (PASS), if the server wants one" },
    Field { name: "channel", kind: FieldKind::Text, required: true, default: "", help: "the channel to post in, for example \"#ops\"" },
    Field { name: "channel_key", kind: FieldKind::Secret, required: false, default: "", help: "the channel's key (+k), if it has one" },
];

/// How long one post may wait for the connection, the JOIN and the server's answer.
const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Posts to IRC channels, one connection per server and nick, kept open.
#[derive(Default)]
pub struct Irc {
    connections: Mutex<HashMap<ConnKey, mpsc::Sender<Post>>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ConnKey {
    server: String,
    port: u16,
    tls: bool,
    nick: String,
    password: Option<String>,
}

struct Post {
    channel: String,
    key: Option<String>,
    text: String,
    done: oneshot::Sender<Result<(), String>>,
}

impl Plugin for Irc {
    fn name(&self) -> &'static str {
        "irc"
    }
    fn description(&self) -> &'static str {
        "posts a one-line summary with the link in an IRC channel"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn validate(&self, s: &Settings) -> Result<(), SettingError> {
        let channel = s.text("channel").unwrap_or_default();
        if !channel.starts_with(['#', '&', '+', '!']) || channel.contains([' ', ',', '\x07']) || channel.len() > 50 {
            return Err(SettingError::new("channel", format!("`channel` = {channel:?} is not a channel name; write it like \"#ops\"")));
        }
        let nick = s.text("nick").unwrap_or_default();
        if nick.is_empty() || nick.contains(|c: char| c.is_whitespace() || c == ',' || c == '@' || c == '!') || nick.starts_with(['#', ':']) {
            return Err(SettingError::new("nick", format!("`nick` = {nick:?} is not a nickname; letters, digits and -_[]{{}}|^ only")));
        }
        Ok(())
    }
    fn rule_fired<'a>(&'a self, n: &'a Notification, s: &'a Settings) -> Delivery<'a> {
        Box::pin(async move {
            let tls = s.flag("tls");
            let key = ConnKey {
                server: s.text("server").unwrap_or("localhost").to_string(),
                port: s.number("port").map(|p| p as u16).unwrap_or(if tls { 6697 } else { 6667 }),
                tls,
                nick: s.text("nick").unwrap_or("sentry").to_string(),
                password: s.text("password").map(str::to_string),
            };
            let (done, result) = oneshot::channel();
            let post = Post {
                channel: s.text("channel").unwrap_or_default().to_string(),
                key: s.text("channel_key").map(str::to_string),
                text: n.one_line(),
                done,
            };
            let sender = self.connection(&key);
            sender.send(post).await.map_err(|_| DeliveryError::Retry("the IRC connection stopped".into()))?;
            match timeout(POST_TIMEOUT, result).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(DeliveryError::Retry(format!("IRC {}:{}: {e}", key.server, key.port))),
                Ok(Err(_)) => Err(DeliveryError::Retry("the IRC connection stopped".into())),
                Err(_) => Err(DeliveryError::Retry(format!("IRC {}:{}: no answer within {POST_TIMEOUT:?}", key.server, key.port))),
            }
        })
    }
}

impl Irc {
    /// The sender of the connection task for `key`, started when missing (or stopped).
    fn connection(&self, key: &ConnKey) -> mpsc::Sender<Post> {
        let mut map = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(key).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(run(key.clone(), rx));
        map.insert(key.clone(), tx.clone());
        tx
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One parsed IRC line: `:prefix COMMAND params… :trailing`.
#[derive(Debug, PartialEq)]
struct Line {
    prefix: String,
    command: String,
    params: Vec<String>,
}

fn parse(line: &str) -> Line {
    let mut rest = line.trim_end_matches(['\r', '\n']);
    let mut prefix = String::new();
    if let Some(p) = rest.strip_prefix(':') {
        let (pre, after) = p.split_once(' ').unwrap_or((p, ""));
        prefix = pre.to_string();
        rest = after.trim_start();
    }
    let (head, trailing) = match rest.split_once(" :") {
        Some((h, t)) => (h, Some(t)),
        None => (rest, None),
    };
    let mut words = head.split(' ').filter(|w| !w.is_empty());
    let command = words.next().unwrap_or_default().to_ascii_uppercase();
    let mut params: Vec<String> = words.map(str::to_string).collect();
    if let Some(t) = trailing {
        params.push(t.to_string());
    }
    Line { prefix, command, params }
}

/// A connected, registered client.
struct Client {
    reader: BufReader<tokio::io::ReadHalf<Box<dyn Stream>>>,
    writer: tokio::io::WriteHalf<Box<dyn Stream>>,
    nick: String,
    joined: HashSet<String>,
    pings: u64,
}

impl Client {
    async fn send(&mut self, line: &str) -> Result<(), String> {
        let clean: String = line.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        self.writer.write_all(format!("{clean}\r\n").as_bytes()).await.map_err(|e| format!("writing: {e}"))?;
        self.writer.flush().await.map_err(|e| format!("writing: {e}"))
    }

    /// The next line from the server, answering PINGs on the way; an error when the connection
    /// closed or the server sent ERROR.
    async fn next(&mut self) -> Result<Line, String> {
        loop {
            let mut buf = Vec::new();
            let n = self.reader.read_until(b'\n', &mut buf).await.map_err(|e| format!("reading: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            let line = parse(&String::from_utf8_lossy(&buf));
            match line.command.as_str() {
                "PING" => {
                    let token = line.params.first().cloned().unwrap_or_default();
                    self.send(&format!("PONG :{token}")).await?;
                }
                "ERROR" => return Err(format!("the server said: {}", line.params.join(" "))),
                _ => return Ok(line),
            }
        }
    }

    /// Waits for a line `matching` within `limit`; a line for which `fail` says something is
    /// an error.
    async fn wait_for(
        &mut self,
        limit: Duration,
        mut matching: impl FnMut(&Line) -> bool,
        mut fail: impl FnMut(&Line) -> Option<String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let line = timeout(deadline.saturating_duration_since(Instant::now()), self.next())
                .await
                .map_err(|_| "the server did not answer in time".to_string())??;
            if let Some(e) = fail(&line) {
                return Err(e);
            }
            if matching(&line) {
                return Ok(());
            }
        }
    }

    async fn join(&mut self, channel: &str, key: Option<&str>) -> Result<(), String> {
        if self.joined.contains(&channel.to_ascii_lowercase()) {
            return Ok(());
        }
        match key {
            Some(k) => self.send(&format!("JOIN {channel} {k}")).await?,
            None => self.send(&format!("JOIN {channel}")).await?,
        }
        let nick = self.nick.clone();
        let lower = channel.to_ascii_lowercase();
        self.wait_for(
            Duration::from_secs(15),
            |l| {
                l.command == "JOIN"
                    && l.prefix.split('!').next().is_some_and(|n| n.eq_ignore_ascii_case(&nick))
                    && l.params.first().is_some_and(|c| c.eq_ignore_ascii_case(&lower))
            },
            |l| {
                let refused = ["403", "405", "471", "473", "474", "475", "476", "477", "489"];
                (refused.contains(&l.command.as_str()) && l.params.get(1).is_some_and(|c| c.eq_ignore_ascii_case(&lower)))
                    .then(|| format!("can't join {channel}: {}", l.params.last().cloned().unwrap_or_default()))
            },
        )
        .await?;
        self.joined.insert(lower);
        Ok(())
    }

    async fn post(&mut self, channel: &str, key: Option<&str>, text: &str) -> Result<(), String> {
        self.join(channel, key).await?;
        // 512 bytes per line, prefix and CRLF included: keep the text well under that.
        let mut text = text.to_string();
        if text.len() > 400 {
            let mut cut = 399;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        self.send(&format!("PRIVMSG {channel} :{text}")).await?;
        self.pings += 1;
        let token = format!("sentry-{}", self.pings);
        self.send(&format!("PING :{token}")).await?;
        let lower = channel.to_ascii_lowercase();
        let result = self
            .wait_for(
                Duration::from_secs(15),
                |l| l.command == "PONG" && l.params.last().is_some_and(|t| *t == token),
                |l| {
                    let refused = ["401", "403", "404", "442"];
                    (refused.contains(&l.command.as_str()) && l.params.get(1).is_some_and(|c| c.eq_ignore_ascii_case(&lower)))
                        .then(|| format!("{channel} refused the message: {}", l.params.last().cloned().unwrap_or_default()))
                },
            )
            .await;
        if result.is_err() {
            // Maybe we were kicked: join again next time.
            self.joined.remove(&lower);
        }
        result
    }
}

async fn connect(key: &ConnKey) -> Result<Client, String> {
    let addr = format!("{}:{}", key.server, key.port);
    let tcp = timeout(Duration::from_secs(15), TcpStream::connect(&addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let stream: Box<dyn Stream> = if key.tls {
        crate::install_crypto_provider();
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(key.server.clone()).map_err(|e| format!("{}: {e}", key.server))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {addr}: {e}"))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (r, w) = tokio::io::split(stream);
    let mut client = Client { reader: BufReader::new(r), writer: w, nick: key.nick.clone(), joined: HashSet::new(), pings: 0 };
    if let Some(pw) = &key.password {
        client.send(&format!("PASS {pw}")).await?;
    }
    client.send(&format!("NICK {}", key.nick)).await?;
    client.send(&format!("USER {} 0 * :Sentry notifications", key.nick)).await?;
    // Wait for the welcome (001); take another nick while ours is taken.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = timeout(deadline.saturating_duration_since(Instant::now()), client.next())
            .await
            .map_err(|_| format!("{addr} did not welcome us in time"))??;
        match line.command.as_str() {
            "001" => {
                if let Some(n) = line.params.first() {
                    client.nick = n.clone();
                }
                return Ok(client);
            }
            "433" | "436" => {
                if client.nick.len() >= 16 {
                    return Err(format!("the nicknames up to {} are all taken", client.nick));
                }
                client.nick.push('_');
                let nick = client.nick.clone();
                client.send(&format!("NICK {nick}")).await?;
            }
            "432" => return Err(format!("{addr} refused the nickname {}", client.nick)),
            "464" | "465" => return Err(format!("{addr} refused us: {}", line.params.last().cloned().unwrap_or_default())),
            _ => {}
        }
    }
}

/// The connection task: keeps one registered connection, posts what arrives, reconnects with
/// backoff (1 s doubling to a minute). Ends when every sender is gone.
async fn run(key: ConnKey, mut posts: mpsc::Receiver<Post>) {
    let mut backoff = Duration::from_secs(1);
    let mut pending: Option<Post> = None;
    let mut channels: HashMap<String, Option<String>> = HashMap::new();
    loop {
        let mut client = match connect(&key).await {
            Ok(c) => {
                tracing::info!(server = %key.server, port = key.port, nick = %c.nick, "connected to IRC");
                backoff = Duration::from_secs(1);
                c
            }
            Err(e) => {
                tracing::warn!(server = %key.server, port = key.port, error = %e, retry_in = ?backoff, "IRC connection failed");
                if let Some(p) = pending.take() {
                    let _ = p.done.send(Err(e));
                }
                // Fail the posts that arrive while we wait, so their deliveries retry later.
                let wait = sleep(backoff);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        p = posts.recv() => match p {
                            Some(p) => { let _ = p.done.send(Err("not connected yet; retrying".into())); }
                            None => return,
                        },
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        // Join again what we were in, so the channel sees us stay.
        let mut broken = None;
        for (channel, ckey) in channels.clone() {
            if let Err(e) = client.join(&channel, ckey.as_deref()).await {
                tracing::warn!(%channel, error = %e, "could not join the IRC channel again");
                if e.starts_with("reading") || e.starts_with("writing") || e.starts_with("the server") {
                    broken = Some(e);
                    break;
                }
            }
        }
        if broken.is_some() {
            sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        loop {
            let post = match pending.take() {
                Some(p) => p,
                None => {
                    tokio::select! {
                        p = posts.recv() => match p {
                            Some(p) => p,
                            None => {
                                let _ = client.send("QUIT :Sentry is stopping").await;
                                return;
                            }
                        },
                        line = client.next() => match line {
                            Ok(_) => continue,
                            Err(e) => {
                                tracing::warn!(server = %key.server, error = %e, "IRC connection lost; reconnecting");
                                break;
                            }
                        },
                    }
                }
            };
            channels.insert(post.channel.clone(), post.key.clone());
            match client.post(&post.channel, post.key.as_deref(), &post.text).await {
                Ok(()) => {
                    let _ = post.done.send(Ok(()));
                }
                Err(e) if e.starts_with("reading") || e.starts_with("writing") || e.starts_with("the server") => {
                    tracing::warn!(server = %key.server, error = %e, "IRC connection lost; reconnecting");
                    pending = Some(post);
                    break;
                }
                Err(e) => {
                    let _ = post.done.send(Err(e));
                }
            }
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        assert_eq!(
            parse(":nick!u@h PRIVMSG #ops :hello there\r\n"),
            Line { prefix: "nick!u@h".into(), command: "PRIVMSG".into(), params: vec!["#ops".into(), "hello there".into()] }
        );
        assert_eq!(parse("PING :irc.example.net"), Line { prefix: String::new(), command: "PING".into(), params: vec!["irc.example.net".into()] });
        assert_eq!(parse(":srv 001 sentry :Welcome").params, vec!["sentry", "Welcome"]);
        assert_eq!(parse(":srv 475 sentry #ops :Cannot join channel (+k)").params[1], "#ops");
    }

    #[test]
    fn settings_are_checked() {
        let check = |v: serde_json::Value| crate::plugin::check_settings(&Irc::default(), v.as_object().unwrap());
        let ok = check(serde_json::json!({"server": "localhost", "channel": "#ops"})).unwrap();
        assert_eq!(ok["nick"], "sentry");
        let e = check(serde_json::json!({"server": "localhost", "channel": "ops"})).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("channel"));
        let e = check(serde_json::json!({"server": "localhost", "channel": "#ops", "port": 70000})).unwrap_err();
        assert_eq!(e.problem, "`port` must be a port number from 1 to 65535");
    }
}
