//! Workload 2: link-up to lease.
//!
//! The spine has ports et1-et3 up, connected to one leaf namespace, and et4 down
//! (its address configured), connected to a second leaf namespace where udhcpc
//! runs on `lf4` with no carrier, sending a DISCOVER every second (`-T 1`) into
//! nothing. The server starts in its dynamic mode and must serve et1 (a udhcpc
//! on `lf1` proves it). Then the harness reads udhcpc's "broadcasting discover"
//! lines as they come, predicts its next DISCOVER, and at t0 = 100 ms before it
//! brings et4 up (`ip link set et4 up`). The figure is the time from t0 until
//! udhcpc's hook runs `bound`. So a server that serves the port at once shows
//! the lead plus the kernel raising the link and one exchange (about 0.15 s
//! here); one that is not ready for that DISCOVER waits for the next, one second
//! later: udhcpc's retry interval bounds what any server can show, for every
//! server alike.
//!
//! The same run then measures link-up to *serving*, which udhcpc cannot resolve:
//! a third leaf on et5 (down, with a static address) sends a DISCOVER every
//! 10 ms ([`super::probe`]); the figure is from `ip link set et5 up` to the
//! first OFFER.

use super::proc::{check_interrupt, sleep, wait_until, Proc};
use super::servers::{save_configs, Mode, Server, Setup};
use super::topo::{self, LinkSpec};
use super::{client, Progress};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::BufRead as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use ztps_tests::netns::Netns;

/// How long before udhcpc's next DISCOVER the port comes up.
pub const LEAD: Duration = Duration::from_millis(100);

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// t0 to bound, seconds.
    pub seconds: f64,
    /// DISCOVERs udhcpc sent after t0 until it was bound.
    pub discovers_after_t0: u32,
    /// t0 to udhcpc's first DISCOVER after t0 (as its stderr line was read),
    /// seconds: a check on the placement of t0.
    pub first_discover_s: Option<f64>,
    /// Link-up of et5 to the first OFFER to the 10 ms DISCOVER probe, seconds.
    pub probe_offer_s: f64,
}

fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs the workload once for `server`.
pub fn run_once(
    server: &dyn Server,
    work: &Path,
    run_no: usize,
    save: Option<&Path>,
    progress: &mut Progress,
) -> Result<Run> {
    let dir = work.join(format!("linkup-{}-{run_no}", server.key()));
    std::fs::create_dir_all(&dir)?;
    let spine = Netns::new("sp");
    let up_leaves = Netns::new("la");
    let new_leaf = Netns::new("lb");
    let probe_leaf = Netns::new("lc");
    let mut links: Vec<LinkSpec> = (1..=4).map(LinkSpec::p2p).collect();
    let mut probe_link = LinkSpec::p2p(5);
    probe_link.leaf_addr = Some(probe_link.pool.0);
    links.push(probe_link);
    topo::connect(&spine, &up_leaves, &links[..3], |_| true, &dir)?;
    topo::connect(&spine, &new_leaf, &links[3..4], |_| false, &dir)?;
    topo::connect(&spine, &probe_leaf, &links[4..], |_| false, &dir)?;
    let setup = Setup {
        ns: &spine,
        dir: &dir,
        links: &links,
        mode: Mode::Dynamic,
    };
    let mut running = server.start(&setup)?;
    client::wait_served(
        &up_leaves,
        &links[0].leaf_ifname(),
        &dir,
        &mut running,
        Duration::from_secs(20),
    )?;
    if let Some(to) = save {
        save_configs(&running, &dir, &[(spine.name(), "$SPINE")], to)?;
    }

    // udhcpc on the port that is still down, its stderr read line by line.
    let target = &links[3];
    let bound = dir.join("bound-linkup");
    let hook = client::hook(&dir)?;
    let cmd = client::command(&new_leaf, &target.leaf_ifname(), 30, &hook, &bound);
    let log = dir.join("udhcpc-linkup.log");
    let mut udhcpc = Proc::spawn_with("udhcpc", cmd, &log, Stdio::null(), Stdio::piped())?;
    let stderr = udhcpc
        .child_mut()
        .and_then(|c| c.stderr.take())
        .context("udhcpc's stderr")?;
    let lines: Arc<Mutex<Vec<(f64, String)>>> = Arc::default();
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("lines").push((now_f64(), line));
            }
        })
    };
    let discovers = |lines: &Arc<Mutex<Vec<(f64, String)>>>| -> Vec<f64> {
        lines
            .lock()
            .expect("lines")
            .iter()
            .filter(|(_, l)| l.contains("broadcasting discover"))
            .map(|(t, _)| *t)
            .collect()
    };
    if !wait_until(Duration::from_secs(6), || Ok(discovers(&lines).len() >= 2))? {
        bail!(
            "udhcpc on {} did not start sending: {:?}",
            target.leaf_ifname(),
            lines.lock().expect("lines")
        );
    }
    let d = discovers(&lines);
    let (prev, last) = (d[d.len() - 2], d[d.len() - 1]);
    let interval = (last - prev).clamp(0.9, 1.2);
    let mut next = last + interval;
    while next - LEAD.as_secs_f64() < now_f64() + 0.01 {
        next += interval;
    }
    sleep(Duration::from_secs_f64(
        next - LEAD.as_secs_f64() - now_f64(),
    ))?;
    let t0 = now_f64();
    topo::raise(&spine, target)?;
    let got = wait_until(Duration::from_secs(15), || {
        check_interrupt()?;
        Ok(client::bound_time(&bound).is_some())
    })?;
    let all = lines.lock().expect("lines").clone();
    if !got {
        bail!(
            "{}: the leaf on {} got no lease within 15 s of link-up\n--- udhcpc ---\n{}\n{}",
            running.name,
            target.ifname(),
            all.iter()
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            running.logs()
        );
    }
    let t_bound = client::bound_time(&bound).expect("checked");
    udhcpc.stop(Duration::from_secs(1));
    let _ = reader.join();
    let after: Vec<f64> = discovers(&lines).into_iter().filter(|&t| t > t0).collect();
    let discovers_after_t0 = after.len() as u32;
    let first_discover_s = after.first().map(|t| t - t0);
    let probe_offer_s = super::probe::link_up_to_offer(
        &probe_leaf,
        &links[4].leaf_ifname(),
        client::VENDOR_CLASS,
        || {
            let t0 = now_f64();
            topo::raise(&spine, &links[4])?;
            Ok(t0)
        },
        Duration::from_secs(15),
    )
    .with_context(|| {
        format!(
            "{}: link-up to serving on {}\n{}",
            running.name,
            links[4].ifname(),
            running.logs()
        )
    })?;
    running.check_alive()?;
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
    let seconds = t_bound - t0;
    progress.note(&format!(
        "{} link-up to lease: {seconds:.3} s ({discovers_after_t0} DISCOVERs after t0); \
         link-up to serving: {:.3} s",
        server.key(),
        probe_offer_s
    ));
    Ok(Run {
        seconds,
        discovers_after_t0,
        first_discover_s,
        probe_offer_s,
    })
}
