//! Spine-served ZTP end to end (`[ztp] serve = true`): a spine namespace with
//! the daemon and eos-sim (LLDP from a table the tests write), leaf namespaces
//! that behave like EOS ZTP ([`EosLeaf`]: a real DHCP client, curl with the
//! `X-Arista-*` headers, startup-config saved or a script run), and crafted
//! requests with curl and raw sockets from inside the leaves' namespaces.

use crate::agent::{text, Leaf, Spine};
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;
use ztps_tests::clients::Client;
use ztps_tests::eos::set_lldp_neighbor;
use ztps_tests::netns::{veth, Netns};
use ztps_tests::wait_until;
use ztps_tests::ztp_leaf::{curl, in_netns, EosLeaf, Identity, Outcome, SPINE_WAIT};

/// A `[[ztp.leaf]]`: port number `i` (`Ethernet<i>`), name, serial lock.
pub(crate) struct LeafEntry {
    port: u8,
    name: &'static str,
    serial: Option<&'static str>,
}

pub(crate) fn entry(port: u8, name: &'static str, serial: Option<&'static str>) -> LeafEntry {
    LeafEntry { port, name, serial }
}

fn serial(i: u8) -> String {
    format!("JPE2000000{i}")
}

fn identity(i: u8) -> Identity {
    Identity::new(&serial(i), &format!("00:1c:73:00:00:{i:02x}"))
}

/// The startup-config of leaf `name`, as the operator put it on flash.
pub(crate) fn leaf_config(name: &str) -> String {
    format!(
        "! {name}\nhostname {name}\n!\ninterface Ethernet1\n   no switchport\n   ip address 10.9.9.1/31\n!\nip routing\nend\n"
    )
}

/// Writes the spine's config for ZTP mode (no `dhcp.bootfile_url`) and the
/// leaves' configs; the LLDP table is `lldp.json` beside it.
fn write_ztp_config(spine: &Spine, port: u16, leaves: &[LeafEntry]) {
    write_ztp_config_with(spine, port, leaves, "");
}

/// [`write_ztp_config`] with `ztp_extra` (keys and sub-tables) after `[ztp]`'s keys.
pub(crate) fn write_ztp_config_with(
    spine: &Spine,
    port: u16,
    leaves: &[LeafEntry],
    ztp_extra: &str,
) {
    let d = spine.dir.path().display();
    let configs = spine.path("configs");
    std::fs::create_dir_all(&configs).unwrap();
    let mut text = format!(
        r#"[eapi]
url = "unix:{d}/eapi.sock"
poll_interval = "1s"
timeout = "2s"

[dhcp]
lease_file = "{d}/leases.json"
replace_after = "1s"

[log]
syslog = false
level = "info"

[state]
dir = "{d}/state"

[ztp]
serve = true
port = {port}
configs = "{d}/configs"
{ztp_extra}"#
    );
    for l in leaves {
        text.push_str(&format!(
            "\n[[ztp.leaf]]\ninterface = \"Ethernet{}\"\nname = \"{}\"\n",
            l.port, l.name
        ));
        if let Some(s) = l.serial {
            text.push_str(&format!("serial = \"{s}\"\n"));
        }
        std::fs::write(configs.join(format!("{}.cfg", l.name)), leaf_config(l.name)).unwrap();
    }
    std::fs::write(spine.config_path(), text).unwrap();
}

fn lldp_table(spine: &Spine) -> PathBuf {
    spine.path("lldp.json")
}

fn ztp_of(spine: &Spine, link: &str) -> Value {
    spine.link_status(link)["ztp"].clone()
}

/// Waits until `link`'s ZTP stage is `stage`; panics with the status and log.
fn wait_stage(spine: &Spine, link: &str, stage: &str) {
    let ok = wait_until(SPINE_WAIT, || ztp_of(spine, link)["stage"] == stage);
    assert!(
        ok,
        "{link} never reached {stage}: {}\n{}",
        ztp_of(spine, link),
        spine.log()
    );
}

fn leaf_dir(spine: &Spine, name: &str) -> PathBuf {
    spine.path(&format!("leaf-{name}"))
}

#[test]
fn four_leaves_get_their_ports_configs_and_are_provisioned() {
    let mut spine = Spine::new();
    let entries = [
        entry(1, "leaf1", None),
        entry(2, "leaf2", None),
        entry(3, "leaf3", Some("JPE20000003")),
        entry(4, "leaf4", None),
    ];
    write_ztp_config(&spine, 80, &entries);
    let leaves: Vec<Leaf> = (1..=4).map(|i| spine.leaf(i, true)).collect();
    spine.start_daemon();
    // dhcpcd keeps its control socket and pid file under /run by interface
    // name, shared by every test process on the machine: the two clients that
    // take their files from the test run here.
    let clients = [
        Client::Dhclient,
        Client::Udhcpc,
        Client::Dhclient,
        Client::Udhcpc,
    ];
    for (i, leaf) in leaves.iter().enumerate() {
        let n = i as u8 + 1;
        let eos = EosLeaf::new(
            &leaf.ns,
            &leaf.ifname,
            identity(n),
            &leaf_dir(&spine, &format!("leaf{n}")),
        );
        let round = eos.ztp(clients[i]);
        assert_eq!(round.url, format!("http://10.0.{n}.0/ztp/bootstrap"));
        assert_eq!(
            round.outcome,
            Outcome::ConfigSaved,
            "leaf{n}: {}",
            spine.log()
        );
        assert_eq!(
            eos.startup_config().as_deref(),
            Some(leaf_config(&format!("leaf{n}")).as_str())
        );
        let link = format!("Ethernet{n}");
        wait_stage(&spine, &link, "config-sent");
        let z = ztp_of(&spine, &link);
        assert_eq!(z["leaf"], format!("leaf{n}"));
        assert_eq!(z["serial"], serial(n));
        assert_eq!(z["model"], "DCS-7050SX3-48YC8");
        assert_eq!(z["version"], "4.30.1F");
        assert_eq!(z["system_mac"], format!("00:1c:73:00:00:{n:02x}"));
        assert!(z["at"].as_u64().is_some(), "{z}");

        // "Reboot": the leaf comes up as its config says; LLDP shows its name.
        let hostname = eos.reboot().expect("a hostname in the startup-config");
        assert_eq!(hostname, format!("leaf{n}"));
        set_lldp_neighbor(
            &lldp_table(&spine),
            &link,
            &format!("{hostname}.dc1.example.net"),
            "Ethernet49/1",
        );
        wait_stage(&spine, &link, "provisioned");
    }
    let log = spine.log();
    for n in 1..=4u8 {
        let bytes = leaf_config(&format!("leaf{n}")).len();
        let sent = format!(
            "Ethernet{n}: leaf{n} {} config-sent ({bytes} bytes)",
            serial(n)
        );
        assert!(log.contains(&sent), "missing `{sent}` in\n{log}");
        let done = format!("Ethernet{n}: leaf{n} {} provisioned (", serial(n));
        assert_eq!(log.matches(&done).count(), 1, "logged once: {done}\n{log}");
        let dhcp = format!("Ethernet{n}: leaf{n} {} dhcp", serial(n));
        assert!(log.contains(&dhcp), "missing `{dhcp}` in\n{log}");
    }
    let cfg = spine.config_path();
    let table = spine.agent(&["status", "--config", cfg.to_str().unwrap()]);
    let table = text(&table);
    assert!(table.contains("ZTP"), "{table}");
    assert!(table.contains("provisioned"), "{table}");
}

#[test]
fn a_leaf_moved_to_another_port_gets_that_ports_config() {
    let mut spine = Spine::new();
    write_ztp_config(
        &spine,
        80,
        &[entry(1, "leaf1", None), entry(2, "leaf2", None)],
    );
    let leaf = spine.leaf(1, true);
    spine.start_daemon();
    let dir = leaf_dir(&spine, "moving");
    let eos = EosLeaf::new(&leaf.ns, &leaf.ifname, identity(7), &dir);
    let round = eos.ztp(Client::Udhcpc);
    assert_eq!(round.outcome, Outcome::ConfigSaved, "{}", spine.log());
    assert_eq!(eos.startup_config(), Some(leaf_config("leaf1")));

    // Re-cable: the same box (same MAC) on spine port Ethernet2.
    let mac = leaf
        .ns
        .sh(&format!("cat /sys/class/net/{}/address", leaf.ifname));
    let mac = String::from_utf8_lossy(&mac.stdout).trim().to_string();
    spine.ns.ip("link del et1");
    veth(&spine.ns, "et2", &leaf.ns, &leaf.ifname);
    spine.ns.ip("addr add 10.0.2.0/31 dev et2");
    spine.ns.ip("link set et2 up");
    leaf.ns
        .ip(&format!("link set {} address {mac}", leaf.ifname));
    leaf.ns.ip(&format!("link set {} up", leaf.ifname));
    let round = eos.ztp(Client::Udhcpc);
    assert_eq!(round.url, "http://10.0.2.0/ztp/bootstrap");
    assert_eq!(round.outcome, Outcome::ConfigSaved, "{}", spine.log());
    assert_eq!(eos.startup_config(), Some(leaf_config("leaf2")));
    wait_stage(&spine, "Ethernet2", "config-sent");
}

#[test]
fn refusals_leak_nothing_and_configs_are_read_at_request_time() {
    let mut spine = Spine::new();
    write_ztp_config(
        &spine,
        80,
        &[
            entry(1, "leaf1", None),
            entry(2, "leaf2", Some("JPE20000002")),
        ],
    );
    let leaves: Vec<Leaf> = (1..=3).map(|i| spine.leaf(i, true)).collect();
    let mgmt = spine.management();
    spine.start_daemon();
    let eos: Vec<EosLeaf> = leaves
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let n = i as u8 + 1;
            EosLeaf::new(
                &l.ns,
                &l.ifname,
                identity(n),
                &leaf_dir(&spine, &format!("r{n}")),
            )
        })
        .collect();
    let lease: Vec<_> = eos
        .iter()
        .map(|e| e.dhcp(Client::Udhcpc).expect("a lease"))
        .collect();
    let url = |n: u8, path: &str| format!("http://10.0.{n}.0{path}");

    // A serial-locked port: a wrong serial, or none, gets 403 and nothing else.
    let mut wrong = eos[1].identity.headers();
    wrong.retain(|(k, _)| *k != "X-Arista-Serial");
    let none = eos[1].fetch_with(&url(2, "/ztp/bootstrap"), lease[1].address, &wrong);
    assert_eq!(none.status, 403, "{none:?}");
    wrong.push(("X-Arista-Serial", "JPE99999999".into()));
    let bad = eos[1].fetch_with(&url(2, "/ztp/config"), lease[1].address, &wrong);
    assert_eq!(bad.status, 403, "{bad:?}");
    for f in [&none, &bad] {
        assert!(!String::from_utf8_lossy(&f.body).contains("leaf2"), "{f:?}");
    }
    wait_stage(&spine, "Ethernet2", "refused");
    let z = ztp_of(&spine, "Ethernet2");
    assert!(
        z["detail"].as_str().unwrap_or("").contains("JPE20000002"),
        "{z}"
    );
    let good = eos[1].fetch(&url(2, "/ztp/bootstrap"), lease[1].address);
    assert_eq!(good.status, 200);
    assert_eq!(good.body, leaf_config("leaf2").as_bytes());

    // A served port without [[ztp.leaf]]: 404, and status says why.
    let missing = eos[2].fetch(&url(3, "/ztp/bootstrap"), lease[2].address);
    assert_eq!(missing.status, 404, "{missing:?}");
    wait_stage(&spine, "Ethernet3", "refused");
    assert_eq!(
        ztp_of(&spine, "Ethernet3")["detail"],
        "no ztp.leaf for Ethernet3"
    );

    // The management network gets no connection, or a 403; never a config.
    let out = curl(
        &mgmt.ns,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://192.168.0.1/ztp/bootstrap",
        ],
    );
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(code == "000" || code == "403", "management got {code}");

    // Crafted paths never reach a file.
    for path in [
        "/ztp/../ztp/config",
        "/ztp/%2e%2e/configs/leaf2.cfg",
        "/ztp/bootstrap/../../leaf2.cfg",
        "/leaf2.cfg",
        "/configs/leaf2.cfg",
        "/ztp/config/leaf2",
        "/ztp/config?name=leaf2",
        "/ztp/config%00leaf2.cfg",
        "//ztp/config",
    ] {
        let f = eos[0].fetch(&url(1, path), lease[0].address);
        let body = String::from_utf8_lossy(&f.body);
        assert!(!body.contains("leaf2"), "{path} leaked: {body}");
        assert!(
            f.status == 404 || (f.status == 200 && body == leaf_config("leaf1")),
            "{path}: {f:?}"
        );
    }
    // Leaf 1 asking the address of leaf 2's link (routed to it over its own
    // link): not its link, nothing.
    leaves[0]
        .ns
        .ip(&format!("route add 10.0.2.0/32 dev {}", leaves[0].ifname));
    let across = eos[0].fetch(&url(2, "/ztp/config"), lease[0].address);
    assert!(
        !String::from_utf8_lossy(&across.body).contains("leaf2"),
        "{across:?}"
    );

    // Changed on flash: served as changed, no restart.
    let changed = format!("{}! changed\n", leaf_config("leaf1"));
    std::fs::write(spine.path("configs/leaf1.cfg"), &changed).unwrap();
    let f = eos[0].fetch(&url(1, "/ztp/config"), lease[0].address);
    assert_eq!(String::from_utf8_lossy(&f.body), changed);

    // Gone from flash: 404, and the path is in the log.
    std::fs::remove_file(spine.path("configs/leaf1.cfg")).unwrap();
    let f = eos[0].fetch(&url(1, "/ztp/config"), lease[0].address);
    assert_eq!(f.status, 404);
    let path = spine.path("configs/leaf1.cfg").display().to_string();
    assert!(
        wait_until(SPINE_WAIT, || spine.log().contains(&path)),
        "{}",
        spine.log()
    );
    wait_stage(&spine, "Ethernet1", "failed");

    // A leaf reports progress: 204, recorded and shown.
    let json = r#"{"stage":"install","message":"writing startup-config"}"#;
    let out = curl(
        &leaves[0].ns,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Content-Type: application/json",
            "--data",
            json,
            &url(1, "/ztp/status"),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "204");
    assert!(wait_until(SPINE_WAIT, || ztp_of(&spine, "Ethernet1")
        ["detail"]
        .as_str()
        .unwrap_or("")
        .contains("writing startup-config")));
    assert!(spine.daemon.as_mut().unwrap().is_running());
}

#[test]
fn slow_or_oversized_clients_on_one_link_do_not_stop_another_leaf() {
    let mut spine = Spine::new();
    write_ztp_config(
        &spine,
        80,
        &[entry(1, "leaf1", None), entry(2, "leaf2", None)],
    );
    let l1 = spine.leaf(1, true);
    let l2 = spine.leaf(2, true);
    spine.start_daemon();
    let hostile = EosLeaf::new(&l1.ns, &l1.ifname, identity(1), &leaf_dir(&spine, "h"));
    let good = EosLeaf::new(&l2.ns, &l2.ifname, identity(2), &leaf_dir(&spine, "g"));
    let lease = hostile.dhcp(Client::Udhcpc).expect("a lease on Ethernet1");

    // 60 connections from leaf 1 that send half a request head and stall.
    let mut slow: Vec<TcpStream> = in_netns(&l1.ns, || {
        (0..60)
            .filter_map(|_| {
                let mut s = TcpStream::connect_timeout(
                    &(Ipv4Addr::new(10, 0, 1, 0), 80).into(),
                    Duration::from_secs(2),
                )
                .ok()?;
                let _ = s.write_all(b"GET /ztp/config HTTP/1.1\r\nHost: x\r\n");
                Some(s)
            })
            .collect()
    });
    assert!(!slow.is_empty(), "leaf 1 could open no connection at all");
    // Meanwhile leaf 2 does its whole ZTP.
    let round = good.ztp(Client::Udhcpc);
    assert_eq!(round.outcome, Outcome::ConfigSaved, "{}", spine.log());
    // ...while some of the slow ones were still held open (not served after them).
    let mut still_open = 0;
    for s in &mut slow {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        if matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
            still_open += 1;
        }
    }
    assert!(
        still_open > 0,
        "the slow connections were all gone before leaf 2 was served"
    );
    // The server cuts them off on its own (head timeout), none hangs forever.
    for s in &mut slow {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = Vec::new();
        let r = s.read_to_end(&mut buf);
        assert!(
            r.is_ok() || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{r:?}"
        );
    }

    // An oversized head and an oversized body are refused; the daemon lives.
    let url = "http://10.0.1.0/ztp/config";
    let big_header = format!("X-Junk: {}", "a".repeat(9000));
    let out = curl(
        &l1.ns,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &big_header,
            url,
        ],
    );
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(code == "431" || code == "000", "oversized head: {code}");
    let big_body = "x".repeat(5000);
    let out = curl(
        &l1.ns,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data",
            &big_body,
            "http://10.0.1.0/ztp/status",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "413");
    assert!(spine.daemon.as_mut().unwrap().is_running());
    let f = hostile.fetch(url, lease.address);
    assert_eq!(f.status, 200, "{f:?}\n{}", spine.log());
}

#[test]
fn two_spines_with_the_same_bundle_serve_the_same_config() {
    let mut a = Spine::new();
    let mut b = Spine::new();
    for s in [&a, &b] {
        write_ztp_config(s, 50080, &[entry(1, "leaf1", None)]);
    }
    let leaf_ns = Netns::new("zl");
    for (spine, net, ifname) in [(&a, 0u8, "lfa"), (&b, 1u8, "lfb")] {
        veth(&spine.ns, "et1", &leaf_ns, ifname);
        spine.ns.ip(&format!("addr add 10.{net}.1.0/31 dev et1"));
        spine.ns.ip("link set et1 up");
        leaf_ns.ip(&format!("link set {ifname} up"));
    }
    a.start_daemon();
    b.start_daemon();
    let dir = a.path("two-spines-leaf");
    let via_a = EosLeaf::new(&leaf_ns, "lfa", identity(1), &dir.join("a"));
    let via_b = EosLeaf::new(&leaf_ns, "lfb", identity(1), &dir.join("b"));
    let ra = via_a.ztp(Client::Dhclient);
    assert_eq!(ra.url, "http://10.0.1.0:50080/ztp/bootstrap");
    // Spine A is gone: B does not care.
    a.daemon.take();
    let rb = via_b.ztp(Client::Udhcpc);
    assert_eq!(rb.url, "http://10.1.1.0:50080/ztp/bootstrap");
    assert_eq!(ra.outcome, Outcome::ConfigSaved);
    assert_eq!(rb.outcome, Outcome::ConfigSaved, "{}", b.log());
    assert_eq!(via_a.startup_config(), Some(leaf_config("leaf1")));
    assert_eq!(via_a.startup_config(), via_b.startup_config());
}

#[test]
fn a_taken_port_is_named_with_the_eos_config_that_holds_it() {
    let spine = Spine::new();
    write_ztp_config(&spine, 80, &[entry(1, "leaf1", None)]);
    // Something (EOS's own HTTP server, here a plain listener) holds port 80.
    let _holder = in_netns(&spine.ns, || {
        std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 80)).expect("binding port 80")
    });
    let cfg = spine.config_path();
    let mut child = spine
        .ns
        .cmd(ztps_tests::agent_bin())
        .args(["daemon", "--config", cfg.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_until(SPINE_WAIT, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(exited, "the daemon kept running with port 80 taken: {err}");
    assert!(!out.status.success());
    assert!(err.contains("port 80"), "{err}");
    assert!(err.contains("protocol http"), "{err}");
    assert!(err.contains("50000-50100"), "{err}");
}

#[test]
fn sighup_changes_who_gets_what_and_a_restart_still_knows_its_leaves() {
    let mut spine = Spine::new();
    write_ztp_config(&spine, 80, &[entry(1, "leaf1", None)]);
    let leaf = spine.leaf(1, true);
    spine.start_daemon();
    let eos = EosLeaf::new(&leaf.ns, &leaf.ifname, identity(1), &leaf_dir(&spine, "h"));
    let round = eos.ztp(Client::Udhcpc);
    assert_eq!(round.outcome, Outcome::ConfigSaved, "{}", spine.log());
    let config = "http://10.0.1.0/ztp/config";

    // Port 1 now holds leaf9, locked to a serial: no restart, no lease lost.
    write_ztp_config(&spine, 80, &[entry(1, "leaf9", Some("JPE20000001"))]);
    spine
        .daemon
        .as_ref()
        .unwrap()
        .signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        wait_until(SPINE_WAIT, || {
            eos.fetch(config, round.lease.address).body == leaf_config("leaf9").as_bytes()
        }),
        "leaf9's config after SIGHUP:\n{}",
        spine.log()
    );
    // Status is published a moment later: wait for it, bounded.
    let shown = wait_until(SPINE_WAIT, || {
        let z = ztp_of(&spine, "Ethernet1");
        z["leaf"] == "leaf9" && z["stage"] == "config-sent"
    });
    assert!(shown, "{}", ztp_of(&spine, "Ethernet1"));

    // Killed and restarted: the leaf's lease, on flash, still admits it.
    spine.daemon.as_mut().unwrap().kill9();
    spine.start_daemon();
    let f = eos.fetch(config, round.lease.address);
    let ok = wait_until(SPINE_WAIT, || {
        eos.fetch(config, round.lease.address).body == leaf_config("leaf9").as_bytes()
    });
    assert!(ok, "after restart: {f:?}\n{}", spine.log());
}

#[test]
fn a_pool_link_points_its_leaf_at_the_pools_router() {
    let mut spine = Spine::new();
    write_ztp_config(&spine, 80, &[entry(5, "leaf5", None)]);
    // A /29 on the spine's side: no point-to-point plan, a pool serves it.
    let mut text = std::fs::read_to_string(spine.config_path()).unwrap();
    text = text.replace(
        "[dhcp]\n",
        "[dhcp]\nlink = [{ interface = \"Ethernet5\", range = \"10.0.7.2-10.0.7.6\", router = \"10.0.7.1\", prefix = 29 }]\n",
    );
    std::fs::write(spine.config_path(), text).unwrap();
    let ns = Netns::new("zp");
    veth(&spine.ns, "et5", &ns, "lf5");
    spine.ns.ip("addr add 10.0.7.1/29 dev et5");
    spine.ns.ip("link set et5 up");
    ns.ip("link set lf5 up");
    spine.start_daemon();
    let eos = EosLeaf::new(&ns, "lf5", identity(5), &leaf_dir(&spine, "pool"));
    let round = eos.ztp(Client::Dhclient);
    assert_eq!(round.url, "http://10.0.7.1/ztp/bootstrap");
    assert_eq!(round.outcome, Outcome::ConfigSaved, "{}", spine.log());
    assert_eq!(eos.startup_config(), Some(leaf_config("leaf5")));
    wait_stage(&spine, "Ethernet5", "config-sent");
}
