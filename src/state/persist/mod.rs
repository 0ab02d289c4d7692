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
//! when it reaches [`journal::MAX_RECORDS`](super::journal::MAX_RECORDS)
//! (each stream's deciding ones, `compaction`), at most
//! [`journal::MAX_KEPT`](super::journal::MAX_KEPT); past that, further ones
//! wait in memory for a snapshot, as the log says. An empty spare file
//! (`PATH.spare`) stands in for a temporary file that cannot be created,
//! so a directory out of inodes still takes snapshots.
//!
//! One job a file: taking and loading the file at start (`open`), the
//! files beside it and how they are replaced atomically (`files`), the
//! writer thread with the journal and its compaction (`writer`), the
//! metrics and the status page's view (`stats`), why a start is refused
//! (`error`).
mod error;
mod files;
mod open;
mod stats;
mod writer;

pub use error::StateFileError;
pub use files::write_atomic;
pub use open::{Loaded, StateFile};
pub use stats::{SnapshotStats, StateFileStatus};
pub use writer::{Persister, JOURNAL_FLUSH};

/// What the tests of every part share.
#[cfg(test)]
mod tests {
    use crate::state::limits::Limits;
    use std::fs;
    use std::path::Path;

    pub(super) fn config() -> Limits {
        crate::cli::Config::from_flags(["--max-streams", "10", "--max-live-streams", "10", "--dedup-capacity", "10"])
            .unwrap()
            .limits()
    }

    pub(super) fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}
