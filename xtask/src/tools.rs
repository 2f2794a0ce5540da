//! `cargo xtask lab` and `cargo xtask bench`: install what they need, then run
//! the `lab` or `bench` binary of the `ztps-bench` crate with the arguments
//! passed through. They live in their own crate so that xtask (and so
//! `cargo xtask dist`) never builds the test harness.

use crate::deps::{ensure_debs, ensure_targets, BENCH_PACKAGES, LAB_PACKAGES, RUST_TARGETS};
use crate::util::root;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;

/// A tool of the `ztps-bench` crate.
#[derive(Debug, Clone, Copy)]
pub enum Tool {
    /// A spine and leaves in namespaces (built in debug: it shows the agent's
    /// figures, not its own).
    Lab,
    /// The benchmark (built in release: its probes time the servers).
    Bench,
}

/// Installs what `tool` needs, runs it with `args`, and returns its exit code.
pub fn run(tool: Tool, args: &[OsString]) -> Result<i32> {
    let (bin, packages, release) = match tool {
        Tool::Lab => ("lab", LAB_PACKAGES, false),
        Tool::Bench => ("bench", BENCH_PACKAGES, true),
    };
    ensure_debs(packages)?;
    ensure_targets(RUST_TARGETS)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root())
        .args(["run", "-p", "ztps-bench", "--bin", bin]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--").args(args);
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", cargo.to_string_lossy()))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
