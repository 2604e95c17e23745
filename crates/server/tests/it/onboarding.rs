//! An empty project's first page: its DSN and the set-up of each common SDK, shown to those who
//! may manage the project and gone once the first event is in. The Python snippet is copied off
//! the page and run as it is, with the real `sentry-sdk`, against the real binary.

use std::time::Duration;

use crate::harness::{unescape_html, clean_command, python, run_with_timeout, Server};


/// The DSN shown in the page's `#dsn` box.
fn shown_dsn(html: &str) -> String {
    let at = html.find("id=\"dsn\">").unwrap_or_else(|| panic!("no DSN on the page:\n{html}")) + 9;
    unescape_html(&html[at..at + html[at..].find('<').unwrap()])
}

/// The code blocks of snippet `id`: its install command, then its code.
fn snippet(html: &str, id: &str) -> Vec<String> {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no snippet {id}"));
    let section = &html[at..at + html[at..].find("</details>").unwrap()];
    section.split("<pre class=\"code\"><code>").skip(1).map(|c| unescape_html(c.split("</code>").next().unwrap())).collect()
}

#[test]
fn an_empty_project_shows_its_dsn_and_its_python_snippet_sends_the_first_event() {
    let server = Server::start();
    let project = server.create_project("shop");
    let s = server.admin_session();

    let html = server.get_as(&s, "/p/shop/").text();
    assert!(html.contains("id=\"onboarding\"") && html.contains("This project has no events yet."), "{html}");
    let dsn = shown_dsn(&html);
    assert_eq!(dsn, project.dsn, "the DSN of the project's key");
    for id in ["setup-python", "setup-django", "setup-browser", "setup-node", "setup-rust", "setup-raven"] {
        let blocks = snippet(&html, id);
        assert_eq!(blocks.len(), 2, "{id}: an install command and code");
        assert!(blocks[1].contains(&dsn), "{id} carries the DSN: {}", blocks[1]);
    }
    // The settings page shows the same guide, events or not.
    assert_eq!(shown_dsn(&server.get_as(&s, "/settings/projects/shop/").text()), dsn);

    // The Python snippet as the page shows it: it ends with an uncaught ZeroDivisionError, which
    // the SDK sends before the interpreter exits.
    let [install, code] = &snippet(&html, "setup-python")[..] else { unreachable!() };
    assert_eq!(install, "pip install sentry-sdk");
    let mut cmd = clean_command(python());
    cmd.arg("-c").arg(code).env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZeroDivisionError"), "{}", crate::harness::show_output(&out));
    server.eventually("the snippet's error is an issue", Duration::from_secs(20), || {
        server.groups("shop").iter().any(|g| g["title"].as_str().is_some_and(|t| t.starts_with("ZeroDivisionError")))
    });
    let html = server.get_as(&s, "/p/shop/").text();
    assert!(!html.contains("id=\"onboarding\""), "the guide is gone once there is an issue");
    assert!(html.contains("ZeroDivisionError"));
    // Resolved issues still count: a project whose issues are all resolved is not new.
    let id = server.groups("shop")[0]["id"].as_u64().unwrap();
    let r = server.post_form_as(&s, &format!("/p/shop/issues/{id}/status"), &[("csrf", &s.csrf), ("status", "resolved")]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(!server.get_as(&s, "/p/shop/").text().contains("id=\"onboarding\""));

    // A member who can't manage the project is told where the DSN is, not shown it.
    server.create_project("empty");
    let out = server.create_user_with("member@example.com", "a long member password", &["--role", "member"]);
    assert!(out.status.success(), "{}", crate::harness::show_output(&out));
    let m = server.login("member@example.com", "a long member password").unwrap_or_else(|r| panic!("{}", r.text()));
    let page = server.get_as(&m, "/p/empty/");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = unescape_html(&page.text());
    assert!(html.contains("An admin of the project finds its DSN in the project's settings."), "{html}");
    assert!(!html.contains("id=\"dsn\"") && !html.contains("id=\"onboarding\""));
}
