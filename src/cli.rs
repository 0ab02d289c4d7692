//! The exporter's command-line flags, each with a `CSS_PUSH_*` environment
//! fallback, and the rules between them. The command line as a whole (this
//! or the `simulate` subcommand) is `main.rs`'s; durations are written as
//! `durations` reads them.
use crate::durations::{interval, parse as duration, timeout, ttl};
use crate::logging::LogFormat;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

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
/// while serving the page) near 1 GB; see docs/security.md, "A series budget".
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
    // Read as `http::cidr::Cidr` when the exporter starts: naming that HTTP
    // type here would make an import cycle (http needs these flags).
    #[arg(long = "trusted-proxy", env = "CSS_PUSH_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Most CSS access nodes (the `node` of push start callbacks) with
    /// series of their own; sessions on further nodes count under
    /// node="other".
    #[arg(long, env = "CSS_PUSH_MAX_NODES", default_value_t = 1024)]
    pub max_nodes: usize,

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
    /// past it the oldest history of any stream is dropped first (the
    /// callback that passed it frees what it added; the expiry timer a
    /// tenth of the cap), counted in css_push_timeline_dropped_total.
    /// 0 keeps no history.
    #[arg(long, env = "CSS_PUSH_TIMELINE_MAX_BYTES", default_value_t = DEFAULT_TIMELINE_MAX_BYTES)]
    pub timeline_max_bytes: u64,
}

/// Default `--timeline-max-bytes`: see BENCHMARKS.md for what it holds.
pub const DEFAULT_TIMELINE_MAX_BYTES: u64 = 256 << 20;

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
            max_nodes: self.max_nodes,
            timeline: TimelineLimits {
                max_sessions: usize::from(self.timeline_max_sessions),
                max_intervals: usize::from(self.timeline_max_intervals),
                max_age: self.timeline_max_age,
                max_bytes: self.timeline_max_bytes,
            },
        }
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
