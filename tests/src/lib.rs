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

use std::process::Child;
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
///
/// Returns whether the condition became true; tests assert on it so a broken
/// condition fails instead of hanging.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills (SIGKILL) and reaps a child process when dropped, so a failing test
/// leaves no server or client running behind it.
pub struct ChildGuard {
    child: Option<Child>,
    label: String,
}

impl ChildGuard {
    /// Takes ownership of `child`; `label` names it in diagnostics.
    pub fn new(label: impl Into<String>, child: Child) -> Self {
        ChildGuard {
            child: Some(child),
            label: label.into(),
        }
    }

    /// The process id of the guarded child.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends `signal` to the child (e.g. SIGHUP, SIGTERM).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.id() as i32);
        nix::sys::signal::kill(pid, signal)
            .unwrap_or_else(|e| panic!("sending {signal} to {}: {e}", self.label));
    }

    /// Kills the child with SIGKILL and waits for it: a crash, not a clean stop.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `timeout` for the child to exit on its own; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
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
