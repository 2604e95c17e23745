//! Times each CPU stage of ingest for one recorded envelope: decode, envelope parse, event
//! normalisation, grouping, the storable event, its spool record. `cargo run --release -p ingest --example
//! process_cost -- PATH.envelope[.gz] [ROUNDS]`.

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: process_cost PATH [ROUNDS]");
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(20_000);
    let body = std::fs::read(&path).expect("reading the envelope");
    let encoding = if path.ends_with(".gz") { protocol::ContentEncoding::Gzip } else { protocol::ContentEncoding::Identity };
    let limits = protocol::Limits::default();
    let cfg = grouping::GroupingConfig::default();
    let scrubber = ingest::scrub::Scrubber::default();
    let time = |name: &str, f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..rounds {
            f();
        }
        println!("{name:<12} {:>8.1} µs", start.elapsed().as_secs_f64() * 1e6 / rounds as f64);
    };
    let data = protocol::decode::decode(&body, encoding, limits.max_decompressed_bytes).unwrap();
    let env = protocol::Envelope::parse(&data, &limits).unwrap();
    let item = env.items.iter().find(|i| matches!(i.ty, protocol::ItemType::Event | protocol::ItemType::Transaction)).unwrap();
    let event = protocol::event::normalize_item(item, &limits, 0.0, None).unwrap();
    time("decode", &mut || {
        std::hint::black_box(protocol::decode::decode(&body, encoding, limits.max_decompressed_bytes).unwrap());
    });
    time("envelope", &mut || {
        std::hint::black_box(protocol::Envelope::parse(&data, &limits).unwrap());
    });
    time("json only", &mut || {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&item.payload).unwrap());
    });
    time("normalize", &mut || {
        std::hint::black_box(protocol::event::normalize_item(item, &limits, 0.0, None).unwrap());
    });
    time("scan", &mut || {
        std::hint::black_box(scrubber.may_hold_secrets(&item.payload));
    });
    time("detect", &mut || {
        std::hint::black_box(ingest::scrub::detect::holds_secrets(&scrubber, &item.payload).unwrap());
    });
    time("scrub", &mut || {
        std::hint::black_box(scrubber.payload(&item.payload));
    });
    time("group", &mut || {
        std::hint::black_box(grouping::group(&event, &cfg));
    });
    let processed = ingest::process::envelope(store::ProjectId(1), &env, &limits, &cfg, &scrubber, 0.0).unwrap();
    time("spool record", &mut || {
        std::hint::black_box(ingest::encode_record(&processed.events, &processed.counts, &processed.items));
    });
    time("whole", &mut || {
        std::hint::black_box(ingest::process::envelope(store::ProjectId(1), &env, &limits, &cfg, &scrubber, 0.0).unwrap());
    });
    let off = ingest::scrub::Scrubber::new(&ingest::scrub::ScrubConfig { enabled: false, ..Default::default() });
    time("no scrubbing", &mut || {
        std::hint::black_box(ingest::process::envelope(store::ProjectId(1), &env, &limits, &cfg, &off, 0.0).unwrap());
    });
}
