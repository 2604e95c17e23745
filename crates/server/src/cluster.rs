//! Wiring several nodes together through Redis (`[redis] url`): the pipeline's rate limits and
//! the dashboard's login attempts counted in Redis, and the events each node stores told to the
//! others, whose pages and alert engines hear of them as of their own (`Pipeline::relay`).

use std::sync::Arc;

use ingest::Pipeline;
use serde::{Deserialize, Serialize};
use store::StoredEvent;

/// The channel of stored events.
const CHANNEL: &str = "sentry:stored";

struct Counter(Arc<cluster::Redis>);

impl ingest::SharedCounter for Counter {
    fn take(&self, subjects: &[(String, u64)]) -> Result<Option<usize>, ingest::CountersAway> {
        self.0.take(subjects).map_err(|_| ingest::CountersAway)
    }
}

/// One stored event as it travels between nodes.
#[derive(Serialize, Deserialize)]
struct Wire {
    project: i64,
    group: i64,
    event: String,
    kind: String,
    level: String,
    new_group: bool,
    regression: bool,
}

#[derive(Serialize, Deserialize)]
struct Batch {
    /// The node that stored them: it does not relay its own.
    node: String,
    events: Vec<Wire>,
}

struct Windows(Arc<cluster::Redis>);

/// Login windows live under their own prefix.
fn login_key(k: &str) -> String {
    format!("sentry:login:{k}")
}

impl web::dashboard::auth::SharedWindows for Windows {
    fn reserve(
        &self,
        keys: &[(String, usize)],
        window: std::time::Duration,
        member: &str,
    ) -> Result<Result<(), u64>, web::dashboard::auth::WindowsAway> {
        let keys: Vec<(String, usize)> = keys.iter().map(|(k, n)| (login_key(k), *n)).collect();
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        self.0.reserve(&keys, window.as_millis() as u64, now_ms, member).map_err(|_| web::dashboard::auth::WindowsAway)
    }

    fn release(&self, keys: &[String], member: &str) {
        let keys: Vec<String> = keys.iter().map(|k| login_key(k)).collect();
        let _ = self.0.release(&keys, member);
    }

    fn forget(&self, key: &str) {
        let _ = self.0.forget(&login_key(key));
    }
}

struct RedisProbe(Arc<cluster::Redis>);

impl web::Probe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn check(&self) -> Result<(), String> {
        self.0.ping().map_err(|_| "unreachable: this node counts rate limits and logins alone, and shows live only what it stores".into())
    }
}

/// `/healthz`'s line about Redis.
pub fn probe(redis: &Arc<cluster::Redis>) -> Arc<dyn web::Probe> {
    Arc::new(RedisProbe(redis.clone()))
}

/// Counts the dashboard's login attempts in Redis too.
pub fn share_logins(redis: &Arc<cluster::Redis>, dashboard: &web::dashboard::Dashboard) {
    dashboard.share_logins(Arc::new(Windows(redis.clone())));
}

/// Shares `pipeline`'s rate limits and stored events through the Redis at `url`. Call inside
/// the runtime.
pub fn join(url: &str, pipeline: &Arc<Pipeline>) -> anyhow::Result<Arc<cluster::Redis>> {
    let redis = Arc::new(cluster::Redis::new(url).map_err(anyhow::Error::msg)?);
    pipeline.share_rate_limits(Arc::new(Counter(redis.clone())));
    let node = format!("{:032x}", rand_id());
    // What this node stores, to the others.
    let mut here = pipeline.subscribe_here();
    let (out, me) = (redis.clone(), node.clone());
    tokio::spawn(async move {
        loop {
            let batch = match here.recv().await {
                Ok(b) => b,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let events = batch
                .iter()
                .map(|e| Wire {
                    project: e.project_id.0,
                    group: e.group_id.0,
                    event: e.event_id.to_string(),
                    kind: e.kind.clone(),
                    level: e.level.as_str().to_string(),
                    new_group: e.new_group,
                    regression: e.regression,
                })
                .collect();
            if let Ok(payload) = serde_json::to_vec(&Batch { node: me.clone(), events }) {
                out.publish(CHANNEL, payload).await;
            }
        }
    });
    // What the others store, here.
    let mut incoming = redis.subscribe(CHANNEL);
    let relay = Arc::downgrade(pipeline);
    tokio::spawn(async move {
        while let Some(payload) = incoming.recv().await {
            let Some(pipeline) = relay.upgrade() else { return };
            let Ok(batch) = serde_json::from_slice::<Batch>(&payload) else { continue };
            if batch.node == node {
                continue;
            }
            let events = batch
                .events
                .into_iter()
                .filter_map(|w| {
                    Some(StoredEvent {
                        project_id: store::ProjectId(w.project),
                        group_id: store::GroupId(w.group),
                        event_id: w.event.parse().ok()?,
                        kind: w.kind,
                        level: store::Level::parse(&w.level)?,
                        new_group: w.new_group,
                        regression: w.regression,
                    })
                })
                .collect();
            pipeline.relay(events);
        }
    });
    tracing::info!("sharing rate limits, login attempts and live updates with the other nodes through Redis");
    Ok(redis)
}

/// A random node id.
fn rand_id() -> u128 {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    u128::from_le_bytes(b)
}
