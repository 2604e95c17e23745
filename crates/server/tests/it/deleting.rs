//! Deleting what can't be undone, against the real binary: a project from its settings page
//! (after typing its slug) or `sentry project delete`, and a user from their own settings
//! (after their password) or `sentry user delete`. What is gone is gone at once; what stays
//! (the other projects, the last owner) stays.

use std::time::Duration;

use serde_json::json;

use crate::harness::{unescape_html, show_output, Server};


#[test]
fn a_project_deleted_from_its_settings_is_gone_at_once_and_its_key_refused() {
    let server = Server::start();
    let shop = server.create_project("shop");
    let other = server.create_project("other");
    let s = server.admin_session();
    server.send_event(&shop, &json!({"message": "one", "level": "error"}));
    server.send_event(&shop, &json!({"message": "two", "level": "error"}));
    server.send_event(&other, &json!({"message": "kept", "level": "error"}));
    let issue = server.groups("shop")[0]["id"].as_u64().unwrap();

    let page = server.get_as(&s, "/settings/projects/shop/").text();
    assert!(page.contains("id=\"delete-project\""), "{page}");
    // The wrong word deletes nothing.
    let r = server.post_form_as(&s, "/settings/projects/shop/delete", &[("csrf", &s.csrf), ("confirm", "shpo")]);
    assert_eq!(r.status, 400);
    assert!(unescape_html(&r.text()).contains("type its slug \"shop\""), "{}", r.text());
    assert_eq!(server.get_as(&s, "/p/shop/").status, 200);

    let r = server.post_form_as(&s, "/settings/projects/shop/delete", &[("csrf", &s.csrf), ("confirm", "shop")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let back = r.header("location").unwrap().to_string();
    let settings = server.get_as(&s, &back);
    assert_eq!(settings.status, 200);
    assert!(settings.text().contains("Done: project deleted."));
    assert!(!settings.text().contains("/settings/projects/shop/"), "no longer listed");
    for path in ["/p/shop/".to_string(), format!("/p/shop/issues/{issue}/"), "/settings/projects/shop/".into()] {
        assert_eq!(server.get_as(&s, &path).status, 404, "{path}");
    }
    assert!(!server.get_as(&s, "/dashboard").text().contains("/p/shop/"));
    // Its key is refused within a second (the time keys are cached).
    server.eventually("the deleted project's key refused", Duration::from_secs(5), || {
        let r = server.post(
            &format!("/api/{}/store/", shop.id),
            &[("X-Sentry-Auth", &shop.auth()), ("Content-Type", "application/json")],
            json!({"message": "late"}).to_string().as_bytes(),
        );
        r.status == 401 || r.status == 403
    });
    // Its issues and events go in the background; the other project keeps its own.
    server.eventually("the deleted project's issues purged", Duration::from_secs(20), || server.log().contains("deleted a project's issues and events"));
    assert!(server.log().contains("issues=2") || server.log().contains("issues=3"), "{}", server.log_tail(20));
    assert_eq!(server.groups("other").len(), 1);
    // The audit log says who did it.
    assert!(server.get_as(&s, "/o/default/settings/").text().contains("project.delete"));
    // The slug is free again.
    let again = server.create_project("shop");
    assert!(server.groups("shop").is_empty());
    assert_ne!(again.id, shop.id);
}

#[test]
fn sentry_project_delete_asks_first_then_deletes_everything_of_it() {
    let server = Server::start();
    let shop = server.create_project("shop");
    server.send_event(&shop, &json!({"message": "one", "level": "error"}));
    // No terminal to ask on, no --yes: nothing happens.
    let out = server.cli(&["project", "delete", "shop"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --yes"), "{}", show_output(&out));
    assert_eq!(server.groups("shop").len(), 1);
    let out = server.cli(&["project", "delete", "nope", "--yes"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no project \"nope\""), "{}", show_output(&out));
    let text = server.cli_ok(&["project", "delete", "shop", "--yes"]);
    assert!(text.contains("Deleted the project \"shop\": 1 issue and their events"), "{text}");
    assert!(!server.cli_ok(&["project", "list"]).contains("shop"));
}

#[test]
fn a_user_deletes_their_own_account_and_the_last_owner_cannot() {
    let server = Server::start();
    let admin = server.admin_session();
    for (email, extra) in [("dev@example.com", &[][..]), ("gone@example.com", &[]), ("boss@example.com", &["--role", "owner"])] {
        let out = server.create_user_with(email, "a long password", extra);
        assert!(out.status.success(), "{}", show_output(&out));
    }
    let dev = server.login("dev@example.com", "a long password").unwrap_or_else(|r| panic!("{}", r.text()));
    assert!(server.get_as(&dev, "/settings/").text().contains("id=\"delete-account\""));
    let r = server.post_form_as(&dev, "/settings/account/delete", &[("csrf", &dev.csrf), ("current", "not it")]);
    assert_eq!(r.status, 403);
    assert_eq!(server.get_as(&dev, "/dashboard").status, 200, "a wrong password deletes nothing");
    let r = server.post_form_as(&dev, "/settings/account/delete", &[("csrf", &dev.csrf), ("current", "a long password")]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/login"));
    let after = server.get_as(&dev, "/dashboard");
    assert_eq!(after.status, 303, "the old session is gone");
    assert!(server.login("dev@example.com", "a long password").is_err(), "and the account");
    assert!(!server.cli_ok(&["user", "list"]).contains("dev@example.com"));

    // From the command line.
    let out = server.cli(&["user", "delete", "gone@example.com"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --yes"), "{}", show_output(&out));
    assert!(server.cli_ok(&["user", "delete", "gone@example.com", "--yes"]).contains("Deleted the user gone@example.com"));
    assert!(server.login("gone@example.com", "a long password").is_err());

    // The admin and boss are owners: one may go, the last one may not.
    let boss = server.login("boss@example.com", "a long password").unwrap();
    let r = server.post_form_as(&boss, "/settings/account/delete", &[("csrf", &boss.csrf), ("current", "a long password")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let r = server.post_form_as(&admin, "/settings/account/delete", &[("csrf", &admin.csrf), ("current", crate::harness::ADMIN_PASSWORD)]);
    assert_eq!(r.status, 400);
    assert!(unescape_html(&r.text()).contains("an organisation needs an owner"), "{}", r.text());
    assert_eq!(server.get_as(&admin, "/dashboard").status, 200);
}
