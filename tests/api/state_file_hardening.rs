//! The state file against what the issues found (issue 21): two exporters
//! on one file, a file that is not what it seems, a crafted file, starts
//! and ends lost in a crash, a file-size limit. Each runs the real binary.
//! Torn snapshots (20 rounds of SIGKILL while snapshots are written) are a
//! soak test: `tests/slow.rs`.
use crate::binary::Binary;
use crate::helpers::*;
use css_push_exporter::state::journal;
use css_push_exporter::state::snapshot::StateSnapshot;
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

fn flags(path: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["--state-file".to_owned(), path.to_str().unwrap().to_owned()];
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn start(stream: &str, sequence: &str) -> Value {
    push_lifecycle("d.example.com", "live", stream, sequence, None)
}

fn end(stream: &str, sequence: &str) -> Value {
    push_lifecycle("d.example.com", "live", stream, sequence, Some((60_000, 0)))
}

#[test]
fn a_second_exporter_on_the_same_file_refuses_to_start_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let first = Binary::start(&strs(&flags(&path, &[])));
    assert_eq!(first.post(&start("a", "q")), 200);
    let (status, log) = Binary::run_to_exit(&strs(&flags(&path, &[])));
    assert!(!status.success(), "{log}");
    let want = format!("--state-file {}: cannot use it: another exporter (pid {})", path.display(), first.pid());
    assert!(log.contains(&want), "{log}");
    assert!(!log.contains("listening for callbacks"), "{log}");
    // The first one is untouched and its file is its own.
    assert_eq!(first.metrics().get("css_push_streams_live", &[("app", "live")]), Some(1.0));
    let (status, _) = first.terminate();
    assert!(status.success());
    // Once it is gone, the file is free again.
    let second = Binary::start(&strs(&flags(&path, &[])));
    assert!(second.log().contains("restored 1 streams (1 live)"), "{}", second.log());
}

#[test]
fn a_planted_temporary_file_link_is_never_followed_and_stale_ones_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("state.tmp")).unwrap();
    fs::write(dir.path().join("state.tmp.1.0123456789abcdef"), "left by a killed writer").unwrap();
    let app = Binary::start(&strs(&flags(&path, &["--state-interval", "50ms"])));
    assert_eq!(app.post(&start("a", "q")), 200);
    app.wait_for(|m| m.get("css_push_state_snapshots_total", &[("result", "ok")]).unwrap_or(0.0) >= 2.0);
    assert!(app.terminate().0.success());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert!(files_starting(dir.path(), "state.tmp").is_empty(), "{:?}", files_starting(dir.path(), "state.tmp"));
    assert!(StateFileBytes::of(&path).decodes());
}

struct StateFileBytes(Vec<u8>);

impl StateFileBytes {
    fn of(path: &Path) -> Self {
        Self(fs::read(path).unwrap())
    }

    fn decodes(&self) -> bool {
        StateSnapshot::decode(&self.0).is_ok()
    }
}

/// Starts the binary on `path` (not a regular state file), within 20 s:
/// the file is moved aside with the reason, the exporter starts empty.
fn starts_moving_aside(dir: &Path, path: &Path, reason: &str) {
    let started = Instant::now();
    let app = Binary::start(&strs(&flags(path, &[])));
    let log = app.log();
    assert!(log.contains(reason) && log.contains("moved it to"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let m = app.metrics();
    assert_eq!(m.get("css_push_state_corrupt_files_total", &[]), Some(1.0));
    assert_eq!(files_starting(dir, "state.corrupt-").len(), 1);
    assert!(app.terminate().0.success());
    assert!(StateFileBytes::of(path).decodes(), "a good file in its place");
}

#[test]
fn a_fifo_at_the_path_does_not_hang_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    assert!(std::process::Command::new("mkfifo").arg(&path).status().unwrap().success());
    starts_moving_aside(dir.path(), &path, "not a regular file");
}

#[test]
fn a_link_to_an_endless_device_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    starts_moving_aside(dir.path(), &path, "not a regular file");
}

#[test]
fn a_file_larger_than_the_bounds_allow_is_judged_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    // Sparse: 1 GiB that takes no disk, and would take a second or more to read.
    fs::File::create(&path).unwrap().set_len(1 << 30).unwrap();
    let small = ["--max-streams", "10", "--max-live-streams", "10", "--max-apps", "10", "--dedup-capacity", "100"];
    let started = Instant::now();
    let app = Binary::start(&strs(&flags(&path, &small)));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let log = app.log();
    assert!(log.contains("1073741824 bytes, larger than any file the bounds allow"), "{log}");
    assert!(app.memory_kb("VmHWM") < 200_000, "the file was not read whole");
}

/// A state file whose stream name is replaced by `crafted` (as long as the
/// name), the checksum fixed: what an attacker with write access can do.
fn craft(path: &Path, name: &str, crafted: &[u8]) {
    assert_eq!(name.len(), crafted.len());
    let mut bytes = fs::read(path).unwrap();
    let mut replaced = 0;
    while let Some(at) = bytes.windows(name.len()).position(|w| w == name.as_bytes()) {
        bytes[at..at + name.len()].copy_from_slice(crafted);
        replaced += 1;
    }
    assert_eq!(replaced, 3, "in the lifecycle, the gauges and the stream's history");
    let body = bytes.len() - 8;
    let checksum = xxhash_rust::xxh3::xxh3_64(&bytes[..body]);
    bytes[body..].copy_from_slice(&checksum.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_crafted_file_cannot_write_into_the_metrics_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let name = "placeholder-placeholder-placeholder-0";
    let app = Binary::start(&strs(&flags(&path, &[])));
    assert_eq!(app.post(&start(name, "q")), 200);
    assert!(app.terminate().0.success());
    let injected = b"x\"} 1\ninjected_total 42\n# {stream=\"";
    let mut crafted = injected.to_vec();
    crafted.resize(name.len(), b'y');
    craft(&path, name, &crafted);
    assert!(StateFileBytes::of(&path).decodes(), "the checksum matches: only validation can tell");

    let app = Binary::start(&strs(&flags(&path, &[])));
    let m = app.metrics();
    assert!(!m.text.contains("injected_total"), "{}", m.text);
    assert!(app.log().contains("could not have been written by an exporter"), "{}", app.log());
    assert_eq!(m.get("css_push_state_restored_streams", &[]), Some(0.0));
    assert_eq!(m.get("css_push_timeline_streams", &[]), Some(0.0), "nor is its history restored");
    let foreign = m.text.lines().filter(|l| !l.is_empty() && !l.starts_with('#'));
    let foreign: Vec<_> = foreign.filter(|l| !l.starts_with("css_push_") && !l.starts_with("process_")).collect();
    assert!(foreign.is_empty(), "{foreign:?}");
}

#[test]
fn a_first_start_says_there_was_no_snapshot_rather_than_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let app = Binary::start(&strs(&flags(&dir.path().join("state"), &[])));
    let log = app.log();
    assert!(log.contains("(no snapshot to restore); 0 journalled starts and ends replayed"), "{log}");
    assert!(!log.contains(" s ago"), "{log}");
}

#[test]
fn starts_and_ends_after_the_last_snapshot_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let flags = flags(&path, &["--state-interval", "1h"]);
    let first = Binary::start(&strs(&flags));
    // Acknowledged long after the snapshot at start; the next is an hour away.
    for body in [start("a", "qa"), start("b", "qb"), end("b", "qb"), start("c", "qc")] {
        assert_eq!(first.post(&body), 200);
    }
    // The journal reaches the disk within a second (documented; 10 s
    // allowed here, for a loaded machine).
    let journal = dir.path().join("state.journal");
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal::decode(&fs::read(&journal).unwrap()).unwrap().0.len() < 4 {
        assert!(Instant::now() < deadline, "not journalled within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill();

    let second = Binary::start(&strs(&flags));
    let m = second.metrics();
    assert_eq!(m.get("css_push_stream_live", &[("stream", "a")]), Some(1.0), "{}", m.text);
    assert_eq!(m.get("css_push_stream_live", &[("stream", "b")]), Some(0.0));
    assert_eq!(m.get("css_push_stream_live", &[("stream", "c")]), Some(1.0));
    assert_eq!(m.get("css_push_streams_live", &[("app", "live")]), Some(2.0));
    assert!(second.log().contains("4 journalled starts and ends replayed"), "{}", second.log());
    // Then the end of c, a graceful stop, a start: the journal is folded into the file.
    assert_eq!(second.post(&end("c", "qc")), 200);
    assert!(second.terminate().0.success());
    let third = Binary::start(&strs(&flags));
    assert!(third.log().contains("0 journalled starts and ends replayed"), "{}", third.log());
    assert_eq!(third.metrics().get("css_push_streams_live", &[("app", "live")]), Some(1.0));
}

#[test]
fn a_file_size_limit_fails_the_write_instead_of_killing_the_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    // 8 blocks: 4 KiB (dash) or 8 KiB (bash), far below 400 streams' snapshot.
    let app = Binary::start_under_ulimit(&strs(&flags(&path, &["--state-interval", "100ms"])), "-f 8");
    let result = |m: &Metrics, r| m.get("css_push_state_snapshots_total", &[("result", r)]).unwrap_or(0.0);
    app.wait_for(|m| result(m, "ok") >= 1.0);
    for i in 0..400 {
        assert_eq!(app.post(&start(&format!("a-stream-with-a-longish-name-{i:04}"), "q")), 200);
    }
    let m = app.wait_for(|m| result(m, "error") >= 1.0);
    let (kept, ok, errors) = (fs::read(&path).unwrap(), result(&m, "ok"), result(&m, "error"));
    let m = app.wait_for(|m| result(m, "error") >= errors + 2.0);
    assert_eq!(m.get("css_push_streams_live", &[("app", "live")]), Some(400.0), "still serving");
    assert_eq!(result(&m, "ok"), ok, "every write since fails");
    assert!(app.log().contains("File too large"), "{}", app.log());
    assert_eq!(fs::read(&path).unwrap(), kept, "the previous file is intact");
    assert!(StateFileBytes(kept).decodes());
    assert!(files_starting(dir.path(), "state.tmp").is_empty(), "no half-written copy left");
}
