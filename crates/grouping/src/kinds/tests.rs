//! Grouping of whole events: each case is an event in, its title, culprit and components out.

use super::*;
use protocol::event::{LogEntry, Mechanism, Query, Request, Stacktrace};
use protocol::{EventId, Level};

pub(crate) fn event(kind: EventKind) -> Event {
    Event {
        event_id: EventId([0; 16]),
        kind,
        timestamp: 0.0,
        platform: "python".to_string(),
        level: Level::Error,
        logger: None,
        transaction: None,
        server_name: None,
        release: None,
        dist: None,
        environment: None,
        message: None,
        exceptions: Vec::new(),
        stacktrace: None,
        query: None,
        time_spent: None,
        tags: Vec::new(),
        trimmed_tags: Vec::new(),
        dropped_tags: 0,
        fingerprint: None,
        culprit: None,
        user: None,
        request: None,
        start_timestamp: None,
        spans: Vec::new(),
    }
}

fn frame(module: &str, function: &str, in_app: Option<bool>) -> Frame {
    Frame {
        module: Some(module.to_string()).filter(|m| !m.is_empty()),
        function: Some(function.to_string()),
        in_app,
        ..Frame::default()
    }
}

fn exception(ty: &str, value: &str, frames: Vec<Frame>) -> Exception {
    Exception {
        ty: Some(ty.to_string()).filter(|t| !t.is_empty()),
        value: Some(value.to_string()).filter(|v| !v.is_empty()),
        stacktrace: (!frames.is_empty()).then_some(Stacktrace { frames }),
        ..Exception::default()
    }
}

fn exception_event(exceptions: Vec<Exception>) -> Event {
    Event {
        exceptions,
        ..event(EventKind::Exception)
    }
}

fn message_event(formatted: &str, template: Option<&str>) -> Event {
    let message = LogEntry {
        formatted: formatted.to_string(),
        message: template.map(str::to_string),
        params: Vec::new(),
    };
    Event {
        message: Some(message),
        ..event(EventKind::Message)
    }
}

fn query_event(engine: Option<&str>, sql: &str) -> Event {
    let query = Query {
        query: sql.to_string(),
        engine: engine.map(str::to_string),
    };
    Event {
        query: Some(query),
        ..event(EventKind::Query)
    }
}

/// Groups `event` and compares its title, culprit and components (one per line,
/// `name: value | value`, `~` before those that do not contribute) with `expected`.
fn check(event: &Event, expected: &str) {
    let g = group(event, &GroupingConfig::default());
    assert_eq!(g.hash.len(), 32);
    assert!(
        g.hash
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let mut lines = vec![
        format!("title: {}", g.title),
        format!("culprit: {}", g.culprit),
    ];
    for c in &g.components {
        let mark = if c.contributes { "" } else { "~" };
        lines.push(format!("{mark}{}: {}", c.name, c.values.join(" | ")));
    }
    let got: String = lines.iter().map(|l| format!("{}\n", l.trim())).collect();
    let expected: String = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(got, expected);
}

fn hash(event: &Event) -> String {
    group(event, &GroupingConfig::default()).hash
}

#[test]
fn exception_with_in_app_frames() {
    let e = exception_event(vec![exception(
        "KeyError",
        "'coupon'\nmore detail",
        vec![
            frame("django.core.handlers", "inner", Some(false)),
            frame("shop.views", "checkout", Some(true)),
            frame("shop.pricing", "apply_coupon", Some(true)),
            frame("shop.pricing", "apply_coupon", Some(true)),
            frame("decimal", "quantize", Some(false)),
        ],
    )]);
    check(
        &e,
        "title: KeyError: 'coupon'
         culprit: shop.pricing in apply_coupon
         exception.type: KeyError
         frame: shop.views | checkout
         frame: shop.pricing | apply_coupon",
    );
}

#[test]
fn exception_chain_without_in_app_marks() {
    let cause = exception("OSError", "disk full", vec![frame("io", "write", None)]);
    let main = exception("RuntimeError", "save failed", vec![]);
    let e = Event {
        transaction: Some("/orders/".to_string()),
        ..exception_event(vec![cause, main])
    };
    check(
        &e,
        "title: RuntimeError: save failed
         culprit: /orders/
         exception.type: OSError
         frame: io | write
         exception.type: RuntimeError",
    );
}

#[test]
fn exception_without_frames_uses_normalised_value() {
    let e = exception_event(vec![exception(
        "ValueError",
        "invalid literal for int() with base 10: 'abc'",
        vec![],
    )]);
    check(
        &e,
        "title: ValueError: invalid literal for int() with base 10: 'abc'
         culprit:
         exception.type: ValueError
         exception.value: invalid literal for int() with base <int>: <quoted>",
    );
}

#[test]
fn frames_use_file_basename_and_clean_functions() {
    let frames = vec![
        Frame {
            filename: Some("https://cdn.example.com/static/main.3f2a1b9c.js?v=2".to_string()),
            function: Some("render".to_string()),
            lineno: Some(10),
            ..Frame::default()
        },
        Frame {
            abs_path: Some("/home/deploy/app/src/main.rs".to_string()),
            function: Some("app::run::{{closure}}::h0123456789abcdef".to_string()),
            ..Frame::default()
        },
        Frame {
            function: Some("0x7ffd1234abcd".to_string()),
            ..Frame::default()
        },
    ];
    let e = exception_event(vec![exception("Error", "boom", frames)]);
    check(
        &e,
        "title: Error: boom
         culprit: 0x7ffd1234abcd
         exception.type: Error
         frame: main.<hex>.js | render
         frame: main.rs | app::run::{{closure}}
         frame:  | <addr>",
    );
}

/// sentry-rust marks its own frames, std's and other crates' in-app; they are not the culprit.
#[test]
fn rust_panic_ignores_sdk_and_std_frames() {
    let rust = |function: &str, abs_path: &str| Frame {
        function: Some(function.to_string()),
        abs_path: Some(abs_path.to_string()).filter(|p| !p.is_empty()),
        filename: abs_path
            .rsplit('/')
            .next()
            .filter(|f| !f.is_empty())
            .map(str::to_string),
        lineno: Some(1),
        in_app: Some(true),
        ..Frame::default()
    };
    let registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";
    let frames = vec![
        rust("start_thread", "./nptl/pthread_create.c"),
        rust("std::sys::backtrace::__rust_begin_short_backtrace", ""),
        rust("at /rustc/5980761/library/std/src/panic.rs:359:14", ""),
        rust("rsclient::main::{{closure}}", "/app/src/main.rs"),
        rust("rsclient::process_order", "/app/src/main.rs"),
        rust(
            "__rustc::rust_begin_unwind",
            "/rustc/5980761/library/std/src/panicking.rs",
        ),
        rust(
            "<sentry_panic::PanicIntegration as sentry_core::integration::Integration>::setup",
            &format!("{registry}/sentry-panic-0.49.5/src/lib.rs"),
        ),
        rust(
            "sentry_panic::panic_handler",
            &format!("{registry}/sentry-panic-0.49.5/src/lib.rs"),
        ),
    ];
    check(
        &exception_event(vec![exception(
            "panic",
            "index out of bounds: the len is 2 but the index is 3",
            frames,
        )]),
        "title: panic: index out of bounds: the len is 2 but the index is 3
         culprit: main.rs in rsclient::process_order
         exception.type: panic
         frame: pthread_create.c | start_thread
         frame: main.rs | rsclient::main::{{closure}}
         frame: main.rs | rsclient::process_order",
    );
    // Without any in-app frame, all frames count, but never their line numbers.
    let mut frame = rust("at /rustc/5980761/library/std/src/panic.rs:359:14", "");
    frame.in_app = None;
    check(
        &exception_event(vec![exception("Error", "x", vec![frame])]),
        "title: Error: x
         culprit: at /rustc/5980761/library/std/src/panic.rs:359:14
         exception.type: Error
         frame:  | at panic.rs",
    );
}

#[test]
fn python_sdk_frames_are_not_in_app() {
    let frames = vec![
        frame("shop.views", "checkout", Some(true)),
        frame(
            "sentry_sdk.integrations.django",
            "sentry_patched_view",
            Some(true),
        ),
        frame("raven.base", "capture", Some(true)),
    ];
    check(
        &exception_event(vec![exception("KeyError", "'x'", frames)]),
        "title: KeyError: 'x'
         culprit: shop.views in checkout
         exception.type: KeyError
         frame: shop.views | checkout",
    );
}

#[test]
fn synthetic_exception_uses_crash_function() {
    let mut ex = exception(
        "SIGSEGV",
        "Segfault",
        vec![
            frame("", "main", Some(true)),
            frame("", "crash_here", Some(true)),
        ],
    );
    ex.mechanism = Some(Mechanism {
        synthetic: true,
        ..Mechanism::default()
    });
    check(
        &exception_event(vec![ex]),
        "title: SIGSEGV: Segfault
         culprit: crash_here
         exception.function: crash_here
         frame:  | main
         frame:  | crash_here",
    );
}

#[test]
fn top_level_stacktrace_stands_in_for_exception_frames() {
    let e = Event {
        stacktrace: Some(Stacktrace {
            frames: vec![frame("app.jobs", "run", Some(true))],
        }),
        ..exception_event(vec![exception("TimeoutError", "", vec![])])
    };
    check(
        &e,
        "title: TimeoutError
         culprit: app.jobs in run
         exception.type: TimeoutError
         frame: app.jobs | run",
    );
}

#[test]
fn messages() {
    let e = Event {
        logger: Some("shop.payments".to_string()),
        ..message_event("Payment 42 declined", Some("Payment %s declined"))
    };
    check(
        &e,
        "title: Payment 42 declined
         culprit: shop.payments
         message: Payment %s declined
         ~logger: shop.payments",
    );
    // A plain message sent as the template (no params) still groups across values.
    assert_eq!(
        hash(&message_event(
            "Payment 42 declined",
            Some("Payment 42 declined")
        )),
        hash(&message_event(
            "Payment 43 declined",
            Some("Payment 43 declined")
        ))
    );
    let e = Event {
        transaction: Some("/pay/".to_string()),
        ..message_event("User 550e8400-e29b-41d4-a716-446655440000 paid 12.50", None)
    };
    check(
        &e,
        "title: User 550e8400-e29b-41d4-a716-446655440000 paid 12.50
         culprit: /pay/
         message: User <uuid> paid <float>",
    );
}

#[test]
fn queries() {
    let e = Event {
        transaction: Some("/orders/".to_string()),
        ..query_event(
            Some("psycopg2"),
            r#"SELECT "o"."id" FROM "o" WHERE "o"."id" IN (%s, %s)"#,
        )
    };
    check(
        &e,
        "title: SELECT o.id FROM o WHERE o.id IN (?)
         culprit: postgresql · /orders/
         engine: postgresql
         sql: SELECT o.id FROM o WHERE o.id IN (?)",
    );
    check(
        &query_event(None, "select 1"),
        "title: SELECT ?
         culprit:
         sql: SELECT ?",
    );
    check(
        &query_event(Some("MySQLdb"), "SELECT * FROM t WHERE a = \"x\""),
        "title: SELECT * FROM t WHERE a = ?
         culprit: mysql
         engine: mysql
         sql: SELECT * FROM t WHERE a = ?",
    );
}

#[test]
fn transactions_and_custom_kinds() {
    let e = Event {
        transaction: Some("/orders/{id}/".to_string()),
        request: Some(Request {
            url: Some("https://shop.example/orders/7/?x=1".to_string()),
            method: None,
        }),
        ..event(EventKind::Transaction)
    };
    check(
        &e,
        "title: /orders/{id}/
         culprit: https://shop.example/orders/7/
         transaction: /orders/{id}/",
    );
    let e = Event {
        tags: vec![(
            "url".to_string(),
            "https://shop.example/orders/7/".to_string(),
        )],
        ..e
    };
    assert_eq!(
        group(&e, &GroupingConfig::default()).culprit,
        "https://shop.example/orders/7/"
    );

    let mut e = message_event("Deployed release 1.4.2 to web-3", None);
    e.kind = EventKind::Custom("deploy".to_string());
    check(
        &e,
        "title: deploy: Deployed release 1.4.2 to web-3
         culprit:
         message: Deployed release <float>.<int> to web-<int>",
    );
}

#[test]
fn empty_events_still_group() {
    for kind in [
        EventKind::Exception,
        EventKind::Message,
        EventKind::Query,
        EventKind::Transaction,
        EventKind::Custom(String::new()),
    ] {
        let g = group(&event(kind.clone()), &GroupingConfig::default());
        assert_eq!(g.hash.len(), 32, "{kind:?}");
        assert!(!g.components.is_empty(), "{kind:?}");
    }
    check(
        &event(EventKind::Exception),
        "title: <unlabeled event>
         culprit:
         message:",
    );
}

#[test]
fn client_culprit_wins() {
    let e = Event {
        culprit: Some(" legacy.view ".to_string()),
        ..message_event("x", None)
    };
    assert_eq!(group(&e, &GroupingConfig::default()).culprit, "legacy.view");
}

#[test]
fn long_titles_are_truncated() {
    let e = message_event(&"x".repeat(500), None);
    let title = group(&e, &GroupingConfig::default()).title;
    assert_eq!(title.chars().count(), MAX_TITLE);
    assert!(title.ends_with('…'));
}

#[test]
fn fingerprints() {
    let base = message_event("Payment 42 declined", None);
    let with = |fp: &[&str]| Event {
        fingerprint: Some(fp.iter().map(|s| s.to_string()).collect()),
        ..base.clone()
    };

    // `{{ default }}` alone is the default grouping, whatever its spelling.
    assert_eq!(hash(&with(&["{{ default }}"])), hash(&base));
    assert_eq!(
        hash(&with(&["{{default}}"])),
        hash(&with(&[" {{ DEFAULT }} "]))
    );
    assert_eq!(hash(&with(&[])), hash(&base));

    // A fingerprint without it groups by its values alone.
    let other = Event {
        fingerprint: Some(vec!["payments".to_string()]),
        ..message_event("Something else", None)
    };
    assert_eq!(hash(&with(&["payments"])), hash(&other));
    assert_ne!(
        hash(&with(&["payments", "{{ default }}"])),
        hash(&with(&["payments"]))
    );

    check(
        &with(&[
            "payments",
            "{{ default }}",
            "{{ level }}",
            "{{ tags.region }}",
            "{{ unknown }}",
        ]),
        "title: Payment 42 declined
         culprit:
         fingerprint: payments
         message: Payment <int> declined
         fingerprint: error | <no-value-for-tag-region> | {{ unknown }}",
    );
    check(
        &with(&["{{ transaction }}"]),
        "title: Payment 42 declined
         culprit:
         fingerprint: <no-transaction>
         ~message: Payment <int> declined",
    );
}

#[test]
fn kinds_never_share_a_group() {
    let m = message_event("SELECT 1", None);
    let mut c = m.clone();
    c.kind = EventKind::Custom("message2".to_string());
    let q = Event {
        kind: EventKind::Query,
        ..m.clone()
    };
    assert_ne!(hash(&m), hash(&q));
    assert_ne!(hash(&m), hash(&c));
    let fp = |e: &Event| Event {
        fingerprint: Some(vec!["same".to_string()]),
        ..e.clone()
    };
    assert_ne!(hash(&fp(&m)), hash(&fp(&q)));
}

#[test]
fn kind_recognition() {
    let e = exception_event(vec![exception("E", "v", vec![])]);
    assert!(ExceptionKind.matches(&e));
    assert!(!MessageKind.matches(&e));
    assert!(MessageKind.matches(&message_event("x", None)));
    assert!(QueryKind.matches(&query_event(None, "select 1")));
    assert!(TransactionKind.matches(&event(EventKind::Transaction)));
    let custom = CustomKind {
        name: "deploy".to_string(),
    };
    assert!(custom.matches(&event(EventKind::Custom("deploy".to_string()))));
    assert_eq!(
        kind_of(&event(EventKind::Custom("deploy".to_string()))).name(),
        "deploy"
    );
}

/// The JavaScript SDK's `captureMessage` with `attachStacktrace`: no type, the message as value
/// and as the event's message, `mechanism.synthetic`.
fn synthetic_message_event(message: &str, function: &str) -> Event {
    let mut ex = exception("", message, vec![frame("app", "main", Some(true)), frame("app", function, Some(true))]);
    ex.mechanism = Some(Mechanism { ty: Some("generic".into()), synthetic: true, ..Mechanism::default() });
    Event { message: message_event(message, None).message, ..exception_event(vec![ex]) }
}

#[test]
fn synthetic_exception_of_a_message_is_titled_and_grouped_by_the_message() {
    check(
        &synthetic_message_event("Order 1234 could not be paid", "pay"),
        "title: Order 1234 could not be paid
         culprit: app in pay
         message: Order <int> could not be paid
         ~frame: app | pay",
    );
    // Another order, from another place: the same issue.
    let a = group(&synthetic_message_event("Order 1234 could not be paid", "pay"), &GroupingConfig::default());
    let b = group(&synthetic_message_event("Order 98 could not be paid", "retry"), &GroupingConfig::default());
    assert_eq!(a.hash, b.hash);
    // Without the event's message, the exception's value is the message.
    let mut e = synthetic_message_event("Cart is empty", "checkout");
    e.message = None;
    assert_eq!(group(&e, &GroupingConfig::default()).title, "Cart is empty");
}
