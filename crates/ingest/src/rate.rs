//! Per-key and per-project rate limits: fixed one-minute windows, counted in memory, or by a
//! [`SharedCounter`] that every node of an installation shares (Redis), with the memory as
//! the fallback while it is unreachable. A refusal
//! says how long to wait and which scope was exceeded, in the form SDKs read from
//! `X-Sentry-Rate-Limits` (`retry_after:categories:scope:reason`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Counters every node shares: takes one request against each `(counter name, limit)` of a
/// minute, counting it only if none is over: `Ok(None)` allowed, `Ok(Some(i))` subject `i` is
/// over its limit, `Err(CountersAway)` the counters can't be reached now (count locally).
pub trait SharedCounter: Send + Sync {
    fn take(&self, subjects: &[(String, u64)]) -> Result<Option<usize>, CountersAway>;
}

/// The shared counters can't be reached now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountersAway;

/// Over a rate limit.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rate limit of {limit} events per minute for this {scope} exceeded; retry in {retry_after} s")]
pub struct RateLimited {
    pub retry_after: u64,
    /// `key` or `project`.
    pub scope: &'static str,
    pub limit: u64,
}

impl RateLimited {
    /// The `X-Sentry-Rate-Limits` header value: all categories, this scope.
    pub fn header(&self) -> String {
        format!("{}::{}:{}_quota", self.retry_after, self.scope, self.scope)
    }
}

/// A scope (`key` or `project`) and its id.
type Subject = (&'static str, String);

/// Counts per subject in the current one-minute window: (minute, count).
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<Subject, (u64, u64)>>,
    shared: OnceLock<Arc<dyn SharedCounter>>,
}

impl RateLimiter {
    pub fn new() -> RateLimiter {
        RateLimiter::default()
    }

    /// From now on, count in `counter`, shared with the other nodes (once; later calls are
    /// ignored).
    pub fn share(&self, counter: Arc<dyn SharedCounter>) {
        let _ = self.shared.set(counter);
    }

    /// Counts one request against the key's and the project's limits (0 = unlimited).
    pub fn check(&self, key: &str, key_limit: u64, project: i64, project_limit: u64) -> Result<(), RateLimited> {
        let now = store::now().max(0.0) as u64;
        self.check_at(now, key, key_limit, project, project_limit)
    }

    pub fn check_at(&self, now: u64, key: &str, key_limit: u64, project: i64, project_limit: u64) -> Result<(), RateLimited> {
        if key_limit == 0 && project_limit == 0 {
            return Ok(()); // the default: nothing to count
        }
        let minute = now / 60;
        let retry_after = (60 - now % 60).max(1);
        if let Some(shared) = self.shared.get() {
            let subjects: Vec<(&'static str, String, u64)> =
                [("key", key.to_string(), key_limit), ("project", project.to_string(), project_limit)]
                    .into_iter()
                    .filter(|(_, _, limit)| *limit > 0)
                    .collect();
            let counters: Vec<(String, u64)> =
                subjects.iter().map(|(scope, id, limit)| (format!("sentry:rate:{scope}:{id}:{minute}"), *limit)).collect();
            match shared.take(&counters) {
                Ok(None) => return Ok(()),
                Ok(Some(i)) => {
                    let (scope, _, limit) = subjects.get(i).cloned().unwrap_or(("key", String::new(), key_limit));
                    return Err(RateLimited { retry_after, scope, limit });
                }
                Err(CountersAway) => {} // count here meanwhile
            }
        }
        let Ok(mut windows) = self.windows.lock() else { return Ok(()) };
        if windows.len() > 100_000 {
            windows.retain(|_, (m, _)| *m == minute);
        }
        for (scope, id, limit) in [("key", key.to_string(), key_limit), ("project", project.to_string(), project_limit)] {
            if limit == 0 {
                continue;
            }
            let w = windows.entry((scope, id)).or_insert((minute, 0));
            if w.0 != minute {
                *w = (minute, 0);
            }
            if w.1 >= limit {
                return Err(RateLimited { retry_after, scope, limit });
            }
        }
        for (scope, id, limit) in [("key", key.to_string(), key_limit), ("project", project.to_string(), project_limit)] {
            if limit > 0
                && let Some(w) = windows.get_mut(&(scope, id))
            {
                w.1 += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_limit_refuses_then_recovers_next_minute() {
        let r = RateLimiter::new();
        let t = 6000;
        for _ in 0..3 {
            r.check_at(t, "k", 3, 1, 0).unwrap();
        }
        let err = r.check_at(t + 10, "k", 3, 1, 0).unwrap_err();
        assert_eq!(err.scope, "key");
        assert_eq!(err.retry_after, 50);
        assert_eq!(err.header(), "50::key:key_quota");
        // Another key of the same project is not affected.
        r.check_at(t + 10, "other", 3, 1, 0).unwrap();
        // The next minute starts afresh.
        r.check_at(t + 60, "k", 3, 1, 0).unwrap();
    }

    /// A counter that every "node" shares, as Redis is.
    struct Shared(Mutex<HashMap<String, u64>>, std::sync::atomic::AtomicBool);

    impl SharedCounter for Shared {
        fn take(&self, subjects: &[(String, u64)]) -> Result<Option<usize>, CountersAway> {
            if self.1.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(CountersAway);
            }
            let mut m = self.0.lock().unwrap();
            if let Some(i) = subjects.iter().position(|(k, limit)| m.get(k).copied().unwrap_or(0) >= *limit) {
                return Ok(Some(i));
            }
            for (k, _) in subjects {
                *m.entry(k.clone()).or_insert(0) += 1;
            }
            Ok(None)
        }
    }

    #[test]
    fn a_shared_counter_holds_the_limit_across_limiters_and_its_absence_falls_back() {
        let shared = Arc::new(Shared(Mutex::default(), false.into()));
        let nodes: Vec<RateLimiter> = (0..3).map(|_| RateLimiter::new()).collect();
        for n in &nodes {
            n.share(shared.clone());
        }
        let allowed = (0..9).filter(|i| nodes[i % 3].check_at(6000, "k", 4, 1, 0).is_ok()).count();
        assert_eq!(allowed, 4, "a limit of 4 holds however the requests are spread");
        // The project's limit is named when it is the one over.
        assert_eq!(nodes[0].check_at(6000, "other", 0, 1, 1).map_err(|e| e.scope), Ok(()));
        assert_eq!(nodes[1].check_at(6000, "third", 0, 1, 1).unwrap_err().scope, "project");
        // Unreachable: each node counts alone.
        shared.1.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(nodes[2].check_at(6000, "k", 4, 1, 0).is_ok());
    }

    #[test]
    fn project_limit_spans_keys() {
        let r = RateLimiter::new();
        r.check_at(0, "a", 0, 7, 2).unwrap();
        r.check_at(0, "b", 0, 7, 2).unwrap();
        assert_eq!(r.check_at(0, "c", 0, 7, 2).unwrap_err().scope, "project");
        r.check_at(0, "d", 0, 8, 2).unwrap();
    }
}

/// A budget of items per second for one node (the logs' own, so that a flood of logs never
/// takes what events need): a token bucket that holds one second's worth, refilled as time
/// passes. A rate of 0 is unlimited.
pub struct ItemBudget {
    per_second: u64,
    /// Tokens left, and when they were counted.
    state: Mutex<(f64, std::time::Instant)>,
}

impl ItemBudget {
    pub fn new(per_second: u64) -> ItemBudget {
        ItemBudget { per_second, state: Mutex::new((per_second as f64, std::time::Instant::now())) }
    }

    /// Takes up to `wanted` items; returns how many may be kept.
    pub fn take(&self, wanted: usize) -> usize {
        self.take_at(wanted, std::time::Instant::now())
    }

    fn take_at(&self, wanted: usize, now: std::time::Instant) -> usize {
        if self.per_second == 0 || wanted == 0 {
            return wanted;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let rate = self.per_second as f64;
        let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
        let tokens = (state.0 + elapsed * rate).min(rate);
        let granted = (tokens.floor() as usize).min(wanted);
        *state = (tokens - granted as f64, now.max(state.1));
        granted
    }
}

#[cfg(test)]
mod item_budget_tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_second_s_worth_then_what_time_refills() {
        let b = ItemBudget::new(100);
        let t = Instant::now();
        assert_eq!(b.take_at(60, t), 60);
        assert_eq!(b.take_at(60, t), 40, "what is left of the second");
        assert_eq!(b.take_at(10, t), 0);
        assert_eq!(b.take_at(100, t + Duration::from_millis(250)), 25);
        assert_eq!(b.take_at(1000, t + Duration::from_secs(60)), 100, "never more than a second's worth");
        assert_eq!(ItemBudget::new(0).take_at(1_000_000, t), 1_000_000, "0 is unlimited");
    }
}
