//! The HTTP front: the routes, the listeners and servers that carry them,
//! the limits that keep them answering, and the web configuration (TLS,
//! basic auth) that guards `/metrics`.
pub(crate) mod answers;
pub mod basic_auth;
pub(crate) mod body;
pub(crate) mod cidr;
pub(crate) mod headers;
pub(crate) mod limits;
pub(crate) mod peer;
pub(crate) mod routes;
pub(crate) mod server;
pub(crate) mod stamped;
pub mod startup;
pub mod webconfig;
