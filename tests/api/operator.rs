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

/// Each cause of a start-up error is told once: no message repeats what
/// its `source()` says (a reporter walking the chain would print it twice),
/// and the exporter prints the chain, `message: cause`.
#[test]
fn a_start_up_error_tells_each_cause_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let missing = "No such file or directory (os error 2)";
    let table = [
        (["--web-config-file", "/nonexistent/web.yml"], format!("--web-config-file /nonexistent/web.yml: {missing}")),
        (
            ["--state-file", "/nonexistent/state"],
            format!("--state-file /nonexistent/state: cannot write in its directory: {missing}"),
        ),
        (
            ["--listen-address", taken.as_str()],
            format!("cannot listen on {taken}: Address already in use (os error 98)"),
        ),
        (["--trusted-proxy", "10.0.0.0/33"], "--trusted-proxy 10.0.0.0/33: prefix length 0 to 32".to_owned()),
    ];
    actix_web::rt::System::new().block_on(async {
        for (flags, want) in &table {
            let mut all = flags.to_vec();
            if all[0] != "--listen-address" {
                all.extend(["--listen-address", "127.0.0.1:0"]);
            }
            let config = css_push_exporter::Config::from_flags(all).unwrap();
            let clock = std::sync::Arc::new(css_push_exporter::clock::SystemClock);
            let err = css_push_exporter::Application::build(&config, clock).err().expect("start-up refused");
            let mut chain = vec![err.to_string()];
            let mut cause = std::error::Error::source(&err);
            while let Some(c) = cause {
                chain.push(c.to_string());
                cause = c.source();
            }
            for pair in chain.windows(2) {
                assert!(!pair[0].contains(&pair[1]), "{flags:?}: the message repeats its cause: {chain:?}");
            }
            assert_eq!(chain.join(": "), *want, "{flags:?}");
        }
    });
    for (flags, want) in &table {
        let (status, log) = Binary::run_to_exit(flags);
        assert!(!status.success(), "{flags:?}");
        assert_eq!(log.matches(want.as_str()).count(), 1, "{flags:?}: {log}");
        let cause = want.rsplit(": ").next().unwrap();
        assert_eq!(log.matches(cause).count(), 1, "{flags:?}: {log}");
    }
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
