//! Workload 3: footprint of each server idle with 64 served links.
//!
//! Every server gets its own spine namespace with 64 ports up (10.1.N.1/30),
//! all connected to one leaf namespace, and starts in its dynamic mode (ISC
//! dhcpd under the recipe's restart poller, Kea with its SIGHUP poller, ours with
//! eos-sim answering eAPI). Ten leaves take a lease (the warm-up), then all
//! servers sit idle side by side; RSS is VmRSS summed over each server's process
//! tree. Next to ISC dhcpd runs a python3 process that polls eos-sim's eAPI once
//! a second, as the recipe's Python poller did, to measure what such a poller
//! costs. In the first run, CPU (utime+stime from /proc/PID/stat) of every
//! process tree is read over an idle window.

use super::proc::{process_tree, sleep, wait_until, Proc, CLOCK_TICKS_PER_SEC};
use super::servers::{save_configs, Bins, Mode, Running, Server, Setup};
use super::topo::{self, LinkSpec};
use super::{client, Progress};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use ztps_tests::netns::Netns;

/// Links per server.
pub const LINKS: u32 = 64;
/// Leases taken before measuring.
pub const WARM_LEASES: u32 = 10;
/// Idle time between the warm-up and the RSS reading.
pub const SETTLE: Duration = Duration::from_secs(3);

/// One process of a measured tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcRss {
    /// `comm`.
    pub name: String,
    /// VmRSS, KiB.
    pub rss_kib: u64,
}

/// One server's figures in one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Sum of VmRSS over the counted process trees, KiB.
    pub rss_kib: u64,
    /// The processes.
    pub processes: Vec<ProcRss>,
}

/// One run of the workload: every server, plus the python3 poller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// Per server key.
    pub servers: BTreeMap<String, Sample>,
    /// The python3 once-a-second eAPI poller, KiB.
    pub python_poller_kib: u64,
    /// CPU over the idle window, percent of one core, per server key (and
    /// `python-poller`); only in the run that measured it.
    pub cpu_pct: BTreeMap<String, f64>,
    /// The idle window, seconds (0 if CPU was not measured in this run).
    pub cpu_window_s: f64,
}

struct Live {
    key: &'static str,
    _spine: Netns,
    _leaf: Netns,
    running: Running,
}

/// The sample (VmRSS) and CPU ticks of the trees of `pids`.
pub fn tree_of(pids: &[(&'static str, u32)]) -> (Sample, u64) {
    let mut processes = Vec::new();
    let mut ticks = 0;
    for (_, pid) in pids {
        for p in process_tree(*pid) {
            ticks += p.cpu_ticks;
            processes.push(ProcRss {
                name: p.name,
                rss_kib: p.rss_kib,
            });
        }
    }
    let rss_kib = processes.iter().map(|p| p.rss_kib).sum();
    (Sample { rss_kib, processes }, ticks)
}

/// Runs the workload once for every server in `servers`; measures CPU over
/// `cpu_window` if given.
pub fn run_once(
    servers: &[&dyn Server],
    bins: &Bins,
    work: &Path,
    run_no: usize,
    cpu_window: Option<Duration>,
    save: Option<&Path>,
    progress: &mut Progress,
) -> Result<Run> {
    let links: Vec<LinkSpec> = (1..=LINKS).map(LinkSpec::p2p).collect();
    let mut live = Vec::new();
    let mut python = None;
    for server in servers {
        let dir = work.join(format!("footprint-{}-{run_no}", server.key()));
        std::fs::create_dir_all(&dir)?;
        let spine = Netns::new("sp");
        let leaf = Netns::new("lf");
        topo::connect(&spine, &leaf, &links, |_| true, &dir)?;
        let setup = Setup {
            ns: &spine,
            dir: &dir,
            links: &links,
            mode: Mode::Dynamic,
        };
        let t = Instant::now();
        let mut running = server.start(&setup)?;
        // The warm-up doubles as the proof that the server serves: retry a few
        // times (a server may still be learning its links).
        let mut missing: Vec<String> = (1..=WARM_LEASES).map(|n| format!("lf{n}")).collect();
        for _ in 0..3 {
            running.check_alive()?;
            missing = client::lease_all(&leaf, &missing, &dir, 5)?;
            if missing.is_empty() {
                break;
            }
        }
        if !missing.is_empty() {
            bail!(
                "{}: no lease for {} after the warm-up\n{}",
                running.name,
                missing.join(", "),
                running.logs()
            );
        }
        progress.note(&format!(
            "{} up with {LINKS} links, {WARM_LEASES} leases in {:.1} s",
            server.key(),
            t.elapsed().as_secs_f64()
        ));
        if let Some(to) = save {
            let names = [(spine.name(), "$SPINE")];
            save_configs(&running, &dir, &names, &to.join(server.key()))?;
        }
        if server.key() == "isc" {
            python = Some(start_python_poller(bins, &spine, &dir)?);
        }
        live.push(Live {
            key: server.key(),
            _spine: spine,
            _leaf: leaf,
            running,
        });
    }
    sleep(SETTLE)?;
    let mut out = Run {
        servers: BTreeMap::new(),
        python_poller_kib: 0,
        cpu_pct: BTreeMap::new(),
        cpu_window_s: 0.0,
    };
    let python_pid = python.as_ref().map(|(_, p)| p.pid());
    for l in &mut live {
        l.running.check_alive()?;
        let (sample, _) = tree_of(&l.running.counted_pids());
        out.servers.insert(l.key.to_string(), sample);
    }
    if let Some(pid) = python_pid {
        out.python_poller_kib = tree_of(&[("python", pid)]).0.rss_kib;
    }
    if let Some(window) = cpu_window {
        let ticks = |live: &[Live]| -> Vec<u64> {
            let mut v: Vec<u64> = live
                .iter()
                .map(|l| tree_of(&l.running.counted_pids()).1)
                .collect();
            v.push(python_pid.map(|p| tree_of(&[("python", p)]).1).unwrap_or(0));
            v
        };
        progress.note(&format!(
            "idle CPU window of {} s, every server side by side",
            window.as_secs()
        ));
        let before = ticks(&live);
        let t = Instant::now();
        sleep(window)?;
        let after = ticks(&live);
        let secs = t.elapsed().as_secs_f64();
        let pct = |i: usize| {
            after[i].saturating_sub(before[i]) as f64 / CLOCK_TICKS_PER_SEC as f64 / secs * 100.0
        };
        for (i, l) in live.iter().enumerate() {
            out.cpu_pct.insert(l.key.to_string(), pct(i));
        }
        if python_pid.is_some() {
            out.cpu_pct.insert("python-poller".into(), pct(live.len()));
        }
        out.cpu_window_s = secs;
    }
    for l in &mut live {
        l.running.check_alive()?;
    }
    drop(python);
    drop(live);
    for server in servers {
        let _ = std::fs::remove_dir_all(work.join(format!("footprint-{}-{run_no}", server.key())));
    }
    Ok(out)
}

/// eos-sim plus the python3 poller in `ns`; both killed when the pair drops.
fn start_python_poller(bins: &Bins, ns: &Netns, dir: &Path) -> Result<(Proc, Proc)> {
    let sock = dir.join("py-eapi.sock");
    let ready = dir.join("py-eos-sim.ready");
    let mut cmd = ns.cmd(&bins.eos_sim);
    cmd.arg("--unix").arg(&sock).arg("--ready-file").arg(&ready);
    let eos = Proc::spawn("eos-sim", cmd, &dir.join("py-eos-sim.log"))?;
    if !wait_until(Duration::from_secs(10), || Ok(ready.exists()))? {
        bail!(
            "eos-sim for the python poller did not start:\n{}",
            eos.log()
        );
    }
    let mut cmd = ns.cmd(&bins.python);
    cmd.arg(bins.scripts.join("eapi-poller.py"))
        .arg(&sock)
        .args(["true", "3600"]);
    let mut py = Proc::spawn("python3 poller", cmd, &dir.join("py-poller.log"))?;
    // Let it import and poll a couple of times before it is measured.
    sleep(Duration::from_millis(1500))?;
    if let Some(status) = py.exited() {
        bail!("the python3 poller exited ({status}):\n{}", py.log());
    }
    Ok((eos, py))
}
