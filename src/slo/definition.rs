//! The SLO file (`--slo-file`, TOML): which push-health SLOs the exporter
//! accounts for. The same file feeds `prometheus/generate.py` and
//! `grafana/generate.py`; `prometheus/slo.toml` is the built-in default.
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// At most this many SLOs: each adds two series per (domain, app) pair, and
/// the pair's series budget reserves them all up front.
pub const MAX_SLOS: usize = 4;
const _: () = assert!(crate::state::apps::SLO_SERIES == 1 + 2 * MAX_SLOS, "the pair budget reserves every SLO");

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
    /// Pages only for pairs averaging at least this many live streams.
    pub min_live_streams: u32,
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
        }
    }
}

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
}

/// The SLOs `path` defines; without a path, the built-in one.
pub fn load(path: Option<&Path>) -> Result<Vec<Slo>, SloFileError> {
    let Some(path) = path else { return Ok(vec![Slo::push_health()]) };
    let refuse = |why: String| SloFileError { path: path.to_owned(), why };
    let text = std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    parse(&text).map_err(refuse)
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
        Ok(Slo {
            name: self.name,
            objective: self.objective,
            window_days,
            bad_error_types: bad,
            min_live_streams: self.min_live_streams,
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
        ];
        for (text, want) in table {
            let err = parse(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let err = load(Some(Path::new("/nonexistent/slo.toml"))).unwrap_err();
        assert!(err.to_string().starts_with("--slo-file /nonexistent/slo.toml: cannot read it"), "{err}");
    }
}
