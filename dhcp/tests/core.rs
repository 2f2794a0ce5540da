//! The sans-IO core, packet in and reply out, for every RFC 2131 path the server
//! takes, the address plans, leaf replacement and bounded state.

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use std::net::Ipv4Addr;
use std::time::Duration;
use ztps_dhcp::config::HostnameTemplate;
use ztps_dhcp::*;

const ARISTA: &str = "Arista;DCS-7050SX3-48YC8;11.00;JPE20000001";
const URL: &str = "http://10.10.10.11:8080/bootstrap";
const T0: u64 = 1_800_000_000;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn p2p(name: &str, ifindex: u32, spine: &str) -> ServedLink {
    ServedLink {
        name: name.into(),
        ifindex,
        plan: AddressPlan::derive(
            Some(SpineAddress {
                address: ip(spine),
                prefix_len: 31,
            }),
            None,
        )
        .unwrap(),
    }
}

fn pool_link(name: &str, ifindex: u32, first: &str, last: &str) -> ServedLink {
    ServedLink {
        name: name.into(),
        ifindex,
        plan: AddressPlan::derive(
            None,
            Some(&PoolSpec {
                first: ip(first),
                last: ip(last),
                router: ip("10.0.7.1"),
                prefix_len: 24,
            }),
        )
        .unwrap(),
    }
}

fn config() -> ServerConfig {
    let mut class = ClientClass::arista(Some(URL.into()));
    class.dns_servers = vec![ip("10.10.10.53")];
    class.domain_name = Some("fabric.example".into());
    class.ntp_servers = vec![ip("10.10.10.123")];
    class.hostname = Some(HostnameTemplate::new("leaf-{serial}").unwrap());
    ServerConfig {
        classes: vec![class],
        lease_time: Duration::from_secs(3600),
        offer_hold: Duration::from_secs(30),
        decline_quarantine: Duration::from_secs(600),
        replace_after: Duration::from_secs(30),
        max_pending_offers: 64,
        log_interval: Duration::from_secs(60),
        client_packets_per_sec: 8,
        trust_relay_agents: false,
    }
}

fn server() -> Server {
    let mut s = Server::new(config());
    s.set_links([
        p2p("Ethernet1", 11, "10.0.0.0"),
        p2p("Ethernet2", 12, "10.0.0.2"),
    ]);
    s
}

/// A client packet; `f` adjusts it.
fn pkt(t: MessageType, mac: u8, vendor: Option<&str>, f: impl FnOnce(&mut Message)) -> Vec<u8> {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest)
        .set_xid(0xabcd_0000 + mac as u32)
        .set_chaddr(&[0x00, 0x1c, 0x73, 0, 0, mac])
        .set_flags(Flags::default());
    m.opts_mut().insert(DhcpOption::MessageType(t));
    if let Some(v) = vendor {
        m.opts_mut()
            .insert(DhcpOption::ClassIdentifier(v.as_bytes().to_vec()));
    }
    f(&mut m);
    let mut buf = Vec::new();
    m.encode(&mut Encoder::new(&mut buf)).unwrap();
    buf
}

fn opt(m: &mut Message, o: DhcpOption) {
    m.opts_mut().insert(o);
}

fn decode(r: &Reply) -> Message {
    assert!(r.payload.len() >= 300, "reply padded to 300 bytes");
    Message::decode(&mut Decoder::new(&r.payload)).unwrap()
}

fn kind(r: &Reply) -> MessageType {
    decode(r).opts().msg_type().unwrap()
}

/// DISCOVER then REQUEST (SELECTING) for `mac` on ifindex `ifx`: the ACK outcome.
fn lease(s: &mut Server, now: impl Into<Now>, ifx: u32, mac: u8, vendor: &str) -> Outcome {
    let now = now.into();
    let o = s.handle(
        now,
        ifx,
        &pkt(MessageType::Discover, mac, Some(vendor), |_| {}),
    );
    let offer = decode(o.reply.as_ref().expect("an OFFER"));
    let sid = match offer.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(a)) => *a,
        other => panic!("no server id: {other:?}"),
    };
    s.handle(
        now,
        ifx,
        &pkt(MessageType::Request, mac, Some(vendor), |m| {
            opt(m, DhcpOption::ServerIdentifier(sid));
            opt(m, DhcpOption::RequestedIpAddress(offer.yiaddr()));
        }),
    )
}

#[test]
fn discover_on_a_slash31_offers_the_other_address_with_all_options() {
    let mut s = server();
    let o = s.handle(
        T0,
        11,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |m| {
            opt(
                m,
                DhcpOption::ParameterRequestList(vec![
                    OptionCode::SubnetMask,
                    OptionCode::Router,
                    OptionCode::DomainNameServer,
                    OptionCode::DomainName,
                    OptionCode::NtpServers,
                    OptionCode::Hostname,
                    OptionCode::BootfileName,
                ]),
            )
        }),
    );
    assert!(o.changes.is_empty(), "an OFFER stores nothing");
    let r = o.reply.unwrap();
    assert_eq!(r.ifindex, 11);
    assert_eq!(r.source, ip("10.0.0.0"));
    // Issue 11 item 4: on a point-to-point link the reply is broadcast (one
    // neighbour), so nothing ever needs a neighbour entry from chaddr.
    assert_eq!(r.destination, Destination::Broadcast);
    assert_ne!(
        r.destination,
        Destination::Hardware {
            address: ip("10.0.0.1"),
            chaddr: vec![0, 0x1c, 0x73, 0, 0, 1]
        }
    );
    let m = decode(&r);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(m.yiaddr(), ip("10.0.0.1"));
    let o = m.opts();
    assert_eq!(
        o.get(OptionCode::SubnetMask),
        Some(&DhcpOption::SubnetMask(ip("255.255.255.254")))
    );
    assert_eq!(
        o.get(OptionCode::Router),
        Some(&DhcpOption::Router(vec![ip("10.0.0.0")]))
    );
    assert_eq!(
        o.get(OptionCode::BootfileName),
        Some(&DhcpOption::BootfileName(URL.as_bytes().to_vec()))
    );
    assert_eq!(
        o.get(OptionCode::Hostname),
        Some(&DhcpOption::Hostname("leaf-JPE20000001".into()))
    );
    assert_eq!(
        o.get(OptionCode::DomainNameServer),
        Some(&DhcpOption::DomainNameServer(vec![ip("10.10.10.53")]))
    );
    assert_eq!(
        o.get(OptionCode::NtpServers),
        Some(&DhcpOption::NtpServers(vec![ip("10.10.10.123")]))
    );
    assert_eq!(
        o.get(OptionCode::DomainName),
        Some(&DhcpOption::DomainName("fabric.example".into()))
    );
    assert_eq!(
        o.get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(3600))
    );
    assert_eq!(o.get(OptionCode::Renewal), Some(&DhcpOption::Renewal(1800)));
    assert_eq!(
        o.get(OptionCode::Rebinding),
        Some(&DhcpOption::Rebinding(3150))
    );
}

#[test]
fn request_in_selecting_is_acked_and_the_lease_must_be_stored_first() {
    let mut s = server();
    let o = lease(&mut s, T0, 11, 1, ARISTA);
    let r = o.reply.as_ref().unwrap();
    assert_eq!(kind(r), MessageType::Ack);
    assert_eq!(decode(r).yiaddr(), ip("10.0.0.1"));
    match &o.changes[..] {
        [LeaseChange::Put(l)] => {
            assert_eq!(&*l.link, "Ethernet1");
            assert_eq!(l.address, ip("10.0.0.1"));
            assert_eq!(l.expires, T0 + 3600);
            assert_eq!(l.mac.to_string(), "00:1c:73:00:00:01");
            assert_eq!(l.serial(), Some("JPE20000001"));
            assert_eq!(l.model(), Some("DCS-7050SX3-48YC8"));
        }
        other => panic!("expected one Put, got {other:?}"),
    }
    assert!(matches!(
        o.events[..],
        [Event::Acked { renewal: false, .. }]
    ));
    assert_eq!(s.pending_offers(), 0);
}

#[test]
fn request_for_another_server_is_silent_and_drops_the_offer() {
    let mut s = server();
    s.handle(T0, 11, &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}));
    assert_eq!(s.pending_offers(), 1);
    let o = s.handle(
        T0,
        11,
        &pkt(MessageType::Request, 1, Some(ARISTA), |m| {
            opt(m, DhcpOption::ServerIdentifier(ip("192.0.2.99")));
            opt(m, DhcpOption::RequestedIpAddress(ip("10.0.0.1")));
        }),
    );
    assert!(o.reply.is_none() && o.changes.is_empty());
    assert_eq!(s.pending_offers(), 0);
}

#[test]
fn init_reboot_right_address_acked_wrong_address_naked() {
    let mut s = server();
    let ok = s.handle(
        T0,
        11,
        &pkt(MessageType::Request, 1, Some(ARISTA), |m| {
            opt(m, DhcpOption::RequestedIpAddress(ip("10.0.0.1")))
        }),
    );
    assert_eq!(kind(ok.reply.as_ref().unwrap()), MessageType::Ack);
    assert_eq!(ok.changes.len(), 1);
    let bad = s.handle(
        T0,
        12,
        &pkt(MessageType::Request, 2, Some(ARISTA), |m| {
            opt(m, DhcpOption::RequestedIpAddress(ip("10.0.0.1")))
        }),
    );
    let r = bad.reply.unwrap();
    assert_eq!(kind(&r), MessageType::Nak);
    assert_eq!(r.destination, Destination::Broadcast, "NAKs are broadcast");
    assert!(bad.changes.is_empty());
    let m = decode(&r);
    assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(
        matches!(m.opts().get(OptionCode::Message), Some(DhcpOption::Message(t)) if t.contains("not an address of this link"))
    );
}

#[test]
fn renewing_and_rebinding_extend_the_lease() {
    let mut s = server();
    lease(&mut s, T0, 11, 1, ARISTA);
    // RENEWING: unicast, ciaddr set, no server id, no option 50.
    let o = s.handle(
        T0 + 1800,
        11,
        &pkt(MessageType::Request, 1, Some(ARISTA), |m| {
            m.set_ciaddr(ip("10.0.0.1"));
        }),
    );
    let r = o.reply.as_ref().unwrap();
    assert_eq!(kind(r), MessageType::Ack);
    assert_eq!(r.destination, Destination::Unicast(ip("10.0.0.1")));
    assert_eq!(decode(r).ciaddr(), ip("10.0.0.1"));
    assert!(matches!(&o.changes[..], [LeaseChange::Put(l)] if l.expires == T0 + 1800 + 3600));
    assert!(matches!(o.events[..], [Event::Acked { renewal: true, .. }]));
    // REBINDING: broadcast flag, same shape.
    let o = s.handle(
        T0 + 3200,
        11,
        &pkt(MessageType::Request, 1, Some(ARISTA), |m| {
            m.set_ciaddr(ip("10.0.0.1"));
            m.set_flags(Flags::default().set_broadcast());
        }),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
    // A renewal of an address that is not the link's: NAK.
    let o = s.handle(
        T0 + 3300,
        11,
        &pkt(MessageType::Request, 1, Some(ARISTA), |m| {
            m.set_ciaddr(ip("10.0.0.3"));
        }),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Nak);
}

#[test]
fn decline_on_a_pool_link_deletes_the_lease_and_quarantines_the_address() {
    let mut s = Server::new(config());
    s.set_links([pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.2")]);
    lease(&mut s, T0, 17, 1, ARISTA);
    let o = s.handle(
        T0 + 1,
        17,
        &pkt(MessageType::Decline, 1, Some(ARISTA), |m| {
            opt(m, DhcpOption::ServerIdentifier(ip("10.0.7.1")));
            opt(m, DhcpOption::RequestedIpAddress(ip("10.0.7.2")));
        }),
    );
    assert!(o.reply.is_none());
    assert!(matches!(&o.changes[..], [LeaseChange::Delete(_)]));
    assert!(matches!(
        o.events[..],
        [Event::Declined {
            quarantine_secs: 600,
            binding_kept: false,
            ..
        }]
    ));
    let o = s.handle(
        T0 + 2,
        17,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}),
    );
    assert!(o.reply.is_none(), "no offer while quarantined");
    assert!(matches!(o.events[..], [Event::NoAddress { .. }]));
    let o = s.handle(
        T0 + 601,
        17,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Offer);
}

/// Issue 11 item 5: on a point-to-point link a DECLINE from the holder keeps
/// the binding and quarantines the link's only address for seconds, not minutes.
#[test]
fn decline_on_a_point_to_point_link_keeps_the_binding_and_quarantines_briefly() {
    let mut s = server();
    lease(&mut s, T0, 11, 1, ARISTA);
    let o = s.handle(
        T0 + 1,
        11,
        &pkt(MessageType::Decline, 1, Some(ARISTA), |m| {
            opt(m, DhcpOption::ServerIdentifier(ip("10.0.0.0")));
            opt(m, DhcpOption::RequestedIpAddress(ip("10.0.0.1")));
        }),
    );
    assert!(o.changes.is_empty(), "the binding stays on flash");
    assert!(matches!(
        o.events[..],
        [Event::Declined {
            quarantine_secs: 10,
            binding_kept: true,
            ..
        }]
    ));
    assert!(o.events[0].is_state_change());
    assert_eq!(s.leases().count(), 1);
    let o = s.handle(
        T0 + 2,
        11,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}),
    );
    assert!(o.reply.is_none(), "no offer while quarantined");
    let o = s.handle(
        T0 + 12,
        11,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Offer);
}

/// Issue 11 item 5: DECLINE and RELEASE count only from the holder: client id,
/// chaddr and address must all match the binding.
#[test]
fn spoofed_decline_and_release_are_ignored() {
    let mut s = server();
    lease(&mut s, T0, 11, 1, ARISTA);
    let holder_id = ClientId::from_hardware(1, &[0x00, 0x1c, 0x73, 0, 0, 1]);
    // The holder's client id (option 61) from another MAC.
    let spoof = |t: MessageType, mac: u8| {
        let id = holder_id.as_bytes().to_vec();
        pkt(t, mac, Some(ARISTA), move |m| {
            opt(m, DhcpOption::ClientIdentifier(id));
            opt(m, DhcpOption::ServerIdentifier(ip("10.0.0.0")));
            opt(m, DhcpOption::RequestedIpAddress(ip("10.0.0.1")));
            m.set_ciaddr(ip("10.0.0.1"));
        })
    };
    for (i, t) in [MessageType::Decline, MessageType::Release]
        .into_iter()
        .enumerate()
    {
        let o = s.handle(T0 + 1 + i as u64, 11, &spoof(t, 9));
        assert!(
            o.changes.is_empty(),
            "{t:?} from another MAC changes nothing"
        );
        assert!(
            o.events.iter().all(|e| matches!(e, Event::Spoofed { .. })),
            "{:?}",
            o.events
        );
    }
    // The holder's chaddr but another client id: a different client.
    let o = s.handle(
        T0 + 3,
        11,
        &pkt(MessageType::Release, 1, Some(ARISTA), |m| {
            opt(m, DhcpOption::ClientIdentifier(b"\0other".to_vec()));
            m.set_ciaddr(ip("10.0.0.1"));
        }),
    );
    assert!(o.changes.is_empty());
    // The binding stands: another MAC is still refused the address.
    let o = s.handle(
        T0 + 4,
        11,
        &pkt(MessageType::Discover, 9, Some(ARISTA), |_| {}),
    );
    assert!(o.reply.is_none());
    // DECLINE of a merely offered address (no binding) does nothing either.
    let mut p = Server::new(config());
    p.set_links([pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.3")]);
    let o = p.handle(T0, 17, &pkt(MessageType::Discover, 5, Some(ARISTA), |_| {}));
    let offered = decode(o.reply.as_ref().unwrap()).yiaddr();
    let o = p.handle(
        T0,
        17,
        &pkt(MessageType::Decline, 5, Some(ARISTA), |m| {
            opt(m, DhcpOption::RequestedIpAddress(offered));
        }),
    );
    assert!(o.changes.is_empty());
    let o = p.handle(T0, 17, &pkt(MessageType::Discover, 6, Some(ARISTA), |_| {}));
    assert!(o.reply.is_some(), "pool not starved");
}

#[test]
fn release_frees_the_address_but_keeps_the_record() {
    let mut s = server();
    lease(&mut s, T0, 11, 1, ARISTA);
    let o = s.handle(
        T0 + 5,
        11,
        &pkt(MessageType::Release, 1, Some(ARISTA), |m| {
            m.set_ciaddr(ip("10.0.0.1"));
            opt(m, DhcpOption::ServerIdentifier(ip("10.0.0.0")));
        }),
    );
    assert!(o.reply.is_none());
    assert!(matches!(&o.changes[..], [LeaseChange::Put(l)] if l.state == LeaseState::Released));
    // A new leaf may now have it at once: the old one said goodbye.
    let o = lease(
        &mut s,
        T0 + 6,
        11,
        2,
        "Arista;DCS-7050SX3-48YC8;11.00;JPE20000002",
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
    assert!(o.events.iter().any(|e| matches!(e, Event::Replaced { .. })));
}

#[test]
fn inform_gets_options_but_no_lease() {
    let mut s = server();
    let o = s.handle(
        T0,
        11,
        &pkt(MessageType::Inform, 1, Some(ARISTA), |m| {
            m.set_ciaddr(ip("10.0.0.1"));
        }),
    );
    let r = o.reply.unwrap();
    assert_eq!(r.destination, Destination::Unicast(ip("10.0.0.1")));
    let m = decode(&r);
    assert_eq!(m.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(m.opts().get(OptionCode::AddressLeaseTime).is_none());
    assert!(m.opts().get(OptionCode::BootfileName).is_some());
    assert!(o.changes.is_empty());
}

#[test]
fn non_arista_clients_get_nothing_and_one_rate_limited_event() {
    let mut s = server();
    let a = s.handle(
        T0,
        11,
        &pkt(MessageType::Discover, 1, Some("MSFT 5.0"), |_| {}),
    );
    assert!(a.reply.is_none());
    assert!(matches!(
        &a.events[..],
        [Event::IgnoredClass { suppressed: 0, .. }]
    ));
    let b = s.handle(T0 + 1, 11, &pkt(MessageType::Discover, 1, None, |_| {}));
    assert!(b.reply.is_none() && b.events.is_empty(), "rate-limited");
    let c = s.handle(T0 + 61, 11, &pkt(MessageType::Discover, 1, None, |_| {}));
    assert!(matches!(
        &c.events[..],
        [Event::IgnoredClass {
            suppressed: 1,
            vendor_class: None,
            ..
        }]
    ));
}

#[test]
fn unserved_links_and_garbage_get_no_reply() {
    let mut s = server();
    let o = s.handle(T0, 99, &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}));
    assert!(o.reply.is_none());
    assert!(matches!(
        o.events[..],
        [Event::UnservedLink { ifindex: 99, .. }]
    ));
    for junk in [&b""[..], b"\x01", &[0u8; 300], &[0xff; 600]] {
        let o = s.handle(T0, 11, junk);
        assert!(o.reply.is_none() && o.changes.is_empty());
    }
    // A BOOTREPLY sent to the server is not a request.
    let mut reply = pkt(MessageType::Offer, 1, Some(ARISTA), |_| {});
    reply[0] = 2;
    assert!(s.handle(T0 + 100, 11, &reply).reply.is_none());
}

#[test]
fn replaced_leaf_gets_the_links_address_once_the_old_one_is_silent() {
    let mut s = server();
    lease(&mut s, T0, 11, 1, ARISTA);
    let new = "Arista;DCS-7050SX3-48YC8;11.00;JPE29999999";
    // Within replace_after of the old holder's last word: not yet.
    let o = s.handle(
        T0 + 10,
        11,
        &pkt(MessageType::Discover, 2, Some(new), |_| {}),
    );
    assert!(o.reply.is_none());
    assert!(
        matches!(&o.events[..], [Event::HeldByOther { holder_mac, .. }] if holder_mac.to_string() == "00:1c:73:00:00:01")
    );
    // After it: same address, old lease deleted, event names both serials.
    let o = lease(&mut s, T0 + 31, 11, 2, new);
    let r = o.reply.as_ref().unwrap();
    assert_eq!(kind(r), MessageType::Ack);
    assert_eq!(decode(r).yiaddr(), ip("10.0.0.1"));
    assert!(o
        .changes
        .iter()
        .any(|c| matches!(c, LeaseChange::Delete(_))));
    let replaced = o
        .events
        .iter()
        .find_map(|e| match e {
            Event::Replaced {
                old_serial,
                new_serial,
                ..
            } => Some((old_serial.clone(), new_serial.clone())),
            _ => None,
        })
        .expect("a Replaced event");
    assert_eq!(
        replaced,
        (Some("JPE20000001".into()), Some("JPE29999999".into()))
    );
    assert_eq!(s.leases().filter(|l| &*l.link == "Ethernet1").count(), 1);
}

#[test]
fn the_same_leaf_on_two_uplinks_gets_two_leases() {
    let mut s = server();
    // Same identity (option 61) on both links.
    let id = |m: &mut Message| {
        opt(
            m,
            DhcpOption::ClientIdentifier(vec![0, 0x1c, 0x73, 9, 9, 9]),
        )
    };
    for (ifx, sid, addr) in [(11, "10.0.0.0", "10.0.0.1"), (12, "10.0.0.2", "10.0.0.3")] {
        let o = s.handle(T0, ifx, &pkt(MessageType::Discover, 7, Some(ARISTA), id));
        assert_eq!(decode(o.reply.as_ref().unwrap()).yiaddr(), ip(addr));
        let o = s.handle(
            T0,
            ifx,
            &pkt(MessageType::Request, 7, Some(ARISTA), |m| {
                id(m);
                opt(m, DhcpOption::ServerIdentifier(ip(sid)));
                opt(m, DhcpOption::RequestedIpAddress(ip(addr)));
            }),
        );
        assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
    }
    let mut links: Vec<_> = s
        .leases()
        .map(|l| (l.link.clone(), l.client.to_string()))
        .collect();
    links.sort();
    assert_eq!(
        links,
        vec![
            ("Ethernet1".into(), "01:00:1c:73:09:09:09".into()),
            ("Ethernet2".into(), "01:00:1c:73:09:09:09".into())
        ]
    );
}

#[test]
fn reply_destinations_follow_rfc2131_section_4_1() {
    let mut s = Server::new(ServerConfig {
        trust_relay_agents: true,
        ..config()
    });
    s.set_links([
        p2p("Ethernet1", 11, "10.0.0.0"),
        pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.9"),
    ]);
    let relayed = s.handle(
        T0,
        11,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |m| {
            m.set_giaddr(ip("192.0.2.1"));
        }),
    );
    assert_eq!(
        relayed.reply.unwrap().destination,
        Destination::Relay(ip("192.0.2.1"))
    );
    // On a pool link, a client without an address is sent to its chaddr
    // (the socket uses a packet socket, never the neighbour table).
    let pool = s.handle(T0, 17, &pkt(MessageType::Discover, 3, Some(ARISTA), |_| {}));
    assert_eq!(
        pool.reply.unwrap().destination,
        Destination::Hardware {
            address: ip("10.0.7.2"),
            chaddr: vec![0, 0x1c, 0x73, 0, 0, 3]
        }
    );
    let bcast = s.handle(
        T0,
        11,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |m| {
            m.set_flags(Flags::default().set_broadcast());
        }),
    );
    assert_eq!(bcast.reply.unwrap().destination, Destination::Broadcast);
}

#[test]
fn pool_links_give_distinct_addresses_and_reuse_them_per_client() {
    let mut s = Server::new(config());
    s.set_links([pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.4")]);
    let mut got = Vec::new();
    for mac in 1..=3 {
        let o = lease(&mut s, T0, 17, mac, ARISTA);
        got.push(decode(o.reply.as_ref().unwrap()).yiaddr());
    }
    got.sort();
    assert_eq!(got, vec![ip("10.0.7.2"), ip("10.0.7.3"), ip("10.0.7.4")]);
    // Exhausted: a fourth client gets nothing.
    let o = s.handle(T0, 17, &pkt(MessageType::Discover, 4, Some(ARISTA), |_| {}));
    assert!(o.reply.is_none());
    // The second client comes back: same address.
    let o = s.handle(
        T0 + 5,
        17,
        &pkt(MessageType::Discover, 2, Some(ARISTA), |_| {}),
    );
    let again = decode(o.reply.as_ref().unwrap()).yiaddr();
    assert!(got.contains(&again));
    // After every lease expired, a new client reclaims one.
    let o = s.handle(
        T0 + 4000,
        17,
        &pkt(MessageType::Discover, 9, Some(ARISTA), |_| {}),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Offer);
}

#[test]
fn pool_selecting_a_different_address_than_offered_is_naked() {
    let mut s = Server::new(config());
    s.set_links([pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.9")]);
    s.handle(T0, 17, &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}));
    let o = s.handle(
        T0,
        17,
        &pkt(MessageType::Request, 1, Some(ARISTA), |m| {
            opt(m, DhcpOption::ServerIdentifier(ip("10.0.7.1")));
            opt(m, DhcpOption::RequestedIpAddress(ip("10.0.7.9")));
        }),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Nak);
}

#[test]
fn offers_expire_and_a_flood_of_random_macs_stays_bounded() {
    let mut s = Server::new(config());
    s.set_links([
        pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.250"),
        p2p("Ethernet1", 11, "10.0.0.0"),
    ]);
    for i in 0..10_000u32 {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootRequest).set_xid(i).set_chaddr(&[
            2,
            0,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
            1,
        ]);
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Discover));
        m.opts_mut()
            .insert(DhcpOption::ClassIdentifier(ARISTA.as_bytes().to_vec()));
        let mut buf = Vec::new();
        m.encode(&mut Encoder::new(&mut buf)).unwrap();
        s.handle(T0, 17, &buf);
        assert!(s.pending_offers() <= 64, "offers capped");
    }
    // A real leaf on the pool link is still offered an address (oldest offer evicted).
    let o = lease(&mut s, T0, 17, 200, ARISTA);
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
    // And on the point-to-point link, untouched by the flood.
    let o = lease(&mut s, T0, 11, 201, ARISTA);
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
    // Offers go away after the hold time.
    s.tick(T0 + 31);
    assert_eq!(s.pending_offers(), 0);
}

#[test]
fn changing_the_served_links_keeps_leases() {
    let mut s = server();
    lease(&mut s, T0, 11, 1, ARISTA);
    s.set_links([p2p("Ethernet2", 12, "10.0.0.2")]);
    let o = s.handle(T0, 11, &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}));
    assert!(o.reply.is_none(), "Ethernet1 no longer served");
    assert_eq!(s.leases().count(), 1, "its lease is kept");
    // Back, with a new ifindex (the kernel renumbered it): same address, renewal.
    s.add_link(p2p("Ethernet1", 21, "10.0.0.0"));
    let o = s.handle(
        T0 + 10,
        21,
        &pkt(MessageType::Request, 1, Some(ARISTA), |m| {
            m.set_ciaddr(ip("10.0.0.1"));
        }),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
    assert!(matches!(o.events[..], [Event::Acked { renewal: true, .. }]));
    s.remove_link("Ethernet1");
    assert_eq!(s.links().count(), 1);
}

#[test]
fn leases_loaded_at_start_are_honoured() {
    let mut a = server();
    let o = lease(&mut a, T0, 11, 1, ARISTA);
    let stored: Vec<Lease> = o
        .changes
        .into_iter()
        .filter_map(|c| match c {
            LeaseChange::Put(l) => Some(l),
            _ => None,
        })
        .collect();
    let mut b = server();
    b.load_leases(T0, stored);
    // Another leaf asks at once: the loaded holder counts as recently heard.
    let o = b.handle(
        T0 + 5,
        11,
        &pkt(MessageType::Discover, 2, Some(ARISTA), |_| {}),
    );
    assert!(o.reply.is_none());
}

/// A renewal (RENEWING: ciaddr set, no server id) from `mac` on `ifx`.
fn renew(s: &mut Server, now: impl Into<Now>, ifx: u32, mac: u8, addr: &str) -> Outcome {
    let addr = ip(addr);
    s.handle(
        now,
        ifx,
        &pkt(MessageType::Request, mac, Some(ARISTA), |m| {
            m.set_ciaddr(addr);
        }),
    )
}

fn at(mono_secs: u64, wall: u64) -> Now {
    Now {
        mono: Mono(mono_secs * 1000),
        wall,
    }
}

/// Issue 11 item 2: a renewal flood from one lease holder writes nothing, is
/// answered only a few times a second, and is counted, not logged.
#[test]
fn a_renewal_flood_writes_nothing_and_is_rate_limited() {
    let mut s = server();
    let o = lease(&mut s, T0, 11, 1, ARISTA);
    // Until the committer says the lease is on storage, a renewal writes it
    // again: an ACK never rests on a record that may not be durable.
    let again = renew(&mut s, T0, 11, 1, "10.0.0.1");
    assert!(matches!(&again.changes[..], [LeaseChange::Put(_)]));
    s.mark_stored(&again.changes);
    let _ = o;
    let mut acks = 0;
    for i in 0..100_000u64 {
        // 100,000 REQUESTs within 5 s.
        let now = Now {
            mono: Mono(T0 * 1000 + 10 + i / 20),
            wall: T0 + i / 20_000,
        };
        let o = renew(&mut s, now, 11, 1, "10.0.0.1");
        assert!(o.changes.is_empty(), "renewal {i} wrote a change");
        if let Some(r) = &o.reply {
            assert_eq!(kind(r), MessageType::Ack);
            acks += 1;
            assert!(
                o.events.iter().all(|e| !e.is_state_change()),
                "{:?}",
                o.events
            );
        }
    }
    assert!(acks <= 8 * 6, "{acks} ACKs in 5 s");
    assert!(acks >= 8 * 4, "{acks}: the holder is still answered");
    let (_, c) = s.link_counters().find(|(l, _)| *l == "Ethernet1").unwrap();
    assert_eq!(c.acks, acks + 2);
    assert_eq!(c.rate_limited, 100_000 - acks);
    // A renewal after a quarter of the lease time writes the new expiry.
    let o = renew(&mut s, T0 + 3600 / 4 + 1, 11, 1, "10.0.0.1");
    assert!(
        matches!(&o.changes[..], [LeaseChange::Put(l)] if l.expires == T0 + 901 + 3600),
        "{:?}",
        o.changes
    );
    // And one link's flood does not touch another link's client.
    let o = lease(&mut s, T0 + 901, 12, 2, ARISTA);
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
}

/// Issue 11 item 9: pending offers are capped per link; a flood on one link
/// evicts none of another link's offers.
#[test]
fn an_offer_flood_on_one_link_costs_another_link_nothing() {
    let mut s = Server::new(config());
    s.set_links([
        pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.250"),
        pool_link("Ethernet8", 18, "10.0.7.2", "10.0.7.250"),
    ]);
    let o = s.handle(T0, 18, &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}));
    let offered = decode(o.reply.as_ref().unwrap()).yiaddr();
    for i in 0..5_000u32 {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootRequest).set_xid(i).set_chaddr(&[
            2,
            0,
            0,
            (i >> 8) as u8,
            i as u8,
            7,
        ]);
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Discover));
        m.opts_mut()
            .insert(DhcpOption::ClassIdentifier(ARISTA.as_bytes().to_vec()));
        let mut buf = Vec::new();
        m.encode(&mut Encoder::new(&mut buf)).unwrap();
        s.handle(T0, 17, &buf);
    }
    assert_eq!(s.link_summary("Ethernet7", T0).unwrap().pending_offers, 64);
    let o = s.handle(
        T0 + 1,
        18,
        &pkt(MessageType::Request, 1, Some(ARISTA), |m| {
            opt(m, DhcpOption::ServerIdentifier(ip("10.0.7.1")));
            opt(m, DhcpOption::RequestedIpAddress(offered));
        }),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
}

/// Issue 11 item 3: a lease renewed while the clock says 1970 is stamped with
/// the floor and marked as such, so it does not read as expired once the clock
/// is fixed, and no other MAC gets the address. The first renewal with a
/// believed clock writes it again with true times.
#[test]
fn a_clock_at_1970_neither_expires_nor_shortens_leases() {
    let mut s = server();
    // Booted in 1970: mono 100 s since boot, wall 100.
    let o = lease(&mut s, at(100, 100), 11, 1, ARISTA);
    let stored = match &o.changes[..] {
        [LeaseChange::Put(l)] => l.clone(),
        other => panic!("{other:?}"),
    };
    assert!(stored.updated >= ztps_dhcp::time::NOT_BEFORE);
    assert!(stored.expires >= ztps_dhcp::time::NOT_BEFORE + 3600);
    assert!(!stored.clock_trusted, "stamped from a clock not believed");
    // Restart after NTP synced, the real date a month past the floor: the
    // record's stamp means nothing, so it gets a whole lease time.
    let mut b = server();
    let wall = stored.updated + 30 * 86_400;
    b.load_leases(at(1300, wall), [stored.clone()]);
    let key = stored.key();
    let left = b.lease_remaining(&key, at(1300, wall));
    assert_eq!(left, Duration::from_secs(3600));
    // Another MAC is refused while the holder is active and not silent.
    let o = renew(&mut b, at(1301, wall + 1), 11, 1, "10.0.0.1");
    assert!(
        matches!(&o.changes[..], [LeaseChange::Put(l)] if l.clock_trusted && l.updated == wall + 1),
        "{:?}",
        o.changes
    );
    let o = b.handle(
        at(1302, wall + 2),
        11,
        &pkt(MessageType::Discover, 9, Some(ARISTA), |_| {}),
    );
    assert!(o.reply.is_none());
}

/// Issue 11 item 3: a record written while the clock ran years ahead lasts at
/// most one lease time after a restart with the right clock, and the RMA leaf
/// is not refused beyond replace-after.
#[test]
fn a_record_from_a_clock_years_ahead_does_not_stick() {
    let mut s = server();
    let y2041 = T0 + 15 * 365 * 86_400;
    let o = lease(&mut s, at(50, y2041), 11, 1, ARISTA);
    let stored = match &o.changes[..] {
        [LeaseChange::Put(l)] => l.clone(),
        other => panic!("{other:?}"),
    };
    let mut b = server();
    b.load_leases(at(100, T0), [stored.clone()]);
    let left = b.lease_remaining(&stored.key(), at(100, T0));
    assert!(left <= Duration::from_secs(3600), "{left:?}");
    // The holder stays silent 31 s: a replaced leaf takes the link's address.
    let o = lease(
        &mut b,
        at(131, T0 + 31),
        11,
        2,
        "Arista;DCS-7050SX3-48YC8;11.00;JPE20000002",
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
}

/// Issue 11 item 3: a step of the wall clock changes no timer: a DECLINE
/// quarantine of 600 s lasts 600 s of monotonic time whatever the wall does.
#[test]
fn a_wall_clock_step_changes_no_timer() {
    let mut s = Server::new(config());
    s.set_links([pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.2")]);
    lease(&mut s, at(10, T0), 17, 1, ARISTA);
    s.handle(
        at(11, T0 + 1),
        17,
        &pkt(MessageType::Decline, 1, Some(ARISTA), |m| {
            opt(m, DhcpOption::RequestedIpAddress(ip("10.0.7.2")));
        }),
    );
    // The wall clock steps back a day: the quarantine still ends 600 s later.
    let back = T0 - 86_400;
    let o = s.handle(
        at(600, back),
        17,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}),
    );
    assert!(o.reply.is_none());
    let o = s.handle(
        at(612, back + 12),
        17,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Offer);
    // And a step forward of a year expires nothing early: the offer holds 30 s.
    s.tick(at(613, T0 + 365 * 86_400));
    assert_eq!(s.pending_offers(), 1);
    s.tick(at(643, T0 + 365 * 86_400 + 30));
    assert_eq!(s.pending_offers(), 0);
}

/// Issue 11 item 14: relay fields from a directly attached client are ignored
/// (no relay destination, no option 82 echo), and INFORM is answered only for
/// an address on the ingress link.
#[test]
fn relay_fields_from_direct_clients_are_ignored_and_inform_stays_on_link() {
    let mut s = server();
    let o = s.handle(
        T0,
        11,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |m| {
            m.set_giaddr(ip("192.0.2.1"));
            opt(m, DhcpOption::RelayAgentInformation(Default::default()));
        }),
    );
    let r = o.reply.expect("answered as a direct client");
    assert_eq!(r.destination, Destination::Broadcast);
    let m = decode(&r);
    assert_eq!(m.giaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(m.opts().get(OptionCode::RelayAgentInformation).is_none());
    // On a pool link, a relay on the link's own subnet is honoured (perfdhcp
    // and real relays on a shared segment); an off-link giaddr is not.
    s.add_link(pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.9"));
    for (giaddr, relayed) in [("10.0.7.20", true), ("192.0.2.1", false)] {
        let o = s.handle(
            T0,
            17,
            &pkt(MessageType::Discover, 4, Some(ARISTA), |m| {
                m.set_giaddr(ip(giaddr));
            }),
        );
        let d = o.reply.expect("answered").destination;
        assert_eq!(
            d == Destination::Relay(ip(giaddr)),
            relayed,
            "{giaddr}: {d:?}"
        );
    }
    // A loopback giaddr is never a relay: no reply at all.
    let o = s.handle(
        T0,
        11,
        &pkt(MessageType::Discover, 1, Some(ARISTA), |m| {
            m.set_giaddr(ip("127.0.0.1"));
        }),
    );
    assert!(o.reply.is_none());
    for off_link in ["192.0.2.7", "10.0.0.3", "10.0.0.0"] {
        let o = s.handle(
            T0,
            11,
            &pkt(MessageType::Inform, 2, Some(ARISTA), |m| {
                m.set_ciaddr(ip(off_link));
            }),
        );
        assert!(o.reply.is_none(), "INFORM from {off_link} answered");
    }
    let o = s.handle(
        T0,
        11,
        &pkt(MessageType::Inform, 2, Some(ARISTA), |m| {
            m.set_ciaddr(ip("10.0.0.1"));
        }),
    );
    assert!(o.reply.is_some());
}

/// Issue 11 item 6 and issue 10: counters and summaries per link, and only
/// state changes classified for the log.
#[test]
fn link_counters_and_summaries_follow_the_traffic() {
    let mut s = server();
    let o = s.handle(T0, 11, &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}));
    assert!(
        !o.events[0].is_state_change(),
        "an OFFER is not logged at info"
    );
    let o = lease(&mut s, T0, 11, 1, ARISTA);
    assert!(
        o.events.iter().all(Event::is_state_change),
        "a new lease is"
    );
    let o = renew(&mut s, T0 + 1, 11, 1, "10.0.0.1");
    assert!(o.events.iter().all(|e| !e.is_state_change()));
    let sum = s.link_summary("Ethernet1", T0 + 1).unwrap();
    assert_eq!((sum.leases, sum.active), (1, 1));
    assert_eq!(sum.latest.as_ref().unwrap().address, ip("10.0.0.1"));
    assert!(sum.latest_remaining >= Duration::from_secs(3599));
    let c = *s
        .link_counters()
        .find(|(l, _)| *l == "Ethernet1")
        .unwrap()
        .1;
    assert_eq!((c.offers, c.acks, c.renewals), (2, 2, 1));
    assert_eq!(s.lease_counts(), (1, 1));
    // Expiry is noticed by the timer heap, with no packet.
    s.tick(T0 + 1 + 3601);
    assert_eq!(s.lease_counts(), (1, 0));
    assert_eq!(s.link_summary("Ethernet1", T0 + 3602).unwrap().active, 0);
    assert_eq!(s.lease_links().collect::<Vec<_>>(), vec!["Ethernet1"]);
}

/// A REQUEST (SELECTING: server id `sid`, requested address `addr`) from a
/// client whose MAC is built from `n`, so a burst has distinct clients.
fn selecting_from(n: u32, sid: &str, addr: &str) -> Vec<u8> {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest).set_xid(n).set_chaddr(&[
        2,
        0,
        (n >> 16) as u8,
        (n >> 8) as u8,
        n as u8,
        7,
    ]);
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Request));
    m.opts_mut()
        .insert(DhcpOption::ClassIdentifier(ARISTA.as_bytes().to_vec()));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(ip(sid)));
    m.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(ip(addr)));
    let mut buf = Vec::new();
    m.encode(&mut Encoder::new(&mut buf)).unwrap();
    buf
}

fn naks(s: &Server, link: &str) -> u64 {
    s.link_counters()
        .find(|(l, _)| *l == link)
        .map(|(_, c)| c.naks)
        .unwrap()
}

/// Issue 11 item 6 (benchmark avalanche): a burst of NAKs is counted exactly
/// but logged a handful of times, per link and reason: the first at once, then
/// one summary per log interval saying how many were suppressed; a burst of one
/// reason does not hide the first NAK of another.
#[test]
fn a_nak_burst_is_counted_exactly_and_logged_rate_limited_per_link_and_reason() {
    let mut s = Server::new(config());
    s.set_links([pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.9")]);
    let mut logged = Vec::new();
    for i in 0..10_000u32 {
        // 10,000 REQUESTs in 5 s, each for an address off the link.
        let now = at(T0 + u64::from(i) / 2000, T0);
        let o = s.handle(now, 17, &selecting_from(i, "10.0.7.1", "10.0.8.5"));
        assert_eq!(kind(o.reply.as_ref().expect("a NAK")), MessageType::Nak);
        logged.extend(o.events.into_iter().filter(Event::is_state_change));
        if i == 5000 {
            // Another reason in the middle of the burst is still logged.
            s.handle(
                now,
                17,
                &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}),
            );
            let o = s.handle(
                now,
                17,
                &pkt(MessageType::Request, 1, Some(ARISTA), |m| {
                    opt(m, DhcpOption::ServerIdentifier(ip("10.0.7.1")));
                    opt(m, DhcpOption::RequestedIpAddress(ip("10.0.7.9")));
                }),
            );
            assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Nak);
            logged.extend(o.events.into_iter().filter(Event::is_state_change));
        }
    }
    assert_eq!(naks(&s, "Ethernet7"), 10_001, "the counter stays exact");
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(
        matches!(&logged[0], Event::Naked { reason, .. } if reason.contains("not an address of this link")),
        "{logged:?}"
    );
    assert!(
        matches!(&logged[1], Event::Naked { reason, .. } if reason.contains("not the address offered")),
        "{logged:?}"
    );
    // After the log interval, one summary line says how many were suppressed.
    let o = s.handle(
        at(T0 + 61, T0 + 61),
        17,
        &selecting_from(20_000, "10.0.7.1", "10.0.8.5"),
    );
    assert!(
        matches!(&o.events[..], [Event::Naked { reason, .. }] if reason.contains("(9999 more since last report)")),
        "{:?}",
        o.events
    );
}

/// A REQUEST in SELECTING whose offer was evicted by the per-link cap, or
/// expired, is ACKed when its address is free (as ISC dhcpd and Kea do).
#[test]
fn selecting_after_an_evicted_or_expired_offer_is_acked_when_the_address_is_free() {
    let mut cfg = config();
    cfg.max_pending_offers = 2;
    let mut s = Server::new(cfg);
    s.set_links([pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.9")]);
    let o = s.handle(T0, 17, &pkt(MessageType::Discover, 1, Some(ARISTA), |_| {}));
    let first = decode(o.reply.as_ref().unwrap()).yiaddr();
    // Two more clients evict client 1's offer.
    for mac in [2, 3] {
        s.handle(
            T0,
            17,
            &pkt(MessageType::Discover, mac, Some(ARISTA), |_| {}),
        );
    }
    assert_eq!(s.pending_offers(), 2);
    let o = s.handle(
        T0,
        17,
        &pkt(MessageType::Request, 1, Some(ARISTA), |m| {
            opt(m, DhcpOption::ServerIdentifier(ip("10.0.7.1")));
            opt(m, DhcpOption::RequestedIpAddress(first));
        }),
    );
    let r = o.reply.as_ref().expect("an ACK");
    assert_eq!(kind(r), MessageType::Ack);
    assert_eq!(decode(r).yiaddr(), first);
    assert!(matches!(&o.changes[..], [LeaseChange::Put(l)] if l.address == first));
    // An offer that expired: the same.
    let o = s.handle(T0, 17, &pkt(MessageType::Discover, 4, Some(ARISTA), |_| {}));
    let fourth = decode(o.reply.as_ref().unwrap()).yiaddr();
    let o = s.handle(
        T0 + 31,
        17,
        &pkt(MessageType::Request, 4, Some(ARISTA), |m| {
            opt(m, DhcpOption::ServerIdentifier(ip("10.0.7.1")));
            opt(m, DhcpOption::RequestedIpAddress(fourth));
        }),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
    assert_eq!(decode(o.reply.as_ref().unwrap()).yiaddr(), fourth);
}

/// Without an offer on record, every other NAK rule still holds: another
/// client's address (bound or offered), off the link, quarantined, and new
/// leases refused on read-only flash.
#[test]
fn selecting_without_an_offer_is_still_naked_for_unavailable_addresses() {
    let mut s = Server::new(config());
    s.set_links([pool_link("Ethernet7", 17, "10.0.7.2", "10.0.7.9")]);
    let request = |s: &mut Server, now: u64, mac: u8, addr: &str| {
        let o = s.handle(
            now,
            17,
            &pkt(MessageType::Request, mac, Some(ARISTA), |m| {
                opt(m, DhcpOption::ServerIdentifier(ip("10.0.7.1")));
                opt(m, DhcpOption::RequestedIpAddress(ip(addr)));
            }),
        );
        assert!(o.changes.is_empty(), "{:?}", o.changes);
        kind(o.reply.as_ref().expect("a reply"))
    };
    // Bound to client 1.
    let o = lease(&mut s, T0, 17, 1, ARISTA);
    let bound = decode(o.reply.as_ref().unwrap()).yiaddr().to_string();
    assert_eq!(request(&mut s, T0 + 1, 9, &bound), MessageType::Nak);
    // Offered to client 2.
    let o = s.handle(T0, 17, &pkt(MessageType::Discover, 2, Some(ARISTA), |_| {}));
    let offered = decode(o.reply.as_ref().unwrap()).yiaddr().to_string();
    assert_eq!(request(&mut s, T0 + 1, 10, &offered), MessageType::Nak);
    // Off the link.
    assert_eq!(request(&mut s, T0 + 1, 11, "10.0.8.5"), MessageType::Nak);
    // Quarantined after client 3's DECLINE.
    let o = lease(&mut s, T0 + 1, 17, 3, ARISTA);
    let declined = decode(o.reply.as_ref().unwrap()).yiaddr();
    s.handle(
        T0 + 1,
        17,
        &pkt(MessageType::Decline, 3, Some(ARISTA), |m| {
            opt(m, DhcpOption::ServerIdentifier(ip("10.0.7.1")));
            opt(m, DhcpOption::RequestedIpAddress(declined));
        }),
    );
    assert_eq!(
        request(&mut s, T0 + 2, 12, &declined.to_string()),
        MessageType::Nak
    );
    // A free address while new leases are refused.
    s.refuse_new_leases(Some("lease file is read-only".into()));
    assert_eq!(request(&mut s, T0 + 2, 13, "10.0.7.9"), MessageType::Nak);
    // Once they are allowed again, the same free address is granted.
    s.refuse_new_leases(None);
    let o = s.handle(
        T0 + 2,
        17,
        &pkt(MessageType::Request, 13, Some(ARISTA), |m| {
            opt(m, DhcpOption::ServerIdentifier(ip("10.0.7.1")));
            opt(m, DhcpOption::RequestedIpAddress(ip("10.0.7.9")));
        }),
    );
    assert_eq!(kind(o.reply.as_ref().unwrap()), MessageType::Ack);
}
