//! `cargo xtask test [ARGS...]`: the README's test command.
//!
//! On a fresh Debian machine (as root) it installs the Debian packages and
//! rustup targets the tests use and lacks ([`crate::deps`]), then runs
//! `cargo test --workspace ARGS...` and exits with its status.

use crate::deps::{ensure_debs, ensure_targets, RUST_TARGETS, TEST_PACKAGES};
use crate::util::root;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;

/// Installs what the tests lack, runs `cargo test --workspace` with `args`
/// appended, and returns its exit code.
pub fn run(args: &[OsString]) -> Result<i32> {
    install()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root())
        .args(["test", "--workspace"])
        .args(args);
    eprintln!("xtask: {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", cargo.to_string_lossy()))?;
    // Killed by a signal: report it the way a shell would.
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Installs the Debian packages and rustup targets the tests lack.
pub fn install() -> Result<()> {
    ensure_debs(TEST_PACKAGES)?;
    ensure_targets(RUST_TARGETS)
}
