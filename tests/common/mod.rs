//! Helpers shared by the integration tests.
#![allow(dead_code)]

#[cfg(feature = "emulator")]
pub mod downstream;
pub mod emulated;
pub mod harness;
pub mod http_server;
pub mod interop;
pub mod model_api;
pub mod scripted;
pub mod stateless;
pub mod stdio_server;
