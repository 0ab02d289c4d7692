//! Push-health SLO accounting (issue 19): per (domain, app), how many
//! stream-seconds were live and how many of those were bad, for each SLO the
//! SLO file defines. An observer of ingest's events and a collector for
//! `/metrics`; the exporter wires it, nothing else knows it.
pub mod accounting;
pub mod definition;
mod monotonic;
mod ring;

pub use accounting::{AppHealth, SloAccounting};
pub use definition::{Slo, SloFileError};
