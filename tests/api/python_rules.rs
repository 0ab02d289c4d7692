//! The Python generators' rule, read from their sources (the behaviour,
//! with python3: `tests/e2e/generators.rs`): library functions raise
//! `GeneratorError`; only the scripts' entry points (`__main__`, through
//! `outputs.exit_on_error`) end the process.
use crate::tools::repo;

/// `(file:line, enclosing top-level def)` of every `sys.exit(` in `dirs`.
fn exits(dirs: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(repo().join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        files.retain(|p| p.extension().is_some_and(|e| e == "py"));
        for file in files {
            let mut def = "(module)".to_owned();
            for (i, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
                if line.starts_with("if __name__") {
                    def = "__main__".to_owned();
                } else if let Some(name) = line.strip_prefix("def ") {
                    def = name.split('(').next().unwrap().to_owned();
                }
                if line.contains("sys.exit(") {
                    out.push((format!("{dir}/{}:{}", file.file_name().unwrap().to_string_lossy(), i + 1), def.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn only_the_entry_points_exit() {
    let found = exits(&["tools", "prometheus", "grafana", "deploy/kubernetes"]);
    let elsewhere: Vec<_> = found.iter().filter(|(_, def)| def != "exit_on_error").collect();
    assert!(
        elsewhere.is_empty(),
        "sys.exit outside outputs.exit_on_error (raise shared.GeneratorError): {elsewhere:?}"
    );
    assert_eq!(found.len(), 1, "the one exit: {found:?}");
}
