//! Black-box tests: the real server on a loopback port, spoken to over HTTP.
mod alerting_e2e;
mod binary;
mod callback;
mod dashboards;
mod helpers;
mod lifecycle;
mod metric_contract;
mod prometheus_e2e;
mod properties;
mod security;
mod shutdown;
mod simulate;
mod state_file;
mod status;
mod tools;
mod web_config;
