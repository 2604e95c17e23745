//! The environment selector of the overview, the stream and the issue pages: which
//! environments a URL chooses (`?environment=production&environment=staging`, as Sentry's),
//! the choices (the values of the `environment` tag the projects have seen), and the links
//! that carry the choice from page to page.

use std::sync::Arc;

use store::{ProjectId, Store};

use super::format::url_encode;
use super::PageResult;

/// The URL parameter of the selector; repeated for several environments.
pub const PARAM: &str = "environment";
/// Most environments one URL chooses; the rest are left out, and the page says so.
pub const MAX: usize = 20;
/// Most choices the selector lists per project (the most frequent ones).
const CHOICES_PER_PROJECT: usize = 50;

/// The environments a URL chooses (each once, in order), and what was left out, if anything.
pub fn chosen(params: &[(String, String)]) -> (Vec<String>, Option<String>) {
    let mut envs: Vec<String> = Vec::new();
    let mut too_long = false;
    for (_, v) in params.iter().filter(|(k, _)| k == PARAM) {
        let v = v.trim();
        if v.chars().count() > protocol::event::MAX_TAG_VALUE_CHARS {
            too_long = true;
        } else if !v.is_empty() && !envs.iter().any(|e| e == v) {
            envs.push(v.to_string());
        }
    }
    if envs.len() > MAX {
        envs.truncate(MAX);
        return (envs, Some(format!("Only the first {MAX} environments were applied.")));
    }
    let refused = too_long.then(|| format!("An environment name is at most {} characters; a longer one was left out.", protocol::event::MAX_TAG_VALUE_CHARS));
    (envs, refused)
}

/// `environment=a&environment=b`, to append to a link (empty when none are chosen).
pub fn query(envs: &[String]) -> String {
    envs.iter().map(|e| format!("{PARAM}={}", url_encode(e))).collect::<Vec<_>>().join("&")
}

/// `href` with the chosen environments added to its query string.
pub fn carry(href: &str, envs: &[String]) -> String {
    if envs.is_empty() {
        return href.to_string();
    }
    let (path, fragment) = href.split_once('#').map_or((href, None), |(p, f)| (p, Some(f)));
    let sep = if path.contains('?') { '&' } else { '?' };
    let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
    format!("{path}{sep}{}{fragment}", query(envs))
}

/// The names as the page shows them: "production, staging", or "All environments".
pub fn label(envs: &[String]) -> String {
    if envs.is_empty() { "All environments".to_string() } else { envs.join(", ") }
}

/// The selector as a page shows it.
pub struct Selector {
    /// What the button says: the chosen names, or "All environments".
    pub label: String,
    /// (name, chosen) of every environment to choose from.
    pub choices: Vec<(String, bool)>,
    /// Where its form goes, and the page's other parameters that the form keeps.
    pub action: String,
    pub keep: Vec<(String, String)>,
    /// The page without any environment chosen.
    pub all_href: String,
    /// What the chosen environments don't narrow on this page ("" when they narrow it all).
    pub note: String,
}

impl Selector {
    /// The selector of a page at `action` whose other parameters are `keep`, listing the
    /// environments `projects` have seen (most events first) and the chosen ones.
    pub fn new(
        store: &Arc<dyn Store>,
        projects: &[ProjectId],
        chosen: &[String],
        action: &str,
        keep: Vec<(String, String)>,
        note: String,
    ) -> PageResult<Selector> {
        let mut seen: Vec<(String, u64)> = Vec::new();
        for p in projects {
            for t in store.project_tag_values(*p, PARAM, CHOICES_PER_PROJECT)? {
                match seen.iter_mut().find(|(v, _)| *v == t.value) {
                    Some(s) => s.1 += t.count,
                    None => seen.push((t.value, t.count)),
                }
            }
        }
        seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut choices: Vec<(String, bool)> = seen.into_iter().map(|(v, _)| { let c = chosen.contains(&v); (v, c) }).collect();
        for c in chosen.iter().rev() {
            if !choices.iter().any(|(v, _)| v == c) {
                choices.insert(0, (c.clone(), true));
            }
        }
        let keep: Vec<(String, String)> = keep.into_iter().filter(|(k, v)| k != PARAM && !v.is_empty()).collect();
        Ok(Selector {
            label: label(chosen),
            all_href: format!("{action}{}", super::format::query_string(&keep)),
            action: action.to_string(),
            keep,
            choices,
            note: if chosen.is_empty() { String::new() } else { note },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_url_chooses_each_environment_once_and_at_most_max() {
        let (envs, refused) = chosen(&pairs(&[("environment", "production"), ("sort", "x"), ("environment", " staging "), ("environment", "production"), ("environment", "")]));
        assert_eq!((envs, refused), (vec!["production".to_string(), "staging".into()], None));
        let many: Vec<(String, String)> = (0..30).map(|i| ("environment".to_string(), format!("e{i}"))).collect();
        let (envs, refused) = chosen(&many);
        assert_eq!(envs.len(), MAX);
        assert!(refused.unwrap().contains("first 20"));
        let (envs, refused) = chosen(&pairs(&[("environment", &"x".repeat(201))]));
        assert!(envs.is_empty() && refused.unwrap().contains("at most 200"));
    }

    #[test]
    fn links_carry_the_environments_before_their_fragment() {
        let envs = vec!["prod uction".to_string(), "a&b".into()];
        assert_eq!(carry("/p/x/issues/1/", &envs), "/p/x/issues/1/?environment=prod+uction&environment=a%26b");
        assert_eq!(carry("/p/x/issues/1/?interval=24h#events", &envs[..1]), "/p/x/issues/1/?interval=24h&environment=prod+uction#events");
        assert_eq!(carry("/p/x/", &[]), "/p/x/");
        assert_eq!(label(&[]), "All environments");
    }
}
