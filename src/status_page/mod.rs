//! What the status page shows: what reached the exporter lately, kept by
//! [`Recent`] (an observer of ingest's events) at the cost of one short
//! lock per event: refusals grouped by sender and reason ([`refusals`]),
//! each stream's errors over the last 15 minutes ([`window`]), and the
//! latest reports in a fixed-size ring (entries are recycled). The
//! [`StatusPage`] is built from them, the callback tallies and the
//! exporter's state on each request.
//!
//! One job a file: the observer and how it builds the page (`recent`), the
//! ring of the latest reports (`ring`), the refusal groups (`refusals`),
//! each stream's window (`window`), the page's content types (`content`),
//! how its sections are built from their inputs (`sections`), the SLO
//! section (`slo`), the HTML (`html`) and the two answers served
//! (`rendered`).
mod content;
pub(crate) mod html;
mod recent;
pub mod refusals;
pub mod rendered;
mod ring;
mod sections;
pub mod slo;
pub mod window;

pub use content::{
    AppSummary, Bound, CallbackTally, ErrorCount, Listener, LiveStreams, NodeStream, NodeSummary, PageInputs,
    ReportView, SloSummary, StatusPage, StreamErrors, TopStreams, SLO_SPAN_SECS,
};
pub use recent::{Recent, REPORTS_SHOWN};
pub use sections::{live_streams, TOP_STREAMS};

/// What the tests of every part share.
#[cfg(test)]
mod tests {
    use super::{PageInputs, Recent};
    use crate::ingest::event::{Observer, ReportAccepted};
    use crate::observe::callbacks::CallbackTallies;
    use crate::state::streams::StreamId;
    use std::sync::Arc;

    pub(super) fn inputs() -> PageInputs {
        PageInputs { authenticated: true, ..PageInputs::default() }
    }

    pub(super) fn recent(now_secs: u64) -> Recent {
        Recent::new(now_secs, Arc::new(CallbackTallies::new()))
    }

    pub(super) fn report(
        r: &Recent,
        at_secs: u64,
        sent: StreamId<'_>,
        errors: &[(u8, u64)],
        frame_max: [Option<f64>; 2],
    ) {
        let key = crate::state::key::StreamKey::new(sent, 64);
        r.report(&ReportAccepted { frame_max, ..ReportAccepted::for_test(sent, &key, errors, at_secs) });
    }

    pub(super) fn id(stream: &str) -> StreamId<'_> {
        StreamId { domain: "d", app: "live", stream }
    }
}
