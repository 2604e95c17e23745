//! Envelope framing: `protocol::Envelope::parse` with the default limits must never panic, and
//! what it accepts must respect the limits it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{Envelope, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match Envelope::parse(data, &limits) {
        Ok(env) => {
            // The accessors read client-controlled headers; they must be total too.
            let _ = env.event_id();
            let _ = env.dsn();
            let _ = env.sent_at();
            for item in &env.items {
                let _ = item.content_type();
                let _ = item.filename();
                if let Some(limit) = item.ty.size_limit(&limits) {
                    assert!(
                        item.payload.len() <= limit,
                        "{} item of {} bytes accepted over its {limit}-byte limit",
                        item.ty.as_str(),
                        item.payload.len()
                    );
                }
                assert!(
                    item.payload.len() <= data.len(),
                    "a payload longer than the body"
                );
            }
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.is_too_large();
        }
    }
});
