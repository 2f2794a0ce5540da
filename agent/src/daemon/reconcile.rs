//! Recomputing the served-links table from the latest views, and logging
//! what changed (one line per link that changed, nothing for the rest).

use super::Daemon;
use crate::links::{plan_links, LinkView};
use std::collections::{BTreeSet, HashMap};
use tracing::{info, warn};
use ztps_dhcp::ServedLink;

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
            .links()
            .filter(|l| l.up && l.carrier)
            .filter_map(|l| ztps_eapi::names::kernel_to_eos(&l.name))
            .collect()
    }

    /// Recomputes the served-links table; updates the DHCP core only when it
    /// changed, and logs each link whose state changed.
    pub(super) fn reconcile(&mut self) {
        if self.leases_changed {
            self.lease_links = self.leased_links();
            self.leases_changed = false;
        }
        let connected = self.connected();
        let views = plan_links(
            &self.config,
            &self.kernel,
            &connected,
            self.lease_links.iter().cloned(),
        );
        let served: Vec<ServedLink> = views.iter().filter_map(LinkView::served_link).collect();
        if let Some(ztp) = self.ztp.as_mut() {
            // Copies leases only for links that changed; the DHCP hook keeps
            // the table current between reconciles.
            ztp.update_peers(&served, &self.server);
            let want = ztp.wants_lldp();
            self.poller.want_lldp(want);
        }
        if served != self.served {
            self.server
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_links(served.clone());
        }
        log_changes(&self.views, &views);
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
}

/// One log line per link whose served state, plan or reason changed.
fn log_changes(old: &[LinkView], new: &[LinkView]) {
    let before: HashMap<&str, &LinkView> = old.iter().map(|v| (v.eos_name.as_str(), v)).collect();
    for v in new {
        let old = before.get(v.eos_name.as_str());
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
    let after: BTreeSet<&str> = new.iter().map(|v| v.eos_name.as_str()).collect();
    for o in old {
        if o.served() && !after.contains(o.eos_name.as_str()) {
            info!("{}: no longer served: gone", o.eos_name);
        }
    }
}
