//! Request framing as it is on the wire, seen before hyper reads it: each request head a
//! connection sends is found (the bodies between them skipped by their length or their chunks)
//! and a request whose head has both `Content-Length` and `Transfer-Encoding` is marked, so
//! it is answered 400 instead of served.
//!
//! hyper frames such a request by its chunks alone and drops the length (RFC 9112 §6.3), so
//! nothing can be smuggled past Sentry itself; but a proxy in front of it may have framed the
//! same bytes by the length, and then the two disagree on where the next request starts —
//! request smuggling. hyper removes the length before a handler could see it, hence this watch
//! on the bytes.
//!
//! It costs a scan of each head (which hyper bounds anyway) and nothing per body byte: bodies
//! are skipped by count. When the bytes make no sense as HTTP/1.1 (hyper answers those 400 and
//! closes), it stops watching.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest request head looked at; longer ones are hyper's to refuse.
const MAX_HEAD: usize = 512 * 1024;
/// The most header lines read of one head (hyper's own limit is 100).
const MAX_HEADERS: usize = 128;
/// The longest chunk-size or trailer line.
const MAX_LINE: usize = 4 * 1024;

/// What a connection's watch found, shared with the service that answers its requests.
#[derive(Debug)]
pub(crate) struct Marks {
    /// The number (from 0) of the first request whose head had both framing headers, or
    /// `u64::MAX`.
    ambiguous: AtomicU64,
}

impl Marks {
    pub(crate) fn new() -> Arc<Marks> {
        Arc::new(Marks { ambiguous: AtomicU64::new(u64::MAX) })
    }

    /// Whether request number `n` (from 0) of the connection named both lengths.
    pub(crate) fn is_ambiguous(&self, n: u64) -> bool {
        self.ambiguous.load(Ordering::Acquire) == n
    }
}

/// Where the watch is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a request head, collected in `line`.
    Head,
    /// This many body bytes left.
    Body(u64),
    /// In a chunk-size line.
    ChunkSize,
    /// This many bytes of chunk data left, then the CRLF after them.
    ChunkData(u64),
    /// This many bytes of the CRLF after a chunk left.
    ChunkEnd(u8),
    /// In the trailer lines after the last chunk.
    Trailers,
    /// Not watching any more.
    Stopped,
}

/// The framing of one connection's requests.
#[derive(Debug)]
struct Framing {
    state: State,
    line: Vec<u8>,
    heads: u64,
    marks: Arc<Marks>,
}

impl Framing {
    fn new(marks: Arc<Marks>) -> Framing {
        Framing { state: State::Head, line: Vec::new(), heads: 0, marks }
    }

    /// Follows `bytes`, as read from the client.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Stopped => return,
                State::Head => {
                    let from = self.line.len().saturating_sub(3);
                    let before = self.line.len();
                    self.line.extend_from_slice(&bytes[..bytes.len().min(MAX_HEAD + 4 - before.min(MAX_HEAD))]);
                    match find(&self.line[from..], b"\r\n\r\n") {
                        Some(at) => {
                            let end = from + at + 4;
                            bytes = &bytes[end - before..];
                            self.head_done(end);
                        }
                        None if self.line.len() > MAX_HEAD => self.stop(),
                        None => return,
                    }
                }
                State::Body(left) => {
                    let n = (bytes.len() as u64).min(left);
                    bytes = &bytes[n as usize..];
                    self.state = if n == left { State::Head } else { State::Body(left - n) };
                }
                State::ChunkData(left) => {
                    let n = (bytes.len() as u64).min(left);
                    bytes = &bytes[n as usize..];
                    self.state = if n == left { State::ChunkEnd(2) } else { State::ChunkData(left - n) };
                }
                State::ChunkEnd(left) => {
                    let n = bytes.len().min(left as usize);
                    bytes = &bytes[n..];
                    self.state = if n == left as usize { State::ChunkSize } else { State::ChunkEnd(left - n as u8) };
                }
                State::ChunkSize | State::Trailers => {
                    let Some(line) = self.take_line(&mut bytes) else { return };
                    if self.state == State::Trailers {
                        if line.trim_ascii().is_empty() {
                            self.state = State::Head;
                        }
                        continue;
                    }
                    let size = line.split(|b| *b == b';').next().unwrap_or_default().trim_ascii();
                    match std::str::from_utf8(size).ok().and_then(|s| u64::from_str_radix(s, 16).ok()) {
                        Some(0) => self.state = State::Trailers,
                        Some(n) => self.state = State::ChunkData(n),
                        None => self.stop(),
                    }
                }
            }
        }
    }

    /// Takes one line (up to its `\n`) from `bytes` into `self.line`; the whole line once it
    /// is complete.
    fn take_line(&mut self, bytes: &mut &[u8]) -> Option<Vec<u8>> {
        match bytes.iter().position(|b| *b == b'\n') {
            Some(at) => {
                self.line.extend_from_slice(&bytes[..=at]);
                *bytes = &bytes[at + 1..];
                Some(std::mem::take(&mut self.line))
            }
            None => {
                self.line.extend_from_slice(bytes);
                *bytes = &[];
                if self.line.len() > MAX_LINE {
                    self.stop();
                }
                None
            }
        }
    }

    /// The head is the first `end` bytes of `self.line`: reads its framing headers and moves on
    /// to its body.
    fn head_done(&mut self, end: usize) {
        let head = std::mem::take(&mut self.line);
        let head = &head[..end];
        // Empty lines before a request line are allowed (RFC 9112 §2.2).
        let start = head.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(head.len());
        if start == head.len() {
            return;
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        if !matches!(request.parse(&head[start..]), Ok(httparse::Status::Complete(_))) {
            return self.stop();
        }
        let (mut length, mut has_length, mut has_encoding, mut chunked) = (None, false, false, false);
        for h in request.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                has_length = true;
                length = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok());
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                has_encoding = true;
                chunked = h.value.rsplit(|b| *b == b',').next().is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
        }
        let n = self.heads;
        self.heads += 1;
        if has_length && has_encoding {
            let _ = self.marks.ambiguous.compare_exchange(u64::MAX, n, Ordering::AcqRel, Ordering::Acquire);
            // hyper closes the connection after answering it: nothing after it counts.
            return self.stop();
        }
        self.state = if chunked {
            State::ChunkSize
        } else if has_encoding {
            // Not chunked last: hyper answers 400 and closes.
            return self.stop();
        } else {
            match (has_length, length) {
                (false, _) | (true, Some(0)) => State::Head,
                (true, Some(len)) => State::Body(len),
                (true, None) => return self.stop(),
            }
        };
    }

    fn stop(&mut self) {
        self.state = State::Stopped;
        self.line = Vec::new();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A connection's stream, watched for the framing of the requests it reads.
pub(crate) struct Watched<S> {
    inner: S,
    framing: Framing,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, marks: Arc<Marks>) -> Watched<S> {
        Watched { inner, framing: Framing::new(marks) }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            this.framing.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `step` bytes; the numbers of the requests marked, and how many
    /// heads were found.
    fn follow(wire: &[u8], step: usize) -> (Option<u64>, u64) {
        let marks = Marks::new();
        let mut f = Framing::new(marks.clone());
        for piece in wire.chunks(step) {
            f.feed(piece);
        }
        let n = marks.ambiguous.load(Ordering::Acquire);
        ((n != u64::MAX).then_some(n), f.heads)
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn requests_with_lengths_and_chunks_are_followed_to_the_next_head() {
        let mut wire = Vec::new();
        wire.extend_from_slice(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        wire.extend_from_slice(b"\r\nPOST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        // A chunk whose data looks like a request head that names both: it is data.
        let data = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        wire.extend_from_slice(format!("{:x};ext=1\r\n", data.len()).as_bytes());
        wire.extend_from_slice(data);
        wire.extend_from_slice(b"\r\n0\r\nTrailer: yes\r\n\r\n");
        wire.extend_from_slice(GET);
        for step in [1, 2, 3, 7, 64, wire.len()] {
            assert_eq!(follow(&wire, step), (None, 3), "in pieces of {step}");
        }
    }

    #[test]
    fn a_head_with_both_lengths_is_marked_in_either_order() {
        for head in [
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            &b"POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n"[..],
        ] {
            let mut wire = GET.to_vec();
            wire.extend_from_slice(head);
            wire.extend_from_slice(b"0\r\n\r\n");
            for step in [1, 5, wire.len()] {
                assert_eq!(follow(&wire, step), (Some(1), 2), "{}", String::from_utf8_lossy(head));
            }
        }
    }

    #[test]
    fn what_is_not_http_stops_the_watch_without_marking() {
        assert_eq!(follow(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 4).0, None);
        assert_eq!(follow(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 3), (None, 1));
        let endless = vec![b'a'; MAX_HEAD * 2];
        assert_eq!(follow(&endless, 4096), (None, 0));
    }
}
