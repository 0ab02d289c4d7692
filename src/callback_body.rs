//! CSS callback bodies as CSS writes them: the one place that does. Tests,
//! benches and `simulate` build every push error and push start/end body
//! here, so a change in what CSS sends is made once.
//!
//! A body starts from the fields CSS always sends, with example values
//! (secrets included: `stream_param` and `user_ip` must never reach the
//! metrics, and tests look for these values to prove it); the builder
//! methods change what a caller cares about. [`PushError::body`] and
//! [`Lifecycle::body`] give the JSON text, [`PushError::json`] and
//! [`Lifecycle::json`] a value to take apart or spoil on purpose.
use crate::ingest::signature;
use serde::Serialize;
use serde_json::{json, Value};

/// `appid` of every example body.
pub const APPID: u64 = 1_250_000_000;
/// `stream_param` of every example body: its `txSecret` is the push secret.
pub const STREAM_PARAM: &str = "txSecret=f5828cd4a8a09109304b060172fb3960&txTime=665982e4";
/// `user_ip` of every example body (a documentation address).
pub const USER_IP: &str = "203.0.113.7";
/// `sequence` of a push error unless [`PushError::sequence`] changes it.
pub const SEQUENCE: &str = "2263925735398723142";

/// A callback body: the fields of one event kind, then `t` and `sign` once
/// signed, as CSS adds them when a callback key is set.
#[derive(Debug, Clone, Serialize)]
pub struct Body<F> {
    #[serde(flatten)]
    fields: F,
    /// What every kind carries about the pusher.
    stream_param: String,
    user_ip: String,
    #[serde(flatten)]
    signature: Option<Signature>,
}

impl<F: Serialize> Body<F> {
    fn unsigned(fields: F) -> Self {
        Self { fields, stream_param: STREAM_PARAM.to_owned(), user_ip: USER_IP.to_owned(), signature: None }
    }

    /// `stream_param` and `user_ip`, the pusher's secrets.
    #[must_use]
    pub fn pusher(mut self, stream_param: &str, user_ip: &str) -> Self {
        stream_param.clone_into(&mut self.stream_param);
        user_ip.clone_into(&mut self.user_ip);
        self
    }

    /// Signed with `key`, valid until `t` (Unix seconds).
    #[must_use]
    pub fn signed(mut self, key: &str, t: i64) -> Self {
        self.signature = Some(Signature::new(key, t));
        self
    }

    /// The JSON text CSS would post.
    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("a body serializes")
    }

    /// The body as a JSON value.
    pub fn json(&self) -> Value {
        serde_json::to_value(self).expect("a body serializes")
    }
}

/// A push error callback (`event_type` 321): one stream's abnormal events
/// in one report interval.
pub type PushError = Body<PushErrorFields>;

/// A push start (`event_type` 1) or push end (0) callback.
pub type Lifecycle = Body<LifecycleFields>;

/// The fields of a [`PushError`].
#[derive(Debug, Clone, Serialize)]
pub struct PushErrorFields {
    event_type: u32,
    appid: u64,
    domain: String,
    path: String,
    stream_id: String,
    sequence: String,
    data_time: i64,
    report_interval: u32,
    timeout: u32,
    interface: &'static str,
    abnormal_event: Value,
}

/// `t` and `sign`, as CSS adds them when a callback key is set.
#[derive(Debug, Clone, Serialize)]
struct Signature {
    t: i64,
    sign: String,
}

impl Signature {
    fn new(key: &str, t: i64) -> Self {
        Self { t, sign: signature::sign(key, t) }
    }
}

impl Body<PushErrorFields> {
    /// The report of `stream` (`path` is the app) at `data_time_ms`, with no
    /// abnormal events yet.
    pub fn new(domain: &str, app: &str, stream: &str, data_time_ms: i64) -> Self {
        Body::unsigned(PushErrorFields {
            event_type: 321,
            appid: APPID,
            domain: domain.to_owned(),
            path: app.to_owned(),
            stream_id: stream.to_owned(),
            sequence: SEQUENCE.to_owned(),
            data_time: data_time_ms,
            report_interval: 5000,
            timeout: 5000,
            interface: "general_callback",
            abnormal_event: Value::Array(Vec::new()),
        })
    }

    /// The `abnormal_event` array (see [`event`] and [`frame_gaps`]); any
    /// JSON, so a test can send what CSS should not.
    #[must_use]
    pub fn events(mut self, events: Value) -> Self {
        self.fields.abnormal_event = events;
        self
    }

    /// The push session's `sequence`.
    #[must_use]
    pub fn sequence(mut self, sequence: &str) -> Self {
        sequence.clone_into(&mut self.fields.sequence);
        self
    }

    /// `report_interval`, milliseconds (CSS's default is 5000).
    #[must_use]
    pub fn report_interval(mut self, ms: u32) -> Self {
        self.fields.report_interval = ms;
        self
    }
}

/// The fields of a [`Lifecycle`].
#[derive(Debug, Clone, Serialize)]
pub struct LifecycleFields {
    event_type: u32,
    appid: u64,
    /// The push domain (CSS calls it `app` here).
    app: String,
    appname: String,
    stream_id: String,
    channel_id: String,
    sequence: String,
    event_time: u64,
    errcode: i64,
    errmsg: String,
    node: &'static str,
    set_id: u32,
    width: u32,
    height: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    push_duration: Option<String>,
}

impl Body<LifecycleFields> {
    /// The push start of `stream` (app `app` of `domain`) in session
    /// `sequence`, at `event_time` (Unix seconds).
    pub fn start(domain: &str, app: &str, stream: &str, sequence: &str, event_time: u64) -> Self {
        Body::unsigned(LifecycleFields {
            event_type: 1,
            appid: APPID,
            app: domain.to_owned(),
            appname: app.to_owned(),
            stream_id: stream.to_owned(),
            channel_id: stream.to_owned(),
            sequence: sequence.to_owned(),
            event_time,
            errcode: 0,
            errmsg: "ok".to_owned(),
            node: "198.51.100.20",
            set_id: 2,
            width: 1280,
            height: 720,
            push_duration: None,
        })
    }

    /// Made the push end instead, after `duration_ms` (CSS sends it as a
    /// string), for the reason `errcode`/`errmsg`.
    #[must_use]
    pub fn end(mut self, duration_ms: u64, errcode: i64, errmsg: &str) -> Self {
        self.fields.event_type = 0;
        self.fields.push_duration = Some(duration_ms.to_string());
        self.fields.errcode = errcode;
        errmsg.clone_into(&mut self.fields.errmsg);
        self
    }
}

/// Adds `t` and `sign` (valid until `t`, signed with `key`) to any JSON
/// object: for a body a test changed after building it.
pub fn sign_json(body: &mut Value, key: &str, t: i64) {
    let Signature { t, sign } = Signature::new(key, t);
    body["t"] = t.into();
    body["sign"] = sign.into();
}

/// One abnormal event: `count` errors of type `kind`, with `detail`
/// entries if any (CSS lists a few of the errors there).
pub fn event(kind: u64, count: u64, detail: Vec<Value>) -> Value {
    let mut e = json!({"type": kind, "count": count});
    if !detail.is_empty() {
        e["detail"] = Value::Array(detail);
    }
    e
}

/// Late frames of `media` (`"video"` or `"audio"`): one error per gap, each
/// with its [`frame_gap_detail`]. Video is error type 6, audio 7.
pub fn frame_gaps(media: &str, gaps_ms: &[u64], occur_time_ms: Option<i64>) -> Value {
    let kind = if media == "audio" { 7 } else { 6 };
    let detail = gaps_ms.iter().map(|&ms| frame_gap_detail(media, ms, occur_time_ms)).collect();
    event(kind, gaps_ms.len() as u64, detail)
}

/// The detail entry CSS writes for one late frame of `media`: the gap in
/// `desc` (`interval=MS(msec)`), and `occur_time` if given.
pub fn frame_gap_detail(media: &str, gap_ms: u64, occur_time_ms: Option<i64>) -> Value {
    let mut d = json!({"desc": format!("{media} frame arrive interval too long, interval={gap_ms}(msec)")});
    if let Some(t) = occur_time_ms {
        d["occur_time"] = t.into();
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::wire;

    #[test]
    fn a_push_error_carries_every_field_css_sends_and_parses() {
        let body = PushError::new("d.example.com", "live", "room-1", 1_764_000_000_000)
            .events(json!([frame_gaps("video", &[3046, 2953], Some(1)), event(10, 1, vec![])]))
            .signed("k", 1_764_000_600);
        let v = body.json();
        for field in ["appid", "sequence", "report_interval", "timeout", "interface", "stream_param", "user_ip"] {
            assert!(v.get(field).is_some(), "{field} missing: {v}");
        }
        assert_eq!(
            (v["t"].as_i64(), v["sign"].as_str()),
            (Some(1_764_000_600), Some(&*signature::sign("k", 1_764_000_600)))
        );
        assert_eq!(v["abnormal_event"][0]["count"], 2);
        assert_eq!(
            v["abnormal_event"][0]["detail"][1]["desc"],
            "video frame arrive interval too long, interval=2953(msec)"
        );
        let text = body.body();
        let parsed = wire::push_error_in_one_pass(text.as_bytes()).expect("the exporter reads it");
        assert_eq!(parsed.abnormal_event.len(), 2);
    }

    #[test]
    fn a_push_end_says_how_long_and_why_and_a_start_does_not() {
        let start = Lifecycle::start("d", "live", "s", "q", 1_764_000_000).json();
        assert_eq!((start["event_type"].as_u64(), start.get("push_duration")), (Some(1), None));
        assert!(start.get("t").is_none() && start.get("sign").is_none());
        let end = Lifecycle::start("d", "live", "s", "q", 1_764_000_000).end(90_000, 3, "push timeout").json();
        assert_eq!(end["event_type"], 0);
        assert_eq!(end["push_duration"], "90000");
        assert_eq!((end["errcode"].as_i64(), end["errmsg"].as_str()), (Some(3), Some("push timeout")));
    }
}
