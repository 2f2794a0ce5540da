//! `ztps-agent daemon`: keeps the DHCP served-links table equal to
//! connected (eAPI) ∩ allowed (config) ∩ has an address plan (kernel addresses
//! or a configured pool), and publishes what it sees.
//!
//! Concurrency, and why each piece is there:
//! - one tokio current-thread runtime runs this reconcile loop and the DHCP
//!   receive loop (`ztps_dhcp::Service::run`) as two tasks;
//! - the DHCP lease committer is a plain thread (fsync blocks);
//! - signals arrive through signal-hook on a small thread that forwards them
//!   into a channel, so the loop handles them between two steps, never inside one.
//!
//! The loop wakes on: the eAPI poll timer, any netlink link or address event
//! (which also brings the next eAPI poll forward to "now", so a port that comes
//! up is served within milliseconds), a DHCP event (for status), and signals.
//! Changing the served links is a table update in the DHCP core: no socket is
//! rebound, no lease is touched.

use crate::config::Config;
use crate::links::{plan_links, KernelView, LinkView};
use crate::status::{self, EventStatus, Status};
use anyhow::{Context, Result};
use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use ztps_bridge::{LinkEvents, NetEvent, Netlink};
use ztps_dhcp::service::{unix_now, CommitStats};
use ztps_dhcp::{DhcpSocket, Event, LeaseStore, ServedLink, Server, Service};
use ztps_eapi::{Credentials, EapiClient, EapiConfig, EapiError};

/// Longest time between two status writes when nothing changes.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// Builds the eAPI client the config describes.
pub fn eapi_client(config: &Config) -> Result<EapiClient, EapiError> {
    let credentials = match (&config.eapi.user, &config.eapi.password_file) {
        (Some(user), Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| EapiError::Credentials {
                path: file.clone(),
                reason: e.to_string(),
            })?;
            Some(Credentials {
                user: user.clone(),
                password: text.lines().next().unwrap_or("").to_string(),
            })
        }
        _ => None,
    };
    EapiClient::new(&EapiConfig {
        url: config.eapi.url.clone(),
        timeout: config.eapi.timeout.0,
        credentials,
    })
}

/// Last DHCP event per link, filled by the DHCP event sink; and what the sink
/// needs to name an interface the core knows only by index.
#[derive(Default)]
struct EventBoard {
    last: Mutex<HashMap<String, EventStatus>>,
    changed: Notify,
    /// ifindex -> (EOS name, kernel name, why not served) for unserved links.
    unserved: Mutex<HashMap<u32, (String, String, String)>>,
}

/// eAPI's view and health.
struct EapiPoller {
    client: EapiClient,
    url: String,
    /// Connected interfaces from the last good answer; `None` before the first.
    connected: Option<BTreeSet<String>>,
    ok: bool,
    since: u64,
    last_success: Option<u64>,
    last_error: Option<String>,
    failures: u32,
}

impl EapiPoller {
    fn new(client: EapiClient) -> Self {
        EapiPoller {
            url: client.url().to_string(),
            client,
            connected: None,
            ok: false,
            since: unix_now(),
            last_success: None,
            last_error: None,
            failures: 0,
        }
    }

    /// Polls once; returns the delay until the next poll.
    async fn poll(&mut self, interval: Duration, served: usize) -> Duration {
        match self.client.connected_interfaces().await {
            Ok(list) => {
                let set: BTreeSet<String> = list
                    .into_iter()
                    .filter(|i| i.is_connected())
                    .map(|i| i.name)
                    .collect();
                if !self.ok {
                    if self.last_success.is_some() || self.failures > 0 {
                        info!(
                            "eAPI at {} answering again after {}; {} interfaces connected",
                            self.url,
                            status::human_duration(unix_now().saturating_sub(self.since)),
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
                self.ok = true;
                self.failures = 0;
                self.last_error = None;
                self.last_success = Some(unix_now());
                self.connected = Some(set);
                interval
            }
            Err(e) => {
                if self.ok || self.failures == 0 {
                    warn!(
                        "eAPI at {} not answering: {e}; keeping the {served} served link(s) as they \
                         are and retrying with backoff (logged again when it recovers)",
                        self.url
                    );
                    self.since = unix_now();
                }
                self.ok = false;
                self.failures = self.failures.saturating_add(1);
                self.last_error = Some(e.to_string());
                // Capped exponential backoff: interval, 2x, 4x ... up to 30 s.
                let factor = 1u32 << self.failures.min(4);
                (interval * factor)
                    .min(Duration::from_secs(30))
                    .max(interval)
            }
        }
    }
}

/// The running daemon's state that the loop keeps between steps.
struct Daemon {
    config_path: PathBuf,
    config: Config,
    server: Arc<Mutex<Server>>,
    board: Arc<EventBoard>,
    commit_stats: Arc<Mutex<CommitStats>>,
    kernel: KernelView,
    eapi: EapiPoller,
    views: Vec<LinkView>,
    served: Vec<ServedLink>,
    started: u64,
    lease_file_problem: Option<String>,
    state_dir_warned: bool,
    fallback_logged: bool,
    /// The last status written (volatile fields cleared) and when.
    last_published: Option<(Status, std::time::Instant)>,
}

impl Daemon {
    /// Which interfaces count as connected now: eAPI's last answer, or, before
    /// eAPI has ever answered, the kernel's carrier state (so a daemon restarted
    /// while EOS is busy still serves what it can).
    fn connected(&mut self) -> BTreeSet<String> {
        if let Some(c) = &self.eapi.connected {
            return c.clone();
        }
        if !self.fallback_logged {
            warn!(
                "eAPI has not answered since start: serving the links the kernel sees up \
                 until it does"
            );
            self.fallback_logged = true;
        }
        self.kernel
            .links
            .iter()
            .filter(|l| l.up && l.carrier)
            .filter_map(|l| ztps_eapi::names::kernel_to_eos(&l.name))
            .collect()
    }

    /// Recomputes the served-links table; updates the DHCP core and logs changes.
    fn reconcile(&mut self) {
        let connected = self.connected();
        let lease_links: BTreeSet<String> = self
            .server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lease_links()
            .map(str::to_string)
            .collect();
        let views = plan_links(&self.config, &self.kernel, &connected, lease_links);
        let served: Vec<ServedLink> = views.iter().filter_map(LinkView::served_link).collect();
        if served != self.served {
            self.server
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_links(served.clone());
        }
        for v in &views {
            let old = self.views.iter().find(|o| o.eos_name == v.eos_name);
            let kernel = v.kernel_name.as_deref().unwrap_or("-");
            match (
                old.map(|o| (o.served(), &o.plan, &o.not_served)),
                v.served(),
            ) {
                (Some((true, plan, _)), true) if plan == &v.plan => {}
                (_, true) => info!(
                    "{} ({kernel}): serving DHCP, {}",
                    v.eos_name,
                    v.plan.as_ref().map(|p| p.to_string()).unwrap_or_default()
                ),
                (Some((true, _, _)), false) => info!(
                    "{} ({kernel}): no longer served: {}",
                    v.eos_name,
                    v.not_served.as_deref().unwrap_or("?")
                ),
                (old, false) => {
                    let reason_changed = old.map(|(_, _, r)| r) != Some(&v.not_served);
                    if reason_changed && v.connected {
                        info!(
                            "{} ({kernel}): connected but not served: {}",
                            v.eos_name,
                            v.not_served.as_deref().unwrap_or("?")
                        );
                    }
                }
            }
        }
        for o in &self.views {
            if o.served() && !views.iter().any(|v| v.eos_name == o.eos_name) {
                info!("{}: no longer served: gone", o.eos_name);
            }
        }
        *self
            .board
            .unserved
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = views
            .iter()
            .filter_map(|v| {
                Some((
                    v.ifindex?,
                    (
                        v.eos_name.clone(),
                        v.kernel_name.clone().unwrap_or_default(),
                        v.not_served.clone()?,
                    ),
                ))
            })
            .collect();
        self.views = views;
        self.served = served;
    }

    fn status(&self) -> Status {
        let now = unix_now();
        // O(links): the core keeps per-link summaries and lease counts.
        let dhcp_now = ztps_dhcp::Clock::new().read().0;
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        server.tick(dhcp_now);
        let (lease_count, active_leases) = server.lease_counts();
        let board = self.board.last.lock().unwrap_or_else(|p| p.into_inner());
        let links = self
            .views
            .iter()
            .map(|v| {
                let summary = server.link_summary(&v.eos_name, dhcp_now);
                status::link_status(v, summary.as_ref(), board.get(&v.eos_name).cloned(), now)
            })
            .collect();
        let failing = self
            .commit_stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failing
            .clone();
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            started: self.started,
            updated: now,
            config: self.config_path.clone(),
            eapi: status::EapiHealth {
                url: self.eapi.url.clone(),
                ok: self.eapi.ok,
                since: self.eapi.since,
                last_success: self.eapi.last_success,
                last_error: self.eapi.last_error.clone(),
            },
            lease_file: self.config.dhcp.lease_file.clone(),
            lease_count,
            active_leases,
            lease_file_problem: failing
                .map(|e| format!("writes failing, new leases not ACKed: {e}"))
                .or_else(|| self.lease_file_problem.clone()),
            links,
        }
    }

    /// Writes status.json if anything an operator would see changed, or at
    /// least every [`HEARTBEAT`] so `status` can tell a live daemon's file.
    fn publish(&mut self) {
        let s = self.status();
        let mut key = s.clone();
        key.updated = 0;
        key.eapi.last_success = None;
        let due = self
            .last_published
            .as_ref()
            .is_none_or(|(k, at)| *k != key || at.elapsed() >= HEARTBEAT);
        if !due {
            return;
        }
        self.last_published = Some((key, std::time::Instant::now()));
        if let Err(e) = status::publish(&self.config.state.dir, &s) {
            if !self.state_dir_warned {
                warn!(
                    "cannot write status to {}: {e}; `ztps-agent status` will not see this daemon",
                    self.config.state.dir.display()
                );
                self.state_dir_warned = true;
            }
        } else {
            self.state_dir_warned = false;
        }
    }

    fn reload(&mut self) {
        match Config::load(&self.config_path) {
            Err(e) => error!("SIGHUP: config not reloaded, keeping the running config:\n{e}"),
            Ok(new) => {
                if new.dhcp.lease_file != self.config.dhcp.lease_file {
                    warn!("SIGHUP: dhcp.lease_file changed; that takes effect at the next start");
                }
                if new.log != self.config.log || new.state != self.config.state {
                    warn!("SIGHUP: [log] and [state] changes take effect at the next start");
                }
                if new.eapi != self.config.eapi {
                    match eapi_client(&new) {
                        Ok(c) => {
                            let connected = self.eapi.connected.take();
                            self.eapi = EapiPoller::new(c);
                            self.eapi.connected = connected;
                        }
                        Err(e) => {
                            error!(
                                "SIGHUP: new [eapi] settings unusable ({e}); config not reloaded"
                            );
                            return;
                        }
                    }
                }
                self.server
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set_config(new.server_config());
                // Settings that need a restart stay as they are until then.
                let mut new = new;
                new.dhcp.lease_file = self.config.dhcp.lease_file.clone();
                new.log = self.config.log.clone();
                new.state = self.config.state.clone();
                self.config = new;
                info!(
                    "SIGHUP: config reloaded from {} (bootfile {})",
                    self.config_path.display(),
                    self.config.dhcp.bootfile_url
                );
                self.reconcile();
            }
        }
    }
}

/// Forwards SIGTERM, SIGINT and SIGHUP into a channel.
fn signals() -> Result<mpsc::UnboundedReceiver<i32>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("installing signal handlers")?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(rx)
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: &Path, config: Config) -> Result<()> {
    let started = unix_now();
    let mut sigs = signals()?;
    info!(
        "ztps-agent {} daemon starting, config {}",
        env!("CARGO_PKG_VERSION"),
        config_path.display()
    );

    let (store, leases, report) = LeaseStore::open(&config.dhcp.lease_file)
        .with_context(|| "opening the lease file".to_string())?;
    let mut lease_file_problem = None;
    if let Some(d) = &report.damage {
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
        lease_file_problem = Some(msg);
    }
    info!(
        "loaded {} lease(s) from {}",
        leases.len(),
        config.dhcp.lease_file.display()
    );
    let mut server = Server::new(config.server_config());
    server.load_leases(ztps_dhcp::Clock::new().read().0, leases);
    if let Some(why) = &report.read_only {
        // Serve what is stored; a new lease could not be kept, so none is given.
        let msg = format!("lease file is read-only, new leases refused: {why}");
        error!("{msg}");
        server.refuse_new_leases(Some(why.clone()));
        lease_file_problem = Some(msg);
    }
    let server = Arc::new(Mutex::new(server));

    let socket = DhcpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67))?;
    let board = Arc::new(EventBoard::default());
    let sink = {
        let board = board.clone();
        let log = ztps_dhcp::service::log_events();
        Arc::new(move |e: &Event| {
            if let Event::UnservedLink { ifindex, .. } = e {
                let known = board
                    .unserved
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(ifindex)
                    .cloned();
                if let Some((eos, kernel, why)) = known {
                    info!("dropping DHCP from {eos} ({kernel}): not served: {why}");
                    return;
                }
            }
            log(e);
            if let Some(link) = e.link() {
                let text = e.summary();
                board.last.lock().unwrap_or_else(|p| p.into_inner()).insert(
                    link.to_string(),
                    EventStatus {
                        text,
                        at: unix_now(),
                    },
                );
                board.changed.notify_one();
            }
        })
    };
    let service = Service::new(server.clone(), socket, store, sink);
    let commit_stats = service.commit_stats();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let dhcp_task = tokio::spawn(service.run(async {
        let _ = stop_rx.await;
    }));

    // Subscribe before listing, so no event falls between the two.
    let mut events = LinkEvents::subscribe().context("subscribing to netlink link events")?;
    let nl = Netlink::connect().context("connecting to netlink")?;
    let kernel = KernelView {
        links: nl.links().await.context("listing links")?,
        addresses: nl.ipv4_addresses().await.context("listing addresses")?,
    };
    let eapi = EapiPoller::new(eapi_client(&config)?);
    let mut d = Daemon {
        config_path: config_path.to_path_buf(),
        config,
        server,
        board: board.clone(),
        commit_stats,
        kernel,
        eapi,
        views: Vec::new(),
        served: Vec::new(),
        started,
        lease_file_problem,
        state_dir_warned: false,
        fallback_logged: false,
        last_published: None,
    };
    // Ask EOS before the first reconcile, so the kernel fallback is used only
    // when eAPI really is unavailable at start (the DHCP socket already runs).
    let first = d.eapi.poll(d.config.eapi.poll_interval.0, 0).await;
    d.reconcile();
    d.publish();

    let mut next_poll = Instant::now() + first;
    let mut publish_at: Option<Instant> = None;
    let mut last_publish = Instant::now();
    let mut event_errors = 0u32;
    loop {
        let mut reconcile = false;
        tokio::select! {
            sig = sigs.recv() => match sig {
                Some(signal_hook::consts::SIGHUP) => {
                    info!("SIGHUP: reloading config");
                    d.reload();
                    reconcile = true;
                }
                Some(sig) => {
                    info!("signal {sig}: stopping");
                    break;
                }
                None => break,
            },
            ev = events.next() => match ev {
                Ok(ev) => {
                    event_errors = 0;
                    debug!("netlink: {ev}");
                    let link_event = matches!(
                        ev,
                        NetEvent::LinkChanged(_) | NetEvent::LinkRemoved { .. } | NetEvent::Resynced { .. }
                    );
                    d.kernel.apply(ev);
                    // A port changed: ask EOS now rather than at the next tick,
                    // unless eAPI is failing (then the backoff stands).
                    if link_event && d.eapi.ok {
                        next_poll = next_poll.min(Instant::now());
                    }
                    reconcile = true;
                }
                Err(e) => {
                    event_errors += 1;
                    if event_errors == 1 {
                        warn!("netlink events: {e}; relying on the eAPI poll until they recover");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
            _ = tokio::time::sleep_until(next_poll) => {
                let interval = d.config.eapi.poll_interval.0;
                let delay = d.eapi.poll(interval, d.served.len()).await;
                next_poll = Instant::now() + delay;
                reconcile = true;
            },
            _ = board.changed.notified() => {
                publish_at.get_or_insert_with(Instant::now);
            },
            _ = async {
                match publish_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                publish_at = None;
                last_publish = Instant::now();
                d.publish();
            },
        }
        if reconcile {
            d.reconcile();
            publish_at.get_or_insert_with(Instant::now);
        }
        // At most ~5 status writes a second.
        if let Some(t) = publish_at {
            publish_at = Some(t.max(last_publish + Duration::from_millis(200)));
        }
    }

    let _ = stop_tx.send(());
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
    d.last_published = None;
    d.publish();
    Ok(())
}
