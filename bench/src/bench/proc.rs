//! Processes the benchmark starts, and the clock it waits by.
//!
//! Every process is started in its own process group and held by a [`Proc`]
//! (the tests' [`ChildGuard`] with a log) that kills the whole group (a poller and the dhcpd it started, say) when
//! it drops, so an error or a panic leaves nothing running. Ctrl-C and SIGTERM
//! set a flag that every wait checks ([`check_interrupt`]): the run unwinds, the
//! guards and namespaces drop, and the machine is left as it was. Every wait has
//! a deadline.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use ztps_tests::ChildGuard;

static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Makes SIGINT and SIGTERM set a flag instead of killing the benchmark, so that
/// it stops at the next wait and cleans up.
pub fn install_interrupt_handler() -> Result<()> {
    let flag = INTERRUPTED.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone()).context("installing a signal handler")?;
    }
    Ok(())
}

/// Fails if the benchmark was interrupted (Ctrl-C, SIGTERM).
pub fn check_interrupt() -> Result<()> {
    if INTERRUPTED.get().is_some_and(|f| f.load(Ordering::Relaxed)) {
        bail!("interrupted; stopping the servers and removing the namespaces");
    }
    Ok(())
}

/// Sleeps for `d`, waking every 50 ms to notice an interrupt.
pub fn sleep(d: Duration) -> Result<()> {
    let deadline = Instant::now() + d;
    loop {
        check_interrupt()?;
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// Polls `check` every 20 ms until it returns true (then `Ok(true)`) or `timeout`
/// passes (then `Ok(false)`); an interrupt ends the wait with an error.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    ztps_tests::try_wait_until(timeout, || {
        check_interrupt()?;
        check()
    })
}

/// A running process in its own process group, with its log; the group is
/// killed (SIGKILL) when this drops (the tests' [`ChildGuard`]).
pub struct Proc {
    guard: ChildGuard,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(label: &str, cmd: Command, log: &Path) -> Result<Proc> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("creating {}", log.display()))?;
        let err = file.try_clone().context("duplicating a log fd")?;
        Self::spawn_with(label, cmd, log, Stdio::from(file), Stdio::from(err))
    }

    /// Starts `cmd` with the given stdout and stderr; `log` is where its output
    /// is said to be (for [`Proc::log`]).
    pub fn spawn_with(
        label: &str,
        mut cmd: Command,
        log: &Path,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<Proc> {
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let guard = ChildGuard::spawn(label, &mut cmd)
            .with_context(|| format!("starting {label}: {}", show_cmd(&cmd)))?;
        Ok(Proc {
            guard,
            log: log.to_path_buf(),
        })
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.guard.id()
    }

    /// The child itself, e.g. to take a piped stderr.
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.guard.child_mut()
    }

    /// Whether it is still running; `Some(status)` once it exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.guard.exited()
    }

    /// The last part of its log.
    pub fn log(&self) -> String {
        log_tail(&self.log, 3000)
    }

    /// Sends SIGINT to the process (perfdhcp then prints its statistics).
    pub fn interrupt(&self) {
        self.guard.signal(nix::sys::signal::Signal::SIGINT);
    }

    /// Sends SIGTERM to the group, waits up to `grace`, then SIGKILLs the group.
    pub fn stop(&mut self, grace: Duration) {
        self.guard.stop(grace);
    }

    /// Waits up to `timeout` for it to exit on its own; kills the group if it
    /// does not. Returns its status, or `None` if it had to be killed.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.guard.wait_exit(Duration::from_millis(10)) {
                return Ok(Some(status));
            }
            if let Err(e) = check_interrupt() {
                self.stop(Duration::ZERO);
                return Err(e);
            }
            if Instant::now() >= deadline {
                self.stop(Duration::ZERO);
                return Ok(None);
            }
        }
    }
}

/// Runs `cmd` to completion with a deadline, output (stdout and stderr) to `out`.
/// Returns the exit status (`None` if it was killed at the deadline) and the output.
pub fn run_logged(
    label: &str,
    cmd: Command,
    out: &Path,
    timeout: Duration,
) -> Result<(Option<ExitStatus>, String)> {
    let _ = std::fs::remove_file(out);
    let mut p = Proc::spawn(label, cmd, out)?;
    let status = p.wait_timeout(timeout)?;
    let text = std::fs::read_to_string(out).unwrap_or_default();
    Ok((status, text))
}

/// Runs `cmd` quickly for its output, failing with its stderr if it fails.
pub fn output(mut cmd: Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", show_cmd(&cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            show_cmd(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A command line as a shell would show it.
pub fn show_cmd(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let s = a.to_string_lossy();
            if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "\"'$;&|<>*?".contains(c))
            {
                format!("'{}'", s.replace('\'', r"'\''"))
            } else {
                s.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `max` bytes of a file (whole lines), or a note that it is missing.
pub fn log_tail(path: &Path, max: usize) -> String {
    let mut text = String::new();
    match File::open(path) {
        Ok(mut f) => {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len > max as u64 {
                use std::io::Seek as _;
                let _ = f.seek(std::io::SeekFrom::Start(len - max as u64));
            }
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
            if len > max as u64 {
                if let Some(i) = text.find('\n') {
                    text = format!("[...]{}", &text[i..]);
                }
            }
        }
        Err(e) => text.push_str(&format!("({}: {e})", path.display())),
    }
    text
}

/// Resident set size of one process, in KiB (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// One process of a tree: name, RSS (KiB), CPU ticks (utime+stime+cutime+cstime).
#[derive(Debug, Clone)]
pub struct ProcInfo {
    /// `comm`.
    pub name: String,
    /// VmRSS in KiB.
    pub rss_kib: u64,
    /// utime + stime + cutime + cstime, in clock ticks.
    pub cpu_ticks: u64,
}

fn stat_of(pid: u32) -> Option<(String, u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    // After ") ": state ppid pgrp ... field 14 utime is index 11 here.
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let ticks = (11..=14)
        .map(|i| rest.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum();
    Some((name, ppid, ticks))
}

/// `root` and all its descendants, from a scan of /proc.
pub fn process_tree(root: u32) -> Vec<ProcInfo> {
    let mut all: Vec<(u32, String, u32, u64)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((name, ppid, ticks)) = stat_of(pid) {
                all.push((pid, name, ppid, ticks));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() && tree.len() < 10_000 {
        let parent = tree[i];
        tree.extend(all.iter().filter(|p| p.2 == parent).map(|p| p.0));
        i += 1;
    }
    tree.iter()
        .filter_map(|pid| {
            let (_, name, _, ticks) = all.iter().find(|p| p.0 == *pid)?;
            Some(ProcInfo {
                name: name.clone(),
                rss_kib: rss_kib(*pid)?,
                cpu_ticks: *ticks,
            })
        })
        .collect()
}

/// Clock ticks per second for /proc/PID/stat times: USER_HZ, which Linux fixes
/// at 100 on every architecture we run on.
pub const CLOCK_TICKS_PER_SEC: u64 = 100;
