//! The environment selector against the real binary: the choices, what one or several
//! environments narrow on the stream, the overview and the issue page, what they don't (and
//! that the pages say so), links that carry the choice, and bulk actions on all that match.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::Server;

fn event(text: &str, env: Option<&str>) -> Value {
    let mut e = json!({"message": text, "level": "error"});
    if let Some(env) = env {
        e["environment"] = json!(env);
    }
    e
}

/// The issue titles of a stream page, sorted.
fn titles(html: &str) -> Vec<String> {
    let mut t: Vec<String> =
        html.split("<a class=\"title\" href=\"").skip(1).filter_map(|s| Some(s.split_once('>')?.1.split('<').next()?.to_string())).collect();
    t.sort();
    t
}

/// The `(href, text)` of every link of a page, unescaped.
fn links(html: &str) -> Vec<(String, String)> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| {
            let (href, rest) = s.split_once('"')?;
            let text = rest.split_once('>')?.1.split('<').next()?.trim().to_string();
            Some((href.replace("&amp;", "&").replace("&#38;", "&"), text))
        })
        .collect()
}

/// The link whose text is `text`.
fn link_to(html: &str, text: &str) -> String {
    links(html).into_iter().find(|(_, t)| t == text).unwrap_or_else(|| panic!("no link \"{text}\" in:\n{html}")).0
}

/// The href of `id="ID"`'s link, unescaped.
fn link_id(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let start = html[..at].rfind("href=\"").unwrap() + 6;
    html[start..].split('"').next().unwrap().replace("&amp;", "&").replace("&#38;", "&")
}

/// The stream row of `title`, as HTML.
fn row<'a>(html: &'a str, title: &str) -> &'a str {
    let at = html.find(&format!(">{title}</a>")).unwrap_or_else(|| panic!("no row {title}"));
    let start = html[..at].rfind("<tr").unwrap();
    &html[start..start + html[start..].find("</tr>").unwrap()]
}

#[test]
fn the_environment_selector_narrows_the_pages_and_their_links_carry_it() {
    let server = Server::start();
    let project = server.create_project("shop");
    let s = server.admin_session();
    for (text, env, n) in [
        ("checkout failed", Some("production"), 3),
        ("login failed", Some("staging"), 1),
        ("search failed", None, 1),
        ("cart failed", Some("production"), 1),
        ("cart failed", Some("staging"), 2),
    ] {
        for _ in 0..n {
            server.send_event(&project, &event(text, env));
        }
    }
    let all = ["cart failed", "checkout failed", "login failed", "search failed"];

    // The choices are the environments seen, most events first; nothing chosen: everything.
    let html = server.get_as(&s, "/p/shop/").text();
    assert_eq!(titles(&html), all);
    let prod = html.find("name=\"environment\" value=\"production\"").expect("production is a choice");
    let staging = html.find("name=\"environment\" value=\"staging\"").expect("staging is a choice");
    assert!(prod < staging, "production has more events");
    assert!(html.contains(">All environments</summary>") && !html.contains("id=\"env-note\""));

    // One environment, then two.
    let html = server.get_as(&s, "/p/shop/?environment=production").text();
    assert_eq!(titles(&html), ["cart failed", "checkout failed"]);
    assert!(html.contains(">production</summary>"));
    assert!(html.contains("Events (24h, all environments)"), "counts by interval are not narrowed, and the page says so");
    assert!(html.contains("id=\"env-note\""));
    let html = server.get_as(&s, "/p/shop/?environment=production&environment=staging").text();
    assert_eq!(titles(&html), ["cart failed", "checkout failed", "login failed"]);
    assert!(html.contains(">production, staging</summary>"));
    assert!(server.get_as(&s, "/p/shop/?environment=qa").text().contains("No unresolved issues in qa in the last 24h match."));

    // All time, the counts are those of the environment: cart has 3 events, 2 in staging.
    let html = server.get_as(&s, "/p/shop/?interval=all&sort=frequency&environment=staging").text();
    assert!(row(&html, "cart failed").contains("<td class=\"num count\">2</td>"), "{}", row(&html, "cart failed"));
    assert!(row(&html, "login failed").contains("<td class=\"num count\">1</td>"));
    assert!(html.contains("<th class=\"num\">Events</th>"));

    // Every link of the stream keeps the choice: sorts, intervals, tabs, the issues.
    let html = server.get_as(&s, "/p/shop/?environment=production&interval=7d").text();
    for text in ["Last seen", "Frequency", "24h", "Resolved", "checkout failed"] {
        assert!(link_to(&html, text).contains("environment=production"), "{text}: {}", link_to(&html, text));
    }
    assert!(link_to(&html, "Last seen").contains("interval=7d"));
    assert!(link_to(&html, "All environments").contains("interval=7d") && !link_to(&html, "All environments").contains("environment="));
    // The search form and the selector's own form keep it as well.
    assert!(html.contains("<input type=\"hidden\" name=\"environment\" value=\"production\">"));
    assert!(html.contains("name=\"stream.environment\" value=\"production\""), "bulk actions on all that match");

    // The issue page: its links carry the choice, and it says what it counts.
    let issue = link_to(&html, "cart failed");
    let page = server.get_as(&s, &issue).text();
    assert!(page.contains("In production: 1 of its events, all time."), "{page}");
    assert!(link_id(&page, "back-to-stream").ends_with("/p/shop/?environment=production"));
    assert!(link_to(&page, "7d").contains("environment=production"));
    let at = page.find("\"><code>").expect("the list of events");
    let event_link = page[page[..at].rfind("href=\"").unwrap() + 6..at].replace("&amp;", "&");
    assert!(event_link.contains("environment=production"), "{event_link}");
    let event_page = server.get_as(&s, &event_link).text();
    assert_eq!(link_id(&event_page, "back-to-issue"), issue, "back to the issue, with the environment");

    // The overview: new and trending issues of the environment; links that keep it.
    let html = server.get_as(&s, "/dashboard?environment=staging").text();
    assert!(html.contains("cart failed") && html.contains("login failed"), "{html}");
    assert!(!html.contains("checkout failed") && !html.contains("search failed"));
    assert!(html.contains("all environments</span>"), "the event counts are not narrowed");
    assert!(link_to(&html, "7d").contains("environment=staging"));
    assert!(link_to(&html, "login failed").contains("environment=staging"));

    // A name too long for a tag value is left out with a reason, not a failure.
    let page = server.get_as(&s, &format!("/p/shop/?environment={}", "x".repeat(300)));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("at most 200 characters"));
    assert_eq!(titles(&page.text()), all);

    // Resolve all that match in production: staging's and the unnamed issues stay.
    let r = server.post_form_as(&s, "/p/shop/bulk", &[
        ("csrf", &s.csrf), ("action", "resolve"), ("all", "1"),
        ("stream.environment", "production"), ("stream.interval", "24h"), ("stream.status", "unresolved"),
    ]);
    assert!(r.status == 303 || r.status == 200, "{}: {}", r.status, r.text());
    server.eventually("the production issues resolved", Duration::from_secs(20), || {
        let mut resolved: Vec<String> = server
            .groups("shop")
            .into_iter()
            .filter(|g| g["status"] == "resolved")
            .map(|g| g["title"].as_str().unwrap_or_default().to_string())
            .collect();
        resolved.sort();
        resolved == ["cart failed", "checkout failed"]
    });
    assert_eq!(titles(&server.get_as(&s, "/p/shop/").text()), ["login failed", "search failed"]);
}
