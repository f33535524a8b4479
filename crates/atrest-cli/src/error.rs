//! What can go wrong in a client command, and the exit code each case maps to.

use std::fmt;

/// Exit codes scripts can rely on.
pub mod exit {
    pub const OK: i32 = 0;
    pub const API: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NETWORK: i32 = 3;
    pub const AUTH: i32 = 4;
    pub const TIMEOUT: i32 = 5;
}

/// The text shown under `atrest --help` and every client command's help.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the API answered with an error (stderr: Error: <errorCode> (<status>): <detail>)
  2  usage error (bad flags or arguments, missing credentials or project)
  3  cannot connect to the server, or another network error
  4  authentication failed (401: wrong public or private key)
  5  a --wait or watch timed out";

#[derive(Debug)]
pub enum CliError {
    /// The server answered with an error status (other than a final 401).
    Api { status: u16, code: String, detail: String },
    /// The server refused the credentials.
    Auth(String),
    /// No connection, or the connection broke.
    Network(String),
    /// A usage error found after clap parsed the command line.
    Usage(String),
    /// A wait ran past its --timeout.
    Timeout(String),
    /// Anything else (local files, unexpected responses).
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Api { .. } | CliError::Other(_) => exit::API,
            CliError::Usage(_) => exit::USAGE,
            CliError::Network(_) => exit::NETWORK,
            CliError::Auth(_) => exit::AUTH,
            CliError::Timeout(_) => exit::TIMEOUT,
        }
    }

    /// Builds an API error from a response body in Atlas's error shape (or anything else).
    pub fn from_response(status: u16, body: &str) -> CliError {
        let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let field = |k: &str| parsed.as_ref().and_then(|v| v.get(k)).and_then(|v| v.as_str()).map(str::to_owned);
        let code = field("errorCode").unwrap_or_else(|| format!("HTTP_{status}"));
        let detail =
            field("detail").or_else(|| field("reason")).unwrap_or_else(|| body.trim().chars().take(500).collect());
        CliError::Api { status, code, detail }
    }

    pub fn usage(msg: impl Into<String>) -> CliError {
        CliError::Usage(msg.into())
    }

    pub fn other(msg: impl Into<String>) -> CliError {
        CliError::Other(msg.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Api { status, code, detail } => write!(f, "Error: {code} ({status}): {detail}"),
            CliError::Auth(m) => write!(f, "Error: authentication failed (401): {m}"),
            CliError::Network(m) => write!(f, "Error: {m}"),
            CliError::Usage(m) => write!(f, "error: {m}"),
            CliError::Timeout(m) => write!(f, "Error: timed out: {m}"),
            CliError::Other(m) => write!(f, "Error: {m}"),
        }
    }
}

impl std::error::Error for CliError {}

pub type Result<T> = std::result::Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atlas_error_body_is_reported_with_its_code() {
        let e = CliError::from_response(
            404,
            r#"{"detail":"No group with ID 0123.","error":404,"errorCode":"GROUP_NOT_FOUND","parameters":[],"reason":"Not Found"}"#,
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.to_string(), "Error: GROUP_NOT_FOUND (404): No group with ID 0123.");
        let e = CliError::from_response(502, "bad gateway");
        assert_eq!(e.to_string(), "Error: HTTP_502 (502): bad gateway");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(CliError::Auth(String::new()).exit_code(), 4);
        assert_eq!(CliError::Network(String::new()).exit_code(), 3);
        assert_eq!(CliError::Usage(String::new()).exit_code(), 2);
        assert_eq!(CliError::Timeout(String::new()).exit_code(), 5);
    }
}
