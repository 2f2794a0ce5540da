//! The spine-served ZTP service inside the daemon (`[ztp] serve = true`).
//!
//! [`ZtpService`] owns the HTTP server task (`ztps_ztp::http`), the table of
//! leaf addresses it answers, and one [`Lifecycle`] per served link. The
//! daemon's loop hands it the served links on each reconcile
//! ([`ZtpService::update_peers`]) and LLDP neighbours
//! ([`ZtpService::on_lldp`]), and applies its events
//! ([`ZtpService::take_events`], then [`ZtpService::on_event`] for each). The DHCP event
//! sink calls [`ZtpDhcpHook::on_dhcp`]: an ACK adds the leaf's address to the
//! peer table at once (its fetch follows within milliseconds, before the loop
//! would reconcile) and queues its `dhcp` stage. Every stage change is one log
//! line naming link, leaf, serial and stage.
//!
//! Peer-table cost: the table is kept by events, not rebuilt. An ACK inserts
//! (or extends) one address until the end of its lease, a RELEASE or a
//! DECLINE that drops the binding removes it, and a lease that ends is
//! refused on lookup by its monotonic deadline ([`PeerEntry::until`]). Only
//! a served link that is new, or whose spine address or `[[ztp.leaf]]`
//! changed, has its leases copied from the DHCP core (that link's only, under
//! the server lock for just the copy); an unchanged reconcile touches nothing.
//!
//! The config is read once, in [`ztp_params`] (and [`bootstrap_url`] for the
//! DHCP side); the service itself runs on [`ZtpParams`].

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::info;
use ztps_dhcp::plan::AddressPlan;
use ztps_dhcp::{Clock, Event, ServedLink, Server};
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
    /// `dhcp.lease_time`: how long an address the DHCP core just ACKed stays
    /// admitted (the core grants exactly this).
    pub lease_time: Duration,
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
        lease_time: config.dhcp.lease_time,
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

/// What the peer table knows of one served link: the spine's address on it
/// and its `[[ztp.leaf]]`.
type LinkPeers = (Ipv4Addr, Option<LeafSpec>);

/// Served link -> what its leaves are admitted with.
type LinkTable = Arc<RwLock<HashMap<String, LinkPeers>>>;

/// The leases of one link as copied from the DHCP core: each bound address
/// and how long it has left.
pub type LinkLeases = (String, Vec<(Ipv4Addr, Duration)>);

/// What the DHCP event sink calls; cheap to clone, never waits.
#[derive(Clone)]
pub struct ZtpDhcpHook {
    peers: PeerTable,
    links: LinkTable,
    /// `dhcp.lease_time` in milliseconds (follows SIGHUP).
    lease_ms: Arc<AtomicU64>,
    events: mpsc::Sender<ZtpEvent>,
}

impl ZtpDhcpHook {
    /// An ACK admits the leaf's address at once, until its lease ends, and
    /// queues its `dhcp` stage; a RELEASE, or a DECLINE that drops the
    /// binding, takes the address out.
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
                    // Read after the core granted it: ends no earlier than the lease.
                    let lease = Duration::from_millis(self.lease_ms.load(Ordering::Relaxed));
                    self.peers.insert(
                        *address,
                        PeerEntry {
                            link: link.to_string(),
                            spine,
                            leaf,
                            until: Instant::now() + lease,
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
            Event::Released { address, .. }
            | Event::Declined {
                address,
                binding_kept: false,
                ..
            } => self.peers.remove(address),
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
    lease_ms: Arc<AtomicU64>,
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
        let lease_ms = Arc::new(AtomicU64::new(millis(params.lease_time)));
        Ok(ZtpService {
            params,
            settings,
            peers,
            links: LinkTable::default(),
            lease_ms,
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
            lease_ms: self.lease_ms.clone(),
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
        self.lease_ms
            .store(millis(params.lease_time), Ordering::Relaxed);
        // A changed `[[ztp.leaf]]` reaches the peer table at the reconcile
        // that follows the reload (its link then counts as changed).
        self.params = ZtpParams {
            port: self.params.port,
            ..params
        };
    }

    /// Follows the served links: forgets the addresses of links no longer
    /// served, and for each link that is new or whose spine address or
    /// `[[ztp.leaf]]` changed, copies that link's bound leases from the DHCP
    /// core (holding `server` only for the copy). Returns how many links were
    /// copied: none when nothing changed, whatever the number of leases.
    /// Lifecycles follow the served links (a link no longer served keeps its
    /// history until it is gone from the view).
    pub fn update_peers(&mut self, served: &[ServedLink], server: &Mutex<Server>) -> usize {
        let changed = self.links_to_load(served);
        if changed.is_empty() {
            return 0;
        }
        let copied: Vec<LinkLeases> = {
            let server = server.lock().unwrap_or_else(|p| p.into_inner());
            let now = Clock::mono();
            changed
                .into_iter()
                .map(|link| {
                    let leases = server.link_bound_leases(&link, now).collect();
                    (link, leases)
                })
                .collect()
        };
        let n = copied.len();
        self.load_peers(copied, Instant::now());
        n
    }

    /// The served links whose leases the peer table must copy (new ones, and
    /// those whose spine address or `[[ztp.leaf]]` changed), after forgetting
    /// the addresses of those and of links no longer served. Empty, touching
    /// nothing, when the served links are as last time.
    pub fn links_to_load(&mut self, served: &[ServedLink]) -> Vec<String> {
        let wanted: HashMap<String, LinkPeers> = served
            .iter()
            .map(|l| {
                let leaf = self.params.leaf_on(&l.name).cloned();
                (l.name.clone(), (spine_address(&l.plan), leaf))
            })
            .collect();
        let mut links = self.links.write().unwrap_or_else(|p| p.into_inner());
        if *links == wanted {
            return Vec::new();
        }
        let changed: Vec<String> = wanted
            .iter()
            .filter(|(name, now)| links.get(*name) != Some(now))
            .map(|(name, _)| name.clone())
            .collect();
        let stale: std::collections::HashSet<&str> = links
            .iter()
            .filter(|(name, old)| wanted.get(*name) != Some(old))
            .map(|(name, _)| name.as_str())
            .collect();
        // Before the copy: an ACK from here on finds the new link table, and
        // its address is in the copy or inserted by the hook, never lost.
        self.peers
            .remove_links(|link| stale.contains(link), Instant::now());
        drop(stale);
        *links = wanted;
        drop(links);
        for link in served {
            self.lifecycle(&link.name);
        }
        changed
    }

    /// Admits the leases copied for [`links_to_load`](Self::links_to_load),
    /// as read at `read_at` (each until its remaining time from then). A
    /// link that stopped being served since the copy is skipped.
    pub fn load_peers(&mut self, copied: impl IntoIterator<Item = LinkLeases>, read_at: Instant) {
        let links = self.links.read().unwrap_or_else(|p| p.into_inner());
        for (link, leases) in copied {
            let Some((spine, leaf)) = links.get(&link) else {
                continue;
            };
            for (address, remaining) in leases {
                self.peers.insert(
                    address,
                    PeerEntry {
                        link: link.clone(),
                        spine: *spine,
                        leaf: leaf.clone(),
                        until: read_at + remaining,
                    },
                );
            }
        }
    }

    /// The addresses the HTTP server admits (for status and tests).
    pub fn peers(&self) -> &PeerTable {
        &self.peers
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

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ztps_dhcp::time::NOT_BEFORE;
    use ztps_dhcp::{ClientId, HwAddr, LeaseState, Now, ServerConfig};

    const SPINE3: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 0);
    const LEAF3: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const SPINE4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const LEAF4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

    fn params(leaf3: &str, lease_time: Duration) -> ZtpParams {
        ZtpParams {
            // Any free port: nothing connects in these tests.
            port: 0,
            configs: PathBuf::from("/nonexistent"),
            leaves: BTreeMap::from([("Ethernet3".into(), LeafSpec::new(leaf3, None).unwrap())]),
            image: None,
            lease_time,
        }
    }

    fn p2p(name: &str, ifindex: u32, spine: Ipv4Addr, leaf: Ipv4Addr) -> ServedLink {
        ServedLink {
            name: name.into(),
            ifindex,
            plan: AddressPlan::PointToPoint {
                spine,
                leaf,
                prefix_len: 31,
            },
        }
    }

    fn lease(link: &str, mac: u8, address: Ipv4Addr, expires: u64) -> ztps_dhcp::Lease {
        let hw = [2, 0, 0, 0, 0, mac];
        ztps_dhcp::Lease {
            link: link.into(),
            client: ClientId::from_hardware(1, &hw),
            mac: HwAddr::new(&hw),
            address,
            state: LeaseState::Bound,
            expires,
            updated: NOT_BEFORE + 1_000,
            clock_trusted: true,
            vendor: None,
            hostname: None,
        }
    }

    /// A real DHCP core serving Ethernet3 (lease active for an hour) and
    /// Ethernet4 (its lease ended 10 s ago).
    fn core(served: &[ServedLink]) -> Mutex<Server> {
        let wall = NOT_BEFORE + 1_000;
        let mut server = Server::new(ServerConfig::default());
        server.set_links(served.iter().cloned());
        server.load_leases(
            Now {
                mono: Clock::mono(),
                wall,
            },
            [
                lease("Ethernet3", 3, LEAF3, wall + 3_600),
                lease("Ethernet4", 4, LEAF4, wall - 10),
            ],
        );
        Mutex::new(server)
    }

    #[test]
    fn peers_follow_link_changes_only_and_refuse_ended_or_released_leases() {
        let served = [
            p2p("Ethernet3", 3, SPINE3, LEAF3),
            p2p("Ethernet4", 4, SPINE4, LEAF4),
        ];
        let server = core(&served);
        let mut ztp = ZtpService::start(params("leaf3", Duration::from_secs(3_600))).unwrap();
        assert_eq!(ztp.update_peers(&served, &server), 2);
        let e = ztp.peers().get(&LEAF3).expect("active lease admitted");
        assert_eq!((e.link.as_str(), e.spine), ("Ethernet3", SPINE3));
        assert_eq!(e.leaf.as_ref().map(LeafSpec::name), Some("leaf3"));
        assert!(e.until > Instant::now() + Duration::from_secs(3_500));
        assert!(ztp.peers().get(&LEAF4).is_none(), "expired lease refused");

        // The same served links again (an unchanged poll, DHCP activity):
        // no lease is copied, the table stays as it is.
        assert_eq!(ztp.update_peers(&served, &server), 0);
        assert!(ztp.peers().get(&LEAF3).is_some());

        // The DHCP hook keeps it current between reconciles.
        let hook = ztp.dhcp_hook();
        let mac = HwAddr::new(&[2, 0, 0, 0, 0, 4]);
        hook.on_dhcp(&Event::Acked {
            link: "Ethernet4".into(),
            mac,
            address: LEAF4,
            vendor: None,
            renewal: false,
        });
        assert!(ztp.peers().get(&LEAF4).is_some(), "ACK admits at once");
        hook.on_dhcp(&Event::Released {
            link: "Ethernet3".into(),
            mac: HwAddr::new(&[2, 0, 0, 0, 0, 3]),
            address: LEAF3,
        });
        assert!(ztp.peers().get(&LEAF3).is_none(), "RELEASE refused at once");
        hook.on_dhcp(&Event::Declined {
            link: "Ethernet4".into(),
            mac,
            address: LEAF4,
            quarantine_secs: 10,
            binding_kept: false,
        });
        assert!(ztp.peers().get(&LEAF4).is_none(), "dropped binding refused");

        // A link no longer served loses its addresses without any copy.
        hook.on_dhcp(&Event::Acked {
            link: "Ethernet4".into(),
            mac,
            address: LEAF4,
            vendor: None,
            renewal: false,
        });
        assert_eq!(ztp.update_peers(&served[..1], &server), 0);
        assert!(ztp.peers().get(&LEAF4).is_none());

        // A changed [[ztp.leaf]] re-copies that link only.
        ztp.reload(params("leaf3b", Duration::from_secs(3_600)));
        assert_eq!(ztp.update_peers(&served, &server), 2);
        ztp.reload(params("leaf3c", Duration::from_secs(3_600)));
        assert_eq!(ztp.update_peers(&served, &server), 1);
        // The core still holds Ethernet3's lease (the RELEASE above was only
        // the hook's): re-copied with the new leaf.
        let e = ztp.peers().get(&LEAF3).expect("re-copied");
        assert_eq!(e.leaf.as_ref().map(LeafSpec::name), Some("leaf3c"));
    }

    #[test]
    fn an_acked_address_is_refused_once_its_lease_time_is_over() {
        let served = [p2p("Ethernet3", 3, SPINE3, LEAF3)];
        let server = Mutex::new(Server::new(ServerConfig::default()));
        let mut ztp = ZtpService::start(params("leaf3", Duration::from_secs(60))).unwrap();
        assert_eq!(ztp.update_peers(&served, &server), 1);
        let before = Instant::now();
        ztp.dhcp_hook().on_dhcp(&Event::Acked {
            link: "Ethernet3".into(),
            mac: HwAddr::new(&[2, 0, 0, 0, 0, 3]),
            address: LEAF3,
            vendor: None,
            renewal: false,
        });
        let peers = ztp.peers();
        assert!(peers
            .get_at(&LEAF3, before + Duration::from_secs(59))
            .is_some());
        assert!(peers
            .get_at(&LEAF3, Instant::now() + Duration::from_secs(60))
            .is_none());
    }
}
