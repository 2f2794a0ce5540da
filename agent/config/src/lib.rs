//! ztps-config: the one schema of the ztps-agent config file (`ztps.toml`).
//!
//! [`Config::parse`] reads the text strictly (unknown keys are errors), then turns
//! every value into its type once ([`value`]): durations, CIDRs, pools,
//! facilities, hostname templates, interface globs and names, VM and leaf names.
//! Code holding a [`Config`] never parses again. Every problem is reported, all
//! at once, as `file:line:column: key: message` ([`ConfigError`]).
//!
//! **Invariants.** This crate is the only definition of the config format and of
//! its defaults ([`defaults`]): the agent (`daemon`, `boot`, `check-config`) and
//! the flash bundle (which renders a file and checks it with [`Config::parse`])
//! both go through it. Parsing never touches the system; checks that need the
//! system (does the interface exist?) belong to the daemon, which reports them
//! in status. No string that reaches FastCli, syslog, a DHCP option or a file
//! name can carry a control character. The crate stays light (serde, toml,
//! thiserror): nothing of the on-box stack.

#![warn(missing_docs)]

pub mod defaults;
mod error;
pub mod locate;
mod raw;
pub mod value;
mod ztp;

pub use error::{ConfigError, ConfigIssue, Issues};
pub use value::{
    format_duration, glob_match, parse_duration, BootfileUrl, DomainName, EapiUrl, EapiUser,
    EosInterface, Facility, HostnameTemplate, InterfaceGlob, Ipv4Cidr, Label, LeafName,
    LinuxIfName, LogLevel, Pool, SyslogTag, VendorClass, VmName,
};
pub use ztp::{ZtpConfig, ZtpImage, ZtpLeaf};

use locate::Locator;
use raw::{RawClass, RawConfig};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the config file lives on the switch.
pub const DEFAULT_PATH: &str = defaults::CONFIG_PATH;

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How to reach eAPI.
    pub eapi: EapiSection,
    /// `ztps-agent boot`.
    pub boot: BootSection,
    /// The VM bridge.
    pub bridge: BridgeSection,
    /// The ZTPServer VM.
    pub vm: VmSection,
    /// The DHCP server.
    pub dhcp: DhcpSection,
    /// Logging.
    pub log: LogSection,
    /// Runtime state for `status`.
    pub state: StateSection,
    /// The spine's own ZTP service (`[ztp]`, optional: VM mode without it).
    pub ztp: ZtpConfig,
}

/// `[eapi]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EapiSection {
    /// `unix:/var/run/command-api.sock`, `http://localhost:8080/command-api` or an https URL.
    pub url: EapiUrl,
    /// How often to ask which interfaces are connected (at least 100 ms).
    pub poll_interval: Duration,
    /// Timeout of one eAPI request (more than 0).
    pub timeout: Duration,
    /// `user` and `password_file`, for http(s) with authentication: both or neither.
    pub credentials: Option<EapiCredentials>,
}

/// `eapi.user` and `eapi.password_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EapiCredentials {
    /// The user.
    pub user: EapiUser,
    /// File whose first line is the password (absolute path).
    pub password_file: PathBuf,
}

/// `[boot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSection {
    /// How long `boot` waits for eAPI to answer.
    pub ready_timeout: Duration,
    /// Path of FastCli (absolute).
    pub fastcli: PathBuf,
    /// Timeout of one FastCli run.
    pub fastcli_timeout: Duration,
    /// Attempts at the VM restart before `boot` gives up.
    pub vm_restart_attempts: NonZeroU32,
}

/// `[bridge]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSection {
    /// Bridge name.
    pub name: LinuxIfName,
    /// Address/prefix on the bridge: the VM's default gateway.
    pub address: Ipv4Cidr,
    /// MTU, if it should be set (68 to 65535).
    pub mtu: Option<u32>,
}

/// `[vm]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSection {
    /// The EOS virtual-machine name (`virtual-machine <name> restart`).
    pub name: VmName,
    /// Whether `boot` restarts the VM.
    pub restart_on_boot: bool,
}

/// `[dhcp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpSection {
    /// Option 67 for the default Arista class. Required unless `ztp.serve`,
    /// where option 67 points at the spine itself, per link.
    pub bootfile_url: Option<BootfileUrl>,
    /// Option 60 prefix of the default class.
    pub vendor_class: VendorClass,
    /// EOS names or globs of interfaces that may be served.
    pub interfaces: Vec<InterfaceGlob>,
    /// EOS names or globs never served (Management, Loopback and the bridge
    /// never are, whatever this says).
    pub exclude: Vec<InterfaceGlob>,
    /// Lease time: 1 minute to 2^32-1 seconds.
    pub lease_time: Duration,
    /// The lease file (absolute).
    pub lease_file: PathBuf,
    /// How long an OFFER holds its address (at least 1 s).
    pub offer_hold: Duration,
    /// How long a point-to-point link's leaf must be silent before a new leaf
    /// (an RMA replacement) may take its address.
    pub replace_after: Duration,
    /// How long a DECLINEd address is kept out of use.
    pub decline_quarantine: Duration,
    /// Option 6 for the default class.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15 for the default class.
    pub domain_name: Option<DomainName>,
    /// Option 42 for the default class.
    pub ntp_servers: Vec<Ipv4Addr>,
    /// Option 12 template for the default class.
    pub hostname: Option<HostnameTemplate>,
    /// `[[dhcp.link]]`: pools for links with no /31 or /30 to derive from; one per interface.
    pub links: Vec<LinkPool>,
    /// `[[dhcp.class]]`: more client classes, tried in order before the default one.
    pub classes: Vec<ClassSection>,
}

/// `[[dhcp.link]]`: a pool for one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPool {
    /// EOS interface name.
    pub interface: EosInterface,
    /// The checked range, router and prefix.
    pub pool: Pool,
}

/// `[[dhcp.class]]`: a client class with its own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSection {
    /// Name for logs.
    pub name: Label,
    /// Option 60 must start with this.
    pub vendor_class: VendorClass,
    /// Option 67.
    pub bootfile_url: Option<BootfileUrl>,
    /// Option 6.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain_name: Option<DomainName>,
    /// Option 42.
    pub ntp_servers: Vec<Ipv4Addr>,
    /// Option 12 template.
    pub hostname: Option<HostnameTemplate>,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSection {
    /// Log to syslog (shows in EOS `show logging`).
    pub syslog: bool,
    /// Syslog facility.
    pub facility: Facility,
    /// Syslog tag.
    pub tag: SyslogTag,
    /// Level filter, `RUST_LOG` syntax (`info`, `debug`, `ztps_dhcp=debug`);
    /// the `RUST_LOG` environment variable wins.
    pub level: LogLevel,
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSection {
    /// Directory for the status file read by `ztps-agent status` (absolute).
    pub dir: PathBuf,
}

/// An integer of a TOML file in `lo..=hi`.
pub(crate) fn int_in(n: i64, lo: i64, hi: i64) -> Result<i64, String> {
    if (lo..=hi).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n}: must be {lo} to {hi}"))
    }
}

/// An absolute path without control characters, `..` or a trailing `/`.
pub(crate) fn abs_path(s: &str, what: &str) -> Result<PathBuf, String> {
    value::no_control(s)?;
    let p = Path::new(s);
    if !p.is_absolute() || s.len() > 4096 || p.components().any(|c| c.as_os_str() == "..") {
        return Err(format!("{s:?}: write the absolute path of the {what}"));
    }
    Ok(p.to_path_buf())
}

fn duration_key(
    iss: &mut Issues<'_>,
    key: &str,
    raw: Option<&str>,
    default: Duration,
    min: Duration,
) -> Duration {
    let d = iss.or_default(key, raw, parse_duration, || default);
    if d < min {
        let m = if min.is_zero() {
            "must be more than 0".to_string()
        } else {
            format!("must be at least {}", format_duration(min))
        };
        iss.report(key, m);
    }
    d
}

fn ipv4_list(iss: &mut Issues<'_>, key: &str, raw: &[String]) -> Vec<Ipv4Addr> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            iss.take(
                &format!("{key}[{i}]"),
                s.parse()
                    .map_err(|_| format!("{s:?} is not an IPv4 address")),
            )
        })
        .collect()
}

fn globs(iss: &mut Issues<'_>, key: &str, raw: &[String]) -> Vec<InterfaceGlob> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, g)| iss.take(&format!("{key}[{i}]"), InterfaceGlob::parse(g)))
        .collect()
}

fn optional<T>(
    iss: &mut Issues<'_>,
    key: &str,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    raw.and_then(|s| iss.take(key, parse(s)))
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::whole_file(&origin, format!("cannot read: {e}")))?;
        Config::parse(&text, &origin)
    }

    /// Parses and checks config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let loc = Locator::new(text);
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(&e, &loc, origin))?;
        let mut iss = Issues::new(&loc);
        let config = Config::from_raw(raw, &mut iss);
        if iss.is_empty() {
            Ok(config)
        } else {
            Err(iss.into_error(origin))
        }
    }

    /// Turns the raw file into typed values; every problem goes to `iss` (and
    /// the returned config is then not to be used).
    fn from_raw(raw: RawConfig, iss: &mut Issues<'_>) -> Config {
        let e = raw.eapi;
        let credentials = match (e.user, e.password_file) {
            (Some(user), Some(file)) => {
                let user = iss.take("eapi.user", EapiUser::parse(&user));
                let file = iss.take("eapi.password_file", abs_path(&file, "password file"));
                user.zip(file).map(|(user, password_file)| EapiCredentials {
                    user,
                    password_file,
                })
            }
            (None, None) => None,
            _ => {
                iss.report(
                    "eapi.user",
                    "user and password_file go together: give both or neither".into(),
                );
                None
            }
        };
        let eapi = EapiSection {
            url: iss.or_default("eapi.url", e.url.as_deref(), EapiUrl::parse, || {
                EapiUrl::parse(defaults::EAPI_URL).expect("the default is valid")
            }),
            poll_interval: duration_key(
                iss,
                "eapi.poll_interval",
                e.poll_interval.as_deref(),
                defaults::EAPI_POLL_INTERVAL,
                Duration::from_millis(100),
            ),
            timeout: duration_key(
                iss,
                "eapi.timeout",
                e.timeout.as_deref(),
                defaults::EAPI_TIMEOUT,
                Duration::ZERO,
            ),
            credentials,
        };

        let b = raw.boot;
        let boot = BootSection {
            ready_timeout: duration_key(
                iss,
                "boot.ready_timeout",
                b.ready_timeout.as_deref(),
                defaults::BOOT_READY_TIMEOUT,
                Duration::ZERO,
            ),
            fastcli: iss.or_default(
                "boot.fastcli",
                b.fastcli.as_deref(),
                |s| abs_path(s, "FastCli executable"),
                || defaults::FASTCLI.into(),
            ),
            fastcli_timeout: duration_key(
                iss,
                "boot.fastcli_timeout",
                b.fastcli_timeout.as_deref(),
                defaults::FASTCLI_TIMEOUT,
                Duration::from_secs(1),
            ),
            vm_restart_attempts: b
                .vm_restart_attempts
                .and_then(|n| {
                    iss.take(
                        "boot.vm_restart_attempts",
                        int_in(n, 1, 100).map_err(|m| format!("{m} (at least 1)")),
                    )
                })
                .and_then(|n| NonZeroU32::new(n as u32))
                .unwrap_or(defaults::VM_RESTART_ATTEMPTS),
        };

        let br = raw.bridge;
        let bridge = BridgeSection {
            name: iss.or_default(
                "bridge.name",
                br.name.as_deref(),
                LinuxIfName::parse,
                || LinuxIfName::parse(defaults::BRIDGE_NAME).expect("the default is valid"),
            ),
            address: iss.or_default(
                "bridge.address",
                br.address.as_deref(),
                Ipv4Cidr::parse,
                || Ipv4Cidr::parse(defaults::BRIDGE_ADDRESS).expect("the default is valid"),
            ),
            mtu: br
                .mtu
                .and_then(|m| iss.take("bridge.mtu", int_in(m, 68, 65_535)))
                .map(|m| m as u32),
        };

        let vm = VmSection {
            name: iss.or_default("vm.name", raw.vm.name.as_deref(), VmName::parse, || {
                VmName::parse(defaults::VM_NAME).expect("the default is valid")
            }),
            restart_on_boot: raw.vm.restart_on_boot.unwrap_or(true),
        };

        let ztp = ZtpConfig::from_raw(raw.ztp, iss);
        let dhcp = dhcp_from_raw(raw.dhcp, !ztp.serve, iss);

        let l = raw.log;
        let log = LogSection {
            syslog: l.syslog.unwrap_or(true),
            facility: iss.or_default(
                "log.facility",
                l.facility.as_deref(),
                Facility::parse,
                || Facility::parse(defaults::LOG_FACILITY).expect("the default is valid"),
            ),
            tag: iss.or_default("log.tag", l.tag.as_deref(), SyslogTag::parse, || {
                SyslogTag::parse(defaults::LOG_TAG).expect("the default is valid")
            }),
            level: iss.or_default("log.level", l.level.as_deref(), LogLevel::parse, || {
                LogLevel::parse(defaults::LOG_LEVEL).expect("the default is valid")
            }),
        };
        let state = StateSection {
            dir: iss.or_default(
                "state.dir",
                raw.state.dir.as_deref(),
                |s| abs_path(s, "state directory"),
                || defaults::STATE_DIR.into(),
            ),
        };
        Config {
            eapi,
            boot,
            bridge,
            vm,
            dhcp,
            log,
            state,
            ztp,
        }
    }
}

fn dhcp_from_raw(d: raw::RawDhcp, require_bootfile: bool, iss: &mut Issues<'_>) -> DhcpSection {
    let bootfile_url = optional(
        iss,
        "dhcp.bootfile_url",
        d.bootfile_url.as_deref(),
        BootfileUrl::parse,
    );
    if d.bootfile_url.is_none() && require_bootfile {
        iss.report(
            "dhcp.bootfile_url",
            "missing: option 67 for the leaves (the ZTPServer bootstrap URL); only with \
             ztp.serve = true does the spine serve it itself"
                .into(),
        );
    }
    let vendor_class = iss.or_default(
        "dhcp.vendor_class",
        d.vendor_class.as_deref(),
        VendorClass::parse,
        || VendorClass::parse(defaults::VENDOR_CLASS).expect("the default is valid"),
    );
    let interfaces = match &d.interfaces {
        Some(v) => globs(iss, "dhcp.interfaces", v),
        None => defaults::INTERFACES
            .iter()
            .map(|g| InterfaceGlob::parse(g).expect("the default is valid"))
            .collect(),
    };
    let exclude = globs(iss, "dhcp.exclude", &d.exclude);
    let lease_time = duration_key(
        iss,
        "dhcp.lease_time",
        d.lease_time.as_deref(),
        defaults::LEASE_TIME,
        Duration::from_secs(60),
    );
    if lease_time > Duration::from_secs(u64::from(u32::MAX)) {
        iss.report(
            "dhcp.lease_time",
            "must fit in 32 bits of seconds (about 136 years)".into(),
        );
    }
    let lease_file = iss.or_default(
        "dhcp.lease_file",
        d.lease_file.as_deref(),
        |s| abs_path(s, "lease file"),
        || defaults::LEASE_FILE.into(),
    );
    let offer_hold = duration_key(
        iss,
        "dhcp.offer_hold",
        d.offer_hold.as_deref(),
        defaults::OFFER_HOLD,
        Duration::from_secs(1),
    );
    let replace_after = duration_key(
        iss,
        "dhcp.replace_after",
        d.replace_after.as_deref(),
        defaults::REPLACE_AFTER,
        Duration::ZERO,
    );
    let decline_quarantine = duration_key(
        iss,
        "dhcp.decline_quarantine",
        d.decline_quarantine.as_deref(),
        defaults::DECLINE_QUARANTINE,
        Duration::ZERO,
    );
    let dns_servers = ipv4_list(iss, "dhcp.dns_servers", &d.dns_servers);
    let ntp_servers = ipv4_list(iss, "dhcp.ntp_servers", &d.ntp_servers);
    let domain_name = optional(
        iss,
        "dhcp.domain_name",
        d.domain_name.as_deref(),
        DomainName::parse,
    );
    let hostname = optional(
        iss,
        "dhcp.hostname",
        d.hostname.as_deref(),
        HostnameTemplate::parse,
    );
    let mut seen = HashSet::new();
    let mut links = Vec::new();
    for (i, l) in d.link.into_iter().enumerate() {
        let k = |f: &str| format!("dhcp.link[{i}].{f}");
        let interface = iss.take(&k("interface"), EosInterface::parse(&l.interface));
        if interface.is_some() && !seen.insert(l.interface.to_ascii_lowercase()) {
            iss.report(&k("interface"), format!("{} has two pools", l.interface));
        }
        let router: Option<Ipv4Addr> = iss.take(
            &k("router"),
            l.router
                .parse()
                .map_err(|_| format!("{:?} is not an IPv4 address", l.router)),
        );
        let prefix = iss.take(&k("prefix"), int_in(l.prefix, 1, 30));
        let pool = match (router, prefix) {
            (Some(r), Some(p)) => iss.take(&k("range"), Pool::new(&l.range, r, p as u8)),
            _ => None,
        };
        if let (Some(interface), Some(pool)) = (interface, pool) {
            links.push(LinkPool { interface, pool });
        }
    }
    let classes = d
        .class
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| class_from_raw(c, &format!("dhcp.class[{i}]"), iss))
        .collect();
    DhcpSection {
        bootfile_url,
        vendor_class,
        interfaces,
        exclude,
        lease_time,
        lease_file,
        offer_hold,
        replace_after,
        decline_quarantine,
        dns_servers,
        domain_name,
        ntp_servers,
        hostname,
        links,
        classes,
    }
}

fn class_from_raw(c: RawClass, key: &str, iss: &mut Issues<'_>) -> Option<ClassSection> {
    let k = |f: &str| format!("{key}.{f}");
    let name = iss.take(&k("name"), Label::parse(&c.name));
    let vendor_class = iss.take(&k("vendor_class"), VendorClass::parse(&c.vendor_class));
    let bootfile_url = optional(
        iss,
        &k("bootfile_url"),
        c.bootfile_url.as_deref(),
        BootfileUrl::parse,
    );
    let domain_name = optional(
        iss,
        &k("domain_name"),
        c.domain_name.as_deref(),
        DomainName::parse,
    );
    let hostname = optional(
        iss,
        &k("hostname"),
        c.hostname.as_deref(),
        HostnameTemplate::parse,
    );
    let dns_servers = ipv4_list(iss, &k("dns_servers"), &c.dns_servers);
    let ntp_servers = ipv4_list(iss, &k("ntp_servers"), &c.ntp_servers);
    Some(ClassSection {
        name: name?,
        vendor_class: vendor_class?,
        bootfile_url,
        dns_servers,
        domain_name,
        ntp_servers,
        hostname,
    })
}

/// The agent's `[dhcp]` and `[ztp]` sections as another file embeds them under
/// the same keys: the flash bundle's site description, whose `[dhcp]` and
/// `[ztp]` are passed to the agent config as they are. Parsing them here means
/// the site accepts exactly what the agent accepts, with the same defaults and
/// messages, located in the site's own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedSections {
    /// `[dhcp]`, without `bootfile_url` (the embedding file supplies option 67).
    pub dhcp: DhcpSection,
    /// `[ztp]`.
    pub ztp: ZtpConfig,
}

impl EmbeddedSections {
    /// Parses `[dhcp]` and `[ztp]` of `text`, ignoring its other sections (the
    /// caller checks those). `dhcp.bootfile_url` is refused: `bootfile_hint`
    /// says where the embedding file sets option 67. Problems go to `iss`;
    /// `None` when there were any.
    pub fn parse(
        text: &str,
        bootfile_hint: &str,
        iss: &mut Issues<'_>,
    ) -> Option<EmbeddedSections> {
        let raw: raw::RawEmbedded = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                iss.report_toml(&e);
                return None;
            }
        };
        let before = iss.len();
        if raw.dhcp.bootfile_url.is_some() {
            iss.report("dhcp.bootfile_url", bootfile_hint.to_string());
        }
        let ztp = ZtpConfig::from_raw(raw.ztp, iss);
        let dhcp = dhcp_from_raw(raw.dhcp, false, iss);
        (iss.len() == before).then_some(EmbeddedSections { dhcp, ztp })
    }
}

#[cfg(test)]
mod tests;
