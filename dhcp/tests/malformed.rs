//! Garbage in, nothing out: a corpus of malformed packets (truncated, bad option
//! lengths, overlong, zero-length, option overload, relay loops, random bytes)
//! replayed against the core on every link and in every state. No panic, and no
//! reply to any of them. Files the fuzzers found interesting (`fuzz/corpus/*`,
//! `fuzz/artifacts/*`) are replayed too, for no panic.

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
use dhcproto::{Encodable, Encoder};
use proptest::prelude::*;
use std::net::Ipv4Addr;
use std::path::Path;
use ztps_dhcp::*;

const ARISTA: &str = "Arista;DCS-7050SX3-48YC8;11.00;JPE20000001";
const T0: u64 = 1_700_000_000;

fn server_with_state() -> Server {
    let mut s = Server::new(ServerConfig::default());
    let p2p = |name: &str, ifindex: u32, spine: [u8; 4]| ServedLink {
        name: name.into(),
        ifindex,
        plan: AddressPlan::derive(
            Some(SpineAddress {
                address: Ipv4Addr::from(spine),
                prefix_len: 31,
            }),
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
                last: Ipv4Addr::new(10, 0, 7, 6),
                router: Ipv4Addr::new(10, 0, 7, 1),
                prefix_len: 29,
            }),
        )
        .unwrap(),
    };
    s.set_links([
        p2p("Ethernet1", 11, [10, 0, 0, 0]),
        p2p("Ethernet2", 12, [10, 0, 0, 2]),
        pool,
    ]);
    // Some state: a bound lease, an offer, a released lease.
    for (ifx, mac) in [(11u32, 1u8), (17, 2)] {
        let d = valid(MessageType::Discover, mac);
        let o = s.handle(T0, ifx, &d);
        let yiaddr = o.reply.map(|r| r.payload[16..20].to_vec()).unwrap();
        let sid = if ifx == 11 {
            [10, 0, 0, 0]
        } else {
            [10, 0, 7, 1]
        };
        let mut m = message(MessageType::Request, mac);
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::from(sid)));
        m.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
                yiaddr[0], yiaddr[1], yiaddr[2], yiaddr[3],
            )));
        s.handle(T0, ifx, &encode(&m));
    }
    s.handle(T0, 12, &valid(MessageType::Discover, 3));
    s
}

fn message(t: MessageType, mac: u8) -> Message {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest)
        .set_xid(7)
        .set_chaddr(&[0, 0x1c, 0x73, 0, 0, mac]);
    m.opts_mut().insert(DhcpOption::MessageType(t));
    m.opts_mut()
        .insert(DhcpOption::ClassIdentifier(ARISTA.as_bytes().to_vec()));
    m
}

fn encode(m: &Message) -> Vec<u8> {
    let mut buf = Vec::new();
    m.encode(&mut Encoder::new(&mut buf)).unwrap();
    buf
}

fn valid(t: MessageType, mac: u8) -> Vec<u8> {
    encode(&message(t, mac))
}

/// Offset of the first option (after the magic cookie).
const OPTIONS: usize = 240;

/// Replaces everything after the cookie with `options` (raw TLV bytes).
fn with_raw_options(options: &[u8]) -> Vec<u8> {
    let mut p = valid(MessageType::Discover, 9)[..OPTIONS].to_vec();
    p.extend_from_slice(options);
    p
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let base = valid(MessageType::Discover, 9);
    let mut c: Vec<(String, Vec<u8>)> = Vec::new();
    // Truncated at every length up to the options.
    for n in 0..=OPTIONS {
        c.push((format!("truncated to {n} bytes"), base[..n].to_vec()));
    }
    let class: Vec<u8> = [&[60u8, ARISTA.len() as u8][..], ARISTA.as_bytes()].concat();
    // Option 53 with bad lengths, an option claiming more bytes than remain,
    // zero-length options where a value is required, no End.
    c.push(("53 with length 0".into(), with_raw_options(&[53, 0, 255])));
    c.push((
        "53 with length 2".into(),
        with_raw_options(&[53, 2, 1, 1, 255]),
    ));
    c.push((
        "53 with unknown type 99".into(),
        with_raw_options(&[53, 1, 99, 255]),
    ));
    c.push((
        "option longer than the packet".into(),
        with_raw_options(&[53, 1, 1, 60, 200, b'A', b'r']),
    ));
    c.push((
        "length byte missing at the end".into(),
        with_raw_options(&[53, 1, 1, 61]),
    ));
    c.push((
        "zero-length requested address".into(),
        with_raw_options(&[&[53, 1, 3, 50, 0], &class[..], &[255]].concat()),
    ));
    c.push((
        "server id of 3 bytes".into(),
        with_raw_options(&[&[53, 1, 3, 54, 3, 10, 0, 0], &class[..], &[255]].concat()),
    ));
    c.push(("no options at all".into(), with_raw_options(&[])));
    c.push(("only End".into(), with_raw_options(&[255])));
    c.push(("only pads".into(), with_raw_options(&[0; 64])));
    // Overlong: options running far past 576 bytes, a huge packet.
    let mut long = vec![53, 1, 1];
    for _ in 0..300 {
        long.extend_from_slice(&[224, 255]);
        long.extend_from_slice(&[0xAB; 255]);
    }
    c.push((
        "overlong (77 kB of options)".into(),
        with_raw_options(&long),
    ));
    // Option overload (52) pointing at sname/file full of garbage.
    let mut overload = base.clone();
    overload.truncate(OPTIONS);
    overload.extend_from_slice(&[53, 1, 1, 52, 1, 3, 255]);
    for b in &mut overload[44..236] {
        *b = 0xFF;
    }
    c.push((
        "option overload with garbage in sname/file".into(),
        overload,
    ));
    // hlen nonsense.
    for hlen in [0u8, 17, 255] {
        let mut p = base.clone();
        p[2] = hlen;
        c.push((format!("hlen {hlen}"), p));
    }
    // A reply sent to the server, and a bad op.
    let mut reply = base.clone();
    reply[0] = 2;
    c.push(("BOOTREPLY".into(), reply));
    let mut op = base.clone();
    op[0] = 7;
    c.push(("op 7".into(), op));
    // Wrong magic cookie.
    let mut magic = base.clone();
    magic[236..240].copy_from_slice(&[1, 2, 3, 4]);
    c.push(("wrong magic cookie".into(), magic));
    // Relay loops: too many hops, giaddr = the server itself.
    let mut hops = message(MessageType::Discover, 9);
    hops.set_hops(17).set_giaddr(Ipv4Addr::new(192, 0, 2, 1));
    c.push(("17 relay hops".into(), encode(&hops)));
    let mut own = message(MessageType::Discover, 9);
    own.set_giaddr(Ipv4Addr::new(10, 0, 0, 0));
    c.push(("giaddr is the server (Ethernet1)".into(), encode(&own)));
    // Deterministic random bytes of many lengths, and random bytes behind a
    // valid header and cookie.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..400 {
        let len = (rnd() % 700) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        if i % 2 == 0 && len > OPTIONS {
            p[..OPTIONS].copy_from_slice(&base[..OPTIONS]);
        }
        c.push((format!("random #{i} ({len} bytes)"), p));
    }
    c
}

/// Whether a packet is one the corpus expects an answer to: the random ones
/// behind a valid header could in principle form a valid DISCOVER with an
/// Arista class; everything else must get nothing.
fn must_be_silent(name: &str) -> bool {
    !name.starts_with("random")
}

#[test]
fn the_malformed_corpus_gets_no_reply_and_no_panic_on_any_link_in_any_state() {
    let corpus = corpus();
    assert!(corpus.len() > 600);
    for ifindex in [11, 12, 17, 99] {
        let mut s = server_with_state();
        for (name, bytes) in &corpus {
            let o = s.handle(T0 + 1, ifindex, bytes);
            if must_be_silent(name) {
                assert!(o.reply.is_none(), "{name} on {ifindex} got a reply");
                assert!(o.changes.is_empty(), "{name} on {ifindex} changed leases");
            }
        }
        // Still serving afterwards.
        if ifindex == 12 {
            let o = s.handle(T0 + 2, 12, &valid(MessageType::Discover, 3));
            assert!(
                o.reply.is_some(),
                "Ethernet2 still answers after the corpus"
            );
        }
    }
}

#[test]
fn malformed_packets_are_reported_rate_limited() {
    let mut s = server_with_state();
    let events: usize = corpus()
        .iter()
        .map(|(_, b)| s.handle(T0 + 1, 11, b).events.len())
        .sum();
    assert!(events >= 1, "at least one Malformed event");
    assert!(
        events < 10,
        "rate-limited: {events} events for the whole corpus"
    );
}

#[test]
fn files_found_by_the_fuzzers_do_not_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for sub in [
        "corpus/server_core",
        "corpus/packet_decode",
        "artifacts/server_core",
        "artifacts/packet_decode",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            let mut s = server_with_state();
            let _ = ztps_dhcp::packet::parse(&bytes);
            for ifindex in [11, 17] {
                s.handle(T0, ifindex, &bytes);
            }
            n += 1;
        }
    }
    eprintln!("replayed {n} fuzzer files");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_on_any_link_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700), ifindex in prop_oneof![Just(11u32), Just(12), Just(17), Just(5)]) {
        let mut s = server_with_state();
        let o = s.handle(T0 + 1, ifindex, &bytes);
        if let Some(r) = o.reply {
            prop_assert!(r.payload.len() >= 300);
            prop_assert_eq!(r.ifindex, ifindex);
        }
    }

    #[test]
    fn any_options_behind_a_valid_header_never_panic(options in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut s = server_with_state();
        let _ = s.handle(T0 + 1, 11, &with_raw_options(&options));
    }
}
