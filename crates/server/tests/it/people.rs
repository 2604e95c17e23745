//! Notifications to people, against the real binary and a real SMTP peer: an assignment (from
//! the issue page, the stream's bulk bar, or `sentry assign`) emails the assignee, or each
//! member of the team assigned; a comment emails the members it mentions. Never the one who
//! acted, never someone who can't see the project, and only through `[plugins.email]`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{Server, SmtpPeer};
use crate::notify::email_section;

fn user(server: &Server, email: &str, extra: &[&str]) {
    let out = server.create_user_with(email, "a long password", extra);
    assert!(out.status.success(), "{}", crate::harness::show_output(&out));
}

/// The mails to `rcpt` among `mails`.
fn to<'a>(mails: &'a [Value], rcpt: &str) -> Vec<&'a Value> {
    mails.iter().filter(|m| m["rcpt_tos"] == json!([rcpt])).collect()
}

#[test]
fn assignments_and_mentions_email_the_people_concerned_and_nobody_else() {
    let smtp = SmtpPeer::start();
    let server = Server::start_with_config(&email_section(smtp.port()));
    let project = server.create_project("shop");
    let admin = server.admin_session();
    user(&server, "dev@example.com", &[]);
    server.cli_ok(&["team", "create", "--org", "default", "Elsewhere"]);
    user(&server, "outsider@example.com", &["--team", "elsewhere"]);
    server.send_event(&project, &json!({"message": "payment declined", "level": "error"}));
    server.send_event(&project, &json!({"message": "cart lost", "level": "error"}));
    let groups = server.groups("shop");
    let id_of = |title: &str| groups.iter().find(|g| g["title"] == title).unwrap()["id"].as_u64().unwrap();
    let (payment, cart) = (id_of("payment declined"), id_of("cart lost"));

    // From the issue page: to dev, who gets one email with the link to the issue.
    let r = server.post_form_as(&admin, &format!("/p/shop/issues/{payment}/assign"), &[("csrf", &admin.csrf), ("to", "dev@example.com")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let mails = smtp.wait_for(1, Duration::from_secs(30));
    let mail = &mails[0];
    assert_eq!(mail["rcpt_tos"], json!(["dev@example.com"]), "{mail:#}");
    assert_eq!(mail["subject"], "[Sentry] Assigned to you: ERROR: payment declined");
    let text = mail["text"].as_str().unwrap();
    assert!(text.contains("admin@example.com assigned this issue to you."), "{text}");
    assert!(text.contains("because this issue was assigned to you"), "{text}");
    // The link in it leads to the issue.
    let link = text.lines().next().unwrap().trim();
    let path = link.strip_prefix(&server.base_url()).unwrap_or_else(|| panic!("{link}"));
    let dev = server.login("dev@example.com", "a long password").unwrap();
    let page = server.get_as(&dev, path);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("payment declined"));
    // The timeline says who assigned it.
    assert!(page.text().contains("admin@example.com"), "the actor is on the timeline");

    // A comment mentioning dev, the admin (who writes it) and the outsider (who can't see the
    // project): only dev is told.
    let r = server.post_form_as(&admin, &format!("/p/shop/issues/{payment}/comments"), &[
        ("csrf", &admin.csrf),
        ("text", "@dev@example.com can you look? cc @admin@example.com @outsider@example.com"),
    ]);
    assert_eq!(r.status, 303, "{}", r.text());
    let mails = smtp.wait_for(2, Duration::from_secs(30));
    let mention = &mails[1];
    assert_eq!(mention["rcpt_tos"], json!(["dev@example.com"]), "{mention:#}");
    assert_eq!(mention["subject"], "[Sentry] You were mentioned: ERROR: payment declined");
    let text = mention["text"].as_str().unwrap().replace("\r\n", "\n");
    assert!(text.contains("admin@example.com mentioned you in a comment:\n\n@dev@example.com can you look?"), "{text}");

    // From the stream's bulk bar, to the team: each member who did not act (dev) is told.
    let r = server.post_form_as(&admin, "/p/shop/bulk", &[("csrf", &admin.csrf), ("action", "assign"), ("to", "#default"), ("id", &cart.to_string())]);
    assert_eq!(r.status, 303, "{}", r.text());
    let mails = smtp.wait_for(3, Duration::from_secs(30));
    assert_eq!(mails[2]["rcpt_tos"], json!(["dev@example.com"]), "{:#}", mails[2]);
    assert!(mails[2]["text"].as_str().unwrap().contains("assigned this issue to #default, a team of yours."));
    let stream = server.get_as(&admin, "/p/shop/?q=assigned:%23default").text();
    assert!(stream.contains("cart lost") && !stream.contains("payment declined"), "found by assigned:#default");

    // From the command line: to the outsider, who is a member but does not see the project: no
    // mail. Then to nobody: no mail either.
    let out = server.cli_ok(&["assign", &cart.to_string(), "--to", "outsider@example.com"]);
    assert!(out.contains("Assigned group"), "{out}");
    let out = server.cli_ok(&["assign", &payment.to_string(), "--to", "nobody"]);
    assert!(out.contains("to nobody"), "{out}");
    let bad = server.cli(&["assign", &payment.to_string(), "--to", "#nope"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("there is no team #nope in this organisation"), "{}", crate::harness::show_output(&bad));
    // A later assignment's mail comes after those that must not exist: it shows they were skipped.
    server.cli_ok(&["assign", &payment.to_string(), "--to", "dev@example.com"]);
    let mails = smtp.wait_for(4, Duration::from_secs(30));
    assert_eq!(mails.len(), 4, "{mails:#?}");
    assert!(to(&mails, "outsider@example.com").is_empty() && to(&mails, "admin@example.com").is_empty());
    assert!(mails[3]["text"].as_str().unwrap().contains("Sentry assigned this issue to you."), "{:#}", mails[3]);
}
