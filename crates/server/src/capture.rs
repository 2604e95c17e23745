//! `sentry capture KIND`: the seed's `capture('Query', query=..., time_spent=36)` from a shell.
//! Builds one event of the kind and sends it to a running server's store endpoint, exactly as
//! a client library would.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::cli::CaptureArgs;

fn pairs(list: &[String], what: &str) -> Result<Vec<(String, String)>> {
    list.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => bail!("{what} \"{s}\" must be written KEY=VALUE"),
        })
        .collect()
}

/// The event JSON for a kind, fields, tags and the rest.
pub fn build_event(args: &CaptureArgs) -> Result<Value> {
    let mut fields: Map<String, Value> =
        pairs(&args.fields, "--field")?.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let tags: Map<String, Value> = pairs(&args.tags, "--tag")?.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let now = store::now();
    let mut event = json!({
        "event_id": protocol::EventId::new_random().to_string(),
        "timestamp": now,
        "platform": "other",
        "sdk": { "name": "sentry.cli", "version": env!("CARGO_PKG_VERSION") },
        "tags": tags,
    });
    let obj = event.as_object_mut().context("event is an object")?;
    if let Some(level) = &args.level {
        if protocol::Level::parse(level).is_none() {
            bail!("--level {level}: use debug, info, warning, error or fatal");
        }
        obj.insert("level".into(), json!(level));
    }
    if let Some(ms) = args.time_spent {
        obj.insert("time_spent".into(), json!(ms));
    }
    let mut take = |k: &str| fields.remove(k).and_then(|v| v.as_str().map(str::to_string));
    match protocol::EventKind::parse(&args.kind) {
        protocol::EventKind::Exception => {
            let ty = take("type").unwrap_or_else(|| "Exception".into());
            let value = take("value").or_else(|| args.message.clone()).unwrap_or_default();
            obj.insert("exception".into(), json!({ "values": [{ "type": ty, "value": value }] }));
        }
        protocol::EventKind::Query => {
            let Some(query) = take("query") else { bail!("a Query needs its SQL: --field query='SELECT …'") };
            let engine = take("engine");
            obj.insert("sentry.interfaces.Query".into(), json!({ "query": query, "engine": engine }));
            obj.insert("message".into(), json!(args.message.clone().unwrap_or(query)));
        }
        protocol::EventKind::Message => {
            let text = args.message.clone().or_else(|| take("message")).context("a Message needs --message TEXT")?;
            obj.insert("logentry".into(), json!({ "formatted": text }));
        }
        protocol::EventKind::Transaction => {
            bail!("transactions come from tracing SDKs; capture sends Exception, Message, Query or a kind of your own")
        }
        protocol::EventKind::Custom(kind) => {
            obj.insert("type".into(), json!(kind));
            let text = args.message.clone().or_else(|| take("message")).unwrap_or_else(|| args.kind.clone());
            obj.insert("logentry".into(), json!({ "formatted": text }));
        }
    }
    if !fields.is_empty() {
        obj.insert("extra".into(), Value::Object(fields));
    }
    Ok(event)
}

pub fn capture(args: CaptureArgs) -> Result<()> {
    let dsn: protocol::Dsn = args.dsn.parse().with_context(|| format!("the DSN \"{}\" is not valid", args.dsn))?;
    if dsn.scheme != "http" {
        bail!("sentry capture sends over plain http; for {} use an http:// DSN of the server itself", dsn.scheme);
    }
    let event = build_event(&args)?;
    let auth = format!("Sentry sentry_version=7, sentry_client=sentry-cli/{}, sentry_key={}", env!("CARGO_PKG_VERSION"), dsn.public_key);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = agent
        .post(&dsn.store_url())
        .header("X-Sentry-Auth", &auth)
        .header("Content-Type", "application/json")
        .send(event.to_string().as_bytes())
        .with_context(|| format!("could not reach {}", dsn.store_url()))?;
    let status = resp.status();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    if !status.is_success() {
        bail!("the server refused the event ({status}): {body}");
    }
    let id = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["id"].as_str().map(str::to_string));
    println!("Sent event {}", id.unwrap_or_default());
    Ok(())
}
