//! Configuration errors: what is wrong with the flags, files or environment a command
//! was given, found before anything is served (exit code 2).

/// A configuration problem, reported before serving (exit code 2). The text says what
/// is wrong and what to set or fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
