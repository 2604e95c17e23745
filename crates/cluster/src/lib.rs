//! What several `sentry` nodes share through Redis, so that a load balancer may send any
//! request to any node:
//!
//! - **rate limits** counted across nodes: one counter per (scope, id, minute), taken
//!   atomically by a script (every limit of a request is checked, and counted only if none is
//!   over), expiring two minutes later ([`Redis::take`]);
//! - **the channel of stored events**, so that a page open on one node updates when another
//!   node stores an event ([`Redis::publish`], [`Redis::subscribe`]);
//! - **sliding windows** of login attempts, as sorted sets scored by time: a member expires by
//!   its score (`ZREMRANGEBYSCORE` before every count), and a set nobody touched for a whole
//!   window expires with its key ([`Redis::reserve`], [`Redis::release`], [`Redis::forget`]).
//!
//! Redis being away never stops ingest: [`Redis::take`] answers `Err(Unreachable)` at once
//! (trying again every few seconds) and the caller counts on its own meanwhile; the
//! subscription reconnects by itself. Each change of state is logged once.
//!
//! Architecture invariant: a leaf (no workspace crate); it knows Redis and nothing of events
//! but opaque bytes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;

/// How long a rate-limit round trip may take before Redis counts as away.
const TIMEOUT: Duration = Duration::from_millis(250);
/// How long to count alone after Redis went away, before trying it again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Redis could not be asked (down, slow, refused): count locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

/// A Redis server shared by the nodes.
pub struct Redis {
    client: redis::Client,
    /// Where it is, without a password: for log lines.
    name: String,
    /// The connection for rate limits (blocking, with timeouts): `None` until first use or
    /// after a failure.
    sync: Mutex<Option<redis::Connection>>,
    /// Since when it failed, while it does.
    down_since: Mutex<Option<Instant>>,
    /// The async connection for publishing, made on first use.
    publisher: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    warned: AtomicBool,
    take: redis::Script,
    reserve: redis::Script,
}

impl Redis {
    /// A Redis at `url` (`redis://[:password@]host:port[/db]`). Connects when first used.
    pub fn new(url: &str) -> Result<Redis, String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis.url is not a Redis URL (redis://host:port): {e}"))?;
        let info = client.get_connection_info();
        let name = format!("{}", info.addr());
        Ok(Redis {
            client,
            name,
            sync: Mutex::new(None),
            down_since: Mutex::new(None),
            publisher: tokio::sync::OnceCell::new(),
            warned: AtomicBool::new(false),
            take: redis::Script::new(TAKE),
            reserve: redis::Script::new(RESERVE),
        })
    }

    /// Runs `f` on the blocking connection (made on first use), at most one round trip of
    /// [`TIMEOUT`]; `Err(Unreachable)` at once while Redis counts as away.
    fn blocking<T>(&self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T, Unreachable> {
        if let Ok(down) = self.down_since.lock()
            && let Some(since) = *down
            && since.elapsed() < RETRY_AFTER
        {
            return Err(Unreachable);
        }
        let Ok(mut conn) = self.sync.lock() else { return Err(Unreachable) };
        let result = (|| {
            if conn.is_none() {
                let c = self.client.get_connection_with_timeout(TIMEOUT)?;
                c.set_read_timeout(Some(TIMEOUT))?;
                c.set_write_timeout(Some(TIMEOUT))?;
                *conn = Some(c);
            }
            f(conn.as_mut().expect("connected above"))
        })();
        match result {
            Ok(v) => {
                self.up();
                Ok(v)
            }
            Err(e) => {
                *conn = None;
                self.down(&e.to_string());
                Err(Unreachable)
            }
        }
    }

    /// Adds `member` at time `now_ms` to every window of `windows` (`(key, limit)`), each
    /// `window_ms` long, unless one already holds `limit` members: then `Ok(Err(seconds))` until
    /// its oldest leaves, and nothing is added.
    pub fn reserve(&self, windows: &[(String, usize)], window_ms: u64, now_ms: u64, member: &str) -> Result<Result<(), u64>, Unreachable> {
        let wait: i64 = self.blocking(|c| {
            let mut call = self.reserve.prepare_invoke();
            call.arg(now_ms).arg(window_ms).arg(member);
            for (key, limit) in windows {
                call.key(key).arg(*limit);
            }
            call.invoke(c)
        })?;
        Ok(if wait > 0 { Err(wait as u64) } else { Ok(()) })
    }

    /// Takes `member` out of every window of `keys` again (an attempt given back).
    pub fn release(&self, keys: &[String], member: &str) -> Result<(), Unreachable> {
        self.blocking(|c| {
            let mut pipe = redis::pipe();
            for k in keys {
                pipe.cmd("ZREM").arg(k).arg(member).ignore();
            }
            pipe.query::<()>(c)
        })
    }

    /// Whether Redis answers now (one `PING`, within [`TIMEOUT`]).
    pub fn ping(&self) -> Result<(), Unreachable> {
        self.blocking(|c| redis::cmd("PING").query::<String>(c)).map(|_| ())
    }

    /// Empties the window of `key`.
    pub fn forget(&self, key: &str) -> Result<(), Unreachable> {
        self.blocking(|c| redis::cmd("DEL").arg(key).query::<()>(c))
    }

    /// Counts one request against every `(counter, limit)` of `subjects` in this minute, on
    /// every node at once: `Ok(None)` when none is over its limit (each is counted), `Ok(Some(i))`
    /// when subject `i` is (nothing is counted). Blocks for one round trip at most [`TIMEOUT`].
    pub fn take(&self, subjects: &[(String, u64)]) -> Result<Option<usize>, Unreachable> {
        let over: i64 = self.blocking(|c| {
            let mut call = self.take.prepare_invoke();
            for (key, limit) in subjects {
                call.key(key).arg(*limit);
            }
            call.invoke(c)
        })?;
        Ok(usize::try_from(over).ok().filter(|i| *i > 0).map(|i| i - 1))
    }

    /// Publishes `payload` on `channel` to every node that subscribed (best effort: a message
    /// lost while Redis is away is only a page that updates at its next reload).
    pub async fn publish(&self, channel: &str, payload: Vec<u8>) {
        let conn = self
            .publisher
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(TIMEOUT * 4))
                    .set_response_timeout(Some(TIMEOUT * 4));
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await;
        let sent = match conn {
            Ok(conn) => {
                let mut conn = conn.clone();
                redis::cmd("PUBLISH").arg(channel).arg(payload).query_async::<i64>(&mut conn).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => self.up(),
            Err(e) => self.down(&e.to_string()),
        }
    }

    /// Every message published on `channel` from now on, by any node. Reconnects by itself
    /// while Redis is away; ends when the receiver is dropped.
    pub fn subscribe(self: &std::sync::Arc<Self>, channel: &str) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let (redis, channel) = (self.clone(), channel.to_string());
        tokio::spawn(async move {
            loop {
                match redis.client.get_async_pubsub().await {
                    Ok(mut sub) => {
                        if let Err(e) = sub.subscribe(&channel).await {
                            redis.down(&e.to_string());
                        } else {
                            redis.up();
                            let mut messages = sub.on_message();
                            while let Some(m) = messages.next().await {
                                if tx.send(m.get_payload_bytes().to_vec()).await.is_err() {
                                    return;
                                }
                            }
                            redis.down("the subscription was closed");
                        }
                    }
                    Err(e) => redis.down(&e.to_string()),
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        rx
    }

    fn down(&self, why: &str) {
        if let Ok(mut d) = self.down_since.lock() {
            *d = Some(Instant::now());
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                redis = %self.name,
                error = why,
                "Redis is unreachable: rate limits are counted on each node alone, and pages show live only what this node stores, until it is back"
            );
        }
    }

    fn up(&self) {
        if let Ok(mut d) = self.down_since.lock() {
            *d = None;
        }
        if self.warned.swap(false, Ordering::Relaxed) {
            tracing::info!(redis = %self.name, "Redis is back: rate limits and live updates are shared again");
        }
    }
}

/// Increments every counter (KEYS) unless one would pass its limit (ARGV, same order); returns
/// the 1-based index of the first over its limit, or 0. New counters expire after 120 s.
const TAKE: &str = r"
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n >= tonumber(ARGV[i]) then return i end
end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, 120) end
end
return 0
";

/// Trims every window (KEYS) to the last ARGV[2] ms before ARGV[1] (by score), and, unless one
/// holds its limit (ARGV[3 + i]), adds member ARGV[3] scored ARGV[1] to each, the key expiring
/// with its window. Returns 0, or the seconds until the full window's oldest member leaves.
const RESERVE: &str = r"
local now, window, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return math.max(1, math.ceil((tonumber(oldest[2]) + window - now) / 1000))
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
end
return 0
";
