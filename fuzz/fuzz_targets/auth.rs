//! Auth and DSN parsing: `Auth::from_header`, `from_query`, `from_authorization` and
//! `Dsn::from_str` on any text must never panic, and an accepted auth has a key.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use protocol::{Auth, Dsn};

fn check(auth: Result<Auth, protocol::AuthError>) {
    match auth {
        Ok(auth) => {
            assert!(
                !auth.key.is_empty(),
                "accepted auth without a key: {auth:?}"
            );
            let _ = auth.public_key();
            let _ = auth.protocol_version();
            let _ = auth.to_header();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Header values reach the parser as text (the HTTP layer refuses non-UTF-8 ones); lossy
    // conversion keeps the fuzzer's non-UTF-8 mutations useful instead of discarding them.
    let text = String::from_utf8_lossy(data);
    check(Auth::from_header(&text));
    check(Auth::from_query(&text));
    check(Auth::from_authorization(&text));
    match Dsn::from_str(&text) {
        Ok(dsn) => {
            let _ = dsn.envelope_url();
            let _ = dsn.store_url();
            let _ = dsn.project();
            let _ = dsn.key();
            assert!(
                !dsn.public_key.is_empty(),
                "DSN accepted without a public key: {dsn:?}"
            );
            check(Ok(Auth::from_dsn(&dsn)));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
