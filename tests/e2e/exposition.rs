//! The /metrics page as Prometheus' own linter reads it.
use crate::helpers::spawn_app_showing_every_family;
use crate::tools::require;
use std::io::Write;
use std::process::{Command, Stdio};

#[actix_web::test]
#[ignore = "needs promtool: bash .ci/run installs it"]
async fn promtool_finds_nothing_to_lint_in_a_page_with_every_family() {
    let promtool = require("promtool");
    let (app, _state_dir) = spawn_app_showing_every_family().await;
    let page = app.metrics().await.text;
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    // promtool reads to the end of its input, then exits.
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics ({}):\n{said}\n{page}", out.status);
    app.stop().await;
}
