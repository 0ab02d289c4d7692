//! The consumers of what ingest observes ([`crate::ingest::event`]): the
//! callback tallies behind `css_push_callbacks_total` and the status page's
//! table, the exporter-level metrics, and the log. The status page's rings
//! are one more observer, in [`crate::status_page`].
pub mod auth;
pub mod callbacks;
pub(crate) mod log;
pub(crate) mod metrics;
pub mod ratelog;
