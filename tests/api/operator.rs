//! What an operator sees of the process: log levels and formats, fatal
//! errors, the version, and the listen backlog.
use crate::binary::Binary;
use serde_json::Value;

#[test]
fn warning_is_a_level_and_unknown_words_are_refused() {
    // env_logger alone reads "warning" as a module name and silences
    // everything. A taken port makes the process stop right after the
    // start-up warnings.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (status, log) = Binary::run_to_exit(&["--log-level", "warning", "--listen-address", &address]);
    assert!(!status.success());
    assert!(log.contains("no --callback-key set"), "the unauthenticated warning is shown: {log}");
    assert!(!log.contains("INFO"), "info lines are not: {log}");
    for word in ["warnin", "css_push_exporter", "info,actix_server"] {
        let (status, log) = Binary::run_to_exit(&["--log-level", word]);
        assert!(!status.success(), "{word} accepted");
        assert!(log.contains("unknown log level"), "{word}: {log}");
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let exporter = Binary::start(&["--log-format", "json"]);
    assert_eq!(exporter.request("POST", "/callback", "{not json").0, 400);
    let (_, log) = exporter.terminate();
    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"))).collect();
    assert!(lines.len() >= 3, "{log}");
    for line in &lines {
        for field in ["time", "level", "target", "message"] {
            assert!(line[field].is_string(), "{field} in {line}");
        }
    }
    assert!(lines.iter().any(|l| l["level"] == "warn" && l["message"].as_str().unwrap().contains("rejected callback")));
}

#[test]
fn a_fatal_error_is_printed_once() {
    let (status, log) = Binary::run_to_exit(&["--web-config-file", "/nonexistent/web.yml"]);
    assert!(!status.success());
    assert_eq!(log.matches("/nonexistent/web.yml").count(), 1, "{log}");
}

#[test]
fn the_version_names_the_revision_and_the_compiler_as_build_info_does() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_css-push-exporter")).arg("--version").output().unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    assert!(version.contains(" (revision ") && version.contains(", rustc 1."), "{version}");
    let exporter = Binary::start(&[]);
    let m = exporter.metrics();
    let info = m.find("css_push_exporter_build_info", &[]).next().expect("build_info");
    assert_eq!(info.value, 1.0);
    let label = |name: &str| info.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
    let (revision, rustc) = (label("revision"), label("rustversion"));
    assert!(version.contains(&format!("revision {revision}, rustc {rustc})")), "{version}");
}

#[test]
fn listeners_take_the_systems_backlog() {
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let exporter = Binary::start(&[]);
    let log = exporter.log();
    assert!(log.contains(&format!("with an accept backlog of {}", somaxconn.trim())), "{log}");
}
