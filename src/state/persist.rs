//! The `--state-file`: checked and loaded once at start (before the
//! listeners open, so `/-/ready` answers only once it is loaded), then
//! written atomically every `--state-interval` on a thread of its own and
//! once more after the servers stopped; with metrics about both.
use super::snapshot::Snapshot;
use crate::cli::Config;
use crate::exporter::Exporter;
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use crate::state::clock::Clock;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Why the exporter refuses to start with its `--state-file`.
#[derive(Debug)]
pub enum StateFileError {
    /// Snapshots could not be written there.
    Unwritable { path: PathBuf, source: io::Error },
    /// It exists but cannot be read.
    Unreadable { path: PathBuf, source: io::Error },
    /// It is corrupt and could not be moved aside.
    MoveAside { path: PathBuf, source: io::Error },
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unwritable { path, source } => {
                write!(f, "--state-file {}: cannot write in its directory: {source}", path.display())
            }
            Self::Unreadable { path, source } => write!(f, "--state-file {}: cannot read it: {source}", path.display()),
            Self::MoveAside { path, source } => {
                write!(f, "--state-file {}: corrupt, and cannot be moved aside: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for StateFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unwritable { source, .. } | Self::Unreadable { source, .. } | Self::MoveAside { source, .. } => {
                Some(source)
            }
        }
    }
}

/// The exporter with what `path` holds. A missing file starts empty; a
/// corrupt one (truncated, garbage, a newer format) is moved aside to
/// `PATH.corrupt-<unix seconds>`, never deleted, and the exporter starts empty.
pub fn open(config: &Config, path: &Path, clock: Arc<dyn Clock>) -> Result<Exporter, StateFileError> {
    let unwritable = |source| StateFileError::Unwritable { path: path.to_owned(), source };
    // The first periodic write must not be where an unwritable path shows.
    File::create(temp_path(path)).map_err(unwritable)?;
    fs::remove_file(temp_path(path)).map_err(unwritable)?;
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::info!("no state file at {} yet: starting empty", path.display());
            return Ok(Exporter::new(config, clock));
        }
        Err(source) => return Err(StateFileError::Unreadable { path: path.to_owned(), source }),
    };
    match Snapshot::decode(&bytes) {
        Ok(snapshot) => {
            let age = clock.now_secs().saturating_sub(snapshot.written_at());
            let (exporter, r) = Exporter::restored(config, clock, snapshot);
            log::info!(
                "restored {} streams ({} live) and {} remembered callbacks from {}, written {age} s ago",
                r.streams,
                r.live,
                r.dedup_entries,
                path.display()
            );
            if r.over_bounds > 0 {
                log::warn!(
                    "{} entries of {} did not fit --max-apps, --max-live-streams or --max-streams and were dropped",
                    r.over_bounds,
                    path.display()
                );
            }
            Ok(exporter)
        }
        Err(e) => {
            let aside = move_aside(path, clock.now_secs())
                .map_err(|source| StateFileError::MoveAside { path: path.to_owned(), source })?;
            log::error!(
                "state file {} is unusable ({e}): moved it to {}; starting with no live streams and no callback memory",
                path.display(),
                aside.display()
            );
            let exporter = Exporter::new(config, clock);
            if let Some(stats) = exporter.snapshot_stats() {
                stats.corrupt.fetch_add(1, Ordering::Relaxed);
            }
            Ok(exporter)
        }
    }
}

/// `PATH` + `suffix`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    name.into()
}

/// Where a snapshot is written before it is renamed over the file.
fn temp_path(path: &Path) -> PathBuf {
    with_suffix(path, ".tmp")
}

/// Renames the file to `PATH.corrupt-<now>`, or `.corrupt-<now>.N` if
/// that is taken: an earlier one is never overwritten.
fn move_aside(path: &Path, now_secs: u64) -> io::Result<PathBuf> {
    let first = with_suffix(path, &format!(".corrupt-{now_secs}"));
    let mut aside = first.clone();
    for n in 1.. {
        if fs::symlink_metadata(&aside).is_err() {
            break;
        }
        aside = with_suffix(&first, &format!(".{n}"));
    }
    fs::rename(path, &aside)?;
    Ok(aside)
}

/// Replaces the file with `bytes` so that a crash at any point leaves the
/// old file or the new one: a temporary file in the same directory,
/// fsynced, renamed over it, and the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // A full disk must not stay full of a half-written copy.
        let _ = fs::remove_file(&temp);
    }
    result
}

/// The state file as the status page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StateFileStatus {
    pub path: String,
    pub interval_seconds: f64,
    pub writes_ok: u64,
    pub writes_failed: u64,
    /// Unix seconds of the last successful write.
    pub last_write: Option<u64>,
    pub bytes: u64,
    pub restored_streams: u64,
}

/// The `css_push_state_*` metrics.
pub struct SnapshotStats {
    path: PathBuf,
    interval_secs: f64,
    ok: AtomicU64,
    errors: AtomicU64,
    /// f64 bits, as the gauges below.
    last_ok_secs: AtomicU64,
    duration_secs: AtomicU64,
    bytes: AtomicU64,
    restored_streams: AtomicU64,
    corrupt: AtomicU64,
}

impl SnapshotStats {
    pub fn new(path: &Path, interval: Duration) -> Self {
        Self {
            path: path.to_owned(),
            interval_secs: interval.as_secs_f64(),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_ok_secs: AtomicU64::new(0),
            duration_secs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            restored_streams: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
        }
    }

    /// A write of `bytes` finished at `now` after `took`.
    pub fn written(&self, bytes: usize, took: Duration, now: Duration) {
        self.ok.fetch_add(1, Ordering::Relaxed);
        self.bytes.store(bytes as u64, Ordering::Relaxed);
        self.duration_secs.store(took.as_secs_f64().to_bits(), Ordering::Relaxed);
        self.last_ok_secs.store(now.as_secs_f64().to_bits(), Ordering::Relaxed);
    }

    pub fn failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn restored(&self, streams: usize) {
        self.restored_streams.store(streams as u64, Ordering::Relaxed);
    }

    pub fn status(&self) -> StateFileStatus {
        let last = f64::from_bits(self.last_ok_secs.load(Ordering::Relaxed));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "whole seconds of a positive time")]
        let last_write = (last > 0.0).then_some(last as u64);
        StateFileStatus {
            path: self.path.display().to_string(),
            interval_seconds: self.interval_secs,
            writes_ok: self.ok.load(Ordering::Relaxed),
            writes_failed: self.errors.load(Ordering::Relaxed),
            last_write,
            bytes: self.bytes.load(Ordering::Relaxed),
            restored_streams: self.restored_streams.load(Ordering::Relaxed),
        }
    }
}

impl Collector for SnapshotStats {
    fn encode(&self, enc: &mut Encoder<'_>) {
        let float = |a: &AtomicU64| Value::Float(f64::from_bits(a.load(Ordering::Relaxed)));
        let int = |a: &AtomicU64| Value::Int(a.load(Ordering::Relaxed));
        enc.family(&f::STATE_SNAPSHOTS);
        enc.sample(&f::STATE_SNAPSHOTS, "", &[("result", "ok")], int(&self.ok));
        enc.sample(&f::STATE_SNAPSHOTS, "", &[("result", "error")], int(&self.errors));
        enc.single(&f::STATE_LAST_SNAPSHOT, float(&self.last_ok_secs));
        enc.single(&f::STATE_INTERVAL, Value::Float(self.interval_secs));
        enc.single(&f::STATE_DURATION, float(&self.duration_secs));
        enc.single(&f::STATE_BYTES, int(&self.bytes));
        enc.single(&f::STATE_RESTORED, int(&self.restored_streams));
        enc.single(&f::STATE_CORRUPT, int(&self.corrupt));
    }
}

/// Writes the state file every interval on its own thread, off the request path.
pub struct Persister {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    path: PathBuf,
    interval: Duration,
    exporter: Arc<Exporter>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Persister {
    pub fn spawn(path: PathBuf, interval: Duration, exporter: Arc<Exporter>) -> io::Result<Self> {
        let shared = Arc::new(Shared { path, interval, exporter, stopped: Mutex::new(false), wake: Condvar::new() });
        let worker = shared.clone();
        let thread = std::thread::Builder::new().name("state-file".into()).spawn(move || loop {
            let stopped = worker.stopped.lock().unwrap_or_else(|e| e.into_inner());
            let (stopped, _) =
                worker.wake.wait_timeout_while(stopped, worker.interval, |s| !*s).unwrap_or_else(|e| e.into_inner());
            if *stopped {
                return;
            }
            drop(stopped);
            // A failure is logged and counted; the next interval tries again.
            let _ = worker.write();
        })?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Stops the periodic writes and writes the state once more: call once
    /// the servers have stopped, so every accepted callback is in it.
    pub fn finish(mut self) -> io::Result<()> {
        self.stop();
        let bytes = self.shared.write()?;
        log::info!("state written to {} ({bytes} bytes)", self.shared.path.display());
        Ok(())
    }

    fn stop(&mut self) {
        *self.shared.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Persister {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn write(&self) -> io::Result<usize> {
        let result = self.exporter.write_snapshot(|bytes| write_atomic(&self.path, bytes));
        if let Err(e) = &result {
            log::error!(
                "cannot write the state file {}: {e}; the previous one is kept, next try in {}",
                self.path.display(),
                humantime::format_duration(self.interval)
            );
        }
        result
    }
}
