//! Exceptions and stack traces: `exception` in all its shapes (`{"values": [...]}`, a plain
//! list, a single object, legacy `sentry.interfaces.Exception`), frames with lenient field
//! types, and the crashing thread's stack for events without an exception.

use serde_json::{Map, Value};

use super::normalize::{MAX_MESSAGE_CHARS, boolean, text, unsigned};
use super::tags::clip_chars;
use super::{Exception, Frame, Mechanism, Stacktrace};

/// `{"values": [...]}`, a plain list, or a single exception object.
pub(super) fn parse_exceptions(v: Option<&Value>) -> Vec<Exception> {
    let list: &[Value] = match v {
        Some(Value::Array(list)) => list,
        Some(Value::Object(m)) => match m.get("values") {
            Some(Value::Array(list)) => list,
            _ if m.contains_key("type") || m.contains_key("value") => {
                std::slice::from_ref(v.unwrap_or(&Value::Null))
            }
            _ => &[],
        },
        _ => &[],
    };
    list.iter().filter_map(parse_exception).collect()
}

fn parse_exception(v: &Value) -> Option<Exception> {
    let m = v.as_object()?;
    let value = match m.get("value") {
        Some(Value::Object(_) | Value::Array(_)) => m.get("value").map(Value::to_string),
        other => text(other),
    };
    let exception = Exception {
        ty: text(m.get("type")),
        value: value.map(|v| clip_chars(v, MAX_MESSAGE_CHARS).0),
        module: text(m.get("module")),
        mechanism: m
            .get("mechanism")
            .and_then(Value::as_object)
            .map(|mech| Mechanism {
                ty: text(mech.get("type")),
                handled: boolean(mech.get("handled")),
                synthetic: boolean(mech.get("synthetic")).unwrap_or(false),
            }),
        stacktrace: parse_stacktrace(m.get("stacktrace")),
    };
    let empty =
        exception.ty.is_none() && exception.value.is_none() && exception.stacktrace.is_none();
    (!empty).then_some(exception)
}

/// `{"frames": [...]}` or a plain list of frames. No frames, no stacktrace.
pub(super) fn parse_stacktrace(v: Option<&Value>) -> Option<Stacktrace> {
    let frames = match v? {
        Value::Object(m) => m.get("frames")?.as_array()?,
        Value::Array(list) => list,
        _ => return None,
    };
    let frames: Vec<Frame> = frames
        .iter()
        .filter_map(Value::as_object)
        .map(|f| Frame {
            filename: text(f.get("filename")),
            abs_path: text(f.get("abs_path")),
            module: text(f.get("module")),
            function: text(f.get("function")),
            lineno: unsigned(f.get("lineno")),
            colno: unsigned(f.get("colno")),
            context_line: text(f.get("context_line")),
            in_app: boolean(f.get("in_app")),
        })
        .collect();
    (!frames.is_empty()).then_some(Stacktrace { frames })
}

/// The stacktrace of the thread that crashed, else of the current one, else of the only thread
/// that has one.
pub(super) fn crashed_thread(v: Option<&Value>) -> Option<Stacktrace> {
    let list = match v? {
        Value::Object(m) => m.get("values")?.as_array()?,
        Value::Array(list) => list,
        _ => return None,
    };
    let threads: Vec<(&Map<String, Value>, Stacktrace)> = list
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|t| Some((t, parse_stacktrace(t.get("stacktrace"))?)))
        .collect();
    let flagged = |flag: &str| {
        threads
            .iter()
            .position(|(t, _)| boolean(t.get(flag)) == Some(true))
    };
    let pick = flagged("crashed")
        .or_else(|| flagged("current"))
        .or((threads.len() == 1).then_some(0))?;
    threads.into_iter().nth(pick).map(|(_, st)| st)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::event::{Event, EventKind, Level, Mechanism, normalize};

    fn norm(v: Value) -> Event {
        normalize(v, 0.0, None).unwrap()
    }

    #[test]
    fn exception_forms() {
        let value = json!({"type": "KeyError", "value": "'SKU-999'", "module": "builtins",
        "mechanism": {"type": "django", "handled": false},
        "stacktrace": {"frames": [
            {"filename": "django/core/handlers/exception.py", "function": "inner", "lineno": 55, "in_app": false},
            {"filename": "shop/views.py", "function": "checkout", "lineno": "42", "colno": 7.0, "in_app": "true"},
            null
        ]}});
        for shape in [
            json!({"exception": {"values": [value.clone()]}}),
            json!({"exception": [value.clone()]}),
            json!({"exception": value.clone()}),
            json!({"sentry.interfaces.Exception": {"values": [value.clone()]}}),
            json!({"exception": null, "sentry.interfaces.Exception": [value.clone()]}),
        ] {
            let e = norm(shape);
            assert_eq!(e.kind, EventKind::Exception);
            let exc = e.main_exception().unwrap();
            assert_eq!(exc.ty.as_deref(), Some("KeyError"));
            assert_eq!(
                exc.mechanism,
                Some(Mechanism {
                    ty: Some("django".into()),
                    handled: Some(false),
                    synthetic: false
                })
            );
            let frames = &exc.stacktrace.as_ref().unwrap().frames;
            assert_eq!(frames.len(), 2);
            assert_eq!(
                (frames[1].lineno, frames[1].colno, frames[1].in_app),
                (Some(42), Some(7), Some(true))
            );
            assert_eq!(frames[0].in_app, Some(false));
        }
        // Chains keep wire order (cause first); empty values are dropped.
        let e = norm(
            json!({"exception": {"values": [{"type": "FileNotFoundError"}, {}, 3, {"type": "RuntimeError", "value": {"k": 1}}]}}),
        );
        let types: Vec<_> = e
            .exceptions
            .iter()
            .map(|x| x.ty.as_deref().unwrap())
            .collect();
        assert_eq!(types, ["FileNotFoundError", "RuntimeError"]);
        assert_eq!(
            e.main_exception().unwrap().value.as_deref(),
            Some("{\"k\":1}")
        );
        assert_eq!(
            norm(json!({"exception": {"values": []}})).kind,
            EventKind::Message
        );
        assert_eq!(
            norm(json!({"exception": {"values": null}})).kind,
            EventKind::Message
        );
        let panic = norm(
            json!({"level": "fatal", "exception": {"values": [{"type": "panic", "value": "index out of bounds",
            "mechanism": {"type": "panic", "handled": false}}]}}),
        );
        assert_eq!(
            (panic.kind, panic.level),
            (EventKind::Exception, Level::Fatal)
        );
    }

    #[test]
    fn stacktraces_without_exception() {
        let frames = json!({"frames": [{"function": "main", "lineno": 1}]});
        assert!(
            norm(json!({"stacktrace": frames.clone()}))
                .stacktrace
                .is_some()
        );
        assert!(
            norm(json!({"sentry.interfaces.Stacktrace": frames.clone()}))
                .stacktrace
                .is_some()
        );
        let threads = json!({"values": [
            {"id": 1, "stacktrace": {"frames": [{"function": "idle"}]}},
            {"id": 2, "crashed": true, "stacktrace": {"frames": [{"function": "boom"}]}}
        ]});
        let e = norm(json!({"threads": threads.clone()}));
        assert_eq!(
            e.stacktrace.unwrap().frames[0].function.as_deref(),
            Some("boom")
        );
        let only = norm(
            json!({"threads": [{"id": 1}, {"id": 2, "stacktrace": {"frames": [{"function": "only"}]}}]}),
        );
        assert_eq!(
            only.stacktrace.unwrap().frames[0].function.as_deref(),
            Some("only")
        );
        let ambiguous = json!([{"stacktrace": {"frames": [{"function": "a"}]}}, {"stacktrace": {"frames": [{"function": "b"}]}}]);
        assert_eq!(norm(json!({"threads": ambiguous})).stacktrace, None);
        // With an exception, thread stacks are not used.
        assert_eq!(
            norm(json!({"threads": threads, "exception": [{"type": "E"}]})).stacktrace,
            None
        );
    }
}
