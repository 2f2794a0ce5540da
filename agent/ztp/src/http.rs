//! The HTTP/1.1 server leaves fetch their bootstrap from (hyper).
//!
//! The requester is identified by its TCP peer address alone: a connection is
//! kept only when the peer is a leased leaf address in the [`PeerTable`] *and*
//! the connection arrived on the spine's own address on that leaf's link, so
//! the management network, and a leaf reaching another link's address, get no
//! connection at all. Which file is served follows from the port the leaf is
//! cabled to (`[[ztp.leaf]]`), never from anything in the request.
//!
//! Concurrency, and why each piece is there:
//! - one accept loop; each connection is a task in a [`JoinSet`], so shutdown
//!   aborts them all and nothing outlives [`ZtpServer::run`];
//! - a [`Semaphore`] caps connections overall and a small per-peer count caps
//!   each leaf, so slow or hostile clients on one link cannot take the slots
//!   another leaf needs;
//! - hyper's header read timeout (with [`TokioTimer`]) bounds a slow request
//!   head and the wait for the next request on a kept-alive connection; an
//!   activity watch on the socket closes a connection that moves no byte for
//!   `idle_timeout` (a leaf that stops reading); request bodies are bounded in
//!   size and time;
//! - the peer table is updated in place under a lock held for one map
//!   operation (a DHCP ACK inserts its leaf before the ACK leaves, so the
//!   leaf's first fetch finds it); the settings are an `Arc` snapshot swapped
//!   on SIGHUP; neither lock is ever held across an await;
//! - events go to the daemon over a bounded channel with `try_send`: a full
//!   channel drops (and counts) events, it never stalls a response.

use crate::image::ImageStore;
use crate::lifecycle::{LeafEvent, LeafHeaders};
use crate::script::{self, UpgradeScript};
use crate::ResponseBody;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// A value the daemon replaces while requests read it: readers clone an `Arc`
/// under a lock held for no longer than that.
#[derive(Debug)]
pub struct Shared<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> Shared<T> {
    /// Starts with `value`.
    pub fn new(value: T) -> Self {
        Shared(Arc::new(RwLock::new(Arc::new(value))))
    }

    /// The current value.
    pub fn load(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the value; requests already running keep the one they loaded.
    pub fn store(&self, value: T) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(value);
    }
}

/// Leased leaf address -> who that is, until when. Updated in place (one ACK
/// is one insert, whatever the number of leases); readers copy out one entry
/// under a read lock held for no longer than that. An entry whose lease has
/// ended by the monotonic clock is refused on lookup, so an expired lease
/// admits nobody even before the table is next maintained.
#[derive(Debug, Clone, Default)]
pub struct PeerTable(Arc<RwLock<HashMap<Ipv4Addr, PeerEntry>>>);

impl PeerTable {
    /// A table holding `entries`.
    pub fn new(entries: HashMap<Ipv4Addr, PeerEntry>) -> Self {
        PeerTable(Arc::new(RwLock::new(entries)))
    }

    /// Who holds a lease on `address` now, if a served leaf does.
    pub fn get(&self, address: &Ipv4Addr) -> Option<PeerEntry> {
        self.get_at(address, Instant::now())
    }

    /// Who holds a lease on `address` at `now`, if a served leaf does.
    pub fn get_at(&self, address: &Ipv4Addr, now: Instant) -> Option<PeerEntry> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(address)
            .filter(|e| e.until > now)
            .cloned()
    }

    /// Replaces the whole table (when it differs).
    pub fn replace(&self, entries: HashMap<Ipv4Addr, PeerEntry>) {
        let mut t = self.0.write().unwrap_or_else(|p| p.into_inner());
        if *t != entries {
            *t = entries;
        }
    }

    /// Adds or updates one leaf address (a DHCP ACK, or a copy of the DHCP
    /// core's lease). An entry for the same leaf with a later end is kept: a
    /// copy taken before a renewal never shortens what the renewal granted.
    pub fn insert(&self, address: Ipv4Addr, entry: PeerEntry) {
        let mut t = self.0.write().unwrap_or_else(|p| p.into_inner());
        match t.get(&address) {
            Some(old) if old.same_leaf(&entry) && old.until >= entry.until => {}
            _ => {
                t.insert(address, entry);
            }
        }
    }

    /// Removes a leaf address (a RELEASE).
    pub fn remove(&self, address: &Ipv4Addr) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(address);
    }

    /// Removes every address on the links `gone` says yes to, and every
    /// entry whose lease ended before `now`. O(entries): for link changes
    /// and reloads, not per packet.
    pub fn remove_links(&self, gone: impl Fn(&str) -> bool, now: Instant) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.until > now && !gone(&e.link));
    }

    /// Number of entries, ended or not.
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A leaf address the server answers, and what it may be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEntry {
    /// EOS name of the spine port the leaf is cabled to.
    pub link: String,
    /// The spine's address on that link: the leaf must connect to this one.
    pub spine: Ipv4Addr,
    /// The `[[ztp.leaf]]` for the port, if the operator configured one.
    pub leaf: Option<LeafSpec>,
    /// When the lease ends, by the monotonic clock: from then on the
    /// address is refused.
    pub until: Instant,
}

impl PeerEntry {
    /// Whether `other` names the same link, spine address and leaf.
    fn same_leaf(&self, other: &PeerEntry) -> bool {
        self.link == other.link && self.spine == other.spine && self.leaf == other.leaf
    }
}

/// A `[[ztp.leaf]]`: the leaf's name (its config is `<configs>/<name>.cfg`)
/// and the serial it is locked to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    name: String,
    serial: Option<String>,
}

/// A leaf name that cannot safely name a file or an LLDP device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "leaf name {0:?} is not a label: use 1-63 letters, digits, '-', '_' or '.', starting with a \
     letter or digit, without \"..\""
)]
pub struct LeafNameError(pub String);

impl LeafSpec {
    /// Checks that `name` is a plain label (so `<name>.cfg` stays inside the
    /// configs folder whatever the config crate allowed): the rule of
    /// `ztps-config`'s `LeafName`, checked again here.
    pub fn new(name: &str, serial: Option<String>) -> Result<Self, LeafNameError> {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && !name.contains("..");
        if !ok {
            return Err(LeafNameError(name.to_string()));
        }
        Ok(LeafSpec {
            name: name.to_string(),
            serial,
        })
    }

    /// The leaf's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The serial it is locked to.
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }
}

/// Bounds on what one client can make the server hold or wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once, all leaves together.
    pub max_connections: usize,
    /// Connections open at once from one leaf address.
    pub max_connections_per_peer: usize,
    /// Longest time to receive a request head (and to wait for the next
    /// request on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A connection that moves no byte either way for this long is closed.
    pub idle_timeout: Duration,
    /// Longest time to receive a request body.
    pub body_timeout: Duration,
    /// Largest request head, in bytes.
    pub max_head: usize,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Largest config file served, in bytes.
    pub max_config: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_connections_per_peer: 16,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            max_head: 8 * 1024,
            max_body: 4 * 1024,
            max_config: 4 * 1024 * 1024,
        }
    }
}

/// What the server needs besides the peer table; replaceable on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZtpSettings {
    /// Folder with `<name>.cfg` per leaf.
    pub configs: PathBuf,
    /// Bounds on clients.
    pub limits: Limits,
    /// `[ztp.image]`: leaves not on its version get the upgrade script.
    pub image: Option<ImageStore>,
}

/// Something that happened to the leaf on a link, for its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZtpEvent {
    /// EOS name of the link.
    pub link: String,
    /// When (monotonic).
    pub at: Instant,
    /// What the leaf said of itself in this request.
    pub headers: LeafHeaders,
    /// What happened.
    pub event: LeafEvent,
}

/// The port cannot be listened on.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Someone else holds the port; on EOS, usually EOS's own HTTP server.
    #[error(
        "TCP port {port} is already in use on this switch; on EOS that is usually EOS's own HTTP \
         server (`management http-server` with `protocol http`, or `management api \
         http-commands` with `protocol http`): set `[ztp] port` to a free port in 50000-50100 \
         (the default control-plane ACL admits those), or move that server off port {port}"
    )]
    PortInUse {
        /// The port asked for.
        port: u16,
    },
    /// Any other failure to listen.
    #[error("cannot listen for ZTP on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
}

/// A bound ZTP server, ready to [`run`](ZtpServer::run).
pub struct ZtpServer {
    listener: TcpListener,
    ctx: Arc<Ctx>,
}

/// What every request handler reads.
struct Ctx {
    /// The port leaves connect to, for the URLs in the upgrade script.
    port: u16,
    settings: Shared<ZtpSettings>,
    peers: PeerTable,
    events: mpsc::Sender<ZtpEvent>,
    dropped_events: AtomicU64,
}

impl ZtpServer {
    /// Listens on `addr` (in the daemon `0.0.0.0:<ztp.port>`: connections
    /// that do not come from a leaf to its link address are closed at once).
    /// Must be called inside a tokio runtime.
    pub fn bind(
        addr: SocketAddr,
        settings: Shared<ZtpSettings>,
        peers: PeerTable,
        events: mpsc::Sender<ZtpEvent>,
    ) -> Result<ZtpServer, BindError> {
        let listen = || -> io::Result<TcpListener> {
            let socket = match addr {
                SocketAddr::V4(_) => TcpSocket::new_v4()?,
                SocketAddr::V6(_) => TcpSocket::new_v6()?,
            };
            // A restarted daemon must not wait for old connections' TIME_WAIT.
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        };
        let listener = listen().map_err(|source| {
            if source.kind() == io::ErrorKind::AddrInUse {
                BindError::PortInUse { port: addr.port() }
            } else {
                BindError::Listen { addr, source }
            }
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| BindError::Listen { addr, source })?
            .port();
        Ok(ZtpServer {
            listener,
            ctx: Arc::new(Ctx {
                port,
                settings,
                peers,
                events,
                dropped_events: AtomicU64::new(0),
            }),
        })
    }

    /// The address actually bound (to learn a port chosen by the OS).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; then closes every connection.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let ZtpServer { listener, ctx } = self;
        let mut shutdown = std::pin::pin!(shutdown);
        let limits = ctx.settings.load().limits.clone();
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let per_peer: Arc<Mutex<HashMap<Ipv4Addr, usize>>> = Arc::default();
        let mut tasks = JoinSet::new();
        let mut accept_errors = 0u64;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // EMFILE and the like: say so once in a while, back off a little.
                            accept_errors += 1;
                            if accept_errors.is_power_of_two() {
                                warn!("ZTP: accepting a connection failed ({accept_errors} so far): {e}");
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let Some((peer_ip, local_ip)) = admit(&ctx.peers, peer, &stream) else {
                        debug!("ZTP: closed a connection from {peer}: not a served leaf's address on its link");
                        continue;
                    };
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        debug!("ZTP: closed a connection from {peer}: {} connections open", limits.max_connections);
                        continue;
                    };
                    let Some(peer_slot) = PeerSlot::take(&per_peer, peer_ip, limits.max_connections_per_peer) else {
                        debug!("ZTP: closed a connection from {peer}: {} already open from it", limits.max_connections_per_peer);
                        continue;
                    };
                    let ctx = ctx.clone();
                    let limits = limits.clone();
                    tasks.spawn(async move {
                        serve_connection(ctx, stream, peer_ip, local_ip, &limits).await;
                        drop((slot, peer_slot));
                    });
                }
            }
        }
        tasks.shutdown().await;
    }
}

/// The peer and local IPv4 addresses when the peer is a leaf connecting to
/// the spine's address on its own link; `None` to close the connection.
fn admit(peers: &PeerTable, peer: SocketAddr, stream: &TcpStream) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    };
    let peer_ip = v4(peer.ip())?;
    let local_ip = v4(stream.local_addr().ok()?.ip())?;
    let entry = peers.get(&peer_ip)?;
    (entry.spine == local_ip).then_some((peer_ip, local_ip))
}

/// One of a peer's connection slots, given back on drop.
struct PeerSlot {
    table: Arc<Mutex<HashMap<Ipv4Addr, usize>>>,
    peer: Ipv4Addr,
}

impl PeerSlot {
    fn take(
        table: &Arc<Mutex<HashMap<Ipv4Addr, usize>>>,
        peer: Ipv4Addr,
        max: usize,
    ) -> Option<Self> {
        let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
        let n = t.entry(peer).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            table: table.clone(),
            peer,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = t.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.remove(&self.peer);
            }
        }
    }
}

/// Drives one connection until it ends, idles too long, or its task is aborted.
async fn serve_connection(
    ctx: Arc<Ctx>,
    stream: TcpStream,
    peer: Ipv4Addr,
    local: Ipv4Addr,
    limits: &Limits,
) {
    let activity = Activity::new();
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(handle(&ctx, peer, local, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_head)
        .max_buf_size(limits.max_head.max(16 * 1024))
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let check = (limits.idle_timeout / 4).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!("ZTP: connection from {peer} ended: {e}");
                }
                return;
            }
            _ = tokio::time::sleep(check) => {
                if activity.idle_for() >= limits.idle_timeout {
                    debug!("ZTP: closed the connection from {peer}: idle for {:?}", limits.idle_timeout);
                    return;
                }
            }
        }
    }
}

/// When a connection last moved a byte (monotonic).
#[derive(Clone)]
struct Activity {
    base: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            base: Instant::now(),
            last_ms: Arc::default(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.base
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A socket that records activity whenever bytes move.
struct Watched {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The routes; anything else is 404, a known path with another method 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Bootstrap,
    Config,
    Image,
    Status,
}

impl Route {
    /// The route, or the refusal: 404 for an unknown path, 405 (with `Allow`)
    /// for a known path asked with another method.
    fn of(method: &Method, path: &str) -> Result<Route, StatusCode> {
        let (route, allowed) = match path {
            "/ztp/bootstrap" => (Route::Bootstrap, Method::GET),
            "/ztp/config" => (Route::Config, Method::GET),
            "/ztp/image" => (Route::Image, Method::GET),
            "/ztp/status" => (Route::Status, Method::POST),
            _ => return Err(StatusCode::NOT_FOUND),
        };
        if *method != allowed {
            return Err(StatusCode::METHOD_NOT_ALLOWED);
        }
        Ok(route)
    }

    /// The one method each path takes.
    fn allowed_for(path: &str) -> &'static str {
        if path == "/ztp/status" {
            "POST"
        } else {
            "GET"
        }
    }
}

/// One request from an admitted peer.
async fn handle(
    ctx: &Arc<Ctx>,
    peer: Ipv4Addr,
    local: Ipv4Addr,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let route = match Route::of(req.method(), req.uri().path()) {
        Ok(r) => r,
        Err(StatusCode::METHOD_NOT_ALLOWED) => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            let allow = Route::allowed_for(req.uri().path());
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            return r;
        }
        Err(_) => return text(StatusCode::NOT_FOUND, "not found\n"),
    };
    // Who is asking is decided now, from the table as it is now: the lease
    // or the config may have changed since the connection was accepted.
    let entry = match ctx.peers.get(&peer) {
        Some(e) if e.spine == local => e,
        _ => return text(StatusCode::FORBIDDEN, "not a served leaf\n"),
    };
    let headers = LeafHeaders::from_headers(req.headers());
    let event = |event: LeafEvent| ctx.emit(&entry.link, &headers, event);

    if route == Route::Status {
        return status_report(ctx, req, event).await;
    }
    let Some(leaf) = &entry.leaf else {
        event(LeafEvent::Refused {
            why: format!("no ztp.leaf for {}", entry.link),
        });
        return text(StatusCode::NOT_FOUND, "no ztp.leaf for this port\n");
    };
    if let Some(want) = leaf.serial() {
        if headers.serial.as_deref() != Some(want) {
            let sent = match &headers.serial {
                Some(s) => format!("serial {s}"),
                None => "no X-Arista-Serial".to_string(),
            };
            event(LeafEvent::Refused {
                why: format!("{sent}, but {} is locked to serial {want}", leaf.name()),
            });
            return text(StatusCode::FORBIDDEN, "serial does not match\n");
        }
    }
    let settings = ctx.settings.load();
    match route {
        Route::Bootstrap => match settings
            .image
            .as_ref()
            .filter(|i| needs_upgrade(i, &headers))
        {
            Some(image) => serve_script(ctx.port, local, image, &headers, event).await,
            None => serve_config(&settings, leaf, event).await,
        },
        Route::Config => serve_config(&settings, leaf, event).await,
        Route::Image => match &settings.image {
            Some(image) => {
                let (ctx, link) = (ctx.clone(), entry.link.clone());
                let progress = Box::new(move |sent, total| {
                    let event = match sent == total {
                        true => LeafEvent::ImageDone,
                        false => LeafEvent::ImageProgress { sent, total },
                    };
                    ctx.emit(&link, &headers, event);
                });
                image.respond(req.headers(), progress).await
            }
            None => text(StatusCode::NOT_FOUND, "no image configured\n"),
        },
        Route::Status => unreachable!("answered above"),
    }
}

/// A leaf gets the upgrade script unless it says it runs the image's version.
fn needs_upgrade(image: &ImageStore, headers: &LeafHeaders) -> bool {
    headers.version.as_deref() != Some(image.version())
}

/// `GET /ztp/bootstrap` for a leaf on another EOS version: the upgrade script,
/// pointing back at the address and port the leaf reached.
async fn serve_script(
    port: u16,
    local: Ipv4Addr,
    image: &ImageStore,
    headers: &LeafHeaders,
    event: impl Fn(LeafEvent),
) -> Response<ResponseBody> {
    let digest = match image.digest().await {
        Ok(d) => d,
        Err(e) => {
            event(LeafEvent::Failed { why: e.to_string() });
            return text(StatusCode::INTERNAL_SERVER_ERROR, "image unavailable\n");
        }
    };
    let base_url = match port {
        80 => format!("http://{local}"),
        _ => format!("http://{local}:{port}"),
    };
    let body = script::render(&UpgradeScript {
        base_url: &base_url,
        image: &digest,
        serial: headers.serial.as_deref(),
        version: image.version(),
    });
    event(LeafEvent::ScriptSent {
        bytes: body.len() as u64,
    });
    let mut r = text(StatusCode::OK, body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /ztp/config` (and the bootstrap when no upgrade applies): the exact
/// bytes of `<configs>/<name>.cfg` as they are on flash now.
async fn serve_config(
    settings: &ZtpSettings,
    leaf: &LeafSpec,
    event: impl Fn(LeafEvent),
) -> Response<ResponseBody> {
    let path = config_path(&settings.configs, leaf);
    match read_config(path.clone(), settings.limits.max_config).await {
        Ok(bytes) => {
            event(LeafEvent::ConfigSent {
                bytes: bytes.len() as u64,
            });
            let mut r = text(StatusCode::OK, bytes);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            let (status, answer) = match e {
                ConfigReadError::Missing => (StatusCode::NOT_FOUND, "no config for this leaf\n"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "config unavailable\n"),
            };
            event(LeafEvent::Failed {
                why: format!("config {}: {e}", path.display()),
            });
            text(status, answer)
        }
    }
}

/// `POST /ztp/status`: `{"stage": "...", "message": "..."}`, at most
/// `max_body` bytes, received within `body_timeout`.
async fn status_report(
    ctx: &Ctx,
    req: Request<Incoming>,
    event: impl Fn(LeafEvent),
) -> Response<ResponseBody> {
    #[derive(serde::Deserialize)]
    struct Report {
        stage: String,
        #[serde(default)]
        message: String,
    }
    let limits = ctx.settings.load().limits.clone();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
    }
    let body = Limited::new(req.into_body(), limits.max_body).collect();
    let bytes = match tokio::time::timeout(limits.body_timeout, body).await {
        Err(_) => return text(StatusCode::REQUEST_TIMEOUT, "body too slow\n"),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n")
        }
        Ok(Err(_)) => return text(StatusCode::BAD_REQUEST, "body unreadable\n"),
        Ok(Ok(b)) => b.to_bytes(),
    };
    match serde_json::from_slice::<Report>(&bytes) {
        Ok(r) => {
            event(LeafEvent::LeafReport {
                stage: r.stage,
                message: r.message,
            });
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        Err(_) => text(
            StatusCode::BAD_REQUEST,
            "expected {\"stage\": \"...\", \"message\": \"...\"}\n",
        ),
    }
}

impl Ctx {
    fn emit(&self, link: &str, headers: &LeafHeaders, event: LeafEvent) {
        let e = ZtpEvent {
            link: link.to_string(),
            at: Instant::now(),
            headers: headers.clone(),
            event,
        };
        if self.events.try_send(e).is_err() {
            let n = self.dropped_events.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                warn!("ZTP: {n} lifecycle event(s) dropped so far (the daemon is busy); status may lag");
            }
        }
    }
}

/// `<configs>/<name>.cfg`; the name is a checked label ([`LeafSpec::new`]).
pub fn config_path(configs: &Path, leaf: &LeafSpec) -> PathBuf {
    configs.join(format!("{}.cfg", leaf.name()))
}

/// Why a config file could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ConfigReadError {
    /// No such file.
    #[error("no such file")]
    Missing,
    /// Not a regular file (a folder, a FIFO, a device).
    #[error("not a regular file")]
    NotAFile,
    /// Larger than the cap.
    #[error("{size} bytes, more than the {cap} served")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// Any other read error.
    #[error("{0}")]
    Io(io::Error),
}

/// Reads a config file as it is now, at most `cap` bytes. Opened non-blocking
/// so a FIFO put in its place cannot hang a thread.
pub async fn read_config(path: PathBuf, cap: u64) -> Result<Bytes, ConfigReadError> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => ConfigReadError::Missing,
                _ => ConfigReadError::Io(e),
            })?;
        let meta = file.metadata().map_err(ConfigReadError::Io)?;
        if !meta.is_file() {
            return Err(ConfigReadError::NotAFile);
        }
        if meta.len() > cap {
            return Err(ConfigReadError::TooLarge {
                size: meta.len(),
                cap,
            });
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        file.take(cap + 1)
            .read_to_end(&mut buf)
            .map_err(ConfigReadError::Io)?;
        if buf.len() as u64 > cap {
            return Err(ConfigReadError::TooLarge {
                size: buf.len() as u64,
                cap,
            });
        }
        Ok(Bytes::from(buf))
    })
    .await
    .unwrap_or_else(|e| Err(ConfigReadError::Io(io::Error::other(e))))
}

/// A `text/plain` response with `Content-Length`.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let body: Bytes = body.into();
    let len = body.len();
    let mut r = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// An empty body.
fn empty() -> ResponseBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPINE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
    const LEAF3: Ipv4Addr = Ipv4Addr::new(127, 0, 3, 1);
    const LEAF4: Ipv4Addr = Ipv4Addr::new(127, 0, 4, 1);
    const LEAF5: Ipv4Addr = Ipv4Addr::new(127, 0, 5, 1);
    const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 9, 1);

    struct Running {
        port: u16,
        dir: tempfile::TempDir,
        peers: PeerTable,
        events: mpsc::Receiver<ZtpEvent>,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    #[test]
    fn peer_table_refuses_an_ended_lease_and_keeps_the_later_end() {
        let t0 = Instant::now();
        let peers = PeerTable::default();
        let mut e = entry("Ethernet3", Some(("leaf3", None)));
        e.until = t0 + Duration::from_secs(10);
        peers.insert(LEAF3, e.clone());
        assert!(peers.get_at(&LEAF3, t0).is_some());
        assert!(peers.get_at(&LEAF3, t0 + Duration::from_secs(10)).is_none());
        // A copy taken before a renewal does not shorten the renewal.
        let mut older = e.clone();
        older.until = t0 + Duration::from_secs(5);
        peers.insert(LEAF3, older);
        assert!(peers.get_at(&LEAF3, t0 + Duration::from_secs(7)).is_some());
        // Another leaf on the address (a plan change) replaces it outright.
        let mut other = entry("Ethernet9", None);
        other.until = t0 + Duration::from_secs(5);
        peers.insert(LEAF3, other);
        assert_eq!(peers.get_at(&LEAF3, t0).unwrap().link, "Ethernet9");
        // Maintenance drops a link's addresses and whatever ended.
        peers.insert(LEAF4, entry("Ethernet4", None));
        peers.remove_links(|l| l == "Ethernet4", t0);
        assert!(peers.get_at(&LEAF4, t0).is_none());
        peers.remove_links(|_| false, t0 + Duration::from_secs(6));
        assert!(peers.is_empty());
    }

    fn entry(link: &str, leaf: Option<(&str, Option<&str>)>) -> PeerEntry {
        PeerEntry {
            link: link.into(),
            spine: SPINE,
            leaf: leaf.map(|(n, s)| LeafSpec::new(n, s.map(str::to_string)).unwrap()),
            until: Instant::now() + Duration::from_secs(3600),
        }
    }

    async fn start(limits: Limits) -> Running {
        start_with_image(limits, None).await
    }

    /// The server with `[ztp.image]` = `image` as EOS 4.33.2F, when given.
    async fn start_with_image(limits: Limits, image: Option<&[u8]>) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let image = image.map(|bytes| {
            let path = dir.path().join("EOS-4.33.2F.swi");
            std::fs::write(&path, bytes).unwrap();
            ImageStore::new(path, "4.33.2F".into(), 2)
        });
        std::fs::write(dir.path().join("leaf3.cfg"), "hostname leaf3\n").unwrap();
        std::fs::write(dir.path().join("leaf4.cfg"), "hostname leaf4\n").unwrap();
        let peers = PeerTable::new(HashMap::from([
            (LEAF3, entry("Ethernet3", Some(("leaf3", None)))),
            (
                LEAF4,
                entry("Ethernet4", Some(("leaf4", Some("JPE20000004")))),
            ),
            (LEAF5, entry("Ethernet5", None)),
        ]));
        let settings = Shared::new(ZtpSettings {
            configs: dir.path().to_path_buf(),
            limits,
            image,
        });
        let (tx, events) = mpsc::channel(64);
        let server =
            ZtpServer::bind(SocketAddr::from((SPINE, 0)), settings, peers.clone(), tx).unwrap();
        let port = server.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Running {
            port,
            dir,
            peers,
            events,
            _stop: stop,
        }
    }

    /// Connects from `from` (any loopback address) to the server.
    async fn connect(from: Ipv4Addr, port: u16) -> io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((from, 0)))?;
        socket.connect(SocketAddr::from((SPINE, port))).await
    }

    /// Sends `raw` from `from` and reads the answer until the server closes.
    async fn request(port: u16, from: Ipv4Addr, raw: String) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut s = match connect(from, port).await {
            Ok(s) => s,
            Err(e) => return format!("connect failed: {e}"),
        };
        let _ = s.write_all(raw.as_bytes()).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    fn get(path: &str, extra: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: spine\r\nConnection: close\r\n{extra}\r\n")
    }

    fn status_line(response: &str) -> &str {
        response.lines().next().unwrap_or("")
    }

    fn body(response: &str) -> &str {
        response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("")
    }

    async fn next_event(r: &mut Running) -> ZtpEvent {
        tokio::time::timeout(Duration::from_secs(5), r.events.recv())
            .await
            .expect("an event within 5 s")
            .expect("channel open")
    }

    #[tokio::test]
    async fn with_an_image_a_leaf_on_another_version_gets_the_upgrade_script() {
        let image: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = start_with_image(Limits::default(), Some(&image)).await;
        let on = |v: &str| format!("X-Arista-SoftwareVersion: {v}\r\n");

        let plain = request(r.port, LEAF3, get("/ztp/bootstrap", &on("4.33.2F"))).await;
        assert_eq!(body(&plain), "hostname leaf3\n", "{plain}");
        assert!(matches!(
            next_event(&mut r).await.event,
            LeafEvent::ConfigSent { .. }
        ));

        for headers in [on("4.30.1F"), String::new()] {
            let script = request(r.port, LEAF3, get("/ztp/bootstrap", &headers)).await;
            assert_eq!(status_line(&script), "HTTP/1.1 200 OK");
            let text = body(&script);
            assert!(text.starts_with("#!/bin/bash\n"), "{script}");
            let url = format!("\nBASE_URL='http://{SPINE}:{}'\n", r.port);
            assert!(text.contains(&url), "{text}");
            let sum = ImageStore::new(r.dir.path().join("EOS-4.33.2F.swi"), "v".into(), 1)
                .digest()
                .await
                .unwrap()
                .sha256_hex;
            assert!(text.contains(&format!("\nIMAGE_SHA256='{sum}'\n")));
            assert!(text.contains("\nIMAGE='EOS-4.33.2F.swi'\n"));
            assert!(matches!(
                next_event(&mut r).await.event,
                LeafEvent::ScriptSent { .. }
            ));
        }

        // The config stays reachable for the script, whatever the version.
        let config = request(r.port, LEAF3, get("/ztp/config", &on("4.30.1F"))).await;
        assert_eq!(body(&config), "hostname leaf3\n");
        assert!(matches!(
            next_event(&mut r).await.event,
            LeafEvent::ConfigSent { .. }
        ));

        let resp = request(r.port, LEAF3, get("/ztp/image", "Range: bytes=100-\r\n")).await;
        assert_eq!(status_line(&resp), "HTTP/1.1 206 Partial Content");
        let (head, _) = resp.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains("content-range: bytes 100-2999999/3000000"),
            "{head}"
        );
        let mut events = Vec::new();
        loop {
            let e = next_event(&mut r).await.event;
            let done = e == LeafEvent::ImageDone;
            events.push(e);
            if done {
                break;
            }
        }
        assert!(
            matches!(
                events[0],
                LeafEvent::ImageProgress {
                    total: 3_000_000,
                    ..
                }
            ),
            "{events:?}"
        );

        // A serial-locked port checks the serial on the image too.
        let refused = request(r.port, LEAF4, get("/ztp/image", "")).await;
        assert_eq!(status_line(&refused), "HTTP/1.1 403 Forbidden");
        let ok = request(
            r.port,
            LEAF4,
            get("/ztp/image", "X-Arista-Serial: JPE20000004\r\n"),
        )
        .await;
        assert_eq!(status_line(&ok), "HTTP/1.1 200 OK");
    }

    #[tokio::test]
    async fn without_an_image_the_image_route_is_404() {
        let r = start(Limits::default()).await;
        let resp = request(r.port, LEAF3, get("/ztp/image", "")).await;
        assert_eq!(status_line(&resp), "HTTP/1.1 404 Not Found");
    }

    #[tokio::test]
    async fn each_leaf_gets_its_ports_config_as_it_is_on_flash_now() {
        let mut r = start(Limits::default()).await;
        let got = request(
            r.port,
            LEAF3,
            get("/ztp/bootstrap", "X-Arista-Serial: JPE1\r\n"),
        )
        .await;
        assert_eq!(status_line(&got), "HTTP/1.1 200 OK", "{got}");
        assert!(got
            .to_ascii_lowercase()
            .contains("content-type: text/plain"));
        assert!(got.to_ascii_lowercase().contains("content-length: 15"));
        assert_eq!(body(&got), "hostname leaf3\n");
        let e = next_event(&mut r).await;
        assert_eq!(e.link, "Ethernet3");
        assert_eq!(e.event, LeafEvent::ConfigSent { bytes: 15 });
        assert_eq!(e.headers.serial.as_deref(), Some("JPE1"));

        std::fs::write(
            r.dir.path().join("leaf3.cfg"),
            "hostname leaf3\nip routing\n",
        )
        .unwrap();
        let got = request(r.port, LEAF3, get("/ztp/config", "")).await;
        assert_eq!(body(&got), "hostname leaf3\nip routing\n");

        // The leaf moved to Ethernet4: the same address now maps to that
        // port's entry, so it gets that port's config.
        r.peers.replace(HashMap::from([(
            LEAF3,
            entry("Ethernet4", Some(("leaf4", None))),
        )]));
        let got = request(r.port, LEAF3, get("/ztp/config", "")).await;
        assert_eq!(body(&got), "hostname leaf4\n");
    }

    #[tokio::test]
    async fn serial_locks_refuse_a_wrong_or_missing_serial_and_disclose_nothing() {
        let mut r = start(Limits::default()).await;
        for extra in ["", "X-Arista-Serial: JPE20000003\r\n"] {
            let got = request(r.port, LEAF4, get("/ztp/bootstrap", extra)).await;
            assert_eq!(status_line(&got), "HTTP/1.1 403 Forbidden", "{got}");
            assert!(!got.contains("leaf4\n"), "{got}");
            let e = next_event(&mut r).await;
            assert!(
                matches!(&e.event, LeafEvent::Refused { why } if why.contains("locked to serial JPE20000004")),
                "{e:?}"
            );
        }
        let got = request(
            r.port,
            LEAF4,
            get("/ztp/bootstrap", "x-arista-serial: JPE20000004\r\n"),
        )
        .await;
        assert_eq!(body(&got), "hostname leaf4\n");
    }

    #[tokio::test]
    async fn refusals_unknown_paths_and_methods() {
        let mut r = start(Limits::default()).await;
        let got = request(r.port, LEAF5, get("/ztp/bootstrap", "")).await;
        assert_eq!(status_line(&got), "HTTP/1.1 404 Not Found", "{got}");
        let e = next_event(&mut r).await;
        assert_eq!(
            e.event,
            LeafEvent::Refused {
                why: "no ztp.leaf for Ethernet5".into()
            }
        );
        // Not a leaf: no connection, or nothing served.
        let got = request(r.port, STRANGER, get("/ztp/bootstrap", "")).await;
        assert!(!got.contains("hostname"), "{got}");
        assert!(!got.starts_with("HTTP/1.1 200"), "{got}");
        for path in [
            "/ztp/../leaf4.cfg",
            "/ztp/%2e%2e/leaf4.cfg",
            "/leaf4.cfg",
            "/ztp/config/leaf4",
            "/ztp/bootstrap/../../etc/passwd",
        ] {
            let got = request(r.port, LEAF3, get(path, "")).await;
            assert_eq!(status_line(&got), "HTTP/1.1 404 Not Found", "{path}: {got}");
        }
        let got = request(r.port, LEAF3, get("/ztp/status", "")).await;
        assert_eq!(
            status_line(&got),
            "HTTP/1.1 405 Method Not Allowed",
            "{got}"
        );
        assert!(got.to_ascii_lowercase().contains("allow: post"));
        // A missing file is a 404 and a failure naming the path.
        std::fs::remove_file(r.dir.path().join("leaf3.cfg")).unwrap();
        let got = request(r.port, LEAF3, get("/ztp/config", "")).await;
        assert_eq!(status_line(&got), "HTTP/1.1 404 Not Found", "{got}");
        let e = next_event(&mut r).await;
        assert!(
            matches!(&e.event, LeafEvent::Failed { why } if why.contains("leaf3.cfg") && why.contains("no such file")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn status_reports_are_accepted_and_bounded() {
        let mut r = start(Limits::default()).await;
        let json = r#"{"stage":"image","message":"checksum ok"}"#;
        let post = format!(
            "POST /ztp/status HTTP/1.1\r\nHost: s\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        let got = request(r.port, LEAF3, post).await;
        assert_eq!(status_line(&got), "HTTP/1.1 204 No Content", "{got}");
        assert_eq!(
            next_event(&mut r).await.event,
            LeafEvent::LeafReport {
                stage: "image".into(),
                message: "checksum ok".into()
            }
        );
        let big = "x".repeat(5000);
        let post = format!(
            "POST /ztp/status HTTP/1.1\r\nHost: s\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{big}",
            big.len()
        );
        let got = request(r.port, LEAF3, post).await;
        assert_eq!(status_line(&got), "HTTP/1.1 413 Payload Too Large", "{got}");
        let chunked = format!(
            "POST /ztp/status HTTP/1.1\r\nHost: s\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
            big.len()
        );
        let got = request(r.port, LEAF3, chunked).await;
        assert_eq!(status_line(&got), "HTTP/1.1 413 Payload Too Large", "{got}");
        let head = get("/ztp/config", &format!("X-Junk: {}\r\n", "y".repeat(9000)));
        let got = request(r.port, LEAF3, head).await;
        assert_eq!(
            status_line(&got),
            "HTTP/1.1 431 Request Header Fields Too Large",
            "{got}"
        );
        // And it still serves.
        let got = request(r.port, LEAF3, get("/ztp/config", "")).await;
        assert_eq!(body(&got), "hostname leaf3\n");
    }

    #[tokio::test]
    async fn a_slow_head_is_cut_off_and_a_leafs_connections_are_capped() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            max_connections_per_peer: 4,
            ..Limits::default()
        };
        let r = start(limits).await;
        let port = r.port;
        let slow = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let mut held = Vec::new();
            for _ in 0..10 {
                if let Ok(mut s) = connect(LEAF3, port).await {
                    let _ = s.write_all(b"GET /ztp/config HTTP/1.1\r\n").await;
                    held.push(s);
                }
            }
            let started = Instant::now();
            // Every connection ends: beyond the cap at once, the rest at the
            // header timeout; none is left hanging.
            for s in &mut held {
                let mut buf = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
            }
            started.elapsed()
        });
        // Another leaf is served meanwhile.
        let got = request(
            r.port,
            LEAF4,
            get("/ztp/config", "X-Arista-Serial: JPE20000004\r\n"),
        )
        .await;
        assert_eq!(body(&got), "hostname leaf4\n");
        let took = slow.await.unwrap();
        assert!(
            took < Duration::from_secs(5),
            "slow heads held for {took:?}"
        );
    }

    #[tokio::test]
    async fn port_in_use_names_eos_http_and_suggests_a_port() {
        let first = std::net::TcpListener::bind((SPINE, 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let (tx, _rx) = mpsc::channel(1);
        let err = ZtpServer::bind(
            SocketAddr::from((SPINE, port)),
            Shared::new(ZtpSettings {
                configs: "/nonexistent".into(),
                limits: Limits::default(),
                image: None,
            }),
            PeerTable::new(HashMap::new()),
            tx,
        )
        .err()
        .expect("the port is taken");
        let msg = err.to_string();
        assert!(matches!(err, BindError::PortInUse { .. }));
        assert!(msg.contains("management http-server"), "{msg}");
        assert!(msg.contains("50000-50100"), "{msg}");
    }

    #[test]
    fn leaf_names_must_be_labels() {
        for bad in [
            "",
            "../x",
            "a/b",
            "-x",
            ".hidden",
            "leaf 3",
            "a..b",
            &"a".repeat(64),
        ] {
            assert!(LeafSpec::new(bad, None).is_err(), "{bad:?}");
        }
        let l = LeafSpec::new("leaf_3-a", Some("S".into())).unwrap();
        assert_eq!(
            config_path(Path::new("/c"), &l),
            Path::new("/c/leaf_3-a.cfg")
        );
    }

    #[tokio::test]
    async fn config_reads_refuse_fifos_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.cfg");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_config(fifo, 100).await,
            Err(ConfigReadError::NotAFile)
        ));
        let big = dir.path().join("big.cfg");
        std::fs::write(&big, vec![b'x'; 101]).unwrap();
        assert!(matches!(
            read_config(big, 100).await,
            Err(ConfigReadError::TooLarge {
                size: 101,
                cap: 100
            })
        ));
    }
}
