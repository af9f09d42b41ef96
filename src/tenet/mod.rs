//! Tenet's HTTP API: the wire types, decision parsing and the client.

pub mod client;
pub mod decision;
pub mod wire;

pub use client::{ApiKey, ClientConfig, TenetClient};
