//! Link-up to serving: a DISCOVER every 10 ms from the leaf, until an OFFER.
//!
//! udhcpc retries once a second, so "link-up to lease" cannot tell a server that
//! serves a new link in 5 ms from one that takes 500 ms. This probe can: a leaf
//! with a static address on the link (so the ordinary UDP stack can send and
//! receive) broadcasts a DISCOVER with the broadcast flag every 10 ms, and the
//! figure is the time from link-up (t0) to the first OFFER it receives: when the
//! server really is serving the link, to 10 ms.

use anyhow::{bail, Context, Result};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use ztps_tests::netns::Netns;

/// Interval between DISCOVERs.
pub const INTERVAL: Duration = Duration::from_millis(10);

fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn discover(xid: u32, mac: [u8; 6], vendor_class: &str) -> Vec<u8> {
    let mut p = vec![0u8; 240];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[10] = 0x80; // broadcast flag: the OFFER comes back to 255.255.255.255
    p[28..34].copy_from_slice(&mac);
    p[236..240].copy_from_slice(&[99, 130, 83, 99]);
    p.extend_from_slice(&[53, 1, 1]);
    p.push(60);
    p.push(vendor_class.len() as u8);
    p.extend_from_slice(vendor_class.as_bytes());
    p.extend_from_slice(&[55, 3, 1, 3, 67, 255]);
    p.resize(300, 0);
    p
}

fn is_offer_for(reply: &[u8], mac: [u8; 6]) -> bool {
    if reply.len() < 240 || reply[0] != 2 || reply[28..34] != mac {
        return false;
    }
    let mut i = 240;
    while i + 2 < reply.len() && reply[i] != 255 {
        if reply[i] == 0 {
            i += 1;
            continue;
        }
        if reply[i] == 53 && reply[i + 1] == 1 {
            return reply[i + 2] == 2;
        }
        i += 2 + usize::from(reply[i + 1]);
    }
    false
}

/// Starts the probe in `ns`, calls `raise` (which brings the link up and
/// returns t0, Unix seconds), and returns the seconds from t0 to the first
/// OFFER, or an error after `timeout`.
pub fn link_up_to_offer(
    ns: &Netns,
    ifname: &str,
    vendor_class: &str,
    raise: impl FnOnce() -> Result<f64>,
    timeout: Duration,
) -> Result<f64> {
    let path = format!("/var/run/netns/{}", ns.name());
    let class = vendor_class.to_string();
    let ifname = std::ffi::OsString::from(ifname);
    let mac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x05];
    let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
    let prober = std::thread::spawn(move || -> Result<Option<f64>> {
        let setup = (|| -> Result<UdpSocket> {
            let f = std::fs::File::open(&path).context("opening the probe namespace")?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                .context("entering the probe namespace")?;
            let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68))
                .context("binding UDP 68 in the probe namespace")?;
            // Bound to the leaf's interface: a send to 255.255.255.255 then leaves
            // by it; without, the namespace has no route for it (ENETUNREACH).
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::BindToDevice, &ifname)
                .context("SO_BINDTODEVICE")?;
            s.set_broadcast(true)?;
            s.set_read_timeout(Some(Duration::from_millis(2)))?;
            Ok(s)
        })();
        let sock = match setup {
            Ok(s) => {
                let _ = ready_tx.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return Ok(None);
            }
        };
        let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1500];
        let mut xid = 0x5eed_0000u32;
        while Instant::now() < deadline {
            xid = xid.wrapping_add(1);
            // While the link is down the send fails (ENETDOWN) or goes nowhere:
            // keep going; any other error is a broken probe.
            if let Err(e) = sock.send_to(&discover(xid, mac, &class), to) {
                if !matches!(e.raw_os_error(), Some(libc::ENETDOWN) | Some(libc::ENOBUFS)) {
                    bail!("probe send: {e}");
                }
            }
            let next = Instant::now() + INTERVAL;
            while Instant::now() < next {
                if let Ok(n) = sock.recv(&mut buf) {
                    if is_offer_for(&buf[..n], mac) {
                        return Ok(Some(now_f64()));
                    }
                }
            }
        }
        Ok(None)
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .context("the probe did not start")??;
    // Let a few DISCOVERs go into the dead link first.
    std::thread::sleep(Duration::from_millis(50));
    let t0 = raise()?;
    match prober.join().expect("probe thread") {
        Ok(Some(t)) => Ok(t - t0),
        Ok(None) => bail!("no OFFER within {timeout:?} of link-up"),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_is_a_padded_broadcast_request_and_offers_are_recognised() {
        let mac = [2, 0, 0, 0, 0, 1];
        let d = discover(7, mac, "Arista;X;1;S");
        assert_eq!(d.len(), 300);
        assert_eq!((d[0], d[10]), (1, 0x80));
        let mut offer = d.clone();
        offer[0] = 2;
        offer[242] = 2; // option 53 value
        assert!(is_offer_for(&offer, mac));
        assert!(!is_offer_for(&offer, [2, 0, 0, 0, 0, 2]));
        assert!(!is_offer_for(&d, mac));
    }
}
