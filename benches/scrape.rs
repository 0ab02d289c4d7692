//! Rendering /metrics for 1k, 10k and 100k tracked streams, each with three
//! error types and both frame-gap gauges, plain and gzipped.
//! `cargo bench --bench scrape`. Under callgrind (`SCRAPE_CALLGRIND=1`) it
//! only renders a 20 000-stream page 5 times, `renders` the entry point.
use criterion::{criterion_group, BenchmarkId, Criterion};
use css_push_exporter::callback_body::{event, frame_gap_detail, PushError};
use css_push_exporter::clock::{Clock, ManualClock};
use css_push_exporter::expose::scrape::gzip;
use css_push_exporter::ingest::outcome::Outcome;
use css_push_exporter::Config;
use css_push_exporter::Exporter;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn loaded(streams: usize) -> Exporter {
    let config = Config::from_flags(["--max-streams", "200000", "--max-series", "2000000"]).unwrap();
    let clock = Arc::new(ManualClock::new(Duration::from_secs(1_764_000_000)));
    let p = Exporter::new(&config, clock as Arc<dyn Clock>);
    for i in 0..streams as u64 {
        let (domain, app, stream) =
            (format!("d{}.example.com", i % 4), format!("live{}", i % 8), format!("room-{i:06}"));
        let body = PushError::new(&domain, &app, &stream, 1_764_000_000_000 + i.cast_signed()).events(json!([
            event(6, 3, vec![frame_gap_detail("video", 1000 + i % 5000, None)]),
            event(7, 2, vec![frame_gap_detail("audio", 1200 + i % 3000, None)]),
            event(3, 1, vec![]),
        ]));
        assert_eq!(p.handle(body.body().as_bytes(), None).outcome, Outcome::Accepted);
    }
    p
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("render /metrics");
    group.sample_size(10);
    for streams in [1_000, 10_000, 100_000] {
        let p = loaded(streams);
        let bytes = p.render().len();
        let gzipped = gzip(p.render().as_bytes()).len();
        println!(
            "{streams} streams: {bytes} bytes ({:.0} per stream), {gzipped} gzipped",
            bytes as f64 / streams as f64
        );
        group.throughput(criterion::Throughput::Elements(streams as u64));
        group.bench_with_input(BenchmarkId::new("plain", streams), &p, |b, p| b.iter(|| p.render().len()));
        group.bench_with_input(BenchmarkId::new("gzip", streams), &p, |b, p| {
            b.iter(|| gzip(p.render().as_bytes()).len())
        });
    }
    group.finish();
}

/// Renders the page `times` times; its length.
#[inline(never)]
fn renders(p: &Exporter, times: usize) -> usize {
    (0..times).map(|_| p.render().len()).sum()
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench
}

fn main() {
    if std::env::var_os("SCRAPE_CALLGRIND").is_some() {
        println!("{} bytes", renders(&loaded(20_000), 5));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
