//! The `css_push_state_*` metrics, and the state file as the status page
//! shows it.
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

    pub fn restored(&self, streams: usize, moved_aside: u64) {
        self.restored_streams.store(streams as u64, Ordering::Relaxed);
        self.corrupt.fetch_add(moved_aside, Ordering::Relaxed);
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
