//! Request body decoding: `Content-Encoding` (gzip, deflate, br, zstd) with a streaming size cap,
//! and the legacy store body forms (plain JSON, base64, base64 of zlib).
//!
//! Every decoder grows its output in steps, asking before each step: past `limit + 1` bytes it
//! stops with `TooLarge` (a decompression bomb never allocates more), and [`decode_within`]
//! also asks the caller's memory budget, so decoded bytes count against it as they come out.

use std::io::Read;

use base64::Engine as _;
use thiserror::Error;

/// A `Content-Encoding` we can undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentEncoding {
    Identity,
    Gzip,
    /// A zlib stream (RFC 1950), as raven sends; raw deflate (RFC 1951) is accepted too.
    Deflate,
    Brotli,
    Zstd,
}

/// Why a body could not be decoded. `TooLarge` answers 413, the rest 400.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("unsupported Content-Encoding `{0}` (supported: gzip, deflate, br, zstd, identity)")]
    UnsupportedEncoding(String),
    #[error("body is larger than {limit} bytes once decoded")]
    TooLarge { limit: usize },
    #[error("body is not valid {encoding}: {reason}")]
    Corrupt {
        encoding: &'static str,
        reason: String,
    },
    /// The caller's budget said no to more output (see [`decode_within`]).
    #[error("the server has no memory to spare for decoding the body now")]
    OverBudget,
}

impl DecodeError {
    /// Whether this is a size refusal (413) rather than a malformed body (400).
    pub fn is_too_large(&self) -> bool {
        matches!(self, DecodeError::TooLarge { .. })
    }
}

impl ContentEncoding {
    /// Reads a `Content-Encoding` header value; a missing or empty header is `Identity`.
    /// Case-insensitive; `x-gzip` is gzip.
    pub fn parse(header: Option<&str>) -> Result<ContentEncoding, DecodeError> {
        let name = header.unwrap_or("").trim();
        Ok(match name.to_ascii_lowercase().as_str() {
            "" | "identity" => ContentEncoding::Identity,
            "gzip" | "x-gzip" => ContentEncoding::Gzip,
            "deflate" => ContentEncoding::Deflate,
            "br" => ContentEncoding::Brotli,
            "zstd" => ContentEncoding::Zstd,
            _ => {
                return Err(DecodeError::UnsupportedEncoding(
                    name.chars().take(64).collect(),
                ));
            }
        })
    }

    /// The header token for this encoding.
    pub fn as_str(&self) -> &'static str {
        match self {
            ContentEncoding::Identity => "identity",
            ContentEncoding::Gzip => "gzip",
            ContentEncoding::Deflate => "deflate",
            ContentEncoding::Brotli => "br",
            ContentEncoding::Zstd => "zstd",
        }
    }
}

/// Undoes `enc`, refusing output larger than `limit` bytes.
pub fn decode(body: &[u8], enc: ContentEncoding, limit: usize) -> Result<Vec<u8>, DecodeError> {
    decode_within(body, enc, limit, &mut |_| true)
}

/// Undoes `enc`, refusing output larger than `limit` bytes, and asking `grant(n)` before the
/// output grows by `n` bytes: when it answers `false`, decoding stops with `OverBudget`.
pub fn decode_within(
    body: &[u8],
    enc: ContentEncoding,
    limit: usize,
    grant: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    match enc {
        ContentEncoding::Identity => {
            if body.len() > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            if !grant(body.len()) {
                return Err(DecodeError::OverBudget);
            }
            Ok(body.to_vec())
        }
        ContentEncoding::Gzip => gunzip(body, limit, grant),
        ContentEncoding::Deflate => inflate(body, limit, grant),
        ContentEncoding::Brotli => read_capped(brotli::Decompressor::new(body, 4096), "br", limit, 0, grant),
        ContentEncoding::Zstd => {
            // The first frame usually states its size: a bomb that says so is refused unread,
            // and an honest body is decoded into one allocation of the right size.
            let stated = zstd::zstd_safe::get_frame_content_size(body).ok().flatten().unwrap_or(0);
            if stated > limit as u64 {
                return Err(DecodeError::TooLarge { limit });
            }
            let decoder = zstd::stream::read::Decoder::new(body).map_err(|e| corrupt("zstd", e))?;
            read_capped(decoder, "zstd", limit, stated as usize + 1, grant)
        }
    }
}

/// Undoes gzip (RFC 1952), every member of a multi-member stream, checking each member's CRC-32
/// and length. Works on the body in place: the SDKs send most events this way, so this skips the
/// buffered reader that the streaming decoder needs.
fn gunzip(body: &[u8], limit: usize, grant: &mut dyn FnMut(usize) -> bool) -> Result<Vec<u8>, DecodeError> {
    // Setting up an inflater (its state and 32 KiB window, zeroed) costs about a third of
    // decoding a typical event: each thread keeps one and resets it per member.
    thread_local! {
        static INFLATER: std::cell::RefCell<Option<flate2::Decompress>> = const { std::cell::RefCell::new(None) };
    }
    let mut inflater = INFLATER.with(|cell| cell.borrow_mut().take()).unwrap_or_else(|| flate2::Decompress::new(false));
    let result = gunzip_with(&mut inflater, body, limit, grant);
    INFLATER.with(|cell| *cell.borrow_mut() = Some(inflater));
    result
}

fn gunzip_with(
    inflater: &mut flate2::Decompress,
    body: &[u8],
    limit: usize,
    grant: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    let bad = |reason: &str| DecodeError::Corrupt { encoding: "gzip", reason: reason.to_string() };
    let cap = limit.saturating_add(1);
    // The trailer's ISIZE is the (last) member's size: when it is within the limit it sizes
    // the output (plus one byte, so that the end of the stream is seen without growing), and a
    // lie only makes the output grow in steps, each granted. Without it (over the limit,
    // padding, several members), events compress about 3:1.
    let stated = body.len().checked_sub(4).and_then(|at| body.get(at..)).map_or(0, |b| {
        u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize
    });
    // Deflate expands at most 1032:1: a larger claim is a lie, and must not reserve the
    // budget for a body that cannot fill it.
    let possible = body.len().saturating_mul(1032);
    let first = if stated > 0 && stated <= limit && stated <= possible { stated + 1 } else { body.len().saturating_mul(4) }
        .min(cap);
    if !grant(first) {
        return Err(DecodeError::OverBudget);
    }
    let mut out = Vec::with_capacity(first);
    let mut rest = body;
    loop {
        rest = rest.get(gzip_header_len(rest).map_err(bad)?..).unwrap_or_default();
        inflater.reset(false);
        let start = out.len();
        loop {
            if out.len() == out.capacity() {
                if out.len() >= cap {
                    return Err(DecodeError::TooLarge { limit });
                }
                let grow = out.capacity().max(4096).min(cap - out.len());
                if !grant(grow) {
                    return Err(DecodeError::OverBudget);
                }
                out.reserve_exact(grow);
            }
            let input = rest.get(usize::try_from(inflater.total_in()).unwrap_or(usize::MAX)..).unwrap_or_default();
            let before = (inflater.total_in(), out.len());
            let status = inflater
                .decompress_vec(input, &mut out, flate2::FlushDecompress::None)
                .map_err(|e| bad(&e.to_string()))?;
            if status == flate2::Status::StreamEnd {
                break;
            }
            if (inflater.total_in(), out.len()) == before && out.len() < out.capacity() {
                return Err(bad("the compressed data ends early"));
            }
        }
        if out.len() > limit {
            return Err(DecodeError::TooLarge { limit });
        }
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let trailer = rest.get(consumed..consumed.saturating_add(8)).ok_or_else(|| bad("the gzip trailer is missing"))?;
        let (crc, size) = trailer.split_at(4);
        let member = out.get(start..).unwrap_or_default();
        let mut sum = flate2::Crc::new();
        sum.update(member);
        if u32::from_le_bytes(crc.try_into().unwrap_or_default()) != sum.sum() {
            return Err(bad("checksum mismatch (CRC-32)"));
        }
        if u32::from_le_bytes(size.try_into().unwrap_or_default()) != member.len() as u32 {
            return Err(bad("length mismatch"));
        }
        rest = rest.get(consumed + 8..).unwrap_or_default();
        // Another member may follow; zero padding after the last one is tolerated.
        if rest.iter().all(|&b| b == 0) {
            return Ok(out);
        }
    }
}

/// The length of a gzip member header (RFC 1952 section 2.3), with its optional fields.
fn gzip_header_len(data: &[u8]) -> Result<usize, &'static str> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    match data.get(..4) {
        Some([0x1f, 0x8b, 8, _]) => {}
        Some([0x1f, 0x8b, _, _]) => return Err("unknown compression method in the gzip header"),
        _ => return Err("invalid gzip header"),
    }
    let flags = data.get(3).copied().unwrap_or_default();
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = data.get(at..at + 2).ok_or("the gzip header ends early")?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let text = data.get(at..).ok_or("the gzip header ends early")?;
            at += 1 + text.iter().position(|&b| b == 0).ok_or("the gzip header ends early")?;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    if at > data.len() {
        return Err("the gzip header ends early");
    }
    Ok(at)
}

/// Decodes a legacy `/store/` body, after `Content-Encoding` has been undone: JSON as is;
/// otherwise base64 (whitespace tolerated), then zlib when the decoded bytes are not JSON.
/// Raw zlib that was sent without a `Content-Encoding` header is accepted too.
pub fn decode_store_body(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    if looks_like_json(body) {
        return decode(body, ContentEncoding::Identity, limit);
    }
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let decoded = match base64_decode(&compact) {
        Ok(decoded) => decoded,
        Err(_) if is_zlib_header(body) => return inflate(body, limit, &mut |_| true),
        Err(reason) => {
            return Err(DecodeError::Corrupt {
                encoding: "store body",
                reason: format!("neither JSON nor base64 ({reason})"),
            });
        }
    };
    if looks_like_json(&decoded) {
        return decode(&decoded, ContentEncoding::Identity, limit);
    }
    inflate(&decoded, limit, &mut |_| true)
}

/// Inflates a zlib stream, or raw deflate when the first two bytes are not a zlib header.
fn inflate(body: &[u8], limit: usize, grant: &mut dyn FnMut(usize) -> bool) -> Result<Vec<u8>, DecodeError> {
    if is_zlib_header(body) {
        read_capped(flate2::read::ZlibDecoder::new(body), "deflate", limit, 0, grant)
    } else {
        read_capped(flate2::read::DeflateDecoder::new(body), "deflate", limit, 0, grant)
    }
}

/// RFC 1950: compression method 8 (deflate), window ≤ 32 KiB, and a header checksum that makes
/// the first two bytes a multiple of 31.
fn is_zlib_header(body: &[u8]) -> bool {
    match (body.first(), body.get(1)) {
        (Some(&cmf), Some(&flg)) => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0
        }
        _ => false,
    }
}

/// An object or array, or any other JSON value (`null`, `"text"`, `12`): passed on as JSON so
/// that the event parser can say what is wrong with it, instead of a base64 error.
fn looks_like_json(body: &[u8]) -> bool {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[' | b'"') => true,
        Some(_) => serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
        None => false,
    }
}

fn base64_decode(text: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    standard.decode(text).or_else(|e| {
        // Some clients use the URL-safe alphabet; report the standard alphabet's error.
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, config)
            .decode(text)
            .map_err(|_| e)
    })
}

/// Reads `reader` to the end, but never more than `limit + 1` bytes.
/// Reads a streaming decoder's output in steps, each granted first: `first` bytes (at least
/// 16 KiB), then doubling.
fn read_capped(
    mut reader: impl Read,
    encoding: &'static str,
    limit: usize,
    first: usize,
    grant: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    let cap = limit.saturating_add(1);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() >= cap {
            return Err(DecodeError::TooLarge { limit });
        }
        let want = if out.is_empty() { first } else { out.len() };
        let step = want.max(16 * 1024).min(cap - out.len());
        if !grant(step) {
            return Err(DecodeError::OverBudget);
        }
        // Exactly the granted room (`read_to_end` would reserve more), each byte zeroed once.
        out.reserve_exact(step);
        let start = out.len();
        out.resize(start + step, 0);
        let mut filled = start;
        while filled < out.len() {
            match reader.read(&mut out[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(corrupt(encoding, e)),
            }
        }
        out.truncate(filled);
        if filled < start + step {
            break;
        }
    }
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

fn corrupt(encoding: &'static str, e: std::io::Error) -> DecodeError {
    DecodeError::Corrupt {
        encoding,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
