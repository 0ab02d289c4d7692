//! What `cargo test` does not run by default: tests that need external
//! tools (Prometheus, promtool, Alertmanager, amtool, Chromium, python3)
//! (timing and soak tests: `tests/slow.rs`). Each is
//! `#[ignore = "needs TOOL: ..."]`, so a plain `cargo test` lists it as ignored;
//! `bash .ci/run` installs the tools and runs them all
//! (`cargo test -- --include-ignored`), or by hand, once the tools are there:
//! `cargo test --test e2e -- --include-ignored`. The dashboard lints here
//! need nothing and always run.
#[path = "../common/mod.rs"]
mod common;
use common::{helpers, tools};

mod alerting_e2e;
mod browser;
mod dashboards;
mod exposition;
mod generators;
mod nodes_e2e;
mod prometheus_e2e;
mod slo_alerting;
mod slo_fleet;
mod slo_rules;
