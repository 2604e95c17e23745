//! Tests for envelope framing: the forms real SDKs send, every refusal, and property tests.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
    Envelope::parse(body, &Limits::default())
}

fn ok(body: &[u8]) -> Envelope {
    parse(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

fn types(env: &Envelope) -> Vec<&str> {
    env.items.iter().map(|i| i.ty.as_str()).collect()
}

#[test]
fn python_sdk_envelope_with_lengths() {
    let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"sent_at\":\"2026-11-24T05:14:49.924915Z\"}\n\
{\"type\":\"event\",\"content_type\":\"application/json\",\"length\":13}\n{\"level\":\"x\"}\n\
{\"filename\":\"dump.bin\",\"type\":\"attachment\",\"length\":5}\n\x00\n\xff\r\n\n";
    let env = ok(body);
    assert_eq!(types(&env), ["event", "attachment"]);
    assert_eq!(env.items[0].payload, b"{\"level\":\"x\"}");
    assert_eq!(env.items[0].content_type(), Some("application/json"));
    assert_eq!(env.items[1].payload, b"\x00\n\xff\r\n");
    assert_eq!(env.items[1].filename(), Some("dump.bin"));
    assert_eq!(
        env.event_id().unwrap().to_string(),
        "9ec79c33ec9942ab8353589fcb2e04dc"
    );
    assert_eq!(env.sent_at(), Some("2026-11-24T05:14:49.924915Z"));
}

#[test]
fn rust_log_item_without_length() {
    let body = b"{}\n{\"type\":\"log\",\"item_count\":3,\"content_type\":\"application/vnd.sentry.items.log+json\"}\n{\"items\":[]}\n";
    let env = ok(body);
    assert_eq!(env.items.len(), 1);
    assert_eq!(env.items[0].ty, ItemType::Log);
    assert_eq!(env.items[0].payload, b"{\"items\":[]}");
    // Also at EOF without the final newline, and with an empty payload.
    let env = ok(b"{}\n{\"type\":\"log\"}\n{\"items\":[]}");
    assert_eq!(env.items[0].payload, b"{\"items\":[]}");
    let env = ok(b"{}\n{\"type\":\"session\"}");
    assert_eq!(env.items[0].payload, b"");
}

#[test]
fn header_only_envelopes_and_tolerated_whitespace() {
    assert!(ok(b"{}").items.is_empty());
    assert!(ok(b"{}\n").items.is_empty());
    assert!(ok(b"{}\r\n\n\n").items.is_empty());
    let env = ok(
        b"{\"event_id\":\"9ec79c33-ec99-42ab-8353-589fcb2e04dc\",\"dsn\":\"http://k@h/1\"}\r\n\
\n{\"type\":\"event\",\"length\":2}\r\n{}\r\n\n\n{\"type\":\"client_report\"}\r\n{}\r\n",
    );
    assert_eq!(types(&env), ["event", "client_report"]);
    assert_eq!(env.items[0].payload, b"{}");
    // Without `length`, a `\r` belongs to the payload.
    assert_eq!(env.items[1].payload, b"{}\r");
    assert_eq!(
        env.event_id().unwrap().to_string(),
        "9ec79c33ec9942ab8353589fcb2e04dc"
    );
    assert_eq!(env.dsn(), Some("http://k@h/1"));
}

#[test]
fn unknown_types_are_kept() {
    let env = ok(b"{}\n{\"type\":\"trace_metric\",\"length\":2}\n{}\n{\"type\":\"profile_chunk\"}\n{}\n{\"type\":\"check_in\"}\n{}\n");
    assert_eq!(types(&env), ["trace_metric", "profile_chunk", "check_in"]);
    assert_eq!(env.items[0].ty, ItemType::Other("trace_metric".into()));
    assert_eq!(env.items[2].ty, ItemType::CheckIn);
    for name in [
        "event",
        "transaction",
        "attachment",
        "session",
        "sessions",
        "client_report",
        "check_in",
        "log",
        "span",
        "x",
    ] {
        assert_eq!(ItemType::parse(name).as_str(), name);
    }
}

#[test]
fn refusals_and_their_messages() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "envelope does not start with a JSON header line"),
        (b"\n{}", "envelope does not start with a JSON header line"),
        (
            b"[]\n",
            "envelope header is not a JSON object (got an array)",
        ),
        (
            b"{\"a\":\n",
            "envelope header is not valid JSON: EOF while parsing a value at line 1 column 5",
        ),
        (
            b"{}\n{\"type\":\"event\",\"length\":2}\n{}\n{]\n",
            "envelope item 1: header is not valid JSON: key must be a string at line 1 column 2",
        ),
        (
            b"{}\n7\n",
            "envelope item 0: header is not a JSON object (got a number)",
        ),
        (
            b"{}\n{\"length\":2}\n{}\n",
            "envelope item 0: header has no `type`",
        ),
        (
            b"{}\n{\"type\":null}\n",
            "envelope item 0: header has no `type`",
        ),
        (
            b"{}\n{\"type\":3}\n",
            "envelope item 0: header `type` is not a string",
        ),
        (
            b"{}\n{\"type\":\"event\",\"length\":-1}\n",
            "envelope item 0: header `length` is not a non-negative integer: -1",
        ),
        (
            b"{}\n{\"type\":\"event\",\"length\":\"2\"}\n{}\n",
            "envelope item 0: header `length` is not a non-negative integer: \"2\"",
        ),
        (
            b"{}\n{\"type\":\"event\",\"length\":1.5}\n{}\n",
            "envelope item 0: header `length` is not a non-negative integer: 1.5",
        ),
        (
            b"{}\n{\"type\":\"event\",\"length\":10}\n{}\n",
            "envelope item 0: header says length 10 but only 3 bytes follow",
        ),
        (
            b"{}\n{\"type\":\"event\",\"length\":99999999999999999999}\n",
            "envelope item 0: header `length` is not a non-negative integer: 1e+20",
        ),
        (
            b"{}\n{\"type\":\"event\",\"length\":1}\n{}\n",
            "envelope item 0: payload of the declared length is not followed by a newline",
        ),
        (
            b"{}\n{\"type\":\"event\",\"length\":2}\n{}\r",
            "envelope item 0: payload of the declared length is not followed by a newline",
        ),
    ];
    for (body, want) in cases {
        let err = parse(body).unwrap_err();
        assert_eq!(err.to_string(), *want, "{}", String::from_utf8_lossy(body));
        assert!(!err.is_too_large());
    }
}

#[test]
fn size_limits_per_item_type() {
    let limits = Limits {
        max_event_bytes: 10,
        max_attachment_bytes: 20,
        ..Limits::default()
    };
    let item = |ty: &str, n: usize| {
        let mut b = format!("{{}}\n{{\"type\":\"{ty}\",\"length\":{n}}}\n").into_bytes();
        b.extend(std::iter::repeat_n(b'x', n));
        b
    };
    for ty in ["event", "transaction", "span", "log"] {
        assert!(Envelope::parse(&item(ty, 10), &limits).is_ok());
        let err = Envelope::parse(&item(ty, 11), &limits).unwrap_err();
        assert!(err.is_too_large(), "{ty}");
        assert_eq!(
            err.to_string(),
            format!("envelope item 0: {ty} item is larger than 10 bytes")
        );
    }
    assert!(Envelope::parse(&item("attachment", 20), &limits).is_ok());
    assert!(
        Envelope::parse(&item("attachment", 21), &limits)
            .unwrap_err()
            .is_too_large()
    );
    assert!(Envelope::parse(&item("session", 100), &limits).is_ok());
    // Without `length` too.
    let err = Envelope::parse(
        b"{}\n{\"type\":\"event\"}\n{\"a\":\"123456789\"}\n",
        &limits,
    )
    .unwrap_err();
    assert_eq!(
        err,
        EnvelopeError::ItemTooLarge {
            index: 0,
            ty: "event".into(),
            limit: 10
        }
    );
}

#[test]
fn serialize_writes_lengths() {
    let mut env = Envelope::default();
    env.headers
        .insert("event_id".into(), json!("9ec79c33ec9942ab8353589fcb2e04dc"));
    env.items
        .push(Item::new(ItemType::Event, b"{\"message\":\"hi\"}".to_vec()));
    env.items
        .push(Item::new(ItemType::Attachment, b"a\nb".to_vec()));
    let body = env.serialize();
    assert_eq!(
        String::from_utf8_lossy(&body),
        "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n{\"length\":16,\"type\":\"event\"}\n{\"message\":\"hi\"}\n{\"length\":3,\"type\":\"attachment\"}\na\nb\n"
    );
    let back = ok(&body);
    assert_eq!(back.items[1].payload, b"a\nb");
    assert_eq!(back.serialize(), body);
}

#[test]
fn at_most_one_event_or_transaction() {
    // One of each kind, with other items around it, is fine.
    for ty in ["event", "transaction"] {
        let body = format!(
            "{{}}\n{{\"type\":\"session\"}}\n{{}}\n{{\"type\":\"{ty}\"}}\n{{}}\n\
             {{\"type\":\"attachment\",\"length\":1}}\nx\n"
        );
        assert_eq!(ok(body.as_bytes()).items.len(), 3);
    }
    let err = parse(
        b"{}\n{\"type\":\"event\"}\n{}\n{\"type\":\"session\"}\n{}\n{\"type\":\"event\"}\n{}\n\
{\"type\":\"event\"}\n{}\n",
    )
    .unwrap_err();
    assert_eq!(
        err,
        EnvelopeError::DuplicateEvent {
            index: 2,
            first: 0,
            ty: "event".into()
        }
    );
    assert!(!err.is_too_large());
    assert_eq!(
        err.to_string(),
        "envelope item 2: a second event item; an envelope carries at most one event or \
         transaction (item 0 is the first)"
    );
    // An event and a transaction together are refused too.
    let err = parse(b"{}\n{\"type\":\"transaction\"}\n{}\n{\"type\":\"event\"}\n{}\n").unwrap_err();
    assert!(matches!(err, EnvelopeError::DuplicateEvent { index: 1, first: 0, .. }));
}

#[test]
fn item_count_limit() {
    let limits = Limits {
        max_envelope_items: 3,
        ..Limits::default()
    };
    let body = |n: usize| {
        let mut b = b"{}\n".to_vec();
        for _ in 0..n {
            b.extend_from_slice(b"{\"type\":\"session\"}\n{}\n");
        }
        b
    };
    assert_eq!(Envelope::parse(&body(3), &limits).unwrap().items.len(), 3);
    let err = Envelope::parse(&body(4), &limits).unwrap_err();
    assert_eq!(err, EnvelopeError::TooManyItems { limit: 3 });
    assert!(err.is_too_large());
    assert_eq!(err.to_string(), "envelope has more than 3 items");
    // Empty lines between items are not items.
    let mut b = body(3);
    b.extend_from_slice(b"\n\n\r\n");
    assert!(Envelope::parse(&b, &limits).is_ok());
    // The default allows 1,000.
    assert_eq!(parse(&body(1000)).unwrap().items.len(), 1000);
    assert!(parse(&body(1001)).is_err());
}

fn item_type() -> impl Strategy<Value = ItemType> {
    prop_oneof![
        Just(ItemType::Event),
        Just(ItemType::Transaction),
        Just(ItemType::Attachment),
        Just(ItemType::Session),
        Just(ItemType::Log),
        "[a-z_]{1,12}".prop_map(|s| ItemType::parse(&s)),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    let header = proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{0,12}", 0..4);
    let item = (
        item_type(),
        proptest::collection::vec(any::<u8>(), 0..64),
        "\\PC{0,8}",
    );
    (header, proptest::collection::vec(item, 0..6)).prop_map(|(header, items)| Envelope {
        headers: header
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
        items: items
            .into_iter()
            .enumerate()
            .map(|(i, (ty, payload, filename))| {
                // At most one event or transaction, as a valid envelope has: the first item may be one.
                let ty = if i > 0 && ty.is_event() { ItemType::Session } else { ty };
                let mut item = Item::new(ty, payload);
                item.headers
                    .insert("filename".into(), Value::String(filename));
                item
            })
            .collect(),
    })
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body);
    }

    #[test]
    fn never_panics_on_envelope_like_text(body in "(\\{\\}|\\{\"type\":\"(event|log)\"(,\"length\":[0-9]{1,3})?\\}|[{}\"\\r\\n a-z0-9:,]{0,8}|\\n){0,12}") {
        let _ = parse(body.as_bytes());
    }

    #[test]
    fn serialize_then_parse_round_trips(env in envelope()) {
        let body = env.serialize();
        let back = parse(&body).unwrap();
        prop_assert_eq!(&back.headers, &env.headers);
        prop_assert_eq!(back.items.len(), env.items.len());
        for (got, want) in back.items.iter().zip(&env.items) {
            prop_assert_eq!(&got.ty, &want.ty);
            prop_assert_eq!(&got.payload, &want.payload);
            prop_assert_eq!(got.filename(), want.filename());
            prop_assert_eq!(got.headers.get("length").and_then(Value::as_u64), Some(want.payload.len() as u64));
        }
        prop_assert_eq!(back.serialize(), body);
    }

    #[test]
    fn never_panics_on_corrupted_envelopes(env in envelope(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut body = env.serialize();
        for (at, byte) in flips {
            let i = at.index(body.len());
            body[i] = byte;
        }
        let _ = parse(&body);
    }
}
