//! The Python generators (`tools/`, `prometheus/`, `grafana/`,
//! `deploy/kubernetes/`) as a library: what fails raises `GeneratorError`,
//! and only a script's entry point turns it into a message and an exit
//! status, so a caller importing them (`tools/generate.py` imports them
//! all) is never ended half way.
use crate::tools::{repo, require};
use std::path::Path;
use std::process::{Command, Output};

/// `python3 args` in the repository.
fn run(python: &Path, args: &[&str]) -> Output {
    Command::new(python).args(args).current_dir(repo()).output().unwrap()
}

/// Each failing call, and what it raised: `GeneratorError: <message>`, or
/// `SystemExit` for a function that ends the process.
const PROBE: &str = r#"
import pathlib, sys, tempfile
sys.path.insert(0, "tools")
import outputs, shared

def outcome(call):
    try:
        call()
    except shared.GeneratorError as e:
        return f"GeneratorError: {e}".splitlines()[0]
    except SystemExit:
        return "SystemExit"
    return "no error"

stale = pathlib.Path(tempfile.mkdtemp()) / "stale.yml"
stale.write_text("as committed\n")
k8s, grafana, rules = (shared.generator(n) for n in ("kubernetes", "grafana", "prometheus"))
for call in (
    lambda: outputs.write_or_check({stale: "as generated\n"}, check=True),
    lambda: shared.load_site(pathlib.Path("/nonexistent/site.toml")),
    lambda: k8s.block_scalar(" indented"),
    lambda: k8s.prometheus_rule("rules", "alerts.yml", "groups:\nextra: 1\n"),
    lambda: grafana.Board().panel("stat", "Up", "", "none", []),
    lambda: rules.dashboard_link(("css-push-overview", "No such panel", []), shared.load_site(), {}),
):
    print(outcome(call))
"#;

#[test]
#[ignore = "needs python3: bash .ci/run installs it"]
fn generator_functions_raise_and_only_entry_points_exit() {
    let python = require("python3");
    let probed = run(&python, &["-c", PROBE]);
    assert!(probed.status.success(), "{}", String::from_utf8_lossy(&probed.stderr));
    let out = String::from_utf8(probed.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    for (line, want) in lines.iter().zip([
        "out of date: ",
        "/nonexistent/site.toml: ",
        "a dashboard starting with whitespace",
        "alerts.yml: expected `groups:`",
        "grafana/generate.py: stat panel 'Up' without thresholds",
        "prometheus/generate.py: no panel 'No such panel'",
    ]) {
        assert!(line.starts_with("GeneratorError: ") && line.contains(want), "{line:?}, wanted {want:?}:\n{out}");
    }
    // The entry point: the message and status 1, no traceback.
    let site = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(site.path(), "[thresholds]\nlive_shares = 0.3\n").unwrap();
    let config = site.path().to_str().unwrap();
    let failed = run(&python, &["tools/generate.py", "--check", "--config", config]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("tools/generate.py: unknown setting thresholds.live_shares"), "{stderr}");
    assert!(!stderr.contains("Traceback"), "{stderr}");
}
