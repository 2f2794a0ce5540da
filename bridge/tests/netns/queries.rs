//! `Netlink::links` and `Netlink::ipv4_addresses`: what the DHCP address
//! plans are built from.

use std::net::Ipv4Addr;

use ztps_bridge::{Ipv4AddrInfo, LinkInfo, Netlink};

use crate::common::{in_new_netns, within, Fixture};

fn by_name<'a>(links: &'a [LinkInfo], name: &str) -> &'a LinkInfo {
    links
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("{name} not in {links:?}"))
}

#[test]
fn links_report_admin_state_carrier_kind_and_mac() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let fixture = Fixture::new();

        let fresh = within("links", netlink.links()).await.expect("links");
        assert_eq!(fresh.len(), 1, "a new namespace has only lo: {fresh:?}");
        assert_eq!(fresh[0].name, "lo");
        assert_eq!(fresh[0].kind, None, "lo is built in");
        assert!(!fresh[0].up);

        fixture.add_veth("et3", "leaf3").await;
        fixture.up("et3").await;
        let links = within("links", netlink.links()).await.expect("links");
        let et3 = by_name(&links, "et3");
        assert_eq!(et3.index, fixture.index("et3").await);
        assert_eq!(et3.kind.as_deref(), Some("veth"));
        assert!(et3.up, "{et3:?}");
        assert!(!et3.carrier, "peer down, so no carrier: {et3:?}");
        let mac = et3.mac.expect("a veth has a MAC");
        assert_ne!(mac, [0; 6]);
        assert_eq!(mac[0] & 1, 0, "unicast MAC");
        let leaf3 = by_name(&links, "leaf3");
        assert!(!leaf3.up && !leaf3.carrier, "{leaf3:?}");
        let mut indexes: Vec<u32> = links.iter().map(|l| l.index).collect();
        let sorted = {
            let mut s = indexes.clone();
            s.sort();
            s
        };
        assert_eq!(indexes, sorted, "ordered by index");
        indexes.dedup();
        assert_eq!(indexes.len(), links.len());

        fixture.up("leaf3").await;
        let links = within("links", netlink.links()).await.expect("links");
        assert!(by_name(&links, "et3").carrier, "peer up, so carrier");
    });
}

#[test]
fn ipv4_addresses_report_prefix_and_peer() {
    in_new_netns(|| async {
        let netlink = Netlink::connect().expect("connect");
        let fixture = Fixture::new();
        fixture.add_veth("et3", "et4").await;
        fixture
            .add_address("et3", Ipv4Addr::new(10, 0, 0, 0), 31)
            .await;
        fixture
            .add_address("et3", Ipv4Addr::new(10, 0, 1, 1), 30)
            .await;
        // Unnumbered-style point-to-point address.
        fixture
            .add_peer_address(
                "et4",
                Ipv4Addr::new(10, 9, 0, 1),
                Ipv4Addr::new(10, 9, 0, 2),
            )
            .await;
        let et3 = fixture.index("et3").await;
        let et4 = fixture.index("et4").await;

        let mut have = within("addresses", netlink.ipv4_addresses())
            .await
            .expect("addresses");
        have.sort_by_key(|a| (a.index, a.address));

        let mut want = vec![
            Ipv4AddrInfo {
                index: et3,
                address: Ipv4Addr::new(10, 0, 0, 0),
                prefix_len: 31,
                peer: None,
            },
            Ipv4AddrInfo {
                index: et3,
                address: Ipv4Addr::new(10, 0, 1, 1),
                prefix_len: 30,
                peer: None,
            },
            Ipv4AddrInfo {
                index: et4,
                address: Ipv4Addr::new(10, 9, 0, 1),
                prefix_len: 32,
                peer: Some(Ipv4Addr::new(10, 9, 0, 2)),
            },
        ];
        want.sort_by_key(|a| (a.index, a.address));
        assert_eq!(have, want);
    });
}
