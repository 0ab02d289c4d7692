//! The status page's view of the push-health SLO accounting: how full its
//! rooms are (and what it had no room for), push ends by cause since start,
//! and the streams with the most bad time lately (`html` renders it).
use crate::catalog::EndCause;
use crate::ingest::event::Transition;
use crate::slo::{BadStream, Saturation};
use crate::text::parse_labels;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// Streams listed by bad time.
pub const TOP_BAD_STREAMS: usize = 10;

/// Push ends per cause since start: one counter each, no lock.
#[derive(Default)]
pub struct EndCauses([AtomicU64; EndCause::ALL.len()]);

impl EndCauses {
    pub fn count(&self, t: &Transition<'_>) {
        if let Some(cause) = t.cause {
            self.0[cause as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn view(&self) -> Vec<CauseCount> {
        EndCause::ALL
            .iter()
            .map(|&c| CauseCount {
                cause: c.label(),
                description: c.description(),
                abnormal: c.is_abnormal(),
                ends: self.0[c as usize].load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// What the page shows of the SLO accounting.
#[derive(Debug, Serialize)]
pub struct SloView {
    /// Its rooms: `started` streams and `report_only` ones.
    pub saturation: Vec<RoomView>,
    /// Push ends by cause since start; every cause, 0 included.
    pub end_causes: Vec<CauseCount>,
    /// The streams with the most bad time over the page's SLO span.
    pub top_bad_streams: Vec<BadStreamView>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RoomView {
    pub kind: &'static str,
    pub tracked: usize,
    pub limit: usize,
    /// Bad reports it had no room for since start: time missing from the SLI.
    pub dropped_reports: u64,
}

#[derive(Debug, Serialize)]
pub struct CauseCount {
    pub cause: &'static str,
    pub description: &'static str,
    /// An end the outage rule counts (anything but the pusher stopping).
    pub abnormal: bool,
    pub ends: u64,
}

#[derive(Debug, Serialize)]
pub struct BadStreamView {
    pub domain: String,
    pub app: String,
    pub stream: String,
    pub slo: String,
    pub bad_seconds: f64,
}

/// The view from the accounting's figures and the counted ends.
pub fn view(saturation: &[Saturation], top: Vec<BadStream>, causes: &EndCauses) -> SloView {
    let saturation = saturation
        .iter()
        .map(|s| RoomView { kind: s.kind.label(), tracked: s.tracked, limit: s.limit, dropped_reports: s.dropped })
        .collect();
    let top_bad_streams = top
        .into_iter()
        .map(|b| {
            let mut values = parse_labels(&b.labels).into_iter().map(|(_, v)| v);
            let (domain, app, stream) = (values.next(), values.next(), values.next());
            BadStreamView {
                domain: domain.unwrap_or_default(),
                app: app.unwrap_or_default(),
                stream: stream.unwrap_or_default(),
                slo: b.slo,
                bad_seconds: b.bad_secs,
            }
        })
        .collect();
    SloView { saturation, end_causes: causes.view(), top_bad_streams }
}
