//! The SLO file (`--slo-file`, TOML): which push-health SLOs the exporter
//! accounts for. The same file feeds `prometheus/generate.py` and
//! `grafana/generate.py`; `prometheus/slo.toml` is the built-in default.
use serde::Deserialize;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest SLO file read: four SLOs take a few hundred bytes.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// The longest `reconnect_window`: a gap longer than this is a new push, not an outage.
const MAX_RECONNECT_WINDOW: Duration = Duration::from_secs(3600);

/// At most this many SLOs: each adds two series per (domain, app) pair, and
/// the pair's series budget reserves them all up front.
pub const MAX_SLOS: usize = 4;
const _: () = assert!(crate::state::apps::SLO_SERIES == 1 + 3 * MAX_SLOS, "the pair budget reserves every SLO");

/// The error types an SLO may count bad: CSS documents 1-16.
const KNOWN_TYPES: std::ops::RangeInclusive<u8> = 1..=16;

/// One SLO: which error types make a stream-second bad, and the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The `slo` label value.
    pub name: String,
    /// Share of live stream-seconds that should be error-free, in (0, 1).
    pub objective: f64,
    /// The compliance window, whole days.
    pub window_days: u32,
    /// Sorted, distinct, within 1-16.
    pub bad_error_types: Vec<u8>,
    /// Pages only for pairs with at least this many live streams now.
    pub min_live_streams: u32,
    /// Pages only when at least this many distinct streams were bad in the last 5 minutes.
    pub min_bad_streams: u32,
    /// An abnormal push end followed by a start of the same stream within
    /// this counts the gap as live and bad.
    pub reconnect_window: Duration,
}

impl Slo {
    /// True if a report carrying error type `code` makes its seconds bad.
    pub fn is_bad(&self, code: u8) -> bool {
        self.bad_error_types.binary_search(&code).is_ok()
    }

    /// `30d`, as written in the file.
    pub fn window(&self) -> String {
        format!("{}d", self.window_days)
    }

    /// The built-in SLO, the same as `prometheus/slo.toml` (a test checks).
    pub fn push_health() -> Self {
        Self {
            name: "push-health".into(),
            objective: 0.99,
            window_days: 30,
            bad_error_types: vec![1, 2, 3, 4, 6, 7, 10, 11, 12, 14, 15],
            min_live_streams: 5,
            min_bad_streams: DEFAULT_MIN_BAD_STREAMS,
            reconnect_window: DEFAULT_RECONNECT_WINDOW,
        }
    }

    /// `5m`, as the file would write it.
    pub fn reconnect_window_text(&self) -> String {
        humantime::format_duration(self.reconnect_window).to_string()
    }
}

const DEFAULT_MIN_BAD_STREAMS: u32 = 2;
const DEFAULT_RECONNECT_WINDOW: Duration = Duration::from_secs(300);

/// Why `--slo-file` is refused at start.
#[derive(Debug)]
pub struct SloFileError {
    pub path: PathBuf,
    pub why: String,
}

impl fmt::Display for SloFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--slo-file {}: {}", self.path.display(), self.why)
    }
}

impl std::error::Error for SloFileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    slo: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    objective: f64,
    window: String,
    bad_error_types: Vec<i64>,
    min_live_streams: u32,
    min_bad_streams: Option<i64>,
    reconnect_window: Option<String>,
}

/// The SLOs `path` defines; without a path, the built-in one. The file is
/// read as data: a regular file only (opened without blocking and without
/// following a link, then checked on the open file), at most
/// [`MAX_FILE_BYTES`].
pub fn load(path: Option<&Path>) -> Result<Vec<Slo>, SloFileError> {
    let Some(path) = path else { return Ok(vec![Slo::push_health()]) };
    let refuse = |why: String| SloFileError { path: path.to_owned(), why };
    let bytes = read_regular(path).map_err(refuse)?;
    let text = String::from_utf8(bytes).map_err(|_| refuse("not UTF-8 text".into()))?;
    parse(&text).map_err(refuse)
}

fn read_regular(path: &Path) -> Result<Vec<u8>, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => "a symbolic link: give the file it points to".to_owned(),
            _ => format!("cannot read it: {e}"),
        })?;
    let meta = file.metadata().map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file (a FIFO, a device, a directory or a socket is not read)".into());
    }
    let too_large = |len: u64| format!("{len} bytes, more than the {MAX_FILE_BYTES} bytes an SLO file may have");
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The SLOs a file's text defines, each checked.
pub fn parse(text: &str) -> Result<Vec<Slo>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    if file.slo.is_empty() || file.slo.len() > MAX_SLOS {
        return Err(format!("defines {} [[slo]] tables; 1 to {MAX_SLOS} are allowed", file.slo.len()));
    }
    let mut slos: Vec<Slo> = Vec::with_capacity(file.slo.len());
    for (i, entry) in file.slo.into_iter().enumerate() {
        let slo = entry.check().map_err(|why| format!("slo[{i}]: {why}"))?;
        if slos.iter().any(|s| s.name == slo.name) {
            return Err(format!("slo[{i}]: name {:?} is used twice", slo.name));
        }
        slos.push(slo);
    }
    Ok(slos)
}

impl Entry {
    fn check(self) -> Result<Slo, String> {
        let name_ok = (1..=32).contains(&self.name.len())
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err("name must be 1-32 characters of a-z, 0-9, - and _".into());
        }
        if !(self.objective > 0.0 && self.objective < 1.0) {
            return Err(format!("objective must be between 0 and 1 (0.99 is 99 %), got {}", self.objective));
        }
        let window_days = self
            .window
            .strip_suffix('d')
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|d| (1..=365).contains(d))
            .ok_or_else(|| format!("window must be whole days from 1d to 365d, like \"30d\"; got {:?}", self.window))?;
        let mut bad = Vec::with_capacity(self.bad_error_types.len());
        for t in self.bad_error_types {
            match u8::try_from(t) {
                Ok(code) if KNOWN_TYPES.contains(&code) => bad.push(code),
                _ => return Err(format!("bad_error_types: {t} is not an error type (1-16)")),
            }
        }
        bad.sort_unstable();
        if bad.windows(2).any(|w| w[0] == w[1]) {
            return Err("bad_error_types lists a type twice".into());
        }
        if bad.is_empty() {
            return Err("bad_error_types is empty: nothing would ever be bad".into());
        }
        let min_bad_streams = match self.min_bad_streams {
            None => DEFAULT_MIN_BAD_STREAMS,
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("min_bad_streams must be a whole number of at least 1, got {n}"))?,
        };
        let reconnect_window = match self.reconnect_window {
            None => DEFAULT_RECONNECT_WINDOW,
            Some(text) => {
                humantime::parse_duration(&text).ok().filter(|d| *d <= MAX_RECONNECT_WINDOW).ok_or_else(|| {
                    format!("reconnect_window must be a duration from \"0s\" to \"1h\", like \"5m\"; got {text:?}")
                })?
            }
        };
        Ok(Slo {
            name: self.name,
            objective: self.objective,
            window_days,
            bad_error_types: bad,
            min_live_streams: self.min_live_streams,
            min_bad_streams,
            reconnect_window,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "[[slo]]\nname = \"strict\"\nobjective = 0.999\nwindow = \"7d\"\nbad_error_types = [7, 6]\nmin_live_streams = 0\n";

    #[test]
    fn the_built_in_slo_is_the_shipped_file() {
        let shipped = include_str!("../../prometheus/slo.toml");
        assert_eq!(parse(shipped).unwrap(), [Slo::push_health()]);
        assert_eq!(load(None).unwrap(), [Slo::push_health()]);
    }

    #[test]
    fn reads_a_file_and_sorts_the_types() {
        let slos = parse(ONE).unwrap();
        assert_eq!(slos[0].bad_error_types, [6, 7]);
        assert_eq!((slos[0].min_bad_streams, slos[0].reconnect_window_text()), (2, "5m".to_owned()), "the defaults");
        let set = parse(&format!("{ONE}min_bad_streams = 1\nreconnect_window = \"90s\"\n")).unwrap();
        assert_eq!((set[0].min_bad_streams, set[0].reconnect_window), (1, Duration::from_secs(90)));
        assert_eq!((slos[0].window(), slos[0].window_days), ("7d".to_owned(), 7));
        assert!(slos[0].is_bad(7) && !slos[0].is_bad(5));
    }

    #[test]
    fn refuses_what_it_cannot_run_with_a_reason() {
        let table = [
            ("", "missing field `slo`"),
            ("[[slo]]\nname = \"x\"\n", "missing field"),
            (&ONE.replace("0.999", "99"), "objective must be between 0 and 1"),
            (&ONE.replace("0.999", "1.0"), "objective must be between 0 and 1"),
            (&ONE.replace("7d", "1w"), "window must be whole days"),
            (&ONE.replace("7d", "0d"), "window must be whole days"),
            (&ONE.replace("[7, 6]", "[7, 17]"), "17 is not an error type"),
            (&ONE.replace("[7, 6]", "[7, 7]"), "lists a type twice"),
            (&ONE.replace("[7, 6]", "[]"), "is empty"),
            (&ONE.replace("strict", "Strict!"), "name must be"),
            (&ONE.replace("min_live", "minimum_live"), "unknown field"),
            (&ONE.repeat(2), "\"strict\" is used twice"),
            (&ONE.repeat(MAX_SLOS + 1), "1 to 4 are allowed"),
            (&format!("{ONE}min_bad_streams = 0\n"), "min_bad_streams must be"),
            (&format!("{ONE}reconnect_window = \"61m\"\n"), "reconnect_window must be"),
            (&format!("{ONE}reconnect_window = \"soon\"\n"), "reconnect_window must be"),
        ];
        for (text, want) in table {
            let err = parse(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let err = load(Some(Path::new("/nonexistent/slo.toml"))).unwrap_err();
        assert!(err.to_string().starts_with("--slo-file /nonexistent/slo.toml: cannot read it"), "{err}");
    }
}
