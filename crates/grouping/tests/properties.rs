//! Property tests: the normalisers are total and idempotent, and grouping ignores what varies
//! between occurrences of one problem (literals, whitespace, line numbers, ids) but not what
//! tells problems apart (the exception type).

use grouping::{GroupingConfig, group, message, sql};
use proptest::prelude::*;
use protocol::event::{Exception, Frame, LogEntry, Query, Stacktrace};
use protocol::{Event, EventId, EventKind, Level};

fn event(kind: EventKind) -> Event {
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

fn hash(e: &Event) -> String {
    group(e, &GroupingConfig::default()).hash
}

/// Text made of SQL's awkward pieces: quotes, dollars, comments, placeholders, signs.
fn sqlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("SELECT ".to_string()),
        Just("IN (".to_string()),
        Just("VALUES (".to_string()),
        Just("SAVEPOINT ".to_string()),
        Just("order".to_string()),
        Just("E'".to_string()),
        Just("$$".to_string()),
        Just("$a$".to_string()),
        Just("%(x)s".to_string()),
        Just("--".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("0x1f".to_string()),
        Just("1e5".to_string()),
        "[a-z0-9'\"`$%?:()\\[\\],.;=<>!+*/#@&\\\\ \n\t-]{1,3}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// Text made of the pieces message normalisation looks for.
fn messageish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<int>".to_string()),
        Just("<ip>".to_string()),
        Just("http://".to_string()),
        Just("a@b.com".to_string()),
        Just("2024-01-02".to_string()),
        Just("10:20:30".to_string()),
        Just("::".to_string()),
        Just("0x".to_string()),
        Just("deadbeef12".to_string()),
        Just("ms".to_string()),
        "[a-f0-9xzT'\"“”.:@/<>+_ \n-]{1,3}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// A literal of any SQL form.
fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        "[a-zA-Z0-9 ']{0,12}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        "[a-z ]{0,8}".prop_map(|s| format!("$${s}$$")),
        Just("TRUE".to_string()),
        Just("false".to_string()),
        Just("%s".to_string()),
        Just("$1".to_string()),
        Just("?".to_string()),
        Just(":name".to_string()),
        (0u32..u32::MAX).prop_map(|n| format!("0x{n:x}")),
    ]
}

fn whitespace() -> impl Strategy<Value = String> {
    "[ \t\n\r]{1,4}"
}

/// A query template whose `#` are literal slots; the template words themselves never change.
const TEMPLATES: &[&str] = &[
    "SELECT \"t\" . \"a\" , count ( * ) FROM \"t\" WHERE \"t\" . \"id\" = # AND b IN ( # , # , # ) LIMIT #",
    "INSERT INTO t ( a , b ) VALUES ( # , # ) , ( # , # ) RETURNING id",
    "UPDATE t SET a = # , b = - # WHERE c > # OR d LIKE # ;",
    "select * from t where x between # and # order by y desc",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sql_is_total_and_idempotent(s in sqlish()) {
        let once = sql::normalize(&s);
        prop_assert_eq!(sql::normalize(&once), once.clone());
        let mysql = sql::normalize_for_engine(Some("mysql"), &s);
        prop_assert_eq!(sql::normalize_for_engine(Some("mysql"), &mysql), mysql);
    }

    #[test]
    fn sql_is_total_on_any_text(s in any::<String>()) {
        let once = sql::normalize(&s);
        prop_assert_eq!(sql::normalize(&once), once);
    }

    #[test]
    fn message_is_total_and_idempotent(s in messageish()) {
        let once = message::normalize(&s);
        prop_assert_eq!(message::normalize(&once), once);
    }

    #[test]
    fn message_is_total_on_any_text(s in any::<String>()) {
        let once = message::normalize(&s);
        prop_assert_eq!(message::normalize(&once), once);
    }

    #[test]
    fn query_hash_ignores_literals_and_whitespace(
        template in prop::sample::select(TEMPLATES),
        a in prop::collection::vec((literal(), whitespace()), 8),
        b in prop::collection::vec((literal(), whitespace()), 8),
    ) {
        let fill = |values: &[(String, String)]| {
            let mut slot = 0;
            let mut out = String::new();
            for word in template.split(' ') {
                let (lit, ws) = &values[slot % values.len()];
                if word == "#" {
                    out.push_str(lit);
                    slot += 1;
                } else {
                    out.push_str(word);
                }
                out.push_str(ws);
            }
            out
        };
        let query = |sql: String| Event {
            query: Some(Query { query: sql, engine: Some("psycopg2".to_string()) }),
            ..event(EventKind::Query)
        };
        let (qa, qb) = (fill(&a), fill(&b));
        prop_assert_eq!(sql::normalize(&qa), sql::normalize(&qb));
        prop_assert_eq!(hash(&query(qa)), hash(&query(qb)));
    }

    #[test]
    fn exception_hash_ignores_lines_and_values_but_not_type(
        lines in prop::collection::vec(any::<u64>(), 3),
        dir in "[a-z/]{0,12}",
        value in ".{0,20}",
        ty in "[A-Z][a-zA-Z]{0,10}",
        other_ty in "[A-Z][a-zA-Z]{0,10}",
    ) {
        let frames = |lines: &[u64], dir: &str| -> Vec<Frame> {
            ["views.py", "models.py", "utils.py"]
                .iter()
                .zip(lines)
                .map(|(file, line)| Frame {
                    filename: Some(format!("{dir}/{file}")),
                    abs_path: Some(format!("/srv/{dir}/{file}")),
                    function: Some(format!("f_{}", &file[..4])),
                    lineno: Some(*line),
                    colno: Some(line / 2),
                    context_line: Some(format!("x = {line}")),
                    in_app: Some(true),
                    ..Frame::default()
                })
                .collect()
        };
        let exception = |ty: &str, value: &str, frames: Vec<Frame>| Event {
            exceptions: vec![Exception {
                ty: Some(ty.to_string()),
                value: Some(value.to_string()),
                stacktrace: Some(Stacktrace { frames }),
                ..Exception::default()
            }],
            ..event(EventKind::Exception)
        };
        let base = exception(&ty, "fixed", frames(&[1, 2, 3], ""));
        let varied = exception(&ty, &value, frames(&lines, &dir));
        prop_assert_eq!(hash(&base), hash(&varied));
        let other = exception(&other_ty, "fixed", frames(&[1, 2, 3], ""));
        prop_assert_eq!(hash(&base) == hash(&other), ty == other_ty);
    }

    #[test]
    fn message_hash_ignores_numbers_and_ids(
        n in any::<i64>(),
        f in any::<f64>().prop_filter("finite", |f| f.is_finite()),
        id in any::<u128>(),
        word in "[a-z]{1,10}",
    ) {
        let uuid = format!("{id:032x}");
        let uuid = format!("{}-{}-{}-{}-{}", &uuid[..8], &uuid[8..12], &uuid[12..16], &uuid[16..20], &uuid[20..]);
        let text = |n: String, f: String, uuid: &str, word: &str| {
            format!("Order {n} for user {uuid} failed: total {f}, quoted '{word}'")
        };
        let msg = |formatted: String| Event {
            message: Some(LogEntry { formatted, ..LogEntry::default() }),
            ..event(EventKind::Message)
        };
        let a = msg(text(n.to_string(), format!("{f:.2}"), &uuid, &word));
        let b = msg(text("1".to_string(), "0.50".to_string(), "00000000-0000-0000-0000-000000000000", "x"));
        prop_assert_eq!(hash(&a), hash(&b));
    }

    #[test]
    fn message_hash_ignores_whitespace(
        lines in prop::collection::vec(prop::collection::vec("[a-zA-Z]{1,8}", 1..6), 1..3),
        seps in prop::collection::vec("[ \t]{1,4}", 8),
        edges in prop::collection::vec("[ \t]{0,3}", 4),
        blank in prop::collection::vec("(\r?\n[ \t]*){0,2}", 3),
    ) {
        // Canonical: one space between words, one newline between lines. Varied: any run of
        // blanks and tabs between words, blanks around each line, blank lines around and between.
        let canonical = lines.iter().map(|l| l.join(" ")).collect::<Vec<_>>().join("\n");
        let mut varied = blank[0].clone();
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                varied.push('\n');
                varied.push_str(&blank[1]);
            }
            varied.push_str(&edges[i % 2 * 2]);
            for (j, word) in line.iter().enumerate() {
                if j > 0 {
                    varied.push_str(&seps[(i + j) % seps.len()]);
                }
                varied.push_str(word);
            }
            varied.push_str(&edges[i % 2 * 2 + 1]);
        }
        varied.push_str(&blank[2]);
        let msg = |formatted: &str| Event {
            message: Some(LogEntry { formatted: formatted.to_string(), ..LogEntry::default() }),
            ..event(EventKind::Message)
        };
        prop_assert_eq!(message::normalize(&varied), message::normalize(&canonical));
        prop_assert_eq!(hash(&msg(&varied)), hash(&msg(&canonical)));
        // A template (`logentry.message`) is normalised the same way.
        let tmpl = |t: &str| Event {
            message: Some(LogEntry {
                message: Some(t.to_string()),
                formatted: "ignored".to_string(),
                ..LogEntry::default()
            }),
            ..event(EventKind::Message)
        };
        prop_assert_eq!(hash(&tmpl(&varied)), hash(&tmpl(&canonical)));
    }

    #[test]
    fn frameless_exception_hash_ignores_value_literals_and_whitespace(
        n in any::<u64>(),
        f in 0.0f64..1e6,
        ws in prop::collection::vec("[ \t]{1,3}", 4),
        quoted in "[a-z0-9 ]{0,10}",
        ty in "[A-Z][a-zA-Z]{0,10}",
        other_ty in "[A-Z][a-zA-Z]{0,10}",
    ) {
        // Without frames an exception groups by its type and its normalised value.
        let exception = |ty: &str, value: String| Event {
            exceptions: vec![Exception {
                ty: Some(ty.to_string()),
                value: Some(value),
                ..Exception::default()
            }],
            ..event(EventKind::Exception)
        };
        let varied = format!(
            "{}order{}{n}{}not found:{}'{quoted}' after {f:.3}s",
            ws[0], ws[1], ws[2], ws[3]
        );
        let base = exception(&ty, "order 1 not found: 'x' after 0.500s".to_string());
        prop_assert_eq!(hash(&base), hash(&exception(&ty, varied)));
        let other = exception(&other_ty, "order 1 not found: 'x' after 0.500s".to_string());
        prop_assert_eq!(hash(&base) == hash(&other), ty == other_ty);
    }

    #[test]
    fn event_stacktrace_hash_ignores_line_numbers(
        lines in prop::collection::vec((any::<u64>(), any::<u64>()), 4),
        ty in "[A-Z][a-zA-Z]{0,10}",
    ) {
        // raven and some SDKs put the stack trace on the event, not on the exception; it then
        // stands for the exception's, and line and column numbers still do not count.
        let frames = |lines: &[(u64, u64)]| -> Vec<Frame> {
            [("app.orders", "pay", true), ("app.db", "save", true), ("lib.http", "send", false), ("app.views", "post", true)]
                .iter()
                .zip(lines)
                .map(|((module, function, in_app), (line, col))| Frame {
                    module: Some(module.to_string()),
                    filename: Some(format!("{}.py", module.replace('.', "/"))),
                    function: Some(function.to_string()),
                    lineno: Some(*line),
                    colno: Some(*col),
                    context_line: Some(format!("    {function}({line})")),
                    in_app: Some(*in_app),
                    ..Frame::default()
                })
                .collect()
        };
        let with_stack = |lines: &[(u64, u64)]| Event {
            exceptions: vec![Exception {
                ty: Some(ty.clone()),
                value: Some("boom".to_string()),
                ..Exception::default()
            }],
            stacktrace: Some(Stacktrace { frames: frames(lines) }),
            ..event(EventKind::Exception)
        };
        let base = with_stack(&[(1, 1), (2, 2), (3, 3), (4, 4)]);
        prop_assert_eq!(hash(&base), hash(&with_stack(&lines)));
    }
}
