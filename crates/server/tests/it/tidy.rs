//! Keeps the docs true: every Rust file says what it is for in a `//!` first line,
//! ARCHITECTURE.md names every crate of the workspace and only paths that exist, and neither it
//! nor README.md says the same paragraph twice.

use std::path::{Path, PathBuf};

use crate::harness::workspace_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if !["target", "fixtures", ".git", "corpus"].contains(&name.as_str()) && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_doc_line() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "tests", "bench"] {
        if root.join(dir).exists() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    assert!(files.len() > 30, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().trim_start().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "these files don't start with a `//!` line saying what they are for:\n{}", missing.join("\n"));
}

#[test]
fn architecture_names_every_crate() {
    let root = workspace_root();
    let arch = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut crates: Vec<String> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    crates.sort();
    assert!(crates.len() >= 6);
    for c in crates {
        assert!(arch.contains(&format!("`crates/{c}`")), "ARCHITECTURE.md does not describe crates/{c}");
    }
}

/// The `code spans` of a Markdown text, outside fenced blocks, with line breaks as spaces.
fn code_spans(md: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut fenced = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            prose.push_str(line);
            prose.push(' ');
        }
    }
    prose.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// Whether a code span names a file or directory of the repository: a path with a `/` that
/// starts at a top-level directory, ends in `/`, or ends in a file name with an extension.
/// Routes (`/api/store/`), commands, and placeholders (`{…}`, `<…>`, `*`, `…`) are not paths.
fn as_repo_path(span: &str) -> Option<&str> {
    let s = span.trim();
    if !s.contains('/') || s.starts_with('/') || s.contains("://") {
        return None;
    }
    if s.contains(|c: char| c.is_whitespace() || "{}<>*…?=&(),;".contains(c)) {
        return None;
    }
    let top = ["crates/", "scripts/", "bench/", "tests/", "docs/", "fuzz/"];
    let last = s.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let has_extension = last
        .rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && (1..=5).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric()));
    (top.iter().any(|t| s.starts_with(t)) || s.ends_with('/') || has_extension).then_some(s)
}

/// Where a path written in the docs may be: from the repository root, or relative to `crates/`,
/// to a crate, or to a crate's `src/` (the code map names files relative to the crate it is about).
fn path_bases(root: &Path) -> Vec<PathBuf> {
    let mut bases = vec![root.to_path_buf(), root.join("crates")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates")).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    crates.sort();
    for c in crates {
        bases.push(c.join("src"));
        bases.push(c);
    }
    bases
}

#[test]
fn architecture_names_only_paths_that_exist() {
    let root = workspace_root();
    let arch = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let bases = path_bases(&root);
    let spans = code_spans(&arch);
    let paths: Vec<&str> = spans.iter().filter_map(|s| as_repo_path(s)).collect();
    assert!(paths.len() > 20, "found only {} paths in ARCHITECTURE.md: {paths:?}", paths.len());
    let mut missing: Vec<&str> = paths.into_iter().filter(|p| !bases.iter().any(|b| b.join(p).exists())).collect();
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that exist neither from the repository root nor under crates/, a crate or a crate's src/:\n{}",
        missing.join("\n")
    );
}

/// The blank-line separated blocks of a Markdown text, list items apart, whitespace collapsed.
fn paragraphs(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<String>| {
        let p = current.split_whitespace().collect::<Vec<_>>().join(" ");
        if !p.is_empty() {
            out.push(p);
        }
        current.clear();
    };
    for line in md.lines() {
        let t = line.trim_start();
        let item = t.starts_with("- ") || t.split_once(". ").is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if t.is_empty() || item {
            flush(&mut current, &mut out);
        }
        current.push_str(line);
        current.push('\n');
    }
    flush(&mut current, &mut out);
    out
}

#[test]
fn docs_say_no_paragraph_twice() {
    let root = workspace_root();
    let mut twice = Vec::new();
    for doc in ["README.md", "ARCHITECTURE.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let mut seen = std::collections::HashSet::new();
        for p in paragraphs(&text) {
            if p.chars().count() >= 60 && !seen.insert(p.clone()) {
                twice.push(format!("{doc}: {p}"));
            }
        }
    }
    assert!(twice.is_empty(), "these paragraphs appear twice in the same file:\n{}", twice.join("\n\n"));
}

#[test]
fn the_doc_checks_read_markdown_as_meant() {
    let md = "See `crates/web/src/serve.rs`, `sqlite/writer.rs`, `web/src/dashboard/` and\n`sentry\ncleanup`; not `/api/{project}/store/`, `/healthz`, `schema*.sql`, `X-Sentry-Auth`.\n```\n`not/a/span.rs`\n```\n";
    let paths: Vec<String> = code_spans(md).iter().filter_map(|s| as_repo_path(s)).map(String::from).collect();
    assert_eq!(paths, ["crates/web/src/serve.rs", "sqlite/writer.rs", "web/src/dashboard/"]);
    let ps = paragraphs("One\ntwo.\n\n- item a\n- item\n  b\n1. step\n");
    assert_eq!(ps, ["One two.", "- item a", "- item b", "1. step"]);
}

