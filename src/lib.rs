//! css-push-exporter: Tencent Cloud CSS push error callbacks as Prometheus metrics.
//!
//! A callback flows through the modules in this order:
//!
//! 1. [`http`] receives `POST /callback` (routes, listeners, web config);
//! 2. [`ingest`] parses the body ([`ingest::wire`]), verifies its signature
//!    ([`ingest::signature`]), drops CSS's retries (`state::dedup`) and
//!    records what is left ([`ingest::pipeline`]), naming codes through
//!    `catalog`; it tells one observer what happened as typed events
//!    ([`ingest::event`]);
//! 3. [`state`] holds what was recorded: streams, their push lifecycles,
//!    (domain, app) pairs, the clock that ages them, and the state file
//!    that carries them over restarts;
//! 4. [`expose`] renders it all for `GET /metrics`: every part that holds
//!    metrics implements [`expose::Collector`], with names from one table.
//!
//! The observers of those events: [`observe`] (the callback tallies, the
//! exporter-level metrics, the log), [`status_page`], which keeps the
//! latest callbacks, refused and accepted, for the status page (`GET /`),
//! the SLO accounting ([`slo`]) and [`timeline`], each stream's recent
//! push sessions and bad intervals for its stream page.
//!
//! [`exporter::Exporter`] is the composition root: it ties ingest, state,
//! the observers and exposition together without HTTP; [`Application`]
//! serves it. [`cli`] owns the server's flags (`main.rs` the command line,
//! `simulate` its own; `durations` how they write durations); [`text`] and
//! `catalog` are the leaves every stage shares.
//!
//! With the `simulate` feature (on by default), `callback_body` writes CSS
//! callback bodies: the one builder tests, benches and `simulate` use.
#![forbid(unsafe_code)]
#[cfg(feature = "simulate")]
pub mod callback_body;
pub(crate) mod catalog;
pub mod cli;
pub(crate) mod durations;
pub mod exporter;
pub mod expose;
pub mod http;
pub mod ingest;
pub mod logging;
pub mod nodes;
pub mod observe;
#[cfg(feature = "simulate")]
pub mod simulate;
pub mod slo;
pub mod state;
pub mod status_page;
pub(crate) mod sync;
pub mod text;
pub mod timeline;

pub use cli::Config;
pub use exporter::Exporter;
pub use http::startup::Application;
pub use state::clock;
