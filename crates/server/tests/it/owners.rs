//! Ownership rules against the real binary: set on the project's settings page (a bad line is
//! refused with its number), then events from the real Python `sentry-sdk` whose frames or tags
//! match make new issues assigned to the rule's owner, with the rule on the timeline and an
//! email to the owner; an issue nobody owns stays unassigned.

use std::time::Duration;

use serde_json::json;

use crate::harness::{unescape_html, clean_command, python, run_ok, Server, SmtpPeer};
use crate::notify::email_section;


#[test]
fn ownership_rules_assign_new_issues_by_path_and_tag() {
    let smtp = SmtpPeer::start();
    let server = Server::start_with_config(&email_section(smtp.port()));
    let project = server.create_project("shop");
    let admin = server.admin_session();
    server.cli_ok(&["team", "create", "--org", "default", "Billing"]);

    // A bad line: refused with its number, nothing saved.
    let r = server.post_form_as(&admin, "/settings/projects/shop/ownership", &[("csrf", &admin.csrf), ("rules", "# owners\npath:src/billing/* #billing\nfile:x #billing\n")]);
    assert_eq!(r.status, 400);
    assert!(unescape_html(&r.text()).contains("line 3"), "{}", r.text());
    let r = server.post_form_as(&admin, "/settings/projects/shop/ownership", &[("csrf", &admin.csrf), ("rules", "tags.server:web-* nobody@example.com\n")]);
    assert_eq!(r.status, 400, "an owner who is not a member");
    // Good rules: the last matching one wins.
    let rules = "# who owns what\npath:*/billing/* #billing\ntags.server:web-* admin@example.com\n";
    let r = server.post_form_as(&admin, "/settings/projects/shop/ownership", &[("csrf", &admin.csrf), ("rules", rules)]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(server.get_as(&admin, "/settings/projects/shop/").text().contains("path:*/billing/* #billing"), "kept and shown");

    // An exception raised in billing/charge.py, sent by the real SDK.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("billing")).unwrap();
    std::fs::write(dir.path().join("billing/charge.py"), "def charge():\n    raise ValueError('card declined')\n").unwrap();
    std::fs::write(dir.path().join("main.py"), "import sys, sentry_sdk\nsentry_sdk.init(sys.argv[1])\nfrom billing.charge import charge\ntry:\n    charge()\nexcept Exception:\n    sentry_sdk.capture_exception()\nsentry_sdk.flush()\n").unwrap();
    let mut cmd = clean_command(python());
    cmd.current_dir(dir.path()).arg("main.py").arg(&project.dsn).env("PYTHONDONTWRITEBYTECODE", "1");
    run_ok(&mut cmd);
    // A message from a web server, and one from nowhere in particular.
    server.send_event(&project, &json!({"message": "slow page", "level": "warning", "server_name": "web-3"}));
    server.send_event(&project, &json!({"message": "cron skipped", "level": "warning", "server_name": "worker-1"}));

    let assignee = |title: &str| {
        let g = server.groups("shop").into_iter().find(|g| g["title"].as_str().unwrap_or("").starts_with(title)).unwrap_or_else(|| panic!("no issue {title}"));
        let id = g["id"].as_u64().unwrap();
        let page = server.get_as(&admin, &format!("/p/shop/issues/{id}/")).text();
        let shown = page.split("id=\"assignee\">").nth(1).map(|s| s.split('<').next().unwrap().to_string());
        (shown, unescape_html(&page))
    };
    server.eventually("the billing issue assigned by its rule", Duration::from_secs(20), || assignee("ValueError").0.as_deref() == Some("#billing"));
    let (_, page) = assignee("ValueError");
    assert!(page.contains("by ownership rule `path:*/billing/* #billing`"), "the timeline names the rule");
    server.eventually("the web server's issue assigned", Duration::from_secs(20), || assignee("slow page").0.as_deref() == Some("admin@example.com"));
    assert_eq!(assignee("cron skipped").0, None, "no rule matches: nobody");

    // The owner is told, and why.
    let mails = smtp.wait_for(1, Duration::from_secs(30));
    assert_eq!(mails[0]["rcpt_tos"], json!(["admin@example.com"]), "{:#}", mails[0]);
    let text = mails[0]["text"].as_str().unwrap().replace("\r\n", "\n");
    assert!(text.contains("The ownership rule `tags.server:web-* admin@example.com` assigned this issue to you."), "{text}");
    // Someone assigned by hand is never overridden: a second event of the same issue changes nothing.
    let slow = server.groups("shop").into_iter().find(|g| g["title"] == "slow page").unwrap()["id"].as_u64().unwrap();
    let r = server.post_form_as(&admin, &format!("/p/shop/issues/{slow}/assign"), &[("csrf", &admin.csrf), ("to", "#billing")]);
    assert_eq!(r.status, 303);
    server.send_event(&project, &json!({"message": "slow page", "level": "warning", "server_name": "web-3"}));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(assignee("slow page").0.as_deref(), Some("#billing"));
}
