//! What the daemon publishes for `ztps-agent status`, and how it is shown.
//!
//! The daemon writes `status.json` in `state.dir` at every change, by writing a
//! temporary file and renaming it over the old one, so a reader never sees half
//! a file. `status` reads it, checks that the daemon that wrote it is still
//! alive, and prints a table or the JSON as it is.

use crate::escape::escape_untrusted;
use crate::links::LinkView;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use ztps_dhcp::plan::AddressPlan;
use ztps_dhcp::{LeaseState, LinkSummary};

/// File name inside `state.dir`.
pub const STATUS_FILE: &str = "status.json";

/// Everything `status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Agent version.
    pub version: String,
    /// Daemon process id.
    pub pid: u32,
    /// The daemon's start time in clock ticks since boot (`/proc/<pid>/stat`
    /// field 22): with the pid, it tells the daemon from a later process that
    /// reuses its pid. Absent in files from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ticks: Option<u64>,
    /// When the daemon started (Unix seconds).
    pub started: u64,
    /// When this status was written (Unix seconds).
    pub updated: u64,
    /// Config file in use.
    pub config: PathBuf,
    /// eAPI health.
    pub eapi: EapiHealth,
    /// Lease file.
    pub lease_file: PathBuf,
    /// Leases held (all states).
    pub lease_count: usize,
    /// Leases bound and not expired.
    pub active_leases: usize,
    /// A problem with the lease file, if any (damage found at start, write failures).
    pub lease_file_problem: Option<String>,
    /// Syslog lines dropped since start because the socket was full or gone.
    #[serde(default)]
    pub log_lines_dropped: u64,
    /// Per link.
    pub links: Vec<LinkStatus>,
}

/// How eAPI is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EapiHealth {
    /// The URL polled.
    pub url: String,
    /// Whether the last poll succeeded.
    pub ok: bool,
    /// Since when it has been in this state (Unix seconds).
    pub since: u64,
    /// Last successful poll (Unix seconds).
    pub last_success: Option<u64>,
    /// The error of the last failed poll, while failing.
    pub last_error: Option<String>,
}

/// One link's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// EOS name.
    pub eos_name: String,
    /// Kernel name.
    pub kernel_name: Option<String>,
    /// EOS says connected.
    pub connected: bool,
    /// DHCP answered on it.
    pub served: bool,
    /// Why not, when not.
    pub not_served: Option<String>,
    /// The spine's address/prefix on it.
    pub spine_address: Option<String>,
    /// The address the leaf gets (point-to-point) or the pool.
    pub leaf_address: Option<String>,
    /// The current (most recent) lease on the link.
    pub lease: Option<LeaseStatus>,
    /// Last DHCP event on the link.
    pub last_event: Option<EventStatus>,
    /// DHCP packets on the link since start, by what was done with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<ztps_dhcp::LinkCounters>,
    /// The leaf's ZTP progress (`[ztp] serve = true` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ztp: Option<ztps_ztp::lifecycle::ZtpLinkStatus>,
}

/// A lease as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseStatus {
    /// Leaf MAC.
    pub mac: String,
    /// Leased address.
    pub address: Ipv4Addr,
    /// `bound`, `expired` or `released`.
    pub state: String,
    /// Expiry (Unix seconds).
    pub expires: u64,
    /// Leaf model from option 60.
    pub model: Option<String>,
    /// Leaf serial from option 60.
    pub serial: Option<String>,
    /// Hostname given.
    pub hostname: Option<String>,
}

/// An event as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventStatus {
    /// The log line.
    pub text: String,
    /// When (Unix seconds).
    pub at: u64,
}

/// Builds a link's row from its view, the DHCP core's summary of its leases
/// ([`Server::link_summary`](ztps_dhcp::Server::link_summary), O(1) per link)
/// and the last event. The expiry shown is `now` plus the time left by the
/// monotonic clock, right even while the wall clock is wrong.
pub fn link_status(
    view: &LinkView,
    summary: Option<&LinkSummary>,
    last_event: Option<EventStatus>,
    now: u64,
) -> LinkStatus {
    let lease = summary
        .and_then(|s| Some((s.latest.as_ref()?, s.latest_remaining)))
        .map(|(l, left)| LeaseStatus {
            mac: l.mac.to_string(),
            address: l.address,
            state: match l.state {
                LeaseState::Released => "released".into(),
                LeaseState::Bound if left.is_zero() => "expired".into(),
                LeaseState::Bound => "bound".into(),
            },
            expires: match l.state {
                // To the minute, so the row does not change every second.
                LeaseState::Bound if !left.is_zero() => (now + left.as_secs() + 30) / 60 * 60,
                _ => l.expires.min(now),
            },
            model: l.model().map(str::to_string),
            serial: l.serial().map(str::to_string),
            hostname: l.hostname.as_deref().map(str::to_string),
        });
    let leaf_address = view.plan.as_ref().map(|p| match p {
        AddressPlan::PointToPoint { leaf, .. } => leaf.to_string(),
        AddressPlan::Pool(pool) => format!("{}-{}", pool.first, pool.last),
    });
    LinkStatus {
        eos_name: view.eos_name.clone(),
        kernel_name: view.kernel_name.clone(),
        connected: view.connected,
        served: view.served(),
        not_served: view.not_served.clone(),
        spine_address: view.spine_address.clone(),
        leaf_address,
        lease,
        last_event,
        counters: None,
        ztp: None,
    }
}

/// The ZTP column: leaf, stage, and the detail cut to a table-friendly length
/// (`status --json` has all of it).
fn ztp_cell(z: &ztps_ztp::lifecycle::ZtpLinkStatus) -> String {
    const MAX_DETAIL: usize = 48;
    let mut cell = match &z.leaf {
        Some(leaf) => format!("{leaf} {}", z.stage),
        None => z.stage.to_string(),
    };
    if let Some(d) = &z.detail {
        let mut d: String = d.chars().take(MAX_DETAIL).collect();
        if d.len() < z.detail.as_deref().map_or(0, str::len) {
            d.push_str("...");
        }
        cell.push_str(&format!(" ({d})"));
    }
    cell
}

/// Writes `status` to `dir/status.json` atomically (temp file + rename).
pub fn publish(dir: &Path, status: &Status) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{STATUS_FILE}.tmp"));
    // Serialized whole first: straight into the file, every token was a
    // write(2) (tens of thousands for 2,000 links).
    let mut text = serde_json::to_vec_pretty(status)?;
    text.push(b'\n');
    std::fs::File::create(&tmp)?.write_all(&text)?;
    std::fs::rename(&tmp, dir.join(STATUS_FILE))
}

/// Why `status` has nothing current to show.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No status file: the daemon has not run since the state dir was made.
    #[error(
        "no ztps-agent daemon status in {dir}: the daemon is not running (it is started by \
         `daemon ztps` in the EOS config; check `show daemon ztps` and `show logging | include ZTPS`)"
    )]
    NeverRan {
        /// The state dir.
        dir: PathBuf,
    },
    /// The file is there but its writer is gone.
    #[error(
        "the ztps-agent daemon (pid {pid}) is not running; its last status, from {age} ago, follows"
    )]
    Stale {
        /// The dead daemon's pid.
        pid: u32,
        /// How long ago it last wrote.
        age: String,
        /// What it last wrote.
        status: Box<Status>,
    },
    /// The file cannot be read or parsed.
    #[error("reading {path}: {why}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The error.
        why: String,
    },
}

/// The largest status file read: 2,000 links take about 1 MiB.
const MAX_STATUS_BYTES: u64 = 64 << 20;

/// Opens the status file without following a symlink and without waiting (a
/// FIFO planted at the path would block a plain open), checks that it is a
/// regular file of sane size, and reads it.
fn read_status_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file (something else was put at the status path)",
        ));
    }
    if meta.len() > MAX_STATUS_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} bytes, more than a status file can be", meta.len()),
        ));
    }
    let mut text = String::with_capacity(meta.len() as usize);
    file.take(MAX_STATUS_BYTES).read_to_string(&mut text)?;
    Ok(text)
}

/// Reads the status the daemon published in `dir`.
pub fn read(dir: &Path, now: u64) -> Result<Status, StatusError> {
    let path = dir.join(STATUS_FILE);
    let text = match read_status_file(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StatusError::NeverRan {
                dir: dir.to_path_buf(),
            })
        }
        Err(e) => {
            return Err(StatusError::Unreadable {
                path,
                why: e.to_string(),
            })
        }
    };
    let status: Status = serde_json::from_str(&text).map_err(|e| StatusError::Unreadable {
        path: path.clone(),
        why: e.to_string(),
    })?;
    if !daemon_alive(status.pid, status.start_ticks) {
        return Err(StatusError::Stale {
            pid: status.pid,
            age: human_duration(now.saturating_sub(status.updated)),
            status: Box::new(status),
        });
    }
    Ok(status)
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks
/// since boot. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted from the last `)`.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first; field 22 is the 20th.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is still the daemon that wrote the status: same start time
/// when the file records one, else (older files) a ztps-agent command line.
fn daemon_alive(pid: u32, start_ticks: Option<u64>) -> bool {
    if let Some(recorded) = start_ticks {
        return process_start_ticks(pid) == Some(recorded);
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline
        .split(|b| *b == 0)
        .next()
        .map(|argv0| String::from_utf8_lossy(argv0).contains("ztps-agent"))
        .unwrap_or(false)
}

/// `93784` -> `1d2h`; short and readable.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The table an operator reads at a glance.
pub fn render_table(s: &Status, now: u64) -> String {
    let mut out = String::new();
    let e = |text: &str| escape_untrusted(text).into_owned();
    let _ = writeln!(
        out,
        "ztps-agent {} daemon pid {}, up {}, config {} (status as of {} ago)",
        e(&s.version),
        s.pid,
        human_duration(now.saturating_sub(s.started)),
        e(&s.config.display().to_string()),
        human_duration(now.saturating_sub(s.updated))
    );
    let eapi = if s.eapi.ok {
        format!(
            "ok since {} ago",
            human_duration(now.saturating_sub(s.eapi.since))
        )
    } else {
        format!(
            "DOWN for {}: {}; serving the last known links",
            human_duration(now.saturating_sub(s.eapi.since)),
            e(s.eapi.last_error.as_deref().unwrap_or("unknown error"))
        )
    };
    let _ = writeln!(out, "eAPI {}: {}", e(&s.eapi.url), eapi);
    let _ = writeln!(
        out,
        "Leases: {} active, {} recorded, in {}{}",
        s.active_leases,
        s.lease_count,
        e(&s.lease_file.display().to_string()),
        s.lease_file_problem
            .as_deref()
            .map(|p| format!(" (PROBLEM: {})", e(p)))
            .unwrap_or_default()
    );
    if s.log_lines_dropped > 0 {
        let _ = writeln!(
            out,
            "Syslog: {} line(s) dropped (the syslog socket was full or gone)",
            s.log_lines_dropped
        );
    }
    let served = s.links.iter().filter(|l| l.served).count();
    let _ = writeln!(out, "Links: {} served of {} shown\n", served, s.links.len());
    let header = [
        "LINK",
        "KERNEL",
        "CONN",
        "SERVED",
        "SPINE",
        "LEAF",
        "MODEL",
        "SERIAL",
        "MAC",
        "LEASE",
        "ZTP",
        "OFR/ACK/NAK/DROP",
        "LAST EVENT",
    ];
    let rows: Vec<[String; 13]> = s
        .links
        .iter()
        .map(|l| {
            let lease = l.lease.as_ref();
            [
                l.eos_name.clone(),
                l.kernel_name.clone().unwrap_or_else(|| "-".into()),
                if l.connected { "yes" } else { "no" }.into(),
                if l.served {
                    "yes".into()
                } else {
                    format!("no: {}", l.not_served.as_deref().unwrap_or("?"))
                },
                l.spine_address.clone().unwrap_or_else(|| "-".into()),
                lease
                    .map(|x| x.address.to_string())
                    .or_else(|| l.leaf_address.clone())
                    .unwrap_or_else(|| "-".into()),
                lease
                    .and_then(|x| x.model.clone())
                    .unwrap_or_else(|| "-".into()),
                lease
                    .and_then(|x| x.serial.clone())
                    .unwrap_or_else(|| "-".into()),
                lease.map(|x| x.mac.clone()).unwrap_or_else(|| "-".into()),
                lease
                    .map(|x| match x.state.as_str() {
                        "bound" => format!(
                            "bound, {} left",
                            human_duration(x.expires.saturating_sub(now))
                        ),
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|| "-".into()),
                l.ztp.as_ref().map(ztp_cell).unwrap_or_else(|| "-".into()),
                l.counters
                    .map(|c| {
                        format!(
                            "{}/{}/{}/{}",
                            c.offers,
                            c.acks,
                            c.naks,
                            c.dropped + c.rate_limited
                        )
                    })
                    .unwrap_or_else(|| "-".into()),
                l.last_event
                    .as_ref()
                    .map(|e| {
                        format!(
                            "{} ({} ago)",
                            e.text,
                            human_duration(now.saturating_sub(e.at))
                        )
                    })
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    // Every cell may carry a client's bytes (option 60, hostname, event text).
    let rows: Vec<[String; 13]> = rows
        .into_iter()
        .map(|r| r.map(|c| escape_untrusted(&c).into_owned()))
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(header.to_vec(), &mut out);
    for r in &rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    if rows.is_empty() {
        let _ = writeln!(out, "(no connected interfaces reported by EOS yet)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            version: "0.1.0".into(),
            pid: std::process::id(),
            start_ticks: None,
            started: 1000,
            updated: 2000,
            config: "/mnt/flash/ztps/ztps.toml".into(),
            eapi: EapiHealth {
                url: "unix:/var/run/command-api.sock".into(),
                ok: true,
                since: 1000,
                last_success: Some(1999),
                last_error: None,
            },
            lease_file: "/mnt/flash/ztps/leases.json".into(),
            lease_count: 1,
            active_leases: 1,
            lease_file_problem: None,
            log_lines_dropped: 0,
            links: vec![
                LinkStatus {
                    eos_name: "Ethernet1".into(),
                    kernel_name: Some("et1".into()),
                    connected: true,
                    served: true,
                    not_served: None,
                    spine_address: Some("10.0.0.0/31".into()),
                    leaf_address: Some("10.0.0.1".into()),
                    lease: Some(LeaseStatus {
                        mac: "00:1c:73:00:00:01".into(),
                        address: "10.0.0.1".parse().unwrap(),
                        state: "bound".into(),
                        expires: 2000 + 86_000,
                        model: Some("DCS-7050SX3-48YC8".into()),
                        serial: Some("JPE20000001".into()),
                        hostname: None,
                    }),
                    last_event: Some(EventStatus {
                        text: "ACK 10.0.0.1".into(),
                        at: 1990,
                    }),
                    counters: Some(ztps_dhcp::LinkCounters {
                        offers: 1,
                        acks: 2,
                        renewals: 1,
                        dropped: 2,
                        rate_limited: 1,
                        ..Default::default()
                    }),
                    ztp: Some(ztps_ztp::lifecycle::ZtpLinkStatus {
                        leaf: Some("leaf1".into()),
                        stage: ztps_ztp::lifecycle::Stage::ConfigSent,
                        at: Some(1995),
                        serial: Some("JPE20000001".into()),
                        model: None,
                        version: Some("4.30.1F".into()),
                        system_mac: None,
                        detail: Some("4211 bytes".into()),
                    }),
                },
                LinkStatus {
                    eos_name: "Ethernet3".into(),
                    kernel_name: Some("et3".into()),
                    connected: true,
                    served: false,
                    not_served: Some("unnumbered link needs a pool".into()),
                    spine_address: Some("192.0.2.1/32".into()),
                    leaf_address: None,
                    lease: None,
                    last_event: None,
                    counters: None,
                    ztp: None,
                },
            ],
        }
    }

    #[test]
    fn table_shows_each_link_with_lease_and_reason() {
        let t = render_table(&sample(), 2000);
        assert!(t.contains("eAPI unix:/var/run/command-api.sock: ok"), "{t}");
        let e1 = t.lines().find(|l| l.starts_with("Ethernet1")).unwrap();
        for want in [
            "et1",
            "yes",
            "10.0.0.0/31",
            "10.0.0.1",
            "DCS-7050SX3-48YC8",
            "JPE20000001",
            "bound, 23h53m left",
            "leaf1 config-sent (4211 bytes)",
            "1/2/0/3",
            "ACK 10.0.0.1 (10s ago)",
        ] {
            assert!(e1.contains(want), "{want} in {e1}");
        }
        let e3 = t.lines().find(|l| l.starts_with("Ethernet3")).unwrap();
        assert!(e3.contains("no: unnumbered link needs a pool"), "{e3}");
        assert!(t.lines().any(|l| l.contains("ZTP")), "{t}");
    }

    #[test]
    fn publish_then_read_round_trips_and_a_dead_pid_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sample();
        publish(dir.path(), &s).unwrap();
        // The test binary's argv0 does not say ztps-agent: it reads as not running.
        match read(dir.path(), 2005) {
            Err(StatusError::Stale { pid, status, .. }) => {
                assert_eq!(pid, s.pid);
                assert_eq!(*status, s);
            }
            other => panic!("{other:?}"),
        }
        s.pid = u32::MAX;
        publish(dir.path(), &s).unwrap();
        assert!(matches!(
            read(dir.path(), 0),
            Err(StatusError::Stale { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        let e = read(empty.path(), 0).unwrap_err().to_string();
        assert!(
            e.contains("not running") && e.contains("show daemon ztps"),
            "{e}"
        );
    }

    #[test]
    fn client_fields_cannot_drive_the_terminal_or_forge_rows() {
        let mut s = sample();
        let lease = s.links[0].lease.as_mut().unwrap();
        lease.model = Some("Evil\x1b[2J\x1b]0;owned\x07".into());
        lease.serial = Some("X\nEthernet9  et9  yes  yes".into());
        lease.hostname = Some("h\u{202E}gnp.exe".into());
        s.links[0].last_event = Some(EventStatus {
            text: "ignored Arista\u{2028}Ethernet8".into(),
            at: 1990,
        });
        s.log_lines_dropped = 12;
        let t = render_table(&s, 2000);
        for bad in ['\x1b', '\x07', '\u{202E}', '\u{2028}'] {
            assert!(!t.contains(bad), "{bad:?} reached the table: {t:?}");
        }
        // Header, eAPI, leases, syslog, links, blank, column names, 2 rows.
        assert_eq!(t.lines().count(), 9, "{t}");
        assert!(!t.lines().any(|l| l.starts_with("Ethernet9")), "{t}");
        assert!(t.contains("Evil\\x1b[2J\\x1b]0;owned\\x07"), "{t}");
        assert!(t.contains("X\\nEthernet9"), "{t}");
        assert!(t.contains("Arista\\u{2028}Ethernet8"), "{t}");
        assert!(t.contains("Syslog: 12 line(s) dropped"), "{t}");
    }

    #[test]
    fn a_fifo_at_the_status_path_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATUS_FILE);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        match read(dir.path(), 0) {
            Err(StatusError::Unreadable { why, .. }) => {
                assert!(why.contains("not a regular file"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        // A symlink is not followed.
        let real = tempfile::tempdir().unwrap();
        publish(real.path(), &sample()).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(real.path().join(STATUS_FILE), &path).unwrap();
        assert!(matches!(
            read(dir.path(), 0),
            Err(StatusError::Unreadable { .. })
        ));
    }

    #[test]
    fn a_reused_pid_with_another_start_time_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sample();
        let me = process_start_ticks(std::process::id()).expect("own start time");
        // Recorded start time matches this live process: current, whatever its name.
        s.start_ticks = Some(me);
        publish(dir.path(), &s).unwrap();
        assert_eq!(read(dir.path(), 2000).unwrap(), s);
        // Same pid, another start time: a different process now holds the pid.
        s.start_ticks = Some(me.wrapping_add(1));
        publish(dir.path(), &s).unwrap();
        assert!(matches!(
            read(dir.path(), 2000),
            Err(StatusError::Stale { .. })
        ));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m05s");
        assert_eq!(human_duration(7260), "2h01m");
        assert_eq!(human_duration(93784), "1d2h");
    }
}
