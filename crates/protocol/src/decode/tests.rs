//! Tests for body decoding: round trips, bombs and corrupt input for every encoding.

use std::io::Write;
use std::time::Instant;

use super::*;

const ALL: [ContentEncoding; 5] = [
    ContentEncoding::Identity,
    ContentEncoding::Gzip,
    ContentEncoding::Deflate,
    ContentEncoding::Brotli,
    ContentEncoding::Zstd,
];

/// Compresses whatever `feed` writes, with a fast level (bombs need speed, not ratio).
fn encode(enc: ContentEncoding, feed: impl FnOnce(&mut dyn Write)) -> Vec<u8> {
    match enc {
        ContentEncoding::Identity => {
            let mut out = Vec::new();
            feed(&mut out);
            out
        }
        ContentEncoding::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            feed(&mut w);
            w.finish().unwrap()
        }
        ContentEncoding::Deflate => {
            let mut w = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            feed(&mut w);
            w.finish().unwrap()
        }
        ContentEncoding::Brotli => {
            let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 1, 22);
            feed(&mut w);
            w.flush().unwrap();
            w.into_inner()
        }
        ContentEncoding::Zstd => {
            let mut w = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
            feed(&mut w);
            w.finish().unwrap()
        }
    }
}

fn compress(enc: ContentEncoding, data: &[u8]) -> Vec<u8> {
    encode(enc, |w| w.write_all(data).unwrap())
}

#[test]
fn parse_header_values() {
    let cases = [
        (None, ContentEncoding::Identity),
        (Some(""), ContentEncoding::Identity),
        (Some(" identity "), ContentEncoding::Identity),
        (Some("gzip"), ContentEncoding::Gzip),
        (Some("X-GZIP"), ContentEncoding::Gzip),
        (Some("Deflate"), ContentEncoding::Deflate),
        (Some("br"), ContentEncoding::Brotli),
        (Some("zstd"), ContentEncoding::Zstd),
    ];
    for (header, want) in cases {
        assert_eq!(ContentEncoding::parse(header), Ok(want), "{header:?}");
    }
    let err = ContentEncoding::parse(Some("compress")).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedEncoding("compress".into()));
    assert_eq!(
        err.to_string(),
        "unsupported Content-Encoding `compress` (supported: gzip, deflate, br, zstd, identity)"
    );
    assert!(ContentEncoding::parse(Some("gzip, br")).is_err());
}

#[test]
fn round_trip_every_encoding() {
    let data: Vec<u8> = (0..50_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    for enc in ALL {
        let body = compress(enc, &data);
        assert_eq!(decode(&body, enc, data.len()).unwrap(), data, "{enc:?}");
        // One byte under the decoded size is refused.
        assert_eq!(
            decode(&body, enc, data.len() - 1),
            Err(DecodeError::TooLarge {
                limit: data.len() - 1
            })
        );
    }
}

#[test]
fn deflate_accepts_raw_deflate_too() {
    let data = b"{\"message\":\"raw deflate, no zlib header\"}".repeat(10);
    let mut w = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(&data).unwrap();
    let raw = w.finish().unwrap();
    assert!(!is_zlib_header(&raw));
    assert_eq!(
        decode(&raw, ContentEncoding::Deflate, 1 << 20).unwrap(),
        data
    );
}

#[test]
fn bombs_stop_at_the_cap() {
    const LIMIT: usize = 1 << 20;
    const BOMB: usize = 200 * 1024 * 1024;
    let zeros = vec![0u8; 1 << 20];
    for enc in ALL.into_iter().skip(1) {
        let bomb = encode(enc, |w| {
            for _ in 0..BOMB / zeros.len() {
                w.write_all(&zeros).unwrap();
            }
        });
        assert!(bomb.len() < BOMB / 100, "{enc:?}: {} bytes", bomb.len());
        let start = Instant::now();
        assert_eq!(
            decode(&bomb, enc, LIMIT),
            Err(DecodeError::TooLarge { limit: LIMIT }),
            "{enc:?}"
        );
        assert!(
            start.elapsed().as_secs() < 5,
            "{enc:?} took {:?}",
            start.elapsed()
        );
    }
    assert!(
        decode(&zeros, ContentEncoding::Identity, LIMIT - 1)
            .unwrap_err()
            .is_too_large()
    );
}

#[test]
fn corrupt_input_for_every_encoding() {
    let garbage = b"this is not compressed at all, just text".to_vec();
    for enc in ALL.into_iter().skip(1) {
        let err = decode(&garbage, enc, 1 << 20).unwrap_err();
        assert!(
            matches!(err, DecodeError::Corrupt { .. }),
            "{enc:?}: {err:?}"
        );
        assert!(!err.is_too_large());
        // A valid stream cut in half.
        let body = compress(enc, &b"{\"a\": 1}".repeat(2000));
        let cut = body.get(..body.len() / 2).unwrap();
        let err = decode(cut, enc, 1 << 20).unwrap_err();
        assert!(
            matches!(err, DecodeError::Corrupt { .. }),
            "{enc:?} truncated: {err:?}"
        );
    }
    let err = decode(&garbage, ContentEncoding::Gzip, 10).unwrap_err();
    assert!(
        err.to_string().starts_with("body is not valid gzip: "),
        "{err}"
    );
}

#[test]
fn gzip_members_headers_and_checks() {
    let text = b"{\"message\": \"hello\"}".repeat(50);
    let one = compress(ContentEncoding::Gzip, &text);
    let gz = |data: &[u8]| decode(data, ContentEncoding::Gzip, 1 << 20);
    // Two members (what `cat a.gz b.gz` gives), then zero padding.
    let mut two = [one.clone(), one.clone()].concat();
    assert_eq!(gz(&two).unwrap(), [text.clone(), text.clone()].concat());
    two.extend_from_slice(&[0; 7]);
    assert_eq!(gz(&two).unwrap().len(), text.len() * 2);
    // Every optional header field, as GzBuilder writes them (FHCRC is added by hand).
    let mut w = flate2::GzBuilder::new()
        .filename("event.json")
        .comment("from a test")
        .extra(vec![1, 2, 3])
        .write(Vec::new(), flate2::Compression::best());
    w.write_all(&text).unwrap();
    let full = w.finish().unwrap();
    assert_eq!(gz(&full).unwrap(), text);
    let header_end = gzip_header_len(&full).unwrap();
    let mut with_hcrc = full.clone();
    with_hcrc[3] |= 0x02;
    with_hcrc.splice(header_end..header_end, [0xab, 0xcd]);
    assert_eq!(gz(&with_hcrc).unwrap(), text);
    // A flipped bit in the CRC, in the length, in the data; something else after the member.
    let reason = |data: &[u8]| gz(data).unwrap_err().to_string();
    let mut bad_crc = one.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 1;
    assert!(reason(&bad_crc).contains("CRC-32"), "{}", reason(&bad_crc));
    let mut bad_len = one.clone();
    bad_len[n - 1] ^= 1;
    assert!(reason(&bad_len).contains("length mismatch"), "{}", reason(&bad_len));
    let mut trailing = one.clone();
    trailing.extend_from_slice(b"junk");
    assert!(reason(&trailing).contains("gzip header"), "{}", reason(&trailing));
    assert!(reason(&one[..n - 3]).contains("trailer"), "{}", reason(&one[..n - 3]));
    assert!(reason(&one[..6]).contains("ends early") || reason(&one[..6]).contains("header"));
    let mut method = one.clone();
    method[2] = 7;
    assert!(reason(&method).contains("compression method"));
    // The cap holds exactly: the decoded size is fine, one byte less is too large.
    assert_eq!(gz(&one).unwrap().len(), text.len());
    assert!(decode(&one, ContentEncoding::Gzip, text.len()).is_ok());
    assert_eq!(decode(&one, ContentEncoding::Gzip, text.len() - 1), Err(DecodeError::TooLarge { limit: text.len() - 1 }));
}

#[test]
fn store_bodies() {
    let json = b"  {\"message\": \"hi\"}".to_vec();
    assert_eq!(decode_store_body(&json, 100).unwrap(), json);
    assert!(decode_store_body(&json, 5).unwrap_err().is_too_large());

    let b64 = |d: &[u8]| {
        base64::engine::general_purpose::STANDARD
            .encode(d)
            .into_bytes()
    };
    // base64(json), wrapped over lines like old clients did.
    let mut wrapped = b64(&json);
    wrapped.insert(8, b'\n');
    wrapped.push(b'\n');
    assert_eq!(decode_store_body(&wrapped, 100).unwrap(), json);
    // base64(zlib(json)), with and without padding.
    let zipped = compress(ContentEncoding::Deflate, &json);
    assert_eq!(decode_store_body(&b64(&zipped), 100).unwrap(), json);
    let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&zipped);
    assert_eq!(decode_store_body(unpadded.as_bytes(), 100).unwrap(), json);
    // Raw zlib sent without a Content-Encoding header.
    assert_eq!(decode_store_body(&zipped, 100).unwrap(), json);
    // A zlib bomb behind base64 is capped too.
    let bomb = compress(ContentEncoding::Deflate, &vec![b' '; 10 << 20]);
    assert!(
        decode_store_body(&b64(&bomb), 1 << 20)
            .unwrap_err()
            .is_too_large()
    );

    let err = decode_store_body(b"%%% not base64 %%%", 100).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("body is not valid store body: neither JSON nor base64"),
        "{err}"
    );
    let err = decode_store_body(&b64(b"not zlib either"), 100).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Corrupt {
                encoding: "deflate",
                ..
            }
        ),
        "{err:?}"
    );
}

proptest::proptest! {
    #[test]
    fn never_panics_on_arbitrary_bodies(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        for enc in ALL {
            let _ = decode(&body, enc, 1 << 16);
        }
        let _ = decode_store_body(&body, 1 << 16);
    }
}

#[test]
fn every_encoding_asks_its_budget_before_it_grows() {
    let data: Vec<u8> = (0..400_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
    for enc in ALL {
        let body = compress(enc, &data);
        // Everything granted: the output, and at least as many bytes asked for as it holds.
        let mut asked = 0;
        let out = decode_within(&body, enc, 10 << 20, &mut |n| {
            asked += n;
            true
        })
        .unwrap();
        assert_eq!(out, data, "{enc:?}");
        assert!(asked >= out.len() && asked <= 3 * out.len() + 64 * 1024, "{enc:?}: asked {asked} for {}", out.len());
        // A budget of 64 KiB: refused long before the 1.6 MB are out.
        let mut left = 64 * 1024usize;
        let refused = decode_within(&body, enc, 10 << 20, &mut |n| match left.checked_sub(n) {
            Some(rest) => {
                left = rest;
                true
            }
            None => false,
        });
        assert_eq!(refused, Err(DecodeError::OverBudget), "{enc:?}");
    }
}

#[test]
fn a_gzip_size_claim_sizes_the_output_only_when_it_is_possible() {
    let data = b"{\"message\": \"hello\"}".repeat(100);
    let honest = compress(ContentEncoding::Gzip, &data);
    let first_grant = |body: &[u8]| {
        let mut first = None;
        let _ = decode_within(body, ContentEncoding::Gzip, 100 << 20, &mut |n| {
            first.get_or_insert(n);
            true
        });
        first.unwrap()
    };
    // The trailer's size, plus one byte: one allocation, no growth.
    assert_eq!(first_grant(&honest), data.len() + 1);
    // A claim of 50 MiB from a body that cannot hold it reserves no more than an honest guess.
    let mut lying = honest.clone();
    let n = lying.len();
    lying[n - 4..].copy_from_slice(&(50u32 << 20).to_le_bytes());
    assert_eq!(first_grant(&lying), honest.len() * 4);
}
