//! The spine-served ZTP service inside the daemon (`[ztp] serve = true`).
//!
//! [`ZtpService`] owns the HTTP server task (`ztps_ztp::http`), the table of
//! leaf addresses it answers, and one [`Lifecycle`] per served link. The
//! daemon's loop feeds it served links and leases on every reconcile
//! ([`ZtpService::update_peers`]) and LLDP neighbours
//! ([`ZtpService::on_lldp`]), and applies its events
//! ([`ZtpService::take_events`], then [`ZtpService::on_event`] for each). The DHCP event
//! sink calls [`ZtpDhcpHook::on_dhcp`]: an ACK adds the leaf's address to the
//! peer table at once (its fetch follows within milliseconds, before the loop
//! would reconcile) and queues its `dhcp` stage. Every stage change is one log
//! line naming link, leaf, serial and stage.
//!
//! The config is read once, in [`ztp_params`] (and [`bootstrap_url`] for the
//! DHCP side); the service itself runs on [`ZtpParams`].

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tracing::info;
use ztps_dhcp::plan::AddressPlan;
use ztps_dhcp::{Event, Lease, ServedLink};
use ztps_ztp::http::{
    BindError, LeafNameError, LeafSpec, Limits, PeerEntry, PeerTable, Shared, ZtpEvent, ZtpServer,
    ZtpSettings,
};
use ztps_ztp::image::ImageStore;
use ztps_ztp::lifecycle::{sanitize, LeafEvent, LeafHeaders, Lifecycle, Now, ZtpLinkStatus};

/// Events buffered between the HTTP server and the daemon loop; beyond this
/// the server drops (and counts) them rather than wait.
const EVENT_QUEUE: usize = 1024;

/// What the service needs from `[ztp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZtpParams {
    /// TCP port on the spine's link addresses.
    pub port: u16,
    /// Folder with `<name>.cfg` per leaf.
    pub configs: PathBuf,
    /// `[[ztp.leaf]]` by spine port (EOS name, matched in any case).
    pub leaves: BTreeMap<String, LeafSpec>,
    /// `[ztp.image]` and `ztp.max_image_downloads`, if an image is configured.
    pub image: Option<ImageParams>,
}

/// The EOS image leaves not on `version` are upgraded to first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageParams {
    /// `ztp.image.file`.
    pub file: PathBuf,
    /// `ztp.image.version`.
    pub version: String,
    /// `ztp.max_image_downloads`.
    pub max_downloads: usize,
}

impl ImageParams {
    /// The store serving this image, reusing `current` when nothing changed so
    /// its cached sha256 and its running downloads' slots carry over a reload.
    fn store(&self, current: Option<&ImageStore>) -> ImageStore {
        match current {
            Some(s)
                if s.file() == self.file
                    && s.version() == self.version
                    && s.max_downloads() == self.max_downloads =>
            {
                s.clone()
            }
            _ => ImageStore::new(self.file.clone(), self.version.clone(), self.max_downloads),
        }
    }
}

impl ZtpParams {
    /// The leaf configured on spine port `link`.
    pub fn leaf_on(&self, link: &str) -> Option<&LeafSpec> {
        self.leaves
            .iter()
            .find(|(port, _)| port.eq_ignore_ascii_case(link))
            .map(|(_, leaf)| leaf)
    }
}

/// Option 67 of the default Arista class when the spine serves ZTP: the
/// DHCP core puts the link's spine address in place of `{server}`.
pub fn bootstrap_url(port: u16) -> String {
    let server = ztps_dhcp::config::SERVER_PLACEHOLDER;
    if port == 80 {
        format!("http://{server}/ztp/bootstrap")
    } else {
        format!("http://{server}:{port}/ztp/bootstrap")
    }
}

/// The ZTP service's parameters from the config; `None` in VM mode.
pub fn ztp_params(config: &crate::config::Config) -> Result<Option<ZtpParams>, LeafNameError> {
    let z = &config.ztp;
    if !z.serve {
        return Ok(None);
    }
    let leaves = z
        .leaf
        .iter()
        .map(|l| {
            Ok((
                l.interface.clone(),
                LeafSpec::new(&l.name, l.serial.clone())?,
            ))
        })
        .collect::<Result<BTreeMap<_, _>, LeafNameError>>()?;
    Ok(Some(ZtpParams {
        port: z.port,
        configs: z.configs.clone(),
        leaves,
        image: z.image.as_ref().map(|i| ImageParams {
            file: i.file.clone(),
            version: i.version.clone(),
            max_downloads: z.max_image_downloads,
        }),
    }))
}

/// The address a leaf on this link reaches the spine at, and the host in its
/// option 67 URL: the spine's own address on a /31 or /30, the pool's router
/// on a pool link.
pub fn spine_address(plan: &AddressPlan) -> Ipv4Addr {
    match plan {
        AddressPlan::PointToPoint { spine, .. } => *spine,
        AddressPlan::Pool(pool) => pool.router,
    }
}

/// Served link -> (the spine's address on it, its `[[ztp.leaf]]`).
type LinkTable = Arc<RwLock<HashMap<String, (Ipv4Addr, Option<LeafSpec>)>>>;

/// What the DHCP event sink calls; cheap to clone, never waits.
#[derive(Clone)]
pub struct ZtpDhcpHook {
    peers: PeerTable,
    links: LinkTable,
    events: mpsc::Sender<ZtpEvent>,
}

impl ZtpDhcpHook {
    /// An ACK admits the leaf's address at once and queues its `dhcp` stage;
    /// a RELEASE takes the address out.
    pub fn on_dhcp(&self, event: &Event) {
        match event {
            Event::Acked {
                link,
                address,
                vendor,
                renewal,
                ..
            } => {
                let known = self
                    .links
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&**link)
                    .cloned();
                if let Some((spine, leaf)) = known {
                    self.peers.insert(
                        *address,
                        PeerEntry {
                            link: link.to_string(),
                            spine,
                            leaf,
                        },
                    );
                }
                // What option 60 said, until the leaf's own headers say more.
                let fields = vendor.as_deref().map(ztps_dhcp::VendorInfo::fields);
                let headers = LeafHeaders {
                    serial: fields.and_then(|f| f.3).map(|s| sanitize(s, 64)),
                    model: fields.and_then(|f| f.1).map(|s| sanitize(s, 64)),
                    ..LeafHeaders::default()
                };
                // A full queue drops the stage change rather than stall DHCP.
                let _ = self.events.try_send(ZtpEvent {
                    link: link.to_string(),
                    at: Instant::now(),
                    headers,
                    event: LeafEvent::DhcpAcked { renewal: *renewal },
                });
            }
            Event::Released { address, .. } => self.peers.remove(address),
            _ => {}
        }
    }
}

/// The running ZTP service.
pub struct ZtpService {
    params: ZtpParams,
    settings: Shared<ZtpSettings>,
    peers: PeerTable,
    links: LinkTable,
    hook_events: mpsc::Sender<ZtpEvent>,
    events: Option<mpsc::Receiver<ZtpEvent>>,
    lifecycles: BTreeMap<String, Lifecycle>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The server's own runtime (`ztps_ztp::SERVER_THREADS` workers); shut
    /// down in the background on stop or drop, never waited on from the
    /// daemon's loop.
    runtime: Option<tokio::runtime::Runtime>,
}

impl ZtpService {
    /// Binds `0.0.0.0:<port>` and starts serving (nobody is admitted until
    /// [`update_peers`](Self::update_peers) names the leaves).
    pub fn start(params: ZtpParams) -> Result<ZtpService, BindError> {
        let settings = Shared::new(ZtpSettings {
            configs: params.configs.clone(),
            limits: Limits::default(),
            image: params.image.as_ref().map(|i| i.store(None)),
        });
        let peers = PeerTable::new(HashMap::new());
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, params.port));
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get().min(ztps_ztp::SERVER_THREADS));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("ztps-ztp")
            .enable_all()
            .build()
            .map_err(|source| BindError::Listen { addr, source })?;
        // The listener registers with the runtime that will serve it.
        let server = {
            let _in_server_runtime = runtime.enter();
            ZtpServer::bind(addr, settings.clone(), peers.clone(), tx.clone())
        };
        let server = match server {
            Ok(server) => server,
            Err(e) => {
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = runtime.spawn(server.run(async {
            let _ = stopped.await;
        }));
        info!(
            "ZTP: serving leaves over HTTP on port {}, configs from {}",
            params.port,
            params.configs.display()
        );
        Ok(ZtpService {
            params,
            settings,
            peers,
            links: LinkTable::default(),
            hook_events: tx,
            events: Some(events),
            lifecycles: BTreeMap::new(),
            stop: Some(stop),
            task: Some(task),
            runtime: Some(runtime),
        })
    }

    /// The hook for the DHCP event sink.
    pub fn dhcp_hook(&self) -> ZtpDhcpHook {
        ZtpDhcpHook {
            peers: self.peers.clone(),
            links: self.links.clone(),
            events: self.hook_events.clone(),
        }
    }

    /// The parameters in use.
    pub fn params(&self) -> &ZtpParams {
        &self.params
    }

    /// Applies new `[ztp]` settings (SIGHUP). The port is bound once: a new
    /// port is reported and takes effect at the next start.
    pub fn reload(&mut self, params: ZtpParams) {
        if params.port != self.params.port {
            tracing::warn!(
                "SIGHUP: ztp.port changed from {} to {}; that takes effect at the next start",
                self.params.port,
                params.port
            );
        }
        let current = self.settings.load();
        self.settings.store(ZtpSettings {
            configs: params.configs.clone(),
            limits: Limits::default(),
            image: params
                .image
                .as_ref()
                .map(|i| i.store(current.image.as_ref())),
        });
        for (link, l) in self.lifecycles.iter_mut() {
            l.set_leaf(params.leaf_on(link).map(|s| s.name().to_string()));
        }
        self.params = ZtpParams {
            port: self.params.port,
            ..params
        };
    }

    /// Rebuilds who may ask: each active lease on a served link, with the
    /// spine's address on that link and the port's `[[ztp.leaf]]`. Lifecycles
    /// follow the served links (a link no longer served keeps its history
    /// until it is gone from the view).
    pub fn update_peers(
        &mut self,
        served: &[ServedLink],
        leases: impl IntoIterator<Item = Lease>,
        now_unix: u64,
    ) {
        let spines: HashMap<&str, Ipv4Addr> = served
            .iter()
            .map(|l| (l.name.as_str(), spine_address(&l.plan)))
            .collect();
        let table: HashMap<Ipv4Addr, PeerEntry> = leases
            .into_iter()
            .filter(|l| l.is_active(now_unix))
            .filter_map(|l| {
                let spine = *spines.get(&*l.link)?;
                Some((
                    l.address,
                    PeerEntry {
                        link: l.link.to_string(),
                        spine,
                        leaf: self.params.leaf_on(&l.link).cloned(),
                    },
                ))
            })
            .collect();
        *self.links.write().unwrap_or_else(|p| p.into_inner()) = served
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    (
                        spine_address(&l.plan),
                        self.params.leaf_on(&l.name).cloned(),
                    ),
                )
            })
            .collect();
        self.peers.replace(table);
        for link in served {
            self.lifecycle(&link.name);
        }
    }

    /// Notes one LLDP poll (`show lldp neighbors`).
    pub fn on_lldp_neighbors(&mut self, neighbors: &[ztps_eapi::LldpNeighbor]) {
        let mut by_port: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in neighbors {
            by_port
                .entry(n.port.clone())
                .or_default()
                .push(n.neighbor_device.clone());
        }
        self.on_lldp(&by_port);
    }

    /// Notes one LLDP poll: device names by local port (EOS name). Only links
    /// with a configured leaf not yet provisioned care.
    pub fn on_lldp(&mut self, neighbours: &BTreeMap<String, Vec<String>>) {
        let now = Now::current();
        let links: Vec<String> = self
            .lifecycles
            .iter()
            .filter(|(_, l)| l.wants_lldp())
            .map(|(k, _)| k.clone())
            .collect();
        for link in links {
            let devices = neighbours.get(&link).cloned().unwrap_or_default();
            self.apply(&link, now, LeafEvent::Lldp { devices });
        }
    }

    /// Whether an LLDP poll could move any link forward.
    pub fn wants_lldp(&self) -> bool {
        self.lifecycles.values().any(Lifecycle::wants_lldp)
    }

    /// The events of the HTTP server and the DHCP hook, for the daemon to
    /// forward into its loop (once; `None` after).
    pub fn take_events(&mut self) -> Option<mpsc::Receiver<ZtpEvent>> {
        self.events.take()
    }

    /// Applies an event from the HTTP server.
    pub fn on_event(&mut self, e: ZtpEvent) {
        let now = Now::current();
        // The server stamped it on the monotonic clock; the wall clock is only shown.
        let now = Now {
            mono: e.at,
            unix: now.unix,
        };
        let l = self.lifecycle(&e.link);
        l.note_headers(&e.headers);
        if let Some(line) = l.apply(now, e.event) {
            info!("{line}");
        }
    }

    /// A link's ZTP state for status.
    pub fn status(&self, link: &str) -> Option<ZtpLinkStatus> {
        self.lifecycles.get(link).map(Lifecycle::status)
    }

    /// Stops the server and waits for it (its connections are closed).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    fn apply(&mut self, link: &str, now: Now, event: LeafEvent) {
        if let Some(line) = self.lifecycle(link).apply(now, event) {
            info!("{line}");
        }
    }

    fn lifecycle(&mut self, link: &str) -> &mut Lifecycle {
        let leaf = self.params.leaf_on(link).map(|s| s.name().to_string());
        self.lifecycles
            .entry(link.to_string())
            .or_insert_with(|| Lifecycle::new(link, leaf))
    }
}

impl Drop for ZtpService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
