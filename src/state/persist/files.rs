//! The files beside the state file (`PATH.lock`, `.journal`, `.tmp.*`,
//! `.spare`, `.corrupt-*`) and how one is replaced so that a crash leaves
//! the old file or the new one.
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `PATH` + `suffix`.
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    name.into()
}

pub(super) fn journal_path(path: &Path) -> PathBuf {
    with_suffix(path, ".journal")
}

pub(super) fn parent(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// A new temporary file beside `path`, unique to this writer
/// (`PATH.tmp.<pid>.<random>`), created exclusively: a file or link
/// planted at that name is never followed or truncated.
pub(super) fn create_temp(path: &Path) -> io::Result<(File, PathBuf)> {
    let temp = with_suffix(path, &format!(".tmp.{}.{:016x}", std::process::id(), rand::random::<u64>()));
    let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
    Ok((file, temp))
}

/// Renames the file to `PATH.corrupt-<now>`, or `.corrupt-<now>.N` if
/// that is taken: an earlier one is never overwritten.
pub(super) fn move_aside(path: &Path, now_secs: u64) -> io::Result<PathBuf> {
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
pub(super) fn write_temp(file: File, temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let result = replace_with(file, temp, path, bytes);
    if result.is_err() {
        // A full disk must not stay full of a half-written copy.
        let _ = fs::remove_file(temp);
    }
    result
}

/// Writes `bytes` to `file` (at `temp`), then renames it over `path`.
pub(super) fn replace_with(mut file: File, temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(temp, path)?;
    File::open(parent(path))?.sync_all()
}

/// `PATH.spare`, made afresh (one left by a killed exporter is removed
/// first: a file planted there is never written through); `None`, logged,
/// if it cannot be.
pub(super) fn make_spare(path: &Path) -> Option<PathBuf> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::persist::tests::{config, names};
    use crate::state::persist::StateFile;

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
}
