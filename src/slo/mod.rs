//! Push-health SLO accounting (issues 19, 24): per (domain, app), how many
//! stream-seconds were live and how many of those were bad (outage gaps
//! included), for each SLO the SLO file defines. An observer of ingest's
//! events (the push sessions themselves live in `state`) and a collector
//! for `/metrics`; the exporter wires it, nothing else knows it.
pub mod accounting;
pub mod bad_time;
pub mod definition;
pub mod live;
pub mod monotonic;
mod spans;

pub use accounting::{AppHealth, BadStream, Kind, Saturation, SloAccounting};
pub use bad_time::BadTime;
pub use definition::{Slo, SloFileError};
