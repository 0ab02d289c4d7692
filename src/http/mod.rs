//! The HTTP front: the routes, the listeners and servers that carry them,
//! and the web configuration (TLS, basic auth) that guards `/metrics`.
pub(crate) mod routes;
pub mod startup;
pub mod webconfig;
