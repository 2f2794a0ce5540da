//! Which links to serve: connected (EOS) ∩ allowed (config) ∩ has an address plan.
//!
//! Pure: given the config, the kernel's links and addresses and EOS's list of
//! connected interfaces, it returns one [`LinkView`] per interface worth showing,
//! each either served (with its plan) or not (with the reason an operator needs).

use crate::config::Config;
use crate::dhcp_config::pool_spec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use ztps_bridge::{Ipv4AddrInfo, LinkInfo};
use ztps_dhcp::plan::{AddressPlan, SpineAddress};
use ztps_dhcp::ServedLink;
use ztps_eapi::names;

/// The kernel's side: links and their IPv4 addresses, indexed so that a
/// netlink event and a lookup by name or index cost O(log n), not O(links).
#[derive(Debug, Clone, Default)]
pub struct KernelView {
    /// Every link, by kernel index.
    links: BTreeMap<u32, LinkInfo>,
    /// Kernel name -> index.
    by_name: HashMap<String, u32>,
    /// IPv4 addresses per link index, in the kernel's order (primary first).
    addresses: HashMap<u32, Vec<Ipv4AddrInfo>>,
}

impl KernelView {
    /// The view of a full listing.
    pub fn new(links: Vec<LinkInfo>, addresses: Vec<Ipv4AddrInfo>) -> KernelView {
        let mut view = KernelView::default();
        view.reset(links, addresses);
        view
    }

    fn reset(&mut self, links: Vec<LinkInfo>, addresses: Vec<Ipv4AddrInfo>) {
        self.links.clear();
        self.by_name.clear();
        self.addresses.clear();
        for l in links {
            self.insert_link(l);
        }
        for a in addresses {
            self.addresses.entry(a.index).or_default().push(a);
        }
    }

    fn insert_link(&mut self, l: LinkInfo) {
        if let Some(old) = self.links.get(&l.index) {
            if old.name != l.name {
                self.by_name.remove(&old.name);
            }
        }
        self.by_name.insert(l.name.clone(), l.index);
        self.links.insert(l.index, l);
    }

    /// Applies one netlink event; returns whether anything the plan reads changed
    /// (a repeated identical event changes nothing).
    pub fn apply(&mut self, event: ztps_bridge::NetEvent) -> bool {
        use ztps_bridge::NetEvent::*;
        match event {
            LinkChanged(l) => {
                if self.links.get(&l.index) == Some(&l) {
                    return false;
                }
                self.insert_link(l);
            }
            LinkRemoved { index, .. } => {
                let Some(old) = self.links.remove(&index) else {
                    return self.addresses.remove(&index).is_some();
                };
                self.by_name.remove(&old.name);
                self.addresses.remove(&index);
            }
            AddressAdded(a) => {
                let list = self.addresses.entry(a.index).or_default();
                if list.contains(&a) {
                    return false;
                }
                list.retain(|x| x.address != a.address);
                list.push(a);
            }
            AddressRemoved(a) => {
                let Some(list) = self.addresses.get_mut(&a.index) else {
                    return false;
                };
                let before = list.len();
                list.retain(|x| x.address != a.address);
                if list.len() == before {
                    return false;
                }
                if list.is_empty() {
                    self.addresses.remove(&a.index);
                }
            }
            Resynced { links, addresses } => self.reset(links, addresses),
        }
        true
    }

    /// Every link, by index.
    pub fn links(&self) -> impl Iterator<Item = &LinkInfo> {
        self.links.values()
    }

    fn by_name(&self, name: &str) -> Option<&LinkInfo> {
        self.by_name.get(name).and_then(|i| self.links.get(i))
    }

    /// The first IPv4 address on a link (the primary: the kernel lists it first).
    fn address_of(&self, index: u32) -> Option<SpineAddress> {
        self.addresses
            .get(&index)
            .and_then(|l| l.first())
            .map(|a| SpineAddress {
                address: a.address,
                prefix_len: a.prefix_len,
            })
    }
}

/// One interface as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    /// EOS name, e.g. `Ethernet3`.
    pub eos_name: String,
    /// Kernel name, e.g. `et3`, when there is one.
    pub kernel_name: Option<String>,
    /// Kernel index.
    pub ifindex: Option<u32>,
    /// EOS reports it connected.
    pub connected: bool,
    /// The spine's address on it, `a.b.c.d/len`.
    pub spine_address: Option<String>,
    /// The address plan, when served.
    pub plan: Option<AddressPlan>,
    /// Why it is not served, when it is not.
    pub not_served: Option<String>,
}

impl LinkView {
    /// Whether DHCP is answered on it.
    pub fn served(&self) -> bool {
        self.not_served.is_none()
    }

    /// The entry for the DHCP served-links table.
    pub fn served_link(&self) -> Option<ServedLink> {
        match (&self.plan, self.ifindex, self.served()) {
            (Some(plan), Some(ifindex), true) => Some(ServedLink {
                name: self.eos_name.clone(),
                ifindex,
                plan: plan.clone(),
            }),
            _ => None,
        }
    }
}

/// The EOS name as EOS writes it (`ethernet3` -> `Ethernet3`); names of no
/// known kind are kept as they are.
fn canon(name: &str) -> String {
    names::canonical_eos(name).unwrap_or_else(|| name.to_string())
}

/// Interfaces that are never served, whatever the config says.
fn never_served(eos: &str, kernel: Option<&str>, bridge: &str) -> Option<&'static str> {
    let lower = eos.to_ascii_lowercase();
    if lower.starts_with("management") {
        Some("management interface: never served")
    } else if lower.starts_with("loopback") {
        Some("loopback: never served")
    } else if kernel == Some(bridge) || eos == bridge {
        Some("the VM bridge: never served")
    } else {
        None
    }
}

/// Works out every link's state. `connected` is EOS's list of connected
/// interfaces (EOS names); `extra` are more EOS names worth showing (links that
/// hold leases), reported as not connected unless they are.
pub fn plan_links(
    config: &Config,
    kernel: &KernelView,
    connected: &BTreeSet<String>,
    extra: impl IntoIterator<Item = String>,
) -> Vec<LinkView> {
    let pools: BTreeMap<String, &crate::config::LinkPool> = config
        .dhcp
        .links
        .iter()
        .map(|p| (canon(&p.interface), p))
        .collect();
    let connected: BTreeSet<String> = connected.iter().map(|n| canon(n)).collect();
    let mut candidates: BTreeSet<String> = connected.clone();
    candidates.extend(pools.keys().cloned());
    candidates.extend(extra.into_iter().map(|n| canon(&n)));
    let exists = |k: &str| kernel.by_name.contains_key(k);
    let mut views: Vec<LinkView> = candidates
        .into_iter()
        .map(|eos| {
            let is_connected = connected.contains(&eos);
            let resolved = names::resolve_kernel_name_with(&eos, exists);
            let kernel_name = resolved.as_ref().ok().cloned();
            let link = kernel_name.as_deref().and_then(|k| kernel.by_name(k));
            let spine = link.and_then(|l| kernel.address_of(l.index));
            let mut view = LinkView {
                eos_name: eos.clone(),
                kernel_name: kernel_name.clone(),
                ifindex: link.map(|l| l.index),
                connected: is_connected,
                spine_address: spine.map(|s| format!("{}/{}", s.address, s.prefix_len)),
                plan: None,
                not_served: None,
            };
            let reason = |view: &mut LinkView, why: String| view.not_served = Some(why);
            if let Some(why) = never_served(&eos, kernel_name.as_deref(), &config.bridge.name) {
                reason(&mut view, why.into());
            } else if !config.dhcp.interfaces.iter().any(|g| g.matches(&eos)) {
                reason(&mut view, "not in dhcp.interfaces".into());
            } else if let Some(g) = config.dhcp.exclude.iter().find(|g| g.matches(&eos)) {
                reason(&mut view, format!("excluded by dhcp.exclude {g:?}"));
            } else if !is_connected {
                reason(&mut view, "not connected".into());
            } else if link.is_none() {
                let why = match &resolved {
                    Err(e) => e.to_string(),
                    Ok(k) => format!("kernel interface {k} not found"),
                };
                reason(&mut view, why);
            } else {
                let pool = pools.get(&eos).map(|p| pool_spec(p));
                match AddressPlan::derive(spine, pool.as_ref()) {
                    Ok(plan) => view.plan = Some(plan),
                    Err(e) => reason(&mut view, e.to_string()),
                }
            }
            view
        })
        .collect();
    views.sort_by(|a, b| names::natural_cmp(&a.eos_name, &b.eos_name));
    views
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn config(extra: &str) -> Config {
        Config::parse(
            &format!("[dhcp]\nbootfile_url = \"http://10.10.10.11:8080/bootstrap\"\n{extra}"),
            "t",
        )
        .unwrap()
    }

    fn link(index: u32, name: &str) -> LinkInfo {
        LinkInfo {
            index,
            name: name.into(),
            up: true,
            carrier: true,
            kind: None,
            mac: None,
        }
    }

    fn addr(index: u32, a: &str, p: u8) -> Ipv4AddrInfo {
        Ipv4AddrInfo {
            index,
            address: a.parse::<Ipv4Addr>().unwrap(),
            prefix_len: p,
            peer: None,
        }
    }

    fn kernel() -> KernelView {
        KernelView::new(
            vec![
                link(1, "lo"),
                link(2, "ma1"),
                link(3, "et1"),
                link(4, "et2"),
                link(5, "et3"),
                link(6, "et7"),
                link(7, "br0"),
                link(8, "et49_1"),
            ],
            vec![
                addr(2, "192.168.0.10", 24),
                addr(3, "10.0.0.0", 31),
                addr(4, "10.0.0.2", 31),
                addr(5, "192.0.2.1", 32),
                addr(6, "10.0.7.1", 29),
                addr(7, "10.10.10.1", 24),
                addr(8, "10.0.0.5", 30),
            ],
        )
    }

    fn connected(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn serves_connected_allowed_links_with_a_plan_and_says_why_not_for_the_rest() {
        let cfg = config(
            "exclude = [\"Ethernet2\"]\n[[dhcp.link]]\ninterface = \"Ethernet7\"\nrange = \"10.0.7.2-10.0.7.6\"\nrouter = \"10.0.7.1\"\nprefix = 29\n",
        );
        let views = plan_links(
            &cfg,
            &kernel(),
            &connected(&[
                "Management1",
                "Ethernet1",
                "Ethernet2",
                "Ethernet3",
                "Ethernet7",
                "Ethernet49/1",
                "Ethernet9",
            ]),
            ["Ethernet12".to_string()],
        );
        let summary: Vec<(String, Option<String>)> = views
            .iter()
            .map(|v| (v.eos_name.clone(), v.not_served.clone()))
            .collect();
        let get = |n: &str| {
            summary
                .iter()
                .find(|(e, _)| e == n)
                .unwrap_or_else(|| panic!("{n} missing from {summary:?}"))
                .1
                .clone()
        };
        assert_eq!(get("Ethernet1"), None);
        assert_eq!(get("Ethernet7"), None, "pool");
        assert_eq!(get("Ethernet49/1"), None, "/30 on et49_1");
        assert!(get("Management1").unwrap().contains("management"));
        assert!(get("Ethernet2").unwrap().contains("excluded"));
        assert!(get("Ethernet3").unwrap().contains("unnumbered"));
        assert!(
            get("Ethernet9").unwrap().contains("et9"),
            "{:?}",
            get("Ethernet9")
        );
        assert_eq!(get("Ethernet12").as_deref(), Some("not connected"));
        // Natural order.
        let order: Vec<&str> = views.iter().map(|v| v.eos_name.as_str()).collect();
        assert_eq!(order[..3], ["Ethernet1", "Ethernet2", "Ethernet3"]);
        let served: Vec<ServedLink> = views.iter().filter_map(|v| v.served_link()).collect();
        assert_eq!(served.len(), 3);
        let e1 = served.iter().find(|s| s.name == "Ethernet1").unwrap();
        assert_eq!(e1.ifindex, 3);
        assert!(e1.plan.contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn interfaces_globs_limit_what_is_served() {
        let cfg = config("interfaces = [\"Ethernet1\"]\n");
        let views = plan_links(&cfg, &kernel(), &connected(&["Ethernet1", "Ethernet2"]), []);
        assert_eq!(views[0].not_served, None);
        assert_eq!(
            views[1].not_served.as_deref(),
            Some("not in dhcp.interfaces")
        );
    }

    #[test]
    fn kernel_events_update_the_view() {
        let mut k = kernel();
        k.apply(ztps_bridge::NetEvent::AddressRemoved(addr(
            3, "10.0.0.0", 31,
        )));
        let cfg = config("");
        let v = plan_links(&cfg, &k, &connected(&["Ethernet1"]), []);
        assert!(v[0]
            .not_served
            .as_deref()
            .unwrap()
            .contains("no IPv4 address"));
        k.apply(ztps_bridge::NetEvent::AddressAdded(addr(3, "10.0.0.8", 31)));
        let v = plan_links(&cfg, &k, &connected(&["Ethernet1"]), []);
        assert!(v[0]
            .plan
            .as_ref()
            .unwrap()
            .contains("10.0.0.9".parse().unwrap()));
        k.apply(ztps_bridge::NetEvent::LinkRemoved {
            index: 3,
            name: "et1".into(),
        });
        let v = plan_links(&cfg, &k, &connected(&["Ethernet1"]), []);
        assert!(v[0].not_served.is_some());
    }
}
