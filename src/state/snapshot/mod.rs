//! The state file's content: what survives a restart, and how.
//!
//! One job a file: the format and its bounds (`format`, whose
//! documentation describes the layout byte by byte), encoding the state
//! shard by shard (`encode`), decoding and checking a file (`decode`),
//! reading keys back (`keys`), and restoring what was decoded under
//! today's flags (`restore`).
mod decode;
mod encode;
mod format;
mod keys;
mod restore;

pub use decode::StateSnapshot;
pub use encode::{encode, encode_with, Encoded};
pub use format::{max_len, VERSION};
pub(crate) use keys::key_parts;
pub use restore::Restored;

/// What the tests of every part share.
#[cfg(test)]
mod tests {
    use crate::cli::Config;
    use crate::state::dedup::Dedup;
    use crate::state::streams::{ErrorReport, StreamId};
    use crate::state::State;

    /// A state with a live stream, an ended one, three with reports (one
    /// past `--max-streams`) and one remembered callback.
    pub(super) fn filled() -> (State, Dedup) {
        let state = State::new(&Config::from_flags(["--max-streams", "2"]).unwrap().limits());
        let dedup = Dedup::new(900, 100);
        let id = |stream| StreamId { domain: "d", app: "a", stream };
        state.apps.admit("d", "a", 1000);
        state.lifecycles.start(id("s1"), false, 7, 1000, |live| {
            state.streams.set_live(&state.key(id("s1")), live, 1000);
        });
        state.lifecycles.end(id("s2"), true, 8, 1000, |_| {});
        let report = ErrorReport { errors: &[(6, 1)], frame_max: [Some(2.5), None], data_time_secs: 999.5 };
        for s in ["s1", "s3", "s4"] {
            state.streams.record_report(&state.key(id(s)), &report, 1000);
        }
        dedup.check_and_insert(42, 1000);
        (state, dedup)
    }
}
