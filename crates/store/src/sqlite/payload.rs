//! Event payloads on disk: zstd-compressed, and, once the data file has seen enough events, with
//! a dictionary trained on its own first events. Events of one application share most of their
//! structure (keys, SDK names, module paths), so a dictionary shrinks each payload a lot.
//!
//! A payload is stored with the id of the dictionary it was compressed with (`NULL` for none).
//! Dictionaries are never changed or deleted while events use them.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use crate::Result;

/// zstd level: fast, and most of the gain comes from the dictionary.
const LEVEL: i32 = 3;
/// Events sampled before training.
const SAMPLES: usize = 1000;
/// Size of a trained dictionary.
const DICT_BYTES: usize = 64 * 1024;

/// The writer's side: compresses, samples, trains once in the background.
pub struct PayloadWriter {
    compressor: zstd::bulk::Compressor<'static>,
    dict_id: Option<i64>,
    samples: Vec<Vec<u8>>,
    training: Option<Receiver<Option<Vec<u8>>>>,
}

impl PayloadWriter {
    /// Starts with the newest dictionary of the data file, if it has one.
    pub fn load(conn: &Connection) -> Result<PayloadWriter> {
        let newest: Option<(i64, Vec<u8>)> = conn
            .query_row("SELECT id, dict FROM payload_dicts ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (dict_id, compressor) = match newest {
            Some((id, dict)) => (Some(id), zstd::bulk::Compressor::with_dictionary(LEVEL, &dict)),
            None => (None, zstd::bulk::Compressor::new(LEVEL)),
        };
        let compressor = compressor.map_err(|e| crate::StoreError::Invalid(format!("zstd: {e}")))?;
        Ok(PayloadWriter { compressor, dict_id, samples: Vec::new(), training: None })
    }

    /// Compresses one payload; returns the dictionary id used and the bytes to store.
    pub fn compress(&mut self, payload: &[u8]) -> (Option<i64>, Vec<u8>) {
        if self.dict_id.is_none() && self.training.is_none() && self.samples.len() < SAMPLES {
            self.samples.push(payload.to_vec());
        }
        match self.compressor.compress(payload) {
            Ok(bytes) => (self.dict_id, bytes),
            // zstd does not fail on valid input; keep the event readable whatever happens.
            Err(_) => (None, zstd::bulk::compress(payload, LEVEL).unwrap_or_else(|_| payload.to_vec())),
        }
    }

    /// Called once per batch, inside its transaction: starts training when enough samples are
    /// in, and switches to the new dictionary once it is trained (storing it first).
    pub fn after_batch(&mut self, tx: &Connection) -> Result<()> {
        if self.dict_id.is_none() && self.training.is_none() && self.samples.len() >= SAMPLES {
            let samples = std::mem::take(&mut self.samples);
            let (send, recv) = mpsc::channel();
            std::thread::Builder::new()
                .name("store-dict".into())
                .spawn(move || {
                    let _ = send.send(zstd::dict::from_samples(&samples, DICT_BYTES).ok());
                })
                .map_err(|e| crate::StoreError::Invalid(format!("starting the dictionary trainer: {e}")))?;
            self.training = Some(recv);
        }
        let trained = match &self.training {
            Some(recv) => match recv.try_recv() {
                Ok(result) => Some(result),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(None),
            },
            None => None,
        };
        if let Some(result) = trained {
            self.training = None;
            if let Some(dict) = result
                && let Ok(compressor) = zstd::bulk::Compressor::with_dictionary(LEVEL, &dict)
            {
                tx.execute("INSERT INTO payload_dicts (dict, created_at) VALUES (?1, ?2)", params![dict, crate::now()])?;
                self.dict_id = Some(tx.last_insert_rowid());
                self.compressor = compressor;
                tracing::info!(bytes = dict.len(), "trained a compression dictionary for event payloads");
            }
        }
        Ok(())
    }
}

/// The readers' side: dictionaries by id, loaded once.
#[derive(Default)]
pub struct PayloadReader {
    dicts: Mutex<HashMap<i64, Arc<Vec<u8>>>>,
}

impl PayloadReader {
    pub fn decompress(&self, conn: &Connection, dict_id: Option<i64>, blob: &[u8]) -> Vec<u8> {
        let capacity = zstd::zstd_safe::get_frame_content_size(blob)
            .ok()
            .flatten()
            .map_or(64 * 1024 * 1024, |n| n as usize)
            .min(256 * 1024 * 1024);
        let out = match dict_id {
            None => zstd::bulk::decompress(blob, capacity),
            Some(id) => match self.dict(conn, id) {
                Some(dict) => zstd::bulk::Decompressor::with_dictionary(&dict).and_then(|mut d| d.decompress(blob, capacity)),
                None => return Vec::new(),
            },
        };
        out.unwrap_or_default()
    }

    fn dict(&self, conn: &Connection, id: i64) -> Option<Arc<Vec<u8>>> {
        if let Some(d) = self.dicts.lock().ok()?.get(&id) {
            return Some(d.clone());
        }
        let dict: Vec<u8> = conn.query_row("SELECT dict FROM payload_dicts WHERE id = ?1", [id], |r| r.get(0)).ok()?;
        let dict = Arc::new(dict);
        self.dicts.lock().ok()?.insert(id, dict.clone());
        Some(dict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trains_a_dictionary_and_reads_both_kinds_back() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE payload_dicts (id INTEGER PRIMARY KEY, dict BLOB NOT NULL, created_at REAL NOT NULL)").unwrap();
        let mut w = PayloadWriter::load(&conn).unwrap();
        let event = |n: usize| {
            format!(
                r#"{{"event_id":"{n:032x}","level":"error","platform":"python","sdk":{{"name":"sentry.python.django","version":"2.75.0"}},"exception":{{"values":[{{"type":"KeyError","value":"'SKU-{n}'","stacktrace":{{"frames":[{{"module":"djshop.shop.views","function":"checkout","lineno":{n}}}]}}}}]}},"tags":{{"server":"web-{}"}}}}"#,
                n % 7
            )
            .into_bytes()
        };
        let (none, first) = w.compress(&event(0));
        assert_eq!(none, None);
        for n in 1..SAMPLES {
            w.compress(&event(n));
        }
        for _ in 0..200 {
            w.after_batch(&conn).unwrap();
            if w.dict_id.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (dict, later) = w.compress(&event(5000));
        assert!(dict.is_some(), "a dictionary was trained");
        assert!(later.len() < first.len() / 2, "{} vs {} bytes", later.len(), first.len());
        let r = PayloadReader::default();
        assert_eq!(r.decompress(&conn, None, &first), event(0));
        assert_eq!(r.decompress(&conn, dict, &later), event(5000));
    }
}
