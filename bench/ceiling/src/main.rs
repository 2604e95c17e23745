//! The bare-HTTP ceiling of the ingest benchmark (`bench/run.sh`): an axum server whose every route
//! reads the whole request body and answers `200 {"id": …}`, nothing else — no auth, no
//! decompression, no parsing, no disk. Driven by the same load generator as `sentry`, it shows
//! what HTTP alone costs on this machine, so `sentry`'s accepted/s can be read as a fraction of it.
//!
//! Usage: `ceiling [ADDR]` (default `127.0.0.1:0`); prints `listening on http://ADDR` once bound.
//! Same runtime shape as `sentry`: tokio's multi-threaded runtime, one worker per core.

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};

/// The answer `sentry` gives to an accepted envelope has the same shape and length.
const ANSWER: &str = r#"{"id":"00000000000000000000000000000000"}"#;

async fn accept(
    body: Bytes,
) -> (
    StatusCode,
    [(header::HeaderName, &'static str); 1],
    &'static str,
) {
    std::hint::black_box(body.len());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        ANSWER,
    )
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ceiling: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    match listener.local_addr() {
        Ok(a) => println!("listening on http://{a}"),
        Err(e) => println!("listening ({e})"),
    }
    let app = Router::new().fallback(accept);
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("ceiling: {e}");
        std::process::exit(1);
    }
}
