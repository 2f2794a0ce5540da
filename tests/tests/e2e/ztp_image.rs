//! EOS upgrades through the spine (`[ztp.image]`), end to end: the daemon in a
//! spine namespace serves DHCP and ZTP; each leaf namespace is an [`EosLeaf`]
//! (a real DHCP client, curl with the `X-Arista-*` headers) that runs the
//! upgrade script with real bash, curl, sha256sum and df against a private
//! tmpfs `/mnt/flash`, sized per test.

use crate::agent::{Leaf, Spine};
use crate::ztp::{entry, leaf_config, write_ztp_config_with};
use std::time::{Duration, Instant};
use ztps_tests::clients::Client;
use ztps_tests::wait_until;
use ztps_tests::ztp_leaf::{EosLeaf, Identity, Outcome, SPINE_WAIT};

const VERSION: &str = "4.33.2F";
const IMAGE_NAME: &str = "EOS-4.33.2F.swi";
/// Big enough that a rate-limited download can be interrupted part way.
const IMAGE_BYTES: usize = 24 * 1024 * 1024;

/// `[[ztp.leaf]]` i is `leaf<i>` on `Ethernet<i>`, locked to `SERIALS[i - 1]`.
const NAMES: [&str; 8] = [
    "leaf1", "leaf2", "leaf3", "leaf4", "leaf5", "leaf6", "leaf7", "leaf8",
];
const SERIALS: [&str; 8] = [
    "JPE30000001",
    "JPE30000002",
    "JPE30000003",
    "JPE30000004",
    "JPE30000005",
    "JPE30000006",
    "JPE30000007",
    "JPE30000008",
];

/// Bytes that differ at every offset (a misplaced range shows): xorshift64.
fn image_bytes() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(IMAGE_BYTES);
    while out.len() < IMAGE_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(IMAGE_BYTES);
    out
}

/// A spine in ZTP mode with `[ztp.image]` and leaves 1..=n (`leaf<i>` on
/// `Ethernet<i>`, locked to its serial), links up, daemon started.
struct Lab {
    spine: Spine,
    leaves: Vec<Leaf>,
    image: Vec<u8>,
}

fn lab(n: u8, max_downloads: usize) -> Lab {
    let mut spine = Spine::new();
    let images = spine.path("images");
    std::fs::create_dir_all(&images).unwrap();
    let image = image_bytes();
    std::fs::write(images.join(IMAGE_NAME), &image).unwrap();
    let leaves: Vec<_> = (1..=n)
        .map(|i| {
            entry(
                i,
                NAMES[usize::from(i) - 1],
                Some(SERIALS[usize::from(i) - 1]),
            )
        })
        .collect();
    let image_keys = format!(
        "max_image_downloads = {max_downloads}\n\n[ztp.image]\nfile = \"{}\"\nversion = \"{VERSION}\"\n",
        images.join(IMAGE_NAME).display()
    );
    write_ztp_config_with(&spine, 80, &leaves, &image_keys);
    let leaves = (1..=n).map(|i| spine.leaf(i, true)).collect();
    spine.start_daemon();
    Lab {
        spine,
        leaves,
        image,
    }
}

impl Lab {
    fn eos_leaf(&self, i: u8, version: &str) -> EosLeaf<'_> {
        let leaf = &self.leaves[usize::from(i) - 1];
        let serial = SERIALS[usize::from(i) - 1];
        let mut identity = Identity::new(serial, &format!("00:1c:73:00:01:{i:02x}"));
        identity.version = version.into();
        let dir = self.spine.path(&format!("leaf{i}"));
        EosLeaf::new(&leaf.ns, &leaf.ifname, identity, &dir)
    }

    /// Spine port `et<i>` sends at most `mbit` Mbit/s, so a download takes a while.
    fn rate_limit(&self, i: u8, mbit: u32) {
        let out = self.spine.ns.sh(&format!(
            "tc qdisc replace dev et{i} root tbf rate {mbit}mbit burst 64kb latency 500ms"
        ));
        assert!(
            out.status.success(),
            "tc (sch_tbf) is needed to slow a link down: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn assert_upgraded(&self, leaf: &EosLeaf<'_>, name: &str, round: &Outcome) {
        let Outcome::ScriptRan { exit: 0, output } = round else {
            panic!(
                "{name}: the upgrade script did not succeed: {round:?}\n{}",
                self.spine.log()
            );
        };
        let flash = leaf.flash();
        let on_flash = std::fs::read(flash.join(IMAGE_NAME)).unwrap_or_default();
        assert!(
            on_flash == self.image,
            "{name}: the image on flash differs:\n{output}"
        );
        assert!(!flash.join(format!("{IMAGE_NAME}.part")).exists());
        assert_eq!(
            std::fs::read_to_string(flash.join("boot-config")).unwrap(),
            format!("SWI=flash:{IMAGE_NAME}\n")
        );
        assert_eq!(leaf.startup_config().unwrap(), leaf_config(name));
    }

    fn ztp_of(&self, link: &str) -> serde_json::Value {
        self.spine.link_status(link)["ztp"].clone()
    }
}

#[test]
fn a_leaf_on_another_version_upgrades_then_installs_its_config() {
    let lab = lab(1, 8);
    let leaf = lab.eos_leaf(1, "4.30.1F");
    let round = leaf.ztp(Client::Dhclient);
    lab.assert_upgraded(&leaf, "leaf1", &round.outcome);
    // The spine saw the script, the whole image, then the config fetched.
    let log_has = |what: &str| wait_until(SPINE_WAIT, || lab.spine.log().contains(what));
    for stage in ["script-sent", "image", "image-done", "config-sent"] {
        assert!(
            log_has(stage),
            "no {stage} in the daemon log:\n{}",
            lab.spine.log()
        );
    }
    let ok = wait_until(SPINE_WAIT, || {
        lab.ztp_of("Ethernet1")["stage"] == "config-sent"
    });
    assert!(ok, "{}", lab.ztp_of("Ethernet1"));
    assert!(
        lab.ztp_of("Ethernet1")["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        lab.ztp_of("Ethernet1")
    );
}

#[test]
fn a_leaf_already_on_the_version_gets_the_plain_config() {
    let lab = lab(1, 8);
    let leaf = lab.eos_leaf(1, VERSION);
    let round = leaf.ztp(Client::Udhcpc);
    assert_eq!(round.outcome, Outcome::ConfigSaved, "{}", lab.spine.log());
    assert_eq!(leaf.startup_config().unwrap(), leaf_config("leaf1"));
    assert!(!leaf.flash().join(IMAGE_NAME).exists());
    assert!(!lab.spine.log().contains("image-done"));
}

#[test]
fn flash_too_small_fails_cleanly_and_reports_failed() {
    let lab = lab(1, 8);
    let mut leaf = lab.eos_leaf(1, "4.30.1F");
    // Room for the image, but not for the image plus the script's margin.
    leaf.flash_kib = Some((IMAGE_BYTES / 1024 + 4 * 1024) as u64);
    let round = leaf.ztp(Client::Dhclient);
    let Outcome::ScriptRan { exit, output } = &round.outcome else {
        panic!("expected the upgrade script: {:?}", round.outcome);
    };
    assert_ne!(*exit, 0, "{output}");
    assert!(output.contains("not enough space"), "{output}");
    let left: Vec<_> = std::fs::read_dir(leaf.flash())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing may be left on flash: {left:?}");
    let ok = wait_until(SPINE_WAIT, || lab.ztp_of("Ethernet1")["stage"] == "failed");
    assert!(ok, "{}\n{}", lab.ztp_of("Ethernet1"), lab.spine.log());
    let detail = lab.ztp_of("Ethernet1")["detail"].to_string();
    assert!(detail.contains("not enough space"), "{detail}");
}

/// The pid of the leaf's curl fetching `/ztp/image`, if one runs now.
fn image_curl(leaf: &Leaf) -> Option<u32> {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", leaf.ns.name()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"curl"))
                && args.iter().any(|a| a.ends_with(b"/ztp/image"))
        })
}

#[test]
fn an_interrupted_download_resumes_where_it_stopped() {
    let lab = lab(1, 8);
    lab.rate_limit(1, 40); // 24 MiB in about 5 s
    let leaf = lab.eos_leaf(1, "4.30.1F");
    std::thread::scope(|s| {
        let killer = s.spawn(|| {
            // Kill the leaf's image download once it has run a second (by pid,
            // in the leaf's own namespace): the script must resume it.
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Some(pid) = image_curl(&lab.leaves[0]) {
                    std::thread::sleep(Duration::from_millis(1500));
                    let gone = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                    return gone.is_ok();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        });
        let round = leaf.ztp(Client::Dhclient);
        assert!(
            killer.join().unwrap(),
            "the download was never seen running"
        );
        lab.assert_upgraded(&leaf, "leaf1", &round.outcome);
        let Outcome::ScriptRan { output, .. } = &round.outcome else {
            unreachable!()
        };
        assert!(output.contains("resuming"), "{output}");
    });
}

#[test]
fn a_partial_image_left_by_a_reboot_is_resumed() {
    let lab = lab(1, 8);
    let leaf = lab.eos_leaf(1, "4.30.1F");
    // Power was lost mid-download last time: two thirds are on flash.
    let have = IMAGE_BYTES * 2 / 3;
    std::fs::write(
        leaf.flash().join(format!("{IMAGE_NAME}.part")),
        &lab.image[..have],
    )
    .unwrap();
    let round = leaf.ztp(Client::Dhclient);
    lab.assert_upgraded(&leaf, "leaf1", &round.outcome);
    let Outcome::ScriptRan { output, .. } = &round.outcome else {
        unreachable!()
    };
    let resumed = format!("resuming {IMAGE_NAME} at byte {have} of {IMAGE_BYTES}");
    assert!(output.contains(&resumed), "{output}");
}

#[test]
fn eight_leaves_with_a_cap_of_four_all_finish() {
    let lab = lab(8, 4);
    for i in 1..=8 {
        lab.rate_limit(i, 80); // each download takes about 2.5 s
    }
    let leaves: Vec<EosLeaf<'_>> = (1..=8).map(|i| lab.eos_leaf(i, "4.30.1F")).collect();
    let rounds: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = leaves
            .iter()
            .map(|l| s.spawn(move || l.ztp(Client::Dhclient).outcome))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut busy = 0;
    for (i, (leaf, round)) in leaves.iter().zip(&rounds).enumerate() {
        lab.assert_upgraded(leaf, &format!("leaf{}", i + 1), round);
        if let Outcome::ScriptRan { output, .. } = round {
            busy += usize::from(output.contains("busy (503)"));
        }
    }
    assert!(
        busy >= 1,
        "with 8 leaves and a cap of 4, some must have waited"
    );
    for i in 1..=8 {
        let link = format!("Ethernet{i}");
        let ok = wait_until(SPINE_WAIT, || lab.ztp_of(&link)["stage"] == "config-sent");
        assert!(ok, "{link}: {}", lab.ztp_of(&link));
    }
}
