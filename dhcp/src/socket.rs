//! The one DHCP socket: UDP 0.0.0.0:67 with `IP_PKTINFO`.
//!
//! One wildcard socket serves every link: the ingress interface of each packet
//! comes from `IP_PKTINFO`, and every reply is sent with `ipi_ifindex` set to the
//! link's interface (never 0: with unnumbered links one source address sits on
//! many interfaces, and the routing table would pick the wrong one). New links
//! need no rebind. Replies to clients without an address are unicast after an ARP
//! entry is installed for them (as dnsmasq does), falling back to broadcast.

use crate::server::{Destination, Reply};
use nix::sys::socket::{
    self, sockopt, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, SockaddrIn,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

/// Server port.
pub const SERVER_PORT: u16 = 67;
/// Client port.
pub const CLIENT_PORT: u16 = 68;

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
        Ok(DhcpSocket { inner })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }

    /// Receives one packet into `buf`, with its ingress interface.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let fd = self.inner.as_raw_fd();
        self.inner
            .async_io(tokio::io::Interest::READABLE, || {
                let mut iov = [IoSliceMut::new(buf)];
                let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
                let msg = socket::recvmsg::<SockaddrIn>(
                    fd,
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT,
                )
                .map_err(io::Error::from)?;
                let mut ifindex = 0u32;
                for c in msg.cmsgs().map_err(io::Error::from)? {
                    if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
                        ifindex = info.ipi_ifindex as u32;
                    }
                }
                let source = msg
                    .address
                    .map(|a| SocketAddrV4::new(a.ip(), a.port()))
                    .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
                Ok(Received {
                    len: msg.bytes,
                    ifindex,
                    source,
                })
            })
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
                match self.set_arp(reply.ifindex, *address, chaddr) {
                    Ok(()) => (*address, CLIENT_PORT),
                    Err(e) => {
                        tracing::debug!(
                            "no ARP entry for {address} on ifindex {}: {e}; broadcasting",
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

    /// Installs a neighbour entry so a unicast reaches a client that has no
    /// address yet (RFC 2131 §4.1). Ethernet only.
    fn set_arp(&self, ifindex: u32, address: Ipv4Addr, chaddr: &[u8]) -> io::Result<()> {
        if chaddr.len() != 6 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an Ethernet hardware address",
            ));
        }
        let mut name_buf = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: the buffer is IF_NAMESIZE bytes, as if_indextoname requires.
        let name = unsafe { libc::if_indextoname(ifindex, name_buf.as_mut_ptr()) };
        if name.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: arpreq is plain old data; all-zero is a valid value.
        let mut req: libc::arpreq = unsafe { std::mem::zeroed() };
        let pa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(address).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: sockaddr_in fits in sockaddr (both 16 bytes).
        unsafe {
            std::ptr::copy_nonoverlapping(
                &pa as *const libc::sockaddr_in as *const u8,
                &mut req.arp_pa as *mut libc::sockaddr as *mut u8,
                std::mem::size_of::<libc::sockaddr_in>(),
            );
        }
        req.arp_ha.sa_family = libc::ARPHRD_ETHER;
        for (dst, src) in req.arp_ha.sa_data.iter_mut().zip(chaddr) {
            *dst = *src as libc::c_char;
        }
        req.arp_flags = libc::ATF_COM;
        req.arp_dev = name_buf;
        // SAFETY: SIOCSARP takes a pointer to an arpreq, which lives for the call.
        let rc = unsafe {
            libc::ioctl(
                self.inner.as_raw_fd(),
                libc::SIOCSARP as _,
                &req as *const libc::arpreq,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
