//! The Filter API (the seed's): a filter is a **processor**, which narrows the stream query
//! (by a tag value, the level, the status, a time range, text), and a **renderer**, which says
//! how it is shown (a select with the top values and their counts, a search input, a set of
//! toggles) and with which choices.
//!
//! Projects list the filters of their stream as `slices` in the config file
//! (`[projects.<slug>] slices = ["level", "server", { tag = "customer", widget = "search" }]`);
//! [`check_slice`] is what `sentry config check` uses to refuse unknown names. The search box
//! speaks the same filters and more (see [`super::search`]): `level:error server:web-1 is:resolved some words`.
//!
//! Adding a built-in filter: write one type implementing [`Filter`] and name it in [`builtin`]
//! and [`BUILTIN_NAMES`].

use std::sync::Arc;
use protocol::Level;
use serde::Serialize;
use store::{GroupStatus, ProjectId, StatusFilter, Store, StreamQuery};

use super::search::{self, SearchContext};

/// How a filter is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Widget {
    /// A drop-down of the most frequent values, with their counts.
    Select,
    /// A text input: any value.
    Search,
    /// One button per value; the chosen one is highlighted.
    Toggles,
}

impl Widget {
    pub const NAMES: &'static [&'static str] = &["select", "search", "toggles"];

    pub fn parse(s: &str) -> Option<Widget> {
        Some(match s {
            "select" => Widget::Select,
            "search" => Widget::Search,
            "toggles" => Widget::Toggles,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Widget::Select => "select",
            Widget::Search => "search",
            Widget::Toggles => "toggles",
        }
    }
}

/// One value a widget offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub value: String,
    pub count: Option<u64>,
}

/// A filter: how it narrows the stream (processor) and what it offers (renderer).
pub trait Filter: Send + Sync {
    /// Its name in the URL and in the search box (`level`, `server`, a tag key).
    fn param(&self) -> &str;
    /// What the person reads next to it.
    fn label(&self) -> String;
    /// The widget used unless the config names another.
    fn default_widget(&self) -> Widget;
    /// The processor: narrows the query to `value`, or says why the value can't be used.
    fn apply(&self, value: &str, q: &mut StreamQuery) -> Result<(), String>;
    /// The renderer's choices for a project, most frequent first.
    fn choices(&self, store: &Arc<dyn Store>, project_id: ProjectId) -> store::Result<Vec<Choice>>;
}

/// Filters that can be named in `slices` as a plain string.
pub const BUILTIN_NAMES: &[&str] =
    &["level", "logger", "server", "environment", "release", "url", "transaction", "browser", "os", "user"];

/// The slices of a project that the config does not mention.
pub const DEFAULT_SLICES: &[&str] = &["level", "logger", "server", "environment", "release"];

/// URL parameters of the stream that a tag filter can't take as its name.
pub const RESERVED_PARAMS: &[&str] = &["sort", "interval", "status", "q", "cursor", "fragment", "is"];

/// The built-in filter called `name`.
pub fn builtin(name: &str) -> Option<Box<dyn Filter>> {
    match name {
        "level" => Some(Box::new(LevelFilter)),
        _ if BUILTIN_NAMES.contains(&name) => Some(Box::new(TagFilter { key: name.to_string() })),
        _ => None,
    }
}

/// A filter as the config lists it, checked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SliceSpec {
    /// A built-in filter's name, or a tag key (with `tag = "…"`).
    pub name: String,
    /// Whether `name` is any tag (`{ tag = "customer" }`) rather than a built-in filter.
    pub is_tag: bool,
    pub widget: Option<Widget>,
}

impl SliceSpec {
    pub fn filter(&self) -> Box<dyn Filter> {
        if self.is_tag {
            Box::new(TagFilter { key: self.name.clone() })
        } else {
            builtin(&self.name).unwrap_or_else(|| Box::new(TagFilter { key: self.name.clone() }))
        }
    }

    pub fn widget(&self) -> Widget {
        self.widget.unwrap_or_else(|| self.filter().default_widget())
    }
}

/// Checks one entry of `slices`: either a built-in filter (`"level"`, or
/// `{ filter = "level", widget = "toggles" }`) or any tag (`{ tag = "customer", widget =
/// "search" }`). The error says what is valid.
pub fn check_slice(filter: Option<&str>, tag: Option<&str>, widget: Option<&str>) -> Result<SliceSpec, String> {
    let widget = match widget {
        None => None,
        Some(w) => Some(Widget::parse(w).ok_or_else(|| {
            format!("unknown widget \"{w}\"; valid widgets are: {}", Widget::NAMES.join(", "))
        })?),
    };
    match (filter, tag) {
        (Some(_), Some(_)) => Err("give either `filter` or `tag`, not both".into()),
        (None, None) => Err(format!(
            "a slice needs a filter name ({}) or `tag = \"KEY\"` for any tag",
            BUILTIN_NAMES.join(", ")
        )),
        (Some(f), None) => {
            if builtin(f).is_none() {
                return Err(format!(
                    "unknown filter \"{f}\"; valid filters are: {}; for any other tag write {{ tag = \"{f}\" }}",
                    BUILTIN_NAMES.join(", ")
                ));
            }
            Ok(SliceSpec { name: f.to_string(), is_tag: false, widget })
        }
        (None, Some(t)) => {
            let t = t.trim();
            if t.is_empty() || t.len() > protocol::event::MAX_TAG_KEY_BYTES || t.chars().any(|c| c.is_whitespace() || c == ':') {
                return Err(format!("\"{t}\" can't be a tag key: use letters, digits, dots, dashes or underscores"));
            }
            if RESERVED_PARAMS.contains(&t) {
                return Err(format!("the tag \"{t}\" can't be a slice: {} are taken by the stream", RESERVED_PARAMS.join(", ")));
            }
            Ok(SliceSpec { name: t.to_string(), is_tag: true, widget })
        }
    }
}

/// The default slices, as specs.
pub fn default_slices() -> Vec<SliceSpec> {
    DEFAULT_SLICES.iter().map(|n| SliceSpec { name: n.to_string(), is_tag: false, widget: None }).collect()
}

/// Any tag value.
pub struct TagFilter {
    pub key: String,
}

impl Filter for TagFilter {
    fn param(&self) -> &str {
        &self.key
    }
    fn label(&self) -> String {
        let mut c = self.key.chars();
        c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
    }
    fn default_widget(&self) -> Widget {
        Widget::Select
    }
    fn apply(&self, value: &str, q: &mut StreamQuery) -> Result<(), String> {
        q.tags.push((self.key.clone(), value.to_string()));
        Ok(())
    }
    fn choices(&self, store: &Arc<dyn Store>, project_id: ProjectId) -> store::Result<Vec<Choice>> {
        Ok(store
            .project_tag_values(project_id, &self.key, 10)?
            .into_iter()
            .map(|t| Choice { value: t.value, count: Some(t.count) })
            .collect())
    }
}

/// The level (fatal, error, warning, info, debug), as clients name it in any of their ways.
pub struct LevelFilter;

impl Filter for LevelFilter {
    fn param(&self) -> &str {
        "level"
    }
    fn label(&self) -> String {
        "Level".into()
    }
    fn default_widget(&self) -> Widget {
        Widget::Toggles
    }
    fn apply(&self, value: &str, q: &mut StreamQuery) -> Result<(), String> {
        let level = Level::parse(value).ok_or_else(|| format!("\"{value}\" is not a level: use fatal, error, warning, info or debug"))?;
        q.tags.push(("level".into(), level.as_str().into()));
        Ok(())
    }
    fn choices(&self, store: &Arc<dyn Store>, project_id: ProjectId) -> store::Result<Vec<Choice>> {
        let counts = store.project_tag_values(project_id, "level", 20)?;
        Ok(["fatal", "error", "warning", "info", "debug"]
            .iter()
            .map(|l| Choice { value: l.to_string(), count: Some(counts.iter().find(|c| c.value == *l).map_or(0, |c| c.count)) })
            .collect())
    }
}

/// The triage status (`is:resolved`).
pub struct StatusFilterKind;

impl Filter for StatusFilterKind {
    fn param(&self) -> &str {
        "is"
    }
    fn label(&self) -> String {
        "Status".into()
    }
    fn default_widget(&self) -> Widget {
        Widget::Toggles
    }
    fn apply(&self, value: &str, q: &mut StreamQuery) -> Result<(), String> {
        q.status = match value {
            "all" => StatusFilter::All,
            v => StatusFilter::Only(
                GroupStatus::parse(v).ok_or_else(|| format!("\"is:{v}\": use is:unresolved, is:resolved or is:ignored"))?,
            ),
        };
        Ok(())
    }
    fn choices(&self, _: &Arc<dyn Store>, _: ProjectId) -> store::Result<Vec<Choice>> {
        Ok(["unresolved", "resolved", "ignored"].iter().map(|v| Choice { value: v.to_string(), count: None }).collect())
    }
}

/// A time range: groups seen within the last interval.
pub struct IntervalFilter;

/// The intervals offered, with their length in seconds (`None`: all time).
pub const INTERVALS: &[(&str, Option<f64>)] = &[
    ("15m", Some(900.0)),
    ("1h", Some(3600.0)),
    ("24h", Some(86400.0)),
    ("7d", Some(7.0 * 86400.0)),
    ("30d", Some(30.0 * 86400.0)),
    ("all", None),
];

impl Filter for IntervalFilter {
    fn param(&self) -> &str {
        "interval"
    }
    fn label(&self) -> String {
        "Interval".into()
    }
    fn default_widget(&self) -> Widget {
        Widget::Toggles
    }
    fn apply(&self, value: &str, q: &mut StreamQuery) -> Result<(), String> {
        let (_, secs) = INTERVALS
            .iter()
            .find(|(n, _)| *n == value)
            .ok_or_else(|| format!("\"{value}\" is not an interval: use 15m, 1h, 24h, 7d, 30d or all"))?;
        q.since = secs.map(|s| q.now - s);
        Ok(())
    }
    fn choices(&self, _: &Arc<dyn Store>, _: ProjectId) -> store::Result<Vec<Choice>> {
        Ok(INTERVALS.iter().map(|(n, _)| Choice { value: n.to_string(), count: None }).collect())
    }
}

/// Free text: every word must appear in the title or the culprit.
pub struct TextFilter;

impl Filter for TextFilter {
    fn param(&self) -> &str {
        "q"
    }
    fn label(&self) -> String {
        "Search".into()
    }
    fn default_widget(&self) -> Widget {
        Widget::Search
    }
    fn apply(&self, value: &str, q: &mut StreamQuery) -> Result<(), String> {
        q.text.push(value.to_string());
        Ok(())
    }
    fn choices(&self, _: &Arc<dyn Store>, _: ProjectId) -> store::Result<Vec<Choice>> {
        Ok(Vec::new())
    }
}

/// Longest search box text, in characters: a longer one is not applied.
pub const MAX_SEARCH_CHARS: usize = 1000;
/// Most terms (words and `key:value` pairs) of the search box applied; the rest are not.
pub const MAX_SEARCH_TERMS: usize = 20;

/// Applies the search box to a query; returns the problems to show (the rest still applies).
/// A search longer than [`MAX_SEARCH_CHARS`] is not applied at all, and only its first
/// [`MAX_SEARCH_TERMS`] terms are: each word becomes a pattern in the database's query. The
/// language is [`super::search`]'s.
pub fn apply_search(q: &str, query: &mut StreamQuery, ctx: &SearchContext) -> Vec<String> {
    let mut problems = Vec::new();
    if q.chars().nth(MAX_SEARCH_CHARS).is_some() {
        problems.push(format!("the search is longer than {MAX_SEARCH_CHARS} characters, so it was not applied; shorten it"));
        return problems;
    }
    let mut terms = search::parse(q);
    if terms.len() > MAX_SEARCH_TERMS {
        problems.push(format!(
            "the search has {} terms; only the first {MAX_SEARCH_TERMS} were applied",
            terms.len()
        ));
        terms.truncate(MAX_SEARCH_TERMS);
    }
    let lowering = search::Lowering { ctx };
    for term in terms {
        if let Err(p) = term.and_then(|t| lowering.apply(&t, query)) {
            problems.push(p);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::TagCondition;

    #[test]
    fn search_narrows_the_query() {
        let mut q = StreamQuery::new(ProjectId(1), 1000.0);
        let problems = apply_search("level:warn customer:acme is:resolved boom interval:1h level:loud", &mut q, &SearchContext::default());
        assert_eq!(q.conditions, vec![TagCondition::any_of("level", vec!["warning".into()]), TagCondition::any_of("customer", vec!["acme".into()])]);
        assert_eq!(q.status, StatusFilter::Only(GroupStatus::Resolved));
        assert_eq!(q.text, vec!["boom".to_string()]);
        assert_eq!(q.since, Some(1000.0 - 3600.0));
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn long_searches_are_capped() {
        let mut q = StreamQuery::new(ProjectId(1), 1000.0);
        let problems = apply_search(&"x".repeat(60_000), &mut q, &SearchContext::default());
        assert!(q.text.is_empty());
        assert_eq!(problems, ["the search is longer than 1000 characters, so it was not applied; shorten it"]);
        // Exactly the limit is applied.
        let mut q = StreamQuery::new(ProjectId(1), 1000.0);
        assert!(apply_search(&"é".repeat(MAX_SEARCH_CHARS), &mut q, &SearchContext::default()).is_empty());
        assert_eq!(q.text.len(), 1);
        // Too many words: the first 20 apply.
        let words: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
        let mut q = StreamQuery::new(ProjectId(1), 1000.0);
        let problems = apply_search(&words.join(" "), &mut q, &SearchContext::default());
        assert_eq!(q.text, words[..MAX_SEARCH_TERMS]);
        assert_eq!(problems, ["the search has 30 terms; only the first 20 were applied"]);
        let mut q = StreamQuery::new(ProjectId(1), 1000.0);
        assert_eq!(apply_search(&vec!["w"; 15_000].join(" "), &mut q, &SearchContext::default()).len(), 1, "15,000 words are 30,000 characters");
    }

    #[test]
    fn slices_are_checked() {
        assert_eq!(check_slice(Some("level"), None, None).unwrap().widget(), Widget::Toggles);
        let s = check_slice(None, Some("customer"), Some("search")).unwrap();
        assert_eq!((s.is_tag, s.widget()), (true, Widget::Search));
        let e = check_slice(Some("lvl"), None, None).unwrap_err();
        assert!(e.contains("unknown filter \"lvl\"") && e.contains("level, logger"), "{e}");
        let e = check_slice(Some("level"), None, Some("dropdown")).unwrap_err();
        assert!(e.contains("select, search, toggles"), "{e}");
        assert!(check_slice(None, Some("sort"), None).is_err());
    }
}
