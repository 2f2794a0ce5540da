//! `ztps-agent boot`: once per switch boot, from `event-handler ztps`.
//!
//! Replaces the recipe's `ztps.sh`. Steps, each idempotent and logged with what
//! it changed: wait until eAPI answers (EOS answers 502 or refuses while it
//! boots; no fixed sleep), make the bridge exist, be up and carry its address,
//! turn on IPv4 forwarding, and restart the VM through FastCli. The bridge and
//! forwarding steps run even if EOS never becomes ready (they need only the
//! kernel); the VM restart needs EOS and the bridge. The exit status is 0 only
//! when every step succeeded.
//!
//! With `ztp.serve = true` the spine serves ZTP itself: there is no VM, so no
//! bridge, forwarding or VM restart. Every step is reported skipped and nothing
//! on the switch is touched (the bundle then installs no event handler at all).

use crate::config::{format_duration, Config};
use std::fmt;
use std::time::Duration;
use tracing::{error, info, warn};
use ztps_bridge::{BridgeSpec, Netlink};
use ztps_eapi::{retry_until, Backoff, EapiClient, FastCli};

/// Waiting for EOS's eAPI at boot: quick once EOS is nearly up, quiet in
/// syslog while it is not.
const EAPI_READY_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(10),
    factor: 2.0,
};

/// Between two VM restart attempts: 2 s, 4 s, ... at most 32 s.
const VM_RESTART_BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(2),
    max: Duration::from_secs(32),
    factor: 2.0,
};

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// Done; what changed.
    Done(String),
    /// Not attempted, and why.
    Skipped(String),
    /// Failed, and why.
    Failed(String),
}

/// The outcome of `boot`, step by step.
#[derive(Debug, Clone, Default)]
pub struct BootReport {
    /// (step name, result), in order.
    pub steps: Vec<(&'static str, StepResult)>,
}

impl BootReport {
    /// Whether every step succeeded (skips by config count as success).
    pub fn ok(&self) -> bool {
        !self
            .steps
            .iter()
            .any(|(_, r)| matches!(r, StepResult::Failed(_)))
    }

    fn record(&mut self, step: &'static str, result: StepResult) {
        match &result {
            StepResult::Done(what) => info!("boot: {step}: {what}"),
            StepResult::Skipped(why) => warn!("boot: {step}: skipped: {why}"),
            StepResult::Failed(why) => error!("boot: {step}: FAILED: {why}"),
        }
        self.steps.push((step, result));
    }
}

impl fmt::Display for BootReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (step, r) in &self.steps {
            match r {
                StepResult::Done(w) => writeln!(f, "{step:<12} ok      {w}")?,
                StepResult::Skipped(w) => writeln!(f, "{step:<12} skipped {w}")?,
                StepResult::Failed(w) => writeln!(f, "{step:<12} FAILED  {w}")?,
            }
        }
        Ok(())
    }
}

fn eapi_client(config: &Config) -> Result<EapiClient, String> {
    crate::daemon::eapi_client(config).map_err(|e| e.to_string())
}

fn bridge_spec(config: &Config) -> BridgeSpec {
    BridgeSpec {
        name: config.bridge.name.to_string(),
        address: config.bridge.address.addr(),
        prefix_len: config.bridge.address.prefix_len(),
        mtu: config.bridge.mtu,
    }
}

/// The steps of VM mode, in order.
const STEPS: [&str; 4] = ["eapi", "bridge", "forwarding", "vm-restart"];

/// Why every step is skipped in spine-served mode.
const SERVE_SKIP: &str = "ztp.serve = true: the spine serves ZTP itself; no VM, no bridge";

/// Runs every step and reports how each went.
pub async fn run(config: &Config) -> BootReport {
    let mut report = BootReport::default();
    if config.ztp.serve {
        for step in STEPS {
            report.record(step, StepResult::Skipped(SERVE_SKIP.into()));
        }
        return report;
    }

    // 1. EOS ready: eAPI answers `show version`.
    let eapi_ready = match eapi_client(config) {
        Err(e) => {
            report.record("eapi", StepResult::Failed(e));
            false
        }
        Ok(client) => {
            let deadline = tokio::time::Instant::now() + config.boot.ready_timeout;
            let backoff = EAPI_READY_BACKOFF;
            info!(
                "boot: waiting up to {} for eAPI at {}",
                format_duration(config.boot.ready_timeout),
                client.url()
            );
            match retry_until(deadline, backoff, || client.version()).await {
                Ok(v) => {
                    report.record(
                        "eapi",
                        StepResult::Done(format!(
                            "EOS answers: {} serial {}, EOS {} ({})",
                            v.model.as_deref().unwrap_or("unknown model"),
                            v.serial.as_deref().unwrap_or("unknown"),
                            v.version.as_deref().unwrap_or("unknown"),
                            v.architecture.as_deref().unwrap_or("unknown arch"),
                        )),
                    );
                    true
                }
                Err(e) => {
                    report.record(
                        "eapi",
                        StepResult::Failed(format!(
                            "not ready within {}: {e}",
                            format_duration(config.boot.ready_timeout)
                        )),
                    );
                    false
                }
            }
        }
    };

    // 2. The bridge.
    let bridge_ok = match Netlink::connect() {
        Err(e) => {
            report.record("bridge", StepResult::Failed(e.to_string()));
            false
        }
        Ok(nl) => match nl.ensure_bridge(&bridge_spec(config)).await {
            Ok(r) => {
                report.record("bridge", StepResult::Done(r.to_string()));
                true
            }
            Err(e) => {
                report.record("bridge", StepResult::Failed(e.to_string()));
                false
            }
        },
    };

    // 3. Forwarding.
    match ztps_bridge::enable_forwarding() {
        Ok(r) => report.record("forwarding", StepResult::Done(r.to_string())),
        Err(e) => report.record("forwarding", StepResult::Failed(e.to_string())),
    }

    // 4. The VM.
    let vm = &config.vm.name;
    if !config.vm.restart_on_boot {
        report.record(
            "vm-restart",
            StepResult::Skipped("vm.restart_on_boot = false".into()),
        );
    } else if !eapi_ready {
        report.record(
            "vm-restart",
            StepResult::Failed("not attempted: EOS is not ready (see the eapi step)".into()),
        );
    } else if !bridge_ok {
        report.record(
            "vm-restart",
            StepResult::Failed(format!(
                "not attempted: the VM's bridge {} is not in place",
                config.bridge.name
            )),
        );
    } else {
        let fastcli = FastCli {
            path: config.boot.fastcli.clone(),
            timeout: config.boot.fastcli_timeout,
        };
        let command = format!("virtual-machine {vm} restart");
        let attempts = config.boot.vm_restart_attempts.get();
        let mut last_error = String::new();
        let mut done = false;
        for attempt in 1..=attempts {
            match fastcli.run(&[&command]).await {
                Ok(out) => {
                    let out = out.trim();
                    report.record(
                        "vm-restart",
                        StepResult::Done(format!(
                            "`{command}` via {} (attempt {attempt}){}",
                            fastcli.path.display(),
                            if out.is_empty() {
                                String::new()
                            } else {
                                format!(": {out}")
                            }
                        )),
                    );
                    done = true;
                    break;
                }
                Err(e) => {
                    last_error = e.to_string();
                    if attempt < attempts {
                        let delay = VM_RESTART_BACKOFF.delay(attempt - 1);
                        warn!(
                            "boot: vm-restart attempt {attempt}/{attempts} failed, retrying in {delay:?}: {e}"
                        );
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        if !done {
            report.record(
                "vm-restart",
                StepResult::Failed(format!(
                    "`{command}` failed {attempts} times; last: {last_error}"
                )),
            );
        }
    }
    report
}

/// `--dry-run`: says what `boot` would do, changing nothing.
pub async fn dry_run(config: &Config) -> String {
    let mut out = String::from("ztps-agent boot --dry-run: nothing will be changed\n");
    if config.ztp.serve {
        for step in STEPS {
            out.push_str(&format!("{step:<11} skipped: {SERVE_SKIP}\n"));
        }
        return out;
    }
    match eapi_client(config) {
        Err(e) => out.push_str(&format!("eapi        would fail: {e}\n")),
        Ok(client) => match client.version().await {
            Ok(v) => out.push_str(&format!(
                "eapi        answers now ({} serial {}); would not wait\n",
                v.model.as_deref().unwrap_or("?"),
                v.serial.as_deref().unwrap_or("?")
            )),
            Err(e) => out.push_str(&format!(
                "eapi        not answering now ({e}); would wait up to {}\n",
                format_duration(config.boot.ready_timeout)
            )),
        },
    }
    let spec = bridge_spec(config);
    match Netlink::connect() {
        Err(e) => out.push_str(&format!("bridge      cannot query netlink: {e}\n")),
        Ok(nl) => {
            let links = nl.links().await.unwrap_or_default();
            let addrs = nl.ipv4_addresses().await.unwrap_or_default();
            match links.iter().find(|l| l.name == spec.name) {
                None => out.push_str(&format!(
                    "bridge      would create bridge {}, bring it up, add {}/{}\n",
                    spec.name, spec.address, spec.prefix_len
                )),
                Some(l) if l.kind.as_deref() != Some("bridge") => out.push_str(&format!(
                    "bridge      would FAIL: {} exists and is a {} link, not a bridge\n",
                    spec.name,
                    l.kind.as_deref().unwrap_or("plain")
                )),
                Some(l) => {
                    let mut todo = Vec::new();
                    if !l.up {
                        todo.push("bring it up".to_string());
                    }
                    if !addrs.iter().any(|a| {
                        a.index == l.index
                            && a.address == spec.address
                            && a.prefix_len == spec.prefix_len
                    }) {
                        todo.push(format!("add {}/{}", spec.address, spec.prefix_len));
                    }
                    if todo.is_empty() {
                        out.push_str(&format!(
                            "bridge      {} already in place; no change\n",
                            spec.name
                        ));
                    } else {
                        out.push_str(&format!(
                            "bridge      {} exists; would {}\n",
                            spec.name,
                            todo.join(", ")
                        ));
                    }
                }
            }
        }
    }
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("unreadable ({e})"))
    };
    let fwd = read("/proc/sys/net/ipv4/ip_forward");
    if fwd == "1" {
        out.push_str("forwarding  already on; no change\n");
    } else {
        out.push_str(&format!(
            "forwarding  net.ipv4.ip_forward is {fwd}; would set it to 1\n"
        ));
    }
    if config.vm.restart_on_boot {
        out.push_str(&format!(
            "vm-restart  would run `{} -p 15 -c \"virtual-machine {} restart\"` (up to {} attempts)\n",
            config.boot.fastcli.display(),
            config.vm.name,
            config.boot.vm_restart_attempts
        ));
    } else {
        out.push_str("vm-restart  disabled by vm.restart_on_boot = false\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_restart_retries_wait_longer_each_time_up_to_32_s() {
        let delays: Vec<u64> = (0..7)
            .map(|n| VM_RESTART_BACKOFF.delay(n).as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 32, 32]);
        assert_eq!(EAPI_READY_BACKOFF.delay(0), Duration::from_millis(500));
    }
}
