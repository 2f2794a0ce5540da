//! Building and writing `status.json`: at most every [`MIN_PUBLISH_GAP`] while
//! things change, at least every [`HEARTBEAT`] so `status` sees a live daemon.
//!
//! A build walks the leases once to index each link's current lease (and the
//! set of links that hold one), then the links once: O(links + leases), never
//! O(links x leases).

use super::{Daemon, HEARTBEAT, MIN_PUBLISH_GAP};
use crate::status::{self, Status};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tokio::time::Instant;
use tracing::warn;
use ztps_dhcp::service::unix_now;
use ztps_dhcp::{Lease, LeaseState};

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
fn current_leases<'a>(leases: impl Iterator<Item = &'a Lease>) -> HashMap<&'a str, &'a Lease> {
    let mut by_link: HashMap<&str, &Lease> = HashMap::new();
    let rank = |l: &Lease| (l.state == LeaseState::Bound, l.updated);
    for l in leases {
        by_link
            .entry(l.link.as_str())
            .and_modify(|best| {
                if rank(l) > rank(best) {
                    *best = l;
                }
            })
            .or_insert(l);
    }
    by_link
}

impl Daemon {
    /// The links that hold a lease now.
    pub(super) fn leased_links(&self) -> BTreeSet<String> {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        server.leases().map(|l| l.link.clone()).collect()
    }

    fn status(&mut self) -> Status {
        let now = unix_now();
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        let mut lease_count = 0;
        let mut active_leases = 0;
        let leases = current_leases(server.leases().inspect(|l| {
            lease_count += 1;
            active_leases += usize::from(l.is_active(now));
        }));
        if self.leases_changed {
            self.lease_links = leases.keys().map(|l| l.to_string()).collect();
            self.leases_changed = false;
        }
        let board = self.board.last.lock().unwrap_or_else(|p| p.into_inner());
        let links = self
            .views
            .iter()
            .map(|v| {
                let mut link = status::link_status(
                    v,
                    leases.get(v.eos_name.as_str()).copied(),
                    board.get(&v.eos_name).cloned(),
                    now,
                );
                link.ztp = self.ztp.as_ref().and_then(|z| z.status(&v.eos_name));
                link
            })
            .collect();
        drop(board);
        drop(leases);
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
