//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod downstream;
pub mod emulated;
pub mod harness;
pub mod http_server;
pub mod interop;
pub mod model_api;
pub mod scripted;
pub mod stdio_server;
