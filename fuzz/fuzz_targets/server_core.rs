//! The DHCP core driven by arbitrary input: the input is cut into packets, each
//! sent on one of four interfaces (two point-to-point links, a pool link, an
//! unserved one) at a time that moves forward, so every state is reachable:
//! offers pending, leases bound, expired, released, declined, quarantined.
//! Invariants: no panic; every reply is at least 300 bytes and leaves by the
//! interface the request came in on; at most one lease per address per link.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use ztps_dhcp::*;

fn server() -> Server {
    let mut s = Server::new(ServerConfig {
        max_pending_offers: 16,
        ..ServerConfig::default()
    });
    let p2p = |name: &str, ifindex: u32, a: [u8; 4]| ServedLink {
        name: name.into(),
        ifindex,
        plan: AddressPlan::derive(
            Some(SpineAddress { address: Ipv4Addr::from(a), prefix_len: 31 }),
            None,
        )
        .unwrap(),
    };
    let pool = ServedLink {
        name: "Ethernet7".into(),
        ifindex: 17,
        plan: AddressPlan::derive(
            None,
            Some(&PoolSpec {
                first: Ipv4Addr::new(10, 0, 7, 2),
                last: Ipv4Addr::new(10, 0, 7, 9),
                router: Ipv4Addr::new(10, 0, 7, 1),
                prefix_len: 28,
            }),
        )
        .unwrap(),
    };
    s.set_links([p2p("Ethernet1", 11, [10, 0, 0, 0]), p2p("Ethernet2", 12, [10, 0, 0, 2]), pool]);
    s
}

fuzz_target!(|data: &[u8]| {
    let mut s = server();
    let mut now = 1_700_000_000u64;
    // Records: [ifindex selector, time step, len hi, len lo, packet...]
    let mut rest = data;
    while rest.len() >= 4 {
        let ifindex = [11u32, 12, 17, 5][usize::from(rest[0] % 4)];
        now += u64::from(rest[1]) * 7;
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let body = &rest[4..];
        let len = len.min(body.len());
        let o = s.handle(now, ifindex, &body[..len]);
        if let Some(r) = &o.reply {
            assert!(r.payload.len() >= 300);
            assert_eq!(r.ifindex, ifindex);
        }
        rest = &body[len..];
    }
    let mut seen = HashSet::new();
    for l in s.leases() {
        assert!(seen.insert((l.link.clone(), l.address)), "two leases hold {} on {}", l.address, l.link);
    }
});
