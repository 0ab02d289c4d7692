//! Why the exporter refuses to start with its `--state-file`: each cause
//! printed once, in the message or as its `source()`.
use std::fmt;
use std::io;
use std::path::PathBuf;

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
            // The reasons of these three are their `source()`.
            Self::Unwritable { path, .. } => {
                write!(f, "--state-file {}: cannot write in its directory", path.display())
            }
            Self::Unreadable { path, .. } => write!(f, "--state-file {}: cannot read it", path.display()),
            Self::MoveAside { path, .. } => {
                write!(f, "--state-file {}: unusable, and cannot be moved aside", path.display())
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
