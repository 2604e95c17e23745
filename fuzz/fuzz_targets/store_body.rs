//! Body decoding: `protocol::decode::decode` for every `ContentEncoding`, then
//! `decode_store_body`, with a small cap. Never a panic, and never more than `LIMIT` bytes out:
//! a decompression bomb stops at the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::ContentEncoding;
use protocol::decode::{decode, decode_store_body};

/// Small, so that the fuzzer reaches the cap (and the bomb paths) with small inputs.
const LIMIT: usize = 4096;

const ENCODINGS: [ContentEncoding; 5] = [
    ContentEncoding::Identity,
    ContentEncoding::Gzip,
    ContentEncoding::Deflate,
    ContentEncoding::Brotli,
    ContentEncoding::Zstd,
];

fn check(out: &Result<Vec<u8>, protocol::DecodeError>, what: &str) {
    match out {
        Ok(bytes) => assert!(
            bytes.len() <= LIMIT,
            "{what}: {} bytes out, over the {LIMIT}-byte cap",
            bytes.len()
        ),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    for enc in ENCODINGS {
        let decoded = decode(data, enc, LIMIT);
        check(&decoded, enc.as_str());
        // The path a `/store/` request takes: Content-Encoding undone, then the store forms.
        if let Ok(body) = &decoded {
            check(&decode_store_body(body, LIMIT), "store body after decode");
        }
    }
    // A store body sent without Content-Encoding (raven: base64(zlib(json)), or raw zlib).
    check(&decode_store_body(data, LIMIT), "store body");
    // The header parser is fed from the same bytes.
    if let Ok(header) = std::str::from_utf8(data)
        && let Ok(enc) = ContentEncoding::parse(Some(header))
    {
        let _ = enc.as_str();
    }
});
