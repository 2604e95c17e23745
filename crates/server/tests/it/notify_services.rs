//! The plugins that reach people where they are, end to end: a real SDK's error fires a rule,
//! and the message arrives at a real Matrix homeserver (Synapse, read back by a second account),
//! a GNTP receiver parsing with an independent implementation, loopback stand-ins of PagerDuty,
//! Opsgenie and ntfy that check every payload against the providers' schemas, and a program of
//! the operator's (exec), and Prosody (XMPP, read back by a second client). Resolving the issue on the dashboard closes what PagerDuty, Opsgenie
//! and exec were told about. The daily digest mail counts what the day brought. Each plugin's faults: a peer that is down at first gets the
//! message once when it is back; wrong credentials are given up, with the reason in the outbox.

use std::fs;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    GntpPeer, HttpReceiver, NTFY_TOKEN, OPSGENIE_KEY, PAGERDUTY_KEY, Project, Prosody, Received, Server, SmtpPeer,
    Synapse, XmppReader, clean_command, client_script, facts, free_port, incident_services, python, run_ok,
};
use crate::notify::{email_section, outbox, send_message, server, wait_until};

/// The real Python SDK captures `ZeroDivisionError` from `shop.cart`; returns the group's id.
fn sdk_error(server: &Server, project: &Project) -> u64 {
    sdk_error_among(server, project, 1)
}

/// [`sdk_error`] when the project will then have `groups` groups (its group is the newest).
fn sdk_error_among(server: &Server, project: &Project, groups: usize) -> u64 {
    let mut cmd = clean_command(python());
    cmd.arg(client_script("sdk_scenarios.py")).args(["capture-exception", &project.dsn]);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1").env("PYTHONUNBUFFERED", "1");
    facts(&run_ok(&mut cmd));
    let found = server.groups("shop");
    assert_eq!(found.len(), groups, "{found:?}");
    let ours = found.iter().find(|g| g["title"].as_str().is_some_and(|t| t.contains("ZeroDivisionError"))).expect("the SDK's group");
    ours["id"].as_u64().expect("group id")
}

/// Resolves the group through the dashboard, as a person would.
fn resolve(server: &Server, group_id: u64) {
    let s = server.admin_session();
    let r = server.post_form_as(&s, &format!("/p/shop/issues/{group_id}/status"), &[("csrf", &s.csrf), ("status", "resolved")]);
    assert_eq!(r.status, 303, "resolving: {}", r.text());
}

/// Every outbox row delivered at the first attempt.
#[track_caller]
fn all_delivered_once(server: &Server, rows: usize) {
    let got = outbox(server);
    assert_eq!(got.len(), rows, "{got:#?}");
    assert!(got.iter().all(|r| r["delivered_at"].is_number() && r["attempts"] == 1), "{got:#?}");
}

/// The outbox row of `plugin` given up at its first attempt, with a reason containing `why`.
#[track_caller]
fn given_up(server: &Server, plugin: &str, why: &str) {
    given_up_after(server, plugin, why, 1);
}

/// The outbox row of `plugin` given up at attempt `attempts`, with a reason containing `why`.
#[track_caller]
fn given_up_after(server: &Server, plugin: &str, why: &str, attempts: u64) {
    wait_until(Duration::from_secs(20), &format!("the {plugin} delivery given up"), || {
        outbox(server).iter().any(|r| r["plugin"] == plugin && r["failed_at"].is_number())
    });
    let rows = outbox(server);
    let row = rows.iter().find(|r| r["plugin"] == plugin && r["failed_at"].is_number()).expect("a row");
    assert_eq!(row["attempts"], attempts, "given up when refused: {row:#}");
    let error = row["last_error"].as_str().unwrap_or_default();
    assert!(error.contains(why), "{plugin}: {error:?} does not say {why:?}");
    let listing = server.cli_ok(&["notify", "outbox"]);
    assert!(listing.contains(&format!("→ {plugin} for group")) && listing.contains("given up: "), "{listing}");
}

fn incident_config(base: &str) -> String {
    format!(
        "[plugins.pagerduty]\nrouting_key = \"{PAGERDUTY_KEY}\"\nurl = \"{base}/pagerduty/v2/enqueue\"\n\n\
         [plugins.opsgenie]\napi_key = \"{OPSGENIE_KEY}\"\nurl = \"{base}/opsgenie\"\nresponders = [\"ops\"]\n\n\
         [plugins.ntfy]\nurl = \"{base}/ntfy/shop-alerts\"\ntoken = \"{NTFY_TOKEN}\"\n\n"
    )
}

fn by_path<'a>(calls: &'a [Received], prefix: &str) -> Vec<&'a Received> {
    calls.iter().filter(|r| r.path.starts_with(prefix)).collect()
}

/// PagerDuty and Opsgenie open one incident per issue, ntfy pushes; resolving the issue on the
/// dashboard resolves the PagerDuty alert and closes the Opsgenie one (same key), and pushes
/// nothing more.
#[test]
fn notify_pagerduty_opsgenie_ntfy_and_resolving_closes_the_incidents() {
    let services = HttpReceiver::answering(incident_services());
    let config = format!(
        "{}[[rules]]\nname = \"page\"\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"pagerduty\", \"opsgenie\", \"ntfy\"]\n",
        incident_config(&services.url(""))
    );
    let (server, project) = server(&config);
    let group = sdk_error(&server, &project);
    let calls = services.wait_for(3, Duration::from_secs(30), |_| true);
    // Accepted by each schema: delivered at the first attempt.
    wait_until(Duration::from_secs(10), "three deliveries", || outbox(&server).iter().filter(|r| r["delivered_at"].is_number()).count() == 3);
    all_delivered_once(&server, 3);
    let key = format!("sentry-shop-{group}");

    let pd = by_path(&calls, "/pagerduty")[0].json();
    assert_eq!((pd["event_action"].as_str(), pd["dedup_key"].as_str()), (Some("trigger"), Some(key.as_str())));
    assert_eq!(pd["payload"]["summary"], "[shop] ERROR: ZeroDivisionError: division by zero");
    assert_eq!(pd["payload"]["severity"], "error");
    let link = pd["links"][0]["href"].as_str().expect("a link").to_string();
    assert!(link.starts_with(&server.base_url()) && link.contains(&format!("/issues/{group}/")), "{link}");
    let frames = pd["payload"]["custom_details"]["frames"].as_array().expect("frames");
    assert!(frames[0].as_str().unwrap().starts_with("shop.cart in average_price"), "{frames:?}");

    let og = by_path(&calls, "/opsgenie")[0];
    assert_eq!(og.path, "/opsgenie/v2/alerts");
    let og = og.json();
    assert_eq!((og["alias"].as_str(), og["priority"].as_str()), (Some(key.as_str()), Some("P2")));
    assert_eq!(og["responders"][0]["name"], "ops");
    assert!(og["description"].as_str().unwrap().contains(&link));

    let push = by_path(&calls, "/ntfy")[0].json();
    assert_eq!(push["topic"], "shop-alerts");
    assert_eq!(push["title"], "[shop] ERROR: ZeroDivisionError: division by zero");
    assert_eq!((push["click"].as_str(), push["priority"].as_u64()), (Some(link.as_str()), Some(4)));

    resolve(&server, group);
    let calls = services.wait_for(5, Duration::from_secs(30), |_| true);
    let resolved = by_path(&calls, "/pagerduty")[1].json();
    assert_eq!(resolved, serde_json::json!({"routing_key": PAGERDUTY_KEY, "event_action": "resolve", "dedup_key": key}));
    let close = by_path(&calls, "/opsgenie")[1];
    assert_eq!(close.path, format!("/opsgenie/v2/alerts/{key}/close?identifierType=alias"));
    thread::sleep(Duration::from_secs(2));
    assert_eq!(by_path(&services.requests(), "/ntfy").len(), 1, "ntfy has nothing to close");
    all_delivered_once(&server, 5);

    // `sentry notify test` reaches each of them at once.
    for plugin in ["pagerduty", "opsgenie", "ntfy"] {
        let out = server.cli_ok(&["notify", "test", "--project", "shop", "--plugin", plugin]);
        assert!(out.contains(&format!("Sent a test message through the {plugin} plugin")), "{out}");
    }
    let calls = services.requests();
    assert_eq!(calls.len(), 8);
    // A test message never joins the issue's incident.
    let test_pd = by_path(&calls, "/pagerduty")[2].json();
    assert_eq!((test_pd["event_action"].as_str(), test_pd["dedup_key"].as_str()), (Some("trigger"), Some("sentry-shop-test")));
}

/// The services are down when the rule fires and come up later: each gets the message once.
#[test]
fn notify_incident_services_down_at_first_get_the_message_once() {
    let port = free_port();
    let config = format!(
        "[notify]\nretry_initial_seconds = 1\nretry_max_seconds = 2\n\n{}\
         [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"pagerduty\", \"opsgenie\", \"ntfy\"]\n",
        incident_config(&format!("http://127.0.0.1:{port}"))
    );
    let (server, project) = server(&config);
    send_message(&server, &project, "the payment provider is down", 1);
    wait_until(Duration::from_secs(10), "three failed attempts", || outbox(&server).iter().filter(|r| r["last_error"].is_string()).count() == 3);
    thread::sleep(Duration::from_secs(3));
    let services = HttpReceiver::start_on(port, incident_services());
    services.wait_for(3, Duration::from_secs(20), |_| true);
    thread::sleep(Duration::from_secs(4));
    assert_eq!(services.requests().len(), 3, "once each: {:#?}", services.requests());
    let rows = outbox(&server);
    assert!(rows.iter().all(|r| r["delivered_at"].is_number() && r["attempts"].as_u64().unwrap() > 1), "{rows:#?}");
}

/// Wrong credentials are refused by the service and given up at once, with its answer.
#[test]
fn notify_wrong_credentials_are_given_up_with_the_reason() {
    let services = HttpReceiver::answering(incident_services());
    let base = services.url("");
    let config = format!(
        "[plugins.pagerduty]\nrouting_key = \"0123456789abcdef0123456789abcdef\"\nurl = \"{base}/pagerduty/v2/enqueue\"\n\n\
         [plugins.opsgenie]\napi_key = \"not-the-key\"\nurl = \"{base}/opsgenie\"\n\n\
         [plugins.ntfy]\nurl = \"{base}/ntfy/shop-alerts\"\ntoken = \"tk_wrong\"\n\n\
         [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"pagerduty\", \"opsgenie\", \"ntfy\"]\n"
    );
    let (server, project) = server(&config);
    send_message(&server, &project, "disk full on db-2", 1);
    given_up(&server, "pagerduty", "Invalid routing key");
    given_up(&server, "opsgenie", "Could not authenticate");
    given_up(&server, "ntfy", "401 Unauthorized");
    // A secret is never part of what the outbox shows.
    let listing = server.cli_ok(&["notify", "outbox"]);
    assert!(!listing.contains("not-the-key") && !listing.contains("tk_wrong"), "{listing}");
}

/// Growl over the network: REGISTER once, then NOTIFY with the password's key hash, read by
/// the `gntp` package; down at first, then once; a wrong password given up.
#[test]
fn notify_growl_registers_once_notifies_and_survives_a_late_receiver() {
    let mut growl = GntpPeer::on_port(free_port(), "growl-pass");
    let wrong = GntpPeer::start("another-pass");
    let config = format!(
        "[notify]\nretry_initial_seconds = 1\nretry_max_seconds = 2\n\n\
         [plugins.growl]\nhost = \"127.0.0.1\"\nport = {}\npassword = \"growl-pass\"\n\n\
         [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"growl\", {{ plugin = \"growl\", port = {} }}]\n",
        growl.port(),
        wrong.port()
    );
    let (server, project) = server(&config);
    let group = sdk_error(&server, &project);
    given_up(&server, "growl", "GNTP error 400");
    assert_eq!(wrong.messages()[0]["error"], "auth", "{:#?}", wrong.messages());
    // The first receiver is down: retried, then delivered once it listens.
    wait_until(Duration::from_secs(10), "a failed attempt", || {
        outbox(&server).iter().any(|r| r["failed_at"].is_null() && r["last_error"].is_string())
    });
    growl.launch();
    let got = growl.wait_for(2, Duration::from_secs(20));
    assert_eq!(got[0]["type"], "REGISTER", "{got:#?}");
    assert_eq!(got[0]["headers"]["Application-Name"], "Sentry");
    assert_eq!(got[0]["notifications"][0]["Notification-Name"], "issue");
    let notify = &got[1];
    assert_eq!((notify["type"].as_str(), notify["hashed"].as_str()), (Some("NOTIFY"), Some("SHA256")), "{notify:#}");
    let h = &notify["headers"];
    assert_eq!(h["Notification-Title"], "[shop] ERROR: ZeroDivisionError: division by zero");
    assert_eq!(h["Notification-Priority"], "1");
    let target = h["Notification-Callback-Target"].as_str().unwrap();
    assert!(target.starts_with(&server.base_url()) && target.contains(&format!("/issues/{group}/")), "{target}");

    // Registered already: the next message is one NOTIFY.
    let out = server.cli_ok(&["notify", "test", "--project", "shop", "--plugin", "growl"]);
    assert!(out.contains("Sent a test message through the growl plugin"), "{out}");
    send_message(&server, &project, "the cache is cold", 2);
    let got = growl.wait_for(5, Duration::from_secs(20));
    let kinds: Vec<&str> = got.iter().map(|m| m["type"].as_str().unwrap_or("error")).collect();
    // `sentry notify test` is a process of its own: it registers for itself.
    assert_eq!(kinds, ["REGISTER", "NOTIFY", "REGISTER", "NOTIFY", "NOTIFY"], "{got:#?}");
    assert!(got.iter().all(|m| m.get("error").is_none()), "{got:#?}");
}

/// Matrix: the message arrives in the room through Synapse and is read by another member;
/// the homeserver down at first gets it once when it is back; a wrong token is given up.
#[test]
fn notify_matrix_posts_to_a_room_read_by_another_member() {
    let mut synapse = Synapse::start();
    let bot = synapse.user("sentry-bot", "bot-password");
    let reader = synapse.user("reader", "reader-password");
    let room = bot.create_room("ops", &[reader.id.as_str()]);
    reader.join(&room);
    let config = format!(
        "[notify]\nretry_initial_seconds = 1\nretry_max_seconds = 2\n\n\
         [plugins.matrix]\nhomeserver = \"{}\"\naccess_token = \"{}\"\nroom = \"#ops:localhost\"\n\n\
         [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"matrix\", {{ plugin = \"matrix\", access_token = \"syt_not_a_token\" }}]\n",
        synapse.url(),
        bot.token
    );
    let (server, project) = server(&config);
    let group = sdk_error(&server, &project);
    let got = reader.wait_for_messages(&room, 1, Duration::from_secs(30));
    let m = &got[0];
    assert_eq!(m["sender"], bot.id.as_str());
    let body = m["content"]["body"].as_str().unwrap();
    assert!(body.starts_with("[shop] ERROR: ZeroDivisionError: division by zero\nNew issue\n"), "{body}");
    let link = body.lines().nth(2).unwrap();
    assert!(link.starts_with(&server.base_url()) && link.contains(&format!("/issues/{group}/")), "{body}");
    assert_eq!(m["content"]["format"], "org.matrix.custom.html");
    assert!(m["content"]["formatted_body"].as_str().unwrap().contains(&format!("<a href=\"{link}\">")), "{m:#}");
    given_up(&server, "matrix", "M_UNKNOWN_TOKEN");

    let out = server.cli_ok(&["notify", "test", "--project", "shop", "--plugin", "matrix"]);
    assert!(out.contains("Sent a test message through the matrix plugin"), "{out}");
    reader.wait_for_messages(&room, 2, Duration::from_secs(10));

    synapse.stop();
    send_message(&server, &project, "the search index is stale", 7);
    wait_until(Duration::from_secs(15), "a failed attempt", || {
        outbox(&server).iter().any(|r| r["delivered_at"].is_null() && r["failed_at"].is_null() && r["last_error"].is_string())
    });
    synapse.launch();
    let got = reader.wait_for_messages(&room, 3, Duration::from_secs(30));
    assert!(got[2]["content"]["body"].as_str().unwrap().contains("the search index is stale"), "{got:#?}");
    thread::sleep(Duration::from_secs(3));
    assert_eq!(reader.messages(&room).len(), 3, "once");
}

/// exec: the program reads the notification as JSON on stdin; exit 75 means "again later",
/// another status gives up with what it wrote to stderr; resolving calls it with `resolved`.
#[test]
fn notify_exec_runs_the_program_and_its_exit_status_decides() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let program = dir.path().join("page-oncall");
    fs::write(
        &program,
        format!(
            "#!/bin/sh\n\
             if [ ! -e {d}/tried ]; then touch {d}/tried; echo 'the pager gateway is busy' >&2; exit 75; fi\n\
             n=$(ls {d} | grep -c 'json$')\ncat > {d}/$((n + 1)).json\nenv > {d}/env.txt\n"
        ),
    )
    .expect("the program");
    let refusing = dir.path().join("refuse");
    fs::write(&refusing, "#!/bin/sh\ncat > /dev/null\necho 'unknown team: nightshift' >&2\nexit 3\n").expect("the program");
    for p in [&program, &refusing] {
        let _ = std::process::Command::new("chmod").arg("+x").arg(p).status();
    }
    let config = format!(
        "[notify]\nretry_initial_seconds = 1\nretry_max_seconds = 2\n\n\
         [plugins.exec]\ncommand = [\"{}\", \"--team\", \"ops\"]\ntimeout_seconds = 10\n\n\
         [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [\"exec\", {{ plugin = \"exec\", command = [\"{}\"] }}]\n",
        program.display(),
        refusing.display()
    );
    let (server, project) = server(&config);
    let group = sdk_error(&server, &project);
    given_up(&server, "exec", "exited with 3: unknown team: nightshift");
    let first = dir.path().join("1.json");
    wait_until(Duration::from_secs(20), "the program's second run", || first.exists());
    let n: Value = serde_json::from_slice(&fs::read(&first).unwrap()).unwrap();
    assert_eq!((n["group_id"].as_u64(), n["reason"]["type"].as_str()), (Some(group), Some("new_group")));
    assert_eq!(n["title"], "ZeroDivisionError: division by zero");
    let env = fs::read_to_string(dir.path().join("env.txt")).unwrap();
    assert!(env.contains("SENTRY_REASON=new_group") && !env.contains("HOME="), "a clean environment: {env}");
    let rows = outbox(&server);
    let row = rows.iter().find(|r| r["delivered_at"].is_number()).expect("delivered");
    assert_eq!(row["attempts"], 2, "retried after exit 75: {row:#}");

    resolve(&server, group);
    let second = dir.path().join("2.json");
    wait_until(Duration::from_secs(20), "the program told of the resolve", || second.exists());
    let n: Value = serde_json::from_slice(&fs::read(&second).unwrap()).unwrap();
    assert_eq!((n["group_id"].as_u64(), n["reason"]["type"].as_str()), (Some(group), Some("resolved")));

    let out = server.cli_ok(&["notify", "test", "--project", "shop", "--plugin", "exec"]);
    assert!(out.contains("Sent a test message through the exec plugin"), "{out}");
    let n: Value = serde_json::from_slice(&fs::read(dir.path().join("3.json")).expect("the test run")).unwrap();
    assert_eq!((n["reason"]["type"].as_str(), n["test"].as_bool()), (Some("test"), Some(true)));
}

/// XMPP through Prosody: the line arrives in a multi-user chat room and to a person, read by
/// a second client; a wrong password is given up; a server down at first gets it once.
#[test]
fn notify_xmpp_posts_to_a_room_and_to_a_person() {
    let mut prosody = Prosody::configured();
    prosody.register("sentry", "bot-pass");
    prosody.register("reader", "reader-pass");
    let config = format!(
        "[notify]\nretry_initial_seconds = 1\nretry_max_seconds = 2\n\n\
         [plugins.xmpp]\njid = \"sentry@localhost\"\npassword = \"bot-pass\"\nserver = \"127.0.0.1:{}\"\ntls = \"none\"\n\
         to = \"ops@conference.localhost\"\nroom = true\n\n\
         [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\n\
         actions = [\"xmpp\", {{ plugin = \"xmpp\", to = \"reader@localhost\", room = false }}, {{ plugin = \"xmpp\", password = \"wrong\" }}]\n",
        prosody.port()
    );
    let (server, project) = server(&config);
    // Down at first: the rule fires while no server listens.
    send_message(&server, &project, "the search index is stale", 1);
    wait_until(Duration::from_secs(10), "failed attempts", || outbox(&server).iter().filter(|r| r["last_error"].is_string()).count() == 3);
    prosody.launch();
    // Retried while the server was down, given up once it refused the password.
    let before = outbox(&server).iter().find(|r| r["action"] == 2).and_then(|r| r["attempts"].as_u64()).unwrap();
    given_up_after(&server, "xmpp", "refused the login as sentry@localhost", before + 1);
    wait_until(Duration::from_secs(20), "two deliveries", || outbox(&server).iter().filter(|r| r["delivered_at"].is_number()).count() == 2);
    // The room keeps its history, the server the person's offline messages: a reader coming
    // online now sees each once.
    let mut reader = XmppReader::connect(prosody.port(), "reader", "reader-pass");
    reader.join("ops@conference.localhost", "watcher");
    let seen = reader.messages_after(Duration::from_secs(2));
    let stale = |kind: &str| seen.iter().filter(|m| m.body.contains("the search index is stale") && m.kind == kind).cloned().collect::<Vec<_>>();
    assert_eq!(stale("groupchat").len(), 1, "once in the room: {seen:#?}");
    assert_eq!(stale("groupchat")[0].from, "ops@conference.localhost/Sentry");
    assert_eq!(stale("chat").len(), 1, "once to the person: {seen:#?}");

    // Live, with the reader online: the room and the person both get the line.
    let group = sdk_error_among(&server, &project, 2);
    let room = reader.wait_message(Duration::from_secs(30), |m| m.kind == "groupchat" && m.body.contains("ZeroDivisionError"));
    assert!(!room.delayed, "{room:?}");
    let expected = format!("[shop] ERROR: ZeroDivisionError: division by zero (New issue) {}", server.base_url());
    assert!(room.body.starts_with(&expected) && room.body.ends_with(&format!("/issues/{group}/")), "{room:?}");
    let direct = reader.wait_message(Duration::from_secs(30), |m| m.kind == "chat" && m.body.contains("ZeroDivisionError"));
    assert!(direct.from.starts_with("sentry@localhost/"), "{direct:?}");
    assert_eq!(direct.body, room.body);

    let out = server.cli_ok(&["notify", "test", "--project", "shop", "--plugin", "xmpp"]);
    assert!(out.contains("Sent a test message through the xmpp plugin"), "{out}");
    reader.wait_message(Duration::from_secs(10), |m| m.kind == "groupchat" && m.body.contains("(Test message from `sentry notify test`)"));
}

/// `sentry notify digest`: one mail with the day's new issues, regressions, busiest issues
/// and slowest queries, in text and HTML (both parsed by Python's `email`), counted right.
#[test]
fn notify_digest_mail_counts_new_issues_regressions_busiest_and_slowest() {
    let smtp = SmtpPeer::start();
    let (server, project) = server(&format!("[notify]\ndigest = \"daily\"\n\n{}", email_section(smtp.port())));
    let mut n = 0;
    for (message, times) in [("the cache is cold", 5), ("disk full on db-2", 2), ("timeout talking to payments", 1)] {
        for _ in 0..times {
            n += 1;
            send_message(&server, &project, message, n);
        }
    }
    let disk = server.groups("shop").into_iter().find(|g| g["title"] == "disk full on db-2").expect("the disk group");
    resolve(&server, disk["id"].as_u64().unwrap());
    send_message(&server, &project, "disk full on db-2", 100);
    for (sql, ms) in [("SELECT * FROM orders WHERE id = 1", "900"), ("SELECT * FROM users WHERE id = 1", "40")] {
        server.cli_ok(&["capture", "Query", "--dsn", &project.dsn, "--field", &format!("query={sql}"), "--field", "engine=psycopg2", "--time-spent", ms]);
    }
    let out = server.cli_ok(&["notify", "digest", "--every", "daily"]);
    assert!(out.contains("5 new issue(s), 1 regression(s)"), "{out}");

    let mail = &smtp.wait_for(1, Duration::from_secs(10))[0];
    assert_eq!(mail["subject"], "[Sentry] Daily report: 5 new issues, 1 regression", "{mail:#}");
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["ops@example.com", "dev@example.com"]));
    // Lines of a mail end in CRLF.
    let text = mail["text"].as_str().expect("a text part").replace("\r\n", "\n");
    let shop = &text[text.find("== shop (11 events) ==").unwrap_or_else(|| panic!("no shop section with 11 events: {text}"))..];
    assert!(shop.contains("\nNew issues: 5\n"), "{text}");
    assert!(shop.contains("\nRegressions: 1\n  ERROR: disk full on db-2 (3 events)\n"), "{text}");
    assert!(shop.contains("\nBusiest issues:\n  ERROR: the cache is cold (5 events)\n"), "{text}");
    let slowest = &shop[shop.find("Slowest queries:").expect("a slowest section")..];
    let orders = slowest.find("orders").expect("the slow query");
    assert!(orders < slowest.find("users").expect("the fast query"), "slowest first: {slowest}");
    assert!(slowest.contains("p95 9"), "the p95 is shown: {slowest}");
    let html = mail["html"].as_str().expect("an HTML part");
    let shop = &html[html.find(">shop</a></h2><p>11 events</p>").unwrap_or_else(|| panic!("no shop section: {html}"))..];
    let list = |class: &str| {
        let start = shop.find(&format!("<ul class=\"{class}\">")).unwrap_or_else(|| panic!("no {class} list: {html}"));
        shop[start..][..shop[start..].find("</ul>").unwrap()].matches("<li>").count()
    };
    assert_eq!((list("new"), list("regressions"), list("busiest"), list("slowest")), (5, 1, 5, 2), "{html}");
    assert!(html.contains(&format!("<a href=\"{}", server.base_url())), "links to the dashboard: {html}");
}

/// XMPP over STARTTLS: trusting the server's private CA, the message arrives; without it the
/// certificate is refused (and retried, since a certificate may be renewed).
#[test]
fn notify_xmpp_over_starttls_checks_the_certificate() {
    let mut prosody = Prosody::configured_with_tls();
    prosody.register("sentry", "bot-pass");
    prosody.register("reader", "reader-pass");
    prosody.launch();
    let mut reader = XmppReader::connect(prosody.port(), "reader", "reader-pass");
    let config = format!(
        "[plugins.xmpp]\njid = \"sentry@localhost\"\npassword = \"bot-pass\"\nserver = \"127.0.0.1:{}\"\ntls = \"starttls\"\n\
         to = \"reader@localhost\"\n\n\
         [[rules]]\nproject = \"shop\"\nwhen = \"new_group\"\nactions = [{{ plugin = \"xmpp\", ca_file = \"{}\" }}, \"xmpp\"]\n",
        prosody.port(),
        prosody.ca().display()
    );
    let (server, project) = server(&config);
    send_message(&server, &project, "the certificate is checked", 1);
    let got = reader.wait_message(Duration::from_secs(30), |m| m.body.contains("the certificate is checked"));
    assert_eq!(got.kind, "chat");
    assert!(got.from.starts_with("sentry@localhost/"), "{got:?}");
    wait_until(Duration::from_secs(20), "both attempts", || outbox(&server).iter().all(|r| r["attempts"].as_u64() >= Some(1)));
    let rows = outbox(&server);
    let trusted = rows.iter().find(|r| r["action"] == 0).expect("the first action");
    assert!(trusted["delivered_at"].is_number(), "{rows:#?}");
    let untrusted = rows.iter().find(|r| r["action"] == 1).expect("the second action");
    assert!(untrusted["delivered_at"].is_null() && untrusted["failed_at"].is_null(), "{rows:#?}");
    let error = untrusted["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("certificate"), "{error}");
}
