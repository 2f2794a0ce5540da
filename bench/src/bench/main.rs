//! `cargo xtask bench`: ztps-agent against ISC dhcpd, Kea and dnsmasq, side by
//! side in one run, in network namespaces on this machine (issue 7).
//!
//! Three workloads, each run `--runs` times per server with the servers
//! interleaved, so that a noisy minute hits them all:
//! 1. throughput: perfdhcp stepping its rate up ([`throughput`]);
//! 2. link-up to lease: a port comes up, a waiting udhcpc gets its lease
//!    ([`linkup`]);
//! 3. footprint: RSS and idle CPU with 64 served links, and the size of our
//!    static i686 binary ([`footprint`]);
//! 4. scale: RSS holding 50,000 leases, idle CPU with 2,000 links ([`scale`]).
//!
//! `--only W` runs one workload and carries the others over from the newest
//! file in `bench/results/`, so BENCHMARKS.md stays whole. The lab's ZTP
//! timings (`bench/lab-timings.md`, from `cargo xtask lab --at-once
//! [--upgrade]`) are appended as written.
//!
//! It installs the Debian packages it lacks, builds what it needs in release,
//! and writes `BENCHMARKS.md` and `bench/results/<date>.json`. The servers are
//! behind one trait ([`servers::Server`]); "ours" is `ztps-agent daemon` with
//! `eos-sim` (default) or `dhcp-harness` (`--ours harness`).
//!
//! **Invariants.** All traffic stays in namespaces the benchmark made; every
//! process it starts is in a guarded process group and every namespace is
//! deleted on the way out, including on error or Ctrl-C; every wait and loop is
//! bounded.

mod client;
mod footprint;
mod linkup;
mod perfdhcp;
mod probe;
mod proc;
mod report;
mod scale;
mod servers;
mod throughput;
mod topo;
mod ztp;

use anyhow::{bail, Context, Result};
use clap::Parser as _;
use report::{Binary, Machine, Results, ServerInfo};
use servers::{Bins, Dnsmasq, IscDhcpd, Kea, Mode, Ours, OursServer, Server};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use ztps_bench::{cargo, require_root, root, run as run_cmd, target_dir};

fn main() -> Result<()> {
    run(BenchArgs::parse())
}

const I686: &str = "i686-unknown-linux-musl";
const X86_64: &str = "x86_64-unknown-linux-musl";

/// ztps-agent against ISC dhcpd, Kea and dnsmasq, side by side; writes BENCHMARKS.md.
#[derive(clap::Parser)]
#[command(name = "cargo xtask bench", bin_name = "cargo xtask bench")]
struct BenchArgs {
    /// Runs of each workload per server; medians are reported [default: 5, or 1
    /// with --quick].
    #[arg(long)]
    runs: Option<u32>,
    /// A smoke test (about 3 minutes): one run, 2 bisection steps instead of 3,
    /// a 2 s latency run instead of 5 s, a 10 s idle CPU window instead of 60 s.
    #[arg(long)]
    quick: bool,
    /// What "ours" is: the agent with eos-sim, or the DHCP crate's harness.
    #[arg(long, value_enum, default_value_t = Ours::Agent)]
    ours: Ours,
    /// Run one workload only.
    #[arg(long, value_enum)]
    only: Option<Workload>,
    /// Measure only this server (repeatable): ours, ours-i686, ours-x86_64,
    /// isc, kea, dnsmasq. A partial run is printed and saved as
    /// `bench/results/STAMP-partial.json`; BENCHMARKS.md is left as it is.
    #[arg(long = "server", value_name = "KEY")]
    servers: Vec<String>,
}

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    Throughput,
    Linkup,
    Footprint,
    /// 16 leaves fetch a 512 MiB EOS image: ours, nginx, python3 http.server.
    Ztp,
    Scale,
}

/// Progress lines on stderr, with the time since the start.
pub struct Progress {
    start: Instant,
}

impl Progress {
    /// Prints one line.
    pub fn note(&mut self, msg: &str) {
        eprintln!("bench [{:>6.1}s] {msg}", self.start.elapsed().as_secs_f64());
    }
}

/// The work directory (configs, lease files, logs), on disk; removed at the end.
struct WorkDir {
    path: PathBuf,
    fs: String,
}

impl WorkDir {
    fn new() -> Result<WorkDir> {
        let name = format!("ztps-bench-{}", std::process::id());
        let mut tried = Vec::new();
        for base in [PathBuf::from("/var/tmp"), root().join("target")] {
            std::fs::create_dir_all(&base).ok();
            let fs = fs_type(&base);
            if fs.contains("tmpfs") || fs.contains("ramfs") || fs.is_empty() {
                tried.push(format!("{} ({fs})", base.display()));
                continue;
            }
            let path = base.join(&name);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            return Ok(WorkDir {
                path,
                fs: format!("{fs} ({})", base.display()),
            });
        }
        bail!(
            "no disk-backed directory for the lease files (tried {}); durability costs \
             would not compare on tmpfs",
            tried.join(", ")
        )
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn fs_type(p: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(p)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn find(name: &str, candidates: &[&str]) -> Result<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .with_context(|| format!("{name} not found (looked at {candidates:?})"))
}

/// Builds what the benchmark runs, in release.
fn build(ours: Ours) -> Result<Bins> {
    run_cmd(cargo().args([
        "build",
        "--release",
        "-p",
        "ztps-tests",
        "--bin",
        "dhcp-harness",
        "--bin",
        "eos-sim",
    ]))
    .context("building dhcp-harness and eos-sim")?;
    if ours == Ours::Agent {
        run_cmd(cargo().args([
            "build",
            "--release",
            "-p",
            "ztps-agent",
            "--bin",
            "ztps-agent",
        ]))
        .context("building ztps-agent (`--ours harness` benchmarks the DHCP crate alone)")?;
    }
    run_cmd(cargo().args([
        "build",
        "--release",
        "-p",
        "ztps-bench",
        "--bin",
        "ztp-image-server",
    ]))
    .context("building ztp-image-server")?;
    let rel = target_dir().join("release");
    Ok(Bins {
        agent: rel.join("ztps-agent"),
        harness: rel.join("dhcp-harness"),
        eos_sim: rel.join("eos-sim"),
        dhcpd: find("ISC dhcpd", &["/usr/sbin/dhcpd"])?,
        kea: find("kea-dhcp4", &["/usr/sbin/kea-dhcp4"])?,
        dnsmasq: find("dnsmasq", &["/usr/sbin/dnsmasq"])?,
        python: find("python3", &["/usr/bin/python3"])?,
        scripts: root().join("bench"),
    })
}

/// Builds the static agent for `target` and returns its size, or why it could not.
fn static_binary(target: &'static str) -> Binary {
    let path = target_dir().join(target).join("release").join("ztps-agent");
    let shown = path
        .strip_prefix(root())
        .unwrap_or(&path)
        .display()
        .to_string();
    let built = run_cmd(cargo().args([
        "build",
        "--release",
        "-p",
        "ztps-agent",
        "--bin",
        "ztps-agent",
        "--target",
        target,
    ]));
    match built.and_then(|()| Ok(std::fs::metadata(&path)?.len())) {
        Ok(bytes) => Binary {
            path: shown,
            full_path: path.display().to_string(),
            bytes: Some(bytes),
            error: None,
        },
        Err(e) => Binary {
            path: shown,
            full_path: path.display().to_string(),
            bytes: None,
            error: Some(format!("{e:#}")),
        },
    }
}

fn first_line(mut cmd: Command) -> String {
    match cmd.output() {
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("?")
                .to_string()
        }
        Err(e) => format!("? ({e})"),
    }
}

fn versions(bins: &Bins, ours: Ours) -> BTreeMap<String, String> {
    let cmd = |p: &Path, args: &[&str]| {
        let mut c = Command::new(p);
        c.args(args);
        c
    };
    let mut v = BTreeMap::new();
    let mut git = Command::new("git");
    git.arg("-C")
        .arg(root())
        .args(["describe", "--always", "--dirty", "--tags"]);
    v.insert(
        "ours".into(),
        format!(
            "{} ({})",
            first_line(git),
            match ours {
                Ours::Agent => "ztps-agent daemon + eos-sim",
                Ours::Harness => "dhcp-harness",
            }
        ),
    );
    v.insert(
        "ISC dhcpd".into(),
        first_line(cmd(&bins.dhcpd, &["--version"])),
    );
    v.insert("Kea kea-dhcp4".into(), first_line(cmd(&bins.kea, &["-V"])));
    let dm = first_line(cmd(&bins.dnsmasq, &["--version"]));
    v.insert(
        "dnsmasq".into(),
        dm.split("  Copyright").next().unwrap_or(&dm).to_string(),
    );
    v.insert(
        "perfdhcp".into(),
        first_line(cmd(Path::new("perfdhcp"), &["-v"])),
    );
    v.insert(
        "udhcpc".into(),
        first_line(cmd(Path::new("udhcpc"), &["--help"])),
    );
    v.insert(
        "python3".into(),
        first_line(cmd(&bins.python, &["--version"])),
    );
    v.insert("iproute2".into(), first_line(cmd(Path::new("ip"), &["-V"])));
    v.insert(
        "rustc".into(),
        first_line(cmd(Path::new("rustc"), &["--version"])),
    );
    v
}

fn machine(work: &WorkDir) -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "?".into());
    Machine {
        cpu,
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        mem_mib: mem_kib / 1024,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        os,
        work_fs: work.fs.clone(),
    }
}

/// (date for humans, stamp for file names), UTC.
fn now_utc() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, min, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    (
        format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02} UTC"),
        format!("{y:04}-{m:02}-{d:02}T{h:02}{min:02}{s:02}Z"),
    )
}

/// Every server's key, in the report's order.
const SERVER_KEYS: [&str; 6] = ["ours", "ours-i686", "ours-x86_64", "isc", "kea", "dnsmasq"];

/// Runs the benchmark.
fn run(args: BenchArgs) -> Result<()> {
    require_root("cargo xtask bench")?;
    proc::install_interrupt_handler()?;
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 5 });
    if !(1..=50).contains(&runs) {
        bail!("--runs must be 1 to 50");
    }
    let want = |w: Workload| args.only.is_none_or(|o| o == w);
    let mut progress = Progress {
        start: Instant::now(),
    };
    let bins = build(args.ours)?;
    let wants_shipped = want(Workload::Footprint) || want(Workload::Scale);
    let binary = wants_shipped.then(|| static_binary(I686));
    let binary64 = wants_shipped.then(|| static_binary(X86_64));
    let work = WorkDir::new()?;
    progress.note(&format!(
        "work directory {} on {}",
        work.path.display(),
        work.fs
    ));

    let ours = OursServer {
        variant: args.ours,
        bins: bins.clone(),
        shipped: None,
    };
    // The agent as shipped, for the footprint and the scale: the static musl
    // binaries that built.
    let shipped: Vec<OursServer> = [(I686, &binary), (X86_64, &binary64)]
        .into_iter()
        .filter_map(|(target, b)| match (results_binary_path(b), args.ours) {
            (Some(path), Ours::Agent) => Some(OursServer {
                variant: Ours::Agent,
                bins: Bins {
                    agent: path,
                    ..bins.clone()
                },
                shipped: Some(target),
            }),
            _ => None,
        })
        .collect();
    let isc = IscDhcpd { bins: bins.clone() };
    let kea = Kea { bins: bins.clone() };
    let dnsmasq = Dnsmasq { bins: bins.clone() };
    if let Some(bad) = args
        .servers
        .iter()
        .find(|k| !SERVER_KEYS.contains(&k.as_str()))
    {
        bail!(
            "--server {bad}: not a server key (one of {})",
            SERVER_KEYS.join(", ")
        );
    }
    let picked =
        |s: &dyn Server| args.servers.is_empty() || args.servers.iter().any(|k| k == s.key());
    let all: Vec<&dyn Server> = [&ours as &dyn Server, &isc, &kea, &dnsmasq]
        .into_iter()
        .filter(|s| picked(*s))
        .collect();
    // Ours as shipped goes right after ours (the report's order).
    let mut with_shipped = all.clone();
    let at = usize::from(with_shipped.first().is_some_and(|s| s.key() == "ours"));
    for (i, s) in shipped.iter().filter(|s| picked(*s)).enumerate() {
        with_shipped.insert(at + i, s);
    }

    let throughput_settings = throughput::Settings {
        ladder: (0..10).map(|i| 250 << i).collect(),
        refine: if args.quick { 2 } else { 3 },
        period_s: 2.0,
        latency_period_s: if args.quick { 2.0 } else { 5.0 },
    };
    let cpu_window = Duration::from_secs(if args.quick { 10 } else { 60 });
    let (date, stamp) = now_utc();
    let mut command = String::from("cargo xtask bench");
    for a in std::env::args().skip(1) {
        command.push(' ');
        command.push_str(&a);
    }
    let mut results = Results {
        date,
        machine: machine(&work),
        versions: versions(&bins, args.ours),
        settings: report::Settings {
            command,
            runs,
            quick: args.quick,
            ours: args.ours,
            throughput: throughput_settings.clone(),
            cpu_window_s: cpu_window.as_secs(),
        },
        servers: with_shipped
            .iter()
            .map(|s| ServerInfo {
                key: s.key().into(),
                static_name: s.name(Mode::Static),
                dynamic_name: s.name(Mode::Dynamic),
                durability: s.durability().into(),
                dynamic_method: s.dynamic_method().into(),
            })
            .collect(),
        throughput: BTreeMap::new(),
        linkup: BTreeMap::new(),
        footprint: Vec::new(),
        ztp: BTreeMap::new(),
        scale: BTreeMap::new(),
        binary,
        carried: None,
    };
    let configs = root().join("bench").join("configs");

    if want(Workload::Throughput) {
        let save_root = fresh_dir(&configs.join("throughput"))?;
        for r in 0..runs as usize {
            for s in all.iter().copied() {
                progress.note(&format!("throughput run {}/{runs}: {}", r + 1, s.key()));
                let first = results
                    .throughput
                    .get(s.key())
                    .and_then(|v| v.first())
                    .cloned();
                let save = (r == 0).then(|| save_root.join(s.key()));
                let out = throughput::run_once(
                    s,
                    &throughput_settings,
                    first.as_ref(),
                    &work.path,
                    r,
                    save.as_deref(),
                    &mut progress,
                )?;
                progress.note(&format!(
                    "{}: max rate {}/s",
                    s.key(),
                    out.max_rate.unwrap_or(0)
                ));
                results
                    .throughput
                    .entry(s.key().into())
                    .or_default()
                    .push(out);
            }
        }
    }
    if want(Workload::Linkup) {
        let save_root = fresh_dir(&configs.join("linkup"))?;
        for r in 0..runs as usize {
            for s in all.iter().copied() {
                let save = (r == 0).then(|| save_root.join(s.key()));
                let out = linkup::run_once(s, &work.path, r, save.as_deref(), &mut progress)?;
                results.linkup.entry(s.key().into()).or_default().push(out);
            }
        }
    }
    if want(Workload::Footprint) {
        let save_root = fresh_dir(&configs.join("footprint"))?;
        for r in 0..runs as usize {
            progress.note(&format!("footprint run {}/{runs}", r + 1));
            let out = footprint::run_once(
                &with_shipped,
                &bins,
                &work.path,
                r,
                (r == 0).then_some(cpu_window),
                (r == 0).then_some(save_root.as_path()),
                &mut progress,
            )?;
            results.footprint.push(out);
        }
    }

    if want(Workload::Ztp) {
        let setup = ztp::Setup {
            ours: &target_dir().join("release").join("ztp-image-server"),
            nginx: &find("nginx", &["/usr/sbin/nginx"])?,
            python: &bins.python,
            work: &work.path,
            runs,
        };
        results.ztp = ztp::run(&setup, &mut progress)?;
    }

    if want(Workload::Scale) {
        let window = Duration::from_secs(if args.quick { 10 } else { 30 });
        for r in 0..runs as usize {
            for s in with_shipped.iter().copied() {
                progress.note(&format!("scale run {}/{runs}: {}", r + 1, s.key()));
                let out = scale::run_once(s, &work.path, r, window, &mut progress)?;
                results.scale.entry(s.key().into()).or_default().push(out);
            }
        }
    }

    let results_dir = root().join("bench").join("results");
    std::fs::create_dir_all(&results_dir)?;
    // A partial run (--server) has too few servers to stand for the
    // comparison: saved and printed, never carried into BENCHMARKS.md.
    let partial = !args.servers.is_empty();
    if args.only.is_some() && !partial {
        carry_over(&mut results, &results_dir, want)?;
    }
    let json_name = format!("{stamp}{}.json", if partial { "-partial" } else { "" });
    let json_path = results_dir.join(&json_name);
    std::fs::write(&json_path, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let json_rel = format!("bench/results/{json_name}");
    if partial {
        println!("{}", results.markdown(&json_rel));
        progress.note(&format!(
            "partial run (--server): wrote {json_rel}; BENCHMARKS.md left as it is"
        ));
        return Ok(());
    }
    let mut md = results.markdown(&json_rel);
    // The lab's ZTP timings (issues 12 and 13) are measured by `cargo xtask
    // lab`, not here; keep them in BENCHMARKS.md as written.
    if let Ok(lab) = std::fs::read_to_string(root().join("bench").join("lab-timings.md")) {
        md.push('\n');
        md.push_str(&lab);
    }
    std::fs::write(root().join("BENCHMARKS.md"), &md).context("writing BENCHMARKS.md")?;
    println!("{md}");
    progress.note(&format!("wrote BENCHMARKS.md and {json_rel}"));
    Ok(())
}

/// Takes the workloads this run did not run from the newest results file.
fn carry_over(results: &mut Results, dir: &Path, want: impl Fn(Workload) -> bool) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.to_string_lossy().ends_with("-partial.json"))
        .collect();
    files.sort();
    let Some(newest) = files.pop() else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&newest)
        .with_context(|| format!("reading {}", newest.display()))?;
    let prev: Results = serde_json::from_str(&text)
        .with_context(|| format!("reading {} (results of an older bench?)", newest.display()))?;
    if !want(Workload::Throughput) {
        results.throughput = prev.throughput;
        results.settings.throughput = prev.settings.throughput;
    }
    if !want(Workload::Linkup) {
        results.linkup = prev.linkup;
    }
    if !want(Workload::Footprint) {
        results.footprint = prev.footprint;
        // A binary built by this run (for the scale) is the newer figure.
        if results.binary.is_none() {
            results.binary = prev.binary;
        }
        results.settings.cpu_window_s = prev.settings.cpu_window_s;
    }
    if !want(Workload::Scale) {
        results.scale = prev.scale;
    }
    // Every server a carried workload shows keeps its names.
    for info in prev.servers {
        if !results.servers.iter().any(|s| s.key == info.key) {
            results.servers.push(info);
        }
    }
    results
        .servers
        .sort_by_key(|s| SERVER_KEYS.iter().position(|k| *k == s.key));
    if !want(Workload::Ztp) {
        results.ztp = prev.ztp;
    }
    let name = newest.file_name().unwrap_or_default().to_string_lossy();
    results.carried = Some(report::Carried {
        json: format!("bench/results/{name}"),
        command: prev.settings.command,
        date: prev.date,
        runs: prev.settings.runs,
    });
    Ok(())
}

/// The static binary's path, if it built.
fn results_binary_path(b: &Option<Binary>) -> Option<PathBuf> {
    let b = b.as_ref()?;
    b.bytes?;
    Some(PathBuf::from(&b.full_path))
}

/// Empties (or creates) `dir`.
fn fresh_dir(dir: &Path) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        let (human, stamp) = super::now_utc();
        assert_eq!(human.len(), "2026-01-02 03:04 UTC".len());
        assert_eq!(stamp.len(), "2026-01-02T030405Z".len());
        assert!(human.starts_with("20"));
    }
}
