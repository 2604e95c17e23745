//! Keeps the docs true: every Rust file says what it is for in a `//!` first line, and
//! ARCHITECTURE.md names every crate of the workspace.

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
