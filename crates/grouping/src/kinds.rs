//! The event kinds and [`group`]. Each kind is one type implementing [`Kind`]: how it is
//! recognised, its fingerprint components, its title and its culprit. [`group`] picks the
//! kind by `event.kind`, lets a client fingerprint override the components, and hashes them.
//!
//! The hash is the md5 of the kind name followed by the contributing components, every string
//! written as `<byte length>:<bytes>`, so no value can imitate a separator; components that
//! do not contribute (shown for explanation) never change it.

use md5::{Digest, Md5};
use protocol::event::{Exception, Frame};
use protocol::{Event, EventKind};

use crate::{Component, Grouping, GroupingConfig, message, sql};

/// One kind of event.
pub trait Kind {
    /// `exception`, `message`, `query`, `transaction`, or a custom kind's own name. Part of
    /// every hash, so that kinds never share a group.
    fn name(&self) -> &str;
    /// Whether the event carries what this kind groups by.
    fn matches(&self, event: &Event) -> bool;
    /// The default fingerprint: what makes two events of this kind the same problem.
    fn components(&self, event: &Event) -> Vec<Component>;
    /// One line for lists, at most [`MAX_TITLE`] characters.
    fn title(&self, event: &Event) -> String;
    /// Where it happened, computed (the client's own culprit is applied by [`group`]).
    fn culprit(&self, event: &Event) -> String;
}

/// Longest title and culprit, in characters (longer ones end with `…`).
pub const MAX_TITLE: usize = 200;

/// Exception values with stack traces, chained.
pub struct ExceptionKind;
/// A log message.
pub struct MessageKind;
/// An SQL query with its engine.
pub struct QueryKind;
/// A performance transaction.
pub struct TransactionKind;
/// Anything else a client names itself, grouped by its message.
pub struct CustomKind {
    pub name: String,
}

/// The kind that handles `event`, by `event.kind`.
pub fn kind_of(event: &Event) -> Box<dyn Kind> {
    match &event.kind {
        EventKind::Exception => Box::new(ExceptionKind),
        EventKind::Message => Box::new(MessageKind),
        EventKind::Query => Box::new(QueryKind),
        EventKind::Transaction => Box::new(TransactionKind),
        EventKind::Custom(name) => Box::new(CustomKind { name: name.clone() }),
    }
}

/// Groups one event. Pure and total: every event gets a hash, components, a title and a
/// culprit. Only version 1 of the algorithm exists; `config` selects it.
pub fn group(event: &Event, config: &GroupingConfig) -> Grouping {
    let _version = config.version; // Every version is grouped by version 1 for now.
    let kind = kind_of(event);
    let defaults = kind.components(event);
    let components = match event.fingerprint.as_deref() {
        Some(fingerprint) if !fingerprint.is_empty() => {
            apply_fingerprint(fingerprint, defaults, event)
        }
        _ => defaults,
    };
    let culprit = match event.culprit.as_deref().map(str::trim) {
        Some(c) if !c.is_empty() => truncate(c),
        _ => truncate(&kind.culprit(event)),
    };
    Grouping {
        hash: hash(kind.name(), &components),
        components,
        title: kind.title(event),
        culprit,
    }
}

fn hash(kind: &str, components: &[Component]) -> String {
    fn put(h: &mut Md5, s: &str) {
        h.update(s.len().to_string().as_bytes());
        h.update(b":");
        h.update(s.as_bytes());
    }
    let mut h = Md5::new();
    put(&mut h, kind);
    for c in components.iter().filter(|c| c.contributes) {
        put(&mut h, &c.name);
        put(&mut h, &c.values.len().to_string());
        for v in &c.values {
            put(&mut h, v);
        }
    }
    hex::encode(h.finalize())
}

/// The client fingerprint replaces the default components. `{{ default }}` (any spacing or
/// case) stands for the default components themselves, so `["{{ default }}"]` groups exactly
/// like no fingerprint; other values become `fingerprint` components, with the variables
/// `{{ transaction }}`, `{{ logger }}`, `{{ level }}`, `{{ type }}` / `{{ error.type }}`,
/// `{{ value }}` / `{{ error.value }}`, `{{ message }}` and `{{ tags.NAME }}` filled in.
/// Without `{{ default }}`, the defaults are kept for explanation, not contributing.
fn apply_fingerprint(
    fingerprint: &[String],
    defaults: Vec<Component>,
    event: &Event,
) -> Vec<Component> {
    let mut out = Vec::new();
    let mut literal = Vec::new();
    let mut used_defaults = false;
    for value in fingerprint {
        if variable(value).is_some_and(|v| v.eq_ignore_ascii_case("default")) {
            flush_fingerprint(&mut out, &mut literal);
            out.extend(defaults.iter().cloned());
            used_defaults = true;
        } else {
            literal.push(expand(value, event));
        }
    }
    flush_fingerprint(&mut out, &mut literal);
    if !used_defaults {
        out.extend(defaults.into_iter().map(|c| Component {
            contributes: false,
            ..c
        }));
    }
    out
}

fn flush_fingerprint(out: &mut Vec<Component>, literal: &mut Vec<String>) {
    if !literal.is_empty() {
        out.push(component("fingerprint", std::mem::take(literal)));
    }
}

/// The name inside `{{ name }}`, trimmed.
fn variable(value: &str) -> Option<&str> {
    value
        .trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")
        .map(str::trim)
}

fn expand(value: &str, event: &Event) -> String {
    let Some(name) = variable(value) else {
        return value.to_string();
    };
    let or = |v: Option<&str>, missing: &str| non_empty(v).unwrap_or(missing).to_string();
    let main = event.main_exception();
    match name.to_ascii_lowercase().as_str() {
        "transaction" => or(event.transaction.as_deref(), "<no-transaction>"),
        "logger" => or(event.logger.as_deref(), "<no-logger>"),
        "level" => event.level.as_str().to_string(),
        "type" | "error.type" => or(main.and_then(|e| e.ty.as_deref()), "<no-type>"),
        "value" | "error.value" => or(main.and_then(|e| e.value.as_deref()), "<no-value>"),
        "message" => or(
            event.message.as_ref().map(|m| m.formatted.as_str()),
            "<no-message>",
        ),
        lower if lower.starts_with("tags.") => {
            let key = &name["tags.".len()..];
            or(event.tag(key), &format!("<no-value-for-tag-{key}>"))
        }
        _ => value.to_string(),
    }
}

impl Kind for ExceptionKind {
    fn name(&self) -> &str {
        "exception"
    }

    fn matches(&self, event: &Event) -> bool {
        !event.exceptions.is_empty()
    }

    /// The chain of types (a synthetic exception's crash function instead of its meaningless
    /// type), each followed by its frames: in-app frames only when the event marks any frame
    /// in-app, else all; recursion folded. With no frame anywhere, each type is followed by
    /// its normalised value instead.
    fn components(&self, event: &Event) -> Vec<Component> {
        if event.exceptions.is_empty() {
            return vec![component("message", vec![message_key(event)])];
        }
        if let Some(message) = synthetic_message(event) {
            // A message sent with a stack: the message decides, the frames only explain.
            let key = match &event.message {
                Some(_) => message_key(event),
                None => message::normalize(message),
            };
            let mut out = vec![component("message", vec![key])];
            if let Some(frame) = exception_stacks(event).last().and_then(|f| f.iter().rev().find(|f| in_app(f)).or(f.last())) {
                out.push(Component {
                    contributes: false,
                    ..component("frame", vec![frame_location(frame), clean_function(frame.function.as_deref().unwrap_or(""))])
                });
            }
            return out;
        }
        let stacks = exception_stacks(event);
        let has_frames = stacks.iter().any(|s| !s.is_empty());
        let any_in_app = stacks.iter().flat_map(|s| s.iter()).any(in_app);
        let mut out = Vec::new();
        for (exception, frames) in event.exceptions.iter().zip(&stacks) {
            let synthetic = exception.mechanism.as_ref().is_some_and(|m| m.synthetic);
            let crash_function = frames
                .iter()
                .rev()
                .find_map(|f| non_empty(f.function.as_deref()));
            match crash_function.filter(|_| synthetic) {
                Some(function) => out.push(component(
                    "exception.function",
                    vec![clean_function(function)],
                )),
                None => out.push(component("exception.type", vec![exception_type(exception)])),
            }
            if has_frames {
                let mut previous: Option<Vec<String>> = None;
                for frame in frames.iter().filter(|f| !any_in_app || in_app(f)) {
                    let values = vec![
                        frame_location(frame),
                        clean_function(frame.function.as_deref().unwrap_or("")),
                    ];
                    if previous.as_ref() != Some(&values) {
                        out.push(component("frame", values.clone()));
                        previous = Some(values);
                    }
                }
            } else {
                let value = message::normalize(exception.value.as_deref().unwrap_or(""));
                out.push(component("exception.value", vec![value]));
            }
        }
        out
    }

    fn title(&self, event: &Event) -> String {
        if let Some(message) = synthetic_message(event) {
            return truncate(first_line(message).unwrap_or("<unlabeled event>"));
        }
        let Some(main) = event.main_exception() else {
            return MessageKind.title(event);
        };
        let ty = non_empty(main.ty.as_deref());
        let value = main.value.as_deref().and_then(first_line);
        truncate(&match (ty, value) {
            (Some(t), Some(v)) => format!("{t}: {v}"),
            (Some(t), None) => t.to_string(),
            (None, Some(v)) => v.to_string(),
            (None, None) => "<unlabeled exception>".to_string(),
        })
    }

    /// The innermost in-app frame of the main exception (the innermost frame when none is
    /// marked in-app) as `module in function`, else the transaction.
    fn culprit(&self, event: &Event) -> String {
        let stacks = exception_stacks(event);
        let frames = stacks.last().copied().unwrap_or(&[]);
        let frame = if frames.iter().any(in_app) {
            frames.iter().rev().find(|f| in_app(f))
        } else {
            frames.last()
        };
        frame
            .and_then(frame_culprit)
            .or_else(|| non_empty(event.transaction.as_deref()).map(str::to_string))
            .unwrap_or_default()
    }
}

impl Kind for MessageKind {
    fn name(&self) -> &str {
        "message"
    }

    fn matches(&self, event: &Event) -> bool {
        event.message.is_some()
    }

    /// The template before params (`logentry.message`), else the message, normalised; the
    /// logger is shown but does not contribute.
    fn components(&self, event: &Event) -> Vec<Component> {
        let mut out = vec![component("message", vec![message_key(event)])];
        if let Some(logger) = non_empty(event.logger.as_deref()) {
            out.push(Component {
                contributes: false,
                ..component("logger", vec![logger.to_string()])
            });
        }
        out
    }

    fn title(&self, event: &Event) -> String {
        let Some(m) = &event.message else {
            return "<unlabeled event>".to_string();
        };
        let line = first_line(&m.formatted).or_else(|| m.message.as_deref().and_then(first_line));
        truncate(line.unwrap_or("<unlabeled event>"))
    }

    fn culprit(&self, event: &Event) -> String {
        non_empty(event.logger.as_deref())
            .or_else(|| non_empty(event.transaction.as_deref()))
            .unwrap_or_default()
            .to_string()
    }
}

impl Kind for QueryKind {
    fn name(&self) -> &str {
        "query"
    }

    fn matches(&self, event: &Event) -> bool {
        event.query.is_some()
    }

    /// The canonical engine (see [`sql::canonical_engine`]), when known, and the SQL
    /// normalised in that engine's dialect.
    fn components(&self, event: &Event) -> Vec<Component> {
        let engine = query_engine(event);
        let mut out = Vec::new();
        if let Some(engine) = &engine {
            out.push(component("engine", vec![engine.clone()]));
        }
        out.push(component(
            "sql",
            vec![sql::normalize_for_engine(
                engine.as_deref(),
                query_text(event),
            )],
        ));
        out
    }

    fn title(&self, event: &Event) -> String {
        let sql = sql::normalize_for_engine(query_engine(event).as_deref(), query_text(event));
        if sql.is_empty() {
            "<empty query>".to_string()
        } else {
            truncate(&sql)
        }
    }

    /// `postgresql · /orders/`: the engine and the transaction, either alone when the other
    /// is unknown.
    fn culprit(&self, event: &Event) -> String {
        let engine = query_engine(event);
        let transaction = non_empty(event.transaction.as_deref());
        match (engine, transaction) {
            (Some(e), Some(t)) => format!("{e} · {t}"),
            (Some(e), None) => e,
            (None, Some(t)) => t.to_string(),
            (None, None) => String::new(),
        }
    }
}

impl Kind for TransactionKind {
    fn name(&self) -> &str {
        "transaction"
    }

    fn matches(&self, event: &Event) -> bool {
        event.kind == EventKind::Transaction
    }

    fn components(&self, event: &Event) -> Vec<Component> {
        let name = non_empty(event.transaction.as_deref()).unwrap_or("");
        vec![component("transaction", vec![name.to_string()])]
    }

    fn title(&self, event: &Event) -> String {
        truncate(non_empty(event.transaction.as_deref()).unwrap_or("<unlabeled transaction>"))
    }

    /// The request URL (the `url` tag, or the request's URL without its query).
    fn culprit(&self, event: &Event) -> String {
        if let Some(url) = non_empty(event.tag("url")) {
            return url.to_string();
        }
        let url = event
            .request
            .as_ref()
            .and_then(|r| non_empty(r.url.as_deref()))
            .unwrap_or("");
        url.split(['?', '#']).next().unwrap_or("").to_string()
    }
}

impl Kind for CustomKind {
    fn name(&self) -> &str {
        &self.name
    }

    fn matches(&self, event: &Event) -> bool {
        event.kind == EventKind::Custom(self.name.clone())
    }

    /// The normalised message (the kind name is in the hash already).
    fn components(&self, event: &Event) -> Vec<Component> {
        let text = event.message.as_ref().map(message_text).unwrap_or("");
        vec![component("message", vec![message::normalize(text)])]
    }

    fn title(&self, event: &Event) -> String {
        match event
            .message
            .as_ref()
            .and_then(|m| first_line(message_text(m)))
        {
            Some(line) => truncate(&format!("{}: {line}", self.name)),
            None => truncate(&self.name),
        }
    }

    fn culprit(&self, event: &Event) -> String {
        MessageKind.culprit(event)
    }
}

fn component(name: &str, values: Vec<String>) -> Component {
    Component {
        name: name.to_string(),
        values,
        contributes: true,
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The first non-empty line, trimmed.
fn first_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).find(|l| !l.is_empty())
}

/// At most [`MAX_TITLE`] characters; a cut string ends with `…`.
fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_TITLE {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_TITLE - 1).collect();
    out.push('…');
    out
}

/// The message of a synthetic exception that stands for a message sent with a stack trace
/// (the JavaScript SDK's `captureMessage` with `attachStacktrace`: `mechanism.synthetic`, no
/// type or a message beside it): the event's message, else the exception's value. A synthetic
/// exception with a type and no message (a native crash's signal) is not one: it groups by its
/// crash function.
fn synthetic_message(event: &Event) -> Option<&str> {
    let main = event.main_exception()?;
    if !main.mechanism.as_ref().is_some_and(|m| m.synthetic) {
        return None;
    }
    let from_message = event.message.as_ref().map(message_text).and_then(|m| non_empty(Some(m)));
    match (from_message, non_empty(main.ty.as_deref())) {
        (Some(m), _) => Some(m),
        (None, None) => non_empty(main.value.as_deref()),
        (None, Some(_)) => None,
    }
}

/// The formatted message, else the template.
fn message_text(m: &protocol::event::LogEntry) -> &str {
    if m.formatted.trim().is_empty() {
        m.message.as_deref().unwrap_or("")
    } else {
        &m.formatted
    }
}

/// What a message groups by: the template before params, else the message; normalised.
fn message_key(event: &Event) -> String {
    let Some(m) = &event.message else {
        return String::new();
    };
    // The template is normalised too: some clients send a plain message as `message`
    // without params, and a real template (`Payment %s declined`) has nothing to replace.
    match non_empty(m.message.as_deref()) {
        Some(template) => message::normalize(template),
        None => message::normalize(&m.formatted),
    }
}

fn exception_type(exception: &Exception) -> String {
    non_empty(exception.ty.as_deref()).unwrap_or("").to_string()
}

/// The frames of each exception; when no exception has any, the event's own stack trace
/// stands for the main exception's.
fn exception_stacks(event: &Event) -> Vec<&[Frame]> {
    let mut stacks: Vec<&[Frame]> = event
        .exceptions
        .iter()
        .map(|e| e.stacktrace.as_ref().map_or(&[][..], |s| &s.frames[..]))
        .collect();
    if stacks.iter().all(|s| s.is_empty())
        && let (Some(last), Some(st)) = (stacks.last_mut(), &event.stacktrace)
    {
        *last = &st.frames[..];
    }
    stacks
}

/// Whether a frame is the application's: marked in-app by the client and not one of the
/// frames some clients mark in-app wrongly (see [`is_system_frame`]).
fn in_app(frame: &Frame) -> bool {
    frame.in_app == Some(true) && !is_system_frame(frame)
}

/// Frames that are never the application's, whatever the client says: the Rust standard
/// library and toolchain (`std::`, `core::`, `alloc::`, `__rustc::`, `__rust_*`, paths under
/// `/rustc/`), crates from the cargo registry or git cache (the Sentry SDK itself, `anyhow`),
/// and the Python SDKs (`sentry_sdk`, `raven`). sentry-rust marks most of these in-app.
fn is_system_frame(frame: &Frame) -> bool {
    let function = frame
        .function
        .as_deref()
        .unwrap_or("")
        .trim()
        .trim_start_matches('<');
    let abs_path = frame.abs_path.as_deref().unwrap_or("");
    let module = frame.module.as_deref().unwrap_or("");
    const RUST_PREFIXES: [&str; 5] = ["std::", "core::", "alloc::", "__rustc::", "__rust_"];
    RUST_PREFIXES.iter().any(|p| function.starts_with(p))
        || function.contains("/rustc/")
        || abs_path.starts_with("/rustc/")
        || abs_path.contains("/.cargo/registry/")
        || abs_path.contains("/.cargo/git/")
        || ["sentry_sdk", "raven"]
            .iter()
            .any(|m| module == *m || module.strip_prefix(m).is_some_and(|r| r.starts_with('.')))
}

/// Where a frame is, for grouping: its module, else the basename of its file (never the
/// full path, which differs between machines, and never a line number).
fn frame_location(frame: &Frame) -> String {
    if let Some(module) = non_empty(frame.module.as_deref()) {
        return strip_addresses(module);
    }
    non_empty(frame.filename.as_deref())
        .or_else(|| non_empty(frame.abs_path.as_deref()))
        .map(basename)
        .unwrap_or_default()
}

/// The last path segment, without query or fragment, with content hashes (`main.3f2a1b9c.js`)
/// replaced so that a rebuilt bundle keeps its groups.
fn basename(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    name.split('.')
        .map(|part| {
            let hexy = part.len() >= 8
                && part.chars().all(|c| c.is_ascii_hexdigit())
                && part.chars().any(|c| c.is_ascii_digit());
            if hexy { "<hex>" } else { part }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A function name for grouping: Rust's `::h0123456789abcdef` hash suffix and any `:line:col`
/// suffix removed, memory addresses (`0x7f…`) replaced by `<addr>`; everything else
/// (`{{closure}}`, generics, `<lambda>`) kept.
fn clean_function(function: &str) -> String {
    let mut f = function.trim();
    // A location where a name should be (`at /src/lib.rs:359:14`, from backtraces the client
    // could not parse): the file's basename, without line and column.
    for _ in 0..2 {
        if let Some((head, tail)) = f.rsplit_once(':')
            && !tail.is_empty()
            && tail.chars().all(|c| c.is_ascii_digit())
        {
            f = head;
        }
    }
    if let Some(path) = f.strip_prefix("at ").filter(|p| p.contains(['/', '\\'])) {
        return format!("at {}", basename(path));
    }
    let f = match f.rfind("::h") {
        Some(i)
            if (8..=16).contains(&(f.len() - i - 3))
                && f[i + 3..].chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            &f[..i]
        }
        _ => f,
    };
    strip_addresses(f)
}

/// Replaces every `0x…` hex run that starts a word with `<addr>`.
fn strip_addresses(s: &str) -> String {
    // Most names hold no address at all: no need to look at them character by character.
    if !s.contains("0x") && !s.contains("0X") {
        return s.to_string();
    }
    let cs: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < cs.len() {
        let starts_word = i == 0 || !(cs[i - 1].is_alphanumeric() || cs[i - 1] == '_');
        if starts_word
            && cs[i] == '0'
            && matches!(cs.get(i + 1), Some('x' | 'X'))
            && cs.get(i + 2).is_some_and(char::is_ascii_hexdigit)
        {
            i += 2;
            while cs.get(i).is_some_and(char::is_ascii_hexdigit) {
                i += 1;
            }
            out.push_str("<addr>");
        } else {
            out.push(cs[i]);
            i += 1;
        }
    }
    out
}

/// `module in function` (or the file for the module), for culprits.
fn frame_culprit(frame: &Frame) -> Option<String> {
    let location = non_empty(frame.module.as_deref())
        .or_else(|| non_empty(frame.filename.as_deref()))
        .or_else(|| non_empty(frame.abs_path.as_deref()));
    match (location, non_empty(frame.function.as_deref())) {
        (Some(l), Some(f)) => Some(format!("{l} in {f}")),
        (Some(l), None) => Some(l.to_string()),
        (None, Some(f)) => Some(f.to_string()),
        (None, None) => None,
    }
}

fn query_engine(event: &Event) -> Option<String> {
    event
        .query
        .as_ref()
        .and_then(|q| q.engine.as_deref())
        .and_then(sql::canonical_engine)
}

/// The query text: the query interface's, else the message (clients that send SQL as the
/// message of a query event).
fn query_text(event: &Event) -> &str {
    match (&event.query, &event.message) {
        (Some(q), _) => &q.query,
        (None, Some(m)) => message_text(m),
        (None, None) => "",
    }
}

#[cfg(test)]
mod tests;
