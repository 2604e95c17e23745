//! Serving connections: HTTP/1.1 only, with a limit on how long a client may take to send each
//! request's headers, counted from the accept (so a connection that sends nothing, or stops
//! after a few bytes, is closed), a cap on open connections that makes room by closing the
//! oldest connection that has sent nothing yet, and a graceful stop that finishes the requests
//! in flight before returning.
//!
//! HTTP/2 is not served: every SDK sends HTTP/1.1, and hyper's HTTP/1 connection is the one
//! that times out an idle client from its first moment (a connection that sends the HTTP/2
//! preface is answered with an error and closed).
//!
//! Request framing is hyper's, which follows RFC 9112; a request with both `Content-Length`
//! and `Transfer-Encoding` is answered 400 (`framing.rs` finds it on the wire, since hyper
//! drops the length before any handler sees it), so a proxy in front that frames by the length
//! can't smuggle a second request through; `Transfer-Encoding` without `chunked` last, or two
//! different `Content-Length`s, are answered 400 by hyper itself. The test
//! `bad_input::content_length_with_transfer_encoding_is_refused_and_nothing_is_smuggled` pins
//! this.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::response::IntoResponse as _;
use axum::http::HeaderMap;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tower::ServiceExt as _;

use crate::{framing, ApiError};

/// Why a request with both `Content-Length` and `Transfer-Encoding` is refused.
const AMBIGUOUS: &str = "a request may have Content-Length or Transfer-Encoding, not both";

/// How long requests in flight may take to finish once a stop was asked for.
const DRAIN: Duration = Duration::from_secs(30);

/// Connections open at once by default; past the cap, the oldest connection that has not sent
/// a whole request yet is closed to make room (see [`serve_with_limit`]).
pub const MAX_CONNECTIONS: usize = 10_000;

/// How connections are served.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long a client has, from the accept and from the end of each answer, to send a
    /// request's headers.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Reverse proxies: for a request from one of them, the client's address is the last one
    /// in `X-Forwarded-For` that is not itself a trusted proxy.
    pub trusted_proxies: Vec<IpNet>,
}

impl Options {
    /// `header_timeout`, [`MAX_CONNECTIONS`], no proxy.
    pub fn new(header_timeout: Duration) -> Options {
        Options { header_timeout, max_connections: MAX_CONNECTIONS, trusted_proxies: Vec::new() }
    }

    /// The client's address for a request that came from `peer` with these headers.
    fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|net| net.contains(&ip));
        if !trusted(peer.ip()) {
            return peer;
        }
        let mut forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|part| part.trim().parse::<IpAddr>())
            .collect::<Vec<_>>();
        // From the nearest hop back: the first address no trusted proxy wrote for itself.
        let mut client = None;
        while let Some(hop) = forwarded.pop() {
            match hop {
                Ok(ip) if trusted(ip) => client = Some(ip),
                Ok(ip) => return SocketAddr::new(ip, 0),
                Err(_) => break,
            }
        }
        client.map_or(peer, |ip| SocketAddr::new(ip, 0))
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets the
/// requests in flight finish (up to 30 s), and returns. A client gets `header_timeout` from
/// the accept (and from the end of each answer) to send a request's headers; at most
/// [`MAX_CONNECTIONS`] connections are open at once.
pub async fn serve(listener: TcpListener, app: Router, header_timeout: Duration, shutdown: impl Future<Output = ()>) {
    serve_with(listener, app, Options::new(header_timeout), shutdown).await;
}

/// The open connections that have not sent a whole request head yet, by accept order: the
/// ones closed to make room when the cap is reached. A connection leaves it at its first
/// request (or when it ends).
#[derive(Default)]
struct Silent {
    next: u64,
    conns: BTreeMap<u64, oneshot::Sender<()>>,
}

impl Silent {
    fn add(&mut self) -> (u64, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let id = self.next;
        self.next += 1;
        self.conns.insert(id, tx);
        (id, rx)
    }

    /// Tells the oldest silent connection to close; false when there is none.
    fn close_oldest(&mut self) -> bool {
        while let Some((_, tx)) = self.conns.pop_first() {
            if tx.send(()).is_ok() {
                return true;
            }
        }
        false
    }
}

/// [`serve`] with `options`. When `options.max_connections` is reached, the oldest
/// connection that has not yet sent a whole request head is closed to make room, so silent or
/// slow sockets can't keep a real client (a health check) waiting in the listen queue; only
/// when every open connection has sent a request does a new one wait until one closes.
pub async fn serve_with(listener: TcpListener, app: Router, options: Options, shutdown: impl Future<Output = ()>) {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(options.header_timeout);
    let options = Arc::new(options);
    let max_connections = options.max_connections;
    let builder = Arc::new(builder);
    let max_connections = max_connections.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let open = Arc::new(Semaphore::new(max_connections));
    let silent = Arc::new(Mutex::new(Silent::default()));
    let (stopping, stop) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut last_warning: Option<Instant> = None;
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
        let permit = match open.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let made_room = silent.lock().expect("silent connections").close_oldest();
                // Said at most once a minute, not once per connection.
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    if made_room {
                        tracing::warn!(
                            max_connections,
                            "the cap of open connections is reached; the oldest connections that have sent nothing yet are closed to make room"
                        );
                    } else {
                        tracing::warn!(
                            max_connections,
                            "the cap of open connections is reached, all of them busy; new connections wait until one closes"
                        );
                    }
                    last_warning = Some(Instant::now());
                }
                tokio::select! {
                    permit = open.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let (id, close) = silent.lock().expect("silent connections").add();
        let spoke = Arc::new(AtomicBool::new(false));
        let marks = framing::Marks::new();
        let service = {
            let silent = silent.clone();
            let spoke = spoke.clone();
            let marks = marks.clone();
            let app = app.clone();
            let requests = Arc::new(AtomicU64::new(0));
            let options = options.clone();
            TowerToHyperService::new(tower::service_fn(move |mut req: axum::http::Request<Incoming>| {
                if !spoke.swap(true, Ordering::Relaxed) {
                    silent.lock().expect("silent connections").conns.remove(&id);
                }
                let ambiguous = marks.is_ambiguous(requests.fetch_add(1, Ordering::Relaxed));
                // Handlers may ask who is calling (the login rate limit does).
                let client = options.client(remote, req.headers());
                req.extensions_mut().insert(ConnectInfo(client));
                let app = app.clone();
                async move {
                    if ambiguous {
                        return Ok(ApiError::BadRequest(AMBIGUOUS.to_string()).into_response());
                    }
                    app.oneshot(req).await
                }
            }))
        };
        let builder = builder.clone();
        let silent = silent.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut conn = pin!(builder.serve_connection(TokioIo::new(framing::Watched::new(stream, marks)), service));
            let mut close = pin!(close);
            let mut closable = true;
            let mut stopping = false;
            loop {
                tokio::select! {
                    ended = conn.as_mut() => {
                        if let Err(e) = ended {
                            tracing::trace!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    // Made room for a newer connection: this one never sent a request, so
                    // nothing is cut short.
                    told = &mut close, if closable => {
                        closable = false;
                        if told.is_ok() {
                            break;
                        }
                    }
                    _ = stop.wait_for(|stop| *stop), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            if !spoke.load(Ordering::Relaxed) {
                silent.lock().expect("silent connections").conns.remove(&id);
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = open.acquire_many(all) => tracing::info!("all requests in flight have finished"),
        () = tokio::time::sleep(DRAIN) => tracing::warn!("some requests were still running after {} s", DRAIN.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_behind_trusted_proxies_is_the_last_untrusted_forwarded_address() {
        let options = Options { trusted_proxies: vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()], ..Options::new(Duration::from_secs(1)) };
        let peer = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 4000);
        let forwarded = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            h
        };
        let client = |from: &str, values: &[&str]| options.client(peer(from), &forwarded(values)).ip().to_string();
        // Through the proxy: the address it saw, not what the client claimed before it.
        assert_eq!(client("127.0.0.1", &["6.6.6.6, 203.0.113.7"]), "203.0.113.7");
        // Two proxies, one header line each.
        assert_eq!(client("127.0.0.1", &["203.0.113.7", "10.1.2.3"]), "203.0.113.7");
        // Not through a trusted proxy: the header is ignored.
        assert_eq!(client("198.51.100.1", &["203.0.113.7"]), "198.51.100.1");
        // Nothing forwarded, or nonsense: the proxy itself.
        assert_eq!(client("127.0.0.1", &[]), "127.0.0.1");
        assert_eq!(client("127.0.0.1", &["not an address"]), "127.0.0.1");
        // Only proxies: the farthest of them.
        assert_eq!(client("127.0.0.1", &["10.9.9.9"]), "10.9.9.9");
    }
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    /// A server on a free port with `max` connections and a header timeout of `timeout`.
    fn start(max: usize, timeout: Duration) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
                let options = Options { max_connections: max, ..Options::new(timeout) };
                serve_with(listener, app, options, async {
                    let _ = stop_rx.await;
                })
                .await;
            });
        });
        (addr_rx.recv().unwrap(), stop_tx)
    }

    fn get_healthz(stream: &mut TcpStream) -> String {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    }

    #[test]
    fn a_silent_connection_is_closed_after_the_header_timeout() {
        let (addr, _stop) = start(10, Duration::from_millis(500));
        let started = Instant::now();
        let mut silent = TcpStream::connect(addr).unwrap();
        silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let n = silent.read(&mut buf).unwrap_or(0);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(400) && waited < Duration::from_secs(4), "closed after {waited:?}, read {n} bytes");
    }

    #[test]
    fn a_kept_alive_connection_that_goes_quiet_is_closed_too() {
        let (addr, _stop) = start(10, Duration::from_millis(500));
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 1024];
        let n = conn.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let answered = Instant::now();
        let n = conn.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "nothing more is sent");
        assert!(answered.elapsed() < Duration::from_secs(4), "still open after {:?}", answered.elapsed());
    }

    #[test]
    fn the_http2_preface_alone_does_not_hold_a_connection() {
        let (addr, _stop) = start(10, Duration::from_millis(500));
        let started = Instant::now();
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = conn.read_to_end(&mut out);
        assert!(started.elapsed() < Duration::from_secs(4), "still open after {:?}", started.elapsed());
    }

    #[test]
    fn at_the_cap_the_oldest_silent_connection_makes_room() {
        let (addr, _stop) = start(2, Duration::from_secs(30));
        let mut oldest = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let mut newer = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        let mut third = TcpStream::connect(addr).unwrap();
        third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(get_healthz(&mut third).starts_with("HTTP/1.1 200"));
        assert!(started.elapsed() < Duration::from_secs(2), "served after {:?}", started.elapsed());
        // The oldest silent one was closed for it; the newer one is still open.
        oldest.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(oldest.read(&mut buf).unwrap_or(0), 0, "the oldest silent connection is closed");
        newer.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        assert!(newer.read(&mut buf).is_err(), "the newer silent connection was closed too");
    }

    #[test]
    fn at_the_cap_a_connection_that_has_spoken_is_kept_and_new_ones_wait() {
        let (addr, _stop) = start(1, Duration::from_secs(30));
        let mut first = TcpStream::connect(addr).unwrap();
        first.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        first.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 1024];
        let n = first.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let mut second = TcpStream::connect(addr).unwrap();
        second.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        second.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        assert!(second.read(&mut buf).is_err(), "the second connection was served while the first held the only place");
        // The first connection is still usable: it was not closed to make room.
        first.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let n = first.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        drop(first);
        second.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = String::new();
        let _ = second.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
}
