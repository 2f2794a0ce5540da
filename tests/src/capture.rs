//! Records the DHCP ACKs that reach an interface: what the clients saw.
//!
//! A thread enters the namespace (`setns`), opens an `AF_PACKET` socket on the
//! interface and keeps every DHCPACK it sees (chaddr and yiaddr). The crash tests
//! compare that list with the lease file: every ACK a client received must be on
//! storage.

use crate::netns::Netns;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// An ACK a client received.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeenAck {
    /// chaddr, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// yiaddr.
    pub address: Ipv4Addr,
}

/// A running capture.
pub struct AckCapture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<SeenAck>>>,
}

impl AckCapture {
    /// Starts capturing on `ifname` inside `ns`; returns once the socket is open.
    pub fn start(ns: &Netns, ifname: &str) -> AckCapture {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let path = format!("/var/run/netns/{}", ns.name());
        let ifname = ifname.to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let nsfile = std::fs::File::open(&path).expect("opening the namespace");
            nix::sched::setns(&nsfile, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("entering the namespace");
            let sock = open_packet_socket(&ifname);
            ready_tx.send(()).unwrap();
            let mut acks = Vec::new();
            let mut buf = vec![0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: buf is valid for writes of its length.
                let n =
                    unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n <= 0 {
                    continue;
                }
                if let Some(ack) = parse_ack(&buf[..n as usize]) {
                    acks.push(ack);
                }
            }
            acks
        });
        ready_rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("capture socket did not open");
        AckCapture {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns every ACK seen, in order.
    pub fn stop(mut self) -> Vec<SeenAck> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("capture thread"))
            .unwrap_or_default()
    }
}

impl Drop for AckCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn open_packet_socket(ifname: &str) -> OwnedFd {
    let proto = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket(2) call; the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto)) };
    assert!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is a fresh socket we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let ifindex = nix::net::if_::if_nametoindex(ifname).expect("capture interface");
    // SAFETY: sockaddr_ll is plain data; zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll lives for the call and its size is passed.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert!(
        rc == 0,
        "bind AF_PACKET: {}",
        std::io::Error::last_os_error()
    );
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    let rcvbuf: libc::c_int = 8 << 20;
    // SAFETY: option values live for the calls and their sizes are passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&rcvbuf as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        );
    }
    sock
}

/// An IPv4/UDP packet from port 67 carrying a DHCPACK with a yiaddr.
fn parse_ack(ip: &[u8]) -> Option<SeenAck> {
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let udp = ip.get(ihl..)?;
    if udp.len() < 8 || u16::from_be_bytes([udp[0], udp[1]]) != 67 {
        return None;
    }
    let d = &udp[8..];
    if d.len() < 240 || d[0] != 2 || d[236..240] != [99, 130, 83, 99] {
        return None;
    }
    let mut i = 240;
    let mut kind = 0;
    while i + 1 < d.len() && d[i] != 255 {
        if d[i] == 0 {
            i += 1;
            continue;
        }
        let len = usize::from(d[i + 1]);
        if d[i] == 53 && len == 1 && i + 2 < d.len() {
            kind = d[i + 2];
        }
        i += 2 + len;
    }
    let yiaddr = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
    if kind != 5 || yiaddr.is_unspecified() {
        return None;
    }
    let hlen = usize::from(d[2]).min(16);
    Some(SeenAck {
        mac: d[28..28 + hlen]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        address: yiaddr,
    })
}
