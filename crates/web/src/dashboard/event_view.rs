//! What the group and event pages show of one stored event, read leniently from the JSON the
//! client sent (modern SDKs, legacy raven `sentry.interfaces.*`, span-derived queries): the
//! message, chained exceptions with their frames (source context and locals where sent), the
//! query, request, user, breadcrumbs, contexts and extra data. Everything here is plain text;
//! the templates escape it.

use protocol::event::Interface;
use serde_json::{Map, Value};

use super::format;

#[derive(Clone, Debug, Default)]
pub struct EventView {
    pub message: Option<String>,
    /// Newest (the error a person thinks of) first; the rest are its causes.
    pub exceptions: Vec<ExceptionView>,
    /// A stack trace without an exception (raven's `stack=True`, a thread's).
    pub stacktrace: Vec<FrameView>,
    pub query: Option<String>,
    pub engine: Option<String>,
    pub transaction: Option<String>,
    pub request: Option<RequestView>,
    pub user: Vec<(String, String)>,
    pub breadcrumbs: Vec<CrumbView>,
    pub contexts: Vec<(String, Vec<(String, String)>)>,
    pub extra: Vec<(String, String)>,
    pub sdk: Option<String>,
    pub platform: Option<String>,
    /// What was removed before the event was stored (its `_meta`): the field's path and who
    /// removed it, in plain words.
    pub scrubbed: Vec<(String, String)>,
    /// Why frames could not be resolved (a source map missing, not valid, not matching), as
    /// (file, reason).
    pub problems: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default)]
pub struct ExceptionView {
    pub ty: String,
    pub value: String,
    pub module: String,
    pub mechanism: String,
    /// Most recent call first.
    pub frames: Vec<FrameView>,
    /// The frames as the client sent them, when they were resolved through a source map.
    pub minified: Vec<FrameView>,
}

#[derive(Clone, Debug, Default)]
pub struct FrameView {
    pub filename: String,
    pub function: String,
    pub lineno: String,
    pub in_app: bool,
    /// (line number, text) around the line; `line` is the one that ran.
    pub pre: Vec<(String, String)>,
    pub line: Option<(String, String)>,
    pub post: Vec<(String, String)>,
    pub vars: Vec<(String, String)>,
}

impl FrameView {
    pub fn has_detail(&self) -> bool {
        self.line.is_some() || !self.pre.is_empty() || !self.post.is_empty() || !self.vars.is_empty()
    }
}

#[derive(Clone, Debug, Default)]
pub struct RequestView {
    pub method: String,
    pub url: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub data: String,
    pub env: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default)]
pub struct CrumbView {
    /// When, against the event: `2.1 s before`, `at the event`.
    pub time: String,
    /// When, in UTC (shown on hover).
    pub utc: String,
    /// How many crumbs in a row said the same (1 for most).
    pub repeats: usize,
    pub category: String,
    pub level: String,
    pub message: String,
    pub data: String,
}

/// How long before the event a crumb was left: `350 ms before`, `2.1 s before`, `3 min before`.
fn before(secs: f64) -> String {
    if secs.abs() < 0.0005 {
        "at the event".to_string()
    } else if secs < 0.0 {
        format!("{} after", before_amount(-secs))
    } else {
        format!("{} before", before_amount(secs))
    }
}

fn before_amount(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        format::span(secs)
    }
}

/// Crumbs in a row that say the same (category, level, message, data) become one, counted, with
/// the time of the last of them (a loop that logs the same line 500 times is one row "× 500").
fn fold_repeats(crumbs: impl Iterator<Item = CrumbView>) -> Vec<CrumbView> {
    let mut out: Vec<CrumbView> = Vec::new();
    for c in crumbs {
        match out.last_mut() {
            Some(last) if (&last.category, &last.level, &last.message, &last.data) == (&c.category, &c.level, &c.message, &c.data) => {
                last.repeats += 1;
                last.time = c.time;
                last.utc = c.utc;
            }
            _ => out.push(c),
        }
    }
    out
}

/// Text of a JSON value: strings as they are, everything else as compact JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn str_of(o: &Map<String, Value>, keys: &[&str]) -> String {
    keys.iter().find_map(|k| o.get(*k).filter(|v| !v.is_null()).map(text)).unwrap_or_default()
}

/// Key/value pairs from an object or a list of pairs.
fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Object(o)) => o.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|p| match p {
                Value::Array(kv) if kv.len() == 2 => Some((text(&kv[0]), text(&kv[1]))),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `{values: [...]}` or a plain list.
fn values(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Object(o)) => match o.get("values") {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => vec![v.unwrap_or(&Value::Null)],
        },
        _ => Vec::new(),
    }
}

fn frames(st: Option<&Value>) -> Vec<FrameView> {
    let Some(Value::Object(st)) = st else { return Vec::new() };
    let Some(Value::Array(fs)) = st.get("frames") else { return Vec::new() };
    let mut out: Vec<FrameView> = fs.iter().filter_map(|f| f.as_object()).map(frame).collect();
    out.reverse();
    out
}

fn frame(f: &Map<String, Value>) -> FrameView {
    let lineno = f.get("lineno").and_then(Value::as_u64);
    let numbered = |key: &str, before: bool| -> Vec<(String, String)> {
        let lines: Vec<String> = match f.get(key) {
            Some(Value::Array(ls)) => ls.iter().map(text).collect(),
            _ => Vec::new(),
        };
        let n = lines.len() as u64;
        lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let no = lineno.map(|ln| if before { ln.saturating_sub(n - i as u64) } else { ln + 1 + i as u64 });
                (no.map(|x| x.to_string()).unwrap_or_default(), l)
            })
            .collect()
    };
    FrameView {
        filename: str_of(f, &["filename", "abs_path", "module"]),
        function: str_of(f, &["function"]),
        lineno: lineno.map(|l| l.to_string()).unwrap_or_default(),
        in_app: f.get("in_app").and_then(Value::as_bool).unwrap_or(false),
        pre: numbered("pre_context", true),
        line: f.get("context_line").filter(|v| !v.is_null()).map(|l| (lineno.map(|x| x.to_string()).unwrap_or_default(), text(l))),
        post: numbered("post_context", false),
        vars: pairs(f.get("vars")),
    }
}

fn exception(e: &Map<String, Value>) -> ExceptionView {
    let mech = e.get("mechanism").and_then(Value::as_object);
    ExceptionView {
        ty: str_of(e, &["type"]),
        value: str_of(e, &["value"]),
        module: str_of(e, &["module"]),
        mechanism: mech
            .map(|m| {
                let ty = str_of(m, &["type"]);
                match m.get("handled").and_then(Value::as_bool) {
                    Some(false) => format!("{ty} (unhandled)"),
                    Some(true) => format!("{ty} (handled)"),
                    None => ty,
                }
            })
            .unwrap_or_default(),
        frames: frames(e.get("stacktrace").or_else(|| e.get("raw_stacktrace"))),
        minified: if e.get("stacktrace").is_some() { frames(e.get("raw_stacktrace")) } else { Vec::new() },
    }
}

impl EventView {
    /// Reads a stored event's JSON. Never fails: what can't be read is left out.
    pub fn from_payload(payload: &[u8]) -> EventView {
        let Ok(Value::Object(ev)) = serde_json::from_slice::<Value>(payload) else {
            return EventView { message: Some(String::from_utf8_lossy(payload).into_owned()), ..EventView::default() };
        };
        let mut v = EventView::default();
        let get = |i: Interface| i.get(&ev);

        v.message = match get(Interface::Message) {
            Some(Value::Object(le)) => Some(str_of(le, &["formatted", "message"])),
            _ => match ev.get("message") {
                Some(Value::Object(m)) => Some(str_of(m, &["formatted", "message"])),
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            },
        }
        .filter(|m| !m.is_empty());

        let mut excs: Vec<ExceptionView> = values(get(Interface::Exception))
            .into_iter()
            .filter_map(Value::as_object)
            .map(exception)
            .collect();
        excs.reverse();
        v.exceptions = excs;
        v.stacktrace = frames(get(Interface::Stacktrace));
        if v.stacktrace.is_empty()
            && let Some(Value::Object(t)) = values(ev.get("threads")).into_iter().find(|t| t.get("stacktrace").is_some())
        {
            v.stacktrace = frames(t.get("stacktrace"));
        }

        if let Some(Value::Object(q)) = get(Interface::Query) {
            v.query = Some(str_of(q, &["query"]));
            v.engine = Some(str_of(q, &["engine"])).filter(|e| !e.is_empty());
        }
        v.transaction = ev.get("transaction").map(text).filter(|t| !t.is_empty());

        if let Some(Value::Object(r)) = get(Interface::Request) {
            v.request = Some(RequestView {
                method: str_of(r, &["method"]),
                url: str_of(r, &["url"]),
                query: match r.get("query_string") {
                    Some(Value::String(s)) => s.clone(),
                    other => pairs(other).into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"),
                },
                headers: pairs(r.get("headers")),
                data: r.get("data").map(|d| match d {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string_pretty(other).unwrap_or_default(),
                }).unwrap_or_default(),
                env: pairs(r.get("env")),
            });
        }
        v.user = pairs(get(Interface::User));

        let event_time = ev.get("timestamp").and_then(protocol::event::parse_timestamp);
        let crumbs = values(ev.get("breadcrumbs")).into_iter().filter_map(Value::as_object).map(|b| {
            let at = b.get("timestamp").and_then(protocol::event::parse_timestamp);
            CrumbView {
                time: match (at, event_time) {
                    (Some(at), Some(ev)) => before(ev - at),
                    (Some(at), None) => format::utc(at),
                    (None, _) => b.get("timestamp").map(text).unwrap_or_default(),
                },
                utc: at.map(format::utc).unwrap_or_default(),
                repeats: 1,
                category: str_of(b, &["category", "type"]),
                level: str_of(b, &["level"]),
                message: str_of(b, &["message"]),
                data: b.get("data").filter(|d| !d.is_null()).map(|d| d.to_string()).unwrap_or_default(),
            }
        });
        v.breadcrumbs = fold_repeats(crumbs);

        if let Some(Value::Object(ctx)) = get(Interface::Contexts) {
            v.contexts = ctx.iter().map(|(name, c)| (name.clone(), pairs(Some(c)))).collect();
        }
        v.extra = pairs(ev.get("extra"));
        v.sdk = ev
            .get("sdk")
            .and_then(Value::as_object)
            .map(|s| format!("{} {}", str_of(s, &["name"]), str_of(s, &["version"])).trim().to_string());
        v.platform = ev.get("platform").map(text);
        if let Some(meta) = ev.get("_meta") {
            removals(meta, &mut Vec::new(), &mut v.scrubbed);
        }
        v.problems = values(ev.get("errors"))
            .into_iter()
            .filter_map(Value::as_object)
            .map(|e| (str_of(e, &["url", "name"]), str_of(e, &["reason", "type"])))
            .filter(|(_, why)| !why.is_empty())
            .collect();
        v
    }

    /// Pretty JSON of the whole event, for the raw view.
    pub fn pretty(payload: &[u8]) -> String {
        serde_json::from_slice::<Value>(payload)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| String::from_utf8_lossy(payload).into_owned())
    }
}

/// Every `_meta` node with removals (`{"": {"rem": [[rule, kind, …]]}}`), depth-first, with at
/// most 200 listed.
fn removals(node: &Value, path: &mut Vec<String>, out: &mut Vec<(String, String)>) {
    let Value::Object(map) = node else { return };
    for (key, child) in map {
        if out.len() >= 200 || path.len() > 32 {
            return;
        }
        if key.is_empty() {
            let rules: Vec<&str> = child
                .get("rem")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(|r| r.get(0).and_then(Value::as_str)).collect())
                .unwrap_or_default();
            if let Some(rule) = rules.first() {
                out.push((path.join("."), removed_by(rule)));
            }
        } else {
            path.push(key.clone());
            removals(child, path, out);
            path.pop();
        }
    }
}

/// Who removed a value, from its rule's name.
fn removed_by(rule: &str) -> String {
    let what = match rule.trim_start_matches('@').split(':').next().unwrap_or("") {
        "password" => "a secret field name",
        "creditcard" => "a credit-card number",
        "iban" => "an IBAN",
        "pemkey" => "a private key",
        "urlauth" => "a password in a URL",
        "bearer" => "a bearer token",
        _ => "",
    };
    if rule.starts_with('@') && !what.is_empty() {
        format!("scrubbed by the server: {what}")
    } else {
        "filtered by the client".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn breadcrumbs_say_when_against_the_event_and_repeats_are_folded() {
        let crumb = |t: Value, m: &str| json!({"timestamp": t, "message": m, "category": "log"});
        let payload = json!({
            "timestamp": "2024-05-01T10:00:10Z",
            "breadcrumbs": {"values": [
                crumb(json!("2024-05-01T10:00:00Z"), "started"),
                crumb(json!(1_714_557_605.0), "retrying"),
                crumb(json!(1_714_557_606.0), "retrying"),
                crumb(json!(1_714_557_609.65), "retrying"),
                crumb(json!(1_714_557_610.0), "gave up"),
                crumb(json!(1_714_557_200.0), "started"),
            ]},
        });
        let v = EventView::from_payload(payload.to_string().as_bytes());
        let rows: Vec<(&str, &str, usize)> = v.breadcrumbs.iter().map(|b| (b.message.as_str(), b.time.as_str(), b.repeats)).collect();
        assert_eq!(rows, [("started", "10.0 s before", 1), ("retrying", "350 ms before", 3), ("gave up", "at the event", 1), ("started", "6.8 min before", 1)]);
        assert_eq!(v.breadcrumbs[0].utc, "2024-05-01 10:00:00 UTC");
    }

    #[test]
    fn reads_modern_and_legacy_shapes() {
        let modern = br#"{"exception":{"values":[
            {"type":"KeyError","value":"'a'","stacktrace":{"frames":[{"filename":"lib.py","lineno":3}]}},
            {"type":"ValueError","value":"bad <b>","mechanism":{"type":"generic","handled":false},
             "stacktrace":{"frames":[{"filename":"app.py","function":"f","lineno":10,"in_app":true,
               "pre_context":["a","b"],"context_line":"c","post_context":["d"],"vars":{"x":"<script>"}}]}}]},
            "request":{"method":"GET","url":"http://x/","headers":[["X-A","1"]]},
            "breadcrumbs":[{"timestamp":0,"message":"hi","category":"log"}],
            "contexts":{"os":{"name":"Linux"}},"logentry":{"formatted":"boom"}}"#;
        let v = EventView::from_payload(modern);
        assert_eq!(v.exceptions[0].ty, "ValueError");
        assert_eq!(v.exceptions[0].mechanism, "generic (unhandled)");
        let f = &v.exceptions[0].frames[0];
        assert!(f.in_app);
        assert_eq!(f.pre, vec![("8".into(), "a".into()), ("9".into(), "b".into())]);
        assert_eq!(f.post, vec![("11".into(), "d".into())]);
        assert_eq!(f.vars, vec![("x".into(), "<script>".into())]);
        assert_eq!(v.request.as_ref().unwrap().headers, vec![("X-A".into(), "1".into())]);
        assert_eq!(v.breadcrumbs[0].message, "hi");
        assert_eq!(v.message.as_deref(), Some("boom"));

        let legacy = br#"{"message":"hello","sentry.interfaces.Query":{"query":"SELECT 1","engine":"psycopg2"}}"#;
        let v = EventView::from_payload(legacy);
        assert_eq!((v.query.as_deref(), v.engine.as_deref(), v.message.as_deref()), (Some("SELECT 1"), Some("psycopg2"), Some("hello")));

        let raven = br#"{"sentry.interfaces.Exception":{"values":[{"type":"KeyError","value":"'a'"}]},
            "sentry.interfaces.Http":{"method":"POST","url":"http://x/"},"sentry.interfaces.User":{"id":"7"},
            "sentry.interfaces.Message":{"message":"Order %s failed"}}"#;
        let v = EventView::from_payload(raven);
        assert_eq!(v.exceptions[0].ty, "KeyError");
        assert_eq!(v.request.as_ref().unwrap().method, "POST");
        assert_eq!(v.user, vec![("id".into(), "7".into())]);
        assert_eq!(v.message.as_deref(), Some("Order %s failed"));
    }

    #[test]
    fn says_what_was_scrubbed() {
        let ev = br#"{"_meta":{"request":{"cookies":{"":{"rem":[["@password:filter","s"]]}},
            "data":{"password":{"":{"rem":[["!config","s"]]}}}},"extra":{"card":{"":{"rem":[["@creditcard:filter","s"]]}}}}}"#;
        let v = EventView::from_payload(ev);
        assert_eq!(
            v.scrubbed,
            vec![
                ("extra.card".to_string(), "scrubbed by the server: a credit-card number".to_string()),
                ("request.cookies".to_string(), "scrubbed by the server: a secret field name".to_string()),
                ("request.data.password".to_string(), "filtered by the client".to_string()),
            ]
        );
    }
}
