//! Workload 4: scale, one server at a time.
//!
//! 1. **RSS with 50,000 leases.** The throughput topology (one /16 link, a
//!    65,279-address pool, perfdhcp relaying from the client namespace), the
//!    server started fresh in its static mode. perfdhcp's avalanche scenario,
//!    2,500 distinct clients at a time, sends a DISCOVER for each at once and
//!    retransmits with RFC 2131 back-off until every client has its ACK, or the
//!    deadline, when it is interrupted and reports how many ACKs it got. After a settle, RSS is VmRSS summed over the server's process
//!    tree.
//! 2. **Idle CPU with 2,000 links.** 2,000 connected /30 links between a spine
//!    and a leaf namespace, the server in its dynamic mode (ours with eos-sim
//!    reporting all 2,000 ports connected), a lease on the first and the last
//!    link to prove it serves them, a settle, then CPU (utime+stime of the tree)
//!    over an idle window, and RSS.

use super::footprint::{tree_of, ProcRss};
use super::perfdhcp::{self, Report};
use super::proc::{check_interrupt, sleep, Proc};
use super::servers::{Mode, Server, Setup};
use super::topo::{self, LinkSpec};
use super::{client, Progress};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};
use ztps_tests::netns::Netns;

/// Distinct clients provisioned.
pub const LEASES: u32 = 50_000;
/// Connected links of the idle measurement.
pub const LINKS: u32 = 2_000;
/// Idle time before a reading.
const SETTLE: Duration = Duration::from_secs(5);
/// Clients per perfdhcp avalanche: all of a chunk's DISCOVERs go out at once,
/// so a chunk stays below what a server holds as pending OFFERs (ours: 4,096;
/// an OFFER pushed out makes the REQUEST for it a NAK, which perfdhcp's
/// avalanche never gives up on).
pub const CHUNK: u32 = 2_500;
/// How long perfdhcp may take for the 50,000 before it is interrupted.
pub const PROVISION_DEADLINE: Duration = Duration::from_secs(240);
/// How long the link warm-up may take (ISC dhcpd starts once per restart with
/// 2,000 interfaces).
const WARM_TRIES: u32 = 6;

/// The lease half of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Leases {
    /// Clients perfdhcp provisioned (`-R`).
    pub clients: u32,
    /// ACKs it received.
    pub acked: u64,
    /// Whether every client got its ACK before the deadline.
    pub complete: bool,
    /// From the first DISCOVER to the last ACK (or the deadline), seconds.
    pub provision_s: f64,
    /// Retransmissions perfdhcp needed (DISCOVERs and REQUESTs sent beyond one
    /// per client).
    pub retransmissions: u64,
    /// VmRSS summed over the server's tree after the settle, KiB.
    pub rss_kib: u64,
    /// The processes.
    pub processes: Vec<ProcRss>,
}

/// The links half of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Links {
    /// Connected links.
    pub links: u32,
    /// CPU over the idle window, percent of one core.
    pub cpu_pct: f64,
    /// The idle window, seconds.
    pub window_s: f64,
    /// VmRSS summed over the server's tree, KiB.
    pub rss_kib: u64,
    /// The processes.
    pub processes: Vec<ProcRss>,
}

/// One run for one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// 50,000 leases, or why the server could not be measured.
    pub leases: Result<Leases, String>,
    /// 2,000 links, or why the server could not be measured (ISC dhcpd cannot
    /// open 2,000 interfaces).
    pub links: Result<Links, String>,
}

/// Link `n` (1..=500,000) of the 2,000-link topology: a /30 in 10.128.0.0/9,
/// spine `.1`, leaf `.2` (ours derives it; the peers get a one-address pool).
pub fn wide_link(n: u32) -> LinkSpec {
    assert!((1..=500_000).contains(&n), "link {n} out of range");
    let base = u32::from(std::net::Ipv4Addr::new(10, 128, 0, 0)) + 4 * (n - 1);
    let leaf = std::net::Ipv4Addr::from(base + 2);
    LinkSpec {
        n,
        spine: std::net::Ipv4Addr::from(base + 1),
        prefix: 30,
        leaf_addr: None,
        pool: (leaf, leaf),
        pool_link: false,
    }
}

/// Runs both halves once for `server`; the idle window is `window`.
pub fn run_once(
    server: &dyn Server,
    work: &Path,
    run_no: usize,
    window: Duration,
    progress: &mut Progress,
) -> Result<Run> {
    let dir = work.join(format!("scale-{}-{run_no}", server.key()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // A server that fails a half is reported as failing it; an interrupt stops.
    let failed = |what: &str, e: anyhow::Error, progress: &mut Progress| {
        check_interrupt()?;
        let first = format!("{e:#}").lines().next().unwrap_or("").to_owned();
        progress.note(&format!("{}: {what} failed: {first}", server.key()));
        anyhow::Ok(first)
    };
    let leases = match leases(server, &dir.join("leases"), progress) {
        Ok(l) => Ok(l),
        Err(e) => Err(failed("50,000 leases", e, progress)?),
    };
    let links = match links(server, &dir.join("links"), window, progress) {
        Ok(l) => Ok(l),
        Err(e) => Err(failed("2,000 links", e, progress)?),
    };
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Run { leases, links })
}

fn leases(server: &dyn Server, dir: &Path, progress: &mut Progress) -> Result<Leases> {
    std::fs::create_dir_all(dir)?;
    let spine = Netns::new("sp");
    let pf = Netns::new("pf");
    let link = LinkSpec::perf();
    topo::connect(&spine, &pf, std::slice::from_ref(&link), |_| true, dir)?;
    let setup = Setup {
        ns: &spine,
        dir,
        links: std::slice::from_ref(&link),
        mode: Mode::Static,
    };
    let mut running = server.start(&setup)?;
    let ifname = link.leaf_ifname();
    client::wait_served(&pf, &ifname, dir, &mut running, Duration::from_secs(20))?;
    progress.note(&format!(
        "{}: provisioning {LEASES} clients (perfdhcp avalanche)",
        server.key()
    ));
    let (report, complete, provision_s) = avalanche(&pf, &ifname, &link, dir)?;
    running.check_alive()?;
    sleep(SETTLE)?;
    running.check_alive()?;
    let (sample, _) = tree_of(&running.counted_pids());
    let sent = report.discover_offer.sent + report.request_ack.sent;
    let leases = Leases {
        clients: LEASES,
        acked: report.request_ack.received,
        complete,
        provision_s,
        retransmissions: sent.saturating_sub(2 * u64::from(LEASES)),
        rss_kib: sample.rss_kib,
        processes: sample.processes,
    };
    progress.note(&format!(
        "{}: {} ACKs in {provision_s:.1} s{}, RSS {:.1} MiB",
        server.key(),
        leases.acked,
        if complete { "" } else { " (deadline)" },
        leases.rss_kib as f64 / 1024.0
    ));
    Ok(leases)
}

/// perfdhcp's avalanche for [`LEASES`] clients, [`CHUNK`] at a time (each
/// chunk from its own MAC base, so every client is distinct); SIGINT at the
/// deadline (perfdhcp then prints its statistics). Returns the summed report,
/// whether every chunk finished, and how long it ran.
fn avalanche(ns: &Netns, ifname: &str, link: &LinkSpec, dir: &Path) -> Result<(Report, bool, f64)> {
    let started = Instant::now();
    let mut total = Report::default();
    let mut complete = true;
    for chunk in 0..LEASES.div_ceil(CHUNK) {
        let clients = CHUNK.min(LEASES - chunk * CHUNK);
        let out = dir.join(format!("perfdhcp-avalanche-{chunk}.txt"));
        let mut cmd = ns.cmd("perfdhcp");
        cmd.args(["-4", "-l", ifname, "--scenario", "avalanche"])
            .args(["-R", &clients.to_string()])
            .args(["-b", &format!("mac=00:0c:{:02x}:00:00:00", 0x10 + chunk)])
            .arg(format!("-o60,{}", perfdhcp::hex(perfdhcp::VENDOR_CLASS)))
            .arg(link.spine.to_string());
        let line = super::proc::show_cmd(&cmd);
        let mut p = Proc::spawn("perfdhcp", cmd, &out)?;
        let mut finished = false;
        while started.elapsed() < PROVISION_DEADLINE {
            if let Err(e) = check_interrupt() {
                p.stop(Duration::ZERO);
                return Err(e);
            }
            if let Some(status) = p.exited() {
                if !status.success() {
                    bail!("{line} failed ({status}):\n{}", p.log());
                }
                finished = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !finished {
            p.interrupt();
        }
        // Statistics are printed at the end (also after SIGINT).
        let _ = p.wait_timeout(Duration::from_secs(20))?;
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let report = perfdhcp::parse(&text).map_err(|e| anyhow::anyhow!("{line}: {e}"))?;
        for (sum, part) in [
            (&mut total.discover_offer, &report.discover_offer),
            (&mut total.request_ack, &report.request_ack),
        ] {
            sum.sent += part.sent;
            sum.received += part.received;
            sum.drops += part.drops;
        }
        if !finished {
            complete = false;
            break;
        }
    }
    Ok((total, complete, started.elapsed().as_secs_f64()))
}

fn links(
    server: &dyn Server,
    dir: &Path,
    window: Duration,
    progress: &mut Progress,
) -> Result<Links> {
    std::fs::create_dir_all(dir)?;
    let links: Vec<LinkSpec> = (1..=LINKS).map(wide_link).collect();
    let spine = Netns::new("sp");
    let leaf = Netns::new("lf");
    let t = Instant::now();
    topo::connect(&spine, &leaf, &links, |_| true, dir)?;
    progress.note(&format!(
        "{}: {LINKS} links up in {:.1} s",
        server.key(),
        t.elapsed().as_secs_f64()
    ));
    let setup = Setup {
        ns: &spine,
        dir,
        links: &links,
        mode: Mode::Dynamic,
    };
    let mut running = server.start(&setup)?;
    let mut missing: Vec<String> =
        [links[0].leaf_ifname(), links[links.len() - 1].leaf_ifname()].into();
    for _ in 0..WARM_TRIES {
        check_interrupt()?;
        running.check_alive()?;
        missing = client::lease_all(&leaf, &missing, dir, 5)?;
        if missing.is_empty() {
            break;
        }
    }
    if !missing.is_empty() {
        bail!(
            "{}: no lease on {} with {LINKS} links\n{}",
            running.name,
            missing.join(", "),
            running.logs()
        );
    }
    sleep(SETTLE)?;
    running.check_alive()?;
    let (_, before) = tree_of(&running.counted_pids());
    let t = Instant::now();
    sleep(window)?;
    let (sample, after) = tree_of(&running.counted_pids());
    let secs = t.elapsed().as_secs_f64();
    running.check_alive()?;
    let cpu_pct =
        after.saturating_sub(before) as f64 / super::proc::CLOCK_TICKS_PER_SEC as f64 / secs
            * 100.0;
    progress.note(&format!(
        "{}: {LINKS} links idle: CPU {cpu_pct:.2}% over {secs:.0} s, RSS {:.1} MiB",
        server.key(),
        sample.rss_kib as f64 / 1024.0
    ));
    Ok(Links {
        links: LINKS,
        cpu_pct,
        window_s: secs,
        rss_kib: sample.rss_kib,
        processes: sample.processes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_links_are_disjoint_slash_30s() {
        let first = wide_link(1);
        assert_eq!(first.spine.to_string(), "10.128.0.1");
        assert_eq!(first.pool.0.to_string(), "10.128.0.2");
        assert_eq!(first.network().to_string(), "10.128.0.0");
        let last = wide_link(LINKS);
        assert_eq!(last.spine.to_string(), "10.128.31.61");
        assert_eq!(last.ifname(), "et2000");
    }
}
