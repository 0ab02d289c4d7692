//! The `--state-file` on disk: owned by one process (an advisory lock on
//! `PATH.lock`, held for the process's life), checked and loaded once at
//! start (before the listeners open, so `/-/ready` answers only once it is
//! loaded), then written atomically every `--state-interval` on a thread of
//! its own and once more after the servers stopped, with the lifecycle
//! journal (`PATH.journal`) appended every second in between; with metrics
//! about both. It knows files and bytes, not the exporter: what to write
//! comes from a closure, what was read goes back as data.
//!
//! While snapshots fail the journal keeps every start and end: compacted
//! when it reaches [`journal::MAX_RECORDS`] (each stream's deciding ones,
//! `compaction`), at most [`journal::MAX_KEPT`]; past that, further ones
//! wait in memory for a snapshot, as the log says. An empty spare file
//! (`PATH.spare`) stands in for a temporary file that cannot be created,
//! so a directory out of inodes still takes snapshots.
use super::clock::Clock;
use super::codec::FormatError;
use super::compaction;
use super::journal::{self, Pending, Transition};
use super::snapshot::{self, Encoded, StateSnapshot};
use crate::cli::Config;
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often journalled starts and ends reach the disk: what a crash can
/// lose of them.
pub const JOURNAL_FLUSH: Duration = Duration::from_secs(1);

/// Why the exporter refuses to start with its `--state-file`.
#[derive(Debug)]
pub enum StateFileError {
    /// Snapshots could not be written there.
    Unwritable { path: PathBuf, source: io::Error },
    /// It exists but cannot be read.
    Unreadable { path: PathBuf, source: io::Error },
    /// It is unusable and could not be moved aside.
    MoveAside { path: PathBuf, source: io::Error },
    /// Another process holds its lock.
    InUse { path: PathBuf, lock: PathBuf, holder: Option<u32> },
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unwritable { path, source } => {
                write!(f, "--state-file {}: cannot write in its directory: {source}", path.display())
            }
            Self::Unreadable { path, source } => write!(f, "--state-file {}: cannot read it: {source}", path.display()),
            Self::MoveAside { path, source } => {
                write!(f, "--state-file {}: unusable, and cannot be moved aside: {source}", path.display())
            }
            Self::InUse { path, lock, holder } => {
                write!(f, "--state-file {}: cannot use it: another exporter ", path.display())?;
                if let Some(pid) = holder {
                    write!(f, "(pid {pid}) ")?;
                }
                write!(f, "holds its lock {}; one exporter per state file", lock.display())
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
            Self::InUse { .. } => None,
        }
    }
}

/// The state file, owned by this process while this lives.
pub struct StateFile {
    path: PathBuf,
    /// Locked; dropped (unlocked) with the process at the latest.
    _lock: File,
    /// Journalled transitions the loaded snapshot does not hold: they stay
    /// in the journal until a snapshot does.
    kept: Vec<Transition>,
}

/// What the state file and its journal gave back at start.
pub struct Loaded {
    /// Empty if there was no usable file.
    pub snapshot: StateSnapshot,
    /// The journalled transitions after the snapshot's cut, to replay.
    pub journal: Vec<Transition>,
    /// Files found unusable and moved aside.
    pub moved_aside: u64,
}

/// Why a file was not read but moved aside.
enum Unusable {
    NotRegular,
    TooLarge { len: u64, limit: u64 },
    Format(FormatError),
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRegular => f.write_str("not a regular file"),
            Self::TooLarge { len, limit } => {
                write!(f, "{len} bytes, larger than any file the bounds allow ({limit} bytes)")
            }
            Self::Format(e) => e.fmt(f),
        }
    }
}

impl StateFile {
    /// Takes `path` for this process and loads it and its journal. A
    /// missing file starts empty; an unusable one (not a regular file,
    /// larger than [`snapshot::max_len`], truncated, garbage, a newer
    /// format) is moved aside to `PATH.corrupt-<unix seconds>`, never
    /// deleted, and the exporter starts empty. Refused if another process
    /// holds the file or nothing can be written beside it.
    pub fn open(config: &Config, path: &Path, now_secs: u64) -> Result<(Self, Loaded), StateFileError> {
        if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            let source = io::Error::new(io::ErrorKind::IsADirectory, "a directory");
            return Err(StateFileError::Unwritable { path: path.to_owned(), source });
        }
        let lock = take_lock(path)?;
        ignore_file_size_signal();
        remove_stale_temps(path);
        let unwritable = |source| StateFileError::Unwritable { path: path.to_owned(), source };
        // The first periodic write must not be where an unwritable path shows.
        let (probe, temp) = create_temp(path).map_err(unwritable)?;
        drop(probe);
        fs::remove_file(temp).map_err(unwritable)?;
        let mut moved_aside = 0;
        let snapshot = match read_limited(path, snapshot::max_len(config), now_secs, &mut moved_aside)? {
            Some(bytes) => match StateSnapshot::decode(&bytes) {
                Ok(snapshot) => Some(snapshot),
                Err(e) => {
                    set_aside(path, &Unusable::Format(e), now_secs)?;
                    moved_aside += 1;
                    None
                }
            },
            None => None,
        };
        let journal_path = journal_path(path);
        let journal_limit = journal::max_len(config.max_label_length) as u64;
        let mut journal = match read_limited(&journal_path, journal_limit, now_secs, &mut moved_aside)? {
            Some(bytes) => match journal::decode(&bytes) {
                Ok((records, unread)) => {
                    if let Some(unread) = unread {
                        let what = if unread.damaged {
                            "a damaged record (it and what follows cannot be trusted: not replayed)"
                        } else {
                            "a record cut short, as a crash while appending leaves one"
                        };
                        log::warn!(
                            "{}: the last {} bytes begin with {what}; the {} records before them are replayed",
                            journal_path.display(),
                            unread.bytes,
                            records.len()
                        );
                    }
                    records
                }
                Err(e) => {
                    set_aside(&journal_path, &Unusable::Format(e), now_secs)?;
                    moved_aside += 1;
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let snapshot = match snapshot {
            Some(s) => s,
            None => {
                if !journal.is_empty() {
                    log::warn!("no usable state file: replaying its journal alone ({} starts and ends)", journal.len());
                }
                StateSnapshot::empty()
            }
        };
        journal.retain(|t| snapshot.after_cut(t));
        let file = Self { path: path.to_owned(), _lock: lock, kept: journal.clone() };
        Ok((file, Loaded { snapshot, journal, moved_aside }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Locks `PATH.lock` for this process, with its PID in it for whoever
/// finds it locked.
fn take_lock(path: &Path) -> Result<File, StateFileError> {
    let lock_path = with_suffix(path, ".lock");
    let unwritable = |source| StateFileError::Unwritable { path: path.to_owned(), source };
    let mut lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&lock_path)
        .map_err(unwritable)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = lock.read_to_string(&mut text);
            let holder = text.trim().parse().ok();
            return Err(StateFileError::InUse { path: path.to_owned(), lock: lock_path, holder });
        }
        Err(fs::TryLockError::Error(source)) => return Err(unwritable(source)),
    }
    lock.set_len(0).map_err(unwritable)?;
    writeln!(lock, "{}", std::process::id()).map_err(unwritable)?;
    Ok(lock)
}

/// A write past the file-size limit (`RLIMIT_FSIZE`) then fails with
/// `EFBIG`, as a full disk does, instead of killing the process with
/// `SIGXFSZ`: a handler that only sets a flag no one reads.
fn ignore_file_size_signal() {
    static CAUGHT: AtomicBool = AtomicBool::new(false);
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGXFSZ, &CAUGHT) {
        log::warn!("cannot catch SIGXFSZ ({e}): a write past the file-size limit will end the process");
    }
}

/// Removes temporary files a killed writer left beside the state file and
/// its journal (ours are unique per writer, so any found at start is stale).
fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (parent(path).read_dir().ok(), path.file_name()) else { return };
    let prefixes = [with_suffix(Path::new(name), ".tmp"), with_suffix(Path::new(name), ".journal.tmp")];
    for entry in dir.flatten() {
        let file_name = entry.file_name();
        let stale = prefixes.iter().any(|p| file_name.as_encoded_bytes().starts_with(p.as_os_str().as_encoded_bytes()));
        if stale && entry.file_type().is_ok_and(|t| !t.is_dir()) {
            match fs::remove_file(entry.path()) {
                Ok(()) => log::info!("removed {}, left by an earlier writer", entry.path().display()),
                Err(e) => log::warn!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// The bytes of `path` if it is a regular file of at most `limit` bytes;
/// `None` if it is missing, or was not and has been moved aside (counted in
/// `moved_aside`). Never blocks on a FIFO nor reads past `limit`.
fn read_limited(
    path: &Path,
    limit: u64,
    now_secs: u64,
    moved_aside: &mut u64,
) -> Result<Option<Vec<u8>>, StateFileError> {
    let unreadable = |source| StateFileError::Unreadable { path: path.to_owned(), source };
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::info!("no {} yet: starting without it", path.display());
            return Ok(None);
        }
        Err(source) => return Err(unreadable(source)),
    };
    let unusable = if !meta.is_file() {
        Some(Unusable::NotRegular)
    } else if meta.len() > limit {
        Some(Unusable::TooLarge { len: meta.len(), limit })
    } else {
        None
    };
    if let Some(why) = unusable {
        set_aside(path, &why, now_secs)?;
        *moved_aside += 1;
        return Ok(None);
    }
    // Swapped for a FIFO or a link since: opening neither blocks nor follows.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(unreadable)?;
    if !file.metadata().map_err(unreadable)?.is_file() {
        set_aside(path, &Unusable::NotRegular, now_secs)?;
        *moved_aside += 1;
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        set_aside(path, &Unusable::TooLarge { len: bytes.len() as u64, limit }, now_secs)?;
        *moved_aside += 1;
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// Moves an unusable file aside, saying why.
fn set_aside(path: &Path, why: &Unusable, now_secs: u64) -> Result<(), StateFileError> {
    let aside =
        move_aside(path, now_secs).map_err(|source| StateFileError::MoveAside { path: path.to_owned(), source })?;
    log::error!(
        "{} is unusable ({why}): moved it to {}; starting without what it held",
        path.display(),
        aside.display()
    );
    Ok(())
}

/// `PATH` + `suffix`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    name.into()
}

fn journal_path(path: &Path) -> PathBuf {
    with_suffix(path, ".journal")
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// A new temporary file beside `path`, unique to this writer
/// (`PATH.tmp.<pid>.<random>`), created exclusively: a file or link
/// planted at that name is never followed or truncated.
fn create_temp(path: &Path) -> io::Result<(File, PathBuf)> {
    let temp = with_suffix(path, &format!(".tmp.{}.{:016x}", std::process::id(), rand::random::<u64>()));
    let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
    Ok((file, temp))
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
/// old file or the new one: a temporary file of its own in the same
/// directory, fsynced, renamed over it, and the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (file, temp) = create_temp(path)?;
    write_temp(file, &temp, path, bytes)
}

/// [`replace_with`]; the temporary file removed if that fails.
fn write_temp(file: File, temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let result = replace_with(file, temp, path, bytes);
    if result.is_err() {
        // A full disk must not stay full of a half-written copy.
        let _ = fs::remove_file(temp);
    }
    result
}

/// Writes `bytes` to `file` (at `temp`), then renames it over `path`.
fn replace_with(mut file: File, temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(temp, path)?;
    File::open(parent(path))?.sync_all()
}

/// `PATH.spare`, made afresh (one left by a killed exporter is removed
/// first: a file planted there is never written through); `None`, logged,
/// if it cannot be.
fn make_spare(path: &Path) -> Option<PathBuf> {
    let spare = with_suffix(path, ".spare");
    let _ = fs::remove_file(&spare);
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&spare) {
        Ok(_) => Some(spare),
        Err(e) => {
            log::warn!("cannot create {}: {e}; without it, a directory out of inodes fails snapshots", spare.display());
            None
        }
    }
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

/// Writes the state file every interval, and the journal every
/// [`JOURNAL_FLUSH`], on its own thread, off the request path.
pub struct Persister {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Worker>>,
}

struct Shared {
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// What the thread owns, handed back to [`Persister::finish`].
struct Worker {
    file: StateFile,
    interval: Duration,
    stats: Arc<SnapshotStats>,
    clock: Arc<dyn Clock>,
    snapshot: Box<dyn Fn() -> Encoded + Send>,
    transitions: Option<Pending>,
    /// Appending to `PATH.journal`; `None` until it is written afresh
    /// after a failed append (a torn record would hide what follows it).
    journal: Option<File>,
    /// Transitions the lifecycle store dropped, as last logged.
    dropped_seen: u64,
    /// Kept transitions at which a snapshot is tried early, or (while
    /// snapshots fail) the journal is compacted.
    compact_at: usize,
    /// When the last snapshot failed, if none succeeded since.
    snapshot_failed_at: Option<Instant>,
    /// The journal is full even compacted: transitions since wait for a
    /// snapshot, counted here.
    held_back: Option<u64>,
    /// `PATH.spare`, while there is one.
    spare: Option<PathBuf>,
}

impl Persister {
    /// Starts the thread: `snapshot` encodes the state (called on the
    /// thread), `transitions` are the journalled starts and ends; writes
    /// are counted in `stats` at `clock`'s time.
    pub fn spawn(
        file: StateFile,
        interval: Duration,
        (stats, clock): (Arc<SnapshotStats>, Arc<dyn Clock>),
        transitions: Option<Pending>,
        snapshot: impl Fn() -> Encoded + Send + 'static,
    ) -> io::Result<Self> {
        let snapshot = Box::new(snapshot);
        let spare = make_spare(&file.path);
        let mut worker = Worker {
            file,
            interval,
            stats,
            clock,
            snapshot,
            transitions,
            journal: None,
            dropped_seen: 0,
            compact_at: journal::MAX_RECORDS,
            snapshot_failed_at: None,
            held_back: None,
            spare,
        };
        worker.rewrite_journal()?;
        let shared = Arc::new(Shared { stopped: Mutex::new(false), wake: Condvar::new() });
        let signal = shared.clone();
        let thread = std::thread::Builder::new().name("state-file".into()).spawn(move || {
            let mut next_snapshot = Instant::now() + worker.interval;
            loop {
                let wait = JOURNAL_FLUSH.min(next_snapshot.saturating_duration_since(Instant::now()));
                let stopped = crate::sync::lock(&signal.stopped);
                let stopped = crate::sync::wait_while(&signal.wake, stopped, wait, |s| !*s);
                if *stopped {
                    return worker;
                }
                drop(stopped);
                worker.flush();
                let due = Instant::now() >= next_snapshot;
                if (due || worker.journal_full()) && worker.snapshot_or_compact(due) {
                    next_snapshot = Instant::now() + worker.interval;
                }
            }
        })?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Stops the periodic writes and writes the state once more: call once
    /// the servers have stopped, so every accepted callback is in it.
    pub fn finish(mut self) -> io::Result<()> {
        let Some(mut worker) = self.stop() else { return Err(io::Error::other("the state-file thread panicked")) };
        worker.flush();
        let bytes = worker.write()?;
        log::info!("state written to {} ({bytes} bytes)", worker.file.path.display());
        Ok(())
    }

    fn stop(&mut self) -> Option<Worker> {
        *crate::sync::lock(&self.shared.stopped) = true;
        self.shared.wake.notify_all();
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for Persister {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Worker {
    /// Appends what was journalled since the last flush, fsynced.
    fn flush(&mut self) {
        let Some(pending) = &self.transitions else { return };
        let fresh = pending.drain(journal::PENDING);
        if let Some(held_back) = &mut self.held_back {
            // The live state has them: the next snapshot does too.
            *held_back += fresh.len() as u64;
            return;
        }
        let dropped = pending.dropped();
        if dropped > self.dropped_seen {
            log::warn!(
                "{} starts and ends were not journalled (the journal fell behind); the next snapshot holds them",
                dropped - self.dropped_seen
            );
            self.dropped_seen = dropped;
        }
        if fresh.is_empty() {
            return;
        }
        let mut bytes = Vec::with_capacity(fresh.len() * 96);
        for t in &fresh {
            journal::encode(&mut bytes, t);
        }
        self.file.kept.extend(fresh);
        if let Some(file) = &mut self.journal {
            if let Err(e) = file.write_all(&bytes).and_then(|()| file.sync_data()) {
                log::error!(
                    "cannot append to {}: {e}; starts and ends wait for the next snapshot",
                    journal_path(&self.file.path).display()
                );
                self.journal = None;
            }
        }
    }

    /// Whether the journal holds enough to bring a snapshot forward (or to
    /// be compacted).
    fn journal_full(&self) -> bool {
        self.held_back.is_none() && self.file.kept.len() >= self.compact_at
    }

    /// A snapshot, when one is due or the journal is full (early only if
    /// none failed within the interval); if it fails and the journal is
    /// full, the journal compacted. Whether a snapshot was tried.
    fn snapshot_or_compact(&mut self, due: bool) -> bool {
        let failed_lately = self.snapshot_failed_at.is_some_and(|at| at.elapsed() < self.interval);
        let tried = due || !failed_lately;
        // A failure is logged and counted; the next interval tries again.
        if tried && self.write().is_ok() {
            return true;
        }
        if self.journal_full() {
            self.compact();
        }
        tried
    }

    /// Writes a snapshot, counted in the metrics, then the journal afresh
    /// with only what the snapshot does not hold; returns the bytes written.
    fn write(&mut self) -> io::Result<usize> {
        let started = Instant::now();
        let encoded = (self.snapshot)();
        if let Err(e) = self.replace(&self.file.path.clone(), &encoded.bytes) {
            log::error!("cannot write the state file {}: {e}", self.file.path.display());
            self.stats.failed();
            self.snapshot_failed_at = Some(Instant::now());
            return Err(e);
        }
        self.stats.written(encoded.bytes.len(), started.elapsed(), self.clock.now());
        if let Some(n) = self.held_back.take() {
            log::info!("the state file holds the {n} starts and ends the full journal could not take");
        }
        self.snapshot_failed_at = None;
        self.compact_at = journal::MAX_RECORDS;
        // Those sent before the cut are in the snapshot; the rest wait.
        self.flush();
        self.file.kept.retain(|t| encoded.after_cut(t));
        if let Err(e) = self.rewrite_journal() {
            log::error!("cannot write {}: {e}", journal_path(&self.file.path).display());
        }
        Ok(encoded.bytes.len())
    }

    /// While snapshots fail: each stream's transitions reduced to those that
    /// decide its state, the newest [`journal::MAX_KEPT`] kept, and the
    /// journal written afresh with them. The next compaction comes when it
    /// has doubled; if it cannot, the journal is full until a snapshot.
    fn compact(&mut self) {
        let path = journal_path(&self.file.path);
        let before = self.file.kept.len();
        compaction::compact(&mut self.file.kept);
        let over = self.file.kept.len().saturating_sub(journal::MAX_KEPT);
        self.file.kept.drain(..over);
        let kept = self.file.kept.len();
        match self.rewrite_journal() {
            Ok(()) => log::warn!(
                "snapshots fail: compacted {} from {before} to {kept} starts and ends (each stream's that decide its \
                 state); a restart replays them all",
                path.display()
            ),
            Err(e) => log::error!(
                "snapshots fail and {} cannot be written afresh ({e}): starts and ends since its last write are in \
                 memory only until a snapshot succeeds",
                path.display()
            ),
        }
        if over > 0 {
            log::error!(
                "{}: the {over} oldest starts and ends were dropped, past its bound of {} even compacted; a restart \
                 before the next snapshot may show those streams' liveness wrong",
                path.display(),
                journal::MAX_KEPT
            );
        }
        if kept > journal::MAX_KEPT / 2 {
            log::error!(
                "{} is full ({kept} starts and ends even compacted): those from now on wait in memory for a \
                 snapshot, and a crash before one loses them",
                path.display()
            );
            self.held_back = Some(0);
        }
        self.compact_at = (2 * kept).clamp(journal::MAX_RECORDS, journal::MAX_KEPT);
    }

    /// Replaces the journal with the transitions kept, and appends from there.
    fn rewrite_journal(&mut self) -> io::Result<()> {
        self.journal = None;
        let path = journal_path(&self.file.path);
        let mut bytes = journal::header();
        for t in &self.file.kept {
            journal::encode(&mut bytes, t);
        }
        self.replace(&path, &bytes)?;
        self.journal = Some(OpenOptions::new().append(true).custom_flags(libc::O_NOFOLLOW).open(&path)?);
        Ok(())
    }

    /// [`write_atomic`], or through the spare file if no temporary file can
    /// be created (a directory out of inodes): the rename frees the old
    /// file's inode, which makes the next spare.
    fn replace(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.replace_via(path, bytes, create_temp)
    }

    /// [`Self::replace`] with temporary files from `create_temp`.
    fn replace_via(
        &mut self,
        path: &Path,
        bytes: &[u8],
        create_temp: impl FnOnce(&Path) -> io::Result<(File, PathBuf)>,
    ) -> io::Result<()> {
        let e = match create_temp(path) {
            Ok((file, temp)) => return write_temp(file, &temp, path, bytes),
            Err(e) => e,
        };
        let Some(spare) = self.spare.take() else { return Err(e) };
        let file = OpenOptions::new().write(true).truncate(true).custom_flags(libc::O_NOFOLLOW).open(&spare)?;
        match replace_with(file, &spare, path, bytes) {
            Ok(()) => {
                log::warn!("{}: written through {} ({e})", path.display(), spare.display());
                self.spare = make_spare(&self.file.path);
                Ok(())
            }
            Err(e) => {
                // Kept, empty, for the next try.
                if OpenOptions::new().write(true).truncate(true).custom_flags(libc::O_NOFOLLOW).open(&spare).is_ok() {
                    self.spare = Some(spare);
                }
                Err(e)
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(spare) = &self.spare {
            let _ = fs::remove_file(spare);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::journal::Transition;

    fn config() -> Config {
        Config::from_flags(["--max-streams", "10", "--max-live-streams", "10", "--dedup-capacity", "10"]).unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn one_owner_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let (owner, loaded) = StateFile::open(&config(), &path, 1000).unwrap();
        assert_eq!((loaded.journal.len(), loaded.moved_aside), (0, 0));
        match StateFile::open(&config(), &path, 1000) {
            Err(StateFileError::InUse { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("{:?}", other.err()),
        }
        drop(owner);
        assert!(StateFile::open(&config(), &path, 1000).is_ok(), "free once the owner is gone");
    }

    #[test]
    fn what_is_not_a_small_regular_file_is_moved_aside_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let (_, loaded) = StateFile::open(&config(), &path, 1000).unwrap();
        assert_eq!(loaded.moved_aside, 1);
        assert!(fs::symlink_metadata(dir.path().join("state.corrupt-1000")).unwrap().is_symlink());
        fs::File::create(&path).unwrap().set_len(snapshot::max_len(&config()) + 1).unwrap();
        let (_, loaded) = StateFile::open(&config(), &path, 1000).unwrap();
        assert_eq!(loaded.moved_aside, 1);
        assert!(dir.path().join("state.corrupt-1000.1").exists());
    }

    #[test]
    fn writes_never_follow_a_planted_link_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("state.tmp")).unwrap();
        let (_owner, _) = StateFile::open(&config(), &path, 1000).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(names(dir.path()), ["state", "state.lock", "victim"], "the planted link was stale: removed");
    }

    /// A worker on a fresh state file in `dir` whose snapshots fail (a
    /// directory that is not empty takes the file's place), fed through the
    /// sink returned.
    fn failing_worker(dir: &Path) -> (Worker, journal::Sink) {
        let path = dir.join("state");
        let (file, _) = StateFile::open(&config(), &path, 1000).unwrap();
        fs::create_dir_all(path.join("x")).unwrap();
        let (sink, pending) = journal::channel();
        let stats = Arc::new(SnapshotStats::new(&path, Duration::from_secs(3600)));
        let clock: Arc<dyn Clock> = Arc::new(crate::state::clock::ManualClock::new(Duration::from_secs(1000)));
        // Once written, it holds every transition sent.
        let snapshot = Box::new(|| Encoded { bytes: b"snapshot".to_vec(), cuts: vec![u64::MAX; 64] });
        let mut worker = Worker {
            file,
            interval: Duration::from_secs(3600),
            stats,
            clock,
            snapshot,
            transitions: Some(pending),
            journal: None,
            dropped_seen: 0,
            compact_at: journal::MAX_RECORDS,
            snapshot_failed_at: None,
            held_back: None,
            spare: make_spare(&path),
        };
        worker.rewrite_journal().unwrap();
        (worker, sink)
    }

    /// Sends `n` starts and ends, `streams` streams in turn, each a new session, flushed as they go.
    fn feed(worker: &mut Worker, sink: &journal::Sink, n: usize, streams: usize) {
        for i in 0..n {
            sink.send(i % (2 * streams) < streams, false, (i / streams) as u64, 1000, &format!("s{}", i % streams));
            if (i + 1) % 10_000 == 0 {
                worker.flush();
            }
        }
        worker.flush();
    }

    fn journalled(dir: &Path) -> Vec<Transition> {
        let (records, unread) = journal::decode(&fs::read(dir.join("state.journal")).unwrap()).unwrap();
        assert_eq!(unread, None);
        records
    }

    #[test]
    fn while_snapshots_fail_the_journal_is_compacted_and_keeps_every_stream() {
        let dir = tempfile::tempdir().unwrap();
        let (mut worker, sink) = failing_worker(dir.path());
        feed(&mut worker, &sink, journal::MAX_RECORDS + 10, 1000);
        assert!(worker.journal_full());
        assert!(worker.snapshot_or_compact(false), "a snapshot is tried first");
        assert_eq!(worker.stats.status().writes_failed, 1);
        let kept = journalled(dir.path());
        assert!(kept.len() <= 3 * 1000, "{} kept", kept.len());
        assert_eq!(kept, worker.file.kept, "the file holds what is kept");
        let streams: std::collections::BTreeSet<&str> = kept.iter().map(|t| &*t.key).collect();
        assert_eq!(streams.len(), 1000, "every stream");
        assert_eq!(worker.compact_at, journal::MAX_RECORDS, "the next compaction when full again");
        // Within the interval, a full journal is compacted without trying a snapshot.
        feed(&mut worker, &sink, journal::MAX_RECORDS, 1000);
        assert!(!worker.snapshot_or_compact(false));
        assert_eq!(worker.stats.status().writes_failed, 1);
        assert!(journalled(dir.path()).len() <= 3 * 1000);
        // Once a snapshot succeeds, the journal holds only what it does not.
        fs::remove_dir_all(dir.path().join("state")).unwrap();
        assert!(worker.snapshot_or_compact(true));
        assert!(journalled(dir.path()).is_empty());
    }

    #[test]
    fn a_journal_full_even_compacted_holds_back_further_ones_until_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (mut worker, sink) = failing_worker(dir.path());
        // As many streams as records: nothing to compact.
        let streams = journal::MAX_KEPT / 2 + 1;
        feed(&mut worker, &sink, streams, streams);
        assert!(worker.snapshot_or_compact(false));
        assert_eq!(journalled(dir.path()).len(), streams);
        assert_eq!(worker.held_back, Some(0));
        feed(&mut worker, &sink, 10, 10);
        assert_eq!(worker.held_back, Some(10));
        assert_eq!(journalled(dir.path()).len(), streams, "not appended");
        assert!(!worker.journal_full(), "no compaction while full");
        fs::remove_dir_all(dir.path().join("state")).unwrap();
        assert!(worker.snapshot_or_compact(true));
        assert_eq!(worker.held_back, None);
    }

    #[test]
    fn the_spare_file_stands_in_for_a_temporary_file_that_cannot_be_created() {
        let dir = tempfile::tempdir().unwrap();
        let (mut worker, _sink) = failing_worker(dir.path());
        let target = dir.path().join("target");
        let out_of_inodes = |_: &Path| Err(io::Error::from_raw_os_error(libc::ENOSPC));
        let spare = worker.spare.clone().unwrap();
        worker.replace_via(&target, b"one", out_of_inodes).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"one");
        assert_eq!(fs::read(&spare).unwrap(), b"", "made afresh");
        // A write that fails through it leaves it empty, for the next.
        let unrenamable = dir.path().join("state");
        assert!(worker.replace_via(&unrenamable, b"two", out_of_inodes).is_err());
        assert_eq!(fs::read(&spare).unwrap(), b"");
        worker.replace_via(&target, b"three", out_of_inodes).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"three");
        drop(worker);
        assert!(!spare.exists(), "removed with the worker");
        assert!(names(dir.path()).iter().all(|n| !n.contains(".tmp")), "{:?}", names(dir.path()));
    }

    #[test]
    fn the_persister_writes_through_its_closure_and_folds_the_journal_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let config = Config::from_flags(["--state-file", path.to_str().unwrap()]).unwrap();
        let (file, _) = StateFile::open(&config, &path, 1000).unwrap();
        let state = Arc::new(crate::state::State::new(&config));
        let dedup = Arc::new(crate::state::dedup::Dedup::new(900, 10));
        let stats = Arc::new(SnapshotStats::new(&path, Duration::from_secs(3600)));
        let clock: Arc<dyn Clock> = Arc::new(crate::state::clock::ManualClock::new(Duration::from_secs(1000)));
        let (s, d) = (state.clone(), dedup.clone());
        let persister = Persister::spawn(
            file,
            Duration::from_secs(3600),
            (stats.clone(), clock),
            state.take_journal(),
            move || snapshot::encode(&s, &d, 1000, 0),
        )
        .unwrap();
        let id = crate::state::streams::StreamId { domain: "d", app: "a", stream: "s" };
        state.lifecycles.start(id, false, 1, 1000, |_| {});
        // Within the flush interval (and a margin) it is in the journal.
        let journal = journal_path(&path);
        let deadline = Instant::now() + Duration::from_secs(5);
        let read = || journal::decode(&fs::read(&journal).unwrap()).unwrap().0;
        while read().is_empty() {
            assert!(Instant::now() < deadline, "not journalled");
            std::thread::sleep(Duration::from_millis(50));
        }
        let journalled: Vec<Transition> = read();
        assert_eq!((journalled.len(), journalled[0].start), (1, true));
        persister.finish().unwrap();
        assert!(read().is_empty(), "the last snapshot holds it");
        assert_eq!(stats.status().writes_ok, 1);
        let snapshot = StateSnapshot::decode(&fs::read(&path).unwrap()).unwrap();
        assert!(!snapshot.after_cut(&journalled[0]));
    }
}
