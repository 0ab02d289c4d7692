//! Property tests: whatever arrives, the handler does not panic,
//! the exposition stays readable, and the counters hold exactly the sum of
//! the accepted `count`s. In process, through the same pipeline the route uses.
use crate::helpers::{Metrics, NOW_SECS, SEED};
use css_push_exporter::callback_body::PushError;
use css_push_exporter::clock::{Clock, ManualClock};
use css_push_exporter::ingest::outcome::{Outcome, Rejection};
use css_push_exporter::Config;
use css_push_exporter::Exporter;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn pipeline(flags: &[&str]) -> Exporter {
    let config = Config::from_flags(flags.iter().copied()).unwrap();
    Exporter::new(&config, Arc::new(ManualClock::new(Duration::from_secs(NOW_SECS))) as Arc<dyn Clock>)
}

/// Label values with the characters that need escaping, and few enough
/// distinct values that streams collide and callbacks repeat.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_owned()), Just("b".to_owned()), "[a-c\"\\\\\n é{}=,]{0,6}"]
}

/// An integer as CSS may send it: a JSON number or a numeric string.
fn int(v: u64, as_string: bool) -> Value {
    if as_string {
        v.to_string().into()
    } else {
        v.into()
    }
}

#[derive(Debug, Clone)]
struct Event {
    kind: u64,
    count: u64,
    details: Vec<String>,
    as_string: bool,
}

fn event() -> impl Strategy<Value = Event> {
    let desc = prop_oneof![
        (0u32..120_000).prop_map(|ms| format!("video frame arrive interval too long, interval={ms}(msec)")),
        ".{0,20}",
    ];
    // Beyond i64::MAX is refused as out of range (wire unit tests), not generated here.
    let kind = prop_oneof![1u64..=16, 0u64..300, Just(i64::MAX as u64)];
    let count = prop_oneof![0u64..1_000_000, Just(i64::MAX as u64)];
    (kind, count, prop::collection::vec(desc, 0..4), any::<bool>())
        .prop_map(|(kind, count, details, as_string)| Event { kind, count, details, as_string })
}

#[derive(Debug, Clone)]
struct Callback {
    domain: String,
    app: String,
    stream: String,
    data_time: u64,
    events: Vec<Event>,
}

impl Callback {
    fn body(&self) -> String {
        let events: Vec<Value> = self
            .events
            .iter()
            .map(|e| {
                let detail: Vec<Value> = e.details.iter().map(|d| json!({"desc": d, "occur_time": 1})).collect();
                json!({"type": int(e.kind, e.as_string), "count": int(e.count, e.as_string), "detail": detail})
            })
            .collect();
        let data_time = i64::try_from(self.data_time).expect("a 2025 data_time");
        PushError::new(&self.domain, &self.app, &self.stream, data_time).events(Value::Array(events)).body()
    }

    /// What makes a retry a retry.
    fn identity(&self) -> (String, String, String, u64) {
        (self.domain.clone(), self.app.clone(), self.stream.clone(), self.data_time)
    }
}

fn callback() -> impl Strategy<Value = Callback> {
    (label(), label(), label(), 0u64..4, prop::collection::vec(event(), 0..5)).prop_map(
        |(domain, app, stream, t, events)| Callback {
            domain,
            app,
            stream,
            data_time: 1_764_000_000_000 + t * 5000,
            events,
        },
    )
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_answered_and_count_nothing(body in prop::collection::vec(any::<u8>(), 0..400)) {
        let p = pipeline(&[]);
        let handled = p.handle(&body, None);
        prop_assert!(matches!(handled.outcome, Outcome::Rejected(Rejection::Malformed(_))), "{:?}", handled);
        let m = Metrics::parse(&p.render());
        prop_assert_eq!(m.count("css_push_errors_total"), 0);
    }

    /// The seed with one field replaced by any JSON value, or one more field.
    #[test]
    fn any_value_in_any_field_is_accepted_or_refused_cleanly(
        field in prop::sample::select(vec!["event_type", "data_time", "domain", "path", "stream_id", "sequence",
            "appid", "abnormal_event", "t", "sign", "unknown"]),
        in_event in prop::sample::select(vec!["", "type", "count", "detail"]),
        value in json_value(),
    ) {
        let mut body: Value = serde_json::from_str(SEED).unwrap();
        if in_event.is_empty() {
            body[field] = value;
        } else {
            body["abnormal_event"][0][in_event] = value;
        }
        let p = pipeline(&[]);
        let handled = p.handle(body.to_string().as_bytes(), None);
        let m = Metrics::parse(&p.render());
        if handled.outcome != Outcome::Accepted {
            prop_assert_eq!(m.count("css_push_errors_total"), 0, "{:?}", handled);
        }
        prop_assert_eq!(m.sum("css_push_callbacks_total", &[]), 1.0);
    }

    #[test]
    fn counters_hold_the_sum_of_accepted_counts(
        callbacks in prop::collection::vec(callback(), 1..25),
        max_streams in prop_oneof![Just(2usize), Just(50_000)],
    ) {
        let p = pipeline(&["--max-streams", &max_streams.to_string()]);
        let mut seen = HashSet::new();
        let (mut total, mut late_details, mut accepted) = (0u64, 0usize, 0usize);
        for c in &callbacks {
            let handled = p.handle(c.body().as_bytes(), None);
            if seen.insert(c.identity()) {
                prop_assert_eq!(&handled.outcome, &Outcome::Accepted);
                accepted += 1;
                for e in &c.events {
                    total = total.saturating_add(e.count);
                    if e.kind == 6 || e.kind == 7 {
                        late_details += e.details.len();
                    }
                }
            } else {
                prop_assert_eq!(&handled.outcome, &Outcome::Duplicate);
            }
        }
        let m = Metrics::parse(&p.render());
        // Counts below 2^53 are exact in the float the exposition carries.
        if total < 1 << 53 {
            prop_assert_eq!(m.sum("css_push_errors_total", &[]), total as f64);
        }
        prop_assert_eq!(m.sum("css_push_callbacks_total", &[("outcome", "accepted")]), accepted as f64);
        prop_assert_eq!(m.sum("css_push_callbacks_total", &[("outcome", "duplicate")]), (callbacks.len() - accepted) as f64);
        let observed = m.sum("css_push_frame_interval_seconds_count", &[]) + m.sum("css_push_unparsed_details_total", &[]);
        prop_assert_eq!(observed, late_details as f64, "every late-frame detail is observed or counted unparsed");
        prop_assert!(m.get("css_push_streams", &[]).unwrap() <= max_streams as f64);
    }
}
