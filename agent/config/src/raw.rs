//! The file's shape as serde reads it: sections, key names and TOML types, with
//! unknown keys rejected. Values stay as written (strings, integers), so that
//! [`crate::Config::parse`] can check them all and report every problem at once,
//! each at its own line; defaults are applied there, from [`crate::defaults`].

use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub eapi: RawEapi,
    #[serde(default)]
    pub boot: RawBoot,
    #[serde(default)]
    pub bridge: RawBridge,
    #[serde(default)]
    pub vm: RawVm,
    #[serde(default)]
    pub dhcp: RawDhcp,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub ztp: RawZtp,
}

/// `[dhcp]` and `[ztp]` of a file that has other sections too.
#[derive(Deserialize)]
pub(crate) struct RawEmbedded {
    #[serde(default)]
    pub dhcp: RawDhcp,
    #[serde(default)]
    pub ztp: RawZtp,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEapi {
    pub url: Option<String>,
    pub poll_interval: Option<String>,
    pub timeout: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBoot {
    pub ready_timeout: Option<String>,
    pub fastcli: Option<String>,
    pub fastcli_timeout: Option<String>,
    pub vm_restart_attempts: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBridge {
    pub name: Option<String>,
    pub address: Option<String>,
    pub mtu: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVm {
    pub name: Option<String>,
    pub restart_on_boot: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDhcp {
    pub bootfile_url: Option<String>,
    pub vendor_class: Option<String>,
    pub interfaces: Option<Vec<String>>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub lease_time: Option<String>,
    pub lease_file: Option<String>,
    pub offer_hold: Option<String>,
    pub replace_after: Option<String>,
    pub decline_quarantine: Option<String>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    pub domain_name: Option<String>,
    #[serde(default)]
    pub ntp_servers: Vec<String>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub link: Vec<RawLinkPool>,
    #[serde(default)]
    pub class: Vec<RawClass>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLinkPool {
    pub interface: String,
    pub range: String,
    pub router: String,
    pub prefix: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClass {
    pub name: String,
    pub vendor_class: String,
    pub bootfile_url: Option<String>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    pub domain_name: Option<String>,
    #[serde(default)]
    pub ntp_servers: Vec<String>,
    pub hostname: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub syslog: Option<bool>,
    pub facility: Option<String>,
    pub tag: Option<String>,
    pub level: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub dir: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawZtp {
    pub serve: Option<bool>,
    pub port: Option<i64>,
    pub configs: Option<String>,
    #[serde(default)]
    pub leaf: Vec<RawLeaf>,
    pub image: Option<RawImage>,
    pub max_image_downloads: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLeaf {
    pub interface: String,
    pub name: String,
    pub serial: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawImage {
    pub file: String,
    pub version: String,
}
