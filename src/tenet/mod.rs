//! Tenet's HTTP API: the wire types, decision parsing and the client.

pub mod client;
pub mod decision;
pub mod wire;

#[cfg(test)]
pub(crate) mod arbitrary;

pub use client::{ApiKey, ClientConfig, TenetClient};
