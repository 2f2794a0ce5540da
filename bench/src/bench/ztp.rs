//! The `ztp` workload (issue 13): 16 leaf namespaces fetch one 512 MiB EOS
//! image at once over their veths from (a) the agent's ZTP server, (b) nginx
//! (`sendfile on`) and (c) `python3 -m http.server` (what ZTPServer's VM runs),
//! each serving the same file from disk, servers interleaved run by run.
//!
//! Each leaf streams the body through `openssl dgst -sha256` (the same digest
//! as EOS's `sha256sum`, at a fraction of the CPU, so that the leaves, not the
//! hashing, share the two cores with the server) and the digest is checked
//! against the image's: every byte is verified. Measured per run: aggregate
//! throughput (16 x image / time to the last leaf), each leaf's completion time,
//! the server's CPU seconds (its whole process tree) per GiB sent, and its RSS
//! before and at peak (sampled every 50 ms).
//!
//! "Ours" is `ztp-image-server`: `ztps_ztp::http::ZtpServer` with an
//! `ImageStore`, on the daemon's single-threaded runtime, admitting leaf `i`
//! from 10.1.i.2 as a leased leaf (no DHCP or eAPI in the way of the bytes).

use super::proc::{check_interrupt, output, process_tree, wait_until, Proc, CLOCK_TICKS_PER_SEC};
use super::report::stats;
use super::topo::{connect, LinkSpec};
use super::Progress;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ztps_tests::netns::Netns;

/// Leaves fetching at once.
pub const LEAVES: u32 = 16;
/// Image size, MiB.
pub const IMAGE_MIB: u64 = 512;
/// Longest a run may take before it is called failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

/// A server in this workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageServer {
    /// `ztp-image-server` (the agent's ZTP server).
    Ours,
    /// nginx-light, `sendfile on`, `worker_processes auto`.
    Nginx,
    /// `python3 -m http.server`.
    Python,
}

impl ImageServer {
    /// All, ours first.
    pub const ALL: [ImageServer; 3] = [ImageServer::Ours, ImageServer::Nginx, ImageServer::Python];

    /// Key in the results.
    pub fn key(self) -> &'static str {
        match self {
            ImageServer::Ours => "ours",
            ImageServer::Nginx => "nginx",
            ImageServer::Python => "python",
        }
    }

    /// Name in the table.
    pub fn name(self) -> &'static str {
        match self {
            ImageServer::Ours => "ztps-agent ZTP server (hyper, pread + RWF_NOWAIT)",
            ImageServer::Nginx => "nginx (sendfile on)",
            ImageServer::Python => "python3 -m http.server",
        }
    }

    fn port(self) -> u16 {
        match self {
            ImageServer::Ours => 8080,
            ImageServer::Nginx => 8081,
            ImageServer::Python => 8082,
        }
    }

    fn path(self, image: &Path) -> String {
        match self {
            ImageServer::Ours => "/ztp/image".into(),
            _ => format!("/{}", image.file_name().unwrap().to_string_lossy()),
        }
    }
}

/// One run of one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// Time from the start to the last leaf done, seconds.
    pub wall_s: f64,
    /// LEAVES x image / wall, MiB/s.
    pub aggregate_mib_s: f64,
    /// Each leaf's completion time, seconds, sorted.
    pub leaf_s: Vec<f64>,
    /// Server CPU (user + system, whole process tree) per GiB sent.
    pub cpu_s_per_gib: f64,
    /// Server RSS (whole tree) just before the leaves start, KiB.
    pub rss_before_kib: u64,
    /// Highest RSS sampled during the run, KiB.
    pub rss_peak_kib: u64,
    /// Leaves whose sha256 matched (all, or the run failed).
    pub verified: u32,
}

/// What the workload needs from the benchmark.
pub struct Setup<'a> {
    /// `ztp-image-server`, built in release.
    pub ours: &'a Path,
    /// nginx.
    pub nginx: &'a Path,
    /// python3.
    pub python: &'a Path,
    /// Work directory on disk (the image goes here).
    pub work: &'a Path,
    /// Runs per server.
    pub runs: u32,
}

/// The image on disk and its sha256.
struct Image {
    path: PathBuf,
    sha256: String,
}

fn make_image(dir: &Path) -> Result<Image> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images)?;
    let path = images.join("EOS-bench.swi");
    let mut head = Command::new("head");
    head.args(["-c", &format!("{IMAGE_MIB}M"), "/dev/urandom"])
        .stdout(std::fs::File::create(&path)?);
    let status = head.status().context("running head")?;
    if !status.success() {
        bail!("head -c {IMAGE_MIB}M /dev/urandom failed");
    }
    let mut sum = Command::new("sha256sum");
    sum.arg(&path);
    let sha256 = output(sum)?
        .split_whitespace()
        .next()
        .context("sha256sum printed nothing")?
        .to_string();
    Ok(Image { path, sha256 })
}

/// The spine and its leaves, one namespace each.
struct Topo {
    spine: Netns,
    leaves: Vec<Netns>,
}

fn topo(scratch: &Path) -> Result<Topo> {
    let spine = Netns::new("zs");
    let mut leaves = Vec::new();
    for i in 1..=LEAVES {
        let leaf = Netns::new(&format!("zl{i}"));
        let mut link = LinkSpec::p2p(i);
        link.leaf_addr = Some(link.pool.0);
        connect(&spine, &leaf, &[link], |_| true, scratch)?;
        leaves.push(leaf);
    }
    Ok(Topo { spine, leaves })
}

fn start(server: ImageServer, setup: &Setup, t: &Topo, image: &Image) -> Result<Proc> {
    let dir = image.path.parent().unwrap();
    let log = setup.work.join(format!("ztp-{}.log", server.key()));
    let cmd = match server {
        ImageServer::Ours => {
            let mut c = t.spine.cmd(setup.ours);
            c.arg("--image").arg(&image.path);
            c.args(["--port", &server.port().to_string()]);
            c.args(["--links", &LEAVES.to_string()]);
            c.args(["--max-downloads", &LEAVES.to_string()]);
            c
        }
        ImageServer::Nginx => {
            let conf = setup.work.join("ztp-nginx.conf");
            let w = setup.work.display();
            std::fs::write(
                &conf,
                format!(
                    "worker_processes auto;\ndaemon off;\npid {w}/ztp-nginx.pid;\n\
                     error_log {w}/ztp-nginx-error.log;\nevents {{ worker_connections 1024; }}\n\
                     http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n\
                     client_body_temp_path {w}/ztp-nginx-tmp;\n\
                     server {{\n    listen {port};\n    root {root};\n  }}\n}}\n",
                    port = server.port(),
                    root = dir.display()
                ),
            )?;
            let mut c = t.spine.cmd(setup.nginx);
            c.arg("-c").arg(&conf).arg("-p").arg(setup.work);
            c
        }
        ImageServer::Python => {
            let mut c = t.spine.cmd(setup.python);
            c.args([
                "-m",
                "http.server",
                &server.port().to_string(),
                "--directory",
            ])
            .arg(dir);
            c
        }
    };
    let mut proc = Proc::spawn(server.key(), cmd, &log)?;
    // Up when the first leaf gets any HTTP answer to a HEAD.
    let url = url(server, 1, &image.path);
    let up = wait_until(Duration::from_secs(20), || {
        if let Some(status) = proc.exited() {
            bail!("{} exited ({status}): {}", server.key(), proc.log());
        }
        let mut c = t.leaves[0].cmd("curl");
        c.args([
            "-s",
            "-I",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "2",
        ])
        .arg(&url)
        .stderr(Stdio::null());
        let code = c.output().map(|o| o.stdout).unwrap_or_default();
        Ok(!code.is_empty() && code != b"000")
    })?;
    if !up {
        bail!(
            "{} did not answer within 20 s: {}",
            server.key(),
            proc.log()
        );
    }
    Ok(proc)
}

fn url(server: ImageServer, leaf: u32, image: &Path) -> String {
    let spine = LinkSpec::p2p(leaf).spine;
    format!("http://{spine}:{}{}", server.port(), server.path(image))
}

/// Tree RSS (KiB) and CPU ticks of the server.
fn usage(pid: u32) -> (u64, u64) {
    process_tree(pid)
        .iter()
        .fold((0, 0), |(r, c), p| (r + p.rss_kib, c + p.cpu_ticks))
}

fn one_run(server: ImageServer, setup: &Setup, t: &Topo, image: &Image) -> Result<Run> {
    let mut proc = start(server, setup, t, image)?;
    let pid = proc.pid();
    let (rss_before_kib, cpu_before) = usage(pid);
    let started = Instant::now();
    let mut leaves = Vec::new();
    for (i, ns) in t.leaves.iter().enumerate() {
        let n = i as u32 + 1;
        let out = setup.work.join(format!("ztp-leaf{n}.out"));
        let mut c = ns.cmd("bash");
        c.args([
            "-c",
            "set -o pipefail; curl -sS --fail --max-time 850 \"$1\" | openssl dgst -sha256 -r",
            "leaf",
        ])
        .arg(url(server, n, &image.path));
        leaves.push((Proc::spawn(&format!("leaf{n}"), c, &out)?, out, None::<f64>));
    }
    let mut rss_peak_kib = rss_before_kib;
    loop {
        check_interrupt()?;
        let mut running = 0;
        for (p, _, done) in leaves.iter_mut() {
            if done.is_none() {
                match p.exited() {
                    Some(_) => *done = Some(started.elapsed().as_secs_f64()),
                    None => running += 1,
                }
            }
        }
        rss_peak_kib = rss_peak_kib.max(usage(pid).0);
        if running == 0 {
            break;
        }
        if started.elapsed() > RUN_TIMEOUT {
            bail!(
                "{}: leaves still downloading after {RUN_TIMEOUT:?}",
                server.key()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall_s = started.elapsed().as_secs_f64();
    let (_, cpu_after) = usage(pid);
    proc.stop(Duration::from_secs(2));
    let mut verified = 0;
    let mut leaf_s = Vec::new();
    for (_, out, done) in &leaves {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if text.split_whitespace().next() == Some(image.sha256.as_str()) {
            verified += 1;
        } else {
            eprintln!(
                "bench: {} leaf output {}: {text}",
                server.key(),
                out.display()
            );
        }
        leaf_s.push(done.unwrap_or(wall_s));
    }
    leaf_s.sort_by(f64::total_cmp);
    let gib = (IMAGE_MIB * u64::from(LEAVES)) as f64 / 1024.0;
    let cpu_s = cpu_after.saturating_sub(cpu_before) as f64 / CLOCK_TICKS_PER_SEC as f64;
    Ok(Run {
        wall_s,
        aggregate_mib_s: (IMAGE_MIB * u64::from(LEAVES)) as f64 / wall_s,
        leaf_s,
        cpu_s_per_gib: cpu_s / gib,
        rss_before_kib,
        rss_peak_kib,
        verified,
    })
}

/// Runs the workload: `setup.runs` rounds, each server once per round.
pub fn run(setup: &Setup, progress: &mut Progress) -> Result<BTreeMap<String, Vec<Run>>> {
    progress.note(&format!("ztp: writing a {IMAGE_MIB} MiB image"));
    let image = make_image(setup.work)?;
    let t = topo(setup.work)?;
    let mut results: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for round in 0..setup.runs {
        for k in 0..ImageServer::ALL.len() {
            // Rotate the order, so no server always runs first or last.
            let server = ImageServer::ALL[(k + round as usize) % ImageServer::ALL.len()];
            let r = one_run(server, setup, &t, &image)?;
            progress.note(&format!(
                "ztp run {}/{}: {}: {:.0} MiB/s, leaves median {:.1} s max {:.1} s, \
                 {:.2} CPU s/GiB, RSS {} -> {} KiB, {}/{LEAVES} verified",
                round + 1,
                setup.runs,
                server.key(),
                r.aggregate_mib_s,
                median(&r.leaf_s),
                r.leaf_s.last().copied().unwrap_or(0.0),
                r.cpu_s_per_gib,
                r.rss_before_kib,
                r.rss_peak_kib,
                r.verified
            ));
            results.entry(server.key().into()).or_default().push(r);
        }
    }
    std::fs::remove_file(&image.path).ok();
    Ok(results)
}

fn median(v: &[f64]) -> f64 {
    stats(v).map(|s| s.median).unwrap_or(f64::NAN)
}

/// The `ztp` table of BENCHMARKS.md: medians over the runs.
pub fn markdown(results: &BTreeMap<String, Vec<Run>>) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## ZTP image serving\n\n{LEAVES} leaf namespaces fetch one {IMAGE_MIB} MiB image at once, \
         each over its own veth, from each server in turn (same file, on disk, in the page \
         cache); each leaf pipes the body into `openssl dgst -sha256` and the digest is checked. \
         Medians over {} runs. CPU is the server's whole process tree (user + system) per GiB \
         sent; RSS is the tree's, before the leaves start and at its peak.\n",
        results.values().map(Vec::len).max().unwrap_or(0)
    );
    md.push_str(
        "| server | aggregate MiB/s | leaf time median (s) | leaf time max (s) | CPU s/GiB | RSS before (KiB) | RSS peak (KiB) | growth per download (KiB) | verified |\n",
    );
    md.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for server in ImageServer::ALL {
        let Some(runs) = results.get(server.key()) else {
            continue;
        };
        let m = |f: &dyn Fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        let verified: u32 = runs.iter().map(|r| r.verified).sum();
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} | {:.0} | {}/{} |",
            server.name(),
            m(&|r| r.aggregate_mib_s),
            m(&|r| median(&r.leaf_s)),
            m(&|r| r.leaf_s.last().copied().unwrap_or(f64::NAN)),
            m(&|r| r.cpu_s_per_gib),
            m(&|r| r.rss_before_kib as f64),
            m(&|r| r.rss_peak_kib as f64),
            m(&|r| r.rss_peak_kib.saturating_sub(r.rss_before_kib) as f64 / f64::from(LEAVES)),
            verified,
            runs.len() as u32 * LEAVES,
        );
    }
    md.push_str(&targets(results));
    md
}

/// The targets of issue 13, met or missed, under the table.
fn targets(results: &BTreeMap<String, Vec<Run>>) -> String {
    let agg = |k: &str| {
        results
            .get(k)
            .map(|runs| median(&runs.iter().map(|r| r.aggregate_mib_s).collect::<Vec<_>>()))
    };
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let mut md = String::from("\nTargets (issue 13):\n");
    if let (Some(ours), Some(nginx)) = (agg("ours"), agg("nginx")) {
        let range: Vec<String> = results["ours"]
            .iter()
            .zip(&results["nginx"])
            .map(|(o, n)| format!("{:.2}", o.aggregate_mib_s / n.aggregate_mib_s))
            .collect();
        let _ = writeln!(
            md,
            "- aggregate throughput at least nginx's: {ours:.0} vs {nginx:.0} MiB/s ({:.2}x; per run {}): {}.",
            ours / nginx,
            range.join(", "),
            verdict(ours >= nginx)
        );
    }
    if let Some(runs) = results.get("ours") {
        let worst = runs
            .iter()
            .map(|r| r.rss_peak_kib.saturating_sub(r.rss_before_kib) / u64::from(LEAVES))
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            md,
            "- RSS growth under 1 MiB per concurrent download: at most {worst} KiB: {}.",
            verdict(worst < 1024)
        );
    }
    let (ok, all) = results
        .values()
        .flatten()
        .fold((0, 0), |(ok, all), r| (ok + r.verified, all + LEAVES));
    let _ = writeln!(
        md,
        "- every byte verified by sha256 on the leaf side: {ok}/{all} downloads: {}.",
        verdict(ok == all)
    );
    md.push_str(
        "\nThe leaves (16 curl and 16 openssl) share the machine's cores with the server, so \
         aggregate throughput is bounded by them as much as by the server. nginx sends the \
         page cache with `sendfile` and spends the least CPU; ours copies each chunk through \
         user space (hyper cannot sendfile), once from the page cache with \
         `preadv2(RWF_NOWAIT)` and once into the socket, which is its CPU per GiB.\n",
    );
    md
}
