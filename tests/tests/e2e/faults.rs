//! Fault tests of the daemon: kill -9 under load, a damaged lease file, a full
//! disk, a flood of random MACs, FastCli hanging. Each proves that nothing
//! acknowledged is lost and that serving goes on.

use crate::agent::{text, vendor, Spine};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};
use ztps_dhcp::LeaseStore;
use ztps_tests::capture::AckCapture;
use ztps_tests::clients::Client;
use ztps_tests::netns::{veth, Netns};
use ztps_tests::{wait_until, ChildGuard};

const POOL_LINK: &str = r#"
[[dhcp.link]]
interface = "Ethernet1"
range = "10.64.1.0-10.64.255.254"
router = "10.64.0.1"
prefix = 16
"#;

/// A perfdhcp namespace on spine port `et1`, a /16 with a pool.
fn perfdhcp_client(spine: &Spine) -> Netns {
    let ns = Netns::new("pf");
    veth(&spine.ns, "et1", &ns, "pf0");
    spine.ns.ip("addr add 10.64.0.1/16 dev et1");
    spine.ns.ip("link set et1 up");
    ns.ip("addr add 10.64.0.2/16 dev pf0");
    ns.ip("link set pf0 up");
    ns
}

fn class_hex(serial: &str) -> String {
    vendor(serial).bytes().map(|b| format!("{b:02x}")).collect()
}

/// A small xorshift, seeded from the clock and printed, so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("ZTPS_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("random seed {seed} (replay with ZTPS_TEST_SEED={seed})");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The leases in a lease file, as the daemon would load them.
fn stored_leases(path: &std::path::Path) -> Vec<ztps_dhcp::Lease> {
    // Replay a copy: opening a store rewrites its file.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("leases.json");
    std::fs::copy(path, &copy).unwrap();
    let (_, leases, _) = LeaseStore::open(&copy).unwrap();
    leases
}

#[test]
fn kill_9_at_random_moments_under_perfdhcp_load_loses_no_acked_lease() {
    let mut spine = Spine::new();
    let client = perfdhcp_client(&spine);
    spine.write_config(crate::agent::URL_A, POOL_LINK);
    spine.start_daemon();
    let capture = AckCapture::start(&client, "pf0");
    let perf = client
        .cmd("perfdhcp")
        .args(["-4", "-l", "pf0", "-r", "300", "-R", "4000", "-p", "12"])
        .arg(format!("-o60,{}", class_hex("JPECRASH")))
        .arg("10.64.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("perfdhcp (kea-admin) installed");
    let mut perf = ChildGuard::new("perfdhcp", perf);
    let mut rng = Rng::new();
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(9) {
        std::thread::sleep(Duration::from_millis(400 + rng.below(1200)));
        spine.daemon.as_mut().unwrap().kill9();
        kills += 1;
        spine.start_daemon();
    }
    assert!(
        perf.wait_exit(Duration::from_secs(30)).is_some(),
        "perfdhcp did not finish"
    );
    // Let ACKs in flight land, then stop the capture and the daemon.
    std::thread::sleep(Duration::from_millis(300));
    let acks = capture.stop();
    spine
        .daemon
        .as_ref()
        .unwrap()
        .signal(nix::sys::signal::Signal::SIGTERM);
    spine
        .daemon
        .as_mut()
        .unwrap()
        .wait_exit(Duration::from_secs(10));
    let leases = stored_leases(&spine.path("leases.json"));
    let by_mac: HashMap<String, &ztps_dhcp::Lease> =
        leases.iter().map(|l| (l.mac.to_string(), l)).collect();
    eprintln!(
        "{kills} kills, {} ACKs seen by the client, {} leases stored",
        acks.len(),
        leases.len()
    );
    assert!(kills >= 4, "killed {kills} times");
    assert!(
        acks.len() > 300,
        "too few ACKs ({}) to mean anything",
        acks.len()
    );
    let mut lost = Vec::new();
    for a in &acks {
        match by_mac.get(a.mac.as_str()) {
            Some(l) if l.address == a.address && &*l.link == "Ethernet1" => {}
            other => lost.push((a.clone(), other.map(|l| l.address))),
        }
    }
    assert!(
        lost.is_empty(),
        "{} ACKed lease(s) not on storage after kill -9, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn a_damaged_lease_file_is_set_aside_and_every_valid_lease_kept() {
    let mut spine = Spine::new();
    let a = spine.leaf(1, true);
    let b = spine.leaf(2, true);
    spine.start_daemon();
    spine
        .client(Client::Udhcpc, &a, &vendor("JPEA"))
        .expect("lease a");
    spine
        .client(Client::Udhcpc, &b, &vendor("JPEB"))
        .expect("lease b");
    spine.daemon.as_mut().unwrap().kill9();
    // Damage: a garbage line in the middle and a torn record at the end.
    let path = spine.path("leases.json");
    let text_before = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text_before.lines().collect();
    lines.insert(2, "{\"op\":\"put\",\"link\":");
    let damaged = lines.join("\n") + "\n{\"op\":\"put\",\"li";
    std::fs::write(&path, &damaged).unwrap();
    spine.start_daemon();
    let log = spine.log();
    assert!(
        log.contains("was damaged") && log.contains("moved the original"),
        "{log}"
    );
    assert!(log.contains("loaded 2 lease(s)"), "{log}");
    let aside: Vec<_> = std::fs::read_dir(spine.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .contains("leases.json.damaged-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the damaged file is kept aside");
    assert_eq!(std::fs::read_to_string(aside[0].path()).unwrap(), damaged);
    let st = spine.status();
    assert!(
        st["lease_file_problem"]
            .as_str()
            .unwrap_or("")
            .contains("damaged"),
        "{st:#}"
    );
    assert!(wait_until(Duration::from_secs(5), || spine.status()
        ["active_leases"]
        == 2));
    // And it serves on.
    let again = spine.client(Client::Dhclient, &a, &vendor("JPEA")).unwrap();
    assert_eq!(again.address.to_string(), "10.0.1.1");
}

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct Tmpfs(std::path::PathBuf);
impl Tmpfs {
    fn mount(dir: std::path::PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "mounting a tmpfs needs root");
        Tmpfs(dir)
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_withholds_new_acks_keeps_renewals_and_recovers() {
    let mut spine = Spine::new();
    let tiny = Tmpfs::mount(spine.path("tiny"), "256k");
    spine.write_config(crate::agent::URL_A, POOL_LINK);
    let cfg = std::fs::read_to_string(spine.config_path())
        .unwrap()
        .replace(
            &format!("lease_file = \"{}\"", spine.path("leases.json").display()),
            &format!(
                "lease_file = \"{}\"",
                spine.path("tiny/leases.json").display()
            ),
        );
    std::fs::write(spine.config_path(), cfg).unwrap();
    let burst = perfdhcp_client(&spine);
    let a = spine.leaf(2, true);
    let b = spine.leaf(3, true);
    spine.start_daemon();
    spine
        .client(Client::Udhcpc, &a, &vendor("JPEA"))
        .expect("lease a while there is room");
    // Fill the disk. Appends still fit in the slack of the journal's last page,
    // so a burst of new leases uses that up until a write fails.
    let _ = spine.ns.sh(&format!(
        "dd if=/dev/zero of={} bs=4k 2>/dev/null",
        spine.path("tiny/filler").display()
    ));
    let out = burst
        .cmd("timeout")
        .args([
            "20", "perfdhcp", "-4", "-l", "pf0", "-r", "100", "-R", "200", "-n", "200",
        ])
        .arg(format!("-o60,{}", class_hex("JPEBURST")))
        .arg("10.64.0.1")
        .output()
        .expect("perfdhcp");
    let _ = out;
    assert!(
        wait_until(Duration::from_secs(10), || spine
            .log()
            .contains("withholding ACKs")),
        "{}",
        spine.log()
    );
    let log = spine.log();
    assert!(log.contains("No space left"), "{log}");
    // The failed batch was cut off the journal, which gave its pages back:
    // fill them too, so nothing more fits (records are small enough to).
    let _ = spine.ns.sh(&format!(
        "dd if=/dev/zero of={} bs=512 2>/dev/null",
        spine.path("tiny/filler2").display()
    ));
    // A new leaf: no ACK for what cannot be stored.
    assert_eq!(spine.client(Client::Udhcpc, &b, &vendor("JPEB")), None);
    // A known leaf renews: still answered.
    let renewed = spine
        .client(Client::Udhcpc, &a, &vendor("JPEA"))
        .expect("renewal of a stored lease answered on a full disk");
    assert_eq!(renewed.address.to_string(), "10.0.2.1");
    assert_eq!(
        spine.log().matches("withholding ACKs").count(),
        1,
        "logged once"
    );
    assert!(spine.status()["lease_file_problem"]
        .as_str()
        .unwrap_or("")
        .contains("writes failing"));
    // Space comes back: the pending changes are written and the new leaf served.
    std::fs::remove_file(spine.path("tiny/filler")).unwrap();
    let _ = std::fs::remove_file(spine.path("tiny/filler2"));
    let got = spine
        .client(Client::Udhcpc, &b, &vendor("JPEB"))
        .expect("served once space returns");
    assert_eq!(got.address.to_string(), "10.0.3.1");
    assert!(spine.log().contains("writable again"), "{}", spine.log());
    let stored = stored_leases(&spine.path("tiny/leases.json"));
    assert!(stored.iter().any(|l| l.address.to_string() == "10.0.3.1"));
    spine.daemon.as_mut().unwrap().kill9();
    drop(tiny);
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_flood_of_random_macs_keeps_memory_bounded_and_real_leaves_served() {
    let mut spine = Spine::new();
    // The flood comes from a perfdhcp namespace on et1 (a pool link), the real
    // leaf sits on et3.
    let flood = perfdhcp_client(&spine);
    spine.write_config(crate::agent::URL_A, POOL_LINK);
    let leaf = spine.leaf(3, true);
    spine.start_daemon();
    let pid = spine.daemon.as_ref().unwrap().id();
    let before = rss_kib(pid, "VmRSS:");
    let perf_out = spine.path("perfdhcp-flood.out");
    let perf = flood
        .cmd("perfdhcp")
        .args([
            "-4", "-l", "pf0", "-i", "-r", "3000", "-R", "1000000", "-p", "8",
        ])
        .arg(format!("-o60,{}", class_hex("JPEFLOOD")))
        .arg("10.64.0.1")
        .stdout(std::fs::File::create(&perf_out).expect("perfdhcp output"))
        .stderr(Stdio::null())
        .spawn()
        .expect("perfdhcp");
    let mut perf = ChildGuard::new("perfdhcp flood", perf);
    std::thread::sleep(Duration::from_secs(2));
    let lease = spine
        .client(Client::Udhcpc, &leaf, &vendor("JPEREAL"))
        .expect("a real leaf is served during the flood");
    assert_eq!(lease.address.to_string(), "10.0.3.1");
    perf.wait_exit(Duration::from_secs(30));
    let peak = rss_kib(pid, "VmHWM:");
    // OFFERs are counted, not logged (issue 11 item 6): perfdhcp says how many
    // it received.
    let report = std::fs::read_to_string(&perf_out).unwrap_or_default();
    let offered: u64 = report
        .split("***Statistics for: DISCOVER-OFFER***")
        .nth(1)
        .and_then(|s| {
            s.lines()
                .find(|l| l.trim().starts_with("received packets:"))
        })
        .and_then(|l| l.split(':').nth(1)?.trim().parse().ok())
        .unwrap_or(0);
    let offer_lines = spine.log().matches("OFFER").count();
    eprintln!(
        "RSS before {before} KiB, peak {peak} KiB; {offered} OFFERs received, \
         {offer_lines} OFFER lines logged"
    );
    assert!(offer_lines < 100, "OFFERs logged one per packet");
    assert!(
        offered > 1000,
        "the flood reached the server ({offered} offers)"
    );
    assert!(
        peak < before + 16 * 1024,
        "memory grew from {before} KiB to {peak} KiB under the flood"
    );
    assert!(spine.daemon.as_mut().unwrap().is_running());
}

#[test]
fn fastcli_hanging_past_its_timeout_is_killed_and_reported() {
    let spine = Spine::new();
    let cfg = spine.config_path();
    let started = Instant::now();
    let out = spine
        .ns
        .cmd(ztps_tests::agent_bin())
        .args(["boot", "--config", cfg.to_str().unwrap()])
        .env("FAKE_FASTCLI_LOG", spine.path("fastcli.log"))
        .env("FAKE_FASTCLI_MODE", "hang")
        .output()
        .unwrap();
    let took = started.elapsed();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("vm-restart   FAILED"), "{t}");
    assert!(
        t.contains("did not finish") || t.contains("timed out") || t.contains("timeout"),
        "{t}"
    );
    // 2 attempts x 3 s timeout + 2 s backoff, well under a minute.
    assert!(took < Duration::from_secs(30), "bounded: took {took:?}");
    // The bridge and forwarding were still done.
    assert!(
        t.contains("bridge       ok") && t.contains("forwarding   ok"),
        "{t}"
    );
}

#[test]
fn a_slow_eapi_is_an_outage_and_serving_continues() {
    let mut spine = Spine::new();
    let a = spine.leaf(1, true);
    spine.start_daemon();
    std::fs::write(
        spine.path("control.json"),
        r#"{"mode":"slow","delay_ms":5000}"#,
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || spine
            .log()
            .contains("did not answer within")),
        "{}",
        spine.log()
    );
    let l = spine
        .client(Client::Udhcpc, &a, &vendor("JPEA"))
        .expect("served while eAPI is slow");
    assert_eq!(l.address.to_string(), "10.0.1.1");
}
