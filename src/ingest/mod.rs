//! From a callback body to recorded state: parse ([`wire`]), verify
//! ([`signature`]), de-duplicate (`state::dedup`), record ([`pipeline`]).
pub mod event;
pub mod outcome;
pub mod pipeline;
pub mod retries;
pub mod signature;
pub mod wire;
