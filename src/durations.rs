//! How durations are written on the command line (`30s`, `15m`, `1h`,
//! `7d`), with the floor each kind of setting needs. The exporter's flags
//! and `simulate`'s share these parsers; a leaf: it imports nothing of the
//! crate.
use std::time::Duration;

/// Any duration.
pub fn parse(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 15m, 1h)"))
}

/// A duration of at least `min`: a TTL or interval of zero (or a few
/// nanoseconds) would make the exporter forget everything or spin.
fn at_least(s: &str, min: Duration) -> Result<Duration, String> {
    let d = parse(s)?;
    if d < min {
        return Err(format!("must be at least {}", humantime::format_duration(min)));
    }
    Ok(d)
}

/// TTLs and windows: the clock counts whole seconds.
pub fn ttl(s: &str) -> Result<Duration, String> {
    at_least(s, Duration::from_secs(1))
}

/// Timer intervals.
pub fn interval(s: &str) -> Result<Duration, String> {
    at_least(s, Duration::from_millis(10))
}

/// Network deadlines.
pub fn timeout(s: &str) -> Result<Duration, String> {
    at_least(s, Duration::from_millis(100))
}
