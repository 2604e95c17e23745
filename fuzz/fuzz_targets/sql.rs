//! SQL normalisation: `grouping::sql::normalize` is total and idempotent on any text
//! (normalising a normalised query changes nothing), for the default and the MySQL dialect.
#![no_main]

use grouping::sql;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let once = sql::normalize(text);
    let twice = sql::normalize(&once);
    assert_eq!(twice, once, "sql::normalize is not idempotent on {text:?}");

    let once = sql::normalize_for_engine(Some("mysql"), text);
    let twice = sql::normalize_for_engine(Some("mysql"), &once);
    assert_eq!(
        twice, once,
        "sql::normalize_for_engine(mysql) is not idempotent on {text:?}"
    );
});
