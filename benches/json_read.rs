//! The one-pass read of a push error (`wire::push_error_in_one_pass`, our
//! scanner) against simd-json on the sample bodies: simd-json's serde API
//! into the same borrowed `PushError`, and its tape walked by hand into
//! the same fields. simd-json needs a mutable, padded copy of the body: the
//! copy into a reused per-thread buffer is part of each figure, and so is
//! the tape (its nodes and buffers reused). serde_json is the reference.
//!
//! `cargo bench --features bench-simd-json --bench json_read`; for
//! `valgrind --tool=callgrind`, `JSON_READ_CALLGRIND=BODY` (a body's name,
//! below) runs 10 000 reads of that body by each reader, each in a function
//! of its own (`read_*`), so instructions per read are read off one
//! profile. Figures in BENCHMARKS.md.
use criterion::{criterion_group, Criterion};
use css_push_exporter::ingest::wire::{self, AbnormalEvent, Detail, PushError};
use serde::Deserialize;
use simd_json::{Buffers, Node, StaticNode, Tape, INPUT_PADDING};
use std::borrow::Cow;
use std::cell::RefCell;
use std::hint::black_box;

#[path = "support/seed.rs"]
mod seed;
use seed::{seed_body, SEED};
const SIGNED: &str = include_str!("../tests/fixtures/push-error-signed.json");
const READS: usize = 10_000;

/// The bodies, by name: the samples as they are (pretty), and compact as
/// CSS sends them (`bench-seed` is `hot_path`'s seed body: a known
/// stream's, signed).
fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let compact = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap().to_string().into_bytes();
    vec![
        ("bench-seed", seed_body(4_102_444_800)),
        ("seed-pretty", SEED.as_bytes().to_vec()),
        ("signed-pretty", SIGNED.as_bytes().to_vec()),
        ("signed-compact", compact(SIGNED)),
    ]
}

/// What a reader hands on (`None`: declined), so that no reader's work is optimised away and
/// all can be checked to agree.
type Digest = Option<(usize, i64, u64, u64)>;

fn digest(p: &PushError) -> (usize, i64, u64, u64) {
    let details = p.abnormal_event.iter().map(|e| e.detail.len() as u64 + e.count).sum();
    let descs = p.abnormal_event.iter().flat_map(|e| &e.detail).map(|d| d.desc.len() as u64).sum();
    (p.stream_id.len() + p.domain.len() + p.sign.as_ref().map_or(0, |s| s.len()), p.data_time, details, descs)
}

/// simd-json's per-thread state: the padded copy of the body, its
/// buffers and the tape's nodes, all reused.
struct Simd {
    input: Vec<u8>,
    buffers: Buffers,
    tape: Option<Tape<'static>>,
}

thread_local! {
    static SIMD: RefCell<Simd> =
        RefCell::new(Simd { input: Vec::with_capacity(4096), buffers: Buffers::new(4096), tape: Some(Tape::null()) });
}

impl Simd {
    /// Copies `body` in, builds the tape and hands it to `read`.
    fn with_tape<R>(&mut self, body: &[u8], read: impl FnOnce(Tape<'_>) -> (Tape<'_>, R)) -> Option<R> {
        self.input.clear();
        self.input.extend_from_slice(body);
        self.input.resize(body.len() + INPUT_PADDING, 0);
        let mut tape = self.tape.take().unwrap_or_else(Tape::null).reset();
        let filled = simd_json::fill_tape_padded(&mut self.input, body.len(), &mut self.buffers, &mut tape);
        let (tape, out) = match filled {
            Ok(()) => {
                let (tape, out) = read(tape);
                (tape, Some(out))
            }
            Err(_) => (tape, None),
        };
        self.tape = Some(tape.reset());
        out
    }
}

/// Our scanner (and serde where it declines), as the exporter reads.
#[inline(never)]
fn read_scanner(body: &[u8]) -> Digest {
    wire::push_error_in_one_pass(body).as_ref().map(digest)
}

/// simd-json's serde API into the same `PushError`.
#[inline(never)]
fn read_simd_serde(body: &[u8]) -> Digest {
    SIMD.with_borrow_mut(|simd| {
        simd.with_tape(body, |tape| {
            let mut de = simd_json::Deserializer::from_tape(tape);
            let out = PushError::deserialize(&mut de)
                .ok()
                .filter(|p| p.event_type == Some(wire::EVENT_PUSH_ERROR))
                .as_ref()
                .map(digest);
            (de.into_tape(), out)
        })
    })
    .flatten()
}

/// simd-json's tape walked by hand into the same fields.
#[inline(never)]
fn read_simd_tape(body: &[u8]) -> Digest {
    SIMD.with_borrow_mut(|simd| {
        simd.with_tape(body, |tape| {
            let out = walk::push_error(&tape.0).as_ref().map(digest);
            (tape, out)
        })
    })
    .flatten()
}

/// serde_json into the same `PushError`.
#[inline(never)]
fn read_serde_json(body: &[u8]) -> Digest {
    serde_json::from_slice::<PushError>(body)
        .ok()
        .filter(|p| p.event_type == Some(wire::EVENT_PUSH_ERROR))
        .as_ref()
        .map(digest)
}

type Reader = fn(&[u8]) -> Digest;
const READERS: [(&str, Reader); 4] = [
    ("scanner", read_scanner),
    ("simd-json serde", read_simd_serde),
    ("simd-json tape", read_simd_tape),
    ("serde_json", read_serde_json),
];

/// The tape walked into a push error: the fields as the scanner reads
/// them for bodies as CSS writes them (integers, numeric strings, null);
/// anything else declined (`None`), as the scanner declines.
mod walk {
    use super::*;

    /// The nodes of one value: it and those nested in it.
    fn value<'t, 'i>(nodes: &'t [Node<'i>]) -> Option<(&'t [Node<'i>], &'t [Node<'i>])> {
        let count = match nodes.first()? {
            Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
            _ => 1,
        };
        (nodes.len() >= count).then(|| nodes.split_at(count))
    }

    /// An object's fields, each handed to `field` with its value's nodes.
    fn object<'t, 'i>(
        nodes: &'t [Node<'i>],
        mut field: impl FnMut(&'i str, &'t [Node<'i>]) -> Option<()>,
    ) -> Option<()> {
        let Some((Node::Object { len, .. }, mut rest)) = nodes.split_first() else { return None };
        for _ in 0..*len {
            let (Node::String(key), after) = rest.split_first()? else { return None };
            let (v, after) = value(after)?;
            field(key, v)?;
            rest = after;
        }
        Some(())
    }

    fn array<'t, 'i>(nodes: &'t [Node<'i>], mut item: impl FnMut(&'t [Node<'i>]) -> Option<()>) -> Option<()> {
        let Some((Node::Array { len, .. }, mut rest)) = nodes.split_first() else { return None };
        for _ in 0..*len {
            let (v, after) = value(rest)?;
            item(v)?;
            rest = after;
        }
        Some(())
    }

    fn str<'i>(nodes: &[Node<'i>]) -> Option<&'i str> {
        match nodes.first()? {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    fn int(nodes: &[Node]) -> Option<i64> {
        match nodes.first()? {
            Node::Static(StaticNode::I64(v)) => Some(*v),
            Node::Static(StaticNode::U64(v)) => i64::try_from(*v).ok(),
            Node::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn opt_int(nodes: &[Node]) -> Option<Option<i64>> {
        match nodes.first()? {
            Node::Static(StaticNode::Null) => Some(None),
            _ => int(nodes).map(Some),
        }
    }

    /// Notes field `bit` in `seen`; `None` if it was given before.
    fn once(seen: &mut u32, bit: u32) -> Option<()> {
        let was = *seen & 1 << bit;
        *seen |= 1 << bit;
        (was == 0).then_some(())
    }

    pub(super) fn push_error<'i>(nodes: &[Node<'i>]) -> Option<PushError<'i>> {
        let mut p = PushError::empty();
        let mut seen = 0;
        object(nodes, |key, v| {
            match key {
                "stream_id" => (once(&mut seen, 0)?, p.stream_id = Cow::Borrowed(str(v)?)),
                "data_time" => (once(&mut seen, 1)?, p.data_time = int(v).filter(|&t| t > 0)?),
                "event_type" => (once(&mut seen, 2)?, p.event_type = opt_int(v)?),
                "t" => (once(&mut seen, 3)?, p.t = opt_int(v)?),
                "sign" => (once(&mut seen, 4)?, p.sign = Some(Cow::Borrowed(str(v)?))),
                "appid" => (once(&mut seen, 5)?, p.appid = opt_int(v)?),
                "domain" => (once(&mut seen, 6)?, p.domain = Cow::Borrowed(str(v)?)),
                "path" => (once(&mut seen, 7)?, p.path = Cow::Borrowed(str(v)?)),
                "sequence" => (once(&mut seen, 8)?, p.sequence = Cow::Borrowed(str(v)?)),
                "report_interval" => (once(&mut seen, 9)?, p.report_interval = opt_int(v)?),
                "abnormal_event" => (once(&mut seen, 10)?, array(v, |e| event(e, &mut p.abnormal_event))?),
                _ => ((), ()),
            };
            Some(())
        })?;
        (seen & 3 == 3 && p.event_type == Some(wire::EVENT_PUSH_ERROR)).then_some(p)
    }

    fn event<'i>(nodes: &[Node<'i>], out: &mut wire::Events<'i>) -> Option<()> {
        out.push(AbnormalEvent::default());
        let e = out.last_mut()?;
        let mut seen = 0;
        object(nodes, |key, v| {
            match key {
                "type" => (once(&mut seen, 0)?, e.kind = u64::try_from(int(v)?).ok()?),
                "count" => (once(&mut seen, 1)?, e.count = u64::try_from(int(v)?).ok()?),
                "detail" => (once(&mut seen, 2)?, array(v, |d| detail(d, &mut e.detail))?),
                _ => ((), ()),
            };
            Some(())
        })?;
        (seen & 3 == 3).then_some(())
    }

    fn detail<'i>(nodes: &[Node<'i>], out: &mut wire::Details<'i>) -> Option<()> {
        let mut d = Detail::default();
        let mut seen = 0;
        object(nodes, |key, v| {
            if key == "desc" {
                once(&mut seen, 0)?;
                d.desc = Cow::Borrowed(str(v)?);
            }
            Some(())
        })?;
        out.push(d);
        Some(())
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_read");
    for (name, body) in bodies() {
        for (reader, read) in READERS {
            group.bench_function(format!("{reader}/{name}"), |b| b.iter(|| read(black_box(&body))));
        }
    }
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    eprintln!("simd-json: {} ({} bytes of padding)", simd_json::Deserializer::algorithm(), INPUT_PADDING);
    // Every reader reads every body, and all read it alike.
    for (name, body) in bodies() {
        let expected = read_serde_json(&body);
        assert!(expected.is_some(), "{name}");
        for (reader, read) in READERS {
            assert_eq!(read(&body), expected, "{reader} on {name}");
        }
    }
    if let Ok(name) = std::env::var("JSON_READ_CALLGRIND") {
        let (_, body) = bodies().into_iter().find(|(n, _)| *n == name).expect("a body's name");
        eprintln!("{name}: {} bytes", body.len());
        for (_, read) in READERS {
            for _ in 0..READS {
                black_box(read(black_box(&body)));
            }
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
