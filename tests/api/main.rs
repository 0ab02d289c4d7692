//! Black-box tests: the real server on a loopback port, spoken to over HTTP,
//! in process or as the real binary. Hermetic: nothing beyond Rust and the
//! loopback interface, no wall-clock speed asserted; what needs external
//! tools or time lives in `tests/e2e/` and `tests/deploy.rs`.
#[path = "../common/mod.rs"]
mod common;
use common::{binary, helpers, raw_http, tools};

mod auth_hardening;
mod callback;
mod ci_script;
mod docs;
mod flag_tables;
mod hostile;
mod layering;
mod lifecycle;
mod metric_contract;
mod nodes;
mod operator;
mod properties;
mod python_rules;
mod scrape_hardening;
mod security;
mod shutdown;
mod simulate;
mod slo;
mod slo_session;
mod state_file;
mod state_file_hardening;
mod status;
mod timeline;
mod tools_policy;
mod web_config;
