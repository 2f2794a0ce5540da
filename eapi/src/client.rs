//! The eAPI client: one `reqwest::Client` for every transport. reqwest speaks HTTP
//! over a unix socket itself, so the unix socket, `http://localhost` and (with the
//! `https` feature) remote https differ only in how the client is built.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use crate::jsonrpc::{excerpt, parse_response, request_body, Format};
use crate::model::{
    parse_interfaces_status, parse_ip_interfaces, parse_management_api, parse_version,
    InterfaceStatus, IpInterface, ManagementApi, Version,
};
use crate::EapiError;

/// The on-box default: `management api http-commands` / `protocol unix-socket`.
pub const DEFAULT_URL: &str = "unix:/var/run/command-api.sock";

/// The request URL used over a unix socket: EOS's server ignores the host but not the path.
const UNIX_REQUEST_URL: &str = "http://localhost/command-api";

/// How to reach eAPI.
#[derive(Debug, Clone)]
pub struct EapiConfig {
    /// `unix:/var/run/command-api.sock`, `http://localhost:8080/command-api` or
    /// `https://HOST/command-api`. An http(s) URL without a path gets `/command-api`.
    pub url: String,
    /// Limit for one whole request, connect to last byte.
    pub timeout: Duration,
    /// HTTP basic auth; needed for https, optional for http, unused by the unix socket.
    pub credentials: Option<Credentials>,
}

impl Default for EapiConfig {
    fn default() -> Self {
        EapiConfig {
            url: DEFAULT_URL.to_owned(),
            timeout: Duration::from_secs(5),
            credentials: None,
        }
    }
}

/// eAPI user and password. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The EOS user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Reads credentials kept out of the config file: either two lines (user, then
    /// password) or one `user:password` line. Surrounding whitespace is ignored.
    pub fn from_file(path: &Path) -> Result<Credentials, EapiError> {
        let error = |reason: String| EapiError::Credentials {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        Credentials::parse(&text).ok_or_else(|| {
            error(
                "expected `user` and `password` on two lines, or one `user:password` line"
                    .to_owned(),
            )
        })
    }

    fn parse(text: &str) -> Option<Credentials> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.next()?;
        let (user, password) = match lines.next() {
            Some(password) => (first, password),
            None => first.split_once(':')?,
        };
        (!user.is_empty() && !password.is_empty() && lines.next().is_none()).then(|| Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// Where requests go, kept for error messages.
#[derive(Debug, Clone)]
enum Endpoint {
    Unix(PathBuf),
    Http,
}

/// A client for one eAPI endpoint. Cheap to share by reference; requests may run
/// concurrently.
#[derive(Debug)]
pub struct EapiClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    /// The URL requests are posted to.
    request_url: String,
    /// The URL as configured, for messages.
    url: String,
    timeout: Duration,
    credentials: Option<Credentials>,
    next_id: AtomicU64,
}

impl EapiClient {
    /// Checks the URL and builds the client; does not connect.
    pub fn new(config: &EapiConfig) -> Result<EapiClient, EapiError> {
        let url = config.url.trim();
        let invalid = |reason: &str| EapiError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let builder = reqwest::Client::builder()
            // An http_proxy in the environment must never divert on-box eAPI calls.
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        let (builder, endpoint, request_url) = if let Some(path) = url.strip_prefix("unix:") {
            // Accept unix:///path as well as unix:/path.
            let path = if path.starts_with("///") {
                &path[2..]
            } else {
                path
            };
            let path = Path::new(path);
            if !path.is_absolute() {
                return Err(invalid("the unix socket path must be absolute"));
            }
            (
                builder.unix_socket(path),
                Endpoint::Unix(path.to_owned()),
                UNIX_REQUEST_URL.to_owned(),
            )
        } else {
            let mut parsed = reqwest::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
            match parsed.scheme() {
                "http" => {}
                "https" if cfg!(feature = "https") => {}
                "https" => {
                    return Err(EapiError::HttpsNotBuilt {
                        url: url.to_owned(),
                    })
                }
                other => return Err(invalid(&format!("unsupported scheme `{other}`"))),
            }
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(invalid("no host"));
            }
            if parsed.path() == "/" || parsed.path().is_empty() {
                parsed.set_path("/command-api");
            }
            (builder, Endpoint::Http, parsed.to_string())
        };
        let http = builder
            .build()
            .map_err(|e| EapiError::Client(error_chain(&e)))?;
        Ok(EapiClient {
            http,
            endpoint,
            request_url,
            url: url.to_owned(),
            timeout: config.timeout,
            credentials: config.credentials.clone(),
            next_id: AtomicU64::new(1),
        })
    }

    /// The URL as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `cmds` in one `runCmds` request and returns one result per command. With
    /// [`Format::Text`] each result is `{"output": "..."}`.
    pub async fn run_cmds(&self, cmds: &[&str], format: Format) -> Result<Vec<Value>, EapiError> {
        let id = format!("ztps-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut request = self
            .http
            .post(&self.request_url)
            .header(CONTENT_TYPE, "application/json")
            .body(request_body(&id, cmds, format));
        if let Some(credentials) = &self.credentials {
            request = request.basic_auth(&credentials.user, Some(&credentials.password));
        }
        tracing::debug!(url = %self.url, ?cmds, "eAPI request");
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            // Some EOS front ends send JSON-RPC errors with a non-200 status.
            if let Err(error @ EapiError::Command { .. }) = parse_response(&body, cmds) {
                return Err(error);
            }
            return Err(EapiError::HttpStatus {
                url: self.url.clone(),
                status: status.as_u16(),
                body: excerpt(&body),
            });
        }
        parse_response(&body, cmds)
    }

    /// Runs `cmds` with [`Format::Text`] and returns each command's CLI output.
    pub async fn run_text(&self, cmds: &[&str]) -> Result<Vec<String>, EapiError> {
        let results = self.run_cmds(cmds, Format::Text).await?;
        results
            .iter()
            .zip(cmds)
            .map(|(result, cmd)| {
                result
                    .get("output")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        EapiError::malformed(
                            Some(cmd),
                            "an object with an `output` string",
                            excerpt(result.to_string().as_bytes()),
                        )
                    })
            })
            .collect()
    }

    /// `show interfaces status connected`: the ports EOS considers connected.
    pub async fn connected_interfaces(&self) -> Result<Vec<InterfaceStatus>, EapiError> {
        let result = self.run_one("show interfaces status connected").await?;
        parse_interfaces_status(&result)
    }

    /// `show ip interface`: addresses, unnumbered sources and states of routed interfaces.
    pub async fn ip_interfaces(&self) -> Result<Vec<IpInterface>, EapiError> {
        let result = self.run_one("show ip interface").await?;
        parse_ip_interfaces(&result)
    }

    /// `show version`: model, serial, system MAC, architecture, release.
    pub async fn version(&self) -> Result<Version, EapiError> {
        let result = self.run_one("show version").await?;
        parse_version(&result)
    }

    /// `show management api http-commands`: which eAPI servers run.
    pub async fn management_api(&self) -> Result<ManagementApi, EapiError> {
        let result = self.run_one("show management api http-commands").await?;
        parse_management_api(&result)
    }

    /// Applies configuration commands: eAPI needs `enable` and `configure terminal`
    /// before them in the same request; `end` leaves config mode.
    pub async fn configure(&self, cmds: &[&str]) -> Result<(), EapiError> {
        let mut all = Vec::with_capacity(cmds.len() + 3);
        all.extend(["enable", "configure terminal"]);
        all.extend_from_slice(cmds);
        all.push("end");
        self.run_cmds(&all, Format::Json).await.map(drop)
    }

    async fn run_one(&self, cmd: &str) -> Result<Value, EapiError> {
        let mut results = self.run_cmds(&[cmd], Format::Json).await?;
        Ok(results
            .pop()
            .expect("parse_response checked one result per command"))
    }

    /// Sorts a reqwest error into the cases an operator can act on.
    fn transport_error(&self, error: &reqwest::Error) -> EapiError {
        let io_kind = io_error_kind(error);
        if error.is_timeout() || io_kind == Some(io::ErrorKind::TimedOut) {
            return EapiError::Timeout {
                url: self.url.clone(),
                after: self.timeout,
            };
        }
        match (&self.endpoint, io_kind) {
            (Endpoint::Unix(path), Some(io::ErrorKind::NotFound)) => {
                EapiError::SocketMissing { path: path.clone() }
            }
            (_, Some(io::ErrorKind::ConnectionRefused)) => EapiError::ConnectionRefused {
                url: self.url.clone(),
            },
            _ => EapiError::Transport {
                url: self.url.clone(),
                detail: error_chain(error),
            },
        }
    }
}

/// The kind of the first `io::Error` in the source chain.
fn io_error_kind(error: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        current = e.source();
    }
    None
}

/// Every message in the source chain, without repeats.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Result<EapiClient, EapiError> {
        EapiClient::new(&EapiConfig {
            url: url.to_owned(),
            ..EapiConfig::default()
        })
    }

    #[test]
    fn transports_are_chosen_by_url() {
        let unix = client(DEFAULT_URL).unwrap();
        assert_eq!(unix.request_url, "http://localhost/command-api");
        assert!(
            matches!(&unix.endpoint, Endpoint::Unix(p) if p == Path::new("/var/run/command-api.sock"))
        );
        let unix = client("unix:///tmp/eapi.sock").unwrap();
        assert!(matches!(&unix.endpoint, Endpoint::Unix(p) if p == Path::new("/tmp/eapi.sock")));

        let http = client("http://localhost:8080/command-api").unwrap();
        assert_eq!(http.request_url, "http://localhost:8080/command-api");
        let bare = client("http://127.0.0.1:8080").unwrap();
        assert_eq!(bare.request_url, "http://127.0.0.1:8080/command-api");
    }

    #[test]
    fn client_and_its_futures_can_move_between_tasks() {
        fn assert_send_sync<T: Send + Sync>(_: &T) {}
        fn assert_send<T: Send>(_: T) {}
        let eapi = client(DEFAULT_URL).unwrap();
        assert_send_sync(&eapi);
        assert_send(eapi.connected_interfaces());
        assert_send(eapi.configure(&["interface Ethernet1"]));
        assert_send(crate::retry_until(
            tokio::time::Instant::now(),
            crate::Backoff::default(),
            || eapi.version(),
        ));
    }

    #[test]
    fn bad_urls_are_rejected_with_the_reason() {
        let err = client("ftp://localhost/command-api").unwrap_err();
        assert!(
            err.to_string().contains("unsupported scheme `ftp`"),
            "{err}"
        );
        assert!(
            err.to_string().contains("unix:/var/run/command-api.sock"),
            "{err}"
        );
        let err = client("unix:var/run/command-api.sock").unwrap_err();
        assert!(err.to_string().contains("must be absolute"), "{err}");
        let err = client("/var/run/command-api.sock").unwrap_err();
        assert!(matches!(err, EapiError::InvalidUrl { .. }), "{err}");
    }

    #[test]
    fn https_needs_the_feature() {
        let result = client("https://192.0.2.1/command-api");
        if cfg!(feature = "https") {
            assert!(result.is_ok());
        } else {
            let err = result.unwrap_err();
            assert!(matches!(err, EapiError::HttpsNotBuilt { .. }));
            assert!(err.to_string().contains("`https` cargo feature"), "{err}");
        }
    }

    #[test]
    fn credentials_files() {
        let parse = Credentials::parse;
        let admin = Credentials {
            user: "admin".into(),
            password: "pa:ss".into(),
        };
        assert_eq!(parse("admin\npa:ss\n").as_ref(), Some(&admin));
        assert_eq!(parse("  admin  \n\n pa:ss \n").as_ref(), Some(&admin));
        assert_eq!(parse("admin:pa:ss\n").as_ref(), Some(&admin));
        assert_eq!(parse(""), None);
        assert_eq!(parse("admin\n"), None);
        assert_eq!(parse("a\nb\nc\n"), None);
        assert_eq!(parse(":secret"), None);

        let debug = format!("{admin:?}");
        assert!(!debug.contains("pa:ss"), "{debug}");

        let err =
            Credentials::from_file(Path::new("/nonexistent/ztps/eapi-credentials")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "cannot read eAPI credentials from /nonexistent/ztps/eapi-credentials"
            ),
            "{err}"
        );
    }
}
