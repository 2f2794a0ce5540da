//! Building and writing `status.json`: at most every [`MIN_PUBLISH_GAP`] while
//! things change, at least every [`HEARTBEAT`] so `status` sees a live daemon.
//!
//! A build asks the DHCP core for each link's summary and the lease counts,
//! which it keeps up to date on change: O(links), never O(leases).

use super::{Daemon, HEARTBEAT, MIN_PUBLISH_GAP};
use crate::status::{self, Status};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tokio::time::Instant;
use tracing::warn;
use ztps_dhcp::service::unix_now;

/// Where status goes and when it was last written.
pub(super) struct Publisher {
    dir: PathBuf,
    last: Option<Instant>,
    warned: bool,
}

impl Publisher {
    pub(super) fn new(dir: &Path) -> Publisher {
        Publisher {
            dir: dir.to_path_buf(),
            last: None,
            warned: false,
        }
    }

    /// When the next write is due: soon (rate-limited) when something changed,
    /// else at the heartbeat.
    pub(super) fn next_due(&self, changed: bool) -> Instant {
        match self.last {
            None => Instant::now(),
            Some(at) if changed => at + MIN_PUBLISH_GAP,
            Some(at) => at + HEARTBEAT,
        }
    }

    fn write(&mut self, status: &Status) {
        self.last = Some(Instant::now());
        match status::publish(&self.dir, status) {
            Err(e) if !self.warned => {
                warn!(
                    "cannot write status to {}: {e}; `ztps-agent status` will not see this daemon",
                    self.dir.display()
                );
                self.warned = true;
            }
            Err(_) => {}
            Ok(()) => self.warned = false,
        }
    }
}

/// The lease shown for a link: a bound one before others, then the newest.
impl Daemon {
    /// The links that hold a lease now.
    pub(super) fn leased_links(&self) -> BTreeSet<String> {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        server.lease_links().map(str::to_string).collect()
    }

    fn status(&mut self) -> Status {
        let now = unix_now();
        let dhcp_now = ztps_dhcp::Clock::new().read().0;
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        server.tick(dhcp_now);
        let (lease_count, active_leases) = server.lease_counts();
        if self.leases_changed {
            self.lease_links = server.lease_links().map(str::to_string).collect();
            self.leases_changed = false;
        }
        let counters: HashMap<&str, ztps_dhcp::LinkCounters> =
            server.link_counters().map(|(link, c)| (link, *c)).collect();
        let board = self.board.last.lock().unwrap_or_else(|p| p.into_inner());
        let links = self
            .views
            .iter()
            .map(|v| {
                let mut link = status::link_status(
                    v,
                    server.link_summary(&v.eos_name, dhcp_now).as_ref(),
                    board.get(&v.eos_name).cloned(),
                    now,
                );
                link.ztp = self.ztp.as_ref().and_then(|z| z.status(&v.eos_name));
                link.counters = counters.get(v.eos_name.as_str()).copied();
                link
            })
            .collect();
        drop(board);
        drop(server);
        let failing = self
            .commit_stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failing
            .clone();
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            start_ticks: self.start_ticks,
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
            log_lines_dropped: crate::logging::dropped_lines(),
            links,
        }
    }

    /// Builds and writes status now.
    pub(super) fn publish_now(&mut self) {
        let s = self.status();
        self.publisher.write(&s);
    }
}
