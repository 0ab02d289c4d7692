//! From a callback body to recorded state: parse ([`wire`]), verify
//! ([`signature`]), de-duplicate (`dedup`), record ([`pipeline`]).
pub(crate) mod dedup;
pub mod event;
pub mod outcome;
pub mod pipeline;
pub mod signature;
pub mod wire;
