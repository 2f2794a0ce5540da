//! What the tests, the lab and the benchmark need from the machine, in one place,
//! and the installer that adds what is missing on Debian.
//!
//! `cargo xtask test`, `cargo xtask lab`, `cargo xtask bench` and `.ci/run`
//! (through `cargo xtask test`) all install from the lists here; nothing else
//! keeps a copy.
//!
//! The installer never starts a host service: Debian packages such as
//! nginx-light start their daemon from the maintainer script through
//! `invoke-rc.d`, so apt runs with a `policy-rc.d` that denies every start, and
//! afterwards no service the new packages ship may be running under a new pid.

use crate::util::run;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Debian packages the test suite (`cargo test --workspace`) uses.
pub const TEST_PACKAGES: &[&str] = &[
    "iproute2",        // ip netns, veth, addresses
    "procps",          // ps, pgrep in fault tests
    "isc-dhcp-client", // dhclient: a leaf
    "udhcpc",          // busybox udhcpc: a leaf
    "dhcpcd-base",     // dhcpcd: a leaf
    "kea-admin",       // perfdhcp: load and fault tests
    "libvirt-clients", // virt-xml-validate: the bundle's libvirt domain
    "libxml2-utils",   // xmllint: the bundle's XML
    "curl",            // the leaf's HTTP client for ZTP
    "nginx-light",     // the ZTP bench's reference server (run in a namespace only)
    "python3",         // the ZTP bench's reference client
    "faketime",        // clock tests
    "musl-tools",      // static musl builds
];

/// Debian packages `cargo xtask lab` uses.
pub const LAB_PACKAGES: &[&str] = &["iproute2", "isc-dhcp-client", "udhcpc", "dhcpcd-base"];

/// Debian packages `cargo xtask bench` uses (the servers it compares, and the
/// clients that load them).
pub const BENCH_PACKAGES: &[&str] = &[
    "iproute2",
    "procps",
    "kea-admin",        // perfdhcp
    "isc-dhcp-server",  // dhcpd
    "kea-dhcp4-server", // kea-dhcp4
    "dnsmasq-base",     // dnsmasq
    "udhcpc",           // the leaf
    "python3",
];

/// The static targets the agent ships for (and the tests build).
pub const RUST_TARGETS: &[&str] = &["i686-unknown-linux-musl", "x86_64-unknown-linux-musl"];

const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// Whether a Debian package is installed.
pub fn deb_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs the Debian packages of `pkgs` that are missing, saying which; does
/// nothing (and needs neither root nor apt) when all are there.
pub fn ensure_debs(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !deb_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages: {}; run as root so that they can be installed",
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let before = running_pids();
    {
        let _deny = DenyServiceStarts::install()?;
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let started = started_services(&missing, &before);
    if !started.is_empty() {
        bail!(
            "apt-get started host services despite {POLICY_RC_D}: {}; stop them",
            started.join(", ")
        );
    }
    Ok(())
}

/// Adds the rustup targets of `targets` that are missing, saying which.
pub fn ensure_targets(targets: &[&str]) -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (needed to add the musl targets)")?;
    let installed = String::from_utf8_lossy(&out.stdout).to_string();
    let missing: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if !missing.is_empty() {
        eprintln!("xtask: rustup target add {}", missing.join(" "));
        run(Command::new("rustup")
            .args(["target", "add"])
            .args(&missing))?;
    }
    Ok(())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A `policy-rc.d` that answers 101 ("action forbidden") to every `invoke-rc.d`
/// for as long as it lives; whatever was there before is put back on drop.
struct DenyServiceStarts {
    saved: Option<Vec<u8>>,
}

impl DenyServiceStarts {
    fn install() -> Result<DenyServiceStarts> {
        let saved = std::fs::read(POLICY_RC_D).ok();
        write_executable(
            Path::new(POLICY_RC_D),
            b"#!/bin/sh\n# cargo xtask: never start a host service while installing\nexit 101\n",
        )?;
        Ok(DenyServiceStarts { saved })
    }
}

impl Drop for DenyServiceStarts {
    fn drop(&mut self) {
        let restored = match &self.saved {
            Some(previous) => write_executable(Path::new(POLICY_RC_D), previous),
            None => std::fs::remove_file(POLICY_RC_D).map_err(Into::into),
        };
        if let Err(e) = restored {
            eprintln!("xtask: warning: could not restore {POLICY_RC_D}: {e:#}");
        }
    }
}

fn write_executable(path: &Path, contents: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

/// Every process id now running.
fn running_pids() -> BTreeSet<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Services shipped by `pkgs` (init scripts and systemd units) that run under
/// a pid that did not exist in `before`, as "name (pid N)".
fn started_services(pkgs: &[&str], before: &BTreeSet<u32>) -> Vec<String> {
    let mut names = BTreeSet::new();
    for pkg in pkgs {
        let Ok(out) = Command::new("dpkg").args(["-L", pkg]).output() else {
            continue;
        };
        names.extend(service_names(&String::from_utf8_lossy(&out.stdout)));
    }
    let mut started = Vec::new();
    for pid in running_pids().difference(before) {
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        let comm = comm.trim();
        // The kernel keeps 15 bytes of a command name.
        if names.iter().any(|n| n.get(..15).unwrap_or(n) == comm) {
            started.push(format!("{comm} (pid {pid})"));
        }
    }
    started
}

/// The service names in a `dpkg -L` file list.
fn service_names(file_list: &str) -> BTreeSet<String> {
    file_list
        .lines()
        .filter_map(|path| {
            path.strip_prefix("/etc/init.d/").or_else(|| {
                path.rsplit_once("/systemd/system/")
                    .and_then(|(_, unit)| unit.strip_suffix(".service"))
            })
        })
        .filter(|name| !name.is_empty() && !name.contains('/') && !name.contains('@'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_come_from_init_scripts_and_units() {
        let list = "/.\n/etc\n/etc/init.d\n/etc/init.d/nginx\n/lib/systemd/system/nginx.service\n\
                    /usr/lib/systemd/system/kea-dhcp4-server.service\n/lib/systemd/system/getty@.service\n\
                    /usr/sbin/nginx\n";
        let names: Vec<String> = service_names(list).into_iter().collect();
        assert_eq!(names, ["kea-dhcp4-server", "nginx"]);
    }

    #[test]
    fn the_lab_and_bench_lists_have_no_duplicates() {
        for list in [TEST_PACKAGES, LAB_PACKAGES, BENCH_PACKAGES] {
            let unique: BTreeSet<&&str> = list.iter().collect();
            assert_eq!(unique.len(), list.len(), "{list:?}");
        }
    }
}
