//! `ztps-agent boot`, `daemon`, `status` and `check-config` end to end on a
//! simulated spine: a spine namespace with `eos-sim` (eAPI) and the fake FastCli,
//! `et1..etN` veths carrying /31s to leaf namespaces and `ma1`, and real DHCP
//! clients on the leaves.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;
use ztps_tests::clients::{self, Client};
use ztps_tests::netns::{veth, Netns};
use ztps_tests::{agent_bin, wait_until, ChildGuard};

pub(crate) const URL_A: &str = "http://10.10.10.11:8080/bootstrap";
const URL_B: &str = "http://10.10.10.11:8080/bootstrap-v2";

pub(crate) fn vendor(serial: &str) -> String {
    format!("Arista;DCS-7050SX3-48YC8;11.00;{serial}")
}

pub(crate) struct Leaf {
    pub(crate) ns: Netns,
    pub(crate) ifname: String,
}

/// A simulated spine: namespace, eos-sim, config, and the daemon when started.
pub(crate) struct Spine {
    pub(crate) ns: Netns,
    pub(crate) dir: tempfile::TempDir,
    _sim: ChildGuard,
    pub(crate) daemon: Option<ChildGuard>,
    starts: u32,
}

impl Spine {
    pub(crate) fn new() -> Spine {
        let ns = Netns::new("as");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("control.json"), r#"{"mode":"ok"}"#).unwrap();
        let sim = ns
            .cmd(env!("CARGO_BIN_EXE_eos-sim"))
            .arg("--unix")
            .arg(dir.path().join("eapi.sock"))
            .arg("--control")
            .arg(dir.path().join("control.json"))
            .args(["--model", "DCS-7280CR3-32P4", "--serial", "JPESPINE01"])
            .arg("--lldp-file")
            .arg(dir.path().join("lldp.json"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("eos-sim.log")).unwrap())
            .spawn()
            .expect("starting eos-sim");
        let sim = ChildGuard::new("eos-sim", sim);
        assert!(wait_until(Duration::from_secs(10), || dir
            .path()
            .join("eapi.sock")
            .exists()));
        let spine = Spine {
            ns,
            dir,
            _sim: sim,
            daemon: None,
            starts: 0,
        };
        spine.write_config(URL_A, "");
        spine
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.path("ztps.toml")
    }

    pub(crate) fn write_config(&self, bootfile: &str, extra: &str) {
        let d = self.dir.path().display();
        let text = format!(
            r#"[eapi]
url = "unix:{d}/eapi.sock"
poll_interval = "1s"
timeout = "2s"

[boot]
ready_timeout = "20s"
fastcli = "{fastcli}"
fastcli_timeout = "3s"
vm_restart_attempts = 2

[bridge]
name = "br0"
address = "10.10.10.1/24"

[dhcp]
bootfile_url = "{bootfile}"
lease_file = "{d}/leases.json"
replace_after = "1s"
{extra}

[log]
syslog = false
level = "info"

[state]
dir = "{d}/state"
"#,
            fastcli = env!("CARGO_BIN_EXE_fake-fastcli"),
        );
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// Leaf `i` on spine port `et<i>` (10.0.<i>.0/31); the spine port is left
    /// down when `up` is false.
    pub(crate) fn leaf(&self, i: u8, up: bool) -> Leaf {
        let ns = Netns::new("al");
        let ifname = format!("lf{i}");
        veth(&self.ns, &format!("et{i}"), &ns, &ifname);
        self.ns.ip(&format!("addr add 10.0.{i}.0/31 dev et{i}"));
        if up {
            self.ns.ip(&format!("link set et{i} up"));
        }
        ns.ip(&format!("link set {ifname} up"));
        Leaf { ns, ifname }
    }

    /// A management port `ma1` with a leaf-like host on it.
    pub(crate) fn management(&self) -> Leaf {
        let ns = Netns::new("am");
        veth(&self.ns, "ma1", &ns, "mg0");
        self.ns.ip("addr add 192.168.0.1/31 dev ma1");
        self.ns.ip("link set ma1 up");
        ns.ip("link set mg0 up");
        Leaf {
            ns,
            ifname: "mg0".into(),
        }
    }

    pub(crate) fn agent(&self, args: &[&str]) -> Output {
        self.ns
            .cmd(agent_bin())
            .args(args)
            .env("FAKE_FASTCLI_LOG", self.path("fastcli.log"))
            .output()
            .expect("running ztps-agent")
    }

    pub(crate) fn boot(&self) -> Output {
        let cfg = self.config_path();
        self.agent(&["boot", "--config", cfg.to_str().unwrap()])
    }

    pub(crate) fn start_daemon(&mut self) {
        self.start_daemon_with_env(&[]);
    }

    /// Starts the daemon with more environment variables (e.g. the syslog socket).
    pub(crate) fn start_daemon_with_env(&mut self, env: &[(&str, &std::path::Path)]) {
        self.starts += 1;
        let log = self.path(&format!("daemon.{}.log", self.starts));
        let child = self
            .ns
            .cmd(agent_bin())
            .args(["daemon", "--config"])
            .arg(self.config_path())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting the daemon");
        self.daemon = Some(ChildGuard::new("ztps-agent daemon", child));
        let up = wait_until(Duration::from_secs(10), || {
            self.log().contains("eAPI at") && self.path("state/status.json").exists()
        });
        assert!(up, "daemon did not come up:\n{}", self.log());
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.path(&format!("daemon.{}.log", self.starts)))
            .unwrap_or_default()
    }

    pub(crate) fn status(&self) -> Value {
        let cfg = self.config_path();
        let out = self.agent(&["status", "--config", cfg.to_str().unwrap(), "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json: {e}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    pub(crate) fn link_status(&self, eos: &str) -> Value {
        self.status()["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["eos_name"] == eos)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub(crate) fn set_eapi(&self, mode: &str) {
        std::fs::write(self.path("control.json"), format!(r#"{{"mode":"{mode}"}}"#)).unwrap();
    }

    pub(crate) fn client(&self, c: Client, leaf: &Leaf, class: &str) -> Option<clients::Lease> {
        clients::run_once(c, &leaf.ns, &leaf.ifname, class, self.dir.path())
    }
}

pub(crate) fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn boot_sets_up_bridge_and_forwarding_restarts_the_vm_and_is_idempotent() {
    let spine = Spine::new();
    let first = spine.boot();
    assert!(first.status.success(), "{}", text(&first));
    let addrs = spine.ns.ipv4_addrs("br0");
    assert_eq!(
        addrs,
        vec!["10.10.10.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    let br0 = spine.ns.ip("-d link show br0");
    assert!(
        br0.contains(",UP") && br0.contains("bridge"),
        "br0 is an up bridge: {br0}"
    );
    let fwd = spine.ns.sh("cat /proc/sys/net/ipv4/ip_forward");
    assert_eq!(String::from_utf8_lossy(&fwd.stdout).trim(), "1");
    let calls = std::fs::read_to_string(spine.path("fastcli.log")).unwrap();
    assert_eq!(calls.lines().count(), 1);
    assert!(calls.contains("virtual-machine ztps restart"), "{calls}");
    assert!(text(&first).contains("created"), "{}", text(&first));

    // Second run: nothing changes but the VM restart.
    let second = spine.boot();
    assert!(second.status.success(), "{}", text(&second));
    let t = text(&second);
    assert!(t.contains("nothing changed"), "bridge untouched: {t}");
    assert!(
        t.contains("already on") || t.contains("no change"),
        "forwarding untouched: {t}"
    );
    let calls = std::fs::read_to_string(spine.path("fastcli.log")).unwrap();
    assert_eq!(calls.lines().count(), 2, "the VM is restarted again");

    // Dry run: says what it would do, changes nothing.
    let cfg = spine.config_path();
    let dry = spine.agent(&["boot", "--config", cfg.to_str().unwrap(), "--dry-run"]);
    assert!(dry.status.success());
    assert!(text(&dry).contains("already in place"), "{}", text(&dry));
    let calls = std::fs::read_to_string(spine.path("fastcli.log")).unwrap();
    assert_eq!(calls.lines().count(), 2, "dry run restarts nothing");
}

#[test]
fn boot_in_spine_served_mode_builds_no_bridge_and_restarts_no_vm() {
    let spine = Spine::new();
    let cfg = spine.config_path();
    let mut config = std::fs::read_to_string(&cfg).unwrap();
    config.push_str("\n[ztp]\nserve = true\n");
    std::fs::write(&cfg, config).unwrap();
    let forwarding = || spine.ns.sh("cat /proc/sys/net/ipv4/ip_forward").stdout;
    let forwarding_before = forwarding();

    let out = spine.boot();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("ztp.serve = true"), "{t}");
    assert!(!t.contains("FAILED"), "{t}");
    let links = spine.ns.ip("-d link show");
    assert!(!links.contains("br0"), "no bridge is made: {links}");
    assert!(
        !spine.path("fastcli.log").exists(),
        "FastCli is not run: {:?}",
        std::fs::read_to_string(spine.path("fastcli.log"))
    );
    assert_eq!(forwarding(), forwarding_before, "forwarding is left alone");

    let dry = spine.agent(&["boot", "--config", cfg.to_str().unwrap(), "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("vm-restart  skipped"), "{}", text(&dry));
}

#[test]
fn boot_waits_for_eapi_and_reports_a_failing_fastcli() {
    let spine = Spine::new();
    spine.set_eapi("http502");
    let cfg = spine.config_path();
    let child = spine
        .ns
        .cmd(agent_bin())
        .args(["boot", "--config", cfg.to_str().unwrap()])
        .env("FAKE_FASTCLI_LOG", spine.path("fastcli.log"))
        .env("FAKE_FASTCLI_MODE", "invalid")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    spine.set_eapi("ok");
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("eAPI not ready"),
        "it waited through the 502s: {t}"
    );
    assert!(t.contains("eapi         ok"), "{t}");
    assert!(
        t.contains("vm-restart   FAILED") && t.contains("Invalid input"),
        "{t}"
    );
    let calls = std::fs::read_to_string(spine.path("fastcli.log")).unwrap();
    assert_eq!(
        calls.lines().count(),
        2,
        "bounded retries: vm_restart_attempts = 2"
    );
}

#[test]
fn every_leaf_is_provisioned_ma1_never_and_status_shows_them() {
    let mut spine = Spine::new();
    let leaves: Vec<Leaf> = (1..=4).map(|i| spine.leaf(i, true)).collect();
    let mgmt = spine.management();
    spine.start_daemon();
    for (i, c) in Client::ALL.iter().enumerate() {
        let n = i + 1;
        let lease = spine
            .client(*c, &leaves[i], &vendor(&format!("JPE0000000{n}")))
            .unwrap_or_else(|| panic!("{c:?} got no lease:\n{}", spine.log()));
        assert_eq!(lease.address.to_string(), format!("10.0.{n}.1"), "{c:?}");
        assert_eq!(lease.netmask.to_string(), "255.255.255.254");
        assert_eq!(lease.router.unwrap().to_string(), format!("10.0.{n}.0"));
        assert_eq!(lease.bootfile.as_deref(), Some(URL_A));
    }
    // Not an Arista: nothing.
    assert_eq!(spine.client(Client::Udhcpc, &leaves[3], "MSFT 5.0"), None);
    // The management port: never, even to an Arista.
    assert_eq!(
        spine.client(Client::Udhcpc, &mgmt, &vendor("JPEMGMT")),
        None
    );
    let log = spine.log();
    assert!(
        log.contains("Management1 (ma1): connected but not served: management"),
        "{log}"
    );
    assert!(
        log.contains("dropping DHCP from Management1 (ma1)"),
        "{log}"
    );
    assert!(log.contains("matches no configured class"), "{log}");

    assert!(wait_until(Duration::from_secs(5), || spine.status()
        ["active_leases"]
        == 3));
    let st = spine.status();
    for n in 1..=3 {
        let link = spine.link_status(&format!("Ethernet{n}"));
        assert_eq!(link["kernel_name"], format!("et{n}"));
        assert_eq!(link["served"], true);
        assert_eq!(link["lease"]["serial"], format!("JPE0000000{n}"), "{st:#}");
        assert_eq!(link["lease"]["model"], "DCS-7050SX3-48YC8");
        assert_eq!(link["lease"]["address"], format!("10.0.{n}.1"));
        assert_eq!(link["lease"]["state"], "bound");
    }
    let ma = spine.link_status("Management1");
    assert_eq!(ma["served"], false);
    assert!(ma["not_served"].as_str().unwrap().contains("management"));
    assert_eq!(st["eapi"]["ok"], true);
    // The table for people.
    let cfg = spine.config_path();
    let table = text(&spine.agent(&["status", "--config", cfg.to_str().unwrap()]));
    let row = table
        .lines()
        .find(|l| l.starts_with("Ethernet2"))
        .unwrap_or("");
    assert!(
        row.contains("10.0.2.1") && row.contains("JPE00000002") && row.contains("bound"),
        "{table}"
    );
}

#[test]
fn a_port_brought_up_later_is_served_without_a_restart() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(5, false);
    spine.start_daemon();
    assert!(
        spine.link_status("Ethernet5").is_null(),
        "not connected, not shown"
    );
    let pid = spine.daemon.as_ref().unwrap().id();
    spine.ns.ip("link set et5 up");
    assert!(
        wait_until(Duration::from_secs(5), || spine
            .log()
            .contains("Ethernet5 (et5): serving DHCP")),
        "{}",
        spine.log()
    );
    let lease = spine
        .client(Client::Udhcpc, &leaf, &vendor("JPE5"))
        .expect("served after link-up");
    assert_eq!(lease.address.to_string(), "10.0.5.1");
    assert_eq!(spine.daemon.as_ref().unwrap().id(), pid);
    assert!(spine.daemon.as_mut().unwrap().is_running());
    // Down again: no longer served, lease kept.
    spine.ns.ip("link set et5 down");
    assert!(
        wait_until(Duration::from_secs(5), || spine
            .log()
            .contains("Ethernet5 (et5): no longer served")),
        "{}",
        spine.log()
    );
    assert!(wait_until(Duration::from_secs(5), || {
        spine.link_status("Ethernet5")["lease"]["address"] == "10.0.5.1"
    }));
}

#[test]
fn kill_9_and_restart_keeps_every_lease() {
    let mut spine = Spine::new();
    let a = spine.leaf(1, true);
    let b = spine.leaf(2, true);
    spine.start_daemon();
    spine
        .client(Client::Udhcpc, &a, &vendor("JPEA"))
        .expect("lease a");
    spine
        .client(Client::Dhclient, &b, &vendor("JPEB"))
        .expect("lease b");
    spine.daemon.as_mut().unwrap().kill9();
    spine.start_daemon();
    assert!(spine.log().contains("loaded 2 lease(s)"), "{}", spine.log());
    assert!(wait_until(Duration::from_secs(5), || spine.status()
        ["active_leases"]
        == 2));
    assert_eq!(spine.link_status("Ethernet1")["lease"]["serial"], "JPEA");
    assert_eq!(spine.link_status("Ethernet2")["lease"]["serial"], "JPEB");
}

#[test]
fn sighup_applies_a_new_bootfile_and_ignores_an_invalid_file() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(1, true);
    spine.start_daemon();
    let first = spine
        .client(Client::Udhcpc, &leaf, &vendor("JPE1"))
        .unwrap();
    assert_eq!(first.bootfile.as_deref(), Some(URL_A));
    spine.write_config(URL_B, "");
    spine
        .daemon
        .as_ref()
        .unwrap()
        .signal(nix::sys::signal::Signal::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || spine
        .log()
        .contains("config reloaded")));
    let second = spine
        .client(Client::Udhcpc, &leaf, &vendor("JPE1"))
        .unwrap();
    assert_eq!(second.bootfile.as_deref(), Some(URL_B));
    // An invalid file: old config kept, error says where.
    std::fs::write(
        spine.config_path(),
        std::fs::read_to_string(spine.config_path()).unwrap() + "\nbogus_key = 1\n",
    )
    .unwrap();
    spine
        .daemon
        .as_ref()
        .unwrap()
        .signal(nix::sys::signal::Signal::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || spine
        .log()
        .contains("config not reloaded")));
    assert!(
        spine.log().contains("ztps.toml:"),
        "names the file and line: {}",
        spine.log()
    );
    let third = spine
        .client(Client::Dhcpcd, &leaf, &vendor("JPE1"))
        .unwrap();
    assert_eq!(third.bootfile.as_deref(), Some(URL_B));
    assert!(spine.daemon.as_mut().unwrap().is_running());
}

#[test]
fn an_eapi_outage_keeps_serving_and_is_logged_once() {
    let mut spine = Spine::new();
    let a = spine.leaf(1, true);
    let b = spine.leaf(2, true);
    spine.start_daemon();
    spine
        .client(Client::Udhcpc, &a, &vendor("JPEA"))
        .expect("lease before outage");
    spine.set_eapi("garbage");
    assert!(wait_until(Duration::from_secs(10), || spine
        .log()
        .contains("not answering")));
    // Served links stay served.
    let lease = spine
        .client(Client::Udhcpc, &b, &vendor("JPEB"))
        .expect("served during outage");
    assert_eq!(lease.address.to_string(), "10.0.2.1");
    assert_eq!(spine.status()["eapi"]["ok"], false);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        spine.log().matches("not answering").count(),
        1,
        "logged once:\n{}",
        spine.log()
    );
    spine.set_eapi("refuse");
    std::thread::sleep(Duration::from_secs(2));
    spine.set_eapi("ok");
    assert!(
        wait_until(Duration::from_secs(40), || spine
            .log()
            .contains("answering again")),
        "{}",
        spine.log()
    );
    assert_eq!(
        spine.log().matches("not answering").count(),
        1,
        "{}",
        spine.log()
    );
    assert!(wait_until(Duration::from_secs(5), || spine.status()
        ["eapi"]["ok"]
        == true));
}

#[test]
fn an_invalid_config_is_refused_with_file_line_and_key() {
    let spine = Spine::new();
    let bad = spine.path("bad.toml");
    std::fs::write(
        &bad,
        "[dhcp]\nbootfile_url = \"bootstrap\"\nlease_time = \"1 fortnight\"\n",
    )
    .unwrap();
    let check = spine.agent(&["check-config", bad.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    let t = text(&check);
    assert!(
        t.contains("bad.toml:3:") && t.contains("dhcp.lease_time"),
        "{t}"
    );
    let daemon = spine.agent(&["daemon", "--config", bad.to_str().unwrap()]);
    assert_eq!(daemon.status.code(), Some(2));
    assert!(text(&daemon).contains("bad.toml:3:"), "{}", text(&daemon));
    let cfg = spine.config_path();
    let good = spine.agent(&["check-config", cfg.to_str().unwrap()]);
    assert!(good.status.success(), "{}", text(&good));
    // status with no daemon running says so plainly.
    let st = spine.agent(&["status", "--config", cfg.to_str().unwrap()]);
    assert_eq!(st.status.code(), Some(3));
    assert!(text(&st).contains("not running"), "{}", text(&st));
}

#[test]
fn a_daemon_started_while_eapi_is_down_serves_what_the_kernel_sees_up() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(1, true);
    spine.set_eapi("refuse");
    spine.start_daemon();
    let log = spine.log();
    assert!(log.contains("not answering"), "{log}");
    assert!(
        log.contains("serving the links the kernel sees up"),
        "{log}"
    );
    let lease = spine
        .client(Client::Udhcpc, &leaf, &vendor("JPE1"))
        .expect("served from the kernel's view while eAPI is down");
    assert_eq!(lease.address.to_string(), "10.0.1.1");
    spine.set_eapi("ok");
    assert!(
        wait_until(Duration::from_secs(40), || spine.status()["eapi"]["ok"]
            == true),
        "{}",
        spine.log()
    );
    assert_eq!(spine.link_status("Ethernet1")["served"], true);
}
