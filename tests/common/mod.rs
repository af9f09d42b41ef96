//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod downstream;
pub mod interop;
pub mod scripted;
