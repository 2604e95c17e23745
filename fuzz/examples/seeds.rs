//! Writes the seed corpora, `fuzz/corpus/<target>/seed-*`, from the requests recorded from real
//! clients in `crates/protocol/tests/fixtures/corpus/**/*.jsonl` (one JSON object a line, with
//! `path`, `headers` and `body_b64`: the body exactly as sent), plus a few hand-written inputs
//! for what the recordings lack (zstd, raw deflate, bombs, odd auth and DSN forms, SQL dialects).
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example seeds
//!
//! Existing `seed-*` files are replaced; anything else in the corpus directories (what libFuzzer
//! found, ignored by git) is left alone. Seeds are named `seed-<source>-<md5 prefix>`, so the same
//! input is written once, and rerunning on unchanged fixtures changes nothing.
//!
//! Per target:
//! - `envelope`: envelope bodies with their Content-Encoding undone.
//! - `store_body`: every body as sent (still gzip / br / deflate / base64+zlib), plus the store
//!   bodies after Content-Encoding, plus synthetic zstd, raw deflate and small bombs.
//! - `event`: each event/transaction item payload, and each decoded store body.
//! - `auth`: `X-Sentry-Auth` and `Authorization` values, query strings, envelope `dsn` headers.
//! - `sql`: the queries of the recorded events and of their transactions' db spans.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use md5::{Digest, Md5};
use protocol::event::{normalize_item, normalize_slice, span_queries};
use protocol::{ContentEncoding, Envelope, ItemType, Limits, decode};
use serde_json::Value;

const TARGETS: [&str; 5] = ["envelope", "store_body", "auth", "event", "sql"];

/// Seeds for one target: file name -> bytes.
#[derive(Default)]
struct Seeds(BTreeMap<String, BTreeMap<String, Vec<u8>>>);

impl Seeds {
    fn add(&mut self, target: &str, source: &str, bytes: impl Into<Vec<u8>>) {
        assert!(TARGETS.contains(&target), "unknown target {target}");
        let bytes = bytes.into();
        let digest = hex::encode(Md5::digest(&bytes));
        let source: String = source
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let map = self.0.entry(target.to_string()).or_default();
        if map.values().any(|b| *b == bytes) {
            return;
        }
        map.insert(format!("seed-{source}-{}", &digest[..12]), bytes);
    }
}

struct Request {
    name: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn load(fixtures: &Path) -> Vec<Request> {
    let mut files = Vec::new();
    let mut dirs = vec![fixtures.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(fixtures).unwrap().with_extension("");
        let rel = rel.to_string_lossy().replace('/', "-");
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let rec: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", file.display(), n + 1));
            let headers = rec["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_string(),
                        h[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let body = base64::engine::general_purpose::STANDARD
                .decode(rec["body_b64"].as_str().expect("body_b64"))
                .unwrap_or_else(|e| panic!("{}:{}: body_b64: {e}", file.display(), n + 1));
            out.push(Request {
                name: format!("{rel}-{n}"),
                path: rec["path"].as_str().unwrap_or("").to_string(),
                headers,
                body,
            });
        }
    }
    out
}

fn from_recordings(seeds: &mut Seeds, requests: &[Request]) {
    let limits = Limits::default();
    for req in requests {
        let name = req.name.as_str();
        seeds.add("store_body", name, req.body.clone());
        for header in ["X-Sentry-Auth", "Authorization"] {
            if let Some(v) = req.header(header) {
                seeds.add("auth", name, v);
            }
        }
        if let Some((_, query)) = req.path.split_once('?') {
            seeds.add("auth", name, query);
        }
        let Ok(enc) = ContentEncoding::parse(req.header("Content-Encoding")) else {
            eprintln!("{name}: unsupported Content-Encoding, raw body only");
            continue;
        };
        let body = match decode::decode(&req.body, enc, limits.max_decompressed_bytes) {
            Ok(body) => body,
            Err(e) => {
                eprintln!("{name}: {e}; raw body only");
                continue;
            }
        };
        let mut events = Vec::new();
        if req.path.ends_with("/store/") {
            seeds.add("store_body", &format!("{name}-decoded"), body.clone());
            match decode::decode_store_body(&body, limits.max_event_bytes) {
                Ok(json) => {
                    if let Ok(e) = normalize_slice(&json, &limits, 0.0, None) {
                        events.push(e);
                    }
                    seeds.add("event", name, json);
                }
                Err(e) => eprintln!("{name}: store body: {e}"),
            }
        } else {
            match Envelope::parse(&body, &limits) {
                Ok(env) => {
                    if let Some(dsn) = env.dsn() {
                        seeds.add("auth", &format!("{name}-dsn"), dsn);
                    }
                    for item in &env.items {
                        if matches!(item.ty, ItemType::Event | ItemType::Transaction) {
                            if let Ok(e) = normalize_item(item, &limits, 0.0, env.event_id()) {
                                events.push(e);
                            }
                            seeds.add("event", name, item.payload.clone());
                        }
                    }
                }
                Err(e) => eprintln!("{name}: envelope: {e}"),
            }
            seeds.add("envelope", name, body);
        }
        for event in &events {
            let queries = std::iter::once(event.clone()).chain(span_queries(event));
            for q in queries.filter_map(|e| e.query) {
                seeds.add("sql", name, q.query);
            }
        }
    }
}

fn compress(enc: ContentEncoding, data: &[u8]) -> Vec<u8> {
    match enc {
        ContentEncoding::Identity => data.to_vec(),
        ContentEncoding::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        ContentEncoding::Deflate => {
            let mut w = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        ContentEncoding::Brotli => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
                w.write_all(data).unwrap();
            }
            out
        }
        ContentEncoding::Zstd => zstd::encode_all(data, 19).unwrap(),
    }
}

fn handwritten(seeds: &mut Seeds) {
    let event =
        br#"{"event_id":"0123456789abcdef0123456789abcdef","message":"hello %s","level":"error"}"#;
    for enc in [
        ContentEncoding::Gzip,
        ContentEncoding::Deflate,
        ContentEncoding::Brotli,
        ContentEncoding::Zstd,
    ] {
        seeds.add(
            "store_body",
            &format!("hand-{}", enc.as_str()),
            compress(enc, event),
        );
        // A small bomb: 1 MiB of zeros, far over the fuzz target's cap.
        seeds.add(
            "store_body",
            &format!("hand-bomb-{}", enc.as_str()),
            compress(enc, &vec![0; 1 << 20]),
        );
    }
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    raw.write_all(event).unwrap();
    seeds.add("store_body", "hand-raw-deflate", raw.finish().unwrap());
    let b64 = base64::engine::general_purpose::STANDARD;
    seeds.add(
        "store_body",
        "hand-base64-zlib",
        b64.encode(compress(ContentEncoding::Deflate, event)),
    );
    seeds.add("store_body", "hand-base64-json", b64.encode(event));
    let urlsafe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    seeds.add(
        "store_body",
        "hand-base64url-zlib",
        urlsafe.encode(compress(ContentEncoding::Deflate, event)),
    );

    seeds.add("envelope", "hand-implicit-length", &b"{}\n{\"type\":\"event\"}\n{\"message\":\"x\"}\n{\"type\":\"attachment\",\"length\":0}\n\n"[..]);
    seeds.add("envelope", "hand-crlf", &b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://k@h/1\"}\r\n{\"type\":\"foo\",\"length\":3}\r\nabc\r\n"[..]);

    for (name, text) in [
        (
            "hand-header",
            "Sentry sentry_key=\"abc\", sentry_version=7, sentry_secret=s, sentry_client=x/1.0",
        ),
        ("hand-header-bare", "sentry_key=abc,sentry_version=2.0"),
        ("hand-basic", "Basic YWJjOmRlZg=="),
        (
            "hand-query",
            "?sentry_key=ab%63&sentry_version=7&sentry_client=raven-js%2F3.0+x&x=%zz",
        ),
        ("hand-dsn", "https://key:secret@[::1]:9000/sub/path/42"),
        ("hand-dsn-plain", "http://key@localhost/1"),
    ] {
        seeds.add("auth", name, text);
    }

    for (name, sql) in [
        (
            "hand-pg",
            "SELECT \"a\".\"b\" FROM a WHERE id = $1 AND s = E'it\\'s' AND t = $tag$x$tag$ -- c\n/* block */ LIMIT 10",
        ),
        (
            "hand-in",
            "select * from t where x in (1, 2, 3) and y = 'o''k' and z = -1.5e3",
        ),
        (
            "hand-insert",
            "INSERT INTO t (a, b) VALUES (%s, %(b)s), (?, :c) RETURNING id",
        ),
        (
            "hand-mysql",
            "SELECT `a` FROM `t` WHERE b = \"str\" AND c = 0x1F # comment",
        ),
        (
            "hand-savepoint",
            "SAVEPOINT \"s1_x\"; RELEASE SAVEPOINT \"s1_x\"",
        ),
    ] {
        seeds.add("sql", name, sql);
    }
}

fn main() {
    let fuzz_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fixtures = fuzz_dir.join("../crates/protocol/tests/fixtures/corpus");
    let requests = load(&fixtures);
    let mut seeds = Seeds::default();
    from_recordings(&mut seeds, &requests);
    handwritten(&mut seeds);

    let mut total = 0;
    for target in TARGETS {
        let dir = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        let wanted = seeds.0.remove(target).unwrap_or_default();
        let names: BTreeSet<&String> = wanted.keys().collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("seed-") && !names.contains(&name) {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        let bytes: usize = wanted.values().map(Vec::len).sum();
        for (name, data) in &wanted {
            std::fs::write(dir.join(name), data).unwrap();
        }
        total += bytes;
        println!("{target:<11} {:>4} seeds {:>9} bytes", wanted.len(), bytes);
    }
    println!(
        "{:<11} {:>4}       {:>9} bytes from {} recorded requests",
        "total",
        "",
        total,
        requests.len()
    );
}
