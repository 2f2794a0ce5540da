//! Each leaf's progress through ZTP, one [`Lifecycle`] per served link.
//!
//! Sans-IO: [`Lifecycle::apply`] takes an event and the time (monotonic for
//! durations, Unix seconds only to show) and returns the one log line a
//! transition deserves, or nothing. The caller logs it and publishes
//! [`Lifecycle::status`]. Repeats (EOS retries every 30 s, renewals, image
//! progress) change the detail but never log again.
//!
//! Everything a leaf says of itself (headers, status reports) is untrusted: it
//! is cut to printable ASCII and a bounded length before it is kept, shown or
//! logged.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, Instant};

/// Longest value kept from a leaf's header.
const MAX_HEADER_CHARS: usize = 64;
/// Longest `stage` or `message` kept from a leaf's status report.
const MAX_REPORT_CHARS: usize = 200;

/// Where a leaf is in ZTP, as shown in `status` and syslog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Nothing seen yet on this link.
    Waiting,
    /// The leaf got its address (DHCP ACK).
    Dhcp,
    /// The leaf was sent its startup-config.
    ConfigSent,
    /// The leaf was sent the upgrade script.
    ScriptSent,
    /// The leaf is downloading the EOS image.
    Image,
    /// The leaf downloaded the whole image.
    ImageDone,
    /// LLDP shows the leaf's name on this port.
    Provisioned,
    /// The leaf asked and was refused (see the detail).
    Refused,
    /// Something failed (see the detail).
    Failed,
}

impl Stage {
    /// The name shown in status and logs (`config-sent`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Waiting => "waiting",
            Stage::Dhcp => "dhcp",
            Stage::ConfigSent => "config-sent",
            Stage::ScriptSent => "script-sent",
            Stage::Image => "image",
            Stage::ImageDone => "image-done",
            Stage::Provisioned => "provisioned",
            Stage::Refused => "refused",
            Stage::Failed => "failed",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a leaf said of itself in its `X-Arista-*` request headers, sanitized.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafHeaders {
    /// `X-Arista-Serial`.
    pub serial: Option<String>,
    /// `X-Arista-ModelName`.
    pub model: Option<String>,
    /// `X-Arista-SoftwareVersion`.
    pub version: Option<String>,
    /// `X-Arista-SystemMAC`.
    pub system_mac: Option<String>,
    /// `X-Arista-HardwareVersion`.
    pub hardware: Option<String>,
    /// `X-Arista-Architecture`.
    pub architecture: Option<String>,
}

impl LeafHeaders {
    /// Reads the `X-Arista-*` headers (names match case-insensitively);
    /// values are sanitized with [`sanitize`].
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let get = |name: &str| {
            headers
                .get(name)
                .map(|v| sanitize(&String::from_utf8_lossy(v.as_bytes()), MAX_HEADER_CHARS))
                .filter(|v| !v.is_empty())
        };
        LeafHeaders {
            serial: get("x-arista-serial"),
            model: get("x-arista-modelname"),
            version: get("x-arista-softwareversion"),
            system_mac: get("x-arista-systemmac"),
            hardware: get("x-arista-hardwareversion"),
            architecture: get("x-arista-architecture"),
        }
    }

    /// Whether the leaf sent none of the headers.
    pub fn is_empty(&self) -> bool {
        *self == LeafHeaders::default()
    }
}

/// Keeps printable ASCII (space to `~`), replaces anything else with `?`,
/// trims, and cuts to `max` characters (marking the cut with `...`).
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out: String = text
        .trim()
        .chars()
        .take(max.saturating_add(1))
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    if out.chars().count() > max {
        out = out.chars().take(max.saturating_sub(3)).collect();
        out.push_str("...");
    }
    out
}

/// Something that happened to the leaf on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafEvent {
    /// The DHCP server ACKed the leaf.
    DhcpAcked {
        /// A renewal of the lease it already had (changes no stage).
        renewal: bool,
    },
    /// The leaf's startup-config was sent.
    ConfigSent {
        /// Its size.
        bytes: u64,
    },
    /// The upgrade script was sent.
    ScriptSent {
        /// Its size.
        bytes: u64,
    },
    /// Part of the image was sent.
    ImageProgress {
        /// Bytes sent so far in this download.
        sent: u64,
        /// The image's size.
        total: u64,
    },
    /// The whole image was sent.
    ImageDone,
    /// The leaf posted `{"stage": ..., "message": ...}` to `/ztp/status`.
    LeafReport {
        /// Its stage (free text from the leaf).
        stage: String,
        /// Its message (free text from the leaf).
        message: String,
    },
    /// A request from the leaf was refused.
    Refused {
        /// Why, for the operator.
        why: String,
    },
    /// Serving the leaf failed on the spine's side (missing config file, ...).
    Failed {
        /// Why, for the operator.
        why: String,
    },
    /// An LLDP poll of the spine: the neighbours' device names on this port.
    Lldp {
        /// Device names seen on the port (possibly none).
        devices: Vec<String>,
    },
}

/// A point in time, both ways: monotonic for durations, Unix seconds to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// The monotonic clock.
    pub mono: Instant,
    /// The wall clock (Unix seconds), only ever shown.
    pub unix: u64,
}

impl Now {
    /// The current time on both clocks.
    pub fn current() -> Self {
        Now {
            mono: Instant::now(),
            unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }
}

/// A link's ZTP state as published in `status --json` (`links[].ztp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZtpLinkStatus {
    /// The `[[ztp.leaf]]` name for this port, if any.
    pub leaf: Option<String>,
    /// The current stage.
    pub stage: Stage,
    /// When it entered this stage (Unix seconds); `None` while `waiting`.
    pub at: Option<u64>,
    /// `X-Arista-Serial` the leaf sent.
    pub serial: Option<String>,
    /// `X-Arista-ModelName` the leaf sent.
    pub model: Option<String>,
    /// `X-Arista-SoftwareVersion` the leaf sent.
    pub version: Option<String>,
    /// `X-Arista-SystemMAC` the leaf sent.
    pub system_mac: Option<String>,
    /// More about the stage: sizes, progress, the leaf's last report, why refused.
    pub detail: Option<String>,
}

/// One link's leaf and its progress.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    link: String,
    leaf: Option<String>,
    stage: Stage,
    at: Option<u64>,
    headers: LeafHeaders,
    detail: Option<String>,
    /// First DHCP ACK since start or since the last `provisioned`.
    first_dhcp: Option<Instant>,
    /// When the stage was entered (monotonic), to show how long each took.
    entered: Option<Instant>,
    /// The last report logged, so a leaf repeating itself logs once.
    last_report: Option<(String, String)>,
}

impl Lifecycle {
    /// A link whose leaf (the `[[ztp.leaf]]` name for the port, if any) has
    /// not been seen yet.
    pub fn new(link: impl Into<String>, leaf: Option<String>) -> Self {
        Lifecycle {
            link: link.into(),
            leaf,
            stage: Stage::Waiting,
            at: None,
            headers: LeafHeaders::default(),
            detail: None,
            first_dhcp: None,
            entered: None,
            last_report: None,
        }
    }

    /// The EOS name of the link.
    pub fn link(&self) -> &str {
        &self.link
    }

    /// The configured leaf name for the port.
    pub fn leaf(&self) -> Option<&str> {
        self.leaf.as_deref()
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Changes the configured leaf for the port (config reload); the progress
    /// starts over when the name changes, since it is another device.
    pub fn set_leaf(&mut self, leaf: Option<String>) {
        if leaf != self.leaf {
            *self = Lifecycle::new(std::mem::take(&mut self.link), leaf);
        }
    }

    /// Whether an LLDP poll could still move this link forward: a leaf is
    /// configured, has been seen, and is not yet provisioned.
    pub fn wants_lldp(&self) -> bool {
        self.leaf.is_some() && !matches!(self.stage, Stage::Provisioned)
    }

    /// Records the headers of a request from the leaf (only those it sent).
    pub fn note_headers(&mut self, headers: &LeafHeaders) {
        let merge = |old: &mut Option<String>, new: &Option<String>| {
            if new.is_some() {
                old.clone_from(new);
            }
        };
        merge(&mut self.headers.serial, &headers.serial);
        merge(&mut self.headers.model, &headers.model);
        merge(&mut self.headers.version, &headers.version);
        merge(&mut self.headers.system_mac, &headers.system_mac);
        merge(&mut self.headers.hardware, &headers.hardware);
        merge(&mut self.headers.architecture, &headers.architecture);
    }

    /// Applies one event; returns the syslog line when the stage changed (or
    /// the leaf reported something new).
    pub fn apply(&mut self, now: Now, event: LeafEvent) -> Option<String> {
        match event {
            LeafEvent::DhcpAcked { renewal: true } => None,
            LeafEvent::DhcpAcked { renewal: false } => {
                if self.first_dhcp.is_none() || self.stage == Stage::Provisioned {
                    self.first_dhcp = Some(now.mono);
                }
                self.enter(now, Stage::Dhcp, None)
            }
            LeafEvent::ConfigSent { bytes } => {
                self.enter(now, Stage::ConfigSent, Some(format!("{bytes} bytes")))
            }
            LeafEvent::ScriptSent { bytes } => {
                self.enter(now, Stage::ScriptSent, Some(format!("{bytes} bytes")))
            }
            LeafEvent::ImageProgress { sent, total } => {
                let detail = format!("{} of {} MiB", sent >> 20, total >> 20);
                if self.stage == Stage::Image {
                    self.detail = Some(detail);
                    None
                } else {
                    self.enter(now, Stage::Image, Some(detail))
                }
            }
            LeafEvent::ImageDone => self.enter(now, Stage::ImageDone, None),
            LeafEvent::LeafReport { stage, message } => self.report(now, &stage, &message),
            LeafEvent::Refused { why } => self.enter(now, Stage::Refused, Some(why)),
            LeafEvent::Failed { why } => self.enter(now, Stage::Failed, Some(why)),
            LeafEvent::Lldp { devices } => self.lldp(now, &devices),
        }
    }

    /// This link's status for `status.json`.
    pub fn status(&self) -> ZtpLinkStatus {
        ZtpLinkStatus {
            leaf: self.leaf.clone(),
            stage: self.stage,
            at: self.at,
            serial: self.headers.serial.clone(),
            model: self.headers.model.clone(),
            version: self.headers.version.clone(),
            system_mac: self.headers.system_mac.clone(),
            detail: self.detail.clone(),
        }
    }

    /// Moves to `stage`; logs only when the stage or its reason changed. A
    /// step forward (config, script, image) notes how long it took since the
    /// previous stage, in the log line and in the detail shown in status.
    fn enter(&mut self, now: Now, stage: Stage, detail: Option<String>) -> Option<String> {
        let same = stage == self.stage
            && (detail == self.detail || !matches!(stage, Stage::Refused | Stage::Failed));
        if same {
            return None;
        }
        let previous = self.stage;
        let took = self.entered.map(|t| now.mono.saturating_duration_since(t));
        self.stage = stage;
        self.at = Some(now.unix);
        self.entered = Some(now.mono);
        let forward = matches!(
            stage,
            Stage::ConfigSent | Stage::ScriptSent | Stage::Image | Stage::ImageDone
        );
        let timing = took
            .filter(|_| forward)
            .map(|t| format!("{} after {previous}", human(t)));
        let mut line = self.prefix();
        line.push_str(stage.as_str());
        if let Some(d) = &detail {
            line.push_str(&format!(" ({d})"));
        }
        if let Some(t) = &timing {
            line.push_str(&format!(", {t}"));
        }
        self.detail = match (detail, timing) {
            (Some(d), Some(t)) => Some(format!("{d}, {t}")),
            (d, t) => d.or(t),
        };
        Some(line)
    }

    fn report(&mut self, now: Now, stage: &str, message: &str) -> Option<String> {
        let stage = sanitize(stage, MAX_REPORT_CHARS);
        let message = sanitize(message, MAX_REPORT_CHARS);
        let detail = if message.is_empty() {
            format!("leaf reports {stage}")
        } else {
            format!("leaf reports {stage}: {message}")
        };
        let failed = ["failed", "failure", "error"]
            .iter()
            .any(|w| stage.eq_ignore_ascii_case(w));
        if failed {
            self.last_report = Some((stage, message));
            return self.enter(now, Stage::Failed, Some(detail));
        }
        let key = (stage, message);
        let new = self.last_report.as_ref() != Some(&key);
        self.last_report = Some(key);
        self.detail = Some(detail.clone());
        new.then(|| format!("{}{detail}", self.prefix()))
    }

    fn lldp(&mut self, now: Now, devices: &[String]) -> Option<String> {
        let leaf = self.leaf.as_deref()?;
        if self.stage == Stage::Provisioned {
            return None;
        }
        // The device name up to its first dot is the leaf's name (for a name
        // with dots of its own: the device name is it, or starts with it and a dot).
        let seen = devices.iter().any(|d| {
            d.strip_prefix(leaf)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        });
        if !seen {
            return None;
        }
        let since = match self.first_dhcp {
            Some(t) => format!(
                "{} after its first DHCP",
                human(now.mono.saturating_duration_since(t))
            ),
            None => "no DHCP seen by this daemon".to_string(),
        };
        self.first_dhcp = None;
        self.stage = Stage::Provisioned;
        self.at = Some(now.unix);
        self.entered = Some(now.mono);
        self.detail = Some(format!("LLDP shows {leaf}; {since}"));
        Some(format!("{}provisioned ({since})", self.prefix()))
    }

    /// `Ethernet3: leaf3 JPE20000003 ` (unknowns as `-`).
    fn prefix(&self) -> String {
        format!(
            "{}: {} {} ",
            self.link,
            self.leaf.as_deref().unwrap_or("-"),
            self.headers.serial.as_deref().unwrap_or("-")
        )
    }
}

/// `850 ms`, `4.2 s`, `3 min 5 s`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, secs: u64) -> Now {
        Now {
            mono: base + Duration::from_secs(secs),
            unix: 1_700_000_000 + secs,
        }
    }

    fn leaf3() -> Lifecycle {
        let mut l = Lifecycle::new("Ethernet3", Some("leaf3".into()));
        l.note_headers(&LeafHeaders {
            serial: Some("JPE20000003".into()),
            ..Default::default()
        });
        l
    }

    #[test]
    fn a_leaf_goes_from_dhcp_to_provisioned_with_one_line_per_stage() {
        let t = Instant::now();
        let mut l = leaf3();
        assert_eq!(l.stage(), Stage::Waiting);
        assert_eq!(
            l.apply(at(t, 0), LeafEvent::DhcpAcked { renewal: false }),
            Some("Ethernet3: leaf3 JPE20000003 dhcp".into())
        );
        assert_eq!(
            l.apply(at(t, 2), LeafEvent::ConfigSent { bytes: 4211 }),
            Some("Ethernet3: leaf3 JPE20000003 config-sent (4211 bytes), 2.0 s after dhcp".into())
        );
        // EOS fetching again changes nothing worth a line.
        assert_eq!(
            l.apply(at(t, 3), LeafEvent::ConfigSent { bytes: 4211 }),
            None
        );
        assert_eq!(
            l.apply(
                at(t, 10),
                LeafEvent::Lldp {
                    devices: vec!["spine9".into(), "leaf30".into()]
                }
            ),
            None,
            "leaf30 is not leaf3"
        );
        assert_eq!(
            l.apply(
                at(t, 95),
                LeafEvent::Lldp {
                    devices: vec!["leaf3.dc1.example.net".into()]
                }
            ),
            Some(
                "Ethernet3: leaf3 JPE20000003 provisioned (1 min 35 s after its first DHCP)".into()
            )
        );
        assert_eq!(
            l.apply(
                at(t, 97),
                LeafEvent::Lldp {
                    devices: vec!["leaf3".into()]
                }
            ),
            None,
            "logged once"
        );
        let s = l.status();
        assert_eq!(s.stage, Stage::Provisioned);
        assert_eq!(s.at, Some(1_700_000_095));
        assert_eq!(s.serial.as_deref(), Some("JPE20000003"));
        assert!(!l.wants_lldp());
    }

    #[test]
    fn renewals_do_not_move_a_leaf_back() {
        let t = Instant::now();
        let mut l = leaf3();
        l.apply(at(t, 0), LeafEvent::DhcpAcked { renewal: false });
        l.apply(at(t, 1), LeafEvent::ConfigSent { bytes: 10 });
        assert_eq!(
            l.apply(at(t, 5), LeafEvent::DhcpAcked { renewal: true }),
            None
        );
        assert_eq!(l.stage(), Stage::ConfigSent);
        // A new ZTP round (the leaf retries after a failure) starts over.
        assert!(l
            .apply(at(t, 40), LeafEvent::DhcpAcked { renewal: false })
            .is_some());
        assert_eq!(l.stage(), Stage::Dhcp);
    }

    #[test]
    fn refusals_log_once_per_reason() {
        let t = Instant::now();
        let mut l = Lifecycle::new("Ethernet5", None);
        let why = "no ztp.leaf for Ethernet5".to_string();
        assert_eq!(
            l.apply(at(t, 0), LeafEvent::Refused { why: why.clone() }),
            Some("Ethernet5: - - refused (no ztp.leaf for Ethernet5)".into())
        );
        assert_eq!(
            l.apply(at(t, 30), LeafEvent::Refused { why: why.clone() }),
            None
        );
        assert!(l
            .apply(
                at(t, 60),
                LeafEvent::Refused {
                    why: "serial mismatch".into()
                }
            )
            .is_some());
        assert_eq!(l.status().detail.as_deref(), Some("serial mismatch"));
        // No configured leaf: LLDP can never provision it.
        assert_eq!(
            l.apply(
                at(t, 70),
                LeafEvent::Lldp {
                    devices: vec!["leaf5".into()]
                }
            ),
            None
        );
        assert!(!l.wants_lldp());
    }

    #[test]
    fn leaf_reports_are_sanitized_and_failures_become_the_stage() {
        let t = Instant::now();
        let mut l = leaf3();
        let line = l
            .apply(
                at(t, 0),
                LeafEvent::LeafReport {
                    stage: "download\x1b[2J".into(),
                    message: "x".repeat(1000),
                },
            )
            .unwrap();
        assert!(line.starts_with("Ethernet3: leaf3 JPE20000003 leaf reports download?[2J: xxx"));
        assert!(line.len() < 300, "{line}");
        assert!(line.chars().all(|c| (' '..='~').contains(&c)));
        assert_eq!(
            l.apply(
                at(t, 1),
                LeafEvent::LeafReport {
                    stage: "download\x1b[2J".into(),
                    message: "x".repeat(1000),
                }
            ),
            None,
            "the same report twice is logged once"
        );
        assert_eq!(l.stage(), Stage::Waiting);
        let line = l
            .apply(
                at(t, 2),
                LeafEvent::LeafReport {
                    stage: "failed".into(),
                    message: "sha256 mismatch".into(),
                },
            )
            .unwrap();
        assert_eq!(
            line,
            "Ethernet3: leaf3 JPE20000003 failed (leaf reports failed: sha256 mismatch)"
        );
        assert_eq!(l.stage(), Stage::Failed);
    }

    #[test]
    fn image_progress_logs_on_entry_and_updates_the_detail() {
        let t = Instant::now();
        let mut l = leaf3();
        l.apply(at(t, 0), LeafEvent::ScriptSent { bytes: 900 });
        let total = 800 << 20;
        assert!(l
            .apply(at(t, 1), LeafEvent::ImageProgress { sent: 0, total })
            .is_some());
        assert_eq!(
            l.apply(
                at(t, 2),
                LeafEvent::ImageProgress {
                    sent: 400 << 20,
                    total
                }
            ),
            None
        );
        assert_eq!(l.status().detail.as_deref(), Some("400 of 800 MiB"));
        assert!(l.apply(at(t, 3), LeafEvent::ImageDone).is_some());
        assert_eq!(l.stage(), Stage::ImageDone);
    }

    #[test]
    fn headers_are_read_case_insensitively_and_sanitized() {
        let mut h = http::HeaderMap::new();
        h.insert("X-ARISTA-SERIAL", "JPE1\t2".parse().unwrap());
        h.insert("x-arista-modelname", "DCS-7050SX3-48YC8".parse().unwrap());
        h.insert(
            "X-Arista-SoftwareVersion",
            http::HeaderValue::from_bytes(&[b'4', 0xff, b'2']).unwrap(),
        );
        h.insert("X-Arista-SystemMAC", "a".repeat(500).parse().unwrap());
        let got = LeafHeaders::from_headers(&h);
        assert_eq!(got.serial.as_deref(), Some("JPE1?2"));
        assert_eq!(got.model.as_deref(), Some("DCS-7050SX3-48YC8"));
        assert_eq!(got.version.as_deref(), Some("4?2"));
        assert_eq!(got.system_mac.as_ref().map(|m| m.len()), Some(64));
        assert!(got.hardware.is_none());
    }

    #[test]
    fn stages_serialize_in_kebab_case() {
        let s =
            serde_json::to_string(&[Stage::ConfigSent, Stage::ImageDone, Stage::Waiting]).unwrap();
        assert_eq!(s, r#"["config-sent","image-done","waiting"]"#);
    }

    #[test]
    fn a_new_leaf_name_starts_over() {
        let t = Instant::now();
        let mut l = leaf3();
        l.apply(at(t, 0), LeafEvent::DhcpAcked { renewal: false });
        l.set_leaf(Some("leaf3".into()));
        assert_eq!(l.stage(), Stage::Dhcp);
        l.set_leaf(Some("leaf9".into()));
        assert_eq!(l.stage(), Stage::Waiting);
        assert_eq!(l.leaf(), Some("leaf9"));
    }
}
