//! Where the config file names a project by its slug (`[projects.<slug>]`, a rule's
//! `project = "<slug>"`), with the line, so that `sentry config check` can warn about a slug
//! that names no project in the store (a typo, or a project not created yet).

use toml::de::{DeTable, DeValue};

/// One place where the file names a project.
#[derive(Clone, Debug, PartialEq)]
pub struct SlugMention {
    /// The line in the file, from 1.
    pub line: usize,
    pub slug: String,
    /// How it is written, for the message: `[projects.shop]` or `project = "shop"`.
    pub written: String,
}

/// Every project slug the TOML `text` names, in file order. A file that does not parse names
/// none (loading it reports the problem).
pub fn slug_mentions(text: &str) -> Vec<SlugMention> {
    let Ok(doc) = DeTable::parse(text) else { return Vec::new() };
    let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut out = Vec::new();
    for (name, value) in doc.get_ref().iter() {
        match (name.get_ref().as_ref(), value.get_ref()) {
            ("projects", DeValue::Table(projects)) => {
                for (slug, _) in projects.iter() {
                    out.push(SlugMention {
                        line: line(slug.span().start),
                        slug: slug.get_ref().to_string(),
                        written: format!("[projects.{}]", slug.get_ref()),
                    });
                }
            }
            ("rules", DeValue::Array(rules)) => {
                for rule in rules {
                    let DeValue::Table(table) = rule.get_ref() else { continue };
                    if let Some((_, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == "project")
                        && let DeValue::String(slug) = v.get_ref()
                    {
                        out.push(SlugMention {
                            line: line(v.span().start),
                            slug: slug.to_string(),
                            written: format!("[[rules]] project = \"{slug}\""),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(|m| m.line);
    out
}

#[cfg(test)]
mod tests {
    use super::slug_mentions;

    #[test]
    fn project_tables_and_rules_are_found_at_their_lines() {
        let text = "bind = \"127.0.0.1:9000\"\n\n[projects.shop]\nslices = [\"level\"]\n\n\
                    [[rules]]\nproject = \"default\"\nwhen = \"new_group\"\n\n\
                    [[rules]]\nwhen = \"new_group\"\nproject = \"shp\"\n";
        let found: Vec<(usize, String, String)> =
            slug_mentions(text).into_iter().map(|m| (m.line, m.slug, m.written)).collect();
        assert_eq!(
            found,
            vec![
                (3, "shop".into(), "[projects.shop]".into()),
                (7, "default".into(), "[[rules]] project = \"default\"".into()),
                (12, "shp".into(), "[[rules]] project = \"shp\"".into()),
            ]
        );
        assert!(slug_mentions("not = [toml").is_empty());
    }
}
