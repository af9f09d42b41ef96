//! Who may call over HTTP, one concern per file: `tokens` (the `--auth-tokens` file:
//! token → agent id, and each agent's tools), `origins` (which browser `Origin`s are
//! allowed) and `guard` (the middleware that applies them, checks `Host`, and
//! buffers the body up to `--max-body`).

mod guard;
mod origins;
mod tokens;

pub use guard::{Body, Policy, guard, jsonrpc_error};
pub use origins::Origins;
pub(crate) use tokens::read_config_file;
pub use tokens::{MIN_TOKEN_LEN, Tokens};
