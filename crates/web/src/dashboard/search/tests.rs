//! The search language as a table: each query and what it does to the stream query, or why
//! it can't; and a property test that no input makes the parser panic.

use proptest::prelude::*;
use store::{ProjectId, StreamQuery};

use super::*;

const NOW: f64 = 1_800_000_000.0;

fn ctx() -> SearchContext {
    SearchContext {
        me: Some(UserId(7)),
        teams: vec![("ops".into(), TeamId(3)), ("billing".into(), TeamId(4))],
        members: vec![("alice@example.com".into(), UserId(7)), ("bob@example.com".into(), UserId(8))],
    }
}

/// What the query narrows to, in one line, or the problems.
fn check(q: &str) -> String {
    let mut query = StreamQuery::new(ProjectId(1), NOW);
    let ctx = ctx();
    let lowering = Lowering { ctx: &ctx };
    let mut out = Vec::new();
    for t in parse(q) {
        if let Err(e) = t.and_then(|t| lowering.apply(&t, &mut query)) {
            out.push(format!("error: {e}"));
        }
    }
    if query.status != StatusFilter::Only(GroupStatus::Unresolved) {
        out.push(format!("status {:?}", query.status));
    }
    if let Some(s) = query.since {
        out.push(format!("since now-{}", NOW - s));
    }
    for c in &query.conditions {
        let not = if c.negated { "not " } else { "" };
        let first = if c.first_only { "first " } else { "" };
        match c.values.is_empty() {
            true => out.push(format!("{not}has {}", c.key)),
            false => out.push(format!("{not}{first}{} in {}", c.key, c.values.join("|"))),
        }
    }
    for c in &query.comparisons {
        let v = match c.field {
            GroupField::FirstSeen | GroupField::LastSeen if c.value > NOW - 1e7 => format!("now-{}", NOW - c.value),
            _ => c.value.to_string(),
        };
        out.push(format!("{:?} {} {v}", c.field, c.cmp.sql()));
    }
    for c in &query.assigned {
        let not = if c.negated { "not " } else { "" };
        match &c.to {
            None => out.push(format!("{not}assigned")),
            Some(to) => out.push(format!("{not}assigned to {to:?}")),
        }
    }
    for w in &query.text {
        out.push(format!("text {w:?}"));
    }
    out.join("; ")
}

#[test]
fn the_search_language() {
    let table: &[(&str, &str)] = &[
        // Free text and quotes.
        ("", ""),
        ("boom", r#"text "boom""#),
        (r#""out of stock" cart"#, r#"text "out of stock"; text "cart""#),
        ("http://shop.example/cart", r#"text "http://shop.example/cart""#),
        (r#""level:error""#, r#"text "level:error""#),
        (r#"message:"out of stock""#, r#"text "out of stock""#),
        // Tags, negation, wildcards, lists.
        ("server:web-1", "server in web-1"),
        ("!server:web-1", "not server in web-1"),
        ("server:web-*", "server in web-*"),
        ("!server:web-*", "not server in web-*"),
        ("level:[error,fatal]", "level in error|fatal"),
        ("level:[error, warn]", "level in error|warning"),
        ("!level:info", "not level in info"),
        ("tags[browser]:Firefox", "browser in Firefox"),
        ("tags.os:Linux", "os in Linux"),
        (r#"customer:"acme corp""#, "customer in acme corp"),
        (r#"customer:">5""#, "customer in >5"),
        ("has:user", "has user"),
        ("!has:user", "not has user"),
        ("has:[user,browser]", "has user; has browser"),
        ("release:shop@1.2", "release in shop@1.2"),
        ("first_release:shop@1.2", "first release in shop@1.2"),
        ("firstRelease:[1.0,1.1]", "first release in 1.0|1.1"),
        ("environment:[production,staging]", "environment in production|staging"),
        ("env:production", "environment in production"),
        // Status and assignees.
        ("is:resolved", "status Only(Resolved)"),
        ("is:all", "status All"),
        ("is:unassigned", "not assigned"),
        ("is:assigned", "assigned"),
        ("!is:unassigned", "assigned"),
        ("assigned:me", "assigned to [User(UserId(7))]"),
        ("assigned:#ops", "assigned to [Team(TeamId(3))]"),
        ("assigned:bob@example.com", "assigned to [User(UserId(8))]"),
        ("assigned:[me,#billing]", "assigned to [User(UserId(7)), Team(TeamId(4))]"),
        ("!assigned:me", "not assigned to [User(UserId(7))]"),
        // Comparisons and times.
        ("times_seen:>100", "TimesSeen > 100"),
        ("timesSeen:<=5", "TimesSeen <= 5"),
        ("times_seen:42", "TimesSeen = 42"),
        ("!times_seen:>100", "TimesSeen <= 100"),
        ("users:>10", "Users > 10"),
        ("users:>=10", "Users >= 10"),
        ("age:-24h", "FirstSeen >= now-86400"),
        ("age:+7d", "FirstSeen <= now-604800"),
        ("!age:-24h", "FirstSeen < now-86400"),
        ("first_seen:-30m", "FirstSeen >= now-1800"),
        ("last_seen:+7d", "LastSeen <= now-604800"),
        ("lastSeen:-1w", "LastSeen >= now-604800"),
        ("first_seen:>2026-01-31", "FirstSeen > 1769817600"),
        ("last_seen:<2026-01-31T12:30:00Z", "LastSeen < 1769862600"),
        ("interval:1h", "since now-3600"),
        // A mix: the good terms apply, the bad one says why.
        ("is:ignored level:loud boom", r#"error: "loud" is not a level: use fatal, error, warning, info or debug; status Only(Ignored); text "boom""#),
        // Every error.
        (r#"message:"out of"#, r#"error: the quote before "out of" is not closed: add a " at its end"#),
        ("!", r#"error: a lone "!" negates nothing: write it before a term, like !level:info"#),
        ("!boom", r#"error: "!boom": only key:value terms can be negated, like !server:web-1"#),
        ("se rver:x sp@ce:x", r#"error: "sp@ce" can't be a key: use letters, digits, dots, dashes or underscores; rver in x; text "se""#),
        ("KeyError:", r#"error: "KeyError:" has no value: write one after the colon, or put the words in quotes to search for them"#),
        ("level:[error,fatal", r#"error: the list of "level:" is not closed: end it with ], like level:[a,b]"#),
        ("level:[]", r#"error: the list of "level:" is empty: put values in it, like level:[a,b]"#),
        ("level:[ , ]", r#"error: the list of "level:" is empty: put values in it, like level:[a,b]"#),
        (&format!("server:[{}]", vec!["a"; 21].join(",")), r#"error: the list of "server:" has 21 values; at most 20 can be given"#),
        ("times_seen:>", r#"error: "times_seen:>" compares with nothing: put a number or a date after >"#),
        ("times_seen:>lots", r#"error: "times_seen:lots" is not a number: write one, like times_seen:>100"#),
        ("times_seen:>inf", r#"error: "times_seen:inf" is not a number: write one, like times_seen:>100"#),
        ("times_seen:[1,2]", r#"error: "times_seen" takes one value, not a list"#),
        ("!times_seen:5", r#"error: "!times_seen:" with = is not supported: use < or >"#),
        ("server:>5", r#"error: "server" is not a number or a date, so it can't be compared: comparisons work on times_seen, users, age, first_seen and last_seen"#),
        ("age:yesterday", r#"error: "age:yesterday" is not a time: use -24h (within the last 24 hours), +7d (longer ago), or a date like >2026-01-31"#),
        ("age:-24y", r#"error: "-24y": the unit must be s, m, h, d or w, like -24h"#),
        ("age:-h", r#"error: "-h": write a whole number before the unit, like -24h"#),
        ("first_seen:>2026-02-30", r#"error: "first_seen:2026-02-30" is not a time: use -24h (within the last 24 hours), +7d (longer ago), or a date like >2026-01-31"#),
        ("level:loud", r#"error: "loud" is not a level: use fatal, error, warning, info or debug"#),
        ("is:open", r#"error: "is:open": use is:unresolved, is:resolved, is:ignored, is:assigned, is:unassigned or is:all"#),
        ("!is:resolved", r#"error: "!is:resolved" is not supported: pick the status to show, like is:unresolved"#),
        ("!message:boom", r#"error: "!message:" is not supported: search for words that must appear instead"#),
        ("assigned:#nobody", "error: there is no team #nobody in this organisation"),
        ("assigned:carol@example.com", r#"error: "carol@example.com" is not a member of this organisation: use me, #team or a member's email"#),
        ("interval:2h", r#"error: "2h" is not an interval: use 15m, 1h, 24h, 7d, 30d or all"#),
        ("!interval:1h", r#"error: "interval" can't be negated"#),
        ("interval:[1h,24h]", "error: give one interval, like interval:24h"),
    ];
    let mut failures = Vec::new();
    for (q, want) in table {
        let got = check(q);
        if got != *want {
            failures.push(format!("  {q:?}\n    want {want}\n    got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} queries differ:\n{}", failures.len(), table.len(), failures.join("\n"));
}

#[test]
fn me_without_a_viewer_is_explained() {
    let ctx = SearchContext::default();
    assert_eq!(ctx.assignee("me"), Err("\"me\" needs a signed-in member; name the member by email".to_string()));
}

proptest! {
    #[test]
    fn the_parser_never_panics(q in "\\PC{0,80}") {
        let mut query = StreamQuery::new(ProjectId(1), NOW);
        let ctx = ctx();
        for t in parse(&q) {
            let _ = t.and_then(|t| Lowering { ctx: &ctx }.apply(&t, &mut query));
        }
    }

    #[test]
    fn the_parser_never_panics_on_its_own_syntax(q in "[!a-z_:\\[\\]\",<>=+*#@. 0-9-]{0,60}") {
        let mut query = StreamQuery::new(ProjectId(1), NOW);
        let ctx = ctx();
        for t in parse(&q) {
            let _ = t.and_then(|t| Lowering { ctx: &ctx }.apply(&t, &mut query));
        }
    }
}
