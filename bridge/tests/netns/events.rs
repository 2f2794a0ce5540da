//! `LinkEvents`: link and address changes, and recovery from overruns.

use std::{collections::BTreeSet, net::Ipv4Addr, time::Duration};

use ztps_bridge::{Ipv4AddrInfo, LinkEvents, NetEvent, Netlink};

use crate::common::{in_new_netns, within, Fixture};

/// Reads events until one satisfies `want`; returns it and those before it.
/// Fails the test after 10 s or 10 000 events.
async fn wait_for(
    events: &mut LinkEvents,
    what: &str,
    want: impl Fn(&NetEvent) -> bool,
) -> (NetEvent, Vec<NetEvent>) {
    let mut before = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for _ in 0..10_000 {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {before:#?}"))
            .unwrap_or_else(|e| panic!("event stream failed waiting for {what}: {e}"));
        if want(&event) {
            return (event, before);
        }
        before.push(event);
    }
    panic!("no {what} in 10 000 events");
}

fn link_named<'a>(event: &'a NetEvent, name: &str) -> Option<&'a ztps_bridge::LinkInfo> {
    match event {
        NetEvent::LinkChanged(link) if link.name == name => Some(link),
        _ => None,
    }
}

#[test]
fn veth_up_down_and_removal_arrive_as_link_events() {
    in_new_netns(|| async {
        let mut events = LinkEvents::subscribe().expect("subscribe");
        let fixture = Fixture::new();

        fixture.add_veth("et3", "leaf3").await;
        let (event, _) = wait_for(&mut events, "et3 created", |e| {
            link_named(e, "et3").is_some()
        })
        .await;
        let created = link_named(&event, "et3").unwrap().clone();
        assert_eq!(created.index, fixture.index("et3").await);
        assert_eq!(created.kind.as_deref(), Some("veth"));
        assert!(!created.up && !created.carrier, "{created:?}");

        fixture.up("et3").await;
        let (event, _) = wait_for(&mut events, "et3 up", |e| {
            link_named(e, "et3").is_some_and(|l| l.up)
        })
        .await;
        assert!(
            !link_named(&event, "et3").unwrap().carrier,
            "peer still down: {event:?}"
        );

        fixture.up("leaf3").await;
        wait_for(&mut events, "et3 carrier", |e| {
            link_named(e, "et3").is_some_and(|l| l.up && l.carrier)
        })
        .await;

        fixture.down("et3").await;
        wait_for(&mut events, "et3 down", |e| {
            link_named(e, "et3").is_some_and(|l| !l.up)
        })
        .await;

        fixture.delete("et3").await;
        let (event, _) = wait_for(
            &mut events,
            "et3 removed",
            |e| matches!(e, NetEvent::LinkRemoved { name, .. } if name == "et3"),
        )
        .await;
        assert_eq!(
            event,
            NetEvent::LinkRemoved {
                index: created.index,
                name: "et3".into()
            }
        );
    });
}

#[test]
fn address_add_and_remove_arrive_as_address_events() {
    in_new_netns(|| async {
        let mut events = LinkEvents::subscribe().expect("subscribe");
        let fixture = Fixture::new();
        fixture.add_veth("et3", "leaf3").await;
        let index = fixture.index("et3").await;
        let expected = Ipv4AddrInfo {
            index,
            address: Ipv4Addr::new(10, 0, 0, 0),
            prefix_len: 31,
            peer: None,
        };

        fixture.add_address("et3", expected.address, 31).await;
        let (added, _) = wait_for(&mut events, "address added", |e| {
            matches!(e, NetEvent::AddressAdded(_))
        })
        .await;
        assert_eq!(added, NetEvent::AddressAdded(expected.clone()));

        fixture.delete_address("et3", expected.address, 31).await;
        let (removed, _) = wait_for(&mut events, "address removed", |e| {
            matches!(e, NetEvent::AddressRemoved(_))
        })
        .await;
        assert_eq!(removed, NetEvent::AddressRemoved(expected));
    });
}

#[test]
fn a_port_leaving_the_bridge_is_not_a_link_removal() {
    in_new_netns(|| async {
        let fixture = Fixture::new();
        fixture.add_bridge("br0").await;
        fixture.add_veth("vnet0", "vm-side").await;
        fixture.up("vnet0").await;
        let mut events = LinkEvents::subscribe().expect("subscribe");

        // The kernel announces joining and leaving with AF_BRIDGE NEWLINK and
        // DELLINK messages about the port.
        fixture.set_master("vnet0", "br0").await;
        fixture.no_master("vnet0").await;
        // A marker: everything before it has been delivered.
        fixture.add_veth("marker", "marker-peer").await;
        let (_, before) =
            wait_for(&mut events, "marker", |e| link_named(e, "marker").is_some()).await;

        let removals: Vec<&NetEvent> = before
            .iter()
            .filter(|e| matches!(e, NetEvent::LinkRemoved { .. }))
            .collect();
        assert!(removals.is_empty(), "spurious removals: {removals:#?}");
        assert!(
            before.iter().any(|e| link_named(e, "vnet0").is_some()),
            "vnet0's change was not reported at all: {before:#?}"
        );
        assert!(fixture.exists("vnet0").await);
    });
}

#[test]
fn overrun_yields_resynced_with_the_full_state_then_continues() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let fixture = Fixture::new();
        let mut events = LinkEvents::subscribe().expect("subscribe");
        let granted = events.set_recv_buffer_size(1).expect("shrink buffer");
        assert!(granted < 10_000, "kernel granted {granted} bytes");

        // Far more notifications than the buffer holds, none read.
        const PAIRS: usize = 60;
        for i in 0..PAIRS {
            fixture.add_veth(&format!("a{i}"), &format!("b{i}")).await;
        }
        for i in (0..PAIRS).step_by(2) {
            fixture.delete(&format!("a{i}")).await; // takes b{i} with it
        }
        fixture.up("a1").await;
        fixture
            .add_address("a1", Ipv4Addr::new(10, 0, 0, 0), 31)
            .await;

        // recv reports the overrun before any queued message.
        let first = within("first event", events.next())
            .await
            .expect("next after overrun");
        let NetEvent::Resynced { links, addresses } = first else {
            panic!("expected Resynced first, got {first:?}");
        };

        let mut expected: BTreeSet<String> = BTreeSet::from(["lo".to_owned()]);
        for i in (1..PAIRS).step_by(2) {
            expected.insert(format!("a{i}"));
            expected.insert(format!("b{i}"));
        }
        let names: BTreeSet<String> = links.iter().map(|l| l.name.clone()).collect();
        assert_eq!(names, expected);
        let a1 = links.iter().find(|l| l.name == "a1").expect("a1");
        assert!(a1.up, "{a1:?}");
        assert_eq!(
            addresses,
            vec![Ipv4AddrInfo {
                index: a1.index,
                address: Ipv4Addr::new(10, 0, 0, 0),
                prefix_len: 31,
                peer: None
            }]
        );
        assert_eq!(links, netlink.links().await.expect("links"));
        assert_eq!(
            addresses,
            netlink.ipv4_addresses().await.expect("addresses")
        );

        // It keeps working, and replays nothing stale from before the overrun.
        events.set_recv_buffer_size(1 << 20).expect("grow buffer");
        fixture.add_veth("after", "after-peer").await;
        let (_, before) = wait_for(&mut events, "after created", |e| {
            link_named(e, "after").is_some()
        })
        .await;
        for event in &before {
            assert!(
                matches!(event, NetEvent::LinkChanged(l) if l.name.starts_with("after")),
                "stale or unexpected event after the resync: {event:?}"
            );
        }
        fixture.delete("after").await;
        wait_for(
            &mut events,
            "after removed",
            |e| matches!(e, NetEvent::LinkRemoved { name, .. } if name == "after"),
        )
        .await;
    });
}
