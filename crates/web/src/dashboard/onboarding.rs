//! What an empty project shows: its DSN to copy and how to set up each common SDK with it,
//! on the project's stream until its first event arrives and always on its settings page.
//! The DSN comes from [`super::settings::dsn`]; the snippets only insert it.

/// One SDK's set-up: how to install it and the lines that send a first event.
pub struct Snippet {
    /// A stable id for the page (`setup-python`).
    pub id: &'static str,
    pub label: &'static str,
    pub install: &'static str,
    pub code: String,
}

/// The DSN of a project's first active key and the SDK snippets filled in with it.
pub struct Guide {
    pub dsn: String,
    pub snippets: Vec<Snippet>,
}

impl Guide {
    pub fn new(dsn: String) -> Guide {
        let snippets = SNIPPETS
            .iter()
            .map(|(id, label, install, code)| Snippet { id, label, install, code: code.replace("{DSN}", &dsn) })
            .collect();
        Guide { dsn, snippets }
    }
}

/// (id, label, install command, code with `{DSN}` where the DSN goes).
const SNIPPETS: &[(&str, &str, &str, &str)] = &[
    (
        "setup-python",
        "Python (sentry-sdk)",
        "pip install sentry-sdk",
        "import sentry_sdk\n\nsentry_sdk.init(dsn=\"{DSN}\")\n\n# Try it: an error that is sent to this project.\ndivision_by_zero = 1 / 0",
    ),
    (
        "setup-django",
        "Django (sentry-sdk)",
        "pip install \"sentry-sdk[django]\"",
        "# settings.py: the Django integration turns on by itself.\nimport sentry_sdk\n\nsentry_sdk.init(\n    dsn=\"{DSN}\",\n    send_default_pii=True,\n)",
    ),
    (
        "setup-browser",
        "JavaScript in the browser (@sentry/browser)",
        "npm install @sentry/browser",
        "import * as Sentry from \"@sentry/browser\";\n\nSentry.init({ dsn: \"{DSN}\" });\n\n// Try it:\nSentry.captureException(new Error(\"my first error\"));",
    ),
    (
        "setup-node",
        "Node.js (@sentry/node)",
        "npm install @sentry/node",
        "// Load this before anything else.\nconst Sentry = require(\"@sentry/node\");\n\nSentry.init({ dsn: \"{DSN}\" });\n\n// Try it:\nSentry.captureException(new Error(\"my first error\"));",
    ),
    (
        "setup-rust",
        "Rust (sentry crate)",
        "cargo add sentry",
        "fn main() {\n    let _guard = sentry::init((\"{DSN}\", sentry::ClientOptions {\n        release: sentry::release_name!(),\n        ..Default::default()\n    }));\n    // Panics are sent while the guard lives. Try it:\n    panic!(\"my first error\");\n}",
    ),
    (
        "setup-raven",
        "Python, older apps (raven)",
        "pip install raven",
        "from raven import Client\n\nclient = Client(\"{DSN}\")\n\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n    client.captureException()",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_snippet_names_the_dsn_once_and_nothing_else_is_left_to_fill() {
        let dsn = "http://abc@127.0.0.1:9000/3";
        let guide = Guide::new(dsn.to_string());
        assert_eq!(guide.snippets.len(), SNIPPETS.len());
        for s in &guide.snippets {
            assert_eq!(s.code.matches(dsn).count(), 1, "{}", s.id);
            assert!(!s.code.contains("{DSN}"), "{}", s.id);
        }
    }
}
