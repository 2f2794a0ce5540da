//! Workload 1: perfdhcp 4-way exchanges, stepping the rate up.
//!
//! A spine namespace with port `et1` (10.64.0.1/16) and a client namespace with
//! `pf0` (10.64.0.2/16), from which perfdhcp relays. Every step starts the server
//! afresh with an empty lease file (so no step inherits the lease count of the
//! previous one), checks that a udhcpc gets a lease, runs perfdhcp for a fixed
//! period, and stops the server. A step passes when under 1% of DISCOVERs fail to
//! end in an ACK and perfdhcp really sent at the rate asked (at least 95%). The
//! ladder (doubling from 250/s) stops after two failing steps in a row; then the
//! rate is bisected between the highest pass and the failure above it. Runs after
//! the first start at the step at or below half the first run's result (the steps
//! below are taken as passed). Latency is one more fresh start at 200/s.

use super::perfdhcp::{self, Report};
use super::proc::check_interrupt;
use super::servers::{save_configs, Mode, Server, Setup};
use super::topo::{self, LinkSpec};
use super::{client, Progress};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use ztps_tests::netns::Netns;

/// Rate of the latency measurement.
pub const LATENCY_RATE: u32 = 200;
/// The pass mark: under this fraction of exchanges lost.
pub const MAX_LOSS: f64 = 0.01;
/// perfdhcp must have sent at least this fraction of `rate x period` DISCOVERs.
pub const MIN_SEND_FRACTION: f64 = 0.95;

/// Settings of the throughput workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Rates tried, in order (exchanges per second), until two fail in a row.
    pub ladder: Vec<u32>,
    /// Bisection steps between the highest pass and the failure above it.
    pub refine: u32,
    /// perfdhcp `-p` of each step.
    pub period_s: f64,
    /// perfdhcp `-p` of the latency run at 200/s.
    pub latency_period_s: f64,
}

/// One rate step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// Rate asked (`-r`).
    pub rate: u32,
    /// Whether it passed.
    pub pass: bool,
    /// DISCOVERs not ending in an ACK, percent.
    pub loss_pct: f64,
    /// DISCOVERs perfdhcp sent per second of the period.
    pub sent_rate: f64,
    /// The report.
    pub report: Report,
}

/// One run of the ladder for one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// The 200/s run.
    pub latency: Report,
    /// Rate the ladder started at (lower steps taken as passed).
    pub started_at: u32,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Highest passing rate.
    pub max_rate: Option<u32>,
}

struct Topo {
    spine: Netns,
    client: Netns,
    link: LinkSpec,
}

fn topology(scratch: &Path) -> Result<Topo> {
    let spine = Netns::new("sp");
    let client = Netns::new("pf");
    let link = LinkSpec::perf();
    topo::connect(
        &spine,
        &client,
        std::slice::from_ref(&link),
        |_| true,
        scratch,
    )?;
    Ok(Topo {
        spine,
        client,
        link,
    })
}

/// Starts `server` fresh in `dir`, checks it serves, runs perfdhcp at `rate`.
fn one(
    server: &dyn Server,
    t: &Topo,
    dir: &Path,
    rate: u32,
    period: Duration,
    save: Option<&Path>,
) -> Result<Report> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let setup = Setup {
        ns: &t.spine,
        dir,
        links: std::slice::from_ref(&t.link),
        mode: Mode::Static,
    };
    let mut running = server.start(&setup)?;
    let pf = t.link.leaf_ifname();
    client::wait_served(&t.client, &pf, dir, &mut running, Duration::from_secs(20))?;
    let (line, report) = perfdhcp::run(
        &t.client,
        &pf,
        &t.link.spine.to_string(),
        rate,
        period,
        &dir.join("perfdhcp.out"),
    )?;
    running
        .check_alive()
        .with_context(|| format!("{} died under load ({line})", running.name))?;
    if let Some(to) = save {
        let names = [(t.spine.name(), "$SPINE"), (t.client.name(), "$CLIENT")];
        save_configs(&running, dir, &names, to)?;
        std::fs::write(
            to.join("perfdhcp.txt"),
            format!("{}\n", line.replace(t.client.name(), "$CLIENT")),
        )?;
    }
    drop(running);
    // Logs of high-rate steps run to tens of MB: keep the disk clean as we go.
    let _ = std::fs::remove_dir_all(dir);
    Ok(report)
}

/// Runs the workload once for `server`. `first` is the server's first run, whose
/// result sets where later runs start; `save` receives its configs.
#[allow(clippy::too_many_arguments)]
pub fn run_once(
    server: &dyn Server,
    settings: &Settings,
    first: Option<&Run>,
    work: &Path,
    run_no: usize,
    save: Option<&Path>,
    progress: &mut Progress,
) -> Result<Run> {
    let base: PathBuf = work.join(format!("throughput-{}-{run_no}", server.key()));
    std::fs::create_dir_all(&base)?;
    let t = topology(&base)?;
    let period = Duration::from_secs_f64(settings.period_s);
    let latency = one(
        server,
        &t,
        &base.join("latency"),
        LATENCY_RATE,
        Duration::from_secs_f64(settings.latency_period_s),
        save,
    )?;
    progress.note(&format!(
        "{} latency at {LATENCY_RATE}/s: D-O avg {} ms, R-A avg {} ms",
        server.key(),
        fmt_opt(latency.discover_offer.avg_ms),
        fmt_opt(latency.request_ack.avg_ms)
    ));
    let ladder = &settings.ladder;
    // Later runs start at the ladder step at or below half the first run's result.
    let start = first
        .and_then(|f| f.max_rate)
        .and_then(|best| ladder.iter().rposition(|&r| r <= best / 2))
        .unwrap_or(0);
    let mut steps = Vec::new();
    let mut best: Option<u32> = None;
    let mut first_fail: Option<u32> = None;
    let mut fails = 0;
    let step = |rate: u32, steps: &mut Vec<Step>, progress: &mut Progress| -> Result<bool> {
        check_interrupt()?;
        let dir = base.join(format!("r{rate}"));
        let report = one(server, &t, &dir, rate, period, None)?;
        let loss = report.loss();
        let sent_rate = report.discover_offer.sent as f64 / period.as_secs_f64();
        let pass = loss < MAX_LOSS && sent_rate >= MIN_SEND_FRACTION * f64::from(rate);
        progress.note(&format!(
            "{} {rate}/s: loss {:.2}%, sent {:.0}/s: {}",
            server.key(),
            loss * 100.0,
            sent_rate,
            if pass { "pass" } else { "FAIL" }
        ));
        steps.push(Step {
            rate,
            pass,
            loss_pct: loss * 100.0,
            sent_rate,
            report,
        });
        Ok(pass)
    };
    for &rate in &ladder[start..] {
        if step(rate, &mut steps, progress)? {
            best = Some(rate);
            first_fail = None;
            fails = 0;
        } else {
            first_fail = first_fail.or(Some(rate));
            fails += 1;
            if fails >= 2 {
                break;
            }
        }
    }
    // A later run that fails where the first passed: walk down to a pass.
    if best.is_none() && start > 0 {
        for &rate in ladder[..start].iter().rev() {
            if step(rate, &mut steps, progress)? {
                best = Some(rate);
                break;
            }
            first_fail = Some(rate);
        }
    }
    // Bisect between the highest pass and the failure above it.
    if let (Some(mut lo), Some(mut hi)) = (best, first_fail) {
        for _ in 0..settings.refine {
            let mid = (lo + hi) / 2 / 50 * 50;
            if mid <= lo || mid >= hi {
                break;
            }
            if step(mid, &mut steps, progress)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        best = Some(lo);
    }
    let _ = std::fs::remove_dir_all(&base);
    Ok(Run {
        latency,
        started_at: ladder[start],
        steps,
        max_rate: best,
    })
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into())
}
