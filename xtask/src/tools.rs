//! `cargo xtask lab` and `cargo xtask bench`: install what they need, then run
//! the `lab` or `bench` binary of the `ztps-bench` crate with the arguments
//! passed through. They live in their own crate so that xtask (and so
//! `cargo xtask dist`) never builds the test harness.

use crate::deps::{ensure_debs, ensure_targets, BENCH_PACKAGES, LAB_PACKAGES, RUST_TARGETS};
use crate::util::cargo_exit_code;
use anyhow::Result;
use std::ffi::{OsStr, OsString};

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
    let mut all: Vec<&OsStr> = ["run", "-p", "ztps-bench", "--bin", bin]
        .map(OsStr::new)
        .into();
    if release {
        all.push(OsStr::new("--release"));
    }
    all.push(OsStr::new("--"));
    all.extend(args.iter().map(OsString::as_os_str));
    cargo_exit_code(&all)
}
