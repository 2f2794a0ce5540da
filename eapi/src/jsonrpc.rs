//! The eAPI JSON-RPC 2.0 envelope: building `runCmds` requests and reading replies.
//! Pure functions, so the captured envelopes in `tests/fixtures` test them directly.

use serde_json::{json, Value};

use crate::EapiError;

/// The output format asked of eAPI for every command of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Structured results (the CLI's JSON models).
    Json,
    /// Each result is `{"output": "<CLI text>"}`.
    Text,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Text => "text",
        }
    }
}

/// The body of a `runCmds` request.
pub fn request_body(id: &str, cmds: &[&str], format: Format) -> Vec<u8> {
    let request = json!({
        "jsonrpc": "2.0",
        "method": "runCmds",
        "params": { "version": 1, "cmds": cmds, "format": format.as_str() },
        "id": id,
    });
    serde_json::to_vec(&request).expect("a JSON value always serializes")
}

/// Reads a `runCmds` reply: one result per command, or the JSON-RPC error as
/// [`EapiError::Command`] naming the command that failed.
pub fn parse_response(body: &[u8], cmds: &[&str]) -> Result<Vec<Value>, EapiError> {
    let envelope: Value = serde_json::from_slice(body).map_err(|e| {
        EapiError::malformed(
            None,
            "a JSON-RPC 2.0 response object",
            format!("non-JSON body ({e}): {}", excerpt(body)),
        )
    })?;
    let Value::Object(mut envelope) = envelope else {
        return Err(EapiError::malformed(
            None,
            "a JSON-RPC 2.0 response object",
            excerpt(body),
        ));
    };
    if let Some(error) = envelope.get("error").filter(|e| !e.is_null()) {
        return Err(command_error(error, cmds));
    }
    // Moved out, not cloned: a 10,000-interface answer is megabytes of values.
    match envelope.remove("result") {
        Some(Value::Array(results)) if results.len() == cmds.len() => Ok(results),
        Some(Value::Array(results)) => Err(EapiError::malformed(
            None,
            format!("{} results, one per command", cmds.len()),
            format!("{} results", results.len()),
        )),
        _ => Err(EapiError::malformed(
            None,
            "a `result` array or an `error` object",
            excerpt(body),
        )),
    }
}

/// Turns a JSON-RPC `error` object into [`EapiError::Command`]. `error.data` holds the
/// results of the commands that ran before the failing one, then `{"errors": [...]}`;
/// its length therefore tells which command failed.
fn command_error(error: &Value, cmds: &[&str]) -> EapiError {
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let data = error.get("data").and_then(Value::as_array);
    let errors = data
        .and_then(|d| d.last())
        .and_then(|last| last.get("errors"))
        .and_then(Value::as_array)
        .map(|errs| {
            errs.iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let failing_index = data
        .filter(|d| !d.is_empty())
        .map(|d| d.len() - 1)
        .or_else(|| failing_index_from_message(&message));
    let command = failing_index
        .and_then(|i| cmds.get(i))
        .map(|c| (*c).to_owned());
    EapiError::Command {
        code,
        message,
        command,
        errors,
    }
}

/// Parses "CLI command 2 of 3 'bad command' failed: ..." into the 0-based index 1.
fn failing_index_from_message(message: &str) -> Option<usize> {
    let rest = message.strip_prefix("CLI command ")?;
    let number: usize = rest.split_whitespace().next()?.parse().ok()?;
    number.checked_sub(1)
}

/// A short, printable excerpt of a body for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "an empty body".to_owned();
    }
    let mut short: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        short.push_str("...");
    }
    format!("{short:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANTA_SUCCESS: &str = include_str!(
        "../tests/fixtures/anta_eapi_success_response_ceoslab_4.31.1F_jsonrpc_envelope.json"
    );
    const ANTA_ERROR: &str = include_str!(
        "../tests/fixtures/anta_eapi_error_1002_response_ceoslab_4.31.1F_jsonrpc_envelope.json"
    );
    const GOEAPI_LLDP: &str =
        include_str!("../tests/fixtures/goeapi_show_lldp_neighbors_jsonrpc_envelope.json");

    #[test]
    fn request_has_the_runcmds_shape() {
        let body = request_body("ztps-7", &["enable", "show version"], Format::Text);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            json!({"jsonrpc": "2.0", "method": "runCmds", "id": "ztps-7",
                   "params": {"version": 1, "cmds": ["enable", "show version"], "format": "text"}})
        );
    }

    #[test]
    fn anta_success_envelope_gives_one_result_per_command() {
        let results =
            parse_response(ANTA_SUCCESS.as_bytes(), &["show version", "show clock"]).unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["modelName"], "cEOSLab");
        assert_eq!(results[1]["timezone"], "EST");
        assert_eq!(results[1]["localTime"]["year"], 2024);
    }

    #[test]
    fn anta_error_envelope_names_the_failing_command_and_its_errors() {
        let err = parse_response(
            ANTA_ERROR.as_bytes(),
            &["show version", "bad command", "show clock"],
        )
        .unwrap_err();
        let EapiError::Command {
            code,
            message,
            command,
            errors,
        } = &err
        else {
            panic!("expected a command error, got {err:?}");
        };
        assert_eq!(*code, 1002);
        assert_eq!(
            message,
            "CLI command 2 of 3 'bad command' failed: invalid command"
        );
        assert_eq!(command.as_deref(), Some("bad command"));
        assert_eq!(errors, &["Invalid input (at token 1: 'bad')"]);
        assert!(!err.is_retryable());
    }

    #[test]
    fn goeapi_envelope_keeps_the_empty_enable_result() {
        let results =
            parse_response(GOEAPI_LLDP.as_bytes(), &["enable", "show lldp neighbors"]).unwrap();
        assert_eq!(results[0], json!({}));
        let neighbors = results[1]["lldpNeighbors"].as_array().unwrap();
        assert_eq!(neighbors.len(), 4);
        assert_eq!(neighbors[0]["port"], "Ethernet3");
        assert_eq!(neighbors[0]["neighborPort"], "Ethernet48");
        assert_eq!(neighbors[3]["port"], "Management1");
        assert_eq!(results[1]["tablesInserts"], 5);
    }

    #[test]
    fn failing_command_falls_back_to_the_message_without_data() {
        let body = br#"{"jsonrpc":"2.0","id":"1","error":{"code":1000,"message":"CLI command 1 of 2 'x' failed: could not run command"}}"#;
        let err = parse_response(body, &["x", "y"]).unwrap_err();
        assert!(
            matches!(&err, EapiError::Command { code: 1000, command: Some(c), errors, .. } if c == "x" && errors.is_empty())
        );
    }

    #[test]
    fn garbage_and_wrong_shapes_say_what_was_expected() {
        let err = parse_response(b"<html>502</html>", &["show version"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a JSON-RPC 2.0 response object"),
            "{err}"
        );
        assert!(err.to_string().contains("<html>"), "{err}");

        let err = parse_response(br#"{"jsonrpc":"2.0","id":"1","result":[{}]}"#, &["a", "b"])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("expected 2 results, one per command; got 1 results"),
            "{err}"
        );

        let err = parse_response(br#"{"jsonrpc":"2.0","id":"1"}"#, &["a"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("`result` array or an `error` object"),
            "{err}"
        );
        assert!(!err.is_retryable());
    }
}
