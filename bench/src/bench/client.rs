//! busybox udhcpc as the leaf: the readiness probe, the warm-up clients and the
//! link-up client.
//!
//! udhcpc sends the Arista vendor class (`-V`), retries every second (`-T 1`),
//! and runs a hook that configures nothing: on `bound` it writes the time
//! (`date +%s.%N`, CLOCK_REALTIME, the clock the benchmark takes t0 from) to the
//! file named by `$ZTPS_BOUND`.

use super::proc::{check_interrupt, run_logged, wait_until, Proc};
use super::servers::Running;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use ztps_tests::netns::Netns;

/// Option 60 the leaves send.
pub const VENDOR_CLASS: &str = "Arista;DCS-7050SX3-48YC8;11.00;JPEBENCH002";

const HOOK: &str = "#!/bin/sh\n\
# udhcpc hook for cargo xtask bench: configures nothing; on bound, records the time.\n\
case \"$1\" in bound) date +%s.%N > \"$ZTPS_BOUND.tmp\" && mv \"$ZTPS_BOUND.tmp\" \"$ZTPS_BOUND\" ;; esac\n\
exit 0\n";

/// Writes the hook script into `dir` and returns its path.
pub fn hook(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("udhcpc-hook.sh");
    if !path.exists() {
        std::fs::write(&path, HOOK).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(path)
}

/// The udhcpc command for `ifname` in `ns`: `tries` DISCOVERs one second apart,
/// quit once bound; the bound time goes to `bound`.
pub fn command(ns: &Netns, ifname: &str, tries: u32, hook: &Path, bound: &Path) -> Command {
    let mut cmd = ns.cmd("udhcpc");
    cmd.args([
        "-f",
        "-q",
        "-n",
        "-t",
        &tries.to_string(),
        "-T",
        "1",
        "-i",
        ifname,
    ])
    .args(["-V", VENDOR_CLASS, "-s"])
    .arg(hook)
    .env("ZTPS_BOUND", bound);
    cmd
}

/// Reads a bound time written by the hook.
pub fn bound_time(path: &Path) -> Option<f64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Starts one udhcpc per interface in `ns` at once and waits for all of them;
/// returns the interfaces that got no lease.
pub fn lease_all(ns: &Netns, ifnames: &[String], dir: &Path, tries: u32) -> Result<Vec<String>> {
    let hook = hook(dir)?;
    let mut procs = Vec::new();
    for ifname in ifnames {
        let bound = dir.join(format!("bound-{ifname}"));
        let _ = std::fs::remove_file(&bound);
        let cmd = command(ns, ifname, tries, &hook, &bound);
        let log = dir.join(format!("udhcpc-{ifname}.log"));
        procs.push((ifname.clone(), bound, Proc::spawn("udhcpc", cmd, &log)?));
    }
    let deadline = Instant::now() + Duration::from_secs(u64::from(tries) + 5);
    let mut missing = Vec::new();
    for (ifname, bound, mut p) in procs {
        let left = deadline.saturating_duration_since(Instant::now());
        p.wait_timeout(left)?;
        if bound_time(&bound).is_none() {
            missing.push(ifname);
        }
    }
    Ok(missing)
}

/// Waits (up to `timeout`) until a udhcpc on `ifname` in `ns` gets a lease from
/// `server`: the proof that a server serves, whatever its log says. Fails with
/// the server's and the client's logs.
pub fn wait_served(
    ns: &Netns,
    ifname: &str,
    dir: &Path,
    server: &mut Running,
    timeout: Duration,
) -> Result<()> {
    let hook = hook(dir)?;
    let bound = dir.join(format!("probe-{ifname}"));
    let log = dir.join(format!("probe-{ifname}.log"));
    let mut client_log = String::new();
    let ok = wait_until(timeout, || {
        check_interrupt()?;
        server.check_alive()?;
        let _ = std::fs::remove_file(&bound);
        let cmd = command(ns, ifname, 3, &hook, &bound);
        let (_, text) = run_logged("udhcpc probe", cmd, &log, Duration::from_secs(6))?;
        client_log = text;
        Ok(bound_time(&bound).is_some())
    })?;
    if !ok {
        bail!(
            "{} gave no lease on {ifname} within {timeout:?}\n--- udhcpc ---\n{}\n{}",
            server.name,
            client_log.trim_end(),
            server.logs()
        );
    }
    Ok(())
}
