//! Tenet's HTTP API: the wire types, decision parsing and the client.

pub mod decision;
pub mod wire;
pub mod client;

pub use client::{ApiKey, ClientConfig, TenetClient};
