//! Docs that cannot rot: every `cargo test` command in the repository's
//! Markdown runs at least one test, every relative link and anchor in it
//! resolves, as GitHub resolves them, and the files the docs and comments
//! name are where they say.
mod cargo_test;
mod markdown;
mod test_names;

use crate::tools::repo;
use cargo_test::{Command, Targets};
use markdown::Markdown;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// Every Markdown file of the repository, parsed, by path.
fn docs() -> BTreeMap<PathBuf, Markdown> {
    markdown::files(repo(), |name| name.ends_with(".md"))
        .into_iter()
        .map(|p| (p.clone(), Markdown::parse(&std::fs::read_to_string(&p).unwrap())))
        .collect()
}

fn shown(path: &Path) -> String {
    path.strip_prefix(repo()).unwrap_or(path).display().to_string()
}

#[test]
fn every_cargo_test_command_in_the_docs_runs_a_test() {
    let package = Targets::of_package(repo());
    let (mut checked, mut wrong) = (0, Vec::new());
    for (path, md) in docs() {
        for code in md.code.iter().filter(|c| c.text.contains("cargo test")) {
            checked += 1;
            let at = format!("{}:{}: `{}`", shown(&path), code.line, code.text.trim());
            match Command::parse(&code.text).and_then(|c| c.runs(&package)) {
                Ok(runs) if runs.is_empty() => wrong.push(format!("{at} runs no test")),
                Ok(_) => {}
                Err(e) => wrong.push(format!("{at}: {e}")),
            }
        }
    }
    assert!(checked >= 10, "found only {checked} commands: is the Markdown reader broken?");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The reader of test sources against libtest's own list, for the one
/// binary sure to be built from the current sources: this one.
#[test]
fn names_read_from_the_sources_are_the_ones_libtest_lists() {
    let listed = |extra: &[&str]| -> BTreeSet<String> {
        let out =
            std::process::Command::new(std::env::current_exe().unwrap()).arg("--list").args(extra).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(str::to_owned)
            .collect()
    };
    let package = Targets::of_package(repo());
    let read = package.test_target("api").expect("the api target");
    let names = |ignored_only: bool| -> BTreeSet<String> {
        read.iter().filter(|t| !ignored_only || t.ignored).map(|t| t.name.clone()).collect()
    };
    assert_eq!(names(false), listed(&[]), "every test, read vs listed");
    assert_eq!(names(true), listed(&["--ignored"]), "the ignored ones, read vs listed");
    assert!(
        read.len() > 50
            && read.iter().any(|t| t.name == "docs::names_read_from_the_sources_are_the_ones_libtest_lists")
    );
}

/// CONTRIBUTING.md calls `tests/api/` hermetic: plain `cargo test` runs all of
/// it, so nothing there waits for `--include-ignored`.
#[test]
fn the_hermetic_suite_ignores_no_test() {
    let package = Targets::of_package(repo());
    let ignored: Vec<&str> =
        package.test_target("api").unwrap().iter().filter(|t| t.ignored).map(|t| t.name.as_str()).collect();
    assert!(ignored.is_empty(), "ignored tests belong in tests/e2e/, tests/slow.rs or tests/deploy.rs: {ignored:?}");
}

/// Doc tests are not read (`test_names` has no model of their names), so
/// there must be none: a Rust block in a doc comment under `src/`.
#[test]
fn src_has_no_doc_tests_for_the_command_check_to_miss() {
    let rust = |info: &str| {
        let known = ["rust", "ignore", "should_panic", "no_run", "compile_fail", "test_harness", "standalone_crate"];
        info.split(',').map(str::trim).all(|w| w.is_empty() || known.contains(&w) || w.starts_with("edition"))
    };
    let mut found = Vec::new();
    let mut dirs = vec![repo().join("src")];
    while let Some(dir) = dirs.pop() {
        for path in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let mut open = false;
            for (i, line) in text.lines().enumerate() {
                let doc = line.trim_start().strip_prefix("///").or_else(|| line.trim_start().strip_prefix("//!"));
                if let Some(info) = doc.map(str::trim).and_then(|d| d.strip_prefix("```")) {
                    if !open && rust(info) {
                        found.push(format!("{}:{}", shown(&path), i + 1));
                    }
                    open = !open;
                }
            }
        }
    }
    assert!(found.is_empty(), "doc tests the command check does not know of: {found:?}");
}

/// `path` with `.` and `..` resolved, without touching the file system.
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What is wrong with a link from `from` to `target`, if anything.
fn broken(from: &Path, target: &str, docs: &BTreeMap<PathBuf, Markdown>) -> Option<String> {
    let scheme = target.find(':').is_some_and(|at| !target[..at].contains(['/', '#', '?']));
    if scheme || target.starts_with("//") {
        return None;
    }
    let (path, anchor) = target.split_once('#').map_or((target, None), |(p, a)| (p, Some(a)));
    let path = path.split('?').next().unwrap().replace("%20", " ");
    let resolved = match path.as_str() {
        "" => from.to_path_buf(),
        p if p.starts_with('/') => repo().join(&p[1..]),
        p => normalized(&from.parent().unwrap().join(p)),
    };
    if !resolved.starts_with(repo()) || !resolved.exists() {
        return Some("no such file in the repository".to_owned());
    }
    let anchor = anchor.filter(|a| !a.is_empty())?;
    match docs.get(&resolved) {
        Some(md) if md.anchors.iter().any(|a| a == anchor) => None,
        Some(_) => Some(format!("no such heading in {}", shown(&resolved))),
        None if anchor.strip_prefix('L').is_some_and(|l| l.split("-L").all(|n| n.parse::<u32>().is_ok())) => None,
        None => Some(format!("{} is not Markdown: only line anchors (#L12) land in it", shown(&resolved))),
    }
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let docs = docs();
    let (mut relative, mut wrong) = (0, Vec::new());
    for (path, md) in &docs {
        for link in &md.links {
            relative += usize::from(!link.target.contains("://"));
            if let Some(why) = broken(path, &link.target, &docs) {
                wrong.push(format!("{}:{}: {}: {why}", shown(path), link.line, link.target));
            }
        }
    }
    assert!(relative >= 20, "found only {relative} relative links: is the Markdown reader broken?");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_markdown_reader_sees_what_github_renders() {
    let md = Markdown::parse(
        "# Title\n\nRun `cargo test\n--test api docs` or see [the guide](docs/a.md#setup \"t\").\n\n\
         ```sh\ncargo test --lib \\\n  -- --exact x   # a comment\n```\n\
         ## Set `up_here`: *now* [see](x.md)?\n## Title\n## Title\n<a id=\"explicit\"></a>\n\n\
         [ref]: ../up.md\n\nA ``literal ` tick`` and a lone ` tick.\n",
    );
    let code: Vec<(usize, &str)> = md.code.iter().map(|c| (c.line, c.text.as_str())).collect();
    assert_eq!(
        code,
        [
            (3, "cargo test --test api docs"),
            (7, "cargo test --lib   -- --exact x   # a comment"),
            (10, "up_here"),
            (17, "literal ` tick")
        ]
    );
    let links: Vec<(usize, &str)> = md.links.iter().map(|l| (l.line, l.target.as_str())).collect();
    assert_eq!(links, [(4, "docs/a.md#setup"), (10, "x.md"), (15, "../up.md")]);
    assert_eq!(md.anchors, ["title", "set-up_here-now-see", "title-1", "title-2", "explicit"]);
    assert_eq!(
        markdown::slug("Status page: is CSS reaching me, and what is it saying?"),
        "status-page-is-css-reaching-me-and-what-is-it-saying"
    );
}

#[test]
fn the_command_reader_selects_as_cargo_and_libtest_do() {
    let package = Targets::of_package(repo());
    let runs = |line: &str| Command::parse(line).and_then(|c| c.runs(&package)).map(|r| r.len());
    let this = "docs::the_command_reader_selects_as_cargo_and_libtest_do";
    // The documented commands that ran nothing: the tests are in e2e.
    assert_eq!(runs("cargo test --test api dashboards"), Ok(0));
    assert_eq!(runs("cargo test --test api alerting_e2e -- --include-ignored"), Ok(0));
    assert!(runs("cargo test --test e2e alerting_e2e -- --include-ignored").unwrap() >= 1);
    assert_eq!(runs(&format!("cargo test --test api {this}")), Ok(1));
    assert_eq!(
        runs("cargo test --test api docs::the_command_reader -- --exact"),
        Ok(0),
        "--exact wants the whole name"
    );
    assert_eq!(runs(&format!("cargo test --test api -- --exact {this}")), Ok(1));
    assert_eq!(runs(&format!("cargo test --test api {this} -- --skip command_reader")), Ok(0));
    assert_eq!(runs(&format!("TEST_LOG=1 cargo test --locked --test=api {this} -- --nocapture && echo")), Ok(1));
    // Ignored tests run only when asked for.
    let slow = runs("cargo test --test slow -- --ignored").unwrap();
    assert!(slow >= 1);
    assert_eq!(runs("cargo test --test slow"), Ok(0), "every slow test is ignored");
    assert_eq!(runs("cargo test --test slow -- --include-ignored"), Ok(slow));
    // Every target by default, the library's unit tests by module path.
    assert!(runs("cargo test").unwrap() > runs("cargo test --test api").unwrap());
    assert!(runs("cargo test --lib cli::tests::defaults").unwrap() >= 1);
    assert_eq!(runs("cargo test --test nope"), Err("no test target `nope`".into()));
    assert!(runs("cargo test --all-targets").unwrap_err().contains("does not know"));
}

#[test]
fn broken_links_and_anchors_are_found() {
    let docs = docs();
    let readme = repo().join("README.md");
    assert_eq!(broken(&readme, "https://example.com/x#y", &docs), None);
    assert_eq!(broken(&readme, "prometheus/RUNBOOK.md#one-incident-one-page", &docs), None);
    assert_eq!(broken(&readme, "#quick-start", &docs), None);
    assert_eq!(broken(&readme, "docs/metrics.md#push-errors-event_type-321", &docs), None);
    assert_eq!(broken(&readme, "Cargo.toml#L3", &docs), None);
    assert_eq!(broken(&readme, "docs/", &docs), None);
    assert!(broken(&readme, "#no-such-heading", &docs).unwrap().contains("no such heading in README.md"));
    assert!(broken(&readme, "prometheus/RUNBOOK.md#Severity", &docs).unwrap().contains("no such heading"));
    assert!(broken(&readme, "missing.md", &docs).unwrap().contains("no such file"));
    assert!(broken(&readme, "../outside.md", &docs).unwrap().contains("no such file"));
    assert!(broken(&readme, "Cargo.toml#package", &docs).unwrap().contains("only line anchors"));
}

/// The repository paths `text` names (`src/cli.rs`, `tests/e2e/`): a
/// top-level directory, then a file name with an extension, or a `/`.
fn paths_named(text: &str) -> Vec<&str> {
    const TOP: [&str; 9] = ["src", "tests", "benches", "examples", "tools", "deploy", "prometheus", "grafana", "docs"];
    let part = |c: char| c.is_alphanumeric() || "_./-".contains(c);
    let mut out = Vec::new();
    for (at, _) in text.match_indices('/') {
        let start =
            text[..at].rfind(|c: char| !part(c)).map_or(0, |i| i + text[i..].chars().next().unwrap().len_utf8());
        if !TOP.contains(&&text[start..at]) {
            continue;
        }
        let end = text[at..].find(|c: char| !part(c)).map_or(text.len(), |i| at + i);
        let path = text[start..end].trim_end_matches('.');
        let file = path.rsplit('/').next().unwrap();
        if path.ends_with('/') || file.contains('.') {
            out.push(path);
        }
    }
    out
}

/// What a file says in prose: Markdown and Python whole (docstrings),
/// Rust's `//` comments, and `#` comments elsewhere.
fn prose(path: &Path, text: &str) -> Vec<(usize, String)> {
    let name = path.file_name().unwrap().to_string_lossy();
    let said = |line: &str| {
        let line = line.trim_start();
        let whole = name.ends_with(".md") || name.ends_with(".py");
        let comment = if name.ends_with(".rs") { line.starts_with("//") } else { line.starts_with('#') };
        (whole || comment).then(|| line.to_owned())
    };
    text.lines().enumerate().filter_map(|(i, l)| said(l).map(|c| (i + 1, c))).collect()
}

/// A path into a directory that exists names a file that should: the
/// trace a moved or renamed file leaves. (A path into a directory that
/// does not exist, `src/a/b.rs`, is an example.)
#[test]
fn every_file_the_docs_and_comments_name_exists() {
    let kinds = [".md", ".rs", ".py", ".toml", ".yml", ".yaml", ".sh"];
    let named = |n: &str| kinds.iter().any(|k| n.ends_with(k)) || n == "run" || n == "Dockerfile";
    let (mut checked, mut wrong) = (0, Vec::new());
    for file in markdown::files(repo(), named) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, prose) in prose(&file, &text) {
            for path in paths_named(&prose) {
                checked += 1;
                let full = repo().join(path);
                if !full.exists() && full.parent().is_some_and(Path::is_dir) {
                    wrong.push(format!("{}:{line}: {path}", shown(&file)));
                }
            }
        }
    }
    assert!(checked >= 50, "found only {checked} paths: is the reader broken?");
    assert!(wrong.is_empty(), "no such file:\n{}", wrong.join("\n"));
}

#[test]
fn paths_are_read_out_of_prose() {
    let text = "see `src/cli.rs`, tests/e2e/ and (grafana/dashboards/*.json). Not https://x.org/docs/a.md, \
                my-site/prometheus/alerts.yml, prometheus/v1 or /src/x.rs.";
    assert_eq!(paths_named(text), ["src/cli.rs", "tests/e2e/", "grafana/dashboards/"]);
}
