//! IPv4 forwarding through `/proc/sys`, read before written.
//!
//! `/proc/sys/net` resolves against the network namespace of the thread that
//! opens the file, so this acts on the caller's namespace, like the netlink
//! calls (checked by the namespace tests against the initial namespace).

use std::{
    fmt,
    fs::{self, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
};

use tracing::debug;

use crate::BridgeError;

const IP_FORWARD: &str = "net/ipv4/ip_forward";
const ALL_FORWARDING: &str = "net/ipv4/conf/all/forwarding";

/// What [`enable_forwarding`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingReport {
    /// `net.ipv4.ip_forward` before the call.
    pub ip_forward_before: u32,
    /// `net.ipv4.conf.all.forwarding` before the call.
    pub all_forwarding_before: u32,
    /// `net.ipv4.ip_forward` was written.
    pub ip_forward_written: bool,
    /// `net.ipv4.conf.all.forwarding` was written. Usually `false` even when
    /// it was 0: the kernel keeps it equal to `ip_forward`, so writing that
    /// one already turned it on.
    pub all_forwarding_written: bool,
}

impl ForwardingReport {
    /// Whether anything was written.
    pub fn changed(&self) -> bool {
        self.ip_forward_written || self.all_forwarding_written
    }
}

impl fmt::Display for ForwardingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed() {
            return write!(
                f,
                "IPv4 forwarding already on (net.ipv4.ip_forward={}, net.ipv4.conf.all.forwarding={}); nothing changed",
                self.ip_forward_before, self.all_forwarding_before
            );
        }
        write!(
            f,
            "IPv4 forwarding turned on: net.ipv4.ip_forward {} -> 1, net.ipv4.conf.all.forwarding {} -> 1",
            self.ip_forward_before, self.all_forwarding_before
        )
    }
}

/// Sets `net.ipv4.ip_forward` and `net.ipv4.conf.all.forwarding` to 1 in the
/// calling thread's network namespace, each only if it is 0, and reports the
/// values found. Needs root (CAP_NET_ADMIN) and a writable `/proc/sys` only
/// when something must change.
pub fn enable_forwarding() -> Result<ForwardingReport, BridgeError> {
    enable_forwarding_at(Path::new("/proc/sys"))
}

/// [`enable_forwarding`] against another sysctl root, for tests.
pub(crate) fn enable_forwarding_at(root: &Path) -> Result<ForwardingReport, BridgeError> {
    let ip_forward = root.join(IP_FORWARD);
    let all_forwarding = root.join(ALL_FORWARDING);

    let ip_forward_before = read(&ip_forward)?;
    let all_forwarding_before = read(&all_forwarding)?;

    let ip_forward_written = ip_forward_before == 0;
    if ip_forward_written {
        write_one(&ip_forward)?;
    }
    // Read again rather than assume the kernel's aliasing of the two.
    let all_forwarding_written = read(&all_forwarding)? == 0;
    if all_forwarding_written {
        write_one(&all_forwarding)?;
    }

    let report = ForwardingReport {
        ip_forward_before,
        all_forwarding_before,
        ip_forward_written,
        all_forwarding_written,
    };
    debug!(%report, "forwarding");
    Ok(report)
}

fn read(path: &Path) -> Result<u32, BridgeError> {
    let text = fs::read_to_string(path).map_err(|source| BridgeError::Sysctl {
        op: "read",
        path: path.to_owned(),
        source,
    })?;
    text.trim().parse().map_err(|_| BridgeError::SysctlValue {
        path: path.to_owned(),
        value: text,
    })
}

fn write_one(path: &Path) -> Result<(), BridgeError> {
    let error = |source| BridgeError::Sysctl {
        op: "write",
        path: PathBuf::from(path),
        source,
    };
    // One write(2) of the whole value: sysctl handlers parse per write call.
    // No create: a missing file means a missing sysctl, not one to make.
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(error)?;
    file.write_all(b"1\n").map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysctl_root(ip_forward: &str, all_forwarding: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let all = dir.path().join(ALL_FORWARDING);
        fs::create_dir_all(all.parent().unwrap()).unwrap();
        fs::write(dir.path().join(IP_FORWARD), ip_forward).unwrap();
        fs::write(all, all_forwarding).unwrap();
        dir
    }

    fn contents(dir: &tempfile::TempDir, file: &str) -> String {
        fs::read_to_string(dir.path().join(file)).unwrap()
    }

    #[test]
    fn off_is_turned_on_and_old_values_reported() {
        let dir = sysctl_root("0\n", "0\n");
        let report = enable_forwarding_at(dir.path()).expect("enable");
        assert_eq!(
            report,
            ForwardingReport {
                ip_forward_before: 0,
                all_forwarding_before: 0,
                ip_forward_written: true,
                // Plain files do not alias like the kernel's: both written.
                all_forwarding_written: true,
            }
        );
        assert_eq!(contents(&dir, IP_FORWARD), "1\n");
        assert_eq!(contents(&dir, ALL_FORWARDING), "1\n");
        assert_eq!(
            report.to_string(),
            "IPv4 forwarding turned on: net.ipv4.ip_forward 0 -> 1, net.ipv4.conf.all.forwarding 0 -> 1"
        );
    }

    #[test]
    fn already_on_writes_nothing() {
        let dir = sysctl_root("1\n", "1\n");
        let report = enable_forwarding_at(dir.path()).expect("enable");
        assert!(!report.changed(), "{report:?}");
        assert_eq!(
            (report.ip_forward_before, report.all_forwarding_before),
            (1, 1)
        );
        assert_eq!(contents(&dir, IP_FORWARD), "1\n");
        assert!(report.to_string().contains("already on"), "{report}");
    }

    #[test]
    fn only_the_one_that_is_off_is_written() {
        let dir = sysctl_root("1\n", "0\n");
        let report = enable_forwarding_at(dir.path()).expect("enable");
        assert!(
            !report.ip_forward_written && report.all_forwarding_written,
            "{report:?}"
        );
        assert_eq!(contents(&dir, ALL_FORWARDING), "1\n");
    }

    #[test]
    fn missing_sysctl_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = enable_forwarding_at(dir.path()).expect_err("no files");
        assert!(
            matches!(err, BridgeError::Sysctl { op: "read", .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("net/ipv4/ip_forward: read failed"), "{text}");
        assert!(text.contains("is /proc mounted"), "{text}");
        assert!(
            !dir.path().join(IP_FORWARD).exists(),
            "must not create sysctl files"
        );
    }

    #[test]
    fn garbage_value_is_an_error_not_a_write() {
        let dir = sysctl_root("yes\n", "0\n");
        let err = enable_forwarding_at(dir.path()).expect_err("garbage");
        assert!(
            matches!(err, BridgeError::SysctlValue { ref value, .. } if value == "yes\n"),
            "{err:?}"
        );
        assert_eq!(contents(&dir, IP_FORWARD), "yes\n");
        assert_eq!(contents(&dir, ALL_FORWARDING), "0\n");
    }
}
