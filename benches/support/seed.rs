//! The benches' seed callback: the seed push error as one known stream's
//! report, signed, so that `hot_path` and `json_read` time the same bytes.
//! Each bench is a crate of its own: they include this file with `#[path]`.
use css_push_exporter::callback_body;

pub const SEED: &str = include_str!("../../tests/fixtures/push-error-seed.json");
/// The callback key the benches sign with.
pub const KEY: &str = "bench-key";
/// The seed's `data_time` (ms): a stream's first report of the run.
pub const DATA_TIME_MS: i64 = 1_764_000_000_000;

/// The seed as stream `stream-000` at [`DATA_TIME_MS`], signed with
/// [`KEY`] and `t`, compact as CSS sends it.
pub fn seed_body(t: i64) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_str(SEED).unwrap();
    v["stream_id"] = "stream-000".into();
    v["data_time"] = DATA_TIME_MS.into();
    callback_body::sign_json(&mut v, KEY, t);
    v.to_string().into_bytes()
}
