//! `[ztp]`: the spine serves ZTP itself (DESIGN.md, "Two ways to provision a leaf").

use crate::defaults;
use crate::error::Issues;
use crate::raw::RawZtp;
use crate::value::{check_eos_interface, token, LeafName};
use crate::{abs_path, int_in};
use std::collections::HashSet;
use std::path::PathBuf;

/// `[ztp]`; absent means VM mode (`serve = false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZtpConfig {
    /// Whether the spine serves ZTP itself (option 67 per link to the spine).
    pub serve: bool,
    /// TCP port of the ZTP service on the spine's link addresses; never 0.
    pub port: u16,
    /// Directory of `<name>.cfg` per leaf (absolute).
    pub configs: PathBuf,
    /// `[[ztp.leaf]]`: which leaf is cabled to which spine port.
    pub leaf: Vec<ZtpLeaf>,
    /// `[ztp.image]`: upgrade leaves not on this version first.
    pub image: Option<ZtpImage>,
    /// At most this many image downloads at once; at least 1.
    pub max_image_downloads: usize,
}

impl Default for ZtpConfig {
    fn default() -> Self {
        ZtpConfig {
            serve: false,
            port: defaults::ZTP_PORT,
            configs: defaults::ZTP_CONFIGS.into(),
            leaf: Vec::new(),
            image: None,
            max_image_downloads: defaults::MAX_IMAGE_DOWNLOADS,
        }
    }
}

/// `[[ztp.leaf]]`: the leaf on one spine port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZtpLeaf {
    /// The spine port (one EOS interface name, like `Ethernet3` or `Ethernet49/1`).
    pub interface: String,
    /// The leaf's name: `<configs>/<name>.cfg`, and its LLDP name once provisioned.
    pub name: LeafName,
    /// Only a leaf with this serial gets the config (printable ASCII, no spaces, <= 64).
    pub serial: Option<String>,
}

/// `[ztp.image]`: the EOS image leaves are upgraded to before their config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZtpImage {
    /// Absolute path of the `.swi` on the spine.
    pub file: PathBuf,
    /// The EOS version it holds (`4.33.2F`): printable, no spaces.
    pub version: String,
}

impl ZtpConfig {
    /// The leaf on spine port `interface` (EOS name, any case).
    pub fn leaf_on(&self, interface: &str) -> Option<&ZtpLeaf> {
        self.leaf
            .iter()
            .find(|l| l.interface.eq_ignore_ascii_case(interface))
    }

    pub(crate) fn from_raw(raw: RawZtp, iss: &mut Issues<'_>) -> ZtpConfig {
        let d = ZtpConfig::default();
        let port = match raw.port {
            Some(0) => {
                iss.report("ztp.port", "must be 1 to 65535, not 0".into());
                d.port
            }
            Some(p) => iss
                .take("ztp.port", int_in(p, 1, 65_535))
                .map_or(d.port, |p| p as u16),
            None => d.port,
        };
        let configs = iss.or_default(
            "ztp.configs",
            raw.configs.as_deref(),
            |s| abs_path(s, "configs directory"),
            || d.configs.clone(),
        );
        let max_image_downloads = match raw.max_image_downloads {
            Some(n) => iss
                .take(
                    "ztp.max_image_downloads",
                    int_in(n, 1, 1024).map_err(|m| format!("{m} (at least 1)")),
                )
                .map_or(d.max_image_downloads, |n| n as usize),
            None => d.max_image_downloads,
        };
        let mut interfaces = HashSet::new();
        let mut names = HashSet::new();
        let mut leaf = Vec::new();
        for (i, l) in raw.leaf.into_iter().enumerate() {
            let k = |f: &str| format!("ztp.leaf[{i}].{f}");
            let interface = iss
                .take(&k("interface"), check_eos_interface(&l.interface))
                .map(|()| l.interface.clone());
            if interface.is_some() && !interfaces.insert(l.interface.to_ascii_lowercase()) {
                iss.report(
                    &k("interface"),
                    format!("{} has two [[ztp.leaf]] entries", l.interface),
                );
            }
            let name = iss.take(&k("name"), LeafName::parse(&l.name));
            if name.is_some() && !names.insert(l.name.to_ascii_lowercase()) {
                iss.report(
                    &k("name"),
                    format!("{} names two [[ztp.leaf]] entries", l.name),
                );
            }
            let serial = match l.serial {
                Some(s) => iss
                    .take(&k("serial"), token(&s, 64, "a serial number").map(|()| s))
                    .map(Some),
                None => Some(None),
            };
            if let (Some(interface), Some(name), Some(serial)) = (interface, name, serial) {
                leaf.push(ZtpLeaf {
                    interface,
                    name,
                    serial,
                });
            }
        }
        let image = raw.image.and_then(|im| {
            let file = iss.take("ztp.image.file", abs_path(&im.file, "EOS image"));
            let version = iss.take(
                "ztp.image.version",
                token(&im.version, 64, "an EOS version").map(|()| im.version),
            );
            Some(ZtpImage {
                file: file?,
                version: version?,
            })
        });
        ZtpConfig {
            serve: raw.serve.unwrap_or(d.serve),
            port,
            configs,
            leaf,
            image,
            max_image_downloads,
        }
    }
}
