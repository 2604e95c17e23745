//! Per-key and per-project rate limits: fixed one-minute windows counted in memory. A refusal
//! says how long to wait and which scope was exceeded, in the form SDKs read from
//! `X-Sentry-Rate-Limits` (`retry_after:categories:scope:reason`).

use std::collections::HashMap;
use std::sync::Mutex;

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
}

impl RateLimiter {
    pub fn new() -> RateLimiter {
        RateLimiter::default()
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

    #[test]
    fn project_limit_spans_keys() {
        let r = RateLimiter::new();
        r.check_at(0, "a", 0, 7, 2).unwrap();
        r.check_at(0, "b", 0, 7, 2).unwrap();
        assert_eq!(r.check_at(0, "c", 0, 7, 2).unwrap_err().scope, "project");
        r.check_at(0, "d", 0, 8, 2).unwrap();
    }
}
