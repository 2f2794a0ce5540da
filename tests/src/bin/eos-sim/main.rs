//! eos-sim: a stand-in for EOS's eAPI (`POST /command-api`, JSON-RPC `runCmds`) that
//! answers from the kernel state of the network namespace it runs in, in the shapes
//! of real EOS captures (`eapi/tests/fixtures`), with faults that a test can switch
//! on and off while it runs. `eos-sim --help` lists the options.
//!
//! - Interfaces ([`kernel`]): kernel `etN[_M...]`, `maN`, `poN`, `vlanN` (and `loN`
//!   for addresses) are reported as `EthernetN[/M...]`, `ManagementN`,
//!   `Port-ChannelN`, `VlanN`, `LoopbackN`. `linkStatus` is `connected` when the
//!   link is up with carrier, `notconnect` when up without carrier, `disabled`
//!   when administratively down (as EOS reports a `shutdown` port).
//! - `show lldp neighbors` ([`lldp`]) comes from `--lldp-file`, which the tests
//!   write (`ztps_tests::eos::set_lldp_neighbor`).
//! - `--http 127.0.0.1:0` binds a free port; `--ready-file` receives
//!   `{"http": "127.0.0.1:PORT", "unix": PATH, "pid": N}` once the sockets listen.
//! - `--control PATH` ([`control`]) holds `{"mode": "ok" | "refuse" | "http502" |
//!   "http503" | "garbage" | "slow", "delay_ms": N}`; it is re-read on every
//!   request and every 100 ms. `refuse` closes the listening sockets (connects
//!   are refused) and every open connection; `ok` opens them again on the same
//!   address.
//! - `--request-log PATH` gets one JSON line per request:
//!   `{"time": SECS, "cmds": [...], "format": "json", "outcome": "ok", "config": [...]}`
//!   where `config` lists the commands run in config mode.
//!
//! Layout: [`args`] (the command line), [`http`] (serving, faults, request log),
//! [`eos`] (the switch model: `runCmds` and every `show`), [`kernel`] (links
//! and addresses of this namespace), [`lldp`], [`control`].
//!
//! Logs go to stderr with `eprintln!`: this is a test fixture, not product code.

mod args;
mod control;
mod eos;
mod http;
mod kernel;
mod lldp;

use clap::Parser as _;
use serde_json::json;
use std::fs::OpenOptions;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;

use control::{Control, Mode};
use eos::Eos;
use http::{spawn_connection, Server};

/// How often the control file is polled for `refuse` <-> `ok` when no request comes.
const CONTROL_POLL: Duration = Duration::from_millis(100);

fn main() {
    let options = args::Options::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(serve(options)) {
        eprintln!("eos-sim: {e}");
        std::process::exit(1);
    }
}

async fn serve(options: args::Options) -> io::Result<()> {
    let request_log = match &options.request_log {
        Some(path) => Some(Mutex::new(
            OpenOptions::new().create(true).append(true).open(path)?,
        )),
        None => None,
    };
    let server = Arc::new(Server {
        eos: Eos {
            unnumbered: options.unnumbered(),
            identity: options.identity.clone(),
            unix: options.unix.clone(),
            http_bound: Mutex::new(None),
            lldp: lldp::Lldp::new(options.lldp_file.clone()),
            started: Instant::now(),
        },
        control: Control::new(options.control.clone()),
        request_log,
        authorization: options
            .credentials
            .as_ref()
            .map(|c| c.authorization.clone()),
        boot_502: options.boot_502,
        started: Instant::now(),
        generation: watch::Sender::new(0),
    });
    let mut open: Option<Vec<tokio::task::JoinHandle<()>>> = None;
    let mut ready_written = false;
    loop {
        let refuse = server.control.read() == Mode::Refuse;
        if !refuse && open.is_none() {
            open = Some(open_listeners(&server, &options).await?);
            if !ready_written {
                write_ready_file(&server, &options)?;
                ready_written = true;
            }
        } else if refuse && open.is_some() {
            server.generation.send_modify(|g| *g += 1);
            for accept_loop in open.take().unwrap_or_default() {
                let _ = accept_loop.await;
            }
            eprintln!("eos-sim: listening sockets closed (refuse)");
        }
        tokio::time::sleep(CONTROL_POLL).await;
    }
}

async fn open_listeners(
    server: &Arc<Server>,
    options: &args::Options,
) -> io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut loops = Vec::new();
    let http = *server.eos.http_bound.lock().unwrap();
    if let Some(addr) = http.or(options.http) {
        let listener = bind_tcp(addr).await?;
        let bound = listener.local_addr()?;
        *server.eos.http_bound.lock().unwrap() = Some(bound);
        eprintln!("eos-sim: listening on http://{bound}/command-api");
        loops.push(serve_on(server, listener));
    }
    if let Some(path) = &options.unix {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(path)?;
        eprintln!("eos-sim: listening on unix:{}", path.display());
        loops.push(serve_on(server, listener));
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

/// A listening socket eAPI is served on.
trait Listener: Send + 'static {
    /// An accepted connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Waits for the next connection.
    fn next(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    async fn next(&self) -> io::Result<TcpStream> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    async fn next(&self) -> io::Result<UnixStream> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

/// Accepts on `listener` until the generation changes; the listener is dropped
/// (closed) then.
fn serve_on<L: Listener>(server: &Arc<Server>, listener: L) -> tokio::task::JoinHandle<()> {
    let server = Arc::clone(server);
    let mut stop = server.generation.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.next() => match accepted {
                    Ok(stream) => spawn_connection(&server, stream),
                    Err(e) => {
                        eprintln!("eos-sim: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = stop.changed() => return,
            }
        }
    })
}

fn write_ready_file(server: &Server, options: &args::Options) -> io::Result<()> {
    let Some(path) = &options.ready_file else {
        return Ok(());
    };
    let http = server.eos.http_bound.lock().unwrap().map(|a| a.to_string());
    let unix = options.unix.as_ref().map(|p| p.display().to_string());
    let ready = json!({"http": http, "unix": unix, "pid": std::process::id()});
    // Written whole, then renamed, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, ready.to_string())?;
    std::fs::rename(&tmp, path)
}
