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
    parse_interfaces_status, parse_ip_interfaces, parse_lldp_neighbors, parse_management_api,
    parse_version, InterfaceStatus, IpInterface, LldpNeighbor, ManagementApi, Version,
};
use crate::EapiError;

/// The on-box default: `management api http-commands` / `protocol unix-socket`.
pub const DEFAULT_URL: &str = "unix:/var/run/command-api.sock";

/// The largest answer read, in bytes. `show interfaces status` for 10,000
/// ports is about 3 MiB; anything past this is not EOS and is refused while it
/// streams, before it can grow the daemon's memory.
pub const MAX_BODY: usize = 16 << 20;

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
    /// The one format for a password kept out of the config file: the file holds
    /// the password alone, on its first line (a trailing newline or CR is not
    /// part of it); the user comes from the config. A file with more lines is
    /// refused rather than guessed at.
    pub fn from_password_file(user: &str, path: &Path) -> Result<Credentials, EapiError> {
        let error = |reason: String| EapiError::Credentials {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        Credentials::parse(user, &text).map_err(|why| error(why.to_owned()))
    }

    fn parse(user: &str, text: &str) -> Result<Credentials, &'static str> {
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        let password = lines.next().unwrap_or("");
        if lines.any(|l| !l.trim().is_empty()) {
            return Err("expected the password alone on one line (the user is `eapi.user`)");
        }
        if password.is_empty() {
            return Err("the file is empty: expected the password on its first line");
        }
        if user.is_empty() {
            return Err("no eAPI user given");
        }
        Ok(Credentials {
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
    max_body: usize,
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
            max_body: MAX_BODY,
        })
    }

    /// The same client with another answer-size cap (default [`MAX_BODY`]).
    pub fn with_max_body(mut self, bytes: usize) -> EapiClient {
        self.max_body = bytes;
        self
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
        let body = self.read_body(response).await?;
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

    /// Reads the body chunk by chunk, refusing it as soon as it passes the cap
    /// (a declared Content-Length over the cap is refused before reading).
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, EapiError> {
        let too_large = || EapiError::BodyTooLarge {
            url: self.url.clone(),
            limit: self.max_body,
        };
        let declared = response.content_length().unwrap_or(0);
        if declared > self.max_body as u64 {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(declared as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
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

    /// `show lldp neighbors`: who is cabled to which port, as LLDP reports it.
    pub async fn lldp_neighbors(&self) -> Result<Vec<LldpNeighbor>, EapiError> {
        let result = self.run_one("show lldp neighbors").await?;
        parse_lldp_neighbors(&result)
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
    fn password_files_hold_the_password_alone() {
        let parse = Credentials::parse;
        let admin = Credentials {
            user: "admin".into(),
            password: "pa:ss word".into(),
        };
        assert_eq!(parse("admin", "pa:ss word\n").as_ref(), Ok(&admin));
        assert_eq!(parse("admin", "pa:ss word\r\n\n").as_ref(), Ok(&admin));
        assert_eq!(parse("admin", "pa:ss word").as_ref(), Ok(&admin));
        assert!(parse("admin", "").is_err());
        assert!(parse("admin", "\n").is_err());
        // The old two-line form is refused, not misread as a password "admin".
        let two = parse("admin", "admin\npa:ss\n").unwrap_err();
        assert!(two.contains("alone"), "{two}");
        assert!(parse("", "secret").is_err());

        let debug = format!("{admin:?}");
        assert!(!debug.contains("pa:ss"), "{debug}");

        let err =
            Credentials::from_password_file("admin", Path::new("/nonexistent/ztps/eapi-password"))
                .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read eAPI credentials from /nonexistent/ztps/eapi-password"),
            "{err}"
        );
    }

    /// A local server on loopback that answers every request with `head`
    /// followed by `body_chunk` repeated forever (or until the client leaves).
    async fn endless_server(head: &'static str, body_chunk: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    if conn.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    // Bounded: 1 GiB at most, far past any cap under test.
                    for _ in 0..(1usize << 30) / body_chunk.len() {
                        if conn.write_all(body_chunk).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        format!("http://{addr}/command-api")
    }

    #[tokio::test]
    async fn an_endless_or_huge_answer_is_refused_at_the_cap() {
        static CHUNK: &[u8] = b"10000\r\n";
        // Chunked: each chunk is 64 KiB of spaces (valid JSON whitespace).
        static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let body = BODY.get_or_init(|| {
            let mut b = CHUNK.to_vec();
            b.extend(std::iter::repeat_n(b' ', 0x10000));
            b.extend_from_slice(b"\r\n");
            b
        });
        let url = endless_server(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            body,
        )
        .await;
        let eapi = EapiClient::new(&EapiConfig {
            url,
            timeout: Duration::from_secs(20),
            credentials: None,
        })
        .unwrap()
        .with_max_body(1 << 20);
        let err = eapi.version().await.unwrap_err();
        assert!(
            matches!(err, EapiError::BodyTooLarge { limit, .. } if limit == 1 << 20),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("larger than 1048576 bytes"),
            "{err}"
        );
        assert!(!err.is_retryable());

        // A declared length over the cap is refused before the body is read.
        let url = endless_server(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n",
            b"                ",
        )
        .await;
        let eapi = EapiClient::new(&EapiConfig {
            url,
            timeout: Duration::from_secs(20),
            credentials: None,
        })
        .unwrap();
        assert_eq!(eapi.max_body, MAX_BODY);
        let err = eapi.version().await.unwrap_err();
        assert!(matches!(err, EapiError::BodyTooLarge { .. }), "{err:?}");
    }
}
