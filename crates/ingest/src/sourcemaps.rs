//! JavaScript frames resolved through uploaded source maps, in the applier's thread (where the
//! store may be read blocking), just before an event is written: the original file, line,
//! column, function name and source context replace each minified frame, the minified
//! stack trace is kept as `raw_stacktrace`, and the event is grouped again by the resolved
//! frames. The spool keeps the event as it arrived, so a retry resolves it again.
//!
//! A map is found by the debug id the SDK reports for the frame's file (`debug_meta.images`,
//! from `sentry-cli sourcemaps inject`), else by the event's release and dist and the file's
//! URL (`~/path`, the older upload), through the minified file's `Sourcemap` header or
//! `sourceMappingURL` comment, else `<file>.map`. A missing, malformed or mismatched map
//! leaves the frame as it was and says why in the event's `errors` (never an error of the
//! write). A function is named by the original name at its caller's call site (what the
//! caller called it), else by the map's name for the minified one. Parsed maps are cached, at
//! most [`CACHE_BYTES`] of map and source bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use grouping::GroupingConfig;
use protocol::Limits;
use serde_json::{json, Map, Value};
use sourcemap::{DecodedMap, SourceView};
use store::{ArtifactKind, NewEvent, OrgId, ProjectId, Store};

/// Bytes of maps and minified sources the cache keeps parsed at most.
pub const CACHE_BYTES: usize = 128 << 20;
/// Frames resolved per event at most.
const MAX_FRAMES: usize = 500;
/// Lines of source context on each side of a frame's line.
const CONTEXT_LINES: usize = 5;
/// Longest context line kept, in characters.
const MAX_LINE_CHARS: usize = 300;

/// A parsed map and, when uploaded, the minified file it belongs to.
struct Loaded {
    map: DecodedMap,
    minified: Option<SourceView>,
    /// The name the map was found by, shown on the frame.
    name: String,
}

/// What looking a map up found: a parsed map, or why there is none.
type Found = Result<Arc<Loaded>, String>;

/// How long a parsed map (or the reason it could not be parsed) is kept: an upload that
/// replaces it is used from then on.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Default)]
struct Cache {
    entries: HashMap<String, (Found, usize, std::time::Instant)>,
    order: VecDeque<String>,
    bytes: usize,
}

impl Cache {
    fn get(&self, key: &str) -> Option<Found> {
        self.entries.get(key).filter(|(_, _, at)| at.elapsed() < CACHE_TTL).map(|(f, _, _)| f.clone())
    }

    fn put(&mut self, key: String, found: Found, cost: usize) {
        if cost > CACHE_BYTES {
            return;
        }
        if let Some((_, c, _)) = self.entries.remove(&key) {
            self.bytes -= c;
            self.order.retain(|k| k != &key);
        }
        while self.bytes + cost > CACHE_BYTES {
            let Some(old) = self.order.pop_front() else { break };
            if let Some((_, c, _)) = self.entries.remove(&old) {
                self.bytes -= c;
            }
        }
        self.bytes += cost;
        self.order.push_back(key.clone());
        self.entries.insert(key, (found, cost, std::time::Instant::now()));
    }
}

/// Resolves events' JavaScript frames; one per pipeline.
pub struct Resolver {
    store: Arc<dyn Store>,
    cache: Mutex<Cache>,
    orgs: Mutex<HashMap<ProjectId, OrgId>>,
}

impl Resolver {
    pub fn new(store: Arc<dyn Store>) -> Resolver {
        Resolver { store, cache: Mutex::new(Cache::default()), orgs: Mutex::new(HashMap::new()) }
    }

    /// The event with its JavaScript frames resolved and grouped again, or as it was when it
    /// has none (or they need no map).
    pub fn resolve(&self, ev: NewEvent, limits: &Limits, grouping: &GroupingConfig) -> NewEvent {
        if !might_have_js(&ev.payload) {
            return ev;
        }
        let Ok(Value::Object(mut payload)) = serde_json::from_slice::<Value>(&ev.payload) else { return ev };
        let Some(org) = self.org(ev.project_id) else { return ev };
        let release = ev.tags.iter().find(|(k, _)| k == "release").map(|(_, v)| v.clone());
        let dist = payload.get("dist").and_then(Value::as_str).map(str::to_string);
        let ids = debug_ids(&payload);
        let mut errors = Vec::new();
        let mut budget = MAX_FRAMES;
        let mut changed = false;
        let mut lookup = |frame: &str| self.find(org, frame, &ids, release.as_deref(), dist.as_deref());
        for stack in stacktraces(&mut payload) {
            changed |= resolve_stack(stack, &mut lookup, &mut errors, &mut budget);
        }
        if !changed && errors.is_empty() {
            return ev;
        }
        if !errors.is_empty() {
            let list = payload.entry("errors").or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = list {
                list.extend(errors);
            }
        }
        let bytes = serde_json::to_vec(&Value::Object(payload)).unwrap_or_default();
        match protocol::event::normalize_slice(&bytes, limits, ev.received, Some(ev.event_id)) {
            Ok(event) => crate::process::new_event(ev.project_id, &event, bytes, grouping, ev.received),
            Err(e) => {
                tracing::warn!(error = %e, "an event with resolved frames did not normalise; stored as it arrived");
                ev
            }
        }
    }

    fn org(&self, project: ProjectId) -> Option<OrgId> {
        if let Some(org) = self.orgs.lock().ok()?.get(&project) {
            return Some(*org);
        }
        let org = self.store.project(project).ok()??.org_id;
        self.orgs.lock().ok()?.insert(project, org);
        Some(org)
    }

    /// The map of the minified file at URL `file`.
    fn find(&self, org: OrgId, file: &str, ids: &HashMap<String, String>, release: Option<&str>, dist: Option<&str>) -> Found {
        let key = match ids.get(file) {
            Some(id) => format!("{}|id|{id}", org.0),
            None => match release {
                Some(r) => format!("{}|rel|{r}|{}|{file}", org.0, dist.unwrap_or_default()),
                None => return Err(format!("no source map: the event names no debug id for {file}, and no release")),
            },
        };
        if let Some(found) = self.cache.lock().ok().and_then(|c| c.get(&key)) {
            return found;
        }
        let (found, cost) = match ids.get(file) {
            Some(id) => self.load_by_debug_id(org, id),
            None => self.load_by_name(org, file, release.unwrap_or_default(), dist),
        };
        // A map not found (or not readable now) is looked up again next time: it may be
        // uploaded in a moment.
        if cost > 0
            && let Ok(mut c) = self.cache.lock()
        {
            c.put(key, found.clone(), cost);
        }
        found
    }

    fn load_by_debug_id(&self, org: OrgId, id: &str) -> (Found, usize) {
        let map = match self.store.artifact_by_debug_id(org, id, ArtifactKind::SourceMap) {
            Ok(Some(m)) => m,
            Ok(None) => return (Err(format!("source map not found for debug id {id}")), 0),
            Err(e) => return (Err(format!("the source map for debug id {id} could not be read: {e}")), 0),
        };
        let minified = self.store.artifact_by_debug_id(org, id, ArtifactKind::MinifiedSource).ok().flatten();
        parse(map.0.name.clone(), &map.1, minified.map(|m| m.1))
    }

    fn load_by_name(&self, org: OrgId, file: &str, release: &str, dist: Option<&str>) -> (Found, usize) {
        let names = tilde_names(file);
        let mut minified = None;
        for n in &names {
            if let Ok(Some(m)) = self.store.artifact_by_name(org, release, dist, n) {
                minified = Some(m);
                break;
            }
        }
        let base = minified.as_ref().map(|m| m.0.name.clone()).unwrap_or_else(|| names.last().cloned().unwrap_or_default());
        let mut map_names = Vec::new();
        if let Some((a, data)) = &minified {
            let header = a.headers.as_deref().and_then(|h| serde_json::from_str::<Map<String, Value>>(h).ok()).and_then(|h| {
                h.iter().find(|(k, _)| k.eq_ignore_ascii_case("sourcemap") || k.eq_ignore_ascii_case("x-sourcemap")).and_then(|(_, v)| v.as_str().map(str::to_string))
            });
            let comment = source_mapping_url(data);
            for r in header.into_iter().chain(comment) {
                map_names.push(join(&base, &r));
            }
        }
        map_names.push(format!("{base}.map"));
        for n in &map_names {
            match self.store.artifact_by_name(org, release, dist, n) {
                Ok(Some((a, data))) => return parse(a.name, &data, minified.map(|m| m.1)),
                Ok(None) => {}
                Err(e) => return (Err(format!("the source map {n} could not be read: {e}")), 0),
            }
        }
        (Err(format!("source map not found for {file} in release {release} (looked for {})", map_names.join(", "))), 0)
    }
}

/// Parses a map (and its minified file), with what it costs the cache.
fn parse(name: String, data: &[u8], minified: Option<Vec<u8>>) -> (Found, usize) {
    let cost = (data.len() * 2 + minified.as_ref().map_or(0, Vec::len)).max(64);
    let map = match sourcemap::decode_slice(data) {
        Ok(m) => m,
        Err(e) => return (Err(format!("the source map {name} is not valid: {e}")), data.len().clamp(64, 1024)),
    };
    let minified = minified.and_then(|m| String::from_utf8(m).ok()).map(SourceView::from_string);
    (Ok(Arc::new(Loaded { map, minified, name })), cost)
}

/// Cheaply: may the payload hold frames of JavaScript files?
fn might_have_js(payload: &[u8]) -> bool {
    let has = |needle: &[u8]| payload.windows(needle.len()).any(|w| w == needle);
    has(b"\"colno\"") && (has(b".js\"") || has(b".mjs\"") || has(b".cjs\""))
}

/// `debug_meta.images` of type `sourcemap`: file URL → debug id.
fn debug_ids(payload: &Map<String, Value>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let images = payload.get("debug_meta").and_then(|d| d.get("images")).and_then(Value::as_array);
    for img in images.into_iter().flatten() {
        if img.get("type").and_then(Value::as_str) != Some("sourcemap") {
            continue;
        }
        if let (Some(file), Some(id)) = (img.get("code_file").and_then(Value::as_str), img.get("debug_id").and_then(Value::as_str)) {
            out.insert(file.to_string(), id.to_ascii_lowercase());
        }
    }
    out
}

/// The exceptions of the event whose stack traces may be resolved (a thread's or the
/// event's own stack trace is left as it is).
fn stacktraces(payload: &mut Map<String, Value>) -> Vec<&mut Map<String, Value>> {
    let list = match payload.get_mut("exception") {
        Some(Value::Object(o)) => o.get_mut("values").and_then(Value::as_array_mut),
        Some(Value::Array(a)) => Some(a),
        _ => None,
    };
    list.into_iter().flatten().filter_map(Value::as_object_mut).filter(|e| e.get("stacktrace").is_some_and(Value::is_object)).collect()
}

/// Resolves one exception's frames (`exc["stacktrace"]`), keeping the minified ones as
/// `raw_stacktrace`. True when a frame changed.
fn resolve_stack(
    exc: &mut Map<String, Value>,
    lookup: &mut impl FnMut(&str) -> Found,
    errors: &mut Vec<Value>,
    budget: &mut usize,
) -> bool {
    let Some(Value::Object(stack)) = exc.get("stacktrace") else { return false };
    let Some(Value::Array(frames)) = stack.get("frames") else { return false };
    let raw = Value::Object(stack.clone());
    let mut out = Vec::with_capacity(frames.len());
    let mut changed = false;
    // The original name at the caller's call site, which names the function being called:
    // frames run from the outermost call to the innermost.
    let mut callee: Option<String> = None;
    for f in frames {
        let resolved = match (f.as_object(), *budget > 0) {
            (Some(frame), true) => resolve_frame(frame, lookup, errors),
            _ => None,
        };
        match resolved {
            Some((mut r, call_site)) => {
                *budget -= 1;
                changed = true;
                if let Some(name) = callee.take() {
                    r.insert("function".into(), json!(name));
                }
                callee = call_site;
                out.push(Value::Object(r));
            }
            None => {
                callee = None;
                out.push(f.clone());
            }
        }
    }
    if changed {
        let mut stack = stack.clone();
        stack.insert("frames".into(), Value::Array(out));
        exc.insert("stacktrace".into(), Value::Object(stack));
        exc.insert("raw_stacktrace".into(), raw);
    }
    changed
}

/// One frame resolved, with the original name at its position (the function it calls), or
/// `None` (with the reason in `errors` when a map was wanted).
fn resolve_frame(
    frame: &Map<String, Value>,
    lookup: &mut impl FnMut(&str) -> Found,
    errors: &mut Vec<Value>,
) -> Option<(Map<String, Value>, Option<String>)> {
    let file = frame.get("abs_path").or_else(|| frame.get("filename")).and_then(Value::as_str)?;
    if !is_js(file) || file.contains("/node_modules/") || file.starts_with("node:") {
        return None;
    }
    let line = frame.get("lineno").and_then(Value::as_u64)?;
    let col = frame.get("colno").and_then(Value::as_u64)?;
    if line == 0 || col == 0 || line > u32::MAX as u64 || col > u32::MAX as u64 {
        return None;
    }
    let loaded = match lookup(file) {
        Ok(l) => l,
        Err(why) => {
            push_error(errors, "js_no_source", file, why);
            return None;
        }
    };
    let (l, c) = (line as u32 - 1, col as u32 - 1);
    let Some(token) = loaded.map.lookup_token(l, c) else {
        push_error(errors, "js_invalid_source", file, format!("the source map {} has no mapping for line {line}, column {col}: it does not belong to this file", loaded.name));
        return None;
    };
    let Some(src) = token.get_source() else {
        push_error(errors, "js_invalid_source", file, format!("the source map {} names no source file for line {line}, column {col}", loaded.name));
        return None;
    };
    let (src_line, src_col) = (token.get_src_line(), token.get_src_col());
    let minified_name = frame.get("function").and_then(Value::as_str);
    let function = loaded
        .map
        .get_original_function_name(l, c, minified_name, loaded.minified.as_ref())
        .map(str::to_string)
        .or_else(|| minified_name.map(str::to_string));
    let mut out = frame.clone();
    let clean = src.trim_start_matches("webpack://").trim_start_matches("../").trim_start_matches("./").to_string();
    out.insert("filename".into(), json!(clean));
    out.insert("abs_path".into(), json!(src));
    out.insert("lineno".into(), json!(src_line + 1));
    out.insert("colno".into(), json!(src_col + 1));
    if let Some(f) = function {
        out.insert("function".into(), json!(f));
    }
    out.insert("in_app".into(), json!(!src.contains("node_modules")));
    for k in ["context_line", "pre_context", "post_context", "module"] {
        out.remove(k);
    }
    if let Some(view) = source_view(&loaded.map, token.get_src_id()) {
        let n = src_line as usize;
        let line_at = |i: usize| view.get_line(i as u32).map(|s| s.chars().take(MAX_LINE_CHARS).collect::<String>());
        if let Some(cl) = line_at(n) {
            out.insert("context_line".into(), json!(cl));
            let pre: Vec<String> = (n.saturating_sub(CONTEXT_LINES)..n).filter_map(line_at).collect();
            let post: Vec<String> = (n + 1..n + 1 + CONTEXT_LINES).filter_map(line_at).collect();
            out.insert("pre_context".into(), json!(pre));
            out.insert("post_context".into(), json!(post));
        }
    }
    out.insert("data".into(), json!({"sourcemap": loaded.name, "resolved_with": "source map"}));
    Some((out, token.get_name().map(str::to_string)))
}

fn source_view(map: &DecodedMap, src_id: u32) -> Option<&SourceView> {
    match map {
        DecodedMap::Regular(sm) => sm.get_source_view(src_id),
        _ => None,
    }
}

fn push_error(errors: &mut Vec<Value>, ty: &str, url: &str, reason: String) {
    if errors.len() < 20 && !errors.iter().any(|e| e["url"] == url) {
        errors.push(json!({"type": ty, "url": url, "reason": reason}));
    }
}

fn is_js(file: &str) -> bool {
    let path = file.split(['?', '#']).next().unwrap_or(file);
    [".js", ".mjs", ".cjs", ".jsx"].iter().any(|e| path.ends_with(e))
}

/// The names a release's file may have been uploaded under: the URL as it is, and `~/` with
/// its path (without scheme and host).
fn tilde_names(file: &str) -> Vec<String> {
    let path = file.split(['?', '#']).next().unwrap_or(file);
    let rest = match path.split_once("://") {
        Some((_, r)) => r.find('/').map_or("", |i| &r[i..]),
        None => path,
    };
    let mut out = vec![path.to_string()];
    let tilde = format!("~/{}", rest.trim_start_matches('/'));
    if tilde != path {
        out.push(tilde);
    }
    out
}

/// `base`'s directory joined with `reference` (an absolute URL or `~/` name stays as it is).
fn join(base: &str, reference: &str) -> String {
    if reference.contains("://") || reference.starts_with("~/") {
        return reference.to_string();
    }
    match base.rfind('/') {
        Some(i) => format!("{}/{}", &base[..i], reference.trim_start_matches("./")),
        None => reference.to_string(),
    }
}

/// The `//# sourceMappingURL=` of a minified file, from its last lines.
fn source_mapping_url(data: &[u8]) -> Option<String> {
    let tail = &data[data.len().saturating_sub(4096)..];
    let text = String::from_utf8_lossy(tail);
    text.lines().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("//# sourceMappingURL=").or_else(|| l.strip_prefix("//@ sourceMappingURL=")).map(|u| u.trim().to_string())
    }).filter(|u| !u.starts_with("data:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let mut c = Cache::default();
        for key in ["a", "b", "c"] {
            c.put(key.into(), Err(key.into()), CACHE_BYTES / 2);
        }
        assert!(c.get("a").is_none() && c.get("b").is_some() && c.get("c").is_some());
        c.put("c".into(), Err("again".into()), 100);
        assert_eq!(c.bytes, CACHE_BYTES / 2 + 100);
        c.put("huge".into(), Err("no".into()), CACHE_BYTES + 1);
        assert!(c.get("huge").is_none(), "what is larger than the cache is not kept");
    }

    #[test]
    fn names_and_references() {
        assert_eq!(tilde_names("http://example.com/static/app.js?v=1"), ["http://example.com/static/app.js", "~/static/app.js"]);
        assert_eq!(tilde_names("/srv/dist/app.min.js"), ["/srv/dist/app.min.js", "~/srv/dist/app.min.js"]);
        assert_eq!(join("~/dist/app.min.js", "app.min.js.map"), "~/dist/app.min.js.map");
        assert_eq!(join("~/dist/app.min.js", "~/maps/a.map"), "~/maps/a.map");
        assert_eq!(source_mapping_url(b"x()\n//# sourceMappingURL=app.js.map\n").as_deref(), Some("app.js.map"));
        assert!(might_have_js(br#"{"abs_path":"/a/b.js","colno":3}"#));
        assert!(!might_have_js(br#"{"abs_path":"/a/b.py","lineno":3}"#));
    }
}
