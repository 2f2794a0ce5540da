//! Kernel messages to this crate's plain types. Shared by the queries
//! (rtnetlink dumps) and the event stream (raw socket), so both report a link
//! or an address identically.

use std::{fmt, net::IpAddr, net::Ipv4Addr};

use rtnetlink::packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::{LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage},
    AddressFamily,
};

/// One network interface as the kernel sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkInfo {
    /// Kernel interface index; stable for the life of the link, unlike its name.
    pub index: u32,
    /// Kernel name, e.g. `et3`, `br0`.
    pub name: String,
    /// Administratively up (`IFF_UP`): someone asked for it to be up.
    pub up: bool,
    /// Lower layer up (`IFF_LOWER_UP`): there is a carrier, so a leaf could
    /// be talking on it. A bridge has one while a port runs (and, oddly,
    /// while it has no ports at all).
    pub carrier: bool,
    /// `IFLA_INFO_KIND` (`bridge`, `veth`, `tun`, ...); `None` for physical
    /// and built-in devices.
    pub kind: Option<String>,
    /// Hardware address, when the link has a 6-byte one.
    pub mac: Option<[u8; 6]>,
}

/// One IPv4 address on one interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ipv4AddrInfo {
    /// Index of the interface carrying it.
    pub index: u32,
    /// The interface's own address (`IFA_LOCAL`).
    pub address: Ipv4Addr,
    /// Prefix length: 31 or 30 on the spine–leaf links the DHCP plans use.
    pub prefix_len: u8,
    /// The far end of a point-to-point address (`IFA_ADDRESS` when it differs
    /// from `IFA_LOCAL`, as with `ip addr add A peer B`).
    pub peer: Option<Ipv4Addr>,
}

impl fmt::Display for LinkInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (ifindex {}, {}, {}",
            self.name,
            self.index,
            if self.up { "up" } else { "down" },
            if self.carrier {
                "carrier"
            } else {
                "no carrier"
            },
        )?;
        if let Some(kind) = &self.kind {
            write!(f, ", {kind}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for Ipv4AddrInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.address)?;
        if let Some(peer) = self.peer {
            write!(f, " peer {peer}")?;
        }
        write!(f, "/{} on ifindex {}", self.prefix_len, self.index)
    }
}

/// What `ensure_bridge` needs beyond [`LinkInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedLink {
    pub info: LinkInfo,
    pub mtu: Option<u32>,
}

/// `None` for messages that are not about a link in the usual sense: per-port
/// bridge notifications (`AF_BRIDGE`, sent when a port joins or *leaves* a
/// bridge, which must not read as the link being removed) and nameless ones.
pub(crate) fn parse_link(msg: &LinkMessage) -> Option<ParsedLink> {
    if msg.header.interface_family != AddressFamily::Unspec {
        return None;
    }
    let mut name = None;
    let mut kind = None;
    let mut mac = None;
    let mut mtu = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Mtu(m) => mtu = Some(*m),
            LinkAttribute::Address(bytes) => mac = <[u8; 6]>::try_from(bytes.as_slice()).ok(),
            LinkAttribute::LinkInfo(infos) => {
                kind = infos.iter().find_map(|i| match i {
                    NlLinkInfo::Kind(k) => Some(k.to_string()),
                    _ => None,
                })
            }
            _ => {}
        }
    }
    let flags = msg.header.flags;
    Some(ParsedLink {
        info: LinkInfo {
            index: msg.header.index,
            name: name?,
            up: flags.contains(LinkFlags::Up),
            carrier: flags.contains(LinkFlags::LowerUp),
            kind,
            mac,
        },
        mtu,
    })
}

/// `None` for non-IPv4 messages.
pub(crate) fn parse_ipv4_address(msg: &AddressMessage) -> Option<Ipv4AddrInfo> {
    if msg.header.family != AddressFamily::Inet {
        return None;
    }
    let mut local = None;
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(IpAddr::V4(a)) => local = Some(*a),
            AddressAttribute::Address(IpAddr::V4(a)) => address = Some(*a),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's address; IFA_ADDRESS is the peer on a
    // point-to-point address and equal to IFA_LOCAL otherwise. The kernel
    // always sends IFA_LOCAL for IPv4, but fall back like iproute2 does.
    let own = local.or(address)?;
    let peer = address.filter(|a| *a != own);
    Some(Ipv4AddrInfo {
        index: msg.header.index,
        address: own,
        prefix_len: msg.header.prefix_len,
        peer,
    })
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_route::link::InfoKind;

    use super::*;

    fn link_message(
        family: AddressFamily,
        flags: LinkFlags,
        attributes: Vec<LinkAttribute>,
    ) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.interface_family = family;
        msg.header.index = 7;
        msg.header.flags = flags;
        msg.attributes = attributes;
        msg
    }

    #[test]
    fn bridge_link_with_flags_kind_mac_and_mtu() {
        let msg = link_message(
            AddressFamily::Unspec,
            LinkFlags::Up | LinkFlags::Broadcast | LinkFlags::Multicast,
            vec![
                LinkAttribute::IfName("br0".into()),
                LinkAttribute::Mtu(9000),
                LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
                LinkAttribute::LinkInfo(vec![NlLinkInfo::Kind(InfoKind::Bridge)]),
            ],
        );
        assert_eq!(
            parse_link(&msg),
            Some(ParsedLink {
                info: LinkInfo {
                    index: 7,
                    name: "br0".into(),
                    up: true,
                    carrier: false,
                    kind: Some("bridge".into()),
                    mac: Some([2, 0, 0, 0, 0, 1]),
                },
                mtu: Some(9000),
            })
        );
    }

    #[test]
    fn physical_link_has_no_kind_and_odd_sized_address_is_no_mac() {
        let msg = link_message(
            AddressFamily::Unspec,
            LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Running,
            vec![
                LinkAttribute::IfName("et3".into()),
                // e.g. an IPv4 tunnel's 4-byte "hardware" address
                LinkAttribute::Address(vec![10, 0, 0, 1]),
            ],
        );
        let link = parse_link(&msg).expect("parsed").info;
        assert!(link.up && link.carrier);
        assert_eq!((link.kind, link.mac), (None, None));
    }

    #[test]
    fn bridge_port_notification_is_not_a_link_event() {
        let msg = link_message(
            AddressFamily::Bridge,
            LinkFlags::Up,
            vec![LinkAttribute::IfName("vnet0".into())],
        );
        assert_eq!(parse_link(&msg), None);
    }

    #[test]
    fn nameless_link_message_is_skipped() {
        assert_eq!(
            parse_link(&link_message(AddressFamily::Unspec, LinkFlags::Up, vec![])),
            None
        );
    }

    fn address_message(
        family: AddressFamily,
        prefix_len: u8,
        attributes: Vec<AddressAttribute>,
    ) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = family;
        msg.header.prefix_len = prefix_len;
        msg.header.index = 5;
        msg.attributes = attributes;
        msg
    }

    #[test]
    fn ordinary_ipv4_address_has_no_peer() {
        let a: Ipv4Addr = "10.0.0.0".parse().unwrap();
        let msg = address_message(
            AddressFamily::Inet,
            31,
            vec![
                AddressAttribute::Address(a.into()),
                AddressAttribute::Local(a.into()),
            ],
        );
        assert_eq!(
            parse_ipv4_address(&msg),
            Some(Ipv4AddrInfo {
                index: 5,
                address: a,
                prefix_len: 31,
                peer: None
            })
        );
    }

    #[test]
    fn point_to_point_address_reports_peer() {
        let local: Ipv4Addr = "10.9.0.1".parse().unwrap();
        let peer: Ipv4Addr = "10.9.0.2".parse().unwrap();
        let msg = address_message(
            AddressFamily::Inet,
            32,
            vec![
                AddressAttribute::Local(local.into()),
                AddressAttribute::Address(peer.into()),
            ],
        );
        let info = parse_ipv4_address(&msg).expect("parsed");
        assert_eq!((info.address, info.peer), (local, Some(peer)));
        assert_eq!(info.to_string(), "10.9.0.1 peer 10.9.0.2/32 on ifindex 5");
    }

    #[test]
    fn ipv6_address_is_skipped() {
        let msg = address_message(
            AddressFamily::Inet6,
            64,
            vec![AddressAttribute::Address("fe80::1".parse().unwrap())],
        );
        assert_eq!(parse_ipv4_address(&msg), None);
    }
}
