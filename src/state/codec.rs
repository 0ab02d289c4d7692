//! The binary encoding the state file and the lifecycle journal share:
//! length-prefixed strings, little-endian integers, tagged sections, and
//! why a file cannot be read.
use std::fmt;
use std::net::IpAddr;

/// Why a state file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    NotAStateFile,
    /// Written by a newer release, in a format this one does not know.
    NewerVersion(u32),
    Truncated,
    ChecksumMismatch,
    /// Intact, but a part does not parse.
    Malformed(&'static str),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAStateFile => f.write_str("not a state file (wrong magic bytes)"),
            Self::NewerVersion(v) => write!(f, "format version {v} is newer than this release can read"),
            Self::Truncated => f.write_str("truncated"),
            Self::ChecksumMismatch => f.write_str("checksum mismatch"),
            Self::Malformed(what) => write!(f, "malformed {what}"),
        }
    }
}

impl std::error::Error for FormatError {}

/// Writes a tag, a length filled in once `f` has written the payload.
pub(crate) fn section(out: &mut Vec<u8>, tag: u8, f: impl FnOnce(&mut Vec<u8>)) {
    out.push(tag);
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    f(out);
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    #[allow(clippy::cast_possible_truncation, reason = "at most three label values of at most 1024 bytes each")]
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The bytes not read yet.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.0.len() < n {
            return Err(FormatError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub(crate) fn str(&mut self) -> Result<Box<str>, FormatError> {
        self.str_in_place().map(Into::into)
    }

    /// A string as [`Self::str`] reads it, borrowed from the bytes.
    pub(crate) fn str_in_place(&mut self) -> Result<&'a str, FormatError> {
        let len = usize::try_from(self.u32()?).map_err(|_| FormatError::Malformed("string length"))?;
        std::str::from_utf8(self.take(len)?).map_err(|_| FormatError::Malformed("string"))
    }

    /// The payload of the section `tag`, which must come next.
    pub(crate) fn section(&mut self, tag: u8) -> Result<Reader<'a>, FormatError> {
        if self.u8()? != tag {
            return Err(FormatError::Malformed("section order"));
        }
        let len = usize::try_from(self.u64()?).map_err(|_| FormatError::Truncated)?;
        Ok(Reader(self.take(len)?))
    }
}
/// An IP address as a length (0 for none, 4 or 16) and its bytes.
pub(crate) fn push_ip(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    match ip {
        None => out.push(0),
        Some(IpAddr::V4(v4)) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            out.push(16);
            out.extend_from_slice(&v6.octets());
        }
    }
}

/// What [`push_ip`] wrote.
pub(crate) fn read_ip(r: &mut Reader<'_>) -> Result<Option<IpAddr>, FormatError> {
    match r.u8()? {
        0 => Ok(None),
        4 => Ok(Some(IpAddr::from(<[u8; 4]>::try_from(r.take(4)?).expect("4 bytes")))),
        16 => Ok(Some(IpAddr::from(<[u8; 16]>::try_from(r.take(16)?).expect("16 bytes")))),
        _ => Err(FormatError::Malformed("node address")),
    }
}
