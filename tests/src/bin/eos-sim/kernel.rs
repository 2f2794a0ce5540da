//! Kernel state of this network namespace: links, flags, MACs, MTUs, IPv4
//! addresses, and EOS's names for them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// One kernel link as EOS would see its port.
pub struct KernelLink {
    pub name: String,
    pub up: bool,
    pub running: bool,
    pub mac: Option<String>,
    pub addresses: Vec<(Ipv4Addr, u8)>,
    pub mtu: u32,
}

impl KernelLink {
    /// EOS `linkStatus`: connected, notconnect, or disabled (shutdown).
    pub fn link_status(&self) -> &'static str {
        match (self.up, self.running) {
            (true, true) => "connected",
            (true, false) => "notconnect",
            (false, _) => "disabled",
        }
    }

    /// EOS `lineProtocolStatus`.
    pub fn line_protocol(&self) -> &'static str {
        if self.up && self.running {
            "up"
        } else {
            "down"
        }
    }
}

/// Every link in this namespace with its flags, MAC and IPv4 addresses (kernel order).
pub fn kernel_links() -> Vec<KernelLink> {
    use nix::net::if_::InterfaceFlags;
    let mut links: BTreeMap<String, KernelLink> = BTreeMap::new();
    let addrs = match nix::ifaddrs::getifaddrs() {
        Ok(addrs) => addrs,
        Err(e) => {
            eprintln!("eos-sim: getifaddrs: {e}");
            return Vec::new();
        }
    };
    for ifa in addrs {
        let link = links
            .entry(ifa.interface_name.clone())
            .or_insert_with(|| KernelLink {
                mtu: interface_mtu(&ifa.interface_name).unwrap_or(1500),
                name: ifa.interface_name.clone(),
                up: false,
                running: false,
                mac: None,
                addresses: Vec::new(),
            });
        link.up = ifa.flags.contains(InterfaceFlags::IFF_UP);
        link.running = ifa.flags.contains(InterfaceFlags::IFF_RUNNING);
        let Some(address) = ifa.address else { continue };
        if let Some(inet) = address.as_sockaddr_in() {
            let len = ifa
                .netmask
                .and_then(|m| {
                    m.as_sockaddr_in()
                        .map(|m| u32::from(m.ip()).count_ones() as u8)
                })
                .unwrap_or(32);
            link.addresses.push((inet.ip(), len));
        } else if let Some(mac) = address.as_link_addr().and_then(|l| l.addr()) {
            link.mac = Some(
                mac.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
    }
    links.into_values().collect()
}

/// SIOCGIFMTU on this namespace (sysfs may show another namespace).
fn interface_mtu(name: &str) -> Option<u32> {
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: a zeroed ifreq is valid; the name fits with its NUL; the fd is closed below.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        for (dst, src) in request.ifr_name.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        let rc = libc::ioctl(fd, libc::SIOCGIFMTU as _, &mut request);
        libc::close(fd);
        (rc == 0).then_some(request.ifr_ifru.ifru_mtu as u32)
    }
}

/// EOS's name for a kernel interface, by EOS's naming rule (kept separate from
/// `ztps_eapi::names` so the simulator does not share the client's mistakes).
pub fn eos_name(kernel: &str) -> Option<String> {
    let digits = |s: &str, separators: bool| {
        !s.is_empty()
            && !s.starts_with('_')
            && !s.ends_with('_')
            && !s.contains("__")
            && s.chars()
                .all(|c| c.is_ascii_digit() || (separators && c == '_'))
    };
    for (prefix, eos, separators) in [
        ("et", "Ethernet", true),
        ("ma", "Management", true),
        ("po", "Port-Channel", false),
        ("vlan", "Vlan", false),
        ("lo", "Loopback", false),
    ] {
        if let Some(rest) = kernel.strip_prefix(prefix) {
            if digits(rest, separators) {
                return Some(format!("{eos}{}", rest.replace('_', "/")));
            }
        }
    }
    None
}
