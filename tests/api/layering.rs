//! The house stays acyclic: no module of `src/`, and no top-level folder,
//! imports one that imports it back. Read from the source (`crate::` and
//! `super::` paths outside comments and test modules), so a new back-edge
//! fails here with the cycle named.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// `src/a/b.rs` and `src/a/b/mod.rs` are module `a::b`; the crate roots are left out.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                continue;
            }
            out.insert(parts.join("::"), std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

/// The code a module compiles outside tests, without comments.
fn code(source: &str) -> String {
    let without_tests = source.split("#[cfg(test)]\nmod tests").next().unwrap();
    without_tests.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Every path named after `crate::` or `super::`, brace groups expanded.
fn paths(code: &str, module: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (root, prefix) in [("crate::", String::new()), ("super::", parent(module))] {
        let mut rest = code;
        while let Some(at) = rest.find(root) {
            let boundary = at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
            rest = &rest[at + root.len()..];
            if boundary {
                let base = if prefix.is_empty() { String::new() } else { format!("{prefix}::") };
                expand(&base, rest, &mut out);
            }
        }
    }
    out
}

/// The module `super::` names from `module` (in `a/b.rs` and in
/// `a/b/mod.rs` alike: `a`).
fn parent(module: &str) -> String {
    let mut parts: Vec<&str> = module.split("::").collect();
    parts.pop();
    parts.join("::")
}

/// `a::b::{c, d::e}` after `base` as the full paths it names.
fn expand(base: &str, text: &str, out: &mut Vec<String>) {
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(text.len());
    let head = text[..end].trim_end_matches(':');
    let full = format!("{base}{head}");
    if text[end..].starts_with('{') && text[..end].ends_with("::") {
        let inner = &text[end + 1..];
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(&format!("{full}::"), inner[start..i].trim(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&format!("{full}::"), inner[start..i].trim(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
    } else {
        out.push(full);
    }
}

/// The longest module that `path` starts with.
fn resolve<'a>(path: &str, modules: &'a BTreeMap<String, String>) -> Option<&'a str> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len()).rev().find_map(|n| modules.get_key_value(&parts[..n].join("::")).map(|(k, _)| k.as_str()))
}

fn module_graph(src: &Path) -> Graph {
    let modules = modules(src);
    let mut graph = Graph::new();
    for (name, source) in &modules {
        let edges = graph.entry(name.clone()).or_default();
        for path in paths(&code(source), name) {
            if let Some(target) = resolve(&path, &modules) {
                // A module may use its own children and itself.
                if target != name && !target.starts_with(&format!("{name}::")) {
                    edges.insert(target.to_owned());
                }
            }
        }
    }
    graph
}

/// The same graph between top-level folders (and top-level files).
fn folder_graph(modules: &Graph) -> Graph {
    let top = |m: &str| m.split("::").next().unwrap().to_owned();
    let mut graph = Graph::new();
    for (from, targets) in modules {
        let edges = graph.entry(top(from)).or_default();
        edges.extend(targets.iter().map(|t| top(t)).filter(|t| *t != top(from)));
    }
    graph
}

/// A cycle, as the list of nodes around it, if there is one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_or_folder_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = module_graph(&src);
    assert!(modules.len() > 20, "read the modules of src/: {:?}", modules.keys());
    assert!(modules["ingest::pipeline"].contains("ingest::event"), "the reader sees imports");
    if let Some(c) = cycle(&modules) {
        panic!("import cycle between modules: {}", c.join(" → "));
    }
    if let Some(c) = cycle(&folder_graph(&modules)) {
        panic!("import cycle between folders of src/: {}", c.join(" → "));
    }
}

#[test]
fn the_reader_finds_cycles_and_grouped_imports() {
    let mut out = Vec::new();
    expand("", "a::{b, c::{d, e}}, rest", &mut out);
    assert_eq!(out, ["a::b", "a::c::d", "a::c::e"]);
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), BTreeSet::from([to.to_owned()])))
        .collect();
    let found = cycle(&graph).expect("a → b → c → a");
    assert_eq!(found.first(), found.last());
    assert_eq!(found.len(), 4);
    let acyclic: Graph = [("a", "b"), ("b", "c")]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), BTreeSet::from([to.to_owned()])))
        .collect();
    assert_eq!(cycle(&acyclic), None);
    assert_eq!(parent("state::persist"), "state");
}
