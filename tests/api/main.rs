//! Black-box tests: the real server on a loopback port, spoken to over HTTP.
mod callback;
mod helpers;
mod lifecycle;
mod shutdown;
