//! Attacks on the running DHCP server (issue 11), in network namespaces, with
//! real clients and hand-made packets from a leaf namespace: the neighbour
//! table, spoofed RELEASE, a renewal flood, read-only flash.
//!
//! Every packet goes out of a leaf's veth to the spine namespace the test made.

use super::dhcp_server::{client, vendor, Leaf, Spine};
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};
use ztps_tests::clients::Client;
use ztps_tests::netns::Netns;
use ztps_tests::wait_until;

/// A DHCP client packet built by hand (header and options are constructed
/// here, nothing parsed): op 1, Ethernet, the given chaddr and fields.
struct Pkt {
    msg_type: u8,
    chaddr: [u8; 6],
    client_id: Option<Vec<u8>>,
    ciaddr: Ipv4Addr,
    requested: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
    xid: u32,
}

impl Pkt {
    fn new(msg_type: u8, chaddr: [u8; 6]) -> Pkt {
        Pkt {
            msg_type,
            chaddr,
            client_id: None,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            requested: None,
            server_id: None,
            xid: 0x5a5a_0000,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut p = vec![0u8; 240];
        p[0] = 1; // BOOTREQUEST
        p[1] = 1; // Ethernet
        p[2] = 6;
        p[4..8].copy_from_slice(&self.xid.to_be_bytes());
        p[12..16].copy_from_slice(&self.ciaddr.octets());
        p[28..34].copy_from_slice(&self.chaddr);
        p[236..240].copy_from_slice(&[99, 130, 83, 99]);
        p.extend_from_slice(&[53, 1, self.msg_type]);
        let class = vendor("JPEATTACK");
        p.extend_from_slice(&[60, class.len() as u8]);
        p.extend_from_slice(class.as_bytes());
        if let Some(id) = &self.client_id {
            p.extend_from_slice(&[61, id.len() as u8]);
            p.extend_from_slice(id);
        }
        if let Some(r) = self.requested {
            p.extend_from_slice(&[50, 4]);
            p.extend_from_slice(&r.octets());
        }
        if let Some(s) = self.server_id {
            p.extend_from_slice(&[54, 4]);
            p.extend_from_slice(&s.octets());
        }
        p.push(255);
        p.resize(300, 0);
        p
    }
}

/// Runs `f` on a thread inside `ns` (setns), and returns its result.
fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{}", ns.name());
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("opening the namespace");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("entering the namespace");
        f()
    })
    .join()
    .expect("namespace thread")
}

/// A UDP socket on port 68 of `ifname`, allowed to broadcast.
fn client_socket(ifname: &str, bind: Ipv4Addr) -> UdpSocket {
    let sock = UdpSocket::bind(SocketAddrV4::new(bind, 68)).expect("bind port 68");
    sock.set_broadcast(true).expect("SO_BROADCAST");
    nix::sys::socket::setsockopt(
        &sock,
        nix::sys::socket::sockopt::BindToDevice,
        &std::ffi::OsString::from(ifname),
    )
    .expect("SO_BINDTODEVICE");
    sock
}

/// Broadcasts `packets` out of `leaf`'s interface to port 67.
fn broadcast(leaf: &Leaf, packets: Vec<Vec<u8>>) {
    let ifname = leaf.ifname.clone();
    in_netns(&leaf.ns, move || {
        let sock = client_socket(&ifname, Ipv4Addr::UNSPECIFIED);
        for p in packets {
            sock.send_to(&p, (Ipv4Addr::BROADCAST, 67))
                .expect("sending a DHCP packet");
        }
    });
}

fn mac_of(leaf: &Leaf) -> [u8; 6] {
    let out = leaf.ns.ip(&format!("-o link show {}", leaf.ifname));
    let text = out
        .split("link/ether ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no MAC in {out}"));
    let mut mac = [0u8; 6];
    for (i, part) in text.split(':').enumerate() {
        mac[i] = u8::from_str_radix(part, 16).unwrap();
    }
    mac
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for pid {pid}"))
}

/// Adds a pool link on spine port `et<i>`: spine 10.0.<i>.1/29, pool .2-.6.
fn pool_leaf(spine: &Spine, i: u8) -> Leaf {
    let ns = Netns::new("lf");
    let ifname = format!("lf{i}");
    let port = format!("et{i}");
    ztps_tests::netns::veth(&spine.ns, &port, &ns, &ifname);
    spine.ns.ip(&format!("addr add 10.0.{i}.1/29 dev {port}"));
    spine.ns.ip(&format!("link set {port} up"));
    ns.ip(&format!("link set {ifname} up"));
    Leaf { ns, ifname }
}

fn pool_json(i: u8) -> serde_json::Value {
    json!({"ifname": format!("et{i}"), "pool": {
        "first": format!("10.0.{i}.2"), "last": format!("10.0.{i}.6"),
        "router": format!("10.0.{i}.1"), "prefix_len": 29}})
}

/// Issue 11 item 4: no DISCOVER, whatever its chaddr and client id, writes the
/// spine's neighbour table; on a pool link a real client still gets its lease
/// sent to its hardware address.
#[test]
fn spoofed_discovers_write_no_neighbour_entry_and_pool_clients_still_get_leases() {
    let mut spine = Spine::new();
    let p2p = spine.leaf(1);
    let pool = pool_leaf(&spine, 2);
    spine.set_links(json!([{"ifname": "et1"}, pool_json(2)]));
    spine.start(&["--replace-after", "3600"]);
    let held = client(Client::Udhcpc, &spine, &p2p, &vendor("JPEHOLDER")).expect("holder lease");
    assert_eq!(held.address.to_string(), "10.0.1.1");
    let holder = mac_of(&p2p);
    let mut holder_id = vec![1u8];
    holder_id.extend_from_slice(&holder);
    // The holder's client id with chaddr zero, and strangers' MACs.
    let zero = [0u8; 6];
    let strangers = [[0x02, 0xba, 0xd0, 0, 0, 1], [0x02, 0xba, 0xd0, 0, 0, 2]];
    let mut packets = Vec::new();
    let mut p = Pkt::new(1, zero);
    p.client_id = Some(holder_id.clone());
    packets.push(p.bytes());
    for mac in strangers {
        packets.push(Pkt::new(1, mac).bytes());
        let mut p = Pkt::new(1, mac);
        p.client_id = Some(holder_id.clone());
        packets.push(p.bytes());
    }
    broadcast(&p2p, packets.clone());
    broadcast(&pool, packets);
    std::thread::sleep(Duration::from_millis(500));
    let neigh = String::from_utf8_lossy(&spine.ns.sh("ip neigh show").stdout).into_owned();
    for bad in [
        "00:00:00:00:00:00",
        "02:ba:d0:00:00:01",
        "02:ba:d0:00:00:02",
    ] {
        assert!(
            !neigh.contains(bad),
            "neighbour entry from a spoofed packet:\n{neigh}"
        );
    }
    // A real client on the /29 pool link gets its lease (sent to its chaddr).
    let got = client(Client::Dhclient, &spine, &pool, &vendor("JPEPOOL1"))
        .unwrap_or_else(|| panic!("pool client got no lease; server log:\n{}", spine.log()));
    assert!(
        (2..=6).contains(&got.address.octets()[3]) && got.address.octets()[2] == 2,
        "{got:?}"
    );
    let neigh = String::from_utf8_lossy(&spine.ns.sh("ip neigh show").stdout).into_owned();
    assert!(
        !neigh.contains("PERMANENT"),
        "no static entries written:\n{neigh}"
    );
}

/// Issue 11 item 5: a RELEASE and a DECLINE with the holder's client id from
/// another MAC free nothing: another leaf is still refused the address, and the
/// lease stays on flash.
#[test]
fn a_spoofed_release_or_decline_frees_nothing() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(1);
    spine.set_links(json!([{"ifname": "et1"}]));
    spine.start(&["--replace-after", "3600"]);
    let held = client(Client::Udhcpc, &spine, &leaf, &vendor("JPEHOLDER")).expect("holder lease");
    let holder = mac_of(&leaf);
    let mut holder_id = vec![1u8];
    holder_id.extend_from_slice(&holder);
    let other = [0x02, 0, 0, 0, 0, 0x99];
    let mut release = Pkt::new(7, other);
    release.client_id = Some(holder_id.clone());
    release.ciaddr = held.address;
    release.server_id = Some("10.0.1.0".parse().unwrap());
    let mut decline = Pkt::new(4, other);
    decline.client_id = Some(holder_id);
    decline.requested = Some(held.address);
    decline.server_id = Some("10.0.1.0".parse().unwrap());
    broadcast(&leaf, vec![release.bytes(), decline.bytes()]);
    assert!(
        wait_until(Duration::from_secs(5), || spine
            .log()
            .contains("not the lease's holder")),
        "{}",
        spine.log()
    );
    leaf.ns.ip(&format!(
        "link set {} address 02:00:00:00:00:99",
        leaf.ifname
    ));
    assert_eq!(
        client(Client::Udhcpc, &spine, &leaf, &vendor("JPETHIEF")),
        None,
        "another MAC took the address after a spoofed RELEASE/DECLINE:\n{}",
        spine.log()
    );
    assert!(spine.log().contains("held by"), "{}", spine.log());
    let holder_hex: String = holder.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        spine.leases_file().contains(&holder_hex),
        "{}",
        spine.leases_file()
    );
}

/// Issue 11 item 2: one lease holder floods renewals for 5 s. The server's
/// memory stays flat, the renewals write nothing to flash and log nothing at
/// info, and a leaf on another link gets its lease during the flood.
#[test]
fn a_renewal_flood_keeps_memory_flat_and_another_link_served() {
    let mut spine = Spine::new();
    let flooder = spine.leaf(1);
    let other = spine.leaf(2);
    spine.set_links(json!([{"ifname": "et1"}, {"ifname": "et2"}]));
    spine.start(&[]);
    let held = client(Client::Udhcpc, &spine, &flooder, &vendor("JPEFLOOD")).expect("lease");
    let mac = mac_of(&flooder);
    flooder.ns.ip(&format!(
        "addr add {}/31 dev {}",
        held.address, flooder.ifname
    ));
    let pid = spine.server.as_ref().unwrap().id();
    let rss_before = rss_kib(pid);
    let file_before = spine.leases_file().len();
    let log_before = spine.log().lines().count();
    let ifname = flooder.ifname.clone();
    let address = held.address;
    let flood = {
        let ns_path = format!("/var/run/netns/{}", flooder.ns.name());
        std::thread::spawn(move || {
            let file = std::fs::File::open(&ns_path).expect("namespace");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let sock = client_socket(&ifname, address);
            sock.set_nonblocking(true).unwrap();
            let mut p = Pkt::new(3, mac);
            p.ciaddr = address;
            let mut sent = 0u64;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                for _ in 0..64 {
                    p.xid = p.xid.wrapping_add(1);
                    if sock.send_to(&p.bytes(), ("10.0.1.0", 67)).is_ok() {
                        sent += 1;
                    }
                }
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(1000));
    let dora = Instant::now();
    let got = client(Client::Udhcpc, &spine, &other, &vendor("JPEOTHER"));
    let dora = dora.elapsed();
    let sent = flood.join().expect("flooder");
    let rss_after = rss_kib(pid);
    let file_after = spine.leases_file().len();
    let log_lines = spine.log().lines().count() - log_before;
    let snmp = String::from_utf8_lossy(&spine.ns.sh("cat /proc/net/snmp").stdout).into_owned();
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let rcvbuf_errors = udp
        .first()
        .zip(udp.get(1))
        .and_then(|(names, values)| {
            let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
            values.split_whitespace().nth(i)
        })
        .unwrap_or("?");
    eprintln!(
        "renewal flood: {sent} REQUESTs in 5 s; server RSS {rss_before} KiB -> {rss_after} KiB; \
         lease file {file_before} -> {file_after} bytes; {log_lines} log lines; \
         {rcvbuf_errors} packets dropped by the kernel (socket buffer full); \
         other link's DORA {dora:?} during the flood"
    );
    assert!(
        sent > 10_000,
        "the flood was too weak to mean anything: {sent}"
    );
    let got = got.unwrap_or_else(|| panic!("no lease on the other link:\n{}", spine.log()));
    assert_eq!(got.address.to_string(), "10.0.2.1");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "memory grew under the flood: {rss_before} KiB -> {rss_after} KiB"
    );
    assert!(
        file_after < file_before + 4096,
        "renewals were journalled: {file_before} -> {file_after} bytes"
    );
    assert!(log_lines < 100, "{log_lines} log lines during the flood");
    // Bursts are absorbed by a receive buffer far above the default 208 KiB
    // (the kernel reports twice what was set).
    let rcvbuf: usize = spine
        .log()
        .lines()
        .find_map(|l| {
            l.strip_prefix("harness: receive buffer ")?
                .strip_suffix(" bytes")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no receive buffer size in the log:\n{}", spine.log()));
    assert!(
        rcvbuf >= ztps_dhcp::socket::RECEIVE_BUFFER,
        "receive buffer {rcvbuf} bytes"
    );
}

/// Issue 11 item 11: on read-only flash the server starts, serves the stored
/// lease, refuses new ones, and says why.
#[test]
fn read_only_flash_serves_stored_leases_and_refuses_new_ones() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(1);
    let other = spine.leaf(2);
    spine.set_links(json!([{"ifname": "et1"}, {"ifname": "et2"}]));
    spine.start(&["--replace-after", "3600"]);
    let held = client(Client::Udhcpc, &spine, &leaf, &vendor("JPESTORED")).expect("lease");
    spine.server.as_mut().unwrap().kill9();
    // Restart with the lease file's directory mounted read-only (a private
    // mount namespace: nothing outside the test sees it).
    let flash = spine.path("flash");
    std::fs::create_dir_all(&flash).unwrap();
    std::fs::copy(spine.path("leases.json"), flash.join("leases.json")).unwrap();
    let log = spine.path("harness.ro.log");
    let script = format!(
        "mount --bind '{f}' '{f}' && mount -o remount,bind,ro '{f}' && exec '{bin}' \
         --lease-file '{f}/leases.json' --links '{links}' --replace-after 3600",
        f = flash.display(),
        bin = env!("CARGO_BIN_EXE_dhcp-harness"),
        links = spine.path("links.json").display(),
    );
    let child = spine
        .ns
        .cmd("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("starting dhcp-harness on read-only flash");
    spine.server = Some(ztps_tests::ChildGuard::new("dhcp-harness", child));
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || read_log()
            .contains("harness: ready")),
        "did not start on read-only flash:\n{}",
        read_log()
    );
    assert!(
        read_log().contains("read-only") && read_log().contains("loaded 1 leases"),
        "{}",
        read_log()
    );
    // The stored leaf is served ...
    let again = client(Client::Udhcpc, &spine, &leaf, &vendor("JPESTORED"))
        .unwrap_or_else(|| panic!("stored leaf refused on read-only flash:\n{}", read_log()));
    assert_eq!(again.address, held.address);
    // ... a new one is not, and the log says why.
    assert_eq!(
        client(Client::Udhcpc, &spine, &other, &vendor("JPENEW")),
        None
    );
    assert!(read_log().contains("new lease"), "{}", read_log());
}

/// Issue 11 item 3: a spine that boots with its clock in 1970 stamps no 1970
/// record. Once the clock is right (a restart with the real clock), the lease
/// granted in 1970 still holds: another MAC is refused the link's address.
#[test]
fn a_lease_granted_while_the_clock_says_1970_survives_the_clock_fix() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(1);
    spine.set_links(json!([{"ifname": "et1"}]));
    // Only the wall clock is wrong: the monotonic clock runs as it does.
    std::env::set_var("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    spine.start_wrapped(
        &["faketime", "-f", "@1970-01-02 00:00:00"],
        &["--replace-after", "3600", "--lease-time", "3600"],
    );
    let held = client(Client::Udhcpc, &spine, &leaf, &vendor("JPE1970")).expect("lease in 1970");
    // The record's times are never earlier than the build's floor, and say
    // they come from a clock that was not believed (state in capitals).
    let record = spine.leases_file();
    let line = record
        .lines()
        .find(|l| l.contains(&format!("\t{}\t", held.address)))
        .unwrap_or_else(|| panic!("lease not stored:\n{record}"));
    let fields: Vec<&str> = line.split('\t').collect();
    let expires: u64 = fields[6].parse().unwrap_or(0);
    let updated: u64 = fields[7].parse().unwrap_or(0);
    assert!(
        updated >= ztps_dhcp::time::NOT_BEFORE && expires >= updated + 3600,
        "1970 stamped on flash: {line}"
    );
    assert_eq!(fields[5], "B", "{line}");
    // faketime runs the harness as its child: stop everything in the namespace.
    spine.server.as_mut().unwrap().kill9();
    spine.ns.kill_processes();
    assert!(wait_until(Duration::from_secs(5), || {
        spine.ns.sh("ss -lun | grep -q ':67 '").status.code() == Some(1)
    }));
    // NTP synced; the daemon restarts with the right clock.
    spine.start(&["--replace-after", "3600", "--lease-time", "3600"]);
    leaf.ns.ip(&format!(
        "link set {} address 02:00:00:00:19:70",
        leaf.ifname
    ));
    assert_eq!(
        client(Client::Udhcpc, &spine, &leaf, &vendor("JPEOTHER")),
        None,
        "the 1970 lease read as expired once the clock was fixed:\n{}",
        spine.log()
    );
    assert!(spine.log().contains("held by"), "{}", spine.log());
}
