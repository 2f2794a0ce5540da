//! The DHCP server on its own (through `dhcp-harness`), in network namespaces,
//! against real clients: ISC dhclient, busybox udhcpc, dhcpcd and ISC perfdhcp.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use ztps_tests::clients::{self, Client};
use ztps_tests::netns::{veth, Netns};
use ztps_tests::{wait_until, ChildGuard};

pub(crate) const URL: &str = "http://10.10.10.11:8080/bootstrap";

pub(crate) fn vendor(serial: &str) -> String {
    format!("Arista;DCS-7050SX3-48YC8;11.00;{serial}")
}

/// A spine namespace running dhcp-harness, with leaves on veth pairs.
pub(crate) struct Spine {
    pub(crate) ns: Netns,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) server: Option<ChildGuard>,
    starts: u32,
}

pub(crate) struct Leaf {
    pub(crate) ns: Netns,
    pub(crate) ifname: String,
}

impl Spine {
    pub(crate) fn new() -> Spine {
        Spine {
            ns: Netns::new("sp"),
            dir: tempfile::tempdir().expect("tempdir"),
            server: None,
            starts: 0,
        }
    }

    /// Adds leaf `i` on spine port `et<i>`, spine 10.0.<i>.0/31.
    pub(crate) fn leaf(&self, i: u8) -> Leaf {
        let ns = Netns::new("lf");
        let ifname = format!("lf{i}");
        let port = format!("et{i}");
        veth(&self.ns, &port, &ns, &ifname);
        self.ns.ip(&format!("addr add 10.0.{i}.0/31 dev {port}"));
        self.ns.ip(&format!("link set {port} up"));
        ns.ip(&format!("link set {ifname} up"));
        Leaf { ns, ifname }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn set_links(&self, links: Value) {
        std::fs::write(self.path("links.json"), links.to_string()).expect("links.json");
    }

    pub(crate) fn start(&mut self, extra: &[&str]) {
        self.start_wrapped(&[], extra);
    }

    /// Starts the harness under `wrapper` (a command that execs its argument,
    /// e.g. `faketime`), with `extra` arguments.
    pub(crate) fn start_wrapped(&mut self, wrapper: &[&str], extra: &[&str]) {
        self.starts += 1;
        let log = self.path(&format!("harness.{}.log", self.starts));
        // ZTPS_DHCP_HARNESS runs another build (e.g. an older one, to measure
        // before and after a change); by default, this one.
        let bin = std::env::var_os("ZTPS_DHCP_HARNESS")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_dhcp-harness").into());
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = self.ns.cmd(first);
                c.args(rest).arg(bin);
                c
            }
            None => self.ns.cmd(bin),
        };
        let child = cmd
            .arg("--lease-file")
            .arg(self.path("leases.json"))
            .arg("--links")
            .arg(self.path("links.json"))
            .args(["--bootfile-url", URL])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("starting dhcp-harness");
        self.server = Some(ChildGuard::new("dhcp-harness", child));
        let ready = wait_until(Duration::from_secs(10), || {
            self.log().contains("harness: ready")
        });
        assert!(ready, "dhcp-harness did not start:\n{}", self.log());
    }

    /// The current server's log.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.path(&format!("harness.{}.log", self.starts)))
            .unwrap_or_default()
    }

    pub(crate) fn leases_file(&self) -> String {
        std::fs::read_to_string(self.path("leases.json")).unwrap_or_default()
    }
}

pub(crate) fn client(c: Client, spine: &Spine, leaf: &Leaf, class: &str) -> Option<clients::Lease> {
    clients::run_once(c, &leaf.ns, &leaf.ifname, class, spine.dir.path())
}

#[test]
fn dhclient_udhcpc_and_dhcpcd_get_address_mask_router_and_bootfile() {
    let mut spine = Spine::new();
    let leaves: Vec<Leaf> = (1..=3).map(|i| spine.leaf(i)).collect();
    spine.set_links(json!([{"ifname": "et1"}, {"ifname": "et2"}, {"ifname": "et3"}]));
    spine.start(&[]);
    for (i, (c, leaf)) in Client::ALL.iter().zip(&leaves).enumerate() {
        let i = i + 1;
        let serial = format!("JPE2000000{i}");
        let lease = client(*c, &spine, leaf, &vendor(&serial)).unwrap_or_else(|| {
            panic!(
                "{c:?} got no lease.\nclient log:\n{}\nserver log:\n{}",
                clients::log_of(*c, &leaf.ifname, spine.dir.path()),
                spine.log()
            )
        });
        assert_eq!(lease.address.to_string(), format!("10.0.{i}.1"), "{c:?}");
        assert_eq!(lease.netmask.to_string(), "255.255.255.254", "{c:?}");
        assert_eq!(
            lease.router.map(|r| r.to_string()),
            Some(format!("10.0.{i}.0")),
            "{c:?}"
        );
        assert_eq!(
            lease.bootfile.as_deref(),
            Some(URL),
            "{c:?}: {:?}",
            lease.env
        );
        assert!(
            spine.log().contains(&format!("ACK 10.0.{i}.1")) && spine.log().contains(&serial),
            "server logs the ACK with the serial:\n{}",
            spine.log()
        );
    }
    let stored = spine.leases_file();
    for i in 1..=3 {
        assert!(
            stored.contains(&format!("\t10.0.{i}.1\t")),
            "lease {i} stored:\n{stored}"
        );
    }
}

#[test]
fn a_client_without_the_arista_class_gets_nothing() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(1);
    spine.set_links(json!([{"ifname": "et1"}]));
    spine.start(&[]);
    assert_eq!(client(Client::Udhcpc, &spine, &leaf, "MSFT 5.0"), None);
    assert!(
        spine.log().contains("matches no configured class"),
        "{}",
        spine.log()
    );
    assert!(!spine.log().contains("OFFER"), "{}", spine.log());
}

#[test]
fn a_link_added_to_the_served_table_is_served_at_once_and_no_lease_is_lost() {
    let mut spine = Spine::new();
    let one = spine.leaf(1);
    let two = spine.leaf(2);
    spine.set_links(json!([{"ifname": "et1"}]));
    spine.start(&[]);
    let first = client(Client::Udhcpc, &spine, &one, &vendor("JPE1")).expect("et1 served");
    assert_eq!(first.address.to_string(), "10.0.1.1");
    assert_eq!(
        client(Client::Udhcpc, &spine, &two, &vendor("JPE2")),
        None,
        "et2 not served yet"
    );
    assert!(spine.log().contains("not a served link"), "{}", spine.log());
    spine.set_links(json!([{"ifname": "et1"}, {"ifname": "et2"}]));
    let pid = spine.server.as_ref().unwrap().id();
    spine
        .server
        .as_ref()
        .unwrap()
        .signal(nix::sys::signal::Signal::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || spine
        .log()
        .contains("links reloaded")));
    let second = client(Client::Udhcpc, &spine, &two, &vendor("JPE2")).expect("et2 served");
    assert_eq!(second.address.to_string(), "10.0.2.1");
    assert_eq!(
        spine.server.as_ref().unwrap().id(),
        pid,
        "same process: no restart"
    );
    let stored = spine.leases_file();
    assert!(
        stored.contains("\t10.0.1.1\t") && stored.contains("\t10.0.2.1\t"),
        "{stored}"
    );
}

#[test]
fn a_lease_survives_kill_9_and_restart() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(1);
    spine.set_links(json!([{"ifname": "et1"}]));
    spine.start(&["--replace-after", "3600"]);
    let got = client(Client::Udhcpc, &spine, &leaf, &vendor("JPE1")).expect("lease");
    assert_eq!(got.address.to_string(), "10.0.1.1");
    // The client saw the ACK, so the lease is on storage: crash the server.
    spine.server.as_mut().unwrap().kill9();
    assert!(
        spine.leases_file().contains("\t10.0.1.1\t"),
        "{}",
        spine.leases_file()
    );
    spine.start(&["--replace-after", "3600"]);
    assert!(spine.log().contains("loaded 1 leases"), "{}", spine.log());
    // The loaded lease is enforced: another leaf on that link is refused ...
    leaf.ns.ip(&format!(
        "link set {} address 02:00:00:00:00:99",
        leaf.ifname
    ));
    assert_eq!(client(Client::Udhcpc, &spine, &leaf, &vendor("JPE9")), None);
    assert!(spine.log().contains("held by"), "{}", spine.log());
}

#[test]
fn a_replaced_leaf_on_the_same_link_gets_the_same_address() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(1);
    spine.set_links(json!([{"ifname": "et1"}]));
    spine.start(&["--replace-after", "1"]);
    let old = client(Client::Udhcpc, &spine, &leaf, &vendor("JPEOLD0001")).expect("lease");
    // RMA: a new box with a new MAC on the same port.
    leaf.ns.ip(&format!(
        "link set {} address 02:00:00:00:00:42",
        leaf.ifname
    ));
    std::thread::sleep(Duration::from_millis(1500));
    let new = client(Client::Dhclient, &spine, &leaf, &vendor("JPENEW0002")).expect("lease");
    assert_eq!(new.address, old.address);
    let log = spine.log();
    assert!(
        log.contains("replaced leaf") && log.contains("JPEOLD0001") && log.contains("JPENEW0002"),
        "{log}"
    );
    let stored = spine.leases_file();
    assert!(stored.contains("\t020000000042\t"), "{stored}");
}

#[test]
fn port_67_taken_is_reported_with_the_likely_eos_cause() {
    let mut spine = Spine::new();
    spine.set_links(json!([]));
    spine.start(&[]);
    let out = spine
        .ns
        .cmd(env!("CARGO_BIN_EXE_dhcp-harness"))
        .arg("--lease-file")
        .arg(spine.path("other.json"))
        .arg("--links")
        .arg(spine.path("links.json"))
        .output()
        .expect("second harness");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains("ip helper-address"),
        "{err}"
    );
}

#[test]
fn perfdhcp_short_run_completes_with_no_drops() {
    let mut spine = Spine::new();
    let ns = Netns::new("pf");
    veth(&spine.ns, "et1", &ns, "pf0");
    spine.ns.ip("addr add 10.64.0.1/16 dev et1");
    spine.ns.ip("link set et1 up");
    ns.ip("addr add 10.64.0.2/16 dev pf0");
    ns.ip("link set pf0 up");
    spine.set_links(json!([{"ifname": "et1", "pool": {
        "first": "10.64.1.0", "last": "10.64.255.254", "router": "10.64.0.1", "prefix_len": 16}}]));
    spine.start(&[]);
    let class_hex: String = vendor("JPEPERF")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let out = ns
        .cmd("timeout")
        .args([
            "60", "perfdhcp", "-4", "-l", "pf0", "-r", "200", "-p", "5", "-R", "2000",
        ])
        .arg(format!("-o60,{class_hex}"))
        .arg("10.64.0.1")
        .output()
        .expect("perfdhcp (kea-admin) installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let report = perfdhcp_report(&text);
    eprintln!("perfdhcp report: {report:?}");
    assert!(report.sent_discovers >= 500, "{text}");
    assert_eq!(report.drops, 0, "{text}\nserver log:\n{}", spine.log());
    assert!(report.acks >= report.sent_discovers * 9 / 10, "{text}");
}

/// The figures of a perfdhcp run that the test checks.
#[derive(Debug, Default)]
struct PerfdhcpReport {
    sent_discovers: u64,
    acks: u64,
    drops: u64,
}

fn perfdhcp_report(text: &str) -> PerfdhcpReport {
    let mut r = PerfdhcpReport::default();
    let mut section = "";
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("***Statistics for:") {
            section = if l.contains("DISCOVER-OFFER") {
                "do"
            } else {
                "ra"
            };
        }
        let num = |l: &str| {
            l.split(':')
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if l.starts_with("sent packets:") && section == "do" {
            r.sent_discovers = num(l);
        }
        if l.starts_with("received packets:") && section == "ra" {
            r.acks = num(l);
        }
        if l.starts_with("drops:") {
            r.drops += num(l);
        }
    }
    r
}
