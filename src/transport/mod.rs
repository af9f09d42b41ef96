//! The ways MCP clients reach the bridge.

pub mod stdio;
