//! The ways MCP clients reach the bridge: stdio for local clients, HTTP for remote agents.

pub mod http;
pub mod jsonrpc;
pub mod stdio;
