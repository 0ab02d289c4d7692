//! From a callback body to recorded state: parse ([`wire`]), verify
//! ([`signature`]), de-duplicate (`state::dedup`), record ([`pipeline`]).
pub mod pipeline;
pub mod quote;
pub mod signature;
pub mod wire;
