//! The one DHCP socket: UDP 0.0.0.0:67 with `IP_PKTINFO`.
//!
//! One wildcard socket serves every link: the ingress interface of each packet
//! comes from `IP_PKTINFO`, and every reply is sent with `ipi_ifindex` set to the
//! link's interface (never 0: with unnumbered links one source address sits on
//! many interfaces, and the routing table would pick the wrong one). New links
//! need no rebind.
//!
//! Replies to a client without an address ([`Destination::Hardware`], pool
//! links only: the core broadcasts on point-to-point links) go to its chaddr
//! through a packet socket (`AF_PACKET`, as ISC dhcpd and Kea do), with the IPv4
//! and UDP headers built here. **The kernel's neighbour table is never written**
//! from a packet: a wrong entry would cut the spine's own traffic to a live
//! leaf. Without `CAP_NET_RAW` the reply is broadcast instead.
//!
//! Packets are read in batches (`recvmmsg`) into a large receive buffer
//! ([`RECEIVE_BUFFER`]), so a burst from one leaf is absorbed and drained quickly
//! rather than making the kernel drop another link's packets.

use crate::server::{Destination, Reply};
use nix::sys::socket::{
    self, sockopt, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders,
    SockFlag, SockType, SockaddrIn,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

/// Server port.
pub const SERVER_PORT: u16 = 67;
/// Client port.
pub const CLIENT_PORT: u16 = 68;
/// The receive buffer asked for: a few thousand packets of burst.
/// `SO_RCVBUFFORCE` (with `CAP_NET_ADMIN`) gets it past `net.core.rmem_max`.
pub const RECEIVE_BUFFER: usize = 4 << 20;
/// Bytes per received packet, at most (DHCP fits an Ethernet frame; more is cut).
pub const MAX_PACKET: usize = 4096;

/// Failure to open the DHCP socket.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Someone else has the port.
    #[error(
        "UDP port {port} is already in use by another process. On EOS this usually means \
         the native DHCP server (`dhcp server` in the running-config) or a DHCP relay \
         (`ip helper-address` on an interface) is configured on this switch; remove it, \
         or stop the other DHCP server, then start ztps-agent again"
    )]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// Not allowed to bind a privileged port.
    #[error("binding UDP port {port} needs root (or CAP_NET_BIND_SERVICE): {source}")]
    Permission {
        /// The port.
        port: u16,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Anything else, with the step that failed.
    #[error("opening the DHCP socket: {op}: {source}")]
    Os {
        /// The step.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn os(op: &'static str) -> impl FnOnce(nix::Error) -> SocketError {
    move |e| SocketError::Os {
        op,
        source: io::Error::from(e),
    }
}

/// A received packet's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes in the buffer.
    pub len: usize,
    /// Ingress interface index (0 if the kernel did not say, which it always does).
    pub ifindex: u32,
    /// Sender.
    pub source: SocketAddrV4,
}

/// The DHCP server socket.
#[derive(Debug)]
pub struct DhcpSocket {
    inner: tokio::net::UdpSocket,
    /// For replies to a hardware address; `None` without `CAP_NET_RAW`.
    packet: Option<std::os::fd::OwnedFd>,
}

impl DhcpSocket {
    /// Binds `addr` (normally 0.0.0.0:67). Must be called inside a tokio runtime.
    pub fn bind(addr: SocketAddrV4) -> Result<Self, SocketError> {
        let fd = socket::socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(os("socket"))?;
        socket::setsockopt(&fd, sockopt::Ipv4PacketInfo, &true).map_err(os("IP_PKTINFO"))?;
        socket::setsockopt(&fd, sockopt::Broadcast, &true).map_err(os("SO_BROADCAST"))?;
        if socket::setsockopt(&fd, sockopt::RcvBufForce, &RECEIVE_BUFFER).is_err() {
            // Without CAP_NET_ADMIN: as much as net.core.rmem_max allows.
            let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &RECEIVE_BUFFER);
        }
        // No SO_REUSEADDR/SO_REUSEPORT: a second DHCP server on the box must be
        // reported, not silently share the port.
        socket::bind(fd.as_raw_fd(), &SockaddrIn::from(addr)).map_err(|e| match e {
            nix::Error::EADDRINUSE => SocketError::PortInUse { port: addr.port() },
            nix::Error::EACCES | nix::Error::EPERM => SocketError::Permission {
                port: addr.port(),
                source: io::Error::from(e),
            },
            e => SocketError::Os {
                op: "bind",
                source: io::Error::from(e),
            },
        })?;
        let std_sock = std::net::UdpSocket::from(fd);
        let inner = tokio::net::UdpSocket::from_std(std_sock).map_err(|e| SocketError::Os {
            op: "register with the runtime",
            source: e,
        })?;
        Ok(DhcpSocket {
            inner,
            packet: open_packet_socket().ok(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }

    /// The kernel's receive buffer size, in bytes (as the kernel reports it:
    /// twice what was set, for its bookkeeping).
    pub fn receive_buffer(&self) -> io::Result<usize> {
        socket::getsockopt(&self.inner, sockopt::RcvBuf).map_err(io::Error::from)
    }

    /// Waits for packets, then receives as many as are queued, up to the batch's
    /// size, with one system call. Returns how many; read them with
    /// [`RecvBatch::packets`].
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        self.inner
            .async_io(tokio::io::Interest::READABLE, || batch.fill(fd))
            .await
    }

    /// Sends a reply out of its link's interface. Callable from any thread: it
    /// does not need the runtime, and waits (up to ~1 s) if the socket buffer is full.
    pub fn send(&self, reply: &Reply) -> io::Result<()> {
        let (dest, port) = match &reply.destination {
            Destination::Relay(g) => (*g, SERVER_PORT),
            Destination::Unicast(a) => (*a, CLIENT_PORT),
            Destination::Broadcast => (Ipv4Addr::BROADCAST, CLIENT_PORT),
            Destination::Hardware { address, chaddr } => {
                match self.send_to_hardware(reply, *address, chaddr) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        tracing::debug!(
                            "no unicast to {address} on ifindex {}: {e}; broadcasting",
                            reply.ifindex
                        );
                        (Ipv4Addr::BROADCAST, CLIENT_PORT)
                    }
                }
            }
        };
        self.send_to(&reply.payload, reply.ifindex, reply.source, dest, port)
    }

    fn send_to(
        &self,
        payload: &[u8],
        ifindex: u32,
        source: Ipv4Addr,
        dest: Ipv4Addr,
        port: u16,
    ) -> io::Result<()> {
        let info = libc::in_pktinfo {
            ipi_ifindex: ifindex as libc::c_int,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(source).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let to = SockaddrIn::from(SocketAddrV4::new(dest, port));
        let iov = [IoSlice::new(payload)];
        let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
        let fd = self.inner.as_raw_fd();
        for _ in 0..20 {
            match socket::sendmsg(fd, &iov, &cmsg, MsgFlags::MSG_DONTWAIT, Some(&to)) {
                Ok(_) => return Ok(()),
                Err(nix::Error::EAGAIN) => {
                    let pfd = nix::poll::PollFd::new(
                        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                        nix::poll::PollFlags::POLLOUT,
                    );
                    let _ = nix::poll::poll(&mut [pfd], 50u16);
                }
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "socket send buffer stayed full for 1 s",
        ))
    }

    /// Sends the reply as one Ethernet frame to `chaddr` through the packet
    /// socket: IPv4 from the reply's source to `address`, UDP 67 to 68.
    fn send_to_hardware(&self, reply: &Reply, address: Ipv4Addr, chaddr: &[u8]) -> io::Result<()> {
        let Some(fd) = &self.packet else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no packet socket (needs CAP_NET_RAW)",
            ));
        };
        if chaddr.len() != 6 || chaddr.iter().all(|b| *b == 0) || chaddr[0] & 1 == 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an Ethernet unicast hardware address",
            ));
        }
        let frame = ipv4_udp(
            reply.source,
            address,
            SERVER_PORT,
            CLIENT_PORT,
            &reply.payload,
        );
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_IP as u16).to_be();
        sll.sll_ifindex = reply.ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(chaddr);
        // SAFETY: the buffer and the address live for the call; the length is
        // the size of the sockaddr_ll passed.
        let rc = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Buffers for receiving many packets with one `recvmmsg`.
#[derive(Debug)]
pub struct RecvBatch {
    buffers: Vec<u8>,
    received: Vec<Received>,
}

impl RecvBatch {
    /// Room for `packets` packets of up to [`MAX_PACKET`] bytes.
    pub fn new(packets: usize) -> RecvBatch {
        RecvBatch {
            buffers: vec![0u8; packets.max(1) * MAX_PACKET],
            received: Vec::with_capacity(packets.max(1)),
        }
    }

    /// The packets of the last receive, with their metadata.
    pub fn packets(&self) -> impl Iterator<Item = (Received, &[u8])> {
        self.received
            .iter()
            .zip(self.buffers.chunks(MAX_PACKET))
            .map(|(r, b)| (*r, &b[..r.len.min(MAX_PACKET)]))
    }

    /// One non-blocking `recvmmsg`: `WouldBlock` if nothing is queued.
    fn fill(&mut self, fd: std::os::fd::RawFd) -> io::Result<usize> {
        self.received.clear();
        let capacity = self.received.capacity();
        // Made per call: the headers hold raw pointers (not `Send`), and a
        // few small allocations per batch cost nothing next to the system call.
        let mut headers: MultiHeaders<SockaddrIn> =
            MultiHeaders::preallocate(capacity, Some(nix::cmsg_space!(libc::in_pktinfo)));
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .buffers
            .chunks_mut(MAX_PACKET)
            .map(|b| [IoSliceMut::new(b)])
            .collect();
        let results = socket::recvmmsg(
            fd,
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for msg in results {
            let mut ifindex = 0u32;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
                        ifindex = info.ipi_ifindex as u32;
                    }
                }
            }
            let source = msg
                .address
                .map(|a| SocketAddrV4::new(a.ip(), a.port()))
                .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
            self.received.push(Received {
                len: msg.bytes,
                ifindex,
                source,
            });
        }
        Ok(self.received.len())
    }
}

/// A packet socket for sending only: protocol 0, so it receives nothing.
fn open_packet_socket() -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// The Internet checksum (RFC 1071) of `data`, folded, continuing from `sum`.
fn checksum(mut sum: u32, data: &[u8]) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet carrying one UDP datagram (header construction only).
fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0x10]); // IPv4, 20-byte header; TOS low delay
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]); // id, flags, fragment offset
    p.extend_from_slice(&[64, 17, 0, 0]); // TTL, UDP, checksum (below)
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let ip_sum = checksum(0, &p[..20]);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&(udp_len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    // UDP checksum over the pseudo-header, header and payload.
    let mut pseudo = 0u32;
    for w in [src.octets(), dst.octets()] {
        pseudo += u32::from(u16::from_be_bytes([w[0], w[1]]));
        pseudo += u32::from(u16::from_be_bytes([w[2], w[3]]));
    }
    pseudo += 17 + udp_len as u32;
    let mut udp_sum = checksum(pseudo, &p[20..]);
    if udp_sum == 0 {
        udp_sum = 0xffff;
    }
    p[26..28].copy_from_slice(&udp_sum.to_be_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_headers_have_valid_checksums() {
        let p = ipv4_udp(
            Ipv4Addr::new(10, 0, 7, 1),
            Ipv4Addr::new(10, 0, 7, 2),
            67,
            68,
            b"hello, leaf",
        );
        assert_eq!(p.len(), 20 + 8 + 11);
        assert_eq!(checksum(0, &p[..20]), 0, "IPv4 header sums to zero");
        let mut pseudo = 0u32;
        pseudo += 0x0a00 + 0x0701 + 0x0a00 + 0x0702 + 17 + (8 + 11);
        assert_eq!(checksum(pseudo, &p[20..]), 0, "UDP sums to zero");
        assert_eq!(&p[20..24], &[0, 67, 0, 68]);
    }
}
