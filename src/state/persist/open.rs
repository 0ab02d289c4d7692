//! Taking the state file at start and loading it with its journal: one
//! owner per file (`PATH.lock`), stale temporary files removed, and every
//! file read only if it is a small regular file, else moved aside unread.
use super::error::StateFileError;
use super::files::{create_temp, journal_path, move_aside, parent, with_suffix};
use crate::state::codec::FormatError;
use crate::state::journal::{self, Transition};
use crate::state::limits::Limits;
use crate::state::snapshot::{self, StateSnapshot};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// The state file, owned by this process while this lives.
pub struct StateFile {
    pub(super) path: PathBuf,
    /// Locked; dropped (unlocked) with the process at the latest.
    _lock: File,
    /// Journalled transitions the loaded snapshot does not hold: they stay
    /// in the journal until a snapshot does.
    pub(super) kept: Vec<Transition>,
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
    pub fn open(limits: &Limits, path: &Path, now_secs: u64) -> Result<(Self, Loaded), StateFileError> {
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
        let snapshot = match read_limited(path, snapshot::max_len(limits), now_secs, &mut moved_aside)? {
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
        let journal_limit = journal::max_len(limits.max_label_bytes) as u64;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::persist::tests::config;

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
}
