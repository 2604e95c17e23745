//! Looking at the JSON of `sentry groups` and `sentry events`: find a group, read its tags.

use serde_json::Value;

use super::as_u64;

/// One line per group (`#id kind ×count level "title" culprit`), for assertion messages.
pub fn summary(groups: &[Value]) -> String {
    groups
        .iter()
        .map(|g| {
            format!(
                "  #{} {} x{} {} {:?} culprit={:?}",
                g["id"],
                g["kind"].as_str().unwrap_or("?"),
                g["count"],
                g["level"].as_str().unwrap_or("?"),
                g["title"].as_str().unwrap_or("?"),
                g["culprit"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The groups of one kind.
pub fn groups_of_kind<'a>(groups: &'a [Value], kind: &str) -> Vec<&'a Value> {
    groups.iter().filter(|g| g["kind"] == kind).collect()
}

/// The only group of `kind` whose title contains `needle`; panics listing all groups otherwise.
pub fn find_group<'a>(groups: &'a [Value], kind: &str, needle: &str) -> &'a Value {
    let found: Vec<&Value> = groups
        .iter()
        .filter(|g| g["kind"] == kind && g["title"].as_str().is_some_and(|t| t.contains(needle)))
        .collect();
    match found.as_slice() {
        [one] => one,
        [] => panic!(
            "no {kind} group with {needle:?} in its title; groups:\n{}",
            summary(groups)
        ),
        _ => panic!(
            "{} {kind} groups with {needle:?} in their title; groups:\n{}",
            found.len(),
            summary(groups)
        ),
    }
}

/// The only group of `kind` titled exactly `title`; panics listing all groups otherwise.
pub fn find_group_titled<'a>(groups: &'a [Value], kind: &str, title: &str) -> &'a Value {
    let found: Vec<&Value> = groups
        .iter()
        .filter(|g| g["kind"] == kind && g["title"] == title)
        .collect();
    match found.as_slice() {
        [one] => one,
        [] => panic!(
            "no {kind} group titled {title:?}; groups:\n{}",
            summary(groups)
        ),
        _ => panic!(
            "{} {kind} groups titled {title:?}; groups:\n{}",
            found.len(),
            summary(groups)
        ),
    }
}

/// A group's `count`.
pub fn count(group: &Value) -> u64 {
    as_u64(&group["count"]).unwrap_or_else(|| panic!("group without a count: {group}"))
}

/// The values (with counts) of one tag key in a group's `tags`.
pub fn tag_values(group: &Value, key: &str) -> Vec<(String, u64)> {
    group["tags"][key]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    (
                        v["value"].as_str().unwrap_or_default().to_string(),
                        as_u64(&v["count"]).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that the group's tag `key` has the value `value` (among others, maybe).
#[track_caller]
pub fn assert_tag(group: &Value, key: &str, value: &str) {
    let values = tag_values(group, key);
    assert!(
        values.iter().any(|(v, _)| v == value),
        "group {:?}: tag {key:?} should have value {value:?}, has {values:?}; all tags: {}",
        group["title"],
        group["tags"]
    );
}

/// Asserts that the group's tag `key` has exactly these values, each seen `count` times.
#[track_caller]
pub fn assert_tag_counts(group: &Value, key: &str, expected: &[(&str, u64)]) {
    let mut values = tag_values(group, key);
    values.sort();
    let mut expected: Vec<(String, u64)> =
        expected.iter().map(|(v, n)| (v.to_string(), *n)).collect();
    expected.sort();
    assert_eq!(
        values, expected,
        "group {:?}: tag {key:?}; all tags: {}",
        group["title"], group["tags"]
    );
}

/// The `[k, v]` pairs of an event's `tags` as a lookup.
pub fn event_tag<'a>(event: &'a Value, key: &str) -> Option<&'a str> {
    event["tags"]
        .as_array()?
        .iter()
        .find(|kv| kv[0] == key)
        .and_then(|kv| kv[1].as_str())
}
