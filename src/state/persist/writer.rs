//! The writer thread: a snapshot every `--state-interval` (and once more
//! at shutdown), the journal appended every [`JOURNAL_FLUSH`] in between,
//! and while snapshots fail, the journal compacted or, full, held back.
use super::files::{create_temp, journal_path, make_spare, replace_with, write_temp};
use super::open::StateFile;
use super::stats::SnapshotStats;
use crate::state::clock::Clock;
use crate::state::compaction;
use crate::state::journal::{self, Pending};
use crate::state::snapshot::Encoded;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often journalled starts and ends reach the disk: what a crash can
/// lose of them.
pub const JOURNAL_FLUSH: Duration = Duration::from_secs(1);

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
    use crate::state::persist::tests::{config, names};
    use crate::state::snapshot::{self, StateSnapshot};

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
            let change = journal::Change {
                start: i % (2 * streams) < streams,
                folded: false,
                session: (i / streams) as u64,
                at_ms: 1_000_000,
                event_time: 1000,
                node: None,
                region: crate::catalog::Region::Unknown,
                errcode: None,
            };
            sink.send(&change, &format!("s{}", i % streams));
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
        // Per stream (each starts a session and ends another in turn): the
        // first start, end and start (live from there whatever the snapshot
        // held), the last two starts and the last end.
        assert!(kept.len() <= 6 * 1000, "{} kept", kept.len());
        assert_eq!(kept, worker.file.kept, "the file holds what is kept");
        let streams: std::collections::BTreeSet<&str> = kept.iter().map(|t| &*t.key).collect();
        assert_eq!(streams.len(), 1000, "every stream");
        assert_eq!(worker.compact_at, journal::MAX_RECORDS, "the next compaction when full again");
        // Within the interval, a full journal is compacted without trying a snapshot.
        feed(&mut worker, &sink, journal::MAX_RECORDS, 1000);
        assert!(!worker.snapshot_or_compact(false));
        assert_eq!(worker.stats.status().writes_failed, 1);
        assert!(journalled(dir.path()).len() <= 6 * 1000);
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
        let config = crate::cli::Config::from_flags(["--state-file", path.to_str().unwrap()]).unwrap().limits();
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
        assert_eq!((journalled.len(), journalled[0].change.start), (1, true));
        persister.finish().unwrap();
        assert!(read().is_empty(), "the last snapshot holds it");
        assert_eq!(stats.status().writes_ok, 1);
        let snapshot = StateSnapshot::decode(&fs::read(&path).unwrap()).unwrap();
        assert!(!snapshot.after_cut(&journalled[0]));
    }
}
