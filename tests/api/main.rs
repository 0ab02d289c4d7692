//! Black-box tests: the real server on a loopback port, spoken to over HTTP.
mod callback;
mod helpers;
mod lifecycle;
mod shutdown;
mod tools;
mod dashboards;
mod prometheus_e2e;
mod alerting_e2e;
