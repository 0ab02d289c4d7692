//! Where else the bad time of push sessions goes, as the SLO accounting
//! counts it: the same milliseconds, each once (the union of a stream's bad
//! reports, clipped to the session the report names), so a breakdown by
//! another dimension (the access node) adds up to the pairs' bad time
//! without keeping its own copy of every stream's bad spans.
use crate::ingest::event::ReportAccepted;

pub trait BadTime: Send + Sync {
    /// `added_ms` of the session `r` was matched to became bad for the SLO
    /// at index `slo` (definition order). Called under a stream shard's
    /// lock: keep it short.
    fn bad(&self, r: &ReportAccepted<'_>, slo: usize, added_ms: u64);
}
