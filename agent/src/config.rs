//! The config file: one schema, strict parsing, errors with file, line and key.
//!
//! **Invariants.** This module is the only definition of the config format: the
//! daemon, `boot`, `check-config` and the flash bundle (which renders a file and
//! checks it with [`Config::parse`]) all go through it. Unknown keys are errors.
//! Every error names the file, the line and column, and the key. Parsing never
//! touches the system; checks that need the system (does the interface exist?)
//! belong to the daemon, which reports them in status.

use crate::locate::Locator;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use ztps_dhcp::config::{ClientClass, HostnameTemplate};
use ztps_dhcp::plan::PoolSpec;
use ztps_dhcp::ServerConfig;

/// Where the config file lives on the switch.
pub const DEFAULT_PATH: &str = "/mnt/flash/ztps/ztps.toml";

/// A duration written as `500ms`, `2s`, `10m`, `1h` or `1d` (or a sum: `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses the string form.
    pub fn parse(s: &str) -> Result<Dur, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty duration; write e.g. \"2s\", \"10m\", \"1d\"".into());
        }
        let mut total = Duration::ZERO;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!(
                    "{s:?} is not a duration; write e.g. \"2s\", \"10m\", \"1d\""
                ));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("{s:?}: number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let d = match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n * 60),
                "h" => Duration::from_secs(n * 3600),
                "d" => Duration::from_secs(n * 86_400),
                "" => return Err(format!("{s:?} has no unit; write e.g. \"{n}s\"")),
                u => return Err(format!("{s:?}: unknown unit {u:?} (use ms, s, m, h or d)")),
            };
            total += d;
        }
        Ok(Dur(total))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 86_400_000 == 0 && ms > 0 {
            write!(f, "{}d", ms / 86_400_000)
        } else if ms % 3_600_000 == 0 && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms % 60_000 == 0 && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How to reach eAPI.
    #[serde(default)]
    pub eapi: EapiSection,
    /// `ztps-agent boot`.
    #[serde(default)]
    pub boot: BootSection,
    /// The VM bridge.
    #[serde(default)]
    pub bridge: BridgeSection,
    /// The ZTPServer VM.
    #[serde(default)]
    pub vm: VmSection,
    /// The DHCP server.
    pub dhcp: DhcpSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// Runtime state for `status`.
    #[serde(default)]
    pub state: StateSection,
    /// The spine's own ZTP service.
    #[serde(default)]
    pub ztp: ZtpSection,
}

/// `[ztp]` (interim schema until `ztps-config` lands; same keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZtpSection {
    /// The spine serves ZTP itself.
    pub serve: bool,
    /// TCP port on the spine's link addresses.
    pub port: u16,
    /// Folder of `<name>.cfg`.
    pub configs: PathBuf,
    /// `[[ztp.leaf]]`.
    pub leaf: Vec<ZtpLeafSection>,
}

impl Default for ZtpSection {
    fn default() -> Self {
        ZtpSection {
            serve: false,
            port: 80,
            configs: "/mnt/flash/ztps/configs".into(),
            leaf: Vec::new(),
        }
    }
}

/// `[[ztp.leaf]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZtpLeafSection {
    /// Spine port (EOS name).
    pub interface: String,
    /// Leaf name.
    pub name: String,
    /// Serial lock.
    #[serde(default)]
    pub serial: Option<String>,
}

/// `[eapi]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EapiSection {
    /// `unix:/var/run/command-api.sock`, `http://localhost:8080/command-api` or an https URL.
    pub url: String,
    /// How often to ask which interfaces are connected.
    pub poll_interval: Dur,
    /// Timeout of one eAPI request.
    pub timeout: Dur,
    /// User for http(s) with authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// File holding the password (first line), for http(s) with authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

impl Default for EapiSection {
    fn default() -> Self {
        EapiSection {
            url: "unix:/var/run/command-api.sock".into(),
            poll_interval: Dur(Duration::from_secs(2)),
            timeout: Dur(Duration::from_secs(5)),
            user: None,
            password_file: None,
        }
    }
}

/// `[boot]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootSection {
    /// How long `boot` waits for eAPI to answer.
    pub ready_timeout: Dur,
    /// Path of FastCli.
    pub fastcli: PathBuf,
    /// Timeout of one FastCli run.
    pub fastcli_timeout: Dur,
    /// Attempts at the VM restart before `boot` gives up.
    pub vm_restart_attempts: u32,
}

impl Default for BootSection {
    fn default() -> Self {
        BootSection {
            ready_timeout: Dur(Duration::from_secs(600)),
            fastcli: "/usr/bin/FastCli".into(),
            fastcli_timeout: Dur(Duration::from_secs(60)),
            vm_restart_attempts: 3,
        }
    }
}

/// `[bridge]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSection {
    /// Bridge name.
    pub name: String,
    /// Address/prefix on the bridge: the VM's default gateway.
    pub address: String,
    /// MTU, if it should be set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

impl Default for BridgeSection {
    fn default() -> Self {
        BridgeSection {
            name: "br0".into(),
            address: "10.10.10.1/24".into(),
            mtu: None,
        }
    }
}

/// `[vm]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VmSection {
    /// The EOS virtual-machine name (`virtual-machine <name> restart`).
    pub name: String,
    /// Whether `boot` restarts the VM.
    pub restart_on_boot: bool,
}

impl Default for VmSection {
    fn default() -> Self {
        VmSection {
            name: "ztps".into(),
            restart_on_boot: true,
        }
    }
}

/// `[dhcp]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpSection {
    /// Option 67 for the default Arista class: a full URL.
    #[serde(default)]
    pub bootfile_url: String,
    /// Option 60 prefix of the default class.
    #[serde(default = "default_vendor_class")]
    pub vendor_class: String,
    /// EOS names or globs (`*`, `?`) of interfaces that may be served.
    #[serde(default = "default_interfaces")]
    pub interfaces: Vec<String>,
    /// EOS names or globs never served (Management, Loopback and the bridge
    /// never are, whatever this says).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Lease time.
    #[serde(default = "default_lease_time")]
    pub lease_time: Dur,
    /// The lease file.
    #[serde(default = "default_lease_file")]
    pub lease_file: PathBuf,
    /// How long an OFFER holds its address.
    #[serde(default = "default_offer_hold")]
    pub offer_hold: Dur,
    /// How long a point-to-point link's leaf must be silent before a new leaf
    /// (an RMA replacement) may take its address.
    #[serde(default = "default_replace_after")]
    pub replace_after: Dur,
    /// How long a DECLINEd address is kept out of use.
    #[serde(default = "default_decline_quarantine")]
    pub decline_quarantine: Dur,
    /// Option 6 for the default class.
    #[serde(default)]
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15 for the default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    /// Option 42 for the default class.
    #[serde(default)]
    pub ntp_servers: Vec<Ipv4Addr>,
    /// Option 12 template for the default class: `{link}`, `{serial}`, `{model}`, `{mac}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Pools for links with no /31 or /30 to derive from.
    #[serde(default, rename = "link")]
    pub links: Vec<LinkPool>,
    /// More client classes, tried in order before the default one.
    #[serde(default, rename = "class")]
    pub classes: Vec<ClassSection>,
}

fn default_vendor_class() -> String {
    "Arista".into()
}
fn default_interfaces() -> Vec<String> {
    vec!["Ethernet*".into()]
}
fn default_lease_time() -> Dur {
    Dur(Duration::from_secs(86_400))
}
fn default_lease_file() -> PathBuf {
    "/mnt/flash/ztps/leases.json".into()
}
fn default_offer_hold() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_replace_after() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_decline_quarantine() -> Dur {
    Dur(Duration::from_secs(600))
}

/// `[[dhcp.link]]`: a pool for one link.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkPool {
    /// EOS interface name.
    pub interface: String,
    /// `first-last`, e.g. `10.0.7.2-10.0.7.6`.
    pub range: String,
    /// Router (option 3) for the leaves on this link.
    pub router: Ipv4Addr,
    /// Prefix length for option 1.
    pub prefix: u8,
}

/// `[[dhcp.class]]`: a client class with its own options.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSection {
    /// Name for logs.
    pub name: String,
    /// Option 60 must start with this.
    pub vendor_class: String,
    /// Option 67: a full URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootfile_url: Option<String>,
    /// Option 6.
    #[serde(default)]
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    /// Option 42.
    #[serde(default)]
    pub ntp_servers: Vec<Ipv4Addr>,
    /// Option 12 template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Log to syslog (shows in EOS `show logging`).
    pub syslog: bool,
    /// Syslog facility (`local0`..`local7`, `daemon`, `user`).
    pub facility: String,
    /// Syslog tag.
    pub tag: String,
    /// Level filter, `RUST_LOG` syntax (`info`, `debug`, `ztps_dhcp=debug`);
    /// the `RUST_LOG` environment variable wins.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            syslog: true,
            facility: "local0".into(),
            tag: "ZTPS".into(),
            level: "info".into(),
        }
    }
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSection {
    /// Directory for the status file read by `ztps-agent status`.
    pub dir: PathBuf,
}

impl Default for StateSection {
    fn default() -> Self {
        StateSection {
            dir: "/var/run/ztps".into(),
        }
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// 1-based line, if known.
    pub line: Option<usize>,
    /// 1-based column, if known.
    pub column: Option<usize>,
    /// Dotted key, e.g. `dhcp.link[1].range`.
    pub key: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Everything wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub origin: String,
    /// The problems, in file order.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.origin)?;
            if let Some(l) = issue.line {
                write!(f, ":{l}")?;
                if let Some(c) = issue.column {
                    write!(f, ":{c}")?;
                }
            }
            if issue.key.is_empty() {
                write!(f, ": {}", issue.message)?;
            } else {
                write!(f, ": {}: {}", issue.key, issue.message)?;
            }
        }
        Ok(())
    }
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: path.display().to_string(),
            issues: vec![ConfigIssue {
                line: None,
                column: None,
                key: String::new(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and checks config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let loc = Locator::new(text);
        let config: Config = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| s.start);
            ConfigError {
                origin: origin.into(),
                issues: vec![ConfigIssue {
                    line: at.map(|o| loc.line_col(o).0),
                    column: at.map(|o| loc.line_col(o).1),
                    key: at.and_then(|o| loc.key_at(o)).unwrap_or_default(),
                    message: e.message().trim().to_string(),
                }],
            }
        })?;
        let mut issues = Vec::new();
        config.check(&mut |key: &str, message: String| {
            let at = loc.span_of(key).map(|s| loc.line_col(s.start));
            issues.push(ConfigIssue {
                line: at.map(|(l, _)| l),
                column: at.map(|(_, c)| c),
                key: key.into(),
                message,
            });
        });
        if issues.is_empty() {
            Ok(config)
        } else {
            issues.sort_by_key(|i| i.line.unwrap_or(usize::MAX));
            Err(ConfigError {
                origin: origin.into(),
                issues,
            })
        }
    }

    /// Semantic checks; `report(key, message)` for each problem.
    fn check(&self, report: &mut dyn FnMut(&str, String)) {
        let e = &self.eapi;
        let scheme_ok = e.url.starts_with("unix:/")
            || e.url.starts_with("http://")
            || e.url.starts_with("https://");
        if !scheme_ok {
            report(
                "eapi.url",
                format!(
                    "{:?}: use \"unix:/var/run/command-api.sock\", \"http://localhost:8080/command-api\" or an https:// URL",
                    e.url
                ),
            );
        }
        if e.poll_interval.0 < Duration::from_millis(100) {
            report("eapi.poll_interval", "must be at least 100ms".into());
        }
        if e.timeout.0.is_zero() {
            report("eapi.timeout", "must be more than 0".into());
        }
        if e.user.is_some() != e.password_file.is_some() {
            report(
                "eapi.user",
                "user and password_file go together: give both or neither".into(),
            );
        }
        if self.boot.vm_restart_attempts == 0 {
            report("boot.vm_restart_attempts", "must be at least 1".into());
        }
        if self.bridge.name.is_empty() || self.bridge.name.len() > 15 {
            report(
                "bridge.name",
                format!(
                    "{:?}: a Linux interface name has 1 to 15 characters",
                    self.bridge.name
                ),
            );
        }
        if let Err(m) = parse_cidr(&self.bridge.address) {
            report("bridge.address", m);
        }
        if self.vm.name.trim().is_empty() {
            report("vm.name", "must not be empty".into());
        }
        let d = &self.dhcp;
        if !self.ztp.serve || !d.bootfile_url.is_empty() {
            if let Err(m) = check_url(&d.bootfile_url) {
                report("dhcp.bootfile_url", m);
            }
        }
        if d.vendor_class.is_empty() {
            report(
                "dhcp.vendor_class",
                "must not be empty (it would answer every DHCP client on the link)".into(),
            );
        }
        for (i, g) in d.interfaces.iter().enumerate() {
            if let Err(m) = check_glob(g) {
                report(&format!("dhcp.interfaces[{i}]"), m);
            }
        }
        for (i, g) in d.exclude.iter().enumerate() {
            if let Err(m) = check_glob(g) {
                report(&format!("dhcp.exclude[{i}]"), m);
            }
        }
        if d.lease_time.0 < Duration::from_secs(60) {
            report("dhcp.lease_time", "must be at least 1m".into());
        }
        if d.lease_time.0 > Duration::from_secs(u32::MAX as u64) {
            report(
                "dhcp.lease_time",
                "must fit in 32 bits of seconds (about 136 years)".into(),
            );
        }
        if d.offer_hold.0 < Duration::from_secs(1) {
            report("dhcp.offer_hold", "must be at least 1s".into());
        }
        if d.lease_file.as_os_str().is_empty() || !d.lease_file.is_absolute() {
            report("dhcp.lease_file", "must be an absolute path".into());
        }
        if let Some(h) = &d.hostname {
            if let Err(err) = HostnameTemplate::new(h) {
                report("dhcp.hostname", err.why);
            }
        }
        if let Some(dn) = &d.domain_name {
            if dn.is_empty() || dn.len() > 255 {
                report("dhcp.domain_name", "must be 1 to 255 characters".into());
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, l) in d.links.iter().enumerate() {
            let k = |f: &str| format!("dhcp.link[{i}].{f}");
            if !seen.insert(l.interface.to_ascii_lowercase()) {
                report(&k("interface"), format!("{} has two pools", l.interface));
            }
            if l.interface.contains(['*', '?']) {
                report(&k("interface"), "one EOS interface name, not a glob".into());
            }
            match l.pool_spec() {
                Ok(spec) => {
                    if let Err(e) = ztps_dhcp::AddressPlan::derive(None, Some(&spec)) {
                        report(&k("range"), e.to_string());
                    }
                }
                Err(m) => report(&k("range"), m),
            }
        }
        for (i, c) in d.classes.iter().enumerate() {
            let k = |f: &str| format!("dhcp.class[{i}].{f}");
            if c.vendor_class.is_empty() {
                report(&k("vendor_class"), "must not be empty".into());
            }
            if let Some(u) = &c.bootfile_url {
                if let Err(m) = check_url(u) {
                    report(&k("bootfile_url"), m);
                }
            }
            if let Some(h) = &c.hostname {
                if let Err(err) = HostnameTemplate::new(h) {
                    report(&k("hostname"), err.why);
                }
            }
        }
        if facility_code(&self.log.facility).is_none() {
            report(
                "log.facility",
                format!(
                    "{:?}: use local0..local7, daemon, user or syslog",
                    self.log.facility
                ),
            );
        }
        if self.log.tag.is_empty() || self.log.tag.len() > 32 {
            report("log.tag", "must be 1 to 32 characters".into());
        }
        if !self.state.dir.is_absolute() {
            report("state.dir", "must be an absolute path".into());
        }
    }

    /// The bridge address as (address, prefix length). Valid after parse.
    pub fn bridge_address(&self) -> (Ipv4Addr, u8) {
        parse_cidr(&self.bridge.address).expect("checked in Config::parse")
    }

    /// The DHCP core settings this config asks for.
    pub fn server_config(&self) -> ServerConfig {
        let d = &self.dhcp;
        let template =
            |h: &Option<String>| h.as_deref().and_then(|t| HostnameTemplate::new(t).ok());
        let mut classes: Vec<ClientClass> = d
            .classes
            .iter()
            .map(|c| ClientClass {
                name: c.name.clone(),
                vendor_class_prefix: c.vendor_class.clone(),
                bootfile_url: c.bootfile_url.clone(),
                dns_servers: c.dns_servers.clone(),
                domain_name: c.domain_name.clone(),
                ntp_servers: c.ntp_servers.clone(),
                hostname: template(&c.hostname),
            })
            .collect();
        classes.push(ClientClass {
            name: "default".into(),
            vendor_class_prefix: d.vendor_class.clone(),
            bootfile_url: Some(if self.ztp.serve {
                crate::ztp::bootstrap_url(self.ztp.port)
            } else {
                d.bootfile_url.clone()
            }),
            dns_servers: d.dns_servers.clone(),
            domain_name: d.domain_name.clone(),
            ntp_servers: d.ntp_servers.clone(),
            hostname: template(&d.hostname),
        });
        ServerConfig {
            classes,
            lease_time: d.lease_time.0,
            offer_hold: d.offer_hold.0,
            decline_quarantine: d.decline_quarantine.0,
            replace_after: d.replace_after.0,
            ..ServerConfig::default()
        }
    }
}

impl LinkPool {
    /// The pool as the DHCP crate takes it.
    pub fn pool_spec(&self) -> Result<PoolSpec, String> {
        let (a, b) = self.range.split_once('-').ok_or_else(|| {
            format!(
                "{:?}: write the range as \"first-last\", e.g. \"10.0.7.2-10.0.7.6\"",
                self.range
            )
        })?;
        let first: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("{:?} is not an IPv4 address", a.trim()))?;
        let last: Ipv4Addr = b
            .trim()
            .parse()
            .map_err(|_| format!("{:?} is not an IPv4 address", b.trim()))?;
        Ok(PoolSpec {
            first,
            last,
            router: self.router,
            prefix_len: self.prefix,
        })
    }
}

/// Syslog facility code for a facility name.
pub fn facility_code(name: &str) -> Option<u8> {
    Some(match name {
        "user" => 1,
        "daemon" => 3,
        "syslog" => 5,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: write address/prefix, e.g. \"10.10.10.1/24\""))?;
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|p| (1..=32).contains(p))
        .ok_or_else(|| format!("prefix {p:?} must be 1 to 32"))?;
    Ok((addr, prefix))
}

fn check_url(u: &str) -> Result<(), String> {
    let rest = ["http://", "https://", "tftp://"]
        .iter()
        .find_map(|s| u.strip_prefix(s));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => {
            if u.len() > 255 {
                Err(format!(
                    "{} characters: option 67 holds at most 255",
                    u.len()
                ))
            } else if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(format!("{u:?} contains white space"))
            } else {
                Ok(())
            }
        }
        _ => Err(format!(
            "{u:?} is not a full URL (http://, https:// or tftp:// and a host): EOS turns a bare \
             file name into tftp://<dhcp-server>/<file>"
        )),
    }
}

fn check_glob(g: &str) -> Result<(), String> {
    if g.is_empty() {
        return Err("empty interface pattern".into());
    }
    if g.chars().any(|c| c.is_whitespace() || "[]{}".contains(c)) {
        return Err(format!(
            "{g:?}: only * and ? are wildcards; no spaces, [ ] or {{ }}"
        ));
    }
    Ok(())
}

/// Whether `name` matches glob `pattern` (`*` any run, `?` one character),
/// ignoring case as EOS does for interface names.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[dhcp]\nbootfile_url = \"http://10.10.10.11:8080/bootstrap\"\n";

    #[test]
    fn the_design_example_parses() {
        let text = r#"
[eapi]
url = "unix:/var/run/command-api.sock"  # or "http://localhost:8080/command-api"
poll_interval = "2s"
timeout = "5s"

[boot]
ready_timeout = "10m"
fastcli = "/usr/bin/FastCli"

[bridge]
name = "br0"
address = "10.10.10.1/24"

[vm]
name = "ztps"

[dhcp]
bootfile_url = "http://10.10.10.11:8080/bootstrap"
interfaces = ["Ethernet*"]
exclude = []
lease_time = "1d"
lease_file = "/mnt/flash/ztps/leases.json"

[[dhcp.link]]
interface = "Ethernet7"
range = "10.0.7.2-10.0.7.6"
router = "10.0.7.1"
prefix = 29

[log]
syslog = true
facility = "local0"
tag = "ZTPS"

[state]
dir = "/var/run/ztps"
"#;
        let c = Config::parse(text, "ztps.toml").unwrap();
        assert_eq!(c.eapi.poll_interval.0, Duration::from_secs(2));
        assert_eq!(c.boot.ready_timeout.0, Duration::from_secs(600));
        assert_eq!(c.dhcp.lease_time.0, Duration::from_secs(86_400));
        assert_eq!(c.bridge_address(), (Ipv4Addr::new(10, 10, 10, 1), 24));
        assert_eq!(c.dhcp.links[0].pool_spec().unwrap().prefix_len, 29);
        let s = c.server_config();
        assert_eq!(s.classes.last().unwrap().vendor_class_prefix, "Arista");
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = Config::parse(MINIMAL, "x").unwrap();
        assert_eq!(c.eapi.url, "unix:/var/run/command-api.sock");
        assert_eq!(c.dhcp.interfaces, vec!["Ethernet*"]);
        assert_eq!(c.state.dir, PathBuf::from("/var/run/ztps"));
        assert_eq!(c.log.facility, "local0");
    }

    #[test]
    fn unknown_key_names_file_line_column_and_key() {
        let text = format!("{MINIMAL}lease_tme = \"1d\"\n");
        let e = Config::parse(&text, "/mnt/flash/ztps/ztps.toml").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with(
                "/mnt/flash/ztps/ztps.toml:3:1: dhcp.lease_tme: unknown field `lease_tme`"
            ),
            "{s}"
        );
    }

    #[test]
    fn bad_values_name_their_line_and_key() {
        let text = "[eapi]\npoll_interval = \"2 parsecs\"\n[dhcp]\nbootfile_url = \"http://x/\"\n";
        let s = Config::parse(text, "f").unwrap_err().to_string();
        assert!(s.starts_with("f:2:"), "{s}");
        assert!(
            s.contains("eapi.poll_interval") && s.contains("unknown unit"),
            "{s}"
        );
    }

    #[test]
    fn semantic_errors_are_all_reported_with_lines() {
        let text = r#"[bridge]
address = "10.10.10.1"
[dhcp]
bootfile_url = "bootstrap"
interfaces = ["Ethernet[1-4]"]
[[dhcp.link]]
interface = "Ethernet7"
range = "10.0.7.2-10.0.7.6"
router = "10.0.7.1"
prefix = 29
[[dhcp.link]]
interface = "Ethernet8"
range = "10.0.8.6-10.0.8.2"
router = "10.0.8.1"
prefix = 29
[log]
facility = "local9"
"#;
        let e = Config::parse(text, "f").unwrap_err();
        let keys: Vec<(Option<usize>, &str)> =
            e.issues.iter().map(|i| (i.line, i.key.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                (Some(2), "bridge.address"),
                (Some(4), "dhcp.bootfile_url"),
                (Some(5), "dhcp.interfaces[0]"),
                (Some(13), "dhcp.link[1].range"),
                (Some(17), "log.facility"),
            ]
        );
        let s = e.to_string();
        assert!(
            s.contains("not a full URL") && s.contains("tftp://<dhcp-server>"),
            "{s}"
        );
        assert!(s.contains("first address is after the last"), "{s}");
    }

    #[test]
    fn missing_dhcp_section_is_an_error() {
        let s = Config::parse("[eapi]\n", "f").unwrap_err().to_string();
        assert!(s.contains("missing field `dhcp`"), "{s}");
    }

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("500ms").unwrap().0, Duration::from_millis(500));
        assert_eq!(Dur::parse("1h30m").unwrap().0, Duration::from_secs(5400));
        assert!(Dur::parse("10").unwrap_err().contains("no unit"));
        assert!(Dur::parse("5y").unwrap_err().contains("unknown unit"));
        assert_eq!(Dur(Duration::from_secs(86400)).to_string(), "1d");
        assert_eq!(Dur(Duration::from_millis(1500)).to_string(), "1500ms");
    }

    #[test]
    fn globs() {
        assert!(glob_match("Ethernet*", "Ethernet49/1"));
        assert!(glob_match("ethernet?", "Ethernet3"));
        assert!(!glob_match("Ethernet?", "Ethernet13"));
        assert!(glob_match("*", "Vlan100"));
        assert!(glob_match("Ethernet4*/1", "Ethernet49/1"));
        assert!(!glob_match("Ethernet4*/1", "Ethernet49/2"));
    }
}
