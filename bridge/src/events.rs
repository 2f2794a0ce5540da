//! Link and IPv4 address events, surviving receive-buffer overruns.
//!
//! Why a raw netlink socket read by our own loop, not rtnetlink's multicast
//! connection: netlink-proto's connection task drains the socket whenever it
//! is scheduled and pushes every message into an *unbounded* channel. The
//! kernel's receive buffer, the natural bound on queued events, then rarely
//! fills: a slow consumer grows our memory instead, and `ENOBUFS` surfaces
//! only when the task happens to be starved, as an `Overrun` message mixed
//! into the stream. Here the socket is read only inside [`LinkEvents::next`],
//! so the kernel buffer (sized with [`LinkEvents::set_recv_buffer_size`]) is
//! the one bound, and `ENOBUFS` from `recv` is the one, reliable, signal that
//! events were lost.
//!
//! **Invariant:** after a loss the consumer gets [`NetEvent::Resynced`] with
//! the full state, never a silent gap. On `ENOBUFS` (or an undecodable
//! message, which is a loss too) the queued events are discarded, links and
//! addresses are dumped afresh, and events continue after the dump. An event
//! queued during the dump may repeat what the dump already shows; every event
//! carries the object's whole state, so applying it again is harmless and the
//! consumer converges on the kernel's state.

use std::{collections::VecDeque, fmt, io};

use rtnetlink::{
    packet_core::{NetlinkBuffer, NetlinkMessage, NetlinkPayload},
    packet_route::RouteNetlinkMessage,
    sys::{protocols::NETLINK_ROUTE, Socket},
};
use tokio::io::{unix::AsyncFd, Interest};
use tracing::warn;

use crate::{
    parse::{parse_ipv4_address, parse_link},
    BridgeError, Ipv4AddrInfo, LinkInfo, Netlink,
};

/// Room for a typical notification; larger ones are measured first and the
/// buffer grows to fit.
const INITIAL_BUFFER: usize = 32 * 1024;

/// Upper bound on stale datagrams thrown away before a resync dump, so a
/// flood cannot keep us draining forever (what is left is merely stale).
const MAX_DRAIN: usize = 100_000;

/// A change the kernel announced, in the order it announced them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A link appeared or changed (flags, carrier, name, ...). Carries its
    /// whole current state.
    LinkChanged(LinkInfo),
    /// A link was deleted (or left the namespace).
    LinkRemoved {
        /// Its index, which the kernel may reuse later.
        index: u32,
        /// Its last name.
        name: String,
    },
    /// An IPv4 address was added to a link.
    AddressAdded(Ipv4AddrInfo),
    /// An IPv4 address was removed from a link (also when its link goes).
    AddressRemoved(Ipv4AddrInfo),
    /// Events were lost (receive buffer overrun): this is the complete state
    /// now; replace what was known, do not merge.
    Resynced {
        /// Every link, as [`Netlink::links`] reports them.
        links: Vec<LinkInfo>,
        /// Every IPv4 address, as [`Netlink::ipv4_addresses`] reports them.
        addresses: Vec<Ipv4AddrInfo>,
    },
}

impl fmt::Display for NetEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LinkChanged(link) => write!(f, "link {link}"),
            Self::LinkRemoved { index, name } => write!(f, "link {name} (ifindex {index}) removed"),
            Self::AddressAdded(a) => write!(f, "address {a} added"),
            Self::AddressRemoved(a) => write!(f, "address {a} removed"),
            Self::Resynced { links, addresses } => write!(
                f,
                "resynced after lost events: {} links, {} IPv4 addresses",
                links.len(),
                addresses.len()
            ),
        }
    }
}

/// A subscription to link (`RTNLGRP_LINK`) and IPv4 address
/// (`RTNLGRP_IPV4_IFADDR`) changes in the calling thread's namespace.
///
/// Subscribe *before* listing the initial state with [`Netlink::links`], so
/// that no change falls between the listing and the subscription.
pub struct LinkEvents {
    socket: AsyncFd<Socket>,
    /// For resync dumps.
    netlink: Netlink,
    buf: Vec<u8>,
    pending: VecDeque<NetEvent>,
    /// Set on a loss, cleared only by a successful dump: a failed dump is
    /// retried on the next call instead of silently resuming.
    needs_resync: bool,
}

impl fmt::Debug for LinkEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkEvents")
            .field("pending", &self.pending.len())
            .field("needs_resync", &self.needs_resync)
            .finish_non_exhaustive()
    }
}

impl LinkEvents {
    /// Opens the event socket and joins the link and IPv4 address groups.
    /// Needs a tokio runtime (the socket is registered with its reactor, and
    /// a [`Netlink`] connection is opened for resyncs).
    pub fn subscribe() -> Result<LinkEvents, BridgeError> {
        const OP: &str = "subscribe to link and address events";
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BridgeError::NoRuntime { op: OP });
        }
        let err = |e| BridgeError::socket(OP, e);
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(err)?;
        socket.bind_auto().map_err(err)?;
        socket.add_membership(libc::RTNLGRP_LINK).map_err(err)?;
        socket
            .add_membership(libc::RTNLGRP_IPV4_IFADDR)
            .map_err(err)?;
        socket.set_non_blocking(true).map_err(err)?;
        // SAFETY: `Socket` owns its descriptor (closed on drop) and always
        // returns that same one from `as_raw_fd`; it is never replaced (only
        // `get_ref` is used), so the fd stays valid while registered.
        let socket = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(|e| err(e.into_parts().1))?;
        Ok(LinkEvents {
            socket,
            netlink: Netlink::connect()?,
            buf: Vec::with_capacity(INITIAL_BUFFER),
            pending: VecDeque::new(),
            needs_resync: false,
        })
    }

    /// Sets the socket's receive buffer (`SO_RCVBUF`, capped by
    /// `net.core.rmem_max`) and returns the size the kernel granted, which
    /// is about twice the request. A small buffer overruns sooner; the
    /// default (`net.core.rmem_default`) suits the agent.
    pub fn set_recv_buffer_size(&self, bytes: usize) -> Result<usize, BridgeError> {
        const OP: &str = "set the event socket's receive buffer size";
        let socket = self.socket.get_ref();
        let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        socket
            .set_rx_buf_sz(bytes)
            .map_err(|e| BridgeError::socket(OP, e))?;
        socket
            .get_rx_buf_sz()
            .map_err(|e| BridgeError::socket(OP, e))
    }

    /// The next event. Cancel-safe: dropping the future loses no event that
    /// was already received, only the wait.
    ///
    /// An `Err` is a broken socket or a failed resync dump; the next call
    /// retries the resync, but after a socket error subscribing again is the
    /// sure way out.
    pub async fn next(&mut self) -> Result<NetEvent, BridgeError> {
        loop {
            if self.needs_resync {
                return self.resync().await;
            }
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            match self.recv().await {
                Ok(true) => self.decode(),
                Ok(false) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    warn!("netlink event receive buffer overrun: events were lost, re-reading links and addresses");
                    self.needs_resync = true;
                }
                Err(e) => return Err(BridgeError::socket("receive link and address events", e)),
            }
        }
    }

    /// Receives one datagram into `self.buf`; `false` if it did not come from
    /// the kernel (root processes can send to rtnetlink groups) and was
    /// dropped.
    async fn recv(&mut self) -> io::Result<bool> {
        loop {
            let mut guard = self.socket.readable().await?;
            let buf = &mut self.buf;
            match guard.try_io(|socket| recv_whole(socket.get_ref(), buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Turns the datagram in `self.buf` into pending events. A message that
    /// does not decode is an event we cannot apply, so it counts as a loss.
    fn decode(&mut self) {
        if let Err(why) = decode_datagram(&self.buf, &mut self.pending) {
            warn!("netlink event dropped ({why}); re-reading links and addresses");
            self.needs_resync = true;
        }
    }

    async fn resync(&mut self) -> Result<NetEvent, BridgeError> {
        // Queued events predate the dump: drop them rather than replay
        // stale state after the snapshot.
        self.pending.clear();
        self.drain();
        let links = self.netlink.links().await?;
        let addresses = self.netlink.ipv4_addresses().await?;
        self.needs_resync = false;
        Ok(NetEvent::Resynced { links, addresses })
    }

    fn drain(&mut self) {
        let socket = self.socket.get_ref();
        for _ in 0..MAX_DRAIN {
            self.buf.clear();
            match socket.recv(&mut self.buf, libc::MSG_DONTWAIT | libc::MSG_TRUNC) {
                Ok(_) => {}
                // Another overrun while draining: the dump covers it too.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                // Empty (EAGAIN) or broken; a broken socket shows in recv().
                Err(_) => break,
            }
        }
    }
}

/// Appends the events in one datagram (one or more netlink messages) to
/// `out`; messages that are not link or IPv4 address changes are skipped.
fn decode_datagram(data: &[u8], out: &mut VecDeque<NetEvent>) -> Result<(), String> {
    let mut rest = data;
    while !rest.is_empty() {
        let len = NetlinkBuffer::new_checked(rest)
            .map_err(|e| format!("bad netlink header: {e}"))?
            .length() as usize;
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len])
            .map_err(|e| format!("undecodable message: {e}"))?;
        out.extend(event_of(msg));
        // Messages in a datagram are 4-byte aligned.
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    Ok(())
}

/// Peeks at the datagram's size first so that nothing is ever truncated.
fn recv_whole(socket: &Socket, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    let (len, _) = socket.recv_from(buf, libc::MSG_PEEK | libc::MSG_TRUNC)?;
    buf.clear();
    buf.reserve(len);
    let (_, from) = socket.recv_from(buf, 0)?;
    Ok(from.port_number() == 0)
}

fn event_of(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<NetEvent> {
    let NetlinkPayload::InnerMessage(msg) = msg.payload else {
        return None;
    };
    match msg {
        RouteNetlinkMessage::NewLink(m) => parse_link(&m).map(|l| NetEvent::LinkChanged(l.info)),
        RouteNetlinkMessage::DelLink(m) => parse_link(&m).map(|l| NetEvent::LinkRemoved {
            index: l.info.index,
            name: l.info.name,
        }),
        RouteNetlinkMessage::NewAddress(m) => parse_ipv4_address(&m).map(NetEvent::AddressAdded),
        RouteNetlinkMessage::DelAddress(m) => parse_ipv4_address(&m).map(NetEvent::AddressRemoved),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use rtnetlink::packet_route::{
        address::{AddressAttribute, AddressMessage},
        link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage},
        AddressFamily,
    };

    use super::*;

    fn datagram(messages: Vec<RouteNetlinkMessage>) -> Vec<u8> {
        let mut out = Vec::new();
        for inner in messages {
            let mut msg = NetlinkMessage::from(inner);
            msg.finalize();
            let mut bytes = vec![0; msg.buffer_len()];
            msg.serialize(&mut bytes);
            bytes.resize(bytes.len().next_multiple_of(4), 0);
            out.extend(bytes);
        }
        out
    }

    fn link(
        family: AddressFamily,
        index: u32,
        name: &str,
        flags: LinkFlags,
        kind: Option<InfoKind>,
    ) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.interface_family = family;
        msg.header.index = index;
        msg.header.flags = flags;
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        if let Some(kind) = kind {
            msg.attributes
                .push(LinkAttribute::LinkInfo(vec![NlLinkInfo::Kind(kind)]));
        }
        msg
    }

    fn address(index: u32, a: Ipv4Addr, prefix_len: u8) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.index = index;
        msg.header.prefix_len = prefix_len;
        msg.attributes.push(AddressAttribute::Local(a.into()));
        msg.attributes.push(AddressAttribute::Address(a.into()));
        msg
    }

    #[test]
    fn several_messages_in_one_datagram_become_events_in_order() {
        let a = Ipv4Addr::new(10, 0, 0, 0);
        let bytes = datagram(vec![
            RouteNetlinkMessage::NewLink(link(
                AddressFamily::Unspec,
                4,
                "et3",
                LinkFlags::Up | LinkFlags::LowerUp,
                Some(InfoKind::Veth),
            )),
            // A port leaving a bridge: AF_BRIDGE DELLINK, not a removal.
            RouteNetlinkMessage::DelLink(link(
                AddressFamily::Bridge,
                5,
                "vnet0",
                LinkFlags::Up,
                None,
            )),
            RouteNetlinkMessage::NewAddress(address(4, a, 31)),
            RouteNetlinkMessage::DelAddress(address(4, a, 31)),
            RouteNetlinkMessage::DelLink(link(
                AddressFamily::Unspec,
                4,
                "et3",
                LinkFlags::empty(),
                None,
            )),
        ]);
        let mut events = VecDeque::new();
        decode_datagram(&bytes, &mut events).expect("decodes");
        let info = Ipv4AddrInfo {
            index: 4,
            address: a,
            prefix_len: 31,
            peer: None,
        };
        assert_eq!(
            Vec::from(events),
            vec![
                NetEvent::LinkChanged(LinkInfo {
                    index: 4,
                    name: "et3".into(),
                    up: true,
                    carrier: true,
                    kind: Some("veth".into()),
                    mac: None,
                }),
                NetEvent::AddressAdded(info.clone()),
                NetEvent::AddressRemoved(info),
                NetEvent::LinkRemoved {
                    index: 4,
                    name: "et3".into()
                },
            ]
        );
    }

    #[test]
    fn truncated_datagram_is_an_error() {
        let bytes = datagram(vec![RouteNetlinkMessage::NewLink(link(
            AddressFamily::Unspec,
            4,
            "et3",
            LinkFlags::Up,
            None,
        ))]);
        let mut events = VecDeque::new();
        let err = decode_datagram(&bytes[..bytes.len() - 8], &mut events).expect_err("truncated");
        assert!(err.contains("bad netlink header"), "{err}");
        assert!(events.is_empty());
    }

    #[test]
    fn subscribe_outside_a_runtime_is_a_clear_error() {
        let err = LinkEvents::subscribe().expect_err("no runtime");
        assert!(matches!(err, BridgeError::NoRuntime { .. }), "{err:?}");
        assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
        let err = Netlink::connect().expect_err("no runtime");
        assert!(matches!(err, BridgeError::NoRuntime { .. }), "{err:?}");
    }
}
