//! Event normalisation and grouping: `protocol::event::normalize_slice` on any bytes, then
//! `grouping::group` on whatever it accepts, and on every Query event `span_queries` derives.
//! Normalisation never panics; grouping is total (it never fails on a normalised event).
#![no_main]

use grouping::{GroupingConfig, group};
use libfuzzer_sys::fuzz_target;
use protocol::Limits;
use protocol::event::{normalize_slice, span_queries};

fn check_group(event: &protocol::Event, config: &GroupingConfig) {
    let g = group(event, config);
    assert_eq!(g.hash.len(), 32, "hash is not 32 hex digits: {:?}", g.hash);
    assert!(
        g.hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "hash is not lowercase hex: {:?}",
        g.hash
    );
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let config = GroupingConfig::default();
    let Ok(event) = normalize_slice(data, &limits, 1_700_000_000.0, None) else {
        return;
    };
    check_group(&event, &config);
    for query in span_queries(&event) {
        check_group(&query, &config);
    }
});
