//! The engine against a real store in a temporary directory: events go through the store's
//! writer, their `StoredEvent`s through a broadcast channel, and deliveries to a plugin that
//! records what it was asked to send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alerts::{ActionSpec, AlertConfig, Alerts, Links, RetryPolicy, RuleSpec, When};
use notify::{Delivery, Field, Notification, Plugin, Reason, Settings};
use store::{EventId, EventSink, GroupId, GroupStatus, ItemCounts, Level, NewEvent, Project, Store, StoredEvent, WriteOutcome};
use tokio::sync::broadcast;

/// The dashboard's addresses, made up so a test can tell where a link came from.
struct TestLinks;

impl Links for TestLinks {
    fn issue(&self, project_slug: &str, group: GroupId) -> String {
        format!("https://errors.test/p/{project_slug}/issue/{group}")
    }
    fn project(&self, project_slug: &str) -> String {
        format!("https://errors.test/p/{project_slug}")
    }
}

/// A plugin that sends nothing: it notes each notification, after a short pause that leaves
/// two delivery loops time to race for the same row.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<Notification>>,
    /// Whether it closes what it opened when an issue is resolved.
    closes: bool,
}

impl Recorder {
    fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap().clone()
    }
}

impl Plugin for Recorder {
    fn name(&self) -> &'static str {
        "record"
    }
    fn description(&self) -> &'static str {
        "Notes what it is asked to send."
    }
    fn fields(&self) -> &'static [Field] {
        &[]
    }
    fn resolves(&self) -> bool {
        self.closes
    }
    fn rule_fired<'a>(&'a self, notification: &'a Notification, _settings: &'a Settings) -> Delivery<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.sent.lock().unwrap().push(notification.clone());
            Ok(())
        })
    }
}

/// A store in a temporary directory, its writer, one project, and the channel the engine is
/// woken through.
struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    writer: Arc<dyn EventSink>,
    project: Project,
    wakeups: broadcast::Sender<Arc<Vec<StoredEvent>>>,
    next_event: u128,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&store::Backend::Sqlite { path: dir.path().join("sentry.db") }).unwrap();
        let writer = store.start_writer(100).unwrap();
        let (project, _) = store.create_project("Shop").unwrap();
        let (wakeups, _) = broadcast::channel(64);
        World { _dir: dir, store, writer, project, wakeups, next_event: 1 }
    }

    /// Starts an engine with `rules` (each with one `record` action) and the recording plugin.
    async fn start(&self, rules: Vec<RuleSpec>, recorder: &Arc<Recorder>) -> Alerts {
        let config = AlertConfig { plugins: Vec::new(), rules, retry: RetryPolicy::default(), digest: None };
        let plugins: Vec<Arc<dyn Plugin>> = vec![recorder.clone()];
        let engine = alerts::start_with_plugins(self.store.clone(), self.wakeups.subscribe(), config, Arc::new(TestLinks), plugins);
        // Its first pass takes the activity so far as history; what is written from now on is news.
        eventually("the engine's first pass", || self.store.notify_cursor("group_activity").unwrap().is_some()).await;
        engine
    }

    /// A rule of this project with one `record` action.
    fn rule(&self, name: &str, when: When, level: Option<Level>, throttle_minutes: u64) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            project: self.project.slug.clone(),
            when,
            level,
            tags: Vec::new(),
            actions: vec![ActionSpec { plugin: "record".into(), settings: Settings::new() }],
            throttle_minutes,
        }
    }

    /// Writes one event per (grouping hash, level) in one batch, and announces what was stored
    /// as the ingest pipeline does. Returns the groups, in order.
    async fn write(&mut self, events: &[(&str, Level)]) -> Vec<GroupId> {
        let now = store::now();
        let new: Vec<NewEvent> = events
            .iter()
            .map(|(hash, level)| {
                self.next_event += 1;
                NewEvent {
                    project_id: self.project.id,
                    event_id: EventId(self.next_event.to_be_bytes()),
                    kind: "message".into(),
                    timestamp: now,
                    received: now,
                    level: *level,
                    logger: None,
                    title: format!("boom {hash}"),
                    culprit: "shop.cart in total".into(),
                    hash: (*hash).into(),
                    components: "[]".into(),
                    tags: vec![("server".into(), "web-1".into())],
                    time_spent: None,
                    payload: br#"{"message":"boom"}"#.to_vec(),
                }
            })
            .collect();
        let outcomes = self.writer.write(new.clone(), ItemCounts::default()).unwrap().wait().await.unwrap();
        let mut groups = Vec::new();
        let mut stored = Vec::new();
        for (ev, outcome) in new.iter().zip(outcomes) {
            let WriteOutcome::Stored { group_id, new_group, regression } = outcome else { panic!("{ev:?} was a duplicate") };
            groups.push(group_id);
            stored.push(StoredEvent {
                project_id: ev.project_id,
                group_id,
                event_id: ev.event_id,
                kind: ev.kind.clone(),
                level: ev.level,
                new_group,
                regression,
            });
        }
        let _ = self.wakeups.send(Arc::new(stored));
        groups
    }

    /// The queued notifications of one rule, oldest first.
    fn queued(&self, rule: &str) -> Vec<Notification> {
        let mut rows = self.store.deliveries(1000).unwrap();
        rows.reverse();
        rows.iter().filter(|d| d.rule == rule).map(|d| serde_json::from_str(&d.payload).unwrap()).collect()
    }

    fn queued_for(&self, rule: &str, group: GroupId) -> usize {
        self.queued(rule).iter().filter(|n| n.group_id == group.0).count()
    }
}

/// Waits (up to ten seconds) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_fires_once_with_the_link_links_gives() {
    let mut w = World::new();
    let recorder = Arc::new(Recorder::default());
    let engine = w.start(vec![w.rule("new", When::NewGroup, None, 0)], &recorder).await;

    let [group] = w.write(&[("a", Level::Error)]).await[..] else { panic!() };
    eventually("the delivery", || !recorder.sent().is_empty()).await;
    let expected = TestLinks.issue(&w.project.slug, group);
    let queued = w.queued("new");
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].link, expected);
    assert_eq!(queued[0].project, w.project.slug);
    assert_eq!(queued[0].group_id, group.0);
    assert_eq!(recorder.sent()[0].link, expected);

    // More events of the same group are not new; a later group's firing shows they were seen.
    w.write(&[("a", Level::Error), ("a", Level::Error)]).await;
    let [other] = w.write(&[("b", Level::Error)]).await[..] else { panic!() };
    eventually("the second group's firing", || w.queued_for("new", other) == 1).await;
    assert_eq!(w.queued_for("new", group), 1);
    eventually("both deliveries", || recorder.sent().len() == 2).await;

    engine.shutdown().await;
    w.writer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_an_issue_closes_what_each_rule_that_fired_for_it_opened() {
    let mut w = World::new();
    let recorder = Arc::new(Recorder { closes: true, ..Recorder::default() });
    let rules = vec![w.rule("new", When::NewGroup, None, 60), w.rule("regressions", When::Regression, None, 0)];
    let engine = w.start(rules, &recorder).await;

    let [group, other] = w.write(&[("a", Level::Error), ("b", Level::Error)]).await[..] else { panic!() };
    eventually("two firings", || recorder.sent().len() == 2).await;
    w.store.set_group_status(group, GroupStatus::Resolved).unwrap();
    eventually("the resolve", || recorder.sent().len() == 3).await;
    let closed = recorder.sent().pop().unwrap();
    assert_eq!((closed.group_id, closed.reason.clone(), closed.rule.as_str()), (group.0, Reason::Resolved, "new"));
    assert_eq!(closed.link, TestLinks.issue(&w.project.slug, group));
    // Only the rule that fired for the group closes; the other group is untouched.
    assert_eq!(w.queued("regressions").len(), 0);
    assert_eq!(w.queued_for("new", other), 1);

    // The resolve left no throttle mark: the regression fires, and resolving again closes it
    // (and the new-group rule's incident once more).
    w.write(&[("a", Level::Error)]).await;
    eventually("the regression", || w.queued_for("regressions", group) == 1).await;
    w.store.set_group_status(group, GroupStatus::Resolved).unwrap();
    eventually("both rules' resolves", || w.queued_for("regressions", group) == 2 && w.queued_for("new", group) == 3).await;
    let reasons: Vec<Reason> = w.queued("regressions").into_iter().map(|n| n.reason).collect();
    assert_eq!(reasons, [Reason::Regression, Reason::Resolved]);

    engine.shutdown().await;
    w.writer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_rule_does_not_fire_again_within_its_minutes() {
    let mut w = World::new();
    let recorder = Arc::new(Recorder::default());
    let rules = vec![w.rule("hourly", When::Regression, None, 60), w.rule("always", When::Regression, None, 0)];
    let engine = w.start(rules, &recorder).await;

    let [group] = w.write(&[("a", Level::Error)]).await[..] else { panic!() };
    for round in 1..=2 {
        w.store.set_group_status(group, GroupStatus::Resolved).unwrap();
        w.write(&[("a", Level::Error)]).await;
        eventually("the unthrottled rule's firing", || w.queued_for("always", group) == round).await;
    }
    // Both regressions were considered in the same passes: the throttled rule fired for the
    // first only.
    assert_eq!(w.queued_for("hourly", group), 1);

    engine.shutdown().await;
    w.writer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_filter_follows_the_order_of_levels() {
    let mut w = World::new();
    let recorder = Arc::new(Recorder::default());
    let engine = w.start(vec![w.rule("errors", When::NewGroup, Some(Level::Error), 0)], &recorder).await;

    let [warning] = w.write(&[("w", Level::Warning)]).await[..] else { panic!() };
    let [fatal] = w.write(&[("f", Level::Fatal)]).await[..] else { panic!() };
    eventually("the fatal group's firing", || w.queued_for("errors", fatal) == 1).await;
    // The warning came first, so the pass that saw the fatal group had seen it too.
    assert_eq!(w.queued_for("errors", warning), 0);
    assert_eq!(w.queued("errors").len(), 1);

    engine.shutdown().await;
    w.writer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_outbox_send_each_delivery_once() {
    let mut w = World::new();
    let recorder = Arc::new(Recorder::default());
    let rules = vec![w.rule("new", When::NewGroup, None, 0)];
    let first = w.start(rules.clone(), &recorder).await;
    let second = w.start(rules, &recorder).await;

    let hashes: Vec<String> = (0..20).map(|i| format!("g{i}")).collect();
    let events: Vec<(&str, Level)> = hashes.iter().map(|h| (h.as_str(), Level::Error)).collect();
    w.write(&events).await;
    eventually("every delivery", || {
        let rows = w.store.deliveries(1000).unwrap();
        rows.len() == 20 && rows.iter().all(|d| d.delivered_at.is_some())
    })
    .await;
    first.shutdown().await;
    second.shutdown().await;

    let mut sends: HashMap<String, usize> = HashMap::new();
    for n in recorder.sent() {
        *sends.entry(n.id).or_default() += 1;
    }
    assert_eq!(sends.len(), 20);
    let twice: Vec<&String> = sends.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert!(w.store.deliveries(1000).unwrap().iter().all(|d| d.attempts == 1));
    w.writer.shutdown();
}
