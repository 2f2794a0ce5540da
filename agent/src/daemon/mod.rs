//! `ztps-agent daemon`: keeps the DHCP served-links table equal to
//! connected (eAPI) ∩ allowed (config) ∩ has an address plan (kernel addresses
//! or a configured pool), and publishes what it sees.
//!
//! Shape: independent tasks send typed [`DaemonInput`] messages into one
//! bounded channel; the reconcile loop ([`run`]) only reacts to them. Nothing
//! slow is awaited inside the loop, so a signal is acted on within one
//! message's handling, whatever eAPI is doing.
//!
//! Tasks, and why each is separate:
//! - the eAPI poller ([`poller`]): a poll waits up to `eapi.timeout`;
//! - signals ([`inputs::spawn_signals`], tokio's signal support);
//! - netlink link and address events ([`inputs::spawn_netlink`]);
//! - the DHCP receive loop (`ztps_dhcp::Service::run`), whose event sink
//!   ([`inputs::dhcp_sink`]) wakes the loop with at most one
//!   [`DaemonInput::Dhcp`] in flight and never blocks the DHCP path;
//! - the DHCP lease committer, a plain thread (fsync blocks).
//!
//! Capabilities are dropped (`privileges`) right after the DHCP socket is
//! bound, on the main thread, before any other thread exists.
//!
//! To plug in another task (the ZTP HTTP server, say): add a variant to
//! [`DaemonInput`] carrying what it reports, spawn the task in [`run`] with a
//! clone of the input sender (and [`Daemon::shutdown_signal`] if it must stop
//! gracefully), and handle the variant in `Daemon::handle`. Senders use
//! `send().await` from their own task (back-pressure stays in that task), or
//! `try_send` from code that must never wait.
//!
//! Work is proportional to what changed: a poll whose connected set equals the
//! last one, or a netlink event that changes nothing the plan reads, does not
//! reconcile; a burst of messages is drained and reconciled once; status is
//! written at most 5 times a second and at least every 30 s, built in
//! O(links + leases) (see [`publish`]).

mod inputs;
pub mod poller;
mod publish;
mod reconcile;

pub use inputs::{EventBoard, Signal};
pub use poller::{eapi_client, LldpResult, PollResult, PollerControl};

use crate::config::Config;
use crate::dhcp_config::server_config;
use crate::links::{KernelView, LinkView};
use crate::ztp::{ztp_params, ZtpService};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};
use ztps_bridge::{LinkEvents, NetEvent, Netlink};
use ztps_dhcp::service::{unix_now, CommitStats};
use ztps_dhcp::{DhcpSocket, LeaseStore, ServedLink, Server, Service};

/// Room in the input channel: enough to absorb a burst of netlink events
/// while the loop reconciles; senders beyond it wait in their own task.
const INPUT_QUEUE: usize = 1024;

/// How many queued messages the loop handles before it reconciles once.
const DRAIN_BATCH: usize = 4096;

/// Everything the loop reacts to.
#[derive(Debug)]
pub enum DaemonInput {
    /// An answer (or failure) of the eAPI interface poll.
    Eapi(PollResult),
    /// An answer (or failure) of the LLDP poll, sent only while LLDP is wanted
    /// ([`PollerControl::want_lldp`]).
    Lldp(LldpResult),
    /// A kernel link or address change.
    Netlink(NetEvent),
    /// SIGTERM/SIGINT or SIGHUP.
    Signal(Signal),
    /// DHCP activity: the last events or the leases changed (details are on
    /// the [`EventBoard`] and in the DHCP core).
    Dhcp,
    /// Something happened to a leaf in ZTP (HTTP server, DHCP hook).
    Ztp(ztps_ztp::http::ZtpEvent),
}

/// What one handled message asks of the loop.
#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    stop: bool,
    reconcile: bool,
    publish: bool,
}

impl Flow {
    fn merge(&mut self, other: Flow) {
        self.stop |= other.stop;
        self.reconcile |= other.reconcile;
        self.publish |= other.publish;
    }
}

/// What a poll changed.
#[derive(Debug, Clone, Copy)]
struct PollChange {
    /// The connected set (or, at the first answer, the fallback to the kernel).
    links: bool,
    /// What status shows of eAPI's health (ok, error).
    health: bool,
}

/// eAPI's health as the loop last heard it.
#[derive(Debug)]
struct EapiHealth {
    url: String,
    /// Connected interfaces from the last good answer; `None` before the first.
    connected: Option<BTreeSet<String>>,
    /// Whether any answer (good or bad) has come since start.
    heard: bool,
    ok: bool,
    since: u64,
    last_success: Option<u64>,
    last_error: Option<String>,
    failures: u32,
}

impl EapiHealth {
    fn new(url: String) -> EapiHealth {
        EapiHealth {
            url,
            connected: None,
            heard: false,
            ok: false,
            since: unix_now(),
            last_success: None,
            last_error: None,
            failures: 0,
        }
    }

    /// Takes in one poll, logging state changes once each way; says whether
    /// the connected set changed and whether the health shown in status did.
    fn apply(&mut self, result: PollResult, served: usize) -> PollChange {
        self.url = result.url;
        let first = !self.heard;
        self.heard = true;
        match result.connected {
            Ok(set) => {
                if !self.ok {
                    if self.last_success.is_some() || self.failures > 0 {
                        info!(
                            "eAPI at {} answering again after {}; {} interfaces connected",
                            self.url,
                            crate::status::human_duration(unix_now().saturating_sub(self.since)),
                            set.len()
                        );
                    } else {
                        info!(
                            "eAPI at {} answers; {} interfaces connected",
                            self.url,
                            set.len()
                        );
                    }
                    self.since = unix_now();
                }
                self.failures = 0;
                self.last_error = None;
                self.last_success = Some(unix_now());
                let was_ok = self.ok;
                self.ok = true;
                let changed = self.connected.as_ref() != Some(&set);
                if changed {
                    self.connected = Some(set);
                }
                PollChange {
                    links: changed || first,
                    health: !was_ok,
                }
            }
            Err(e) => {
                if self.ok || self.failures == 0 {
                    warn!(
                        "eAPI at {} not answering: {e}; keeping the {served} served link(s) as \
                         they are and retrying with backoff (logged again when it recovers)",
                        self.url
                    );
                    self.since = unix_now();
                }
                let error = e.to_string();
                let health = self.ok || self.last_error.as_ref() != Some(&error);
                self.ok = false;
                self.failures = self.failures.saturating_add(1);
                self.last_error = Some(error);
                // Before the first good answer the kernel's view stands in:
                // the first failure is a change (to the fallback).
                PollChange {
                    links: first,
                    health,
                }
            }
        }
    }
}

/// The running daemon's state that the loop keeps between messages.
pub struct Daemon {
    config_path: PathBuf,
    config: Config,
    server: Arc<Mutex<Server>>,
    board: Arc<EventBoard>,
    commit_stats: Arc<Mutex<CommitStats>>,
    kernel: KernelView,
    eapi: EapiHealth,
    poller: PollerControl,
    /// The latest LLDP answer, while LLDP is wanted.
    lldp: Option<LldpResult>,
    views: Vec<LinkView>,
    served: Vec<ServedLink>,
    /// Links that hold a lease (shown even when not connected); refreshed at
    /// each status build, which walks the leases anyway, and before a
    /// reconcile that follows DHCP activity.
    lease_links: BTreeSet<String>,
    /// DHCP activity since `lease_links` was refreshed.
    leases_changed: bool,
    started: u64,
    /// This process's start time (see `status::process_start_ticks`).
    start_ticks: Option<u64>,
    lease_file_problem: Option<String>,
    fallback_logged: bool,
    publisher: publish::Publisher,
    shutdown: watch::Sender<bool>,
    /// The spine's own ZTP service, when `[ztp] serve = true`.
    ztp: Option<ZtpService>,
}

impl Daemon {
    /// A receiver that turns `true` when the daemon stops: for tasks that must
    /// finish gracefully (an HTTP server draining its connections).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The loop's handle on the eAPI poller (poll now, want LLDP).
    pub fn poller(&self) -> &PollerControl {
        &self.poller
    }

    /// The latest LLDP answer, if LLDP is wanted and one came.
    pub fn lldp(&self) -> Option<&LldpResult> {
        self.lldp.as_ref()
    }

    /// Reacts to one message.
    fn handle(&mut self, input: DaemonInput) -> Flow {
        let mut flow = Flow::default();
        match input {
            DaemonInput::Signal(Signal::Stop(name)) => {
                info!("{name}: stopping");
                flow.stop = true;
            }
            DaemonInput::Signal(Signal::Reload) => {
                info!("SIGHUP: reloading config");
                flow.reconcile = self.reload();
            }
            DaemonInput::Eapi(result) => {
                let change = self.eapi.apply(result, self.served.len());
                flow.reconcile = change.links;
                // The time of the last good poll is refreshed by the heartbeat.
                flow.publish = change.health;
            }
            DaemonInput::Lldp(result) => {
                match (&result.neighbors, self.ztp.as_mut()) {
                    (Err(e), _) => tracing::debug!("LLDP poll failed: {e}"),
                    (Ok(neighbors), Some(ztp)) => {
                        ztp.on_lldp_neighbors(neighbors);
                        flow.publish = true;
                    }
                    (Ok(_), None) => {}
                }
                self.lldp = Some(result);
                self.want_lldp();
            }
            DaemonInput::Ztp(event) => {
                if let Some(ztp) = self.ztp.as_mut() {
                    ztp.on_event(event);
                    flow.publish = true;
                }
                self.want_lldp();
            }
            DaemonInput::Netlink(ev) => {
                let link_event = matches!(
                    ev,
                    NetEvent::LinkChanged(_)
                        | NetEvent::LinkRemoved { .. }
                        | NetEvent::Resynced { .. }
                );
                if self.kernel.apply(ev) {
                    // A port changed: ask EOS now rather than at the next tick.
                    if link_event {
                        self.poller.poll_now();
                    }
                    flow.reconcile = self.eapi.heard;
                }
            }
            DaemonInput::Dhcp => {
                self.board.taken();
                self.leases_changed = true;
                flow.publish = true;
            }
        }
        flow
    }

    /// Asks the poller for LLDP while some leaf could still become provisioned.
    fn want_lldp(&self) {
        let want = self.ztp.as_ref().is_some_and(ZtpService::wants_lldp);
        self.poller.want_lldp(want);
    }

    fn reload(&mut self) -> bool {
        let new = match Config::load(&self.config_path) {
            Err(e) => {
                error!("SIGHUP: config not reloaded, keeping the running config:\n{e}");
                return false;
            }
            Ok(new) => new,
        };
        let mut new = new;
        if new.ztp.serve != self.config.ztp.serve {
            // Serving ZTP or not decides option 67 and binds a port: both
            // change together, at the next start.
            warn!(
                "SIGHUP: ztp.serve changed to {}; that takes effect at the next start",
                new.ztp.serve
            );
            new.ztp = self.config.ztp.clone();
        }
        let ztp = match ztp_params(&new) {
            Ok(p) => p,
            Err(e) => {
                error!("SIGHUP: config not reloaded, keeping the running config: {e}");
                return false;
            }
        };
        if new.dhcp.lease_file != self.config.dhcp.lease_file {
            warn!("SIGHUP: dhcp.lease_file changed; that takes effect at the next start");
        }
        if new.log != self.config.log || new.state != self.config.state {
            warn!("SIGHUP: [log] and [state] changes take effect at the next start");
        }
        if new.eapi != self.config.eapi {
            match eapi_client(&new) {
                Ok(c) => self.poller.replace(c, new.eapi.poll_interval),
                Err(e) => {
                    error!("SIGHUP: new [eapi] settings unusable ({e}); config not reloaded");
                    return false;
                }
            }
        }
        let server_config = match server_config(&new) {
            Ok(s) => s,
            Err(e) => {
                error!("SIGHUP: {e}; config not reloaded");
                return false;
            }
        };
        self.server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_config(server_config);
        if let (Some(service), Some(params)) = (self.ztp.as_mut(), ztp) {
            service.reload(params);
        }
        // Settings that need a restart stay as they are until then.
        new.dhcp.lease_file = self.config.dhcp.lease_file.clone();
        new.log = self.config.log.clone();
        new.state = self.config.state.clone();
        self.config = new;
        info!(
            "SIGHUP: config reloaded from {} (bootfile {})",
            self.config_path.display(),
            self.config
                .dhcp
                .bootfile_url
                .as_ref()
                .map_or("per link, ztp.serve", |u| u.as_str())
        );
        true
    }
}

/// Opens the lease file, recovering what is valid; says what was damaged.
/// Also returns why the file cannot be written (read-only flash), if so.
#[allow(clippy::type_complexity)]
fn open_leases(
    config: &Config,
) -> Result<(
    LeaseStore,
    Vec<ztps_dhcp::Lease>,
    Option<String>,
    Option<String>,
)> {
    let (store, leases, report) =
        LeaseStore::open(&config.dhcp.lease_file).context("opening the lease file")?;
    let problem = report.damage.as_ref().map(|d| {
        let msg = format!(
            "lease file {} was damaged ({} bad line(s), first at line {}: {}); kept the {} valid \
             lease(s), moved the original to {}",
            report.path.display(),
            d.bad_lines,
            d.first_bad_line,
            d.why,
            report.leases,
            d.moved_to.display()
        );
        error!("{msg}");
        msg
    });
    let problem = match &report.read_only {
        Some(why) => {
            let msg = format!("lease file is read-only, new leases refused: {why}");
            error!("{msg}");
            Some(problem.map_or(msg.clone(), |p| format!("{p}; {msg}")))
        }
        None => problem,
    };
    info!(
        "loaded {} lease(s) from {}",
        leases.len(),
        config.dhcp.lease_file.display()
    );
    Ok((store, leases, problem, report.read_only.clone()))
}

/// Lists the kernel's links and addresses, subscribing to changes first so
/// that none falls between the two.
async fn watch_kernel() -> Result<(LinkEvents, KernelView)> {
    let events = LinkEvents::subscribe().context("subscribing to netlink link events")?;
    let nl = Netlink::connect().context("connecting to netlink")?;
    let view = KernelView::new(
        nl.links().await.context("listing links")?,
        nl.ipv4_addresses().await.context("listing addresses")?,
    );
    Ok((events, view))
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: &Path, config: Config) -> Result<()> {
    let started = unix_now();
    let (inputs, mut rx) = mpsc::channel(INPUT_QUEUE);
    inputs::spawn_signals(inputs.clone())?;
    info!(
        "ztps-agent {} daemon starting, config {}",
        env!("CARGO_PKG_VERSION"),
        config_path.display()
    );

    // Bind the ZTP port first: a taken port is a clear error before anything
    // is served (EOS's own HTTP server holds 80 with `protocol http`).
    let mut ztp = match ztp_params(&config)? {
        Some(params) => Some(ZtpService::start(params)?),
        None => None,
    };
    if let Some(events) = ztp.as_mut().and_then(ZtpService::take_events) {
        forward_ztp_events(events, inputs.clone());
    }

    let (store, leases, lease_file_problem, read_only) = open_leases(&config)?;
    let mut server = Server::new(server_config(&config)?);
    server.load_leases(ztps_dhcp::Clock::new().read().0, leases);
    if let Some(why) = &read_only {
        // Serve what is stored; a new lease could not be kept, so none is given.
        server.refuse_new_leases(Some(why.clone()));
    }
    let server = Arc::new(Mutex::new(server));

    let socket = DhcpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67))?;
    // Bound: keep only what serving needs, before any other thread starts.
    match crate::privileges::drop_all_but_kept() {
        Ok(kept) => info!(
            "dropped {} capabilities; keeping {:?}",
            kept.dropped, kept.effective
        ),
        Err(e) => error!("could not drop capabilities, running with all of them: {e}"),
    }
    let board = Arc::new(EventBoard::default());
    let mut sink = inputs::dhcp_sink(board.clone(), inputs.clone());
    if let Some(hook) = ztp.as_ref().map(ZtpService::dhcp_hook) {
        let daemon_sink = sink;
        // The hook first: an ACKed leaf is admitted before anything else runs.
        sink = Arc::new(move |e: &ztps_dhcp::Event| {
            hook.on_dhcp(e);
            daemon_sink(e);
        });
    }
    let service = Service::new(server.clone(), socket, store, sink);
    let commit_stats = service.commit_stats();
    let (shutdown, mut dhcp_stop) = watch::channel(false);
    let dhcp_task = tokio::spawn(service.run(async move {
        let _ = dhcp_stop.wait_for(|stop| *stop).await;
    }));

    let (events, kernel) = watch_kernel().await?;
    inputs::spawn_netlink(events, inputs.clone());
    let client = eapi_client(&config)?;
    let health = EapiHealth::new(client.url().to_string());
    let (poller, _poller_task) = poller::spawn(client, config.eapi.poll_interval, inputs.clone());
    drop(inputs);

    let mut d = Daemon {
        config_path: config_path.to_path_buf(),
        server,
        board,
        commit_stats,
        kernel,
        eapi: health,
        poller,
        lldp: None,
        views: Vec::new(),
        served: Vec::new(),
        lease_links: BTreeSet::new(),
        leases_changed: true,
        started,
        start_ticks: crate::status::process_start_ticks(std::process::id()),
        lease_file_problem,
        fallback_logged: false,
        publisher: publish::Publisher::new(&config.state.dir),
        shutdown,
        config,
        ztp,
    };
    d.want_lldp();
    d.run_loop(&mut rx).await;

    let _ = d.shutdown.send(true);
    if let Some(ztp) = d.ztp.take() {
        ztp.stop().await;
    }
    match dhcp_task.await {
        Ok(closed) => info!(
            "stopped; {} lease(s) on storage in {}",
            closed
                .leases
                .map(|n| n.to_string())
                .unwrap_or_else(|| "unknown".into()),
            d.config.dhcp.lease_file.display()
        ),
        Err(e) => error!("DHCP service ended abnormally: {e}"),
    }
    d.publish_now();
    Ok(())
}

impl Daemon {
    /// Reacts to messages until a stop signal (or every sender is gone).
    async fn run_loop(&mut self, rx: &mut mpsc::Receiver<DaemonInput>) {
        let mut publish_due = false;
        loop {
            let deadline = self.publisher.next_due(publish_due);
            let input = tokio::select! {
                input = rx.recv() => input,
                _ = tokio::time::sleep_until(deadline), if self.eapi.heard => {
                    self.publish_now();
                    publish_due = false;
                    continue;
                }
            };
            let Some(input) = input else { return };
            let mut flow = self.handle(input);
            // Take in what is already queued, so a burst of events (2,000
            // ports coming up) costs one reconcile, not one each.
            for _ in 0..DRAIN_BATCH {
                if flow.stop {
                    break;
                }
                match rx.try_recv() {
                    Ok(input) => flow.merge(self.handle(input)),
                    Err(_) => break,
                }
            }
            if flow.stop {
                return;
            }
            if flow.reconcile && self.eapi.heard {
                self.reconcile();
                publish_due = true;
            }
            publish_due |= flow.publish;
        }
    }
}

/// Forwards the ZTP service's events into the loop (back-pressure stays in
/// this task; the HTTP server and the DHCP hook only ever `try_send`).
fn forward_ztp_events(
    mut events: mpsc::Receiver<ztps_ztp::http::ZtpEvent>,
    inputs: mpsc::Sender<DaemonInput>,
) {
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if inputs.send(DaemonInput::Ztp(e)).await.is_err() {
                return;
            }
        }
    });
}

/// Rate of status writes, for the publisher.
pub(crate) const MIN_PUBLISH_GAP: Duration = Duration::from_millis(200);

/// Longest time between two status writes when nothing changes.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(ports: &[&str]) -> PollResult {
        PollResult {
            connected: Ok(ports.iter().map(|p| p.to_string()).collect()),
            url: "http://127.0.0.1:1/command-api".into(),
        }
    }

    /// Only a poll that changes the connected set asks for a reconcile (and
    /// so for any peer-table work): an equal answer costs nothing more.
    #[test]
    fn an_unchanged_poll_does_not_reconcile() {
        let mut h = EapiHealth::new("http://127.0.0.1:1/command-api".into());
        assert!(h.apply(poll(&["Ethernet3"]), 0).links, "first answer");
        let again = h.apply(poll(&["Ethernet3"]), 1);
        assert!(!again.links && !again.health, "{again:?}");
        assert!(h.apply(poll(&["Ethernet3", "Ethernet4"]), 1).links);
        assert!(!h.apply(poll(&["Ethernet3", "Ethernet4"]), 2).links);
    }
}
