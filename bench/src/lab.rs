//! `cargo xtask lab`: the whole thing working, on one machine, in network
//! namespaces.
//!
//! A spine namespace runs `eos-sim` (eAPI, LLDP from a table the lab writes)
//! and `ztps-agent daemon`, as EOS would start it. N leaf namespaces hang off
//! `et1..etN` (/31s) and `ma1`; their links come up one after another.
//!
//! By default the spine serves ZTP itself (`[ztp] serve = true`, no VM): each
//! leaf behaves like EOS ZTP (`ztps_tests::ztp_leaf::EosLeaf`: a real DHCP
//! client with an Arista vendor class, curl for option 67 with the
//! `X-Arista-*` headers, the config saved as startup-config), then "reboots"
//! as its config's hostname, which the lab puts in eos-sim's LLDP table for
//! that port; the live table shows each leaf pass `dhcp`, `config-sent`,
//! `provisioned`. With `--vm`, the VM flow: the fake `FastCli`, `ztps-agent
//! boot`, and DHCP only (option 67 to the ZTPServer VM).
//!
//! With `--upgrade`, every leaf says it runs an older EOS than the spine's
//! `[ztp.image]` (a generated image of `--image-mib` MiB): it gets the upgrade
//! script, runs it with bash in its private tmpfs `/mnt/flash` (download,
//! sha256, boot-config, startup-config), then "reboots" into provisioned.
//! With `--at-once`, every link comes up at the same moment instead of one
//! every 1.5 s (the timing figures of issues 12 and 13 in BENCHMARKS.md).
//!
//! The agent's own `status` table is shown live, then a summary per leaf with
//! the time each step took, and the median and maximum of each step. Every namespace and process is removed on exit or
//! Ctrl-C. All traffic stays inside the namespaces.

use anyhow::{bail, Context, Result};
use clap::Parser as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ztps_bench::{cargo, require_root, run, target_dir};
use ztps_tests::clients::{self, Client};
use ztps_tests::netns::{veth, Netns};
use ztps_tests::ztp_leaf::{EosLeaf, Identity, Outcome};
use ztps_tests::{wait_until, ChildGuard};

const TARGET: &str = "i686-unknown-linux-musl";
const BOOTFILE: &str = "http://10.10.10.11:8080/bootstrap";
/// The EOS version of the lab's generated image (`--upgrade`); the leaves say
/// they run `Identity::new`'s 4.30.1F.
const IMAGE_VERSION: &str = "4.33.2F";
/// How often the lab reads `status.json` to time the agent's stages (the
/// daemon writes it at most every 200 ms).
const STATUS_POLL: Duration = Duration::from_millis(25);

/// A simulated spine and leaves in network namespaces, provisioned live.
#[derive(clap::Parser)]
#[command(name = "cargo xtask lab", bin_name = "cargo xtask lab")]
struct LabArgs {
    /// Number of leaves (1 to 64).
    #[arg(long, default_value_t = 4)]
    leaves: u8,
    /// Bring every leaf's link up at the same moment (default: one every 1.5 s).
    #[arg(long)]
    at_once: bool,
    /// Leaves present an older EOS (`X-Arista-SoftwareVersion`) and the spine
    /// has a `[ztp.image]`: each leaf runs the upgrade script, then reboots.
    #[arg(long, conflicts_with = "vm")]
    upgrade: bool,
    /// Size of the generated EOS image for `--upgrade`, MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=2048))]
    image_mib: u32,
    /// Use a native debug build of the agent instead of the static i686 release
    /// binary that ships in the flash bundle (faster to build).
    #[arg(long)]
    fast: bool,
    /// After the summary, keep the lab running until Ctrl-C (to poke at it with
    /// `ip netns exec`).
    #[arg(long)]
    hold: bool,
    /// The VM flow (`[ztp] serve = false`): `boot` builds br0 and restarts the
    /// ZTPServer VM through FastCli, option 67 points at the VM, leaves only
    /// get DHCP. Without it the spine serves ZTP itself.
    #[arg(long)]
    vm: bool,
}

fn main() -> Result<()> {
    run_lab(LabArgs::parse())
}

struct Leaf {
    ns: Netns,
    port: String,
    ifname: String,
    client: Client,
    serial: String,
}

/// Outcome of one leaf; times from its link coming up.
#[derive(Clone)]
struct LeafResult {
    lease: Option<clients::Lease>,
    took: Duration,
    /// ZTP mode: the bootstrap received (and saved as startup-config).
    config_sent: Option<Duration>,
    /// `--upgrade`: the upgrade script received (leaf side).
    script_sent: Option<Duration>,
    /// `--upgrade`: the agent's status first showed `image-done` or a later
    /// stage for this leaf's port.
    image_done: Option<Duration>,
    /// ZTP mode: the daemon's status shows `provisioned`.
    provisioned: Option<Duration>,
    /// ZTP mode: what went wrong, if anything.
    problem: Option<String>,
}

impl LeafResult {
    fn lease_only(lease: Option<clients::Lease>, took: Duration) -> Self {
        LeafResult {
            lease,
            took,
            config_sent: None,
            script_sent: None,
            image_done: None,
            provisioned: None,
            problem: None,
        }
    }
}

fn build(fast: bool) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let agent = if fast {
        eprintln!("lab: building ztps-agent (debug, native)");
        run(cargo().args(["build", "-p", "ztps-agent"]))?;
        target_dir().join("debug/ztps-agent")
    } else {
        eprintln!("lab: building the static {TARGET} ztps-agent that ships in the bundle");
        run(cargo().args(["build", "--release", "-p", "ztps-agent", "--target", TARGET]))?;
        target_dir().join(TARGET).join("release/ztps-agent")
    };
    eprintln!("lab: building eos-sim and fake-fastcli");
    run(cargo().args([
        "build",
        "-p",
        "ztps-tests",
        "--bin",
        "eos-sim",
        "--bin",
        "fake-fastcli",
    ]))?;
    let debug = target_dir().join("debug");
    Ok((agent, debug.join("eos-sim"), debug.join("fake-fastcli")))
}

/// Removes namespaces left by a lab or test run whose process is gone.
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("ztps") else {
            continue;
        };
        let pid: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let alive = pid
            .parse::<u32>()
            .map(|p| Path::new(&format!("/proc/{p}")).exists())
            .unwrap_or(true);
        if !alive {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// The leaf config the operator would put on flash for leaf `i`.
fn leaf_config(i: u8) -> String {
    format!(
        "hostname leaf{i}\n!\ninterface Ethernet49/1\n   no switchport\n   ip address 10.0.0.{}/31\n!\nip routing\nend\n",
        2 * u16::from(i) - 1
    )
}

/// `--upgrade`: writes an EOS image of `mib` MiB of pseudo-random bytes (so
/// nothing compresses or dedups it) and returns its path.
fn write_image(dir: &Path, mib: u32) -> Result<PathBuf> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images)?;
    let path = images.join(format!("EOS-{IMAGE_VERSION}.swi"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            // xorshift64: cheap bytes that do not repeat within the image.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(path)
}

/// ZTP mode: option 67 per link to the spine itself, a `[[ztp.leaf]]` and a
/// config per leaf (the first one locked to its serial), and with `image` a
/// `[ztp.image]` that every leaf is upgraded to first.
fn write_ztp_config(dir: &Path, leaves: &[Leaf], image: Option<&Path>) -> Result<PathBuf> {
    let d = dir.display();
    let configs = dir.join("configs");
    std::fs::create_dir_all(&configs)?;
    let mut text = format!(
        r#"# ztps-agent config of the lab (see README, "Configuration").
[eapi]
url = "unix:{d}/eapi.sock"
poll_interval = "1s"

[dhcp]
interfaces = ["Ethernet*"]
lease_time = "1d"
lease_file = "{d}/leases.json"

[log]
syslog = false

[state]
dir = "{d}/state"

[ztp]
serve = true
port = 80
configs = "{d}/configs"
"#
    );
    if let Some(image) = image {
        text.push_str(&format!(
            "\n[ztp.image]\nfile = \"{}\"\nversion = \"{IMAGE_VERSION}\"\n",
            image.display()
        ));
    }
    for (i, leaf) in leaves.iter().enumerate() {
        let n = i as u8 + 1;
        text.push_str(&format!(
            "\n[[ztp.leaf]]\ninterface = \"Ethernet{n}\"\nname = \"leaf{n}\"\n"
        ));
        if n == 1 {
            text.push_str(&format!("serial = \"{}\"\n", leaf.serial));
        }
        std::fs::write(configs.join(format!("leaf{n}.cfg")), leaf_config(n))?;
    }
    let path = dir.join("ztps.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn write_config(dir: &Path, fastcli: &Path) -> Result<PathBuf> {
    let d = dir.display();
    let path = dir.join("ztps.toml");
    std::fs::write(
        &path,
        format!(
            r#"# ztps-agent config of the lab (see README, "Configuration").
[eapi]
url = "unix:{d}/eapi.sock"
poll_interval = "2s"

[boot]
ready_timeout = "30s"
fastcli = "{fastcli}"

[bridge]
name = "br0"
address = "10.10.10.1/24"

[vm]
name = "ztps"

[dhcp]
bootfile_url = "{BOOTFILE}"
interfaces = ["Ethernet*"]
lease_time = "1d"
lease_file = "{d}/leases.json"
hostname = "leaf-{{serial}}"

[log]
syslog = false

[state]
dir = "{d}/state"
"#,
            fastcli = fastcli.display()
        ),
    )?;
    Ok(path)
}

/// VM flow: `ztps-agent boot`, as `event-handler ztps` would run it.
fn boot(spine: &Netns, agent: &Path, config: &Path, dir: &Path) -> Result<()> {
    println!("== ztps-agent boot (as event-handler ztps would run it)");
    let boot = spine
        .cmd(agent)
        .args(["boot", "--config"])
        .arg(config)
        .env("FAKE_FASTCLI_LOG", dir.join("fastcli.log"))
        .env("RUST_LOG", "warn")
        .output()
        .context("running ztps-agent boot")?;
    print!("{}", String::from_utf8_lossy(&boot.stdout));
    if !boot.status.success() {
        bail!(
            "ztps-agent boot failed:\n{}",
            String::from_utf8_lossy(&boot.stderr)
        );
    }
    Ok(())
}

/// ZTP flow for one leaf, its link just up: DHCP and the bootstrap as EOS
/// does them, "reboot" into its hostname (LLDP on its spine port), then wait
/// for the daemon to call it provisioned.
fn ztp_leaf(
    leaf: &Leaf,
    n: u8,
    dir: &Path,
    lldp: &Path,
    t0: Instant,
    stages: &StageTimes,
) -> LeafResult {
    let mac = format!("00:1c:73:00:01:{n:02x}");
    let eos = EosLeaf::new(
        &leaf.ns,
        &leaf.ifname,
        Identity::new(&leaf.serial, &mac),
        &dir.join(format!("leaf{n}")),
    );
    let round = match eos.try_ztp(leaf.client) {
        Ok(r) => r,
        Err(e) => {
            let mut r = LeafResult::lease_only(None, t0.elapsed());
            r.problem = Some(e);
            return r;
        }
    };
    let mut result = LeafResult::lease_only(Some(round.lease.clone()), round.dhcp_took);
    let bootstrap_received = round.dhcp_took + round.fetch_took;
    match &round.outcome {
        Outcome::ConfigSaved => result.config_sent = Some(bootstrap_received),
        Outcome::ScriptRan { exit: 0, .. } => {
            result.script_sent = Some(bootstrap_received);
            result.image_done = stages.image_done(&leaf.eos_port(), t0);
        }
        other => {
            result.problem = Some(format!("bootstrap not saved: {other:?}"));
            return result;
        }
    }
    let Some(hostname) = eos.reboot() else {
        result.problem = Some("no hostname in the startup-config".into());
        return result;
    };
    ztps_tests::eos::set_lldp_neighbor(lldp, &leaf.eos_port(), &hostname, "Ethernet49/1");
    let status = dir.join("state/status.json");
    let provisioned = wait_until(Duration::from_secs(30), || {
        let Ok(text) = std::fs::read_to_string(&status) else {
            return false;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return false;
        };
        v["links"].as_array().is_some_and(|links| {
            links.iter().any(|l| {
                l["eos_name"] == leaf.eos_port().as_str() && l["ztp"]["stage"] == "provisioned"
            })
        })
    });
    if provisioned {
        result.provisioned = Some(t0.elapsed());
        if result.script_sent.is_some() {
            // The daemon writes status at most every 200 ms: read it again
            // in case image-done was first seen only now.
            result.image_done = result
                .image_done
                .or(stages.image_done(&leaf.eos_port(), t0));
        }
    } else {
        result.problem = Some("not provisioned within 30 s of its LLDP name".into());
    }
    result
}

/// When the agent's status first showed each port at `image-done` or past it
/// (`status.json` read every [`STATUS_POLL`]; the daemon writes it at most every
/// 200 ms, so a time is late by up to about 225 ms).
#[derive(Default)]
struct StageTimes {
    image_done: Mutex<std::collections::HashMap<String, Instant>>,
}

impl StageTimes {
    /// Reads `status.json` once and notes ports newly at `image-done` or later.
    fn poll(&self, status: &Path) {
        let Ok(text) = std::fs::read_to_string(status) else {
            return;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return;
        };
        let now = Instant::now();
        let mut seen = self.image_done.lock().unwrap();
        for link in v["links"].as_array().into_iter().flatten() {
            let past_image = matches!(
                link["ztp"]["stage"].as_str(),
                Some("image-done" | "config-sent" | "provisioned")
            );
            if let (true, Some(port)) = (past_image, link["eos_name"].as_str()) {
                seen.entry(port.to_string()).or_insert(now);
            }
        }
    }

    /// From `t0` to when `port` was first seen at `image-done` or later.
    fn image_done(&self, port: &str, t0: Instant) -> Option<Duration> {
        let seen = self.image_done.lock().unwrap();
        seen.get(port).map(|at| at.saturating_duration_since(t0))
    }
}

impl Leaf {
    /// The spine port's EOS name.
    fn eos_port(&self) -> String {
        format!("Ethernet{}", self.port.trim_start_matches("et"))
    }
}

/// Runs the lab.
fn run_lab(args: LabArgs) -> Result<()> {
    require_root("cargo xtask lab")?;
    if args.leaves == 0 || args.leaves > 64 {
        bail!("--leaves must be 1 to 64");
    }
    let (agent, eos_sim, fastcli) = build(args.fast)?;
    remove_stale_namespaces();

    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;

    let dir = std::env::temp_dir().join(format!("ztps-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut workdir = WorkDir::new(dir.clone());
    eprintln!("lab: files, logs and leases in {}", dir.display());

    // The spine, its management port, and the leaves (ports down for now).
    let spine = Netns::new("spine");
    let mgmt = Netns::new("mgmt");
    veth(&spine, "ma1", &mgmt, "mgmt0");
    spine.ip("addr add 192.168.0.1/24 dev ma1");
    spine.ip("link set ma1 up");
    mgmt.ip("addr add 192.168.0.10/24 dev mgmt0");
    mgmt.ip("link set mgmt0 up");
    let models = ["DCS-7050SX3-48YC8", "DCS-7280CR3-32P4", "DCS-7050CX3-32S"];
    let leaves: Vec<Leaf> = (1..=args.leaves)
        .map(|i| {
            let ns = Netns::new(&format!("leaf{i}"));
            let port = format!("et{i}");
            let ifname = format!("leaf{i}");
            veth(&spine, &port, &ns, &ifname);
            let base = 2 * (u16::from(i) - 1);
            spine.ip(&format!(
                "addr add 10.0.{}.{}/31 dev {port}",
                base / 256,
                base % 256
            ));
            ns.ip(&format!("link set {ifname} up"));
            Leaf {
                ns,
                port,
                ifname,
                // Timed runs leave out dhcpcd, which waits a random 1 to 10 s
                // before its first DISCOVER (RFC 2131 §4.4.1).
                client: if args.at_once || args.upgrade {
                    [Client::Dhclient, Client::Udhcpc][(usize::from(i) - 1) % 2]
                } else {
                    Client::ALL[(usize::from(i) - 1) % 3]
                },
                serial: format!("JPE{:08}", 20_000_000 + u32::from(i)),
            }
        })
        .collect();
    let config = if args.vm {
        write_config(&dir, &fastcli)?
    } else if args.upgrade {
        eprintln!("lab: writing a {} MiB EOS image", args.image_mib);
        let image = write_image(&dir, args.image_mib)?;
        write_ztp_config(&dir, &leaves, Some(&image))?
    } else {
        write_ztp_config(&dir, &leaves, None)?
    };
    let lldp = dir.join("lldp.json");

    // EOS stand-ins.
    let sim = spine
        .cmd(&eos_sim)
        .arg("--unix")
        .arg(dir.join("eapi.sock"))
        .args(["--model", "DCS-7280CR3-32P4", "--serial", "JPESPINE0001"])
        .arg("--lldp-file")
        .arg(&lldp)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("eos-sim.log"))?)
        .spawn()
        .context("starting eos-sim")?;
    let _sim = ChildGuard::new("eos-sim", sim);

    if args.vm {
        boot(&spine, &agent, &config, &dir)?;
    }

    println!("\n== ztps-agent daemon (as daemon ztps would run it)");
    let daemon = spine
        .cmd(&agent)
        .args(["daemon", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log"))?)
        .spawn()
        .context("starting ztps-agent daemon")?;
    let mut daemon = ChildGuard::new("ztps-agent daemon", daemon);
    if !wait_until(Duration::from_secs(10), || {
        dir.join("state/status.json").exists()
    }) {
        bail!(
            "the daemon did not start; its log:\n{}",
            std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
        );
    }

    // Leaves: links up one after another, each with its own client.
    let results: Arc<Mutex<Vec<Option<LeafResult>>>> =
        Arc::new(Mutex::new(vec![None; leaves.len()]));
    let started = Instant::now();
    let status_cmd = |dir: &Path| -> String {
        let out = spine
            .cmd(&agent)
            .args(["status", "--config"])
            .arg(dir.join("ztps.toml"))
            .output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => format!("status: {e}"),
        }
    };
    let tty = std::io::stdout().is_terminal();
    let mut last_table = String::new();
    let stages = StageTimes::default();
    let all_done = AtomicBool::new(false);
    let deadline = Instant::now()
        + Duration::from_secs(60 + 2 * leaves.len() as u64 + if args.upgrade { 240 } else { 0 });
    std::thread::scope(|scope| -> Result<()> {
        if args.upgrade {
            let (stages, all_done, stop, status) =
                (&stages, &all_done, &stop, dir.join("state/status.json"));
            scope.spawn(move || {
                while !all_done.load(Ordering::Relaxed)
                    && !stop.load(Ordering::Relaxed)
                    && Instant::now() < deadline
                {
                    stages.poll(&status);
                    std::thread::sleep(STATUS_POLL);
                }
            });
        }
        for (i, leaf) in leaves.iter().enumerate() {
            let results = results.clone();
            let spine = &spine;
            let dir = &dir;
            let lldp = &lldp;
            let stop = stop.clone();
            let vm = args.vm;
            let stages = &stages;
            let gap = if args.at_once { 0 } else { 1500 };
            scope.spawn(move || {
                // One link every 1.5 s, like cables being patched in, or all
                // at the same moment.
                let due = started + Duration::from_millis(gap * i as u64);
                while Instant::now() < due {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let t0 = Instant::now();
                spine.ip(&format!("link set {} up", leaf.port));
                let result = if vm {
                    let class =
                        format!("Arista;{};11.00;{}", models[i % models.len()], leaf.serial);
                    let lease = clients::run_once(leaf.client, &leaf.ns, &leaf.ifname, &class, dir);
                    LeafResult::lease_only(lease, t0.elapsed())
                } else {
                    ztp_leaf(leaf, i as u8 + 1, dir, lldp, t0, stages)
                };
                results.lock().unwrap()[i] = Some(result);
            });
        }
        loop {
            let table = status_cmd(&dir);
            if tty {
                print!("\x1b[2J\x1b[H== ztps-agent status (live; Ctrl-C stops the lab)\n\n{table}");
                std::io::stdout().flush()?;
            } else if table
                .lines()
                .filter(|l| !l.contains(" ago"))
                .ne(last_table.lines().filter(|l| !l.contains(" ago")))
            {
                println!("\n== ztps-agent status\n{table}");
            }
            last_table = table;
            let done = results.lock().unwrap().iter().all(Option::is_some);
            if done || stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        all_done.store(true, Ordering::Relaxed);
        // Stop any client still trying, so the threads end.
        for leaf in &leaves {
            leaf.ns.kill_processes();
        }
        Ok(())
    })?;
    if stop.load(Ordering::Relaxed) {
        eprintln!("lab: interrupted; cleaning up");
        return Ok(());
    }
    println!("\n== ztps-agent status\n{}", status_cmd(&dir));

    let results = results.lock().unwrap().clone();
    let failed = if args.vm {
        summary_vm(&leaves, &results)
    } else {
        summary_ztp(&leaves, &results, args.upgrade)
    };
    if leaves.iter().any(|l| l.client == Client::Dhcpcd) {
        println!(
            "(dhcpcd waits a random 1 to 10 s before its first DISCOVER, as RFC 2131 §4.4.1 asks;\n \
             dhclient and udhcpc start at once.)"
        );
    }
    println!(
        "\nThe management port ma1 was never served. The lab's files ({}) go when it ends; \
         --hold keeps it running for a look at them and at the namespaces.",
        dir.display()
    );
    if args.hold {
        println!(
            "Holding the lab: spine namespace {}; Ctrl-C to stop and clean up.",
            spine.name()
        );
        while !stop.load(Ordering::Relaxed) && daemon.is_running() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let _ = daemon.wait_exit(Duration::from_secs(5));
    if failed > 0 {
        workdir.keep();
        bail!(
            "{failed} leaf/leaves did not get through; see {} (kept for a look; the image is removed)",
            dir.display()
        );
    }
    Ok(())
}

/// The lab's working directory: removed when the lab ends, unless a leaf
/// failed and its logs are worth a look; even then the generated EOS image
/// and the leaves' downloaded copies (hundreds of MiB each run) go.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn new(path: PathBuf) -> Self {
        WorkDir { path, keep: false }
    }

    /// Keep the logs, leases and configs after the lab ends.
    fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
            return;
        }
        let _ = std::fs::remove_dir_all(self.path.join("images"));
        for leaf in std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
        {
            let flash = leaf.path().join("flash");
            if flash.is_dir() {
                let _ = std::fs::remove_dir_all(flash);
            }
        }
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2} s", d.as_secs_f64()))
        .unwrap_or_else(|| "-".into())
}

/// VM flow summary; returns how many leaves got no lease.
fn summary_vm(leaves: &[Leaf], results: &[Option<LeafResult>]) -> usize {
    println!("== Summary: each leaf from link-up to lease");
    println!(
        "{:<8} {:<12} {:<9} {:<14} {:<36} LINK-UP TO LEASE",
        "LEAF", "CLIENT", "PORT", "ADDRESS", "BOOTFILE (option 67)"
    );
    let mut failed = 0;
    let mut leased = Vec::new();
    for (leaf, r) in leaves.iter().zip(results) {
        if let Some(LeafResult {
            lease: Some(l),
            took,
            ..
        }) = r
        {
            if l.bootfile.is_some() {
                leased.push(*took);
            }
        }
        let (addr, boot, took) = match r {
            Some(LeafResult {
                lease: Some(l),
                took,
                ..
            }) => (
                l.address.to_string(),
                l.bootfile.clone().unwrap_or_else(|| "(none)".into()),
                secs(Some(*took)),
            ),
            Some(LeafResult {
                lease: None, took, ..
            }) => {
                failed += 1;
                (
                    "NO LEASE".into(),
                    "-".into(),
                    format!("gave up after {:.1} s", took.as_secs_f64()),
                )
            }
            None => {
                failed += 1;
                ("not run".into(), "-".into(), "-".into())
            }
        };
        println!(
            "{:<8} {:<12} {:<9} {:<14} {:<36} {}",
            leaf.ifname,
            leaf.client.program(),
            leaf.port,
            addr,
            boot,
            took
        );
    }
    if !leased.is_empty() {
        println!(
            "\n== Link-up to the ACK with option 67 over {} leaves: {}",
            leaves.len(),
            median_max(&mut leased)
        );
    }
    failed
}

/// ZTP flow summary (times from link-up), then the median and maximum of
/// each step; returns how many leaves did not reach `provisioned`.
fn summary_ztp(leaves: &[Leaf], results: &[Option<LeafResult>], upgrade: bool) -> usize {
    let sent = if upgrade {
        "SCRIPT-SENT"
    } else {
        "CONFIG-SENT"
    };
    println!(
        "== Summary: each leaf from link-up to dhcp, {}{}provisioned",
        sent.to_lowercase(),
        if upgrade {
            ", image-done and "
        } else {
            " and "
        }
    );
    println!(
        "{:<8} {:<9} {:<10} {:<11} {:<32} {:>9} {:>12} {:>11} {:>12}",
        "LEAF", "CLIENT", "PORT", "ADDRESS", "OPTION 67", "DHCP", sent, "IMAGE-DONE", "PROVISIONED"
    );
    let mut failed = 0;
    let mut steps: [Vec<Duration>; 4] = Default::default();
    for (leaf, r) in leaves.iter().zip(results) {
        let Some(r) = r else {
            failed += 1;
            println!("{:<8} not run", leaf.ifname);
            continue;
        };
        let (addr, url) = match &r.lease {
            Some(l) => (
                l.address.to_string(),
                l.bootfile.clone().unwrap_or_else(|| "(none)".into()),
            ),
            None => ("NO LEASE".into(), "-".into()),
        };
        let times = [
            r.lease.as_ref().map(|_| r.took),
            if upgrade {
                r.script_sent
            } else {
                r.config_sent
            },
            r.image_done,
            r.provisioned,
        ];
        for (step, t) in steps.iter_mut().zip(times) {
            step.extend(t);
        }
        println!(
            "{:<8} {:<9} {:<10} {:<11} {:<32} {:>9} {:>12} {:>11} {:>12}",
            leaf.ifname,
            leaf.client.program(),
            leaf.eos_port(),
            addr,
            url,
            secs(times[0]),
            secs(times[1]),
            secs(times[2]),
            secs(times[3])
        );
        if let Some(p) = &r.problem {
            failed += 1;
            println!("         {p}");
        }
    }
    let names = ["dhcp", &sent.to_lowercase(), "image-done", "provisioned"];
    println!("\n== Link-up to each step over {} leaves", leaves.len());
    for (name, step) in names.iter().zip(steps.iter_mut()) {
        if !step.is_empty() {
            println!("{name:<12} {}", median_max(step));
        }
    }
    failed
}

/// "median X s, max Y s (n of them)".
fn median_max(times: &mut [Duration]) -> String {
    times.sort();
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2
    };
    format!(
        "median {:.3} s, max {:.3} s (n = {n})",
        median.as_secs_f64(),
        times[n - 1].as_secs_f64()
    )
}
