//! `cargo xtask test [ARGS...]`: the README's test command.
//!
//! On a fresh Debian machine (as root) it installs the Debian packages and
//! rustup targets the tests use and lacks ([`crate::deps`]), then runs
//! `cargo test --workspace ARGS...` and exits with its status.

use crate::deps::{ensure_debs, ensure_targets, RUST_TARGETS, TEST_PACKAGES};
use crate::util::cargo_exit_code;
use anyhow::Result;
use std::ffi::{OsStr, OsString};

/// Installs what the tests lack, runs `cargo test --workspace` with `args`
/// appended, and returns its exit code.
pub fn run(args: &[OsString]) -> Result<i32> {
    install()?;
    let mut all: Vec<&OsStr> = ["test", "--workspace"].map(OsStr::new).into();
    all.extend(args.iter().map(OsString::as_os_str));
    cargo_exit_code(&all)
}

/// Installs the Debian packages and rustup targets the tests lack.
pub fn install() -> Result<()> {
    ensure_debs(TEST_PACKAGES)?;
    ensure_targets(RUST_TARGETS)
}
