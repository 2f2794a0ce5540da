//! `Netlink::ensure_bridge`: create, converge, refuse, leave alone.

use std::net::Ipv4Addr;

use ztps_bridge::{BridgeError, BridgeSpec, Ipv4AddrInfo, Netlink};

use crate::common::{drop_net_admin_on_this_thread, in_new_netns, within, Fixture};

const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 10, 10, 1);

fn spec() -> BridgeSpec {
    BridgeSpec {
        name: "br0".into(),
        address: GATEWAY,
        prefix_len: 24,
        mtu: None,
    }
}

async fn addresses_on(netlink: &Netlink, index: u32) -> Vec<Ipv4AddrInfo> {
    let mut all = within("address list", netlink.ipv4_addresses())
        .await
        .expect("addresses");
    all.retain(|a| a.index == index);
    all
}

#[test]
fn missing_bridge_is_created_up_with_its_address() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let fixture = Fixture::new();

        let report = within("ensure_bridge", netlink.ensure_bridge(&spec()))
            .await
            .expect("ensure");

        assert!(
            report.created && report.brought_up && report.address_added,
            "{report:?}"
        );
        assert!(!report.mtu_changed, "no mtu asked: {report:?}");
        assert!(report.changed());
        let line = report.to_string();
        assert!(line.starts_with("bridge br0 (ifindex "), "{line}");
        assert!(
            line.ends_with("created, brought up, added 10.10.10.1/24"),
            "{line}"
        );

        // Our own view...
        let links = within("links", netlink.links()).await.expect("links");
        let br0 = links.iter().find(|l| l.name == "br0").expect("br0 listed");
        assert_eq!(br0.index, report.index);
        assert_eq!(br0.kind.as_deref(), Some("bridge"));
        assert!(br0.up);
        assert!(br0.mac.is_some());
        assert_eq!(
            addresses_on(&netlink, br0.index).await,
            vec![Ipv4AddrInfo {
                index: br0.index,
                address: GATEWAY,
                prefix_len: 24,
                peer: None
            }]
        );
        // ...and the kernel's, read independently.
        assert_eq!(fixture.kind("br0").await.as_deref(), Some("bridge"));
        assert!(fixture.is_up("br0").await);
        assert_eq!(fixture.mtu("br0").await, 1500);
    });
}

#[test]
fn second_run_changes_nothing() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let spec = BridgeSpec {
            mtu: Some(9000),
            ..spec()
        };
        let first = within("first run", netlink.ensure_bridge(&spec))
            .await
            .expect("first");
        assert!(first.changed());
        let links_before = netlink.links().await.expect("links");
        let addresses_before = netlink.ipv4_addresses().await.expect("addresses");

        let second = within("second run", netlink.ensure_bridge(&spec))
            .await
            .expect("second");

        assert!(!second.changed(), "{second:?}");
        assert!(
            !(second.created || second.mtu_changed || second.brought_up || second.address_added)
        );
        assert_eq!(second.index, first.index);
        assert_eq!(
            second.to_string(),
            format!(
                "bridge br0 (ifindex {}): already up with 10.10.10.1/24, mtu 9000; nothing changed",
                first.index
            )
        );
        assert_eq!(netlink.links().await.expect("links"), links_before);
        assert_eq!(
            netlink.ipv4_addresses().await.expect("addresses"),
            addresses_before
        );
    });
}

#[test]
fn existing_down_bridge_is_brought_up_and_other_addresses_stay() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let fixture = Fixture::new();
        fixture.add_bridge("br0").await;
        // Another address, and the same address with another prefix length:
        // neither is the spec's, both must stay.
        fixture
            .add_address("br0", Ipv4Addr::new(192, 0, 2, 1), 24)
            .await;
        fixture.add_address("br0", GATEWAY, 16).await;
        let index = fixture.index("br0").await;

        let report = within("ensure_bridge", netlink.ensure_bridge(&spec()))
            .await
            .expect("ensure");

        assert!(
            !report.created && report.brought_up && report.address_added,
            "{report:?}"
        );
        assert_eq!(report.index, index, "the existing bridge is reused");
        assert!(fixture.is_up("br0").await);
        let mut have: Vec<(Ipv4Addr, u8)> = addresses_on(&netlink, index)
            .await
            .iter()
            .map(|a| (a.address, a.prefix_len))
            .collect();
        have.sort();
        assert_eq!(
            have,
            vec![
                (GATEWAY, 16),
                (GATEWAY, 24),
                (Ipv4Addr::new(192, 0, 2, 1), 24)
            ]
        );
    });
}

#[test]
fn bridge_with_its_address_already_is_not_touched() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let fixture = Fixture::new();
        fixture.add_bridge("br0").await;
        fixture.add_address("br0", GATEWAY, 24).await;
        fixture.up("br0").await;

        let report = within("ensure_bridge", netlink.ensure_bridge(&spec()))
            .await
            .expect("ensure");

        assert!(!report.changed(), "{report:?}");
        assert_eq!(addresses_on(&netlink, report.index).await.len(), 1);
    });
}

#[test]
fn name_taken_by_a_veth_is_an_error_and_nothing_changes() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let fixture = Fixture::new();
        fixture.add_veth("br0", "br0-peer").await;
        let links_before = netlink.links().await.expect("links");
        let mtu_before = fixture.mtu("br0").await;

        let spec = BridgeSpec {
            mtu: Some(mtu_before - 100),
            ..spec()
        };
        let err = within("ensure_bridge", netlink.ensure_bridge(&spec))
            .await
            .expect_err("a veth is not a bridge");

        match &err {
            BridgeError::NotABridge { link, kind } => {
                assert_eq!(link, "br0");
                assert_eq!(kind.as_deref(), Some("veth"));
            }
            other => panic!("expected NotABridge, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.starts_with("link br0: "), "{text}");
        assert!(text.contains("kind \"veth\""), "{text}");
        assert!(text.contains("nothing was changed"), "{text}");

        assert_eq!(
            netlink.links().await.expect("links"),
            links_before,
            "links changed"
        );
        assert!(
            netlink
                .ipv4_addresses()
                .await
                .expect("addresses")
                .is_empty(),
            "address added"
        );
        assert_eq!(fixture.mtu("br0").await, mtu_before, "mtu changed");
        assert!(!fixture.is_up("br0").await, "brought up");
    });
}

#[test]
fn mtu_is_set_when_asked_and_different() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let fixture = Fixture::new();
        let jumbo = BridgeSpec {
            mtu: Some(9000),
            ..spec()
        };

        let report = within("create", netlink.ensure_bridge(&jumbo))
            .await
            .expect("create");
        assert!(report.created && report.mtu_changed, "{report:?}");
        assert_eq!((report.mtu_before, report.mtu), (Some(1500), Some(9000)));
        assert!(report.to_string().contains("mtu 1500 -> 9000"), "{report}");
        assert_eq!(fixture.mtu("br0").await, 9000);

        let again = within("same mtu", netlink.ensure_bridge(&jumbo))
            .await
            .expect("again");
        assert!(!again.mtu_changed && !again.changed(), "{again:?}");

        let smaller = BridgeSpec {
            mtu: Some(1400),
            ..spec()
        };
        let report = within("smaller mtu", netlink.ensure_bridge(&smaller))
            .await
            .expect("smaller");
        assert!(
            report.mtu_changed && !report.created && !report.brought_up && !report.address_added
        );
        assert_eq!((report.mtu_before, report.mtu), (Some(9000), Some(1400)));
        assert_eq!(fixture.mtu("br0").await, 1400);

        // No mtu in the spec: whatever the bridge has is kept.
        let report = within("no mtu", netlink.ensure_bridge(&spec()))
            .await
            .expect("no mtu");
        assert!(!report.changed(), "{report:?}");
        assert_eq!(fixture.mtu("br0").await, 1400);
    });
}

#[test]
fn impossible_mtu_names_link_operation_and_errno() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let spec = BridgeSpec {
            mtu: Some(70_000),
            ..spec()
        };
        let err = within("ensure_bridge", netlink.ensure_bridge(&spec))
            .await
            .expect_err("mtu above 65535");
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("link br0: set mtu 70000 failed: "),
            "{text}"
        );
        assert!(text.contains("(errno 22)"), "{text}");
        assert!(text.contains("MTU"), "{text}");
    });
}

#[test]
fn the_vms_port_is_left_alone() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let fixture = Fixture::new();
        let first = within("create", netlink.ensure_bridge(&spec()))
            .await
            .expect("create");
        // The VM's tap joins the bridge (a veth stands in for vnet0).
        fixture.add_veth("vnet0", "vm-side").await;
        fixture.set_master("vnet0", "br0").await;
        fixture.up("vnet0").await;
        fixture.up("vm-side").await;
        // Someone takes the bridge down; the next boot run brings it back.
        fixture.down("br0").await;

        let report = within("ensure again", netlink.ensure_bridge(&spec()))
            .await
            .expect("ensure");

        assert!(
            report.brought_up && !report.created && !report.address_added,
            "{report:?}"
        );
        assert_eq!(
            fixture.master("vnet0").await,
            Some(first.index),
            "vnet0 left the bridge"
        );
        assert!(fixture.is_up("vnet0").await, "vnet0 was taken down");
        let links = netlink.links().await.expect("links");
        let br0 = links.iter().find(|l| l.name == "br0").expect("br0");
        assert!(
            br0.up && br0.carrier,
            "with a running port the bridge has carrier: {br0:?}"
        );
    });
}

#[test]
fn without_cap_net_admin_the_error_says_so() {
    in_new_netns(|| async {
        drop_net_admin_on_this_thread();
        let netlink = Netlink::connect().expect("connect");
        let fixture = Fixture::new();

        let err = within("ensure_bridge", netlink.ensure_bridge(&spec()))
            .await
            .expect_err("EPERM");

        assert_eq!(err.errno(), Some(libc::EPERM), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("link br0: create bridge failed: "),
            "{text}"
        );
        assert!(text.contains("needs CAP_NET_ADMIN"), "{text}");
        assert!(!fixture.exists("br0").await);
    });
}

#[test]
fn invalid_spec_is_refused_before_touching_the_kernel() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let spec = BridgeSpec {
            name: "a-name-too-long-for-linux".into(),
            ..spec()
        };
        let err = within("ensure_bridge", netlink.ensure_bridge(&spec))
            .await
            .expect_err("invalid");
        assert!(matches!(err, BridgeError::InvalidSpec { .. }), "{err:?}");
        let links = netlink.links().await.expect("links");
        assert_eq!(
            links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["lo"]
        );
    });
}
