//! eAPI over HTTP/1.1 (hyper): `POST /command-api`, Basic authentication when
//! asked for, the faults of the control file, and the request log.

use crate::control::{Control, Mode};
use crate::eos::{parse_run_cmds, Eos, Format, Ran, RunCmds};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE, SERVER, WWW_AUTHENTICATE};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::fs::File;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// Request heads larger than this are refused (hyper answers 431).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Request bodies larger than this get 413.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

type Response = hyper::Response<Full<Bytes>>;

/// Why a request gets no answer at all.
#[derive(Debug, thiserror::Error)]
#[error("refused (control mode `refuse`)")]
struct Refused;

/// The eAPI server: the switch model behind HTTP, with faults.
pub struct Server {
    /// The simulated switch.
    pub eos: Eos,
    /// The fault mode.
    pub control: Control,
    /// One JSON line per request.
    pub request_log: Option<Mutex<File>>,
    /// The `Authorization` value required, if any.
    pub authorization: Option<String>,
    /// Answer 502 until this long after the start.
    pub boot_502: Duration,
    /// Start time, for `--boot-502` and the request log.
    pub started: Instant,
    /// Bumped to make every accept loop and connection stop (mode `refuse`).
    pub generation: watch::Sender<u64>,
}

/// Serves one connection until the client closes it or the generation changes.
pub fn spawn_connection<S>(server: &Arc<Server>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let server = Arc::clone(server);
    let mut stop = server.generation.subscribe();
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |request| {
            let server = Arc::clone(&server);
            async move { server.respond(request).await }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .max_buf_size(MAX_HEADER_BYTES)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        tokio::select! {
            // Errors are the client's (or `refuse`): nothing to do but close.
            _ = connection => {}
            // Dropping the connection closes it (mode `refuse`).
            _ = stop.changed() => {}
        }
    });
}

fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response {
    let mut response = hyper::Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("eos-sim"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_response(value: &Value) -> Response {
    response(StatusCode::OK, "application/json", value.to_string())
}

/// The page nginx (EOS's front end) serves while CommandApi is not up.
fn nginx_error(status: StatusCode) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n\
         <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    response(status, "text/html", body)
}

impl Server {
    async fn respond(&self, request: hyper::Request<Incoming>) -> Result<Response, Refused> {
        if request.uri().path() != "/command-api" {
            return Ok(response(
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found: eAPI is at /command-api",
            ));
        }
        if request.method() != Method::POST {
            let mut response = response(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "eAPI expects POST",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return Ok(response);
        }
        if let Some(expected) = &self.authorization {
            if request
                .headers()
                .get(AUTHORIZATION)
                .map(HeaderValue::as_bytes)
                != Some(expected.as_bytes())
            {
                self.log(None, "http401", &[]);
                let mut response = response(StatusCode::UNAUTHORIZED, "text/plain", "Unauthorized");
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"eAPI\""),
                );
                return Ok(response);
            }
        }
        let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return Ok(response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "text/plain",
                    "body too large or cut short",
                ))
            }
        };
        let call = parse_run_cmds(&body);
        let mode = self.control.read();
        if let Mode::Slow(delay) = mode {
            tokio::time::sleep(delay).await;
        }
        let fault = match mode {
            Mode::Refuse => {
                self.log(call.as_ref().ok(), "refused", &[]);
                return Err(Refused);
            }
            Mode::Status(status) => Some(status),
            _ if self.started.elapsed() < self.boot_502 => Some(502),
            _ => None,
        };
        if let Some(status) = fault {
            self.log(call.as_ref().ok(), &format!("http{status}"), &[]);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return Ok(nginx_error(status));
        }
        if mode == Mode::Garbage {
            self.log(call.as_ref().ok(), "garbage", &[]);
            return Ok(response(
                StatusCode::OK,
                "application/json",
                "this is not JSON <html>",
            ));
        }
        let call = match call {
            Ok(call) => call,
            Err(error) => {
                self.log(None, &format!("error {}", error["code"]), &[]);
                return Ok(json_response(
                    &json!({"jsonrpc": "2.0", "id": null, "error": error}),
                ));
            }
        };
        let Ran { reply, config } = self.eos.run_cmds(&call.cmds, call.format);
        let (reply, outcome) = match reply {
            Ok(results) => (
                json!({"jsonrpc": "2.0", "id": call.id, "result": results}),
                "ok".to_owned(),
            ),
            Err(error) => {
                let outcome = format!("error {}", error["code"]);
                (
                    json!({"jsonrpc": "2.0", "id": call.id, "error": error}),
                    outcome,
                )
            }
        };
        self.log(Some(&call), &outcome, &config);
        Ok(json_response(&reply))
    }

    fn log(&self, call: Option<&RunCmds>, outcome: &str, config: &[String]) {
        let Some(file) = &self.request_log else {
            return;
        };
        let line = json!({
            "time": self.started.elapsed().as_secs_f64(),
            "cmds": call.map(|c| c.cmds.clone()),
            "format": call.map(|c| if c.format == Format::Text { "text" } else { "json" }),
            "outcome": outcome,
            "config": config,
        });
        let mut file = file.lock().unwrap();
        if let Err(e) = writeln!(file, "{line}").and_then(|()| file.flush()) {
            eprintln!("eos-sim: request log: {e}");
        }
    }
}
