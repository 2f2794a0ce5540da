//! eos-sim: a stand-in for EOS's eAPI (`POST /command-api`, JSON-RPC `runCmds`) that
//! answers from the kernel state of the network namespace it runs in, in the shapes
//! of real EOS captures (`eapi/tests/fixtures`), with faults that a test can switch
//! on and off while it runs.
//!
//! ```text
//! eos-sim [--http ADDR:PORT] [--unix PATH] [--control PATH] [--request-log PATH]
//!         [--ready-file PATH] [--boot-502 SECS] [--credentials USER:PASSWORD]
//!         [--model M] [--serial S] [--system-mac MAC] [--architecture A] [--version V]
//!         [--hardware-revision R] [--unnumbered EOSNAME=SOURCE]...
//! ```
//!
//! - Interfaces: kernel `etN[_M...]`, `maN`, `poN`, `vlanN` (and `loN` for addresses)
//!   are reported as `EthernetN[/M...]`, `ManagementN`, `Port-ChannelN`, `VlanN`,
//!   `LoopbackN`. `linkStatus` is `connected` when the link is up with carrier,
//!   `notconnect` when up without carrier, `disabled` when administratively down
//!   (as EOS reports a `shutdown` port).
//! - `--http 127.0.0.1:0` binds a free port; `--ready-file` receives
//!   `{"http": "127.0.0.1:PORT", "unix": PATH, "pid": N}` once the sockets listen.
//! - `--control PATH` holds `{"mode": "ok" | "refuse" | "http502" | "http503" |
//!   "garbage" | "slow", "delay_ms": N}`; it is re-read on every request and every
//!   100 ms. `refuse` closes the listening sockets (connects are refused) and every
//!   open connection; `ok` opens them again on the same address.
//! - `--request-log PATH` gets one JSON line per request:
//!   `{"time": SECS, "cmds": [...], "format": "json", "outcome": "ok", "config": [...]}`
//!   where `config` lists the commands run in config mode.
//!
//! Logs go to stderr with `eprintln!`: this is a test fixture, not product code.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

const USAGE: &str = "usage: eos-sim [--http ADDR:PORT] [--unix PATH] [--control PATH] \
    [--request-log PATH] [--ready-file PATH] [--boot-502 SECS] [--credentials USER:PASSWORD] \
    [--model M] [--serial S] [--system-mac MAC] [--architecture A] [--version V] \
    [--hardware-revision R] [--unnumbered EOSNAME=SOURCE]...";

/// How often the control file is polled for `refuse` <-> `ok` when no request comes.
const CONTROL_POLL: Duration = Duration::from_millis(100);
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

fn main() {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("eos-sim: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(serve(options)) {
        eprintln!("eos-sim: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Identity {
    model: String,
    serial: String,
    system_mac: String,
    architecture: String,
    version: String,
    hardware_revision: String,
}

#[derive(Debug)]
struct Options {
    http: Option<SocketAddr>,
    unix: Option<PathBuf>,
    control: Option<PathBuf>,
    request_log: Option<PathBuf>,
    ready_file: Option<PathBuf>,
    boot_502: Duration,
    /// `Basic ...` header value required when set.
    authorization: Option<String>,
    identity: Identity,
    /// EOS name -> the interface it borrows its address from.
    unnumbered: BTreeMap<String, String>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            http: None,
            unix: None,
            control: None,
            request_log: None,
            ready_file: None,
            boot_502: Duration::ZERO,
            authorization: None,
            identity: Identity {
                model: "vEOS-lab".into(),
                serial: "SIM0000000001".into(),
                system_mac: "00:1c:73:00:00:01".into(),
                architecture: "i686".into(),
                version: "4.31.1F".into(),
                hardware_revision: String::new(),
            },
            unnumbered: BTreeMap::new(),
        };
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                println!("{USAGE}");
                std::process::exit(0);
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--http" => {
                    options.http = Some(value.parse().map_err(|e| format!("--http {value}: {e}"))?)
                }
                "--unix" => options.unix = Some(value.into()),
                "--control" => options.control = Some(value.into()),
                "--request-log" => options.request_log = Some(value.into()),
                "--ready-file" => options.ready_file = Some(value.into()),
                "--boot-502" => {
                    let secs: f64 = value
                        .parse()
                        .map_err(|e| format!("--boot-502 {value}: {e}"))?;
                    options.boot_502 = Duration::try_from_secs_f64(secs)
                        .map_err(|e| format!("--boot-502 {value}: {e}"))?;
                }
                "--credentials" => {
                    if !value.contains(':') {
                        return Err("--credentials needs USER:PASSWORD".into());
                    }
                    options.authorization = Some(format!("Basic {}", base64(value.as_bytes())));
                }
                "--model" => options.identity.model = value,
                "--serial" => options.identity.serial = value,
                "--system-mac" => options.identity.system_mac = value,
                "--architecture" => options.identity.architecture = value,
                "--version" => options.identity.version = value,
                "--hardware-revision" => options.identity.hardware_revision = value,
                "--unnumbered" => {
                    let (port, source) = value
                        .split_once('=')
                        .ok_or_else(|| format!("--unnumbered {value}: expected EOSNAME=SOURCE"))?;
                    options
                        .unnumbered
                        .insert(port.to_owned(), source.to_owned());
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        if options.http.is_none() && options.unix.is_none() {
            return Err("give --http and/or --unix".into());
        }
        Ok(options)
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Fault injection

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Refuse,
    Status(u16),
    Garbage,
    Slow(Duration),
}

fn parse_mode(text: &str) -> Result<Mode, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match value.get("mode").and_then(Value::as_str) {
        Some("ok") => Ok(Mode::Ok),
        Some("refuse") => Ok(Mode::Refuse),
        Some("http502") => Ok(Mode::Status(502)),
        Some("http503") => Ok(Mode::Status(503)),
        Some("garbage") => Ok(Mode::Garbage),
        Some("slow") => {
            let ms = value
                .get("delay_ms")
                .and_then(Value::as_u64)
                .ok_or("slow needs delay_ms")?;
            Ok(Mode::Slow(Duration::from_millis(ms)))
        }
        other => Err(format!("unknown mode {other:?}")),
    }
}

/// The current mode from the control file; a missing file means `ok`, an unreadable
/// one keeps the previous mode (a test may be halfway through writing it).
struct Control {
    path: Option<PathBuf>,
    last: Mutex<Mode>,
}

impl Control {
    fn read(&self) -> Mode {
        let mut last = self.last.lock().unwrap();
        let Some(path) = &self.path else { return *last };
        let mode = match std::fs::read_to_string(path) {
            Ok(text) => parse_mode(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Mode::Ok),
            Err(e) => Err(e.to_string()),
        };
        match mode {
            Ok(mode) => {
                if mode != *last {
                    eprintln!("eos-sim: mode {mode:?}");
                }
                *last = mode;
            }
            Err(e) => eprintln!("eos-sim: ignoring control file {}: {e}", path.display()),
        }
        *last
    }
}

// ---------------------------------------------------------------------------------
// Server

struct Sim {
    options: Options,
    started: Instant,
    control: Control,
    request_log: Option<Mutex<File>>,
    /// The bound HTTP address (port 0 resolved), for `show management api http-commands`.
    http_bound: Mutex<Option<SocketAddr>>,
    /// Bumped to make every accept loop and connection stop (mode `refuse`).
    generation: watch::Sender<u64>,
}

async fn serve(options: Options) -> io::Result<()> {
    let request_log = match &options.request_log {
        Some(path) => Some(Mutex::new(
            OpenOptions::new().create(true).append(true).open(path)?,
        )),
        None => None,
    };
    let sim = Arc::new(Sim {
        control: Control {
            path: options.control.clone(),
            last: Mutex::new(Mode::Ok),
        },
        started: Instant::now(),
        request_log,
        http_bound: Mutex::new(None),
        generation: watch::Sender::new(0),
        options,
    });
    let mut open: Option<Vec<tokio::task::JoinHandle<()>>> = None;
    let mut ready_written = false;
    loop {
        let refuse = sim.control.read() == Mode::Refuse;
        if !refuse && open.is_none() {
            open = Some(open_listeners(&sim).await?);
            if !ready_written {
                write_ready_file(&sim)?;
                ready_written = true;
            }
        } else if refuse && open.is_some() {
            sim.generation.send_modify(|g| *g += 1);
            for accept_loop in open.take().unwrap_or_default() {
                let _ = accept_loop.await;
            }
            eprintln!("eos-sim: listening sockets closed (refuse)");
        }
        tokio::time::sleep(CONTROL_POLL).await;
    }
}

async fn open_listeners(sim: &Arc<Sim>) -> io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut loops = Vec::new();
    let http = *sim.http_bound.lock().unwrap();
    if let Some(addr) = http.or(sim.options.http) {
        let listener = bind_tcp(addr).await?;
        let bound = listener.local_addr()?;
        *sim.http_bound.lock().unwrap() = Some(bound);
        eprintln!("eos-sim: listening on http://{bound}/command-api");
        let sim = Arc::clone(sim);
        let stop = sim.generation.subscribe();
        loops.push(tokio::spawn(async move {
            accept_loop(
                stop,
                || listener.accept(),
                |(stream, _)| spawn_connection(&sim, stream),
            )
            .await;
        }));
    }
    if let Some(path) = &sim.options.unix {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(path)?;
        eprintln!("eos-sim: listening on unix:{}", path.display());
        let sim = Arc::clone(sim);
        let stop = sim.generation.subscribe();
        loops.push(tokio::spawn(async move {
            accept_loop(
                stop,
                || listener.accept(),
                |(stream, _)| spawn_connection(&sim, stream),
            )
            .await;
        }));
    }
    Ok(loops)
}

/// Binds, retrying briefly: after `refuse` the port may not be free again at once.
async fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let mut attempts = 0;
    loop {
        match TcpListener::bind(addr).await {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

/// Accepts until the generation changes; the listener is dropped (closed) on return.
async fn accept_loop<T, Fut, Accept, Handle>(
    mut stop: watch::Receiver<u64>,
    accept: Accept,
    handle: Handle,
) where
    Accept: Fn() -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
    Handle: Fn(T),
{
    loop {
        tokio::select! {
            accepted = accept() => match accepted {
                Ok(connection) => handle(connection),
                Err(e) => {
                    eprintln!("eos-sim: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

fn spawn_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(sim: &Arc<Sim>, stream: S) {
    let sim = Arc::clone(sim);
    let stop = sim.generation.subscribe();
    tokio::spawn(connection(sim, stream, stop));
}

fn write_ready_file(sim: &Sim) -> io::Result<()> {
    let Some(path) = &sim.options.ready_file else {
        return Ok(());
    };
    let http = sim.http_bound.lock().unwrap().map(|a| a.to_string());
    let unix = sim.options.unix.as_ref().map(|p| p.display().to_string());
    let ready = json!({"http": http, "unix": unix, "pid": std::process::id()});
    // Written whole, then renamed, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, ready.to_string())?;
    std::fs::rename(&tmp, path)
}

// ---------------------------------------------------------------------------------
// HTTP/1.1: Content-Length bodies, keep-alive unless `Connection: close`.

struct Request {
    method: String,
    path: String,
    keep_alive: bool,
    authorization: Option<String>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    extra_headers: Vec<(&'static str, String)>,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            extra_headers: Vec::new(),
        }
    }

    fn json(value: &Value) -> Response {
        Response::new(200, "application/json", value.to_string())
    }

    /// The page nginx (EOS's front end) serves while CommandApi is not up.
    fn nginx_error(status: u16) -> Response {
        let title = format!("{status} {}", reason(status));
        let body = format!(
            "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n\
             <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        );
        Response::new(status, "text/html", body)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

enum ReadOutcome {
    Request(Request),
    Closed,
    Bad(u16, &'static str),
}

struct HttpConnection<S> {
    stream: S,
    buffer: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> HttpConnection<S> {
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn read_request(&mut self) -> io::Result<ReadOutcome> {
        let head_end = loop {
            if let Some(pos) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            if self.buffer.len() > MAX_HEADER_BYTES {
                return Ok(ReadOutcome::Bad(400, "header too large"));
            }
            if self.fill().await? == 0 {
                return Ok(ReadOutcome::Closed);
            }
        };
        let Ok(head) = std::str::from_utf8(&self.buffer[..head_end]) else {
            return Ok(ReadOutcome::Bad(400, "header is not UTF-8"));
        };
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or("").split(' ');
        let (Some(method), Some(target), Some(version)) = (
            request_line.next(),
            request_line.next(),
            request_line.next(),
        ) else {
            return Ok(ReadOutcome::Bad(400, "bad request line"));
        };
        let mut keep_alive = version == "HTTP/1.1";
        let mut content_length = 0usize;
        let mut authorization = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Ok(ReadOutcome::Bad(400, "bad header line"));
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => match value.parse() {
                    Ok(n) if n <= MAX_BODY_BYTES => content_length = n,
                    Ok(_) => return Ok(ReadOutcome::Bad(413, "body too large")),
                    Err(_) => return Ok(ReadOutcome::Bad(400, "bad Content-Length")),
                },
                "transfer-encoding" => {
                    return Ok(ReadOutcome::Bad(
                        411,
                        "only Content-Length bodies are supported",
                    ))
                }
                "connection" if value.eq_ignore_ascii_case("close") => keep_alive = false,
                "connection" if value.eq_ignore_ascii_case("keep-alive") => keep_alive = true,
                "authorization" => authorization = Some(value.to_owned()),
                _ => {}
            }
        }
        let (method, path) = (
            method.to_owned(),
            target.split('?').next().unwrap_or("").to_owned(),
        );
        let body_start = head_end + 4;
        while self.buffer.len() < body_start + content_length {
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let body = self.buffer[body_start..body_start + content_length].to_vec();
        self.buffer.drain(..body_start + content_length);
        Ok(ReadOutcome::Request(Request {
            method,
            path,
            keep_alive,
            authorization,
            body,
        }))
    }

    async fn write_response(&mut self, response: &Response, keep_alive: bool) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nServer: eos-sim\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            response.status,
            reason(response.status),
            response.content_type,
            response.body.len()
        );
        for (name, value) in &response.extra_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.write_all(&response.body).await?;
        self.stream.flush().await
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    sim: Arc<Sim>,
    stream: S,
    mut stop: watch::Receiver<u64>,
) {
    let mut http = HttpConnection {
        stream,
        buffer: Vec::new(),
    };
    loop {
        let outcome = tokio::select! {
            outcome = http.read_request() => outcome,
            _ = stop.changed() => return,
        };
        let request = match outcome {
            Ok(ReadOutcome::Request(request)) => request,
            Ok(ReadOutcome::Bad(status, why)) => {
                let _ = http
                    .write_response(&Response::new(status, "text/plain", why), false)
                    .await;
                return;
            }
            Ok(ReadOutcome::Closed) | Err(_) => return,
        };
        let Some(response) = sim.respond(&request).await else {
            return; // `refuse`: drop the connection unanswered
        };
        if http
            .write_response(&response, request.keep_alive)
            .await
            .is_err()
            || !request.keep_alive
        {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------
// eAPI

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Text,
}

/// What running a command list gave: the results or the JSON-RPC error object, and
/// the commands that ran in config mode (logged either way).
struct Ran {
    reply: Result<Vec<Value>, Value>,
    config: Vec<String>,
}

/// A parsed `runCmds` call.
struct RunCmds {
    id: Value,
    cmds: Vec<String>,
    format: Format,
}

impl Sim {
    async fn respond(&self, request: &Request) -> Option<Response> {
        if request.path != "/command-api" {
            return Some(Response::new(
                404,
                "text/plain",
                "not found: eAPI is at /command-api",
            ));
        }
        if request.method != "POST" {
            let mut response = Response::new(405, "text/plain", "eAPI expects POST");
            response.extra_headers.push(("Allow", "POST".into()));
            return Some(response);
        }
        if let Some(expected) = &self.options.authorization {
            if request.authorization.as_deref() != Some(expected.as_str()) {
                self.log(None, "http401", &[]);
                let mut response = Response::new(401, "text/plain", "Unauthorized");
                response
                    .extra_headers
                    .push(("WWW-Authenticate", "Basic realm=\"eAPI\"".into()));
                return Some(response);
            }
        }
        let call = parse_run_cmds(&request.body);
        let mode = self.control.read();
        if let Mode::Slow(delay) = mode {
            tokio::time::sleep(delay).await;
        }
        let fault = match mode {
            Mode::Refuse => {
                self.log(call.as_ref().ok(), "refused", &[]);
                return None;
            }
            Mode::Status(status) => Some(status),
            _ if self.started.elapsed() < self.options.boot_502 => Some(502),
            _ => None,
        };
        if let Some(status) = fault {
            self.log(call.as_ref().ok(), &format!("http{status}"), &[]);
            return Some(Response::nginx_error(status));
        }
        if mode == Mode::Garbage {
            self.log(call.as_ref().ok(), "garbage", &[]);
            return Some(Response::new(
                200,
                "application/json",
                "this is not JSON <html>",
            ));
        }
        let call = match call {
            Ok(call) => call,
            Err(error) => {
                self.log(None, &format!("error {}", error["code"]), &[]);
                return Some(Response::json(
                    &json!({"jsonrpc": "2.0", "id": null, "error": error}),
                ));
            }
        };
        let Ran { reply, config } = self.run_cmds(&call.cmds, call.format);
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
        Some(Response::json(&reply))
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

    /// Runs the commands as EOS does: in order, stopping at the first failure, whose
    /// error carries the results so far and then `{"errors": [...]}`.
    fn run_cmds(&self, cmds: &[String], format: Format) -> Ran {
        let mut results = Vec::with_capacity(cmds.len());
        let mut config = Vec::new();
        let mut in_config = false;
        for (index, cmd) in cmds.iter().enumerate() {
            let tokens: Vec<String> = cmd
                .split_whitespace()
                .map(str::to_ascii_lowercase)
                .collect();
            let line = tokens.join(" ");
            let result = if in_config && !line.starts_with("show ") {
                config.push(cmd.trim().to_owned());
                if line == "end" {
                    in_config = false;
                }
                Ok(empty(format))
            } else {
                match line.as_str() {
                    "enable" => Ok(empty(format)),
                    "configure" | "configure terminal" => {
                        in_config = true;
                        config.push(cmd.trim().to_owned());
                        Ok(empty(format))
                    }
                    _ => self.show(&line, &tokens, format),
                }
            };
            match result {
                Ok(result) => results.push(result),
                Err((code, what, errors)) => {
                    let message = format!(
                        "CLI command {} of {} '{}' failed: {what}",
                        index + 1,
                        cmds.len(),
                        cmd.trim()
                    );
                    results.push(json!({ "errors": errors }));
                    let error = json!({"code": code, "message": message, "data": results});
                    return Ran {
                        reply: Err(error),
                        config,
                    };
                }
            }
        }
        Ran {
            reply: Ok(results),
            config,
        }
    }

    /// A `show` command (or an unknown one): its result, or (code, reason, errors).
    fn show(
        &self,
        line: &str,
        tokens: &[String],
        format: Format,
    ) -> Result<Value, (i64, &'static str, Vec<String>)> {
        let text = |output: String| Ok(json!({ "output": output }));
        match (line, format) {
            ("show interfaces status" | "show interfaces status connected", _) => {
                let only_connected = line.ends_with("connected");
                let links = kernel_links();
                match format {
                    Format::Json => Ok(interfaces_status_json(&links, only_connected)),
                    Format::Text => text(interfaces_status_text(&links, only_connected)),
                }
            }
            ("show ip interface", Format::Json) => Ok(self.ip_interface_json(&kernel_links())),
            ("show ip interface", Format::Text) => text(self.ip_interface_text(&kernel_links())),
            ("show version", Format::Json) => Ok(self.version_json()),
            ("show version", Format::Text) => text(self.version_text()),
            ("show management api http-commands", Format::Json) => Ok(self.management_api_json()),
            ("show management api http-commands", Format::Text) => text(self.management_api_text()),
            // EOS has no JSON model for `show logging`.
            ("show logging", Format::Json) => {
                Err((1003, "unconverted command", vec!["This is an unconverted command".to_owned()]))
            }
            ("show logging", Format::Text) => {
                text("Syslog logging: enabled\nLog Buffer:\nNov 21 12:00:00 eos-sim Ebra: %LINEPROTO-5-UPDOWN: Line protocol on Interface Ethernet1, changed state to up\n".to_owned())
            }
            _ => Err(invalid_input(tokens)),
        }
    }

    fn version_json(&self) -> Value {
        let id = &self.options.identity;
        let uptime = self.started.elapsed().as_secs_f64();
        json!({
            "mfgName": "Arista",
            "modelName": id.model,
            "hardwareRevision": id.hardware_revision,
            "serialNumber": id.serial,
            "systemMacAddress": id.system_mac,
            "hwMacAddress": "00:00:00:00:00:00",
            "configMacAddress": "00:00:00:00:00:00",
            "version": id.version,
            "architecture": id.architecture,
            "internalVersion": format!("{}-0000000.sim", id.version),
            "internalBuildId": "00000000-0000-0000-0000-000000000000",
            "imageFormatVersion": "1.0",
            "imageOptimization": "None",
            "kernelVersion": "sim",
            "bootupTimestamp": 1_700_000_000.0,
            "uptime": uptime,
            "memTotal": 2_048_000,
            "memFree": 1_024_000,
            "isIntlVersion": false
        })
    }

    fn version_text(&self) -> String {
        let id = &self.options.identity;
        format!(
            "Arista {}\nHardware version: {}\nSerial number: {}\nHardware MAC address: 00:00:00:00:00:00\n\
             System MAC address: {}\n\nSoftware image version: {}\nArchitecture: {}\n",
            id.model, id.hardware_revision, id.serial, id.system_mac, id.version, id.architecture
        )
    }

    fn management_api_json(&self) -> Value {
        let http = *self.http_bound.lock().unwrap();
        let mut urls = Vec::new();
        if let Some(path) = &self.options.unix {
            urls.push(format!("Unix Socket : unix:{}", path.display()));
        }
        if let Some(addr) = http {
            urls.push(format!("Local       : http://{addr}/command-api"));
        }
        json!({
            "enabled": true,
            "httpServer": {"running": false, "configured": false, "port": 80},
            "httpsServer": {"running": false, "configured": false, "port": 443},
            "localHttpServer": {"running": http.is_some(), "configured": http.is_some(), "port": http.map_or(8080, |a| a.port())},
            "unixSocketServer": {"running": self.options.unix.is_some(), "configured": self.options.unix.is_some()},
            "vrf": "default",
            "dscpValue": 0,
            "corsOrigins": [],
            "users": {},
            "urls": urls,
            "hitCount": 0,
            "requestCount": 0,
            "commandCount": 0,
            "bytesIn": 0,
            "bytesOut": 0,
            "executionTime": 0.0,
            "lastHitTime": 0.0
        })
    }

    fn management_api_text(&self) -> String {
        let json = self.management_api_json();
        let urls: Vec<&str> = json["urls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        format!("Enabled:            Yes\nHTTPS server:       shutdown\nHTTP server:        shutdown\nURLs\n{}\n", urls.join("\n"))
    }

    fn unnumbered_source(&self, eos_name: &str) -> Option<&str> {
        self.options
            .unnumbered
            .iter()
            .find(|(port, _)| port.eq_ignore_ascii_case(eos_name))
            .map(|(_, s)| s.as_str())
    }

    /// The new schema (`interfaceAddressBrief` + `interfaceAddress.primaryIp`), as in
    /// the cEOS capture. Interfaces with no IPv4 address are not routed: left out.
    fn ip_interface_json(&self, links: &[KernelLink]) -> Value {
        let mut interfaces = serde_json::Map::new();
        for link in links {
            let Some(name) = eos_name(&link.name) else {
                continue;
            };
            let unnumbered = self.unnumbered_source(&name);
            if link.addresses.is_empty() && unnumbered.is_none() {
                continue;
            }
            let zero = ip_json(Ipv4Addr::UNSPECIFIED, 0);
            let (primary, secondaries) = match (unnumbered, link.addresses.split_first()) {
                (None, Some(((address, len), rest))) => (
                    ip_json(*address, *len),
                    rest.iter().map(|(a, l)| ip_json(*a, *l)).collect(),
                ),
                _ => (zero.clone(), Vec::new()),
            };
            let mut brief = json!({ "ipAddr": primary });
            if let Some(source) = unnumbered {
                brief["unnumberedIntf"] = json!(source);
            }
            interfaces.insert(
                name.clone(),
                json!({
                    "name": name,
                    "lineProtocolStatus": link.line_protocol(),
                    "interfaceStatus": link.link_status(),
                    "mtu": link.mtu,
                    "interfaceAddressBrief": brief,
                    "ipv4Routable240": false,
                    "ipv4Routable0": false,
                    "enabled": link.up,
                    "description": "",
                    "interfaceAddress": {
                        "primaryIp": primary,
                        "secondaryIps": {},
                        "secondaryIpsOrderedList": secondaries,
                        "virtualIp": zero,
                        "virtualSecondaryIps": {},
                        "virtualSecondaryIpsOrderedList": [],
                        "broadcastAddress": "255.255.255.255",
                        "dhcp": false
                    },
                    "proxyArp": false,
                    "proxyArpAllowDefault": false,
                    "localProxyArp": false,
                    "gratuitousArp": false,
                    "routedAddr": link.mac.clone().unwrap_or_else(|| "00:00:00:00:00:00".into()),
                    "isVrrpBackup": false,
                    "vrf": "default",
                    "urpf": "disable",
                    "addresslessForwarding": "isInvalid",
                    "directedBroadcastEnabled": false,
                    "maxMssIngress": 0,
                    "maxMssEgress": 0
                }),
            );
        }
        json!({ "interfaces": interfaces })
    }

    fn ip_interface_text(&self, links: &[KernelLink]) -> String {
        let json = self.ip_interface_json(links);
        let mut out = String::new();
        for (name, entry) in json["interfaces"].as_object().into_iter().flatten() {
            out.push_str(&format!(
                "{name} is {}, line protocol is {} ({})\n",
                if entry["enabled"] == true {
                    "up"
                } else {
                    "administratively down"
                },
                entry["lineProtocolStatus"].as_str().unwrap_or(""),
                entry["interfaceStatus"].as_str().unwrap_or("")
            ));
            if let Some(source) = entry["interfaceAddressBrief"]["unnumberedIntf"].as_str() {
                out.push_str(&format!(
                    "  Internet address is unnumbered. Using address of {source}\n"
                ));
            } else {
                let primary = &entry["interfaceAddress"]["primaryIp"];
                out.push_str(&format!(
                    "  Internet address is {}/{}\n",
                    primary["address"].as_str().unwrap_or(""),
                    primary["maskLen"]
                ));
                for secondary in entry["interfaceAddress"]["secondaryIpsOrderedList"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    out.push_str(&format!(
                        "  Secondary address is {}/{}\n",
                        secondary["address"].as_str().unwrap_or(""),
                        secondary["maskLen"]
                    ));
                }
            }
            out.push_str(&format!(
                "  Broadcast address is 255.255.255.255\n  IP MTU {} bytes\n",
                entry["mtu"]
            ));
        }
        out
    }
}

fn empty(format: Format) -> Value {
    match format {
        Format::Json => json!({}),
        Format::Text => json!({"output": ""}),
    }
}

fn ip_json(address: Ipv4Addr, len: u8) -> Value {
    json!({"address": address.to_string(), "maskLen": len})
}

/// The commands eos-sim knows, to point at the first token no command accepts.
const KNOWN: &[&str] = &[
    "enable",
    "configure terminal",
    "show interfaces status connected",
    "show ip interface",
    "show version",
    "show management api http-commands",
    "show logging",
];

/// EOS's 1002 error for a command it cannot parse: the first token that fits no
/// command, or "Incomplete command" when every token fits.
fn invalid_input(tokens: &[String]) -> (i64, &'static str, Vec<String>) {
    let matched = KNOWN
        .iter()
        .map(|known| {
            known
                .split(' ')
                .zip(tokens)
                .take_while(|(k, t)| k == t)
                .count()
        })
        .max()
        .unwrap_or(0);
    let error = match tokens.get(matched) {
        Some(token) => format!("Invalid input (at token {matched}: '{token}')"),
        None => "Incomplete command".to_owned(),
    };
    (1002, "invalid command", vec![error])
}

fn parse_run_cmds(body: &[u8]) -> Result<RunCmds, Value> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| json!({"code": -32700, "message": "Parse error: request is not JSON"}))?;
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if request.get("method").and_then(Value::as_str) != Some("runCmds") {
        return Err(json!({"code": -32601, "message": "Method not found: expected runCmds"}));
    }
    let params = request.get("params").unwrap_or(&Value::Null);
    let invalid = |why: &str| json!({"code": -32602, "message": format!("Invalid params: {why}")});
    let cmds = params
        .get("cmds")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`cmds` must be a list"))?
        .iter()
        .map(|c| {
            c.as_str()
                .or_else(|| c.get("cmd").and_then(Value::as_str))
                .map(str::to_owned)
        })
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| invalid("each command must be a string or {\"cmd\": ...}"))?;
    let format = match params
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("json")
    {
        "json" => Format::Json,
        "text" => Format::Text,
        other => return Err(invalid(&format!("unknown format {other:?}"))),
    };
    match params.get("version") {
        Some(v) if v == 1 || v == "latest" => {}
        _ => return Err(invalid("`version` must be 1 or \"latest\"")),
    }
    Ok(RunCmds { id, cmds, format })
}

// ---------------------------------------------------------------------------------
// Kernel state of this network namespace

struct KernelLink {
    name: String,
    up: bool,
    running: bool,
    mac: Option<String>,
    addresses: Vec<(Ipv4Addr, u8)>,
    mtu: u32,
}

impl KernelLink {
    fn link_status(&self) -> &'static str {
        match (self.up, self.running) {
            (true, true) => "connected",
            (true, false) => "notconnect",
            (false, _) => "disabled",
        }
    }

    fn line_protocol(&self) -> &'static str {
        if self.up && self.running {
            "up"
        } else {
            "down"
        }
    }
}

/// Every link in this namespace with its flags, MAC and IPv4 addresses (kernel order).
fn kernel_links() -> Vec<KernelLink> {
    use nix::net::if_::InterfaceFlags;
    let mut links: BTreeMap<String, KernelLink> = BTreeMap::new();
    let addrs = match nix::ifaddrs::getifaddrs() {
        Ok(addrs) => addrs,
        Err(e) => {
            eprintln!("eos-sim: getifaddrs: {e}");
            return Vec::new();
        }
    };
    for ifa in addrs {
        let link = links
            .entry(ifa.interface_name.clone())
            .or_insert_with(|| KernelLink {
                mtu: interface_mtu(&ifa.interface_name).unwrap_or(1500),
                name: ifa.interface_name.clone(),
                up: false,
                running: false,
                mac: None,
                addresses: Vec::new(),
            });
        link.up = ifa.flags.contains(InterfaceFlags::IFF_UP);
        link.running = ifa.flags.contains(InterfaceFlags::IFF_RUNNING);
        let Some(address) = ifa.address else { continue };
        if let Some(inet) = address.as_sockaddr_in() {
            let len = ifa
                .netmask
                .and_then(|m| {
                    m.as_sockaddr_in()
                        .map(|m| u32::from(m.ip()).count_ones() as u8)
                })
                .unwrap_or(32);
            link.addresses.push((inet.ip(), len));
        } else if let Some(mac) = address.as_link_addr().and_then(|l| l.addr()) {
            link.mac = Some(
                mac.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
    }
    links.into_values().collect()
}

/// SIOCGIFMTU on this namespace (sysfs may show another namespace).
fn interface_mtu(name: &str) -> Option<u32> {
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: a zeroed ifreq is valid; the name fits with its NUL; the fd is closed below.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        for (dst, src) in request.ifr_name.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        let rc = libc::ioctl(fd, libc::SIOCGIFMTU as _, &mut request);
        libc::close(fd);
        (rc == 0).then_some(request.ifr_ifru.ifru_mtu as u32)
    }
}

/// EOS's name for a kernel interface, by EOS's naming rule (kept separate from
/// `ztps_eapi::names` so the simulator does not share the client's mistakes).
fn eos_name(kernel: &str) -> Option<String> {
    let digits = |s: &str, separators: bool| {
        !s.is_empty()
            && !s.starts_with('_')
            && !s.ends_with('_')
            && !s.contains("__")
            && s.chars()
                .all(|c| c.is_ascii_digit() || (separators && c == '_'))
    };
    for (prefix, eos, separators) in [
        ("et", "Ethernet", true),
        ("ma", "Management", true),
        ("po", "Port-Channel", false),
        ("vlan", "Vlan", false),
        ("lo", "Loopback", false),
    ] {
        if let Some(rest) = kernel.strip_prefix(prefix) {
            if digits(rest, separators) {
                return Some(format!("{eos}{}", rest.replace('_', "/")));
            }
        }
    }
    None
}

fn interfaces_status_entries(
    links: &[KernelLink],
    only_connected: bool,
) -> Vec<(String, &KernelLink)> {
    links
        .iter()
        .filter_map(|link| Some((eos_name(&link.name)?, link)))
        .filter(|(name, _)| !name.starts_with("Loopback"))
        .filter(|(_, link)| !only_connected || link.link_status() == "connected")
        .collect()
}

/// As in the vEOS capture, plus `lineProtocolStatus` as newer releases report.
fn interfaces_status_json(links: &[KernelLink], only_connected: bool) -> Value {
    let mut statuses = serde_json::Map::new();
    for (name, link) in interfaces_status_entries(links, only_connected) {
        let (interface_type, bandwidth): (&str, u64) = match name.as_str() {
            n if n.starts_with("Ethernet") => ("EbraTestPhyPort", 10_000_000_000),
            n if n.starts_with("Management") => ("10/100/1000", 1_000_000_000),
            _ => ("N/A", 0),
        };
        statuses.insert(
            name,
            json!({
                "description": "",
                "duplex": "duplexFull",
                "vlanInformation": {"interfaceMode": "routed", "interfaceForwardingModel": "routed"},
                "bandwidth": bandwidth,
                "interfaceType": interface_type,
                "autoNegotiateActive": false,
                "autoNegotigateActive": false,
                "linkStatus": link.link_status(),
                "lineProtocolStatus": link.line_protocol()
            }),
        );
    }
    json!({ "interfaceStatuses": statuses })
}

fn interfaces_status_text(links: &[KernelLink], only_connected: bool) -> String {
    let mut out = String::from(
        "Port       Name   Status       Vlan     Duplex Speed  Type            Flags\n",
    );
    for (name, link) in interfaces_status_entries(links, only_connected) {
        let short = name
            .replacen("Ethernet", "Et", 1)
            .replacen("Management", "Ma", 1)
            .replacen("Port-Channel", "Po", 1)
            .replacen("Vlan", "Vl", 1);
        out.push_str(&format!(
            "{short:<10}        {:<12} routed   full   10G    EbraTestPhyPort\n",
            link.link_status()
        ));
    }
    out
}
