//! Command-line flags, each with a `CSS_PUSH_*` environment fallback, and
//! how durations are written in them.
use crate::logging::LogFormat;
use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "css-push-exporter",
    version = VERSION,
    about = "Prometheus exporter for Tencent Cloud CSS push error callbacks"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub config: Config,
}

/// `--version`: the package version, the git revision it was built from and
/// the compiler (as `css_push_exporter_build_info` labels them).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("CSS_PUSH_REVISION"),
    ", rustc ",
    env!("CSS_PUSH_RUSTC_VERSION"),
    ")"
);

#[derive(clap::Subcommand)]
pub enum Command {
    /// Post realistic callbacks to an exporter: a demo and a load generator.
    #[cfg(feature = "simulate")]
    Simulate(SimulateArgs),
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 15m, 1h)"))
}

/// A duration of at least `min`: a TTL or interval of zero (or a few
/// nanoseconds) would make the exporter forget everything or spin.
fn duration_at_least(s: &str, min: Duration) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < min {
        return Err(format!("must be at least {}", humantime::format_duration(min)));
    }
    Ok(d)
}

/// TTLs and windows: the clock counts whole seconds.
fn ttl(s: &str) -> Result<Duration, String> {
    duration_at_least(s, Duration::from_secs(1))
}

/// Timer intervals.
fn interval(s: &str) -> Result<Duration, String> {
    duration_at_least(s, Duration::from_millis(10))
}

/// Network deadlines.
fn timeout(s: &str) -> Result<Duration, String> {
    duration_at_least(s, Duration::from_millis(100))
}

/// A callback key as typed into a Secret or an env file: surrounding
/// whitespace (the newline `--from-file` and `echo` leave, the space after a
/// comma) is not part of it. A key with whitespace inside is refused rather
/// than silently failing every signature. A parser of its own because
/// clap's usual error would print the value, and a key is a secret.
#[derive(Clone)]
struct CallbackKey;

impl clap::builder::TypedValueParser for CallbackKey {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let refuse = |why: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("--callback-key / CSS_PUSH_CALLBACK_KEY: {why}\n"),
            )
        };
        let key = value.to_str().ok_or_else(|| refuse("a callback key must be UTF-8"))?.trim();
        if key.is_empty() {
            return Err(refuse("an empty callback key (check for a stray comma)"));
        }
        if key.chars().any(char::is_whitespace) {
            return Err(refuse("a callback key must not contain whitespace"));
        }
        Ok(key.to_owned())
    }
}

/// Longest `--max-label-length`: longer values make pages no one can read
/// and series Prometheus itself may refuse.
pub use crate::state::limits::MAX_LABEL_LENGTH;
use crate::state::limits::{Limits, TimelineLimits};

fn label_length(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_LABEL_LENGTH).contains(&n) => Ok(n),
        _ => Err(format!("a number of bytes from 1 to {MAX_LABEL_LENGTH}")),
    }
}

/// Default `--max-series`: keeps the worst case at the default caps (RSS
/// while serving the page) near 1 GB; see the README's Security section.
pub const DEFAULT_MAX_SERIES: u64 = 750_000;

/// Server settings. Deliberately not `Debug`: it holds the callback keys.
#[derive(Parser, Clone)]
pub struct Config {
    /// Address for callbacks (and /metrics unless --metrics-listen-address is set).
    #[arg(long, env = "CSS_PUSH_LISTEN_ADDRESS", default_value = "0.0.0.0:9321")]
    pub listen_address: String,

    /// Separate address for /metrics, so callbacks can face the internet
    /// while metrics stay internal. Unset: /metrics is on --listen-address.
    #[arg(long, env = "CSS_PUSH_METRICS_LISTEN_ADDRESS")]
    pub metrics_listen_address: Option<String>,

    /// Log level: error, warn, info, debug, trace or off; or the long form,
    /// comma-separated level and module=level directives. Unknown words are refused.
    #[arg(long, env = "CSS_PUSH_LOG_LEVEL", default_value = "info", value_parser = crate::logging::parse_filter)]
    pub log_level: String,

    /// Log line format: text, or json (one object per line with time, level, target, message).
    #[arg(long, env = "CSS_PUSH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Callback key from the CSS console. Repeat (or comma-separate in the
    /// environment) to accept several during key rotation. Unset: callbacks
    /// are not authenticated. Prefer the environment: flags show in `ps`.
    #[arg(long = "callback-key", env = "CSS_PUSH_CALLBACK_KEY", value_delimiter = ',', hide_env_values = true, value_parser = CallbackKey)]
    pub callback_keys: Vec<String>,

    /// How far in the past a signature's expiry `t` may be and still pass.
    #[arg(long, env = "CSS_PUSH_MAX_CLOCK_SKEW", default_value = "30s", value_parser = duration)]
    pub max_clock_skew: Duration,

    /// How long an accepted callback is remembered, so CSS's retries
    /// (up to ~13 minutes later) are counted once.
    #[arg(long, env = "CSS_PUSH_DEDUP_WINDOW", default_value = "15m", value_parser = ttl)]
    pub dedup_window: Duration,

    /// Most callbacks remembered for de-duplication (about 40 bytes each);
    /// when full the oldest go first, counted in css_push_dedup_evicted_total.
    #[arg(long, env = "CSS_PUSH_DEDUP_CAPACITY", default_value_t = 2_000_000)]
    pub dedup_capacity: usize,

    /// A stream with no callback for this long loses all its series.
    #[arg(long, env = "CSS_PUSH_STREAM_TTL", default_value = "1h", value_parser = ttl)]
    pub stream_ttl: Duration,

    /// A stream that is pushing (push start seen, no end) is kept this long
    /// without a callback, since a clean push sends none.
    #[arg(long, env = "CSS_PUSH_LIVE_STREAM_TTL", default_value = "7d", value_parser = ttl)]
    pub live_stream_ttl: Duration,

    /// How often expired streams and dedup entries are removed.
    #[arg(long, env = "CSS_PUSH_EXPIRY_INTERVAL", default_value = "15s", value_parser = interval)]
    pub expiry_interval: Duration,

    /// Most streams holding their own series; errors of further streams are
    /// counted under stream="__overflow__".
    #[arg(long, env = "CSS_PUSH_MAX_STREAMS", default_value_t = 50_000)]
    pub max_streams: usize,

    /// Most (domain, app) pairs with their own label values; callbacks of
    /// further pairs are counted under domain, app and stream "__overflow__".
    #[arg(long, env = "CSS_PUSH_MAX_APPS", default_value_t = 1000)]
    pub max_apps: usize,

    /// Label values (domain, app, stream) longer than this many bytes are cut (at most 1024).
    #[arg(long, env = "CSS_PUSH_MAX_LABEL_LENGTH", default_value_t = 128, value_parser = label_length)]
    pub max_label_length: usize,

    /// Most series held by streams and (domain, app) pairs together; past
    /// it, new series fold into their pair's stream="__overflow__".
    #[arg(long, env = "CSS_PUSH_MAX_SERIES", default_value_t = DEFAULT_MAX_SERIES, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_series: u64,

    /// Larger callback bodies are answered 413.
    #[arg(long, env = "CSS_PUSH_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// TLS and basic auth for /metrics, in the Prometheus exporter-toolkit
    /// web configuration format (as node_exporter's --web.config.file).
    #[arg(long, env = "CSS_PUSH_WEB_CONFIG_FILE")]
    pub web_config_file: Option<PathBuf>,

    /// HTTP worker threads per listener. Unset: one per CPU. On a host
    /// shared with other busy processes fewer can be faster (BENCHMARKS.md).
    #[arg(long, env = "CSS_PUSH_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Deadline for receiving a request: its headers within this long, then
    /// its body within this long (a callback answered 408 after that).
    #[arg(long, env = "CSS_PUSH_READ_TIMEOUT", default_value = "10s", value_parser = timeout)]
    pub read_timeout: Duration,

    /// Most connections open at once per listener (lowered at start to fit
    /// the open-files limit); more wait in the kernel's queue.
    #[arg(long, env = "CSS_PUSH_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "CSS_PUSH_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub shutdown_timeout: Duration,

    // Persistence and lifecycle memory.
    /// Most streams whose push start/end state is remembered (for
    /// css_push_streams_live), independent of --max-streams.
    #[arg(long, env = "CSS_PUSH_MAX_LIVE_STREAMS", default_value_t = 200_000)]
    pub max_live_streams: usize,

    /// File holding live streams and the de-duplication memory across
    /// restarts: loaded at start, written every --state-interval and at
    /// shutdown. Unset: nothing is persisted.
    #[arg(long, env = "CSS_PUSH_STATE_FILE")]
    pub state_file: Option<PathBuf>,

    /// How often the --state-file snapshot is written.
    #[arg(long, env = "CSS_PUSH_STATE_INTERVAL", default_value = "1m", value_parser = interval)]
    pub state_interval: Duration,

    // HTTP hardening.
    /// Furthest ahead of now a signature's expiry `t` may be (CSS signs with
    /// 10 minutes by default). With --max-clock-skew it must fit in
    /// --dedup-window, so a captured callback expires before it is forgotten.
    #[arg(long, env = "CSS_PUSH_MAX_SIGNATURE_VALIDITY", default_value = "14m", value_parser = ttl)]
    pub max_signature_validity: Duration,

    /// A /metrics page not sent in full within this long is cut off, so a
    /// scraper that does not read cannot hold the page's memory.
    #[arg(long, env = "CSS_PUSH_WRITE_TIMEOUT", default_value = "30s", value_parser = timeout)]
    pub write_timeout: Duration,

    /// Proxies (addresses or CIDR ranges; repeat, or comma-separate in the
    /// environment) whose X-Forwarded-For names the sender shown on the
    /// status page and in the log. Display only: never authentication.
    #[arg(long = "trusted-proxy", env = "CSS_PUSH_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<Cidr>,

    /// The push-health SLOs (TOML, as prometheus/slo.toml): objective,
    /// window, bad error types. Unset: the built-in push-health SLO.
    #[arg(long, env = "CSS_PUSH_SLO_FILE")]
    pub slo_file: Option<PathBuf>,

    // Each stream's story (GET /streams/...).
    /// Push sessions kept per stream in its history; older ones go first.
    #[arg(long, env = "CSS_PUSH_TIMELINE_MAX_SESSIONS", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub timeline_max_sessions: u16,

    /// Merged bad intervals kept per stream in its history, over all its
    /// sessions; older ones go first.
    #[arg(long, env = "CSS_PUSH_TIMELINE_MAX_INTERVALS", default_value_t = 512, value_parser = clap::value_parser!(u16).range(1..=16384))]
    pub timeline_max_intervals: u16,

    /// How far back a stream's history reaches.
    #[arg(long, env = "CSS_PUSH_TIMELINE_MAX_AGE", default_value = "24h", value_parser = ttl)]
    pub timeline_max_age: Duration,

    /// Memory for all streams' histories together (bytes, estimated);
    /// past it the oldest history of any stream is dropped first, counted
    /// in css_push_timeline_dropped_total. 0 keeps no history.
    #[arg(long, env = "CSS_PUSH_TIMELINE_MAX_BYTES", default_value_t = DEFAULT_TIMELINE_MAX_BYTES)]
    pub timeline_max_bytes: u64,
}

/// Default `--timeline-max-bytes`: see BENCHMARKS.md for what it holds.
pub const DEFAULT_TIMELINE_MAX_BYTES: u64 = 256 << 20;

/// An address range such as `10.0.0.0/8` or `fd00::/8`; a bare address is
/// a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket is still that client.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(net.to_bits().into(), ip.to_bits().into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(net.to_bits(), ip.to_bits(), 128, self.prefix),
            _ => false,
        }
    }
}

/// Whether the top `prefix` of `bits` bits are equal.
fn same_prefix(a: u128, b: u128, bits: u32, prefix: u8) -> bool {
    let host_bits = bits - u32::from(prefix);
    host_bits >= bits || (a >> host_bits) == (b >> host_bits)
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (address, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let network: IpAddr = address.parse().map_err(|_| format!("{address:?} is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(|| format!("prefix length 0 to {max}"))?,
        };
        Ok(Self { network, prefix })
    }
}

impl Config {
    /// The defaults overridden by `flags` (and by `CSS_PUSH_*` variables).
    pub fn from_flags<I: IntoIterator<Item = S>, S: Into<std::ffi::OsString> + Clone>(
        flags: I,
    ) -> Result<Self, clap::Error> {
        let args = std::iter::once("css-push-exporter".into()).chain(flags.into_iter().map(Into::into));
        let config = Self::try_parse_from(args)?;
        config.check().map_err(|e| clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, format!("{e}\n")))?;
        Ok(config)
    }

    /// Rules between flags, which clap cannot check one flag at a time.
    pub fn check(&self) -> Result<(), String> {
        let lifetime = self.max_signature_validity + self.max_clock_skew;
        if !self.callback_keys.is_empty() && lifetime > self.dedup_window {
            let d = humantime::format_duration;
            return Err(format!(
                "--max-signature-validity ({}) plus --max-clock-skew ({}) exceeds --dedup-window ({}): a captured \
                 callback would pass again after its first passing was forgotten; lower the first two or raise the window",
                d(self.max_signature_validity),
                d(self.max_clock_skew),
                d(self.dedup_window)
            ));
        }
        Ok(())
    }

    /// The bounds and ages the stores keep to.
    pub fn limits(&self) -> Limits {
        Limits {
            max_streams: self.max_streams,
            max_apps: self.max_apps,
            max_series: self.max_series,
            max_live_streams: self.max_live_streams,
            max_label_bytes: self.max_label_length,
            stream_ttl: self.stream_ttl,
            live_stream_ttl: self.live_stream_ttl,
            dedup_window: self.dedup_window,
            dedup_capacity: self.dedup_capacity,
            journal: self.state_file.is_some(),
            timeline: TimelineLimits {
                max_sessions: usize::from(self.timeline_max_sessions),
                max_intervals: usize::from(self.timeline_max_intervals),
                max_age: self.timeline_max_age,
                max_bytes: self.timeline_max_bytes,
            },
        }
    }
}

impl Cli {
    /// Parses and [checks](Config::check) the command line, exiting with a
    /// usage error as clap does; also tells whether a callback key was given
    /// as a flag, where every local user can read it (`ps`, `/proc/PID/cmdline`).
    pub fn parse_checked() -> (Self, bool) {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().get_matches();
        let cli = Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if cli.command.is_none() {
            if let Err(e) = cli.config.check() {
                Self::command().error(clap::error::ErrorKind::ArgumentConflict, e).exit();
            }
        }
        let key_as_flag = matches.value_source("callback_keys") == Some(clap::parser::ValueSource::CommandLine);
        (cli, key_as_flag)
    }
}

#[cfg(feature = "simulate")]
#[derive(clap::Args, Clone)]
pub struct SimulateArgs {
    /// Callback URL to post to.
    #[arg(long, default_value = "http://127.0.0.1:9321/callback")]
    pub target: String,

    /// Push domain of the simulated streams.
    #[arg(long, default_value = "demo.example.com")]
    pub domain: String,

    /// Apps (push paths) the streams are spread over: live0, live1, ...
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub apps: u32,

    /// Distinct streams; a few of them get most of the errors, as in life.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub streams: u32,

    /// Push error callbacks per second at most; 0 posts as fast as the
    /// target answers. Each stream still reports at most once per
    /// --report-interval, so the rate reached is at most streams / interval.
    #[arg(long, default_value_t = 50.0, value_parser = rate)]
    pub rate: f64,

    /// Each stream reports at most once per this long, as CSS does (its
    /// report_interval, 5 s). Shorter only to compress time in tests.
    #[arg(long, default_value = "5s", value_parser = interval)]
    pub report_interval: Duration,

    /// Stop after this long.
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub duration: Duration,

    /// Stop after this many push error callbacks (unset: --duration alone).
    #[arg(long)]
    pub count: Option<u64>,

    /// Requests in flight at once (keep-alive connections).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    /// Sign callbacks with this key, as CSS does.
    #[arg(long, env = "CSS_PUSH_CALLBACK_KEY", hide_env_values = true)]
    pub callback_key: Option<String>,

    /// Also send push start for every stream first and push end last, so
    /// the live-stream panels fill too.
    #[arg(long)]
    pub lifecycle: bool,

    /// Seed of the random choices, for a repeatable run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Who reports errors: `busy`, a few streams get most errors of a
    /// weighted mix (a load test); `calm`, a healthy fleet: 1 stream in 200
    /// (at least one) has late frames in report after report, and 1
    /// callback in 20 is a one-off glitch of any type from a clean stream.
    #[arg(long, value_enum, default_value_t = Profile::Busy)]
    pub profile: Profile,
}

#[cfg(feature = "simulate")]
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Profile {
    Busy,
    Calm,
}

#[cfg(feature = "simulate")]
fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err("a number of callbacks per second, 0 or more".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::from_flags::<_, &str>([]).unwrap();
        assert_eq!(c.listen_address, "0.0.0.0:9321");
        assert_eq!(c.dedup_window, Duration::from_secs(900));
        assert_eq!(c.stream_ttl, Duration::from_secs(3600));
        assert_eq!(c.max_streams, 50_000);
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert_eq!((c.state_file, c.state_interval, c.max_live_streams), (None, Duration::from_secs(60), 200_000));
    }

    #[test]
    fn trusted_proxies_are_ranges() {
        let c =
            Config::from_flags(["--trusted-proxy", "10.0.0.0/8, 192.0.2.7", "--trusted-proxy", "fd00::/8"]).unwrap();
        let inside = |ip: &str| c.trusted_proxies.iter().any(|r| r.contains(ip.parse().unwrap()));
        for ip in ["10.1.2.3", "192.0.2.7", "fd12::1", "::ffff:10.9.9.9"] {
            assert!(inside(ip), "{ip}");
        }
        for ip in ["11.0.0.1", "192.0.2.8", "fe80::1", "::1"] {
            assert!(!inside(ip), "{ip}");
        }
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains("203.0.113.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "fd00::/129", "10.0.0/8", "proxy", "10.0.0.0/", "10.0.0.0/-1"] {
            assert!(Config::from_flags(["--trusted-proxy", bad]).is_err(), "{bad} accepted");
        }
        assert!(Config::from_flags::<_, &str>([]).unwrap().trusted_proxies.is_empty());
    }

    #[test]
    fn repeatable_keys_and_durations() {
        let c = Config::from_flags(["--callback-key", "a", "--callback-key", "b", "--stream-ttl", "90s"]).unwrap();
        assert_eq!(c.callback_keys, ["a", "b"]);
        assert_eq!(c.stream_ttl, Duration::from_secs(90));
        assert!(Config::from_flags(["--stream-ttl", "soon"]).is_err());
        assert_eq!(Config::from_flags(["--workers", "1"]).unwrap().workers, Some(1));
        assert!(Config::from_flags(["--workers", "0"]).is_err());
        assert!(Config::from_flags(["--state-interval", "0s"]).is_err());
    }

    #[test]
    fn callback_keys_are_trimmed_and_whitespace_inside_refused() {
        let c = Config::from_flags(["--callback-key", "a\n", "--callback-key", " b "]).unwrap();
        assert_eq!(c.callback_keys, ["a", "b"]);
        for bad in ["", " ", "a b", "a\tb"] {
            assert!(Config::from_flags(["--callback-key", bad]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations_too_small_are_refused_at_start() {
        let table = [
            ("--stream-ttl", "0s", false),
            ("--stream-ttl", "500ms", false),
            ("--stream-ttl", "1s", true),
            ("--live-stream-ttl", "0s", false),
            ("--dedup-window", "0s", false),
            ("--expiry-interval", "0s", false),
            ("--expiry-interval", "1ns", false),
            ("--expiry-interval", "10ms", true),
            ("--state-interval", "1ms", false),
            ("--state-interval", "10ms", true),
            ("--read-timeout", "0s", false),
            ("--read-timeout", "99ms", false),
            ("--read-timeout", "2s", true),
            ("--max-series", "0", false),
            ("--max-connections", "0", false),
        ];
        for (flag, value, ok) in table {
            match Config::from_flags([flag, value]) {
                Ok(_) => assert!(ok, "{flag} {value} accepted"),
                Err(e) => {
                    assert!(!ok, "{flag} {value} refused: {e}");
                    assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{e}");
                }
            }
        }
        let err = Config::from_flags(["--stream-ttl", "0s"]).err().unwrap();
        assert!(err.to_string().contains("must be at least 1s"), "{err}");
    }

    #[test]
    fn a_signature_outlives_no_dedup_window() {
        let key = ["--callback-key", "k"];
        assert_eq!(Config::from_flags(key).unwrap().max_signature_validity, Duration::from_secs(14 * 60));
        let refused = Config::from_flags([&key[..], &["--max-signature-validity", "15m"]].concat()).err().unwrap();
        assert!(refused.to_string().contains("exceeds --dedup-window (15m)"), "{refused}");
        assert!(Config::from_flags([&key[..], &["--max-signature-validity", "1h", "--dedup-window", "2h"]].concat())
            .is_ok());
        assert!(Config::from_flags(["--dedup-window", "1m"]).is_ok(), "nothing signed, nothing to replay");
    }

    #[test]
    fn label_length_is_bounded() {
        assert_eq!(Config::from_flags(["--max-label-length", "1024"]).unwrap().max_label_length, 1024);
        for refused in ["1025", "70000", "0", "x"] {
            let err = Config::from_flags(["--max-label-length", refused]).err().expect(refused);
            assert!(err.to_string().contains("from 1 to 1024"), "{err}");
        }
    }
}
