//! What `.ci/run` prints of the tools it uses: each one's version line
//! (`.ci/lib.sh`).
use crate::tools::repo;
use std::path::Path;

/// `.ci/lib.sh`'s `version_line`, which `.ci/run` logs versions with, on a
/// tool that writes `stdout` and `stderr` and exits with `status`: whether
/// it succeeded, and what it printed.
fn version_line(dir: &Path, stdout: &str, stderr: &str, status: u8) -> (bool, String, String) {
    let tool = dir.join("tool");
    std::fs::write(&tool, format!("#!/bin/sh\nprintf '{stderr}' >&2\nprintf '{stdout}'\nexit {status}\n")).unwrap();
    let out = std::process::Command::new("bash")
        // Run by sh, not executed: a file just written may be held open by
        // a child another test forked meanwhile (ETXTBSY).
        .args(["-c", "source \"$0\" && version_line sh \"$1\" --version"])
        .arg(repo().join(".ci/lib.sh"))
        .arg(&tool)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

#[test]
fn the_log_shows_each_tools_version_not_its_launchers_noise() {
    let dir = tempfile::tempdir().unwrap();
    // Debian's chromium launcher: a shell error on stderr, then the version.
    let launcher = "/usr/bin/chromium: 9: [: 25276071936: unexpected operator\\n";
    let version = "Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm)\\nmore\\n";
    assert_eq!(
        version_line(dir.path(), version, launcher, 0),
        (true, "Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm)\n".into(), String::new())
    );
    // A tool that prints its version on stderr only.
    assert_eq!(
        version_line(dir.path(), "", "tool, version 1.2\\nbuild\\n", 0),
        (true, "tool, version 1.2\n".into(), String::new())
    );
    // A tool that fails fails the run, saying why.
    let (ok, stdout, stderr) = version_line(dir.path(), "", "tool: cannot start\\n", 3);
    assert!(!ok && stdout.is_empty() && stderr.contains("tool: cannot start"), "{stdout:?} {stderr:?}");
}
