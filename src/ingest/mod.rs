//! From a callback body to recorded state: parse ([`wire`]), verify
//! ([`signature`]), de-duplicate (`dedup`), record ([`pipeline`]).
pub(crate) mod dedup;
pub mod pipeline;
pub mod quote;
pub mod signature;
pub mod wire;
