//! Errors of the eAPI client. Each message says what an operator can do about it,
//! because these end up in syslog on a switch with nobody watching the code.

use std::path::PathBuf;
use std::time::Duration;

/// The EOS configuration that turns eAPI on for the on-box transports.
const ENABLE_HINT: &str = "enable eAPI in EOS with `management api http-commands` / \
     `protocol unix-socket` (or `protocol http localhost`) / `no shutdown`";

/// Everything that can go wrong talking to eAPI.
#[derive(Debug, thiserror::Error)]
pub enum EapiError {
    /// The configured URL is not one this client can use.
    #[error(
        "invalid eAPI url {url:?}: {reason} (expected unix:/var/run/command-api.sock, \
         http://localhost:8080/command-api or https://HOST/command-api)"
    )]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An https URL was configured but this binary has no TLS stack.
    #[error(
        "eAPI url {url:?} needs https, but this build has no TLS support: rebuild with the \
         `https` cargo feature, or use unix:/var/run/command-api.sock or http://localhost:8080/command-api"
    )]
    HttpsNotBuilt {
        /// The URL as configured.
        url: String,
    },

    /// The credentials file could not be read or parsed.
    #[error("cannot read eAPI credentials from {}: {reason}", path.display())]
    Credentials {
        /// The credentials file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },

    /// The HTTP client could not be built (should not happen with a valid URL).
    #[error("cannot set up the eAPI HTTP client: {0}")]
    Client(String),

    /// The unix socket file does not exist: eAPI is off or EOS has not started it yet.
    #[error(
        "eAPI unix socket {} does not exist: EOS is still starting, or eAPI is not enabled; {ENABLE_HINT}",
        path.display()
    )]
    SocketMissing {
        /// The socket path.
        path: PathBuf,
    },

    /// Nothing accepts connections at the URL.
    #[error("eAPI refused the connection at {url}: EOS is still starting, or eAPI is not enabled for this transport; {ENABLE_HINT}")]
    ConnectionRefused {
        /// The URL (or `unix:` path) that refused.
        url: String,
    },

    /// Any other failure to connect or to exchange the request.
    #[error("cannot reach eAPI at {url}: {detail}")]
    Transport {
        /// The URL.
        url: String,
        /// The underlying error chain.
        detail: String,
    },

    /// No answer within the configured timeout.
    #[error("eAPI at {url} did not answer within {after:?}: EOS may be busy or starting; raise [eapi] timeout if this persists")]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },

    /// An HTTP status other than 200 without a JSON-RPC error inside.
    #[error("eAPI at {url} answered HTTP {status}: {}", http_status_hint(*status))]
    HttpStatus {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, for the log.
        body: String,
    },

    /// eAPI ran the request and reported a JSON-RPC error.
    #[error(
        "eAPI error {code} ({}){}: {message}{}",
        rpc_code_meaning(*code),
        command.as_ref().map(|c| format!(" running `{c}`")).unwrap_or_default(),
        if errors.is_empty() { String::new() } else { format!(" [{}]", errors.join("; ")) }
    )]
    Command {
        /// The JSON-RPC error code (1000 could not run, 1002 invalid command, 1003 no JSON form, ...).
        code: i64,
        /// `error.message` as EOS wrote it.
        message: String,
        /// The command that failed, when it can be told.
        command: Option<String>,
        /// The `errors` strings from the last element of `error.data`.
        errors: Vec<String>,
    },

    /// The answer is larger than the client accepts: an endless or huge body
    /// must not grow the daemon's memory.
    #[error("eAPI at {url} sent an answer larger than {limit} bytes; refused (is something other than EOS listening there?)")]
    BodyTooLarge {
        /// The URL.
        url: String,
        /// The cap, in bytes.
        limit: usize,
    },

    /// The answer is not the JSON this client expected.
    #[error("unexpected eAPI answer{}: expected {expected}; got {got}", command.as_ref().map(|c| format!(" to `{c}`")).unwrap_or_default())]
    Malformed {
        /// The command whose result was being read, if any.
        command: Option<String>,
        /// What the client expected.
        expected: String,
        /// A short description or excerpt of what came instead.
        got: String,
    },
}

impl EapiError {
    /// Whether trying again later can help: EOS refuses, times out or answers 502/503
    /// while it boots. Configuration, command and protocol errors will not go away.
    pub fn is_retryable(&self) -> bool {
        match self {
            EapiError::SocketMissing { .. }
            | EapiError::ConnectionRefused { .. }
            | EapiError::Transport { .. }
            | EapiError::Timeout { .. } => true,
            EapiError::HttpStatus { status, .. } => matches!(status, 502..=504),
            EapiError::InvalidUrl { .. }
            | EapiError::HttpsNotBuilt { .. }
            | EapiError::Credentials { .. }
            | EapiError::Client(_)
            | EapiError::Command { .. }
            | EapiError::BodyTooLarge { .. }
            | EapiError::Malformed { .. } => false,
        }
    }

    /// A `Malformed` error about the result of `command`.
    pub(crate) fn malformed(
        command: Option<&str>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        EapiError::Malformed {
            command: command.map(str::to_owned),
            expected: expected.into(),
            got: got.into(),
        }
    }
}

fn http_status_hint(status: u16) -> &'static str {
    match status {
        502..=504 => "EOS is still starting its eAPI server (CommandApi); retry",
        401 | 403 => "authentication failed: check the eAPI user and password",
        404 => "no eAPI at this path: the URL path must be /command-api",
        405 => "method not allowed: eAPI expects POST /command-api",
        _ => "unexpected HTTP status from eAPI",
    }
}

/// What a JSON-RPC error code means, as far as EOS documents and behaves.
fn rpc_code_meaning(code: i64) -> &'static str {
    match code {
        1000 => "command could not run",
        1001 => "incompatible eAPI version",
        1002 => "invalid command",
        1003 => "command has no JSON form; run it with format text",
        1004 => "command not authorized for this user",
        -32700 => "JSON-RPC parse error",
        -32600 => "invalid JSON-RPC request",
        -32601 => "JSON-RPC method not found",
        -32602 => "invalid JSON-RPC parameters",
        -32603 => "JSON-RPC internal error",
        _ => "eAPI error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_names_the_eos_config_that_enables_eapi() {
        let err = EapiError::ConnectionRefused {
            url: "http://localhost:8080/command-api".into(),
        };
        let text = err.to_string();
        assert!(text.contains("management api http-commands"), "{text}");
        assert!(text.contains("protocol unix-socket"), "{text}");
        assert!(text.contains("no shutdown"), "{text}");
        assert!(err.is_retryable());
    }

    #[test]
    fn command_error_shows_code_command_and_errors() {
        let err = EapiError::Command {
            code: 1002,
            message: "CLI command 2 of 3 'bad command' failed: invalid command".into(),
            command: Some("bad command".into()),
            errors: vec!["Invalid input (at token 1: 'bad')".into()],
        };
        assert_eq!(
            err.to_string(),
            "eAPI error 1002 (invalid command) running `bad command`: CLI command 2 of 3 'bad command' \
             failed: invalid command [Invalid input (at token 1: 'bad')]"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn only_boot_time_statuses_are_retryable() {
        let status = |status| EapiError::HttpStatus {
            url: "u".into(),
            status,
            body: String::new(),
        };
        assert!(status(502).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(status(502).to_string().contains("still starting"));
    }
}
