//! Notifications against real peers on loopback: a real SDK's error becomes a mail (aiosmtpd,
//! parsed by Python's `email`), an IRC line (ngircd, read back by a second client) and webhook
//! calls in every payload shape (a local HTTP receiver, the HMAC signature verified); the outbox
//! survives a mail server that is down and a `kill -9`; a storm is throttled.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{
    HttpReceiver, IrcReader, IrcServer, Project, Received, Server, SmtpPeer, clean_command, client_script, facts,
    free_port, python, run_ok,
};

const SECRET: &str = "webhook-s3cret";

pub(crate) fn email_section(smtp_port: u16) -> String {
    format!(
        "[plugins.email]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\n\
         from = \"Sentry <sentry@example.com>\"\nto = [\"ops@example.com\", \"dev@example.com\"]\n"
    )
}

/// A project called `shop` on a server started with `config`.
pub(crate) fn server(config: &str) -> (Server, Project) {
    let server = Server::start_with_config(config);
    let project = server.create_project("shop");
    (server, project)
}

/// One event through the store endpoint, like an old client would send it.
pub(crate) fn send_message(server: &Server, project: &Project, message: &str, n: u32) {
    let body = serde_json::json!({
        "event_id": format!("{:032x}", 0xabc0_0000_u128 + u128::from(n)),
        "message": message,
        "level": "error",
        "tags": {"environment": "production"},
    });
    let auth = project.auth();
    let resp = server.post(
        &format!("/api/{}/store/", project.id),
        &[("X-Sentry-Auth", auth.as_str()), ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// The outbox, as `sentry notify outbox --json` lists it.
pub(crate) fn outbox(server: &Server) -> Vec<Value> {
    match server.cli_json(&["notify", "outbox", "--json", "--limit", "1000"]) {
        Value::Array(items) => items,
        other => panic!("not a list: {other}"),
    }
}

#[track_caller]
pub(crate) fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        thread::sleep(Duration::from_millis(200));
    }
}

fn verify_signature(req: &Received) {
    let sig = req.header("X-Sentry-Signature").expect("a signature header");
    let hex = sig.strip_prefix("sha256=").unwrap_or_else(|| panic!("signature without sha256=: {sig}"));
    let tag = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect::<Vec<u8>>();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    ring::hmac::verify(&key, &req.body, &tag).expect("the HMAC signature matches the body");
}

/// The "done when": a real SDK's exception produces a mail, an IRC line and webhook
/// calls (generic, Slack, Mattermost, Discord, Teams).
#[test]
fn sdk_error_produces_a_mail_an_irc_line_and_webhook_calls() {
    let smtp = SmtpPeer::start();
    let irc = IrcServer::start();
    let hooks = HttpReceiver::start();
    let mut reader = IrcReader::connect(irc.port(), "watcher");
    reader.join_and_lock("#ops", Some("chan-key"));

    let webhook_actions: Vec<String> = ["slack", "mattermost", "discord", "teams"]
        .iter()
        .map(|f| format!("{{ plugin = \"webhook\", format = \"{f}\", url = \"{}\" }}", hooks.url(&format!("/{f}"))))
        .collect();
    let config = format!(
        "{email}\n[plugins.irc]\nserver = \"127.0.0.1\"\nport = {irc}\nnick = \"sentry-bot\"\nchannel = \"#ops\"\nchannel_key = \"chan-key\"\n\n\
         [plugins.webhook]\nurl = \"{generic}\"\nsecret = \"{SECRET}\"\n\n\
         [[rules]]\nname = \"new errors\"\nproject = \"shop\"\nwhen = \"new_group\"\nlevel = \"error\"\n\
         tags = {{ environment = \"production\" }}\nactions = [\"email\", \"irc\", \"webhook\", {hooks}]\n",
        email = email_section(smtp.port()),
        irc = irc.port(),
        generic = hooks.url("/generic"),
        hooks = webhook_actions.join(", "),
    );
    let (server, project) = server(&config);

    let mut cmd = clean_command(python());
    cmd.arg(client_script("sdk_scenarios.py")).args(["capture-exception", &project.dsn]);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1").env("PYTHONUNBUFFERED", "1");
    let event_id = facts(&run_ok(&mut cmd))["event_id"].as_str().expect("event id").replace('-', "");
    let groups = server.groups("shop");
    assert_eq!(groups.len(), 1, "{groups:?}");
    let group_id = groups[0]["id"].as_u64().expect("group id");

    // The link every notification carries opens the page.
    let generic_call = hooks.wait_for(1, Duration::from_secs(30), |r| r.path == "/generic");
    let link = generic_call[0].json()["link"].as_str().expect("the notification has a link").to_string();
    let path = link.strip_prefix(&server.base_url()).unwrap_or_else(|| panic!("{link} is not on {}", server.base_url()));
    let session = server.admin_session();
    let page = server.get_as(&session, path);
    assert_eq!(page.status, 200, "following {link}: {}", page.text());
    assert!(page.text().contains("ZeroDivisionError"), "{link} is not the issue's page");
    assert!(page.text().contains(&format!("/issues/{group_id}/")), "{link} is not issue {group_id}'s page");

    // The mail: subject, the link first, the in-app frames innermost first, both parts.
    let mails = smtp.wait_for(1, Duration::from_secs(30));
    let mail = &mails[0];
    assert_eq!(mail["subject"], "[Sentry] ERROR: ZeroDivisionError: division by zero", "{mail:#}");
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["ops@example.com", "dev@example.com"]));
    assert_eq!(mail["sender"], "Sentry <sentry@example.com>");
    let text = mail["text"].as_str().expect("a text part");
    assert!(text.starts_with(&link), "{text}");
    let inner = text.find("shop.cart in average_price").unwrap_or_else(|| panic!("no innermost frame: {text}"));
    let outer = text.find("shop.cart in checkout").unwrap_or_else(|| panic!("no calling frame: {text}"));
    assert!(inner < outer, "innermost frame first: {text}");
    assert!(text.contains("return sum(prices) / len(prices)"), "{text}");
    assert!(!text.contains("sentry_sdk"), "only in-app frames: {text}");
    let html = mail["html"].as_str().expect("an HTML part");
    assert!(html.contains(&format!("<a href=\"{link}\">")), "{html}");

    // The IRC line, read by the other client in the keyed channel.
    let line = reader.wait_line(Duration::from_secs(30), |l| l.contains("PRIVMSG #ops :"));
    assert!(line.starts_with(":sentry-bot!"), "{line}");
    assert!(line.ends_with(&format!("[shop] ERROR: ZeroDivisionError: division by zero (New issue) {link}")), "{line}");

    // Five webhook calls, one per shape.
    let calls = hooks.wait_for(5, Duration::from_secs(30), |_| true);
    let by_path = |p: &str| calls.iter().find(|r| r.path == p).unwrap_or_else(|| panic!("no call to {p}: {calls:#?}"));
    let generic = by_path("/generic");
    verify_signature(generic);
    assert_eq!(generic.header("Content-Type"), Some("application/json"));
    assert_eq!(generic.header("X-Sentry-Reason"), Some("new_group"));
    let body = generic.json();
    assert_eq!(body["project"], "shop");
    assert_eq!(body["group_id"], group_id);
    assert_eq!(body["link"], link);
    assert_eq!(body["rule"], "new errors");
    assert_eq!(body["reason"]["type"], "new_group");
    assert_eq!(body["event_id"], event_id);
    assert_eq!(body["frames"][0]["function"], "average_price");
    assert_eq!(generic.header("X-Sentry-Delivery"), body["id"].as_str());
    let slack = by_path("/slack").json();
    assert_eq!(slack["text"], format!("[shop] ERROR: <{link}|ZeroDivisionError: division by zero>"));
    assert_eq!(slack["attachments"][0]["title_link"], link);
    let mm = by_path("/mattermost").json();
    assert_eq!(mm["text"], format!("[shop] ERROR: [ZeroDivisionError: division by zero]({link})"));
    let discord = by_path("/discord").json();
    assert_eq!(discord["embeds"][0]["url"], link);
    assert_eq!(discord["embeds"][0]["title"], "ZeroDivisionError: division by zero");
    let teams = by_path("/teams").json();
    assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
    assert_eq!(teams["attachments"][0]["content"]["actions"][0]["url"], link);
    // The actions inherit the section's secret: every shape is signed.
    verify_signature(by_path("/discord"));

    // Every action delivered once: 1 mail, 1 line, 5 calls, 7 outbox rows.
    thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(hooks.requests().len(), 5);
    let rows = outbox(&server);
    assert_eq!(rows.len(), 7, "{rows:#?}");
    assert!(rows.iter().all(|r| r["delivered_at"].is_number() && r["attempts"] == 1), "{rows:#?}");
}

/// The mail server is down when the rule fires and comes up 10 s later: exactly one mail.
#[test]
fn mail_server_down_then_up_delivers_exactly_one_mail() {
    let mut smtp = SmtpPeer::on_port(free_port());
    let config = format!(
        "[notify]\nretry_initial_seconds = 1\nretry_max_seconds = 2\n\n{}\n\
         [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"email\"]\n",
        email_section(smtp.port())
    );
    let (server, project) = server(&config);
    send_message(&server, &project, "the payment provider is down", 1);
    wait_until(Duration::from_secs(10), "a failed attempt", || {
        outbox(&server).first().is_some_and(|r| r["last_error"].is_string())
    });
    thread::sleep(Duration::from_secs(10));
    assert!(smtp.messages().is_empty());
    smtp.launch();
    let mails = smtp.wait_for(1, Duration::from_secs(20));
    assert_eq!(mails[0]["subject"], "[Sentry] ERROR: the payment provider is down");
    thread::sleep(Duration::from_secs(4));
    assert_eq!(smtp.messages().len(), 1, "exactly one mail");
    let rows = outbox(&server);
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["delivered_at"].is_number() && rows[0]["attempts"].as_u64().unwrap() > 2, "{rows:#?}");
}

/// `kill -9` with a delivery pending (its mail server down): after the restart it is delivered,
/// once.
#[test]
fn pending_delivery_survives_kill_9_and_is_sent_once() {
    let mut smtp = SmtpPeer::on_port(free_port());
    let config = format!(
        "[notify]\nretry_initial_seconds = 60\nretry_max_seconds = 60\n\n{}\n\
         [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"email\"]\n",
        email_section(smtp.port())
    );
    let (mut server, project) = server(&config);
    send_message(&server, &project, "disk full on db-2", 1);
    wait_until(Duration::from_secs(10), "a failed attempt", || {
        outbox(&server).first().is_some_and(|r| r["last_error"].is_string())
    });
    server.kill9();
    smtp.launch();
    // The next attempt was a minute away; a restart makes it due at once.
    server.launch();
    let mails = smtp.wait_for(1, Duration::from_secs(20));
    assert_eq!(mails[0]["subject"], "[Sentry] ERROR: disk full on db-2");
    server.terminate();
    server.launch();
    thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp.messages().len(), 1, "sent once, across two restarts");
    assert_eq!(outbox(&server).len(), 1);
}

/// 1,000 events into one new group: one "new group" notification, and one frequency
/// notification for the throttle window.
#[test]
fn a_storm_is_one_new_group_and_one_frequency_notification() {
    let hooks = HttpReceiver::start();
    let config = format!(
        "[plugins.webhook]\nurl = \"{}\"\n\n\
         [[rules]]\nname = \"new\"\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"webhook\"]\n\n\
         [[rules]]\nname = \"storm\"\nproject = \"shop\"\nwhen = \"frequency\"\ncount = 100\nminutes = 5\n\
         throttle_minutes = 60\nactions = [\"webhook\"]\n",
        hooks.url("/hook")
    );
    let (server, project) = server(&config);
    thread::scope(|s| {
        for t in 0..4u32 {
            let (server, project) = (&server, &project);
            s.spawn(move || {
                for i in 0..250 {
                    send_message(server, project, "connection reset by peer", t * 1000 + i);
                }
            });
        }
    });
    let groups = server.groups("shop");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["count"], 1000);
    hooks.wait_for(2, Duration::from_secs(20), |_| true);
    thread::sleep(Duration::from_secs(3));
    let reasons: Vec<String> = hooks.requests().iter().map(|r| r.json()["reason"]["type"].as_str().unwrap().to_string()).collect();
    let mut sorted = reasons.clone();
    sorted.sort();
    assert_eq!(sorted, ["frequency", "new_group"], "{reasons:?}");
    let freq = hooks.requests().into_iter().find(|r| r.json()["reason"]["type"] == "frequency").unwrap().json();
    assert_eq!(freq["reason"]["count"], 100);
    assert!(freq["reason"]["observed"].as_u64().unwrap() > 100, "{freq}");
}

/// A slow Query group (p95 above the rule's limit) fires the `slow` rule; a fast one doesn't.
#[test]
fn slow_query_group_fires_the_p95_rule() {
    let hooks = HttpReceiver::start();
    let config = format!(
        "[plugins.webhook]\nurl = \"{}\"\n\n\
         [[rules]]\nproject = \"shop\"\nwhen = \"slow\"\np95_ms = 500\nlevel = \"info\"\nactions = [\"webhook\"]\n",
        hooks.url("/hook")
    );
    let (server, project) = server(&config);
    for (sql, ms) in [("SELECT * FROM orders WHERE id = 1", "900"), ("SELECT * FROM users WHERE id = 1", "5")] {
        server.cli_ok(&["capture", "Query", "--dsn", &project.dsn, "--field", &format!("query={sql}"), "--field", "engine=psycopg2", "--time-spent", ms]);
    }
    let calls = hooks.wait_for(1, Duration::from_secs(20), |_| true);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(hooks.requests().len(), 1);
    let body = calls[0].json();
    assert_eq!(body["reason"]["type"], "slow");
    assert_eq!(body["reason"]["threshold_ms"], 500.0);
    assert!(body["title"].as_str().unwrap().contains("orders"), "{body}");
}

/// `sentry notify test` sends through a plugin at once (here email over STARTTLS with a login,
/// trusting a private CA), and says what went wrong otherwise.
#[test]
fn notify_test_command_sends_over_starttls_with_login() {
    let smtp = SmtpPeer::start_tls("sentry", "mail-pass");
    let config = format!(
        "[plugins.email]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"sentry\"\npassword = \"mail-pass\"\n\
         ca_file = \"{}\"\nfrom = \"sentry@example.com\"\nto = [\"ops@example.com\"]\n",
        smtp.port(),
        smtp.ca().display()
    );
    let server = Server::with_config(&config);
    server.create_project("shop");
    let out = server.cli_ok(&["notify", "test", "--project", "shop", "--plugin", "email"]);
    assert!(out.contains("Sent a test message through the email plugin"), "{out}");
    let mail = &smtp.wait_for(1, Duration::from_secs(10))[0];
    assert_eq!(mail["subject"], "[Sentry] TEST INFO: Test message");
    assert_eq!((mail["tls"].as_bool(), mail["authenticated"].as_bool()), (Some(true), Some(true)), "{mail:#}");

    let out = server.cli(&["notify", "test", "--project", "shop", "--plugin", "pager"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the plugins are: email, irc, webhook, xmpp, matrix, growl, pagerduty, opsgenie, ntfy, exec"));
    let out = server.cli(&["notify", "test", "--project", "shop", "--plugin", "webhook"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("[plugins.webhook] is not complete"), "{out:?}");
}

/// A wrong rule stops `sentry config check` (and the server) with the file and line.
#[test]
fn config_check_refuses_a_bad_rule_with_its_line() {
    let server = Server::with_config("\n[[rules]]\nproject = \"shop\"\nwhen = \"sometimes\"\nactions = [\"email\"]\n");
    let out = server.cli(&["config", "check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sentry.toml:6: `when` = \"sometimes\" is not valid; valid: new_group, regression, frequency, slow"), "{err}");
}

/// The IRC plugin stays connected between messages, and when the server goes away it
/// reconnects (with backoff) and the next message still arrives; the one that failed meanwhile
/// is retried from the outbox.
#[test]
fn irc_reconnects_after_the_server_restarts() {
    let mut irc = IrcServer::start();
    let port = irc.port();
    let config = format!(
        "[notify]\nretry_initial_seconds = 1\nretry_max_seconds = 2\n\n\
         [plugins.irc]\nserver = \"127.0.0.1\"\nport = {port}\nnick = \"sentry-bot\"\nchannel = \"#alerts\"\n\n\
         [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"irc\"]\n"
    );
    let (server, project) = server(&config);
    let mut reader = IrcReader::connect(port, "watcher");
    reader.join_and_lock("#alerts", None);
    send_message(&server, &project, "first problem", 1);
    reader.wait_line(Duration::from_secs(20), |l| l.contains("PRIVMSG #alerts :") && l.contains("first problem"));
    // Delivered means confirmed by the server (a PONG after the PRIVMSG); stopping the server
    // before that would rightly make the plugin send the line again.
    wait_until(Duration::from_secs(10), "the first line confirmed", || {
        outbox(&server).first().is_some_and(|r| r["delivered_at"].is_number())
    });

    irc.stop();
    let _irc = IrcServer::start_on(port);
    let mut reader = IrcReader::connect(port, "watcher");
    reader.join_and_lock("#alerts", None);
    send_message(&server, &project, "second problem", 2);
    let line = reader.wait_line(Duration::from_secs(40), |l| l.contains("PRIVMSG #alerts :") && l.contains("second problem"));
    assert!(line.starts_with(":sentry-bot!"), "{line}");
    thread::sleep(Duration::from_secs(2));
    assert_eq!(reader.messages("#alerts").len(), 1, "{:#?}", reader.seen);
    let rows = outbox(&server);
    assert!(rows.iter().all(|r| r["delivered_at"].is_number()), "{rows:#?}");
}
