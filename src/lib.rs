//! css-push-exporter: Tencent Cloud CSS push error callbacks as Prometheus metrics.
pub mod apps;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod dedup;
pub mod exposition;
pub mod metrics;
pub mod pipeline;
pub mod routes;
pub mod signature;
pub mod simulate;
pub mod startup;
pub mod streams;
pub mod webconfig;
pub mod wire;

pub use config::Config;
pub use startup::Application;
