//! The simulated spine and its leaf links, in network namespaces.
//!
//! A spine namespace holds ports `etN` (EOS `EthernetN`); each is one end of a
//! veth pair whose other end `lfN` sits in a leaf namespace. Pairs are made with
//! one `ip -batch` per namespace (64 links take a fraction of a second), created
//! straight into their namespaces so no name ever appears in the namespace that
//! runs the benchmark. Namespaces are `ztps_tests::netns::Netns`: deleted, with
//! whatever still runs inside killed, when they drop.

use super::proc::output;
use anyhow::{Context, Result};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use ztps_tests::netns::Netns;

/// One spine port and what a server should hand out on it.
#[derive(Debug, Clone)]
pub struct LinkSpec {
    /// Port number: kernel `etN` on the spine, `lfN` on the leaf, EOS `EthernetN`.
    pub n: u32,
    /// The spine's address on the port.
    pub spine: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// A static address for the leaf end (perfdhcp relays from it), if any.
    pub leaf_addr: Option<Ipv4Addr>,
    /// First and last address to hand out.
    pub pool: (Ipv4Addr, Ipv4Addr),
    /// Whether ours needs an explicit pool (`[[dhcp.link]]`): true for links
    /// wider than a /30, where there is no other address to derive.
    pub pool_link: bool,
}

impl LinkSpec {
    /// The throughput link: spine 10.64.0.1/16, perfdhcp relaying from
    /// 10.64.0.2, pool 10.64.1.0-10.64.255.254 (65,279 addresses).
    pub fn perf() -> LinkSpec {
        LinkSpec {
            n: 1,
            spine: Ipv4Addr::new(10, 64, 0, 1),
            prefix: 16,
            leaf_addr: Some(Ipv4Addr::new(10, 64, 0, 2)),
            pool: (Ipv4Addr::new(10, 64, 1, 0), Ipv4Addr::new(10, 64, 255, 254)),
            pool_link: false,
        }
        .with_pool()
    }

    /// Leaf link `n` (1..=250) as a /30: spine 10.1.n.1, leaf gets 10.1.n.2
    /// (ours derives it; the peers get a one-address pool).
    pub fn p2p(n: u32) -> LinkSpec {
        assert!((1..=250).contains(&n), "link {n} out of range");
        let o = n as u8;
        LinkSpec {
            n,
            spine: Ipv4Addr::new(10, 1, o, 1),
            prefix: 30,
            leaf_addr: None,
            pool: (Ipv4Addr::new(10, 1, o, 2), Ipv4Addr::new(10, 1, o, 2)),
            pool_link: false,
        }
    }

    fn with_pool(mut self) -> LinkSpec {
        self.pool_link = true;
        self
    }

    /// Kernel name on the spine.
    pub fn ifname(&self) -> String {
        format!("et{}", self.n)
    }

    /// Kernel name on the leaf.
    pub fn leaf_ifname(&self) -> String {
        format!("lf{}", self.n)
    }

    /// EOS name.
    pub fn eos_name(&self) -> String {
        format!("Ethernet{}", self.n)
    }

    /// The netmask.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(
            u32::MAX
                .checked_shl(32 - u32::from(self.prefix))
                .unwrap_or(0),
        )
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.spine) & u32::from(self.netmask()))
    }
}

/// Connects `links` between `spine` (ports `etN`, with addresses) and `leaf`
/// (`lfN`, up). Spine ports are brought up when `spine_up(link)` says so; the
/// others stay down (no carrier on the leaf end) until the workload raises them.
pub fn connect(
    spine: &Netns,
    leaf: &Netns,
    links: &[LinkSpec],
    spine_up: impl Fn(&LinkSpec) -> bool,
    scratch: &Path,
) -> Result<()> {
    let mut root = String::new();
    let mut sp = String::new();
    let mut lf = String::new();
    for l in links {
        root.push_str(&format!(
            "link add {} netns {} type veth peer name {} netns {}\n",
            l.ifname(),
            spine.name(),
            l.leaf_ifname(),
            leaf.name()
        ));
        sp.push_str(&format!(
            "addr add {}/{} dev {}\n",
            l.spine,
            l.prefix,
            l.ifname()
        ));
        if spine_up(l) {
            sp.push_str(&format!("link set {} up\n", l.ifname()));
        }
        if let Some(a) = l.leaf_addr {
            lf.push_str(&format!(
                "addr add {a}/{} dev {}\n",
                l.prefix,
                l.leaf_ifname()
            ));
        }
        lf.push_str(&format!("link set {} up\n", l.leaf_ifname()));
    }
    ip_batch(None, &root, scratch)?;
    ip_batch(Some(spine), &sp, scratch)?;
    ip_batch(Some(leaf), &lf, scratch)?;
    Ok(())
}

fn ip_batch(ns: Option<&Netns>, script: &str, scratch: &Path) -> Result<()> {
    let file = scratch.join(format!(
        "ip-batch-{}.txt",
        ns.map(|n| n.name()).unwrap_or("root")
    ));
    std::fs::write(&file, script).with_context(|| format!("writing {}", file.display()))?;
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns.name()]);
    }
    cmd.arg("-batch").arg(&file);
    output(cmd).with_context(|| format!("setting up links:\n{script}"))?;
    Ok(())
}

/// Brings spine port `l` up (`ip -n SPINE link set etN up`).
pub fn raise(spine: &Netns, l: &LinkSpec) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(["-n", spine.name(), "link", "set", &l.ifname(), "up"]);
    output(cmd)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_networks() {
        let p = LinkSpec::perf();
        assert_eq!(p.netmask(), Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(p.network(), Ipv4Addr::new(10, 64, 0, 0));
        assert!(p.pool_link);
        let l = LinkSpec::p2p(64);
        assert_eq!(l.netmask(), Ipv4Addr::new(255, 255, 255, 252));
        assert_eq!(l.network(), Ipv4Addr::new(10, 1, 64, 0));
        assert_eq!(
            (l.ifname(), l.eos_name()),
            ("et64".into(), "Ethernet64".into())
        );
    }
}
