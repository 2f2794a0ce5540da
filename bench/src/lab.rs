//! `cargo xtask lab`: the whole thing working, on one machine, in network
//! namespaces.
//!
//! A spine namespace runs `eos-sim` (eAPI) and the fake `FastCli`, then
//! `ztps-agent boot` and `ztps-agent daemon`, exactly as EOS would start them.
//! N leaf namespaces hang off `et1..etN` (/31s) and `ma1`; their links come up one
//! after another and each runs a real DHCP client (dhclient, udhcpc, dhcpcd in
//! turn) with an Arista ZTP vendor class. The agent's own `status` table is shown
//! live, then a summary per leaf. Every namespace and process is removed on exit
//! or Ctrl-C. All traffic stays inside the namespaces.

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
use ztps_tests::{wait_until, ChildGuard};

const TARGET: &str = "i686-unknown-linux-musl";
const BOOTFILE: &str = "http://10.10.10.11:8080/bootstrap";

/// A simulated spine and leaves in network namespaces, provisioned live.
#[derive(clap::Parser)]
#[command(name = "cargo xtask lab", bin_name = "cargo xtask lab")]
struct LabArgs {
    /// Number of leaves (1 to 32).
    #[arg(long, default_value_t = 4)]
    leaves: u8,
    /// Use a native debug build of the agent instead of the static i686 release
    /// binary that ships in the flash bundle (faster to build).
    #[arg(long)]
    fast: bool,
    /// After the summary, keep the lab running until Ctrl-C (to poke at it with
    /// `ip netns exec`).
    #[arg(long)]
    hold: bool,
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

/// Outcome of one leaf.
#[derive(Clone)]
struct LeafResult {
    lease: Option<clients::Lease>,
    took: Duration,
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

/// Runs the lab.
fn run_lab(args: LabArgs) -> Result<()> {
    require_root("cargo xtask lab")?;
    if args.leaves == 0 || args.leaves > 32 {
        bail!("--leaves must be 1 to 32");
    }
    let (agent, eos_sim, fastcli) = build(args.fast)?;
    remove_stale_namespaces();

    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;

    let dir = std::env::temp_dir().join(format!("ztps-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = write_config(&dir, &fastcli)?;
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
                client: Client::ALL[(usize::from(i) - 1) % 3],
                serial: format!("JPE{:08}", 20_000_000 + u32::from(i)),
            }
        })
        .collect();

    // EOS stand-ins.
    let sim = spine
        .cmd(&eos_sim)
        .arg("--unix")
        .arg(dir.join("eapi.sock"))
        .args(["--model", "DCS-7280CR3-32P4", "--serial", "JPESPINE0001"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("eos-sim.log"))?)
        .spawn()
        .context("starting eos-sim")?;
    let _sim = ChildGuard::new("eos-sim", sim);

    println!("== ztps-agent boot (as event-handler ztps would run it)");
    let boot = spine
        .cmd(&agent)
        .args(["boot", "--config"])
        .arg(&config)
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
    std::thread::scope(|scope| -> Result<()> {
        for (i, leaf) in leaves.iter().enumerate() {
            let results = results.clone();
            let spine = &spine;
            let dir = &dir;
            let stop = stop.clone();
            scope.spawn(move || {
                // One link every 1.5 s, like cables being patched in.
                let due = started + Duration::from_millis(1500 * i as u64);
                while Instant::now() < due {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let t0 = Instant::now();
                spine.ip(&format!("link set {} up", leaf.port));
                let class = format!("Arista;{};11.00;{}", models[i % models.len()], leaf.serial);
                let lease = clients::run_once(leaf.client, &leaf.ns, &leaf.ifname, &class, dir);
                results.lock().unwrap()[i] = Some(LeafResult {
                    lease,
                    took: t0.elapsed(),
                });
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30 + 2 * leaves.len() as u64);
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

    println!("== Summary: each leaf from link-up to lease");
    println!(
        "{:<8} {:<12} {:<9} {:<14} {:<36} LINK-UP TO LEASE",
        "LEAF", "CLIENT", "PORT", "ADDRESS", "BOOTFILE (option 67)"
    );
    let results = results.lock().unwrap().clone();
    let mut failed = 0;
    for (leaf, r) in leaves.iter().zip(&results) {
        let (addr, boot, took) = match r {
            Some(LeafResult {
                lease: Some(l),
                took,
            }) => (
                l.address.to_string(),
                l.bootfile.clone().unwrap_or_else(|| "(none)".into()),
                format!("{:.2} s", took.as_secs_f64()),
            ),
            Some(LeafResult { lease: None, took }) => {
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
    if leaves.iter().any(|l| l.client == Client::Dhcpcd) {
        println!(
            "(dhcpcd waits a random 1 to 10 s before its first DISCOVER, as RFC 2131 §4.4.1 asks;\n \
             dhclient and udhcpc start at once.)"
        );
    }
    println!(
        "\nThe management port ma1 was never served; the daemon log is {}",
        dir.join("daemon.log").display()
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
        bail!("{failed} leaf/leaves got no lease; see {}", dir.display());
    }
    Ok(())
}
