//! Black-box tests: the real server on a loopback port, spoken to over HTTP.
mod callback;
mod helpers;
mod lifecycle;
mod properties;
mod security;
mod shutdown;
mod simulate;
mod web_config;
mod tools;
mod dashboards;
mod prometheus_e2e;
mod alerting_e2e;
