//! Test support for the end-to-end tests of ztps-agent.
//!
//! Owns the network-namespace harness ([`netns`]), bounded waiting ([`wait_until`]),
//! child-process guards ([`ChildGuard`]) and the state tests set for eos-sim
//! ([`eos`]). The binaries `eos-sim` and
//! `fake-fastcli` in `src/bin/` stand in for the parts of EOS that cannot run here.
//!
//! Every test that uses this harness creates its own namespaces, with names unique
//! to the process and the test, and all its traffic stays inside them.

pub mod netns;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::convert::Infallible;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
///
/// Returns whether the condition became true; tests assert on it so a broken
/// condition fails instead of hanging.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    match try_wait_until(timeout, || Ok::<bool, Infallible>(check())) {
        Ok(met) => met,
        Err(never) => match never {},
    }
}

/// Polls a fallible `check` every 20 ms until it returns `Ok(true)` (then
/// `Ok(true)`), an error (returned at once), or `timeout` passes (`Ok(false)`).
///
/// The benchmark's checks fail when it is interrupted, so Ctrl-C stops a wait.
pub fn try_wait_until<E>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool, E>,
) -> Result<bool, E> {
    let deadline = Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills (SIGKILL) and reaps a child process when dropped, so a failing test
/// leaves no server or client running behind it. A child started with
/// [`ChildGuard::spawn`] leads its own process group, and the whole group goes:
/// whatever it started (a poller's dhcpd, a shell's children) goes with it.
pub struct ChildGuard {
    child: Option<Child>,
    label: String,
    group: bool,
}

impl ChildGuard {
    /// Takes ownership of `child`; `label` names it in diagnostics.
    pub fn new(label: impl Into<String>, child: Child) -> Self {
        ChildGuard {
            child: Some(child),
            label: label.into(),
            group: false,
        }
    }

    /// Starts `cmd` as the leader of a new process group, guarded.
    pub fn spawn(label: impl Into<String>, cmd: &mut Command) -> std::io::Result<Self> {
        let child = cmd.process_group(0).spawn()?;
        Ok(ChildGuard {
            child: Some(child),
            label: label.into(),
            group: true,
        })
    }

    /// The process id of the guarded child (0 once it is reaped).
    pub fn id(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The child itself, e.g. to take a piped stdout.
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Its exit status once it exited on its own (it stays guarded until reaped
    /// by [`ChildGuard::kill9`], [`ChildGuard::stop`] or drop).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Sends `signal` to the child (e.g. SIGHUP, SIGTERM).
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.id() as i32);
        nix::sys::signal::kill(pid, signal)
            .unwrap_or_else(|e| panic!("sending {signal} to {}: {e}", self.label));
    }

    /// Kills the child (and its group) with SIGKILL and waits for it: a crash,
    /// not a clean stop.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.group {
                let _ = killpg(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A clean stop: SIGTERM (to the group), up to `grace` to exit, then
    /// SIGKILL for whatever is left.
    pub fn stop(&mut self, grace: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = if self.group {
            killpg(pid, Signal::SIGTERM)
        } else {
            nix::sys::signal::kill(pid, Signal::SIGTERM)
        };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill9();
    }

    /// Waits up to `timeout` for the child to exit on its own; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                if self.group {
                    // Whatever the leader left behind in its group goes too.
                    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                }
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub mod capture;
pub mod clients;
pub mod eos;
pub mod ztp_leaf;

/// The real `ztps-agent` binary, built (once per test process) into the same
/// target directory and profile as the running tests. Integration tests of this
/// crate cannot use `CARGO_BIN_EXE_` for another package's binary.
pub fn agent_bin() -> std::path::PathBuf {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(|p| p.parent())
            .expect("test binary lives in target/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut cmd = std::process::Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "ztps-agent",
            "--bin",
            "ztps-agent",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target_dir);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo to build ztps-agent");
        assert!(status.success(), "building ztps-agent for the tests failed");
        let bin = profile_dir.join("ztps-agent");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}
