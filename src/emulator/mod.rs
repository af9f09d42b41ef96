//! A local Tenet: the same HTTP contract (`docs/TENET_CONTRACT.md`), with real policy,
//! approvals, a tamper-evident audit log and downstream execution, for tests, first
//! runs (`serve --emulator`) and rehearsing policies.
//!
//! Routes: `POST /v1/execute`, `GET /v1/jobs/{id}`, `GET /v1/reviews`,
//! `POST /v1/reviews/{id}/approve|deny` (all with `Authorization: Bearer <key>`), the
//! approval page at `/` with its same-origin actions under `/ui/`, and `GET /healthz`.
//!
//! Keys have roles ([`policy::Role`]): agent keys call as their own agent, tenant keys
//! as any agent they name, approver keys decide reviews and cannot call. Jobs and
//! reviews are readable only by the key that created them (approvers see every review).
//! The approval page answers only loopback binds and requests addressed to a loopback
//! name, so a rebound DNS name cannot reach it.
//!
//! By concern: `server` starts it (keys, shared state, routes, authentication);
//! `execute` decides calls and runs allowed ones as jobs; `reviews` approves and denies
//! escalated calls; `page` is the approval page and its guard; `policy`, `store`,
//! `audit` and `downstream` are what those handlers use.

pub mod audit;
pub mod cli;
mod downstream;
mod execute;
mod page;
pub mod policy;
mod reviews;
mod server;
mod store;

pub use server::{Emulator, EmulatorConfig, EmulatorError, MAX_REQUEST_BODY, start};
