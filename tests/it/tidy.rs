//! The repository's own rules, checked on every test run (in the spirit of rust-analyzer's tidy
//! test): every Rust file opens with a `//!` doc saying what it is for, modules are folders
//! (no path attributes), every lint allowance carries its reason, every invariant in ARCHITECTURE.md
//! names a test that exists, and nothing in the repository points at files outside it.

use std::path::{Path, PathBuf};

/// The repository's root: the root package's manifest directory.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file below the root with one of `extensions`, skipping build output and VCS data.
fn files(extensions: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name == "target" || name.starts_with('.') || name == "node_modules" {
                    continue;
                }
                walk(&path, extensions, out);
            } else if extensions
                .iter()
                .any(|ext| name.ends_with(&format!(".{ext}")))
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), extensions, &mut out);
    out.sort();
    assert!(
        !out.is_empty(),
        "no {extensions:?} files found below {:?}",
        root()
    );
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Fails with every offender listed, so one run shows them all.
fn assert_none(rule: &str, offenders: Vec<String>) {
    assert!(
        offenders.is_empty(),
        "{rule}:\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let offenders = files(&["rs"])
        .into_iter()
        .filter(|path| {
            let text = read(path);
            let first = text.lines().find(|line| !line.trim().is_empty());
            !first.is_some_and(|line| line.starts_with("//!"))
        })
        .map(|path| relative(&path))
        .collect();
    assert_none(
        "files whose first line is not a `//!` module doc",
        offenders,
    );
}

#[test]
fn modules_are_folders_not_path_attributes() {
    let needle = concat!("#[", "path");
    let offenders = files(&["rs"])
        .into_iter()
        .filter(|path| read(path).contains(needle))
        .map(|path| relative(&path))
        .collect();
    assert_none(
        "files using a path attribute (make the module a folder instead)",
        offenders,
    );
}

#[test]
fn every_lint_allowance_says_why() {
    let mut offenders = Vec::new();
    for path in files(&["rs"]) {
        let text = read(&path);
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            let is_allow = code.starts_with(concat!("#[", "allow("))
                || code.starts_with(concat!("#![", "allow("));
            if !is_allow {
                continue;
            }
            // The whole attribute, which rustfmt may spread over several lines.
            let attribute: String = text.lines().skip(n).take(8).collect::<Vec<_>>().join(" ");
            let attribute = attribute.split(")]").next().unwrap_or(&attribute);
            if !attribute.contains("reason = \"") {
                offenders.push(format!("{}:{}: {}", relative(&path), n + 1, code));
            }
        }
    }
    assert_none("lint allowances without `reason = \"...\"`", offenders);
}

/// Each bullet of ARCHITECTURE.md's "Invariants" section is a promise; the test that keeps it
/// is named in it as `module::test_name` and must exist.
#[test]
fn every_invariant_names_a_test_that_exists() {
    let architecture = read(&root().join("ARCHITECTURE.md"));
    let section = architecture
        .split("\n## Invariants")
        .nth(1)
        .expect("ARCHITECTURE.md has an `## Invariants` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let sources: String = files(&["rs"]).iter().map(|p| read(p)).collect();

    let mut bullets: Vec<String> = Vec::new();
    for line in section.lines() {
        if line.starts_with("- ") {
            bullets.push(line.to_string());
        } else if let Some(last) = bullets.last_mut() {
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    assert!(
        bullets.len() >= 5,
        "the Invariants section lists its promises as `- ` bullets"
    );

    let mut offenders = Vec::new();
    for bullet in &bullets {
        let title = bullet.split("**").nth(1).unwrap_or(bullet).to_string();
        let named: Vec<&str> = bullet
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|span| span.contains("::") && !span.contains(' '))
            .collect();
        let tests: Vec<String> = named
            .iter()
            .filter_map(|span| span.rsplit("::").next())
            .map(|name| name.trim_start_matches("..."))
            .filter(|name| {
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .map(str::to_string)
            .collect();
        if tests.is_empty() {
            offenders.push(format!("{title}: names no test (`module::test_name`)"));
        }
        for test in tests {
            // `..._two_workers` abbreviates a sibling of the test named before it.
            if test.starts_with('_') {
                if !sources.contains(&test) {
                    offenders.push(format!("{title}: no test ending in `{test}`"));
                }
            } else if !sources.contains(&format!("fn {test}(")) {
                offenders.push(format!("{title}: no test `{test}`"));
            }
        }
    }
    assert_none("invariants not kept by a named, existing test", offenders);
}

#[test]
fn nothing_points_outside_the_repository() {
    let outside = [
        "../shared/",
        "PROTOCOLS.md",
        "DESIGN.md",
        "STYLE.md",
        "DEVELOPERS.md",
        "../.library",
        "/work/",
    ];
    let mut offenders = Vec::new();
    for path in files(&["rs", "md", "toml", "yml", "yaml", "json", "sh"]) {
        if path.ends_with("tests/it/tidy.rs") {
            continue;
        }
        for (n, line) in read(&path).lines().enumerate() {
            if let Some(needle) = outside.iter().find(|needle| line.contains(*needle)) {
                offenders.push(format!("{}:{}: `{needle}`", relative(&path), n + 1));
            }
        }
    }
    assert_none("references to files outside the repository", offenders);
}

/// Every `.rs` file below `dir` (relative to the root) with its text.
fn sources_below(dir: &str) -> Vec<(String, String)> {
    let prefix = root().join(dir);
    files(&["rs"])
        .into_iter()
        .filter(|path| path.starts_with(&prefix))
        .map(|path| (relative(&path), read(&path)))
        .collect()
}

/// The gateway admits work and answers at once; Claude is the workers' job. No gateway source
/// reaches for the Claude client.
#[test]
fn the_gateway_never_calls_claude() {
    let offenders = sources_below("gateway")
        .into_iter()
        .filter(|(_, text)| {
            ["llm::", "ClaudeClient", "onomancer_llm"]
                .iter()
                .any(|needle| text.contains(needle))
        })
        .map(|(path, _)| path)
        .collect();
    assert_none("gateway files using the Claude client", offenders);
}

/// Routing and webhook formats are the gateway's; `shared` serves only the ops endpoints.
#[test]
fn shared_serves_no_routes_but_the_ops_endpoints() {
    let offenders = sources_below("shared/src")
        .into_iter()
        .filter(|(path, _)| !path.ends_with("ops_http.rs"))
        .filter(|(_, text)| {
            [
                "axum::Router",
                "axum::routing",
                "routing::get",
                "routing::post",
            ]
            .iter()
            .any(|needle| text.contains(needle))
        })
        .map(|(path, _)| path)
        .collect();
    assert_none("shared files serving HTTP routes", offenders);
}
