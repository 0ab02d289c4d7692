//! `simulate`'s flags.
use crate::durations::{interval, parse as duration};
use std::time::Duration;

/// What to post, where, how fast and for how long. A parser of its own too
/// (`SimulateArgs::try_parse_from(["simulate", ...])`), for tests.
#[derive(clap::Parser, Clone)]
#[command(name = "simulate")]
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

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Profile {
    Busy,
    Calm,
}

fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err("a number of callbacks per second, 0 or more".into()),
    }
}
