//! Helpers the test targets share (`api`, `e2e`, `deploy`, `slow`), included by
//! each as `mod common`: the server in process and as a child process, raw
//! HTTP, /metrics parsed, callback bodies, and the external tools.
// Each target uses only part of these.
#![allow(dead_code)]
pub mod binary;
pub mod helpers;
pub mod raw_http;
pub mod tools;
