//! A synthetic fleet for the SLO tests in a real Prometheus: the exporter's
//! series of each (domain, app) as closed-form functions of time, written
//! as OpenMetrics to backfill days of history (with the 5-minute slices the
//! long rule group would have recorded meanwhile), and served as a scrape
//! target for what comes after, so rates run on without a seam.
//!
//! Counters count real seconds. A test that runs the rules sped up (every
//! duration divided by N) gives `slice` as 300 / N seconds: bad over live
//! stream-seconds is a ratio, and live stream-seconds per second is the
//! number of live streams, at any speed.
use crate::tools;
use actix_web::{web, App, HttpResponse, HttpServer};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub const JOB: &str = "css-push-exporter";
pub const INSTANCE: &str = "a:9321";
pub const SLO: &str = "push-health";

/// One (domain, app): `streams` live from `born`; stream i bad `shares[i]`
/// of its time (1.0: a stuck encoder), every stream bad during `incident`.
#[derive(Clone)]
pub struct Pair {
    pub domain: String,
    pub app: String,
    pub streams: usize,
    pub born: f64,
    pub shares: Vec<f64>,
    pub incident: Option<(f64, f64)>,
}

impl Pair {
    pub fn new(domain: &str, app: &str, streams: usize, born: f64, shares: &[f64]) -> Self {
        Self { domain: domain.into(), app: app.into(), streams, born, shares: shares.to_vec(), incident: None }
    }

    pub fn incident(mut self, from: f64, to: f64) -> Self {
        self.incident = Some((from, to));
        self
    }

    fn age(&self, t: f64) -> f64 {
        (t - self.born).max(0.0)
    }

    /// Seconds of the incident by `t`.
    fn in_incident(&self, t: f64) -> f64 {
        self.incident.map_or(0.0, |(from, to)| (t.min(to) - from.max(self.born)).max(0.0))
    }

    fn share(&self, i: usize) -> f64 {
        self.shares.get(i).copied().unwrap_or(0.0)
    }

    /// Streams that may have bad seconds: those with a share, and during an
    /// incident all (the ones without a share are alike: one stands for all
    /// when only the worst matters).
    fn bad_streams(&self, all: bool) -> usize {
        match self.incident {
            Some(_) if all => self.streams,
            Some(_) => (self.shares.len() + 1).min(self.streams),
            None => self.shares.len(),
        }
    }

    /// Stream i's bad seconds by `t`: its share of the time, and all of the
    /// incident.
    pub fn stream_bad(&self, i: usize, t: f64) -> f64 {
        let incident = self.in_incident(t);
        self.share(i) * (self.age(t) - incident) + incident
    }

    pub fn live(&self, t: f64) -> f64 {
        self.streams as f64 * self.age(t)
    }

    pub fn bad(&self, t: f64) -> f64 {
        let shares: f64 = self.shares.iter().sum();
        shares * (self.age(t) - self.in_incident(t)) + self.streams as f64 * self.in_incident(t)
    }

    /// When stream i last had a bad second, by `t`.
    fn last_bad(&self, i: usize, t: f64) -> Option<f64> {
        if t < self.born {
            return None;
        }
        if self.share(i) > 0.0 {
            return Some(t);
        }
        self.incident.filter(|(from, _)| t > *from).map(|(_, to)| t.min(to))
    }

    fn labels(&self) -> String {
        format!("domain=\"{}\",app=\"{}\"", self.domain, self.app)
    }
}

/// What the exporter would expose, and what the rules would record.
pub struct Fleet {
    pub pairs: Vec<Pair>,
    /// A 5-minute slice at the test's speed, seconds.
    pub slice: f64,
    /// Push errors, last-error times and per-stream liveness (alerts.yml's
    /// surge, stream tickets and app incidents read them).
    pub stream_series: bool,
    /// The SLO accounting's own series (the dashboard's panels read them).
    pub accounting_series: bool,
    /// Reports of never-started streams dropped, 100 a second, in [from, to).
    pub dropping: Option<(f64, f64)>,
    /// The live-time slices carry `slo`, as today's rules record them
    /// (false: as rules before live time was per SLO did, for the rule
    /// benchmark's older rules files).
    pub live_slices_by_slo: bool,
}

type Value<'a> = Box<dyn Fn(f64) -> Option<f64> + Send + Sync + 'a>;

/// A series: `name{labels}` and its value at a time (None: absent).
pub struct Series<'a> {
    pub key: String,
    pub value: Value<'a>,
}

fn series<'a>(name: &str, labels: &str, value: impl Fn(f64) -> Option<f64> + Send + Sync + 'a) -> Series<'a> {
    let sep = if labels.is_empty() { "" } else { "," };
    recorded(name, &format!("job=\"{JOB}\",instance=\"{INSTANCE}\"{sep}{labels}"), value)
}

/// A series as a recording rule writes it: no job or instance.
fn recorded<'a>(name: &str, labels: &str, value: impl Fn(f64) -> Option<f64> + Send + Sync + 'a) -> Series<'a> {
    Series { key: format!("{name}{{{labels}}}"), value: Box::new(value) }
}

impl Fleet {
    pub fn new(pairs: Vec<Pair>, slice: f64) -> Self {
        Self { pairs, slice, stream_series: false, accounting_series: false, dropping: None, live_slices_by_slo: true }
    }

    /// The exporter's series.
    pub fn raw(&self) -> Vec<Series<'_>> {
        let mut out = vec![series("css_push_exporter_build_info", "version=\"test\"", |_| Some(1.0))];
        let slo = format!("slo=\"{SLO}\"");
        for p in &self.pairs {
            let pair = p.labels();
            let alive = move |t: f64| t >= p.born;
            // Live time is per SLO, as the exporter's (outage gaps count
            // within each SLO's own reconnect window).
            out.push(series("css_push_live_seconds_total", &format!("{pair},{slo}"), move |t| {
                alive(t).then(|| p.live(t))
            }));
            out.push(series("css_push_bad_seconds_total", &format!("{pair},{slo}"), move |t| {
                alive(t).then(|| p.bad(t))
            }));
            out.push(series("css_push_streams_live", &pair, move |t| alive(t).then_some(p.streams as f64)));
            for i in 0..p.bad_streams(true) {
                let stream = format!("{pair},stream=\"s{i:03}\"");
                // Born at the stream's first bad second.
                let bad = move |t: f64| Some(p.stream_bad(i, t)).filter(|v| *v > 0.0 && alive(t));
                out.push(series("css_push_stream_bad_seconds_total", &format!("{stream},{slo}"), bad));
                if self.stream_series {
                    let errors = format!("{stream},error_type=\"6\",error=\"video_frame_late\"");
                    out.push(series("css_push_errors_total", &errors, bad));
                    out.push(series("css_push_last_error_timestamp_seconds", &stream, move |t| p.last_bad(i, t)));
                }
            }
            if self.stream_series {
                for i in 0..p.streams {
                    out.push(series("css_push_stream_live", &format!("{pair},stream=\"s{i:03}\""), move |t| {
                        alive(t).then_some(1.0)
                    }));
                }
            }
            if self.accounting_series {
                let unattributed = move |t: f64| alive(t).then(|| 0.1 * p.bad(t));
                out.push(series("css_push_slo_unattributed_seconds_total", &format!("{pair},{slo}"), unattributed));
                out.push(series("css_push_outage_seconds_total", &pair, move |t| alive(t).then(|| 0.05 * p.bad(t))));
                for (cause, every) in [("pusher_stopped", 120.0), ("pusher_network", 600.0)] {
                    let ends = move |t: f64| alive(t).then(|| (p.age(t) / every).floor());
                    out.push(series("css_push_stream_ends_total", &format!("{pair},cause=\"{cause}\""), ends));
                }
            }
        }
        if self.accounting_series {
            let started: f64 = self.pairs.iter().map(|p| p.streams as f64).sum();
            for (kind, tracked, limit) in [("started", started, 100_000.0), ("report_only", 10.0, 10_000.0)] {
                let kind = format!("kind=\"{kind}\"");
                out.push(series("css_push_slo_streams_tracked", &kind, move |_| Some(tracked)));
                out.push(series("css_push_slo_streams_limit", &kind, move |_| Some(limit)));
            }
        }
        if self.accounting_series || self.dropping.is_some() {
            let dropping = self.dropping;
            let dropped = move |t: f64| dropping.map_or(0.0, |(from, to)| 100.0 * (t.min(to) - from).max(0.0));
            out.push(series("css_push_slo_dropped_reports_total", "kind=\"report_only\"", move |t| Some(dropped(t))));
            out.push(series("css_push_slo_dropped_reports_total", "kind=\"started\"", |_| Some(0.0)));
        }
        out
    }

    /// The long group's 5-minute slices ending at a time: what Prometheus
    /// would have recorded while the history happened (no job or instance:
    /// the rules sum over instances). Without the worst stream: the breadth
    /// of the shipped SLO file (min_bad_streams 2).
    pub fn slices(&self) -> Vec<Series<'_>> {
        let mut out = Vec::new();
        let l = self.slice;
        for p in &self.pairs {
            let pair = p.labels();
            let slo = format!("{pair},slo=\"{SLO}\"");
            let whole = move |t: f64| t - l >= p.born;
            let bad = move |t: f64| p.bad(t) - p.bad(t - l);
            let worst = move |t: f64| {
                (0..p.bad_streams(false)).map(|i| p.stream_bad(i, t) - p.stream_bad(i, t - l)).fold(0.0, f64::max)
            };
            let whole_or_none = move |t: f64, v: &dyn Fn(f64) -> f64| whole(t).then(|| v(t));
            let live = if self.live_slices_by_slo { &slo } else { &pair };
            out.push(recorded("slo:live_seconds:increase5m", live, move |t| {
                whole_or_none(t, &|t| p.live(t) - p.live(t - l))
            }));
            out.push(recorded("slo:bad_seconds:increase5m", &slo, move |t| whole_or_none(t, &bad)));
            out.push(recorded("slo:broad_bad_seconds:increase5m", &slo, move |t| {
                whole_or_none(t, &|t| (bad(t) - worst(t)).max(0.0))
            }));
        }
        out
    }

    /// The exposition text of every raw series at `t`, as a scrape sees it.
    pub fn exposition(&self, t: f64) -> String {
        let mut text = String::new();
        for s in self.raw() {
            if let Some(v) = (s.value)(t) {
                writeln!(text, "{} {v}", s.key).unwrap();
            }
        }
        text
    }
}

/// OpenMetrics lines of `series` every `step` seconds in [from, to].
fn write_series(out: &mut impl Write, series: &[Series<'_>], from: f64, to: f64, step: f64) {
    for s in series {
        // A count of steps, not a running sum: no drift over days of them.
        let mut k = 0.0;
        while from + k * step <= to {
            let t = from + k * step;
            if let Some(v) = (s.value)(t) {
                writeln!(out, "{} {v} {t:.3}", s.key).unwrap();
            }
            k += 1.0;
        }
    }
}

/// Backfills `dir`/data (TSDB blocks) with the fleet's history up to now:
/// raw series every `step` seconds for the last `raw` seconds and slices
/// for the last `slices` seconds; then, as that may take minutes, the raw
/// series again from where it ended to now, until a round takes under 10 s
/// (at most 3 rounds). Returns when the data ends (Unix seconds): start
/// the scrape target and Prometheus right away.
pub fn backfill(promtool: &Path, dir: &Path, fleet: &Fleet, raw: f64, slices: f64, step: f64) -> f64 {
    let mut end = tools::unix_now().floor();
    let grid = |t: f64, every: f64| (t / every).floor() * every;
    let started = Instant::now();
    let (from, to) = (grid(end - slices, fleet.slice), grid(end, fleet.slice));
    write_chunks(promtool, dir, &fleet.slices(), (from, to), fleet.slice);
    write_chunks(promtool, dir, &fleet.raw(), (grid(end - raw, step), end), step);
    eprintln!("backfill: {:?}", started.elapsed());
    for _ in 0..3 {
        let from = end + step;
        end = tools::unix_now().floor();
        if end < from {
            break;
        }
        let started = Instant::now();
        write_chunks(promtool, dir, &fleet.raw(), (from, end), step);
        if started.elapsed().as_secs() < 10 {
            break;
        }
    }
    end
}

/// Samples one promtool run takes at most: its OpenMetrics input (about
/// 150 bytes a sample) stays small on a shared disk.
const CHUNK_SAMPLES: f64 = 2e6;

/// `series` every `step` seconds in [from, to], in as many promtool runs as
/// keep each input under CHUNK_SAMPLES (overlapping blocks are merged).
fn write_chunks(promtool: &Path, dir: &Path, series: &[Series<'_>], (from, to): (f64, f64), step: f64) {
    let per_chunk = (CHUNK_SAMPLES / series.len().max(1) as f64).floor().max(1.0) * step;
    let mut start = from;
    while start <= to {
        let end = (start + per_chunk - step).min(to);
        write_blocks(promtool, dir, |out| write_series(out, series, start, end, step));
        start = end + step;
    }
}

fn write_blocks(promtool: &Path, dir: &Path, write: impl FnOnce(&mut BufWriter<File>)) {
    let input = dir.join("input.om");
    let mut out = BufWriter::new(File::create(&input).unwrap());
    write(&mut out);
    writeln!(out, "# EOF").unwrap();
    out.flush().unwrap();
    drop(out);
    let data = dir.join("data");
    tools::run_ok(
        promtool,
        &["tsdb", "create-blocks-from", "openmetrics", input.to_str().unwrap(), data.to_str().unwrap()],
    );
    std::fs::remove_file(input).unwrap();
}

/// Serves the fleet's raw series at `/metrics` on 127.0.0.1, valued at each
/// scrape's time; (address, handle to stop it).
pub fn serve(fleet: Arc<Fleet>) -> (String, actix_web::dev::ServerHandle) {
    let fleet = web::Data::from(fleet);
    let server = HttpServer::new(move || {
        App::new().app_data(fleet.clone()).route(
            "/metrics",
            web::get().to(|fleet: web::Data<Fleet>| async move {
                HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(fleet.exposition(tools::unix_now()))
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0].to_string();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (addr, handle)
}

/// A scrape job for the fleet's target: its own job and instance labels
/// (honor_labels), so scraped series continue the backfilled ones.
pub fn scrape_config(target: &str, interval: &str) -> String {
    format!(
        "scrape_configs:\n- job_name: {JOB}\n  honor_labels: true\n  scrape_interval: {interval}\n  \
         scrape_timeout: {interval}\n  static_configs: [{{targets: ['{target}']}}]\n"
    )
}
