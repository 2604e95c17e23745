//! Loopback stand-ins for the incident and push services the product can't reach from here —
//! PagerDuty's Events API v2, Opsgenie's Alert API and an ntfy server — as one
//! [`HttpReceiver`] answer. Each checks a request against the provider's published schema
//! (required fields, enums, length limits, the credential) and answers as the provider does:
//! accepted, or the provider's status for what is wrong, with the problems in the body. A
//! payload that breaks the schema is therefore never "delivered".

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Answer, Received};

/// The PagerDuty integration key the stand-in accepts.
pub const PAGERDUTY_KEY: &str = "R0UT1NGKEY0123456789abcdefABCDEF";
/// The Opsgenie API key it accepts.
pub const OPSGENIE_KEY: &str = "6e1c5f0a-3b7d-4c52-9a1e-2f8d7b6c5a41";
/// The ntfy access token it accepts.
pub const NTFY_TOKEN: &str = "tk_s3cretntfytokenforthetests0001";

/// Routes by path: `/pagerduty/v2/enqueue`, `/opsgenie/v2/alerts…`, `/ntfy/` (JSON publishing
/// to the server's root).
pub fn incident_services() -> Answer {
    Arc::new(|r: &Received| {
        let path = r.path.split('?').next().unwrap_or("");
        if path == "/pagerduty/v2/enqueue" {
            pagerduty(r)
        } else if let Some(rest) = path.strip_prefix("/opsgenie") {
            opsgenie(r, rest)
        } else if path == "/ntfy/" {
            ntfy(r)
        } else {
            (404, "{\"error\":\"no such endpoint\"}".into())
        }
    })
}

fn body(r: &Received) -> Result<Value, (u16, String)> {
    match serde_json::from_slice::<Value>(&r.body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err((400, json!({"error": "the body is not a JSON object"}).to_string())),
    }
}

/// A string field: present when `required`, at most `max` characters.
fn text(errors: &mut Vec<String>, v: &Value, name: &str, required: bool, max: usize) {
    match v.get(name) {
        None | Some(Value::Null) if required => errors.push(format!("'{name}' is missing")),
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() && required => errors.push(format!("'{name}' is empty")),
        Some(Value::String(s)) if s.chars().count() > max => errors.push(format!("'{name}' is longer than {max}")),
        Some(Value::String(_)) => {}
        Some(_) => errors.push(format!("'{name}' must be a string")),
    }
}

fn one_of(errors: &mut Vec<String>, v: &Value, name: &str, allowed: &[&str]) {
    match v.get(name).and_then(Value::as_str) {
        Some(s) if allowed.contains(&s) => {}
        other => errors.push(format!("'{name}' = {other:?} is not one of {allowed:?}")),
    }
}

/// Events API v2: <https://developer.pagerduty.com/docs/events-api-v2/trigger-events/>.
fn pagerduty(r: &Received) -> (u16, String) {
    let invalid = |errors: Vec<String>| (400, json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}).to_string());
    if r.method != "POST" || r.header("Content-Type") != Some("application/json") {
        return invalid(vec!["POST application/json only".into()]);
    }
    let v = match body(r) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut errors = Vec::new();
    if v["routing_key"].as_str() != Some(PAGERDUTY_KEY) {
        return invalid(vec!["Invalid routing key".into()]);
    }
    one_of(&mut errors, &v, "event_action", &["trigger", "acknowledge", "resolve"]);
    let action = v["event_action"].as_str().unwrap_or("");
    text(&mut errors, &v, "dedup_key", action != "trigger", 255);
    if action == "trigger" {
        let p = &v["payload"];
        if !p.is_object() {
            errors.push("'payload' is missing".into());
        } else {
            text(&mut errors, p, "summary", true, 1024);
            text(&mut errors, p, "source", true, 255);
            one_of(&mut errors, p, "severity", &["critical", "error", "warning", "info"]);
            for f in ["timestamp", "component", "group", "class"] {
                text(&mut errors, p, f, false, 1024);
            }
            if let Some(ts) = p["timestamp"].as_str()
                && !(ts.len() >= 20 && ts.as_bytes()[4] == b'-' && ts.as_bytes()[10] == b'T' && (ts.ends_with('Z') || ts.contains('+')))
            {
                errors.push(format!("'payload.timestamp' = {ts:?} is not ISO 8601"));
            }
            if !p["custom_details"].is_null() && !p["custom_details"].is_object() {
                errors.push("'payload.custom_details' must be an object".into());
            }
        }
        for link in v["links"].as_array().into_iter().flatten() {
            text(&mut errors, link, "href", true, 2048);
        }
    } else if v.get("payload").is_some() {
        errors.push("'payload' is only for trigger events".into());
    }
    if errors.is_empty() {
        (202, json!({"status": "success", "message": "Event processed", "dedup_key": v["dedup_key"]}).to_string())
    } else {
        invalid(errors)
    }
}

/// Alert API: <https://docs.opsgenie.com/docs/alert-api> (create; close by alias).
fn opsgenie(r: &Received, path: &str) -> (u16, String) {
    let reply = |status: u16, message: &str| (status, json!({"message": message, "took": 0.001, "requestId": "0b6d5c1e"}).to_string());
    if r.header("Authorization") != Some(&format!("GenieKey {OPSGENIE_KEY}")) {
        return reply(401, "Could not authenticate");
    }
    let v = match body(r) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut errors = Vec::new();
    if path == "/v2/alerts" && r.method == "POST" {
        text(&mut errors, &v, "message", true, 130);
        text(&mut errors, &v, "alias", false, 512);
        text(&mut errors, &v, "description", false, 15_000);
        text(&mut errors, &v, "entity", false, 512);
        text(&mut errors, &v, "source", false, 100);
        if v.get("priority").is_some() {
            one_of(&mut errors, &v, "priority", &["P1", "P2", "P3", "P4", "P5"]);
        }
        let tags = v["tags"].as_array().cloned().unwrap_or_default();
        if tags.len() > 20 || tags.iter().any(|t| t.as_str().is_none_or(|s| s.chars().count() > 50)) {
            errors.push("'tags' must be at most 20 strings of at most 50 characters".into());
        }
        for resp in v["responders"].as_array().into_iter().flatten() {
            one_of(&mut errors, resp, "type", &["team", "user", "escalation", "schedule"]);
            if resp.get("id").is_none() && resp.get("name").is_none() && resp.get("username").is_none() {
                errors.push("a responder needs an id, name or username".into());
            }
        }
        if let Some(details) = v.get("details") {
            match details.as_object() {
                Some(d) if d.values().all(Value::is_string) => {}
                _ => errors.push("'details' must map strings to strings".into()),
            }
        }
    } else if let Some(alias) = path.strip_prefix("/v2/alerts/").and_then(|p| p.strip_suffix("/close")) {
        if alias.is_empty() || !r.path.contains("identifierType=alias") {
            errors.push("close by alias: /v2/alerts/{alias}/close?identifierType=alias".into());
        }
        for f in ["user", "source"] {
            text(&mut errors, &v, f, false, 100);
        }
        text(&mut errors, &v, "note", false, 25_000);
    } else {
        return reply(404, "no such endpoint");
    }
    if errors.is_empty() { reply(202, "Request will be processed") } else { reply(422, &errors.join("; ")) }
}

/// Publishing as JSON: <https://docs.ntfy.sh/publish/#publish-as-json>.
fn ntfy(r: &Received) -> (u16, String) {
    if r.header("Authorization") != Some(&format!("Bearer {NTFY_TOKEN}")) {
        return (401, json!({"code": 40101, "http": 401, "error": "unauthorized"}).to_string());
    }
    let v = match body(r) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut errors = Vec::new();
    match v["topic"].as_str() {
        Some(t) if !t.is_empty() && t.len() <= 64 && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {}
        other => errors.push(format!("invalid topic {other:?}")),
    }
    for f in ["message", "title", "click"] {
        if !v[f].is_null() && !v[f].is_string() {
            errors.push(format!("'{f}' must be a string"));
        }
    }
    if !v["priority"].is_null() && !matches!(v["priority"].as_u64(), Some(1..=5)) {
        errors.push("'priority' must be 1 to 5".into());
    }
    if !v["tags"].is_null() && !v["tags"].as_array().is_some_and(|t| t.iter().all(Value::is_string)) {
        errors.push("'tags' must be a list of strings".into());
    }
    if let Some(click) = v["click"].as_str()
        && !(click.starts_with("http://") || click.starts_with("https://"))
    {
        errors.push("'click' must be a URL".into());
    }
    if errors.is_empty() {
        (200, json!({"id": "hwQ2YpKdmg", "time": 1_700_000_000, "event": "message", "topic": v["topic"]}).to_string())
    } else {
        (400, json!({"code": 40001, "http": 400, "error": errors.join("; ")}).to_string())
    }
}
