//! Black-box tests: the real server on a loopback port, spoken to over HTTP.
mod alerting_e2e;
mod callback;
mod child;
mod dashboards;
mod helpers;
mod hostile;
mod lifecycle;
mod prometheus_e2e;
mod properties;
mod security;
mod shutdown;
mod simulate;
mod tools;
mod web_config;
