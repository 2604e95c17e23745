//! A short-lived cache of client keys, so that authorizing a request rarely reads the store,
//! while a key revoked from another process (`sentry key revoke`) is refused within a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use store::{ClientKey, Store};

pub struct KeyCache {
    store: Arc<dyn Store>,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Option<ClientKey>, Instant)>>,
}

impl KeyCache {
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> KeyCache {
        KeyCache { store, ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The key, fresh to within the cache's time to live. Unknown keys are cached too, so a
    /// flood of bad keys does not reach the store, but the cache stays bounded.
    pub fn get(&self, key: &str) -> Result<Option<ClientKey>, store::StoreError> {
        if let Ok(entries) = self.entries.lock()
            && let Some((found, at)) = entries.get(key)
            && at.elapsed() < self.ttl
        {
            return Ok(found.clone());
        }
        let found = self.store.key(key)?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                entries.clear();
            }
            entries.insert(key.to_string(), (found.clone(), Instant::now()));
        }
        Ok(found)
    }
}
