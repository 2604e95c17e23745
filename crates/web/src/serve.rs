//! Serving connections: HTTP/1 with a limit on how long a client may take to send its headers
//! (so slow clients can't hold connections open), and a graceful stop that finishes the
//! requests in flight before returning.
//!
//! Request framing is hyper's, which follows RFC 9112: a request with both `Content-Length`
//! and `Transfer-Encoding` is read by its chunks alone (the length is dropped before any
//! handler sees the request) and its connection is closed after the answer, so nothing after
//! the chunked body can be taken for a second request (request smuggling); `Transfer-Encoding`
//! without `chunked` last, or two different `Content-Length`s, are answered 400 by hyper
//! itself. The test `bad_input::content_length_with_transfer_encoding_cannot_smuggle_a_request`
//! pins this.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use tower::ServiceExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How long requests in flight may take to finish once a stop was asked for.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets the
/// requests in flight finish (up to 30 s), and returns.
pub async fn serve(listener: TcpListener, app: Router, header_timeout: Duration, shutdown: impl Future<Output = ()>) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Handlers may ask who is calling (the login rate limit does).
        let service = TowerToHyperService::new(app.clone().map_request(move |mut req: axum::http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            req
        }));
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all requests in flight have finished"),
        () = tokio::time::sleep(DRAIN) => tracing::warn!("some requests were still running after {} s", DRAIN.as_secs()),
    }
}
