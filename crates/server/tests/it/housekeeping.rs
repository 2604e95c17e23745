//! Housekeeping on the real binary: the size cap (`store.max_bytes`) keeps the data file under
//! it by deleting the oldest events while issues keep their counts; retention per project
//! (`[projects.<slug>] retention_days`) with `sentry cleanup`; what each project uses on the
//! settings page; and the issue-keeping that runs by itself or from an issue's page: snoozes
//! that end, assignment.

use std::sync::Arc;

use serde_json::Value;

use crate::harness::{as_u64, Server};

/// A `/store/` event of issue `issue` (by fingerprint), numbered `n`, with about 3 KB that
/// compresses poorly.
fn event(n: u64, issue: u64) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let noise: String = (0..1500)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{:02x}", x as u8)
        })
        .collect();
    format!(
        r#"{{"event_id":"{n:032x}","message":"event {n}","fingerprint":["issue-{issue}"],"extra":{{"noise":"{noise}"}}}}"#
    )
    .into_bytes()
}

#[test]
fn a_size_cap_deletes_the_oldest_events_and_keeps_every_issue_and_its_count() {
    const CAP: u64 = 3_000_000;
    const ISSUES: u64 = 4;
    const EVENTS: u64 = 2_400;
    let server = Server::start_with_config(&format!("[store]\nmax_bytes = {CAP}\n[ingest]\nbatch_max = 20\n"));
    let p = server.create_project("capped");
    let path = format!("/api/{}/store/", p.id);
    let auth = p.auth();
    let server = Arc::new(server);
    // Two clients, each sending its half in order: together about 7 MB of events, past the cap.
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let (server, path, auth) = (server.clone(), path.clone(), auth.clone());
            std::thread::spawn(move || {
                for n in (t..EVENTS).step_by(2) {
                    let r = server.post(&path, &[("X-Sentry-Auth", &auth)], &event(n, n % ISSUES));
                    assert_eq!(r.status, 200, "event {n}: {}", r.text());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every event is stored (or deleted for the cap) once it was answered; wait for the last.
    let groups = wait_for_counts(&server, "capped", ISSUES, EVENTS);
    let mut kept = 0;
    for g in &groups {
        assert_eq!(as_u64(&g["count"]), Some(EVENTS / ISSUES), "an issue keeps its count: {g}");
        let events = server.events_of(g);
        let numbers: Vec<u64> = events
            .iter()
            .map(|e| e["title"].as_str().and_then(|t| t.strip_prefix("event ")).and_then(|n| n.parse().ok()).unwrap())
            .collect();
        assert!(!numbers.is_empty(), "the newest events of an issue stay: {g}");
        let issue = numbers[0] % ISSUES;
        let newest = (0..EVENTS).rev().find(|n| n % ISSUES == issue).unwrap();
        assert!(numbers.contains(&newest), "issue {issue}: its newest event {newest} is kept: {numbers:?}");
        // What is left is a run of the newest: nothing older kept while something newer went.
        let oldest_kept = *numbers.iter().min().unwrap();
        let expected = (oldest_kept..EVENTS).filter(|n| n % ISSUES == issue).count();
        assert!(numbers.len() + 40 >= expected, "issue {issue}: {} kept from {oldest_kept} on, of {expected}", numbers.len());
        kept += numbers.len() as u64;
    }
    assert!(kept < EVENTS, "the cap deleted some events ({kept} of {EVENTS} kept)");
    assert!(kept > EVENTS / 10, "the cap kept what fits ({kept} of {EVENTS})");
    // The file: at most the cap plus one batch (20 events of about 3 KB, with their index pages).
    // Its write-ahead log beside it is SQLite's own, bounded by its checkpoints (1,000 pages).
    let mut server = Arc::try_unwrap(server).ok().expect("the clients are done");
    server.terminate();
    let db = server.data_dir().join("sentry.db");
    let size = std::fs::metadata(&db).unwrap().len();
    assert!(size <= CAP + 400_000, "the data file is {size} bytes, over the cap of {CAP}");
    let wal = std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len());
    assert!(wal <= 4096 * 1100, "the log is {wal} bytes");
    assert!(server.log().contains("deleted the oldest events to stay under store.max_bytes"), "{}", server.log_tail(20));
}

/// The project's groups once their counts add up to `total`.
fn wait_for_counts(server: &Server, slug: &str, issues: u64, total: u64) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let groups = server.groups(slug);
        let sum: u64 = groups.iter().filter_map(|g| as_u64(&g["count"])).sum();
        if groups.len() as u64 == issues && sum == total {
            return groups;
        }
        assert!(std::time::Instant::now() < deadline, "counts never reached {total}: {groups:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn cleanup_names_each_projects_own_days_and_the_settings_page_shows_what_each_uses() {
    let server = Server::start_with_config("[retention]\ndays = 30\n[projects.short]\nretention_days = 7\n[projects.forever]\nretention_days = 0\n");
    let day = 86_400.0;
    let now = store_now();
    let mut n = 0;
    for slug in ["short", "forever", "other"] {
        let p = server.create_project(slug);
        assert_eq!(p.slug, slug);
        // Events whose own time is 0, 10 and 40 days ago: retention goes by when an event
        // arrived (all of them just now), so none is past it. Which arrival times each project
        // deletes is the store's conformance suite's to test (`retention_per_project…`).
        for age in [0.0, 10.0, 40.0] {
            n += 1;
            let body = format!(
                r#"{{"event_id":"{n:032x}","message":"{slug} {age} days","timestamp":{}}}"#,
                now - age * day
            );
            let r = server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &p.auth())], body.as_bytes());
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    // Nothing has arrived long ago: a cleanup now deletes nothing, and says so.
    let out = server.cli_ok(&["cleanup"]);
    assert!(out.contains("Deleted 0 events"), "{out}");
    assert!(out.contains("older than 30 days (forever: kept, short: 7 days)"), "{out}");
    // --days applies to every project, and deletes nothing of what arrived just now.
    let out = server.cli_ok(&["cleanup", "--days", "1"]);
    assert!(out.contains("Deleted 0 events and 0 issues older than 1 days."), "{out}");

    // The settings page shows each project's events, size and how long they are kept.
    let session = server.admin_session();
    let page = server.get_as(&session, "/settings/");
    assert_eq!(page.status, 200);
    let html = page.text();
    let storage = &html[html.find("id=\"storage\"").expect("a storage section")..];
    assert!(storage.contains("The data takes"), "{storage}");
    for (slug, kept) in [("short", "7 days"), ("forever", "forever"), ("other", "30 days")] {
        let row = storage.split("<tr>").find(|r| r.contains(&format!("<td>{slug}</td>"))).unwrap_or_else(|| panic!("{slug}: {storage}"));
        assert!(row.contains(&format!("<td>{kept}</td>")), "{slug} kept {kept}: {row}");
        assert!(row.contains("<td>3</td>"), "{slug} has 3 events: {row}");
    }
}

fn store_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn a_bad_retention_setting_is_refused_with_its_line() {
    let server = Server::with_config("[projects.shop]\nretention_days = \"week\"\n");
    let out = server.cli(&["config", "check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sentry.toml:4:") && err.contains("retention_days") && err.contains("whole number of days"), "{err}");
    let server = Server::with_config("[store]\nmax_bytes = -5\n");
    let out = server.cli(&["config", "check"]);
    assert!(!out.status.success(), "a negative cap is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_bytes"));
}

#[test]
fn a_snoozed_issue_comes_back_after_its_events_or_its_time_with_the_reason_on_its_timeline() {
    let mut server = Server::start();
    let p = server.create_project("snoozy");
    let send = |server: &Server, n: u64, message: &str| {
        let body = format!(r#"{{"event_id":"{n:032x}","message":"{message}"}}"#);
        let r = server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &p.auth())], body.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
    };
    send(&server, 1, "counted");
    send(&server, 2, "timed");
    let session = server.admin_session();
    let id_of = |server: &Server, title: &str| {
        let g = server.groups("snoozy").into_iter().find(|g| g["title"] == title).unwrap_or_else(|| panic!("no issue {title}"));
        (as_u64(&g["id"]).unwrap(), g["status"].as_str().unwrap().to_string())
    };
    let (counted, _) = id_of(&server, "counted");
    let (timed, _) = id_of(&server, "timed");
    // Snoozed until 2 more events; and for about a second.
    for (id, field, value) in [(counted, "count", "2"), (timed, "for", "0.02m")] {
        let r = server.post_form_as(&session, &format!("/p/snoozy/issues/{id}/ignore"), &[("csrf", &session.csrf), (field, value)]);
        assert_eq!(r.status, 303, "{}", r.text());
        assert_eq!(id_of(&server, if id == counted { "counted" } else { "timed" }).1, "ignored");
    }
    send(&server, 3, "counted");
    assert_eq!(id_of(&server, "counted").1, "ignored", "one event of the two");
    send(&server, 4, "counted");
    assert_eq!(id_of(&server, "counted").1, "unresolved", "back after its two events");
    let page = server.get_as(&session, &format!("/p/snoozy/issues/{counted}/")).text();
    assert!(page.contains("came back: it had the events it was ignored for"), "the reason is on the timeline");
    // The time-snoozed one comes back by itself: the server checks at start, then every minute.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while id_of(&server, "timed").1 != "unresolved" {
        assert!(std::time::Instant::now() < deadline, "the snooze's time is over, and the issue is still ignored");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let session = server.admin_session();
    let page = server.get_as(&session, &format!("/p/snoozy/issues/{timed}/")).text();
    assert!(page.contains("came back: the time it was ignored for is over"), "the reason is on the timeline");
}

#[test]
fn an_issue_is_assigned_from_its_page_found_by_assigned_me_and_unassigned_again() {
    let server = Server::start();
    let p = server.create_project("owned");
    let body = br#"{"event_id":"0000000000000000000000000000abcd","message":"who owns this"}"#;
    assert_eq!(server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &p.auth())], body).status, 200);
    let g = server.groups("owned").into_iter().next().expect("the issue");
    let id = as_u64(&g["id"]).unwrap();
    let session = server.admin_session();
    let issue = format!("/p/owned/issues/{id}/");
    let in_stream = |q: &str| server.get_as(&session, &format!("/p/owned/?q={q}")).text().contains(&issue);
    assert!(in_stream("is:unassigned") && !in_stream("assigned:me"));
    let page = server.get_as(&session, &issue).text();
    assert!(page.contains("id=\"assign-to\"") && page.contains("<option value=\"admin@example.com\""), "the page offers the members");

    let r = server.post_form_as(&session, &format!("{issue}assign"), &[("csrf", &session.csrf), ("to", "me")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let page = server.get_as(&session, &issue).text();
    assert!(page.contains("<span class=\"badge\" id=\"assignee\">admin@example.com</span>"), "shown as assigned");
    assert!(page.contains("assigned it to admin@example.com"), "on the timeline");
    assert!(in_stream("assigned:me") && !in_stream("is:unassigned"));

    let r = server.post_form_as(&session, &format!("{issue}assign"), &[("csrf", &session.csrf), ("to", "#no-such-team")]);
    assert_eq!(r.status, 400, "an unknown team is refused: {}", r.text());
    let r = server.post_form_as(&session, &format!("{issue}assign"), &[("csrf", &session.csrf), ("to", "")]);
    assert_eq!(r.status, 303);
    let page = server.get_as(&session, &issue).text();
    assert!(page.contains("unassigned it") && !page.contains("id=\"assignee\""));
    assert!(in_stream("is:unassigned"));
}

#[test]
fn an_issue_resolved_in_the_next_release_comes_back_only_for_a_newer_release() {
    let server = Server::start();
    let p = server.create_project("shop");
    let send = |n: u32, release: &str| {
        let body = format!(r#"{{"event_id":"{n:032x}","message":"checkout failed","release":"{release}"}}"#);
        assert_eq!(server.post(&format!("/api/{}/store/", p.id), &[("X-Sentry-Auth", &p.auth())], body.as_bytes()).status, 200);
    };
    let status = || server.groups_with("shop", &["--status", "all"])[0]["status"].as_str().unwrap().to_string();
    send(1, "shop@1.0.0");
    send(2, "shop@1.1.0");
    let id = as_u64(&server.groups("shop")[0]["id"]).unwrap();
    let session = server.admin_session();
    let issue = format!("/p/shop/issues/{id}/");
    let page = server.get_as(&session, &issue).text();
    assert!(page.contains("id=\"resolve-menu\"") && page.contains("<option value=\"shop@1.1.0\">"), "the page offers the releases");

    let resolve = |fields: &[(&str, &str)]| {
        let mut form = vec![("csrf", session.csrf.as_str()), ("status", "resolved")];
        form.extend_from_slice(fields);
        server.post_form_as(&session, &format!("{issue}status"), &form)
    };
    assert_eq!(resolve(&[("in_release", "next"), ("release", "")]).status, 303);
    let page = server.get_as(&session, &issue).text();
    assert!(page.contains("in the next release (after shop@1.1.0)</span>"), "shown on the issue");
    assert!(page.contains("resolved it in the next release (after shop@1.1.0)"), "on the timeline");
    send(3, "shop@1.0.0");
    assert_eq!(status(), "resolved", "an event of an older release leaves it resolved");
    send(4, "shop@1.2.0");
    assert_eq!(status(), "unresolved", "a newer release brings it back");
    assert!(server.get_as(&session, &issue).text().contains("id=\"regression\""));

    // In a named release that has not been seen yet.
    assert_eq!(resolve(&[("in_release", "named"), ("release", "shop@2.0.0")]).status, 303);
    assert!(server.get_as(&session, &issue).text().contains("in release shop@2.0.0</span>"));
    send(5, "shop@1.2.0");
    assert_eq!(status(), "resolved");
    send(6, "shop@2.0.0");
    assert_eq!(status(), "unresolved", "an event of the release it was resolved in");
    assert_eq!(server.groups_with("shop", &["--status", "all"])[0]["count"], 6);

    // Bad choices are refused with a reason.
    let r = resolve(&[("in_release", "named"), ("release", " ")]);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("name the release"), "{}", r.text());
    let r = resolve(&[("in_release", "named"), ("release", "a/b")]);
    assert_eq!(r.status, 400, "{}", r.text());
}
