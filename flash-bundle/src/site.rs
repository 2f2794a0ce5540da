//! The site description: the one file an operator writes for a site (the first
//! spine, its ZTPServer VM, the bridge, DHCP). `examples/site.toml` documents
//! every key.
//!
//! Parsing is strict: unknown keys are errors, and every error names the key and,
//! where the text has it, the line and column. All values are checked before
//! anything is rendered: the keys this crate owns (VM, MAC, addresses, names)
//! here, and `[dhcp]`, which the site passes to the agent config as it is, by
//! the agent's own schema crate (`ztps_config::EmbeddedSections`), so the site
//! accepts exactly what the agent accepts, with the same defaults and messages.
//! Nothing here renders: `render` depends on this module, never the reverse.

use serde::de::IgnoredAny;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use ztps_config::defaults::{EAPI_HTTP_LOCAL_URL, EAPI_URL as EAPI_UNIX_URL};
use ztps_config::locate::Locator;
use ztps_config::{BootfileUrl, DhcpSection, EmbeddedSections, Issues, VmName, ZtpConfig, ZtpLeaf};

/// An IPv4 address with a prefix length (the config crate's type).
pub use ztps_config::Ipv4Cidr as Cidr;

/// The Linux bridge the VM's NIC is attached to (the agent's `bridge.name`).
pub use ztps_config::defaults::BRIDGE_NAME;
/// The tap device libvirt creates for the VM's NIC.
pub const TAP_NAME: &str = "vnet0";

// ---------------------------------------------------------------- raw (serde) form

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: String,
    spine: RawSpine,
    vm: Option<RawVm>,
    bridge: Option<RawBridge>,
    #[serde(default)]
    eapi: RawEapi,
    /// Checked by [`EmbeddedSections::parse`].
    #[serde(default, rename = "dhcp")]
    _dhcp: Option<IgnoredAny>,
    /// Checked by [`EmbeddedSections::parse`]; only `serve` is read here.
    ztp: Option<toml::Table>,
    #[serde(default)]
    bundle: RawBundle,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    configs: Option<String>,
    image: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpine {
    hostname: String,
    loopback2: Option<String>,
    #[serde(default)]
    eos_image: Option<String>,
    #[serde(default)]
    boot_config: bool,
    #[serde(default)]
    fullrecover: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVm {
    #[serde(default = "default_vm_name")]
    name: String,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default = "default_memory_mib")]
    memory_mib: u32,
    #[serde(default = "default_vcpus")]
    vcpus: u32,
    disk: String,
    #[serde(default = "default_disk_format")]
    disk_format: DiskFormat,
    mac: String,
    #[serde(default = "default_graphics")]
    graphics: Graphics,
    #[serde(default)]
    emulator: Option<String>,
    bootstrap_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBridge {
    address: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEapi {
    #[serde(default = "default_eapi_url")]
    url: String,
}

impl Default for RawEapi {
    fn default() -> Self {
        RawEapi {
            url: default_eapi_url(),
        }
    }
}

fn default_vm_name() -> String {
    "ztps".into()
}
fn default_memory_mib() -> u32 {
    1024
}
fn default_vcpus() -> u32 {
    1
}
fn default_disk_format() -> DiskFormat {
    DiskFormat::Qcow2
}
fn default_graphics() -> Graphics {
    Graphics::None
}
fn default_eapi_url() -> String {
    EAPI_UNIX_URL.into()
}

// ---------------------------------------------------------------- checked form

/// A checked site description, made by [`Site::parse`], which validates every
/// value: the renderers rely on that and cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Site name: names the bundle in comments and seeds the derived VM uuid.
    pub name: String,
    /// The first spine.
    pub spine: Spine,
    /// Who serves the leaves' bootstrap: the spine itself, or a VM on it.
    pub mode: Mode,
    /// How the agent reaches eAPI.
    pub eapi: EapiTransport,
    /// `[dhcp]`, passed to the agent config as it is (checked by the agent's schema).
    pub dhcp: DhcpSection,
    /// `[ztp]`, passed to the agent config as it is; `serve` matches [`Site::mode`].
    pub ztp: ZtpConfig,
    /// `[bundle]`: files on the build machine that go into the bundle.
    pub sources: Sources,
}

/// How leaves are provisioned (DESIGN.md, "Two ways to provision a leaf").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `ztp.serve = true`: the agent serves each leaf its config over the link.
    /// No VM, no `br0`, no Loopback2, no on-boot event handler.
    SpineServed,
    /// A ZTPServer VM on the spine, on `br0`, reached through Loopback2.
    Vm(Box<VmSetup>),
}

/// What VM mode needs: the VM, its bridge and the spine's Loopback2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSetup {
    /// The ZTPServer VM.
    pub vm: Vm,
    /// Address of [`BRIDGE_NAME`] on the spine: the VM's default gateway.
    pub bridge: Cidr,
    /// Address of `interface Loopback2` (`spine.loopback2`), advertised into the fabric.
    pub loopback2: Cidr,
}

/// `[bundle]`: paths on the build machine, as written in the site (relative
/// ones are relative to the site file's directory).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sources {
    /// `bundle.configs`: the directory holding `<name>.cfg` for every `[[ztp.leaf]]`;
    /// they are shipped as `ztps/configs/<name>.cfg`.
    pub configs: Option<PathBuf>,
    /// `bundle.image`: a local copy of `ztp.image.file`, checked (and its
    /// SHA-256 put in INSTALL.txt); not copied into the bundle.
    pub image: Option<PathBuf>,
}

/// Where the bundle puts the leaves' configs, relative to flash.
pub const CONFIGS_DIR: &str = "ztps/configs";
/// Where a shipped site expects the EOS image for the leaves, relative to flash.
pub const IMAGES_DIR: &str = "ztps/images";

/// `[spine]`: the switch the bundle is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spine {
    /// EOS hostname in the full startup-config.
    pub hostname: String,
    /// EOS image file name on flash (e.g. `EOS-4.32.2F.swi`), if the site names one.
    pub eos_image: Option<String>,
    /// Whether to ship a `boot-config` pointing at [`Spine::eos_image`]
    /// (checked: true only with an image).
    pub boot_config: bool,
    /// Whether to ship an empty `fullrecover` file.
    pub fullrecover: bool,
}

/// `[vm]`: the ZTPServer virtual machine and its libvirt domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    /// EOS `virtual-machine` name and libvirt domain name.
    pub name: VmName,
    /// libvirt domain uuid.
    pub uuid: Uuid,
    /// Whether [`Vm::uuid`] was given or derived from the site and VM names.
    pub uuid_source: UuidSource,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Absolute path of the disk image on the switch.
    pub disk: String,
    /// Format of the disk image.
    pub disk_format: DiskFormat,
    /// MAC address of the VM's NIC.
    pub mac: Mac,
    /// Graphics console.
    pub graphics: Graphics,
    /// Emulator path for libvirt, if the site sets one (libvirt picks its default otherwise).
    pub emulator: Option<String>,
    /// Full URL of the ZTPServer bootstrap (DHCP option 67).
    pub bootstrap_url: BootfileUrl,
}

/// Where [`Vm::uuid`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UuidSource {
    /// `vm.uuid` in the site.
    Given,
    /// Derived by [`derive_uuid`].
    Derived,
}

/// Disk image format (libvirt `<driver type=...>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    /// QEMU copy-on-write image.
    Qcow2,
    /// Raw image.
    Raw,
}

impl DiskFormat {
    /// The libvirt name.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        }
    }
}

/// Graphics console of the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Graphics {
    /// Serial console only.
    None,
    /// VNC, listening on 127.0.0.1 only.
    Vnc,
}

/// How the agent reaches eAPI; decides the `management api http-commands` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EapiTransport {
    /// [`EAPI_UNIX_URL`], `protocol unix-socket`.
    UnixSocket,
    /// [`EAPI_HTTP_LOCAL_URL`], `protocol http localhost`.
    HttpLocalhost,
}

impl EapiTransport {
    /// The agent's `eapi.url`.
    pub fn url(self) -> &'static str {
        match self {
            EapiTransport::UnixSocket => EAPI_UNIX_URL,
            EapiTransport::HttpLocalhost => EAPI_HTTP_LOCAL_URL,
        }
    }

    /// The `protocol ...` line under `management api http-commands`.
    pub fn eos_protocol(self) -> &'static str {
        match self {
            EapiTransport::UnixSocket => "protocol unix-socket",
            EapiTransport::HttpLocalhost => "protocol http localhost",
        }
    }
}

/// A MAC address; displays as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Parses `aa:bb:cc:dd:ee:ff` (either case); checks it is unicast and not zero.
    pub fn parse(s: &str) -> Result<Mac, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bytes: Option<Vec<u8>> = (parts.len() == 6)
            .then(|| {
                parts
                    .iter()
                    .map(|p| {
                        (p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
                            .then(|| u8::from_str_radix(p, 16).ok())
                            .flatten()
                    })
                    .collect()
            })
            .flatten();
        let Some(b) = bytes else {
            return Err(format!(
                "{s:?}: write six hex pairs separated by colons, e.g. \"52:54:00:12:34:56\""
            ));
        };
        let mac = Mac([b[0], b[1], b[2], b[3], b[4], b[5]]);
        if mac.0[0] & 1 == 1 {
            return Err(format!(
                "{s:?} is a multicast address (lowest bit of the first byte set): a NIC needs a unicast MAC"
            ));
        }
        if mac.0 == [0; 6] {
            return Err("00:00:00:00:00:00 is not a usable MAC".into());
        }
        Ok(mac)
    }

    /// Whether the locally administered bit is set (as for 52:54:00:xx:xx:xx).
    pub fn is_local(&self) -> bool {
        self.0[0] & 2 == 2
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// A libvirt domain uuid; displays in the 8-4-4-4-12 lowercase form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Parses the 8-4-4-4-12 hex form (either case).
    pub fn parse(s: &str) -> Result<Uuid, String> {
        let groups: Vec<&str> = s.split('-').collect();
        let shape_ok = groups.len() == 5
            && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups
                .iter()
                .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
        if !shape_ok {
            return Err(format!(
                "{s:?}: write 32 hex digits as 8-4-4-4-12, e.g. \"8c5e8f5a-3f0b-4c1e-9d2a-1b2c3d4e5f60\", or leave vm.uuid out to derive one"
            ));
        }
        let hex: String = groups.concat();
        let mut b = [0u8; 16];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(Uuid(b))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The uuid used when the site gives none: a name-based UUID (version 8, RFC 9562)
/// whose 122 free bits are the first bits of
/// SHA-256(`"ztps-flash-bundle vm uuid\0" site "\0" vm`). The same site and VM
/// names always give the same uuid; different sites give different ones.
pub fn derive_uuid(site_name: &str, vm_name: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"ztps-flash-bundle vm uuid\0")
        .chain_update(site_name.as_bytes())
        .chain_update(b"\0")
        .chain_update(vm_name.as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    Uuid(b)
}

// ---------------------------------------------------------------- errors

/// One problem in a site description: the agent's config issue type, so both
/// files report problems the same way (`file:line:column: key: message`).
pub type SiteIssue = ztps_config::ConfigIssue;

/// Everything wrong with a site description; displays one
/// `file:line:column: key: message` line per problem.
pub type SiteError = ztps_config::ConfigError;

/// Something allowed but probably not meant; `cargo xtask dist` prints these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Dotted key.
    pub key: String,
    /// What looks wrong.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

// ---------------------------------------------------------------- checks

fn check_bridge(s: &str) -> Result<Cidr, String> {
    let c = Cidr::parse(s)?;
    if !(1..=30).contains(&c.prefix_len()) {
        return Err(format!(
            "{s:?}: prefix must be 1 to 30 (the subnet holds the bridge and the VM)"
        ));
    }
    if c.addr() == c.network().addr() {
        return Err(format!(
            "{s:?} is the subnet's network address; give the bridge a host address"
        ));
    }
    if c.addr() == c.broadcast() {
        return Err(format!("{s:?} is the subnet's broadcast address"));
    }
    let a = c.addr();
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
        return Err(format!("{s:?} is not a usable host address"));
    }
    Ok(c)
}

fn check_loopback2(s: &str) -> Result<Cidr, String> {
    let c = if s.contains('/') {
        Cidr::parse(s)?
    } else {
        let addr: Ipv4Addr = s.parse().map_err(|_| {
            format!("{s:?}: write an IPv4 address, e.g. \"10.10.10.254\" (rendered /32)")
        })?;
        Cidr::new(addr, 32).expect("32 is a prefix length")
    };
    let a = c.addr();
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
        return Err(format!("{s:?} is not a usable interface address"));
    }
    Ok(c)
}

fn check_site_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(s.into())
    } else {
        Err(format!(
            "{s:?}: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        ))
    }
}

fn check_hostname(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !s.ends_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
    if ok {
        Ok(s.into())
    } else {
        Err(format!(
            "{s:?}: a hostname has 1 to 63 letters, digits, '-' or '.', starting with a letter or digit"
        ))
    }
}

fn check_abs_path(s: &str, what: &str) -> Result<String, String> {
    if !s.starts_with('/') || s.ends_with('/') || s.contains("/../") || s.ends_with("/..") {
        return Err(format!(
            "{s:?}: write the absolute path of the {what} on the switch"
        ));
    }
    if s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || "'\"<>&".contains(c))
    {
        return Err(format!("{s:?}: no spaces, quotes or <>& in the path"));
    }
    Ok(s.into())
}

fn check_eos_image(s: &str) -> Result<String, String> {
    let ok = s.len() <= 128
        && s.ends_with(".swi")
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
    if ok {
        Ok(s.into())
    } else {
        Err(format!(
            "{s:?}: the file name of an EOS image on flash, e.g. \"EOS-4.32.2F.swi\" (no directory)"
        ))
    }
}

fn check_eapi(s: &str) -> Result<EapiTransport, String> {
    match s {
        EAPI_UNIX_URL => Ok(EapiTransport::UnixSocket),
        EAPI_HTTP_LOCAL_URL | "http://127.0.0.1:8080/command-api" => {
            Ok(EapiTransport::HttpLocalhost)
        }
        _ => Err(format!(
            "{s:?}: use {EAPI_UNIX_URL:?} (protocol unix-socket, EOS 4.14.5 and later) or \
             {EAPI_HTTP_LOCAL_URL:?} (protocol http localhost); https needs credentials, which \
             the bundle does not carry: set them in ztps/ztps.toml by hand"
        )),
    }
}

/// The host of a URL if it is an IPv4 literal.
fn url_ipv4_host(url: &str) -> Option<Ipv4Addr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = host_port.split(':').next()?;
    host.parse().ok()
}

/// VM mode's `[vm]`, `[bridge]` and `spine.loopback2`, all required.
fn vm_setup(raw: &RawSite, iss: &mut Issues<'_>) -> Option<VmSetup> {
    let missing = |what: &str| {
        format!(
            "missing: {what} (VM mode; or set ztp.serve = true for a spine that serves ZTP itself)"
        )
    };
    let (Some(rvm), Some(rbridge), Some(rlo)) = (&raw.vm, &raw.bridge, &raw.spine.loopback2) else {
        if raw.vm.is_none() {
            iss.report("vm", missing("the ZTPServer VM, [vm]"));
        }
        if raw.bridge.is_none() {
            iss.report("bridge", missing("the VM's bridge, [bridge]"));
        }
        if raw.spine.loopback2.is_none() {
            iss.report("spine", missing("spine.loopback2"));
        }
        return None;
    };
    let loopback2 = iss.take("spine.loopback2", check_loopback2(rlo));
    let vm_name = iss.take("vm.name", VmName::parse(&rvm.name));
    let bootstrap_url = iss.take("vm.bootstrap_url", BootfileUrl::parse(&rvm.bootstrap_url));
    let uuid = match &rvm.uuid {
        Some(u) => iss
            .take("vm.uuid", Uuid::parse(u))
            .map(|u| (u, UuidSource::Given)),
        None => Some((derive_uuid(&raw.name, &rvm.name), UuidSource::Derived)),
    };
    if !(128..=65_536).contains(&rvm.memory_mib) {
        iss.report(
            "vm.memory_mib",
            format!(
                "{} MiB: give 128 to 65536 (the spine's memory is shared with EOS)",
                rvm.memory_mib
            ),
        );
    }
    if !(1..=32).contains(&rvm.vcpus) {
        iss.report("vm.vcpus", format!("{}: give 1 to 32", rvm.vcpus));
    }
    let disk = iss.take("vm.disk", check_abs_path(&rvm.disk, "disk image"));
    let mac = iss.take("vm.mac", Mac::parse(&rvm.mac));
    let emulator = match &rvm.emulator {
        Some(e) => iss
            .take("vm.emulator", check_abs_path(e, "emulator"))
            .map(Some),
        None => Some(None),
    };
    let bridge = iss.take("bridge.address", check_bridge(&rbridge.address));
    if let (Some(br), Some(lo)) = (bridge, loopback2) {
        if br.addr() == lo.addr() {
            iss.report(
                "spine.loopback2",
                format!(
                    "{} is also bridge.address: give Loopback2 its own address",
                    lo.addr()
                ),
            );
        }
    }
    if let Some(host) = url_ipv4_host(&rvm.bootstrap_url) {
        if bridge.is_some_and(|b| b.addr() == host) || loopback2.is_some_and(|l| l.addr() == host) {
            iss.report(
                "vm.bootstrap_url",
                format!("{host} is an address of the spine itself, not of the ZTPServer VM"),
            );
        }
    }
    if let Some(t) = &raw.ztp {
        if t.get("leaf").is_some() {
            iss.report(
                "ztp.leaf",
                "[[ztp.leaf]] needs ztp.serve = true (in VM mode the ZTPServer VM serves the leaves)".into(),
            );
        }
    }
    if raw.bundle.configs.is_some() {
        iss.report(
            "bundle.configs",
            "leaf configs are shipped only with ztp.serve = true (in VM mode the ZTPServer VM holds them)".into(),
        );
    }
    Some(VmSetup {
        vm: Vm {
            name: vm_name?,
            uuid: uuid?.0,
            uuid_source: uuid?.1,
            memory_mib: rvm.memory_mib,
            vcpus: rvm.vcpus,
            disk: disk?,
            disk_format: rvm.disk_format,
            mac: mac?,
            graphics: rvm.graphics,
            emulator: emulator?,
            bootstrap_url: bootstrap_url?,
        },
        bridge: bridge?,
        loopback2: loopback2?,
    })
}

/// What the bundle needs of `[ztp]` on top of the agent's checks: configs and
/// images where the bundle puts them, and a configs directory to ship from.
fn check_ztp(ztp: &ZtpConfig, sources: &Sources, iss: &mut Issues<'_>) {
    let flash = crate::render::FLASH;
    let configs = format!("{flash}/{CONFIGS_DIR}");
    if ztp.configs != Path::new(&configs) {
        iss.report(
            "ztp.configs",
            format!("the bundle ships the leaves' configs to {configs}: leave ztp.configs out"),
        );
    }
    if ztp.serve && !ztp.leaf.is_empty() && sources.configs.is_none() {
        iss.report(
            "bundle",
            "missing: bundle.configs, the directory with <name>.cfg for every [[ztp.leaf]]".into(),
        );
    }
    match (&ztp.image, &sources.image) {
        (None, Some(_)) => iss.report(
            "bundle.image",
            "there is no [ztp.image] for this local copy: add [ztp.image] or remove it".into(),
        ),
        (Some(image), Some(local)) => {
            let expected = local
                .file_name()
                .map(|n| Path::new(flash).join(IMAGES_DIR).join(n));
            if expected.as_deref() != Some(image.file.as_path()) {
                iss.report(
                    "ztp.image.file",
                    format!(
                        "with bundle.image, the image goes to {}: set ztp.image.file to that",
                        expected.map_or_else(
                            || format!("{flash}/{IMAGES_DIR}/<file>"),
                            |p| p.display().to_string()
                        )
                    ),
                );
            }
        }
        _ => {}
    }
}

impl Site {
    /// Parses and checks a site description; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Site, SiteError> {
        let loc = Locator::new(text);
        let raw: RawSite =
            toml::from_str(text).map_err(|e| SiteError::from_toml(&e, &loc, origin))?;

        let mut iss = Issues::new(&loc);
        let name = iss.take("name", check_site_name(&raw.name));
        let hostname = iss.take("spine.hostname", check_hostname(&raw.spine.hostname));
        let eos_image = match &raw.spine.eos_image {
            Some(i) => iss.take("spine.eos_image", check_eos_image(i)).map(Some),
            None => Some(None),
        };
        if raw.spine.boot_config && raw.spine.eos_image.is_none() {
            iss.report(
                "spine.boot_config",
                "boot_config = true needs spine.eos_image (the image boot-config points at)".into(),
            );
        }
        let eapi = iss.take("eapi.url", check_eapi(&raw.eapi.url));
        let serve = raw
            .ztp
            .as_ref()
            .and_then(|t| t.get("serve"))
            .and_then(toml::Value::as_bool)
            .unwrap_or(false);
        let bootfile_hint = if serve {
            "with ztp.serve = true, option 67 points at the spine itself: leave it out"
        } else {
            "option 67 is vm.bootstrap_url in the site: set it there"
        };
        let embedded = EmbeddedSections::parse(text, bootfile_hint, &mut iss);

        let mode = if serve {
            let unused = "not used with ztp.serve = true (no VM, no br0, no Loopback2): remove it";
            for (present, key) in [
                (raw.vm.is_some(), "vm"),
                (raw.bridge.is_some(), "bridge"),
                (raw.spine.loopback2.is_some(), "spine.loopback2"),
            ] {
                if present {
                    iss.report(key, unused.into());
                }
            }
            Some(Mode::SpineServed)
        } else {
            vm_setup(&raw, &mut iss).map(|v| Mode::Vm(Box::new(v)))
        };
        let sources = Sources {
            configs: raw.bundle.configs.as_deref().map(PathBuf::from),
            image: raw.bundle.image.as_deref().map(PathBuf::from),
        };
        if let Some(e) = &embedded {
            check_ztp(&e.ztp, &sources, &mut iss);
        }

        let (Some(name), Some(hostname), Some(eos_image), Some(eapi), Some(mode), Some(embedded)) =
            (name, hostname, eos_image, eapi, mode, embedded)
        else {
            return Err(iss.into_error(origin));
        };
        if !iss.is_empty() {
            return Err(iss.into_error(origin));
        }
        Ok(Site {
            name,
            spine: Spine {
                hostname,
                eos_image,
                boot_config: raw.spine.boot_config,
                fullrecover: raw.spine.fullrecover,
            },
            mode,
            eapi,
            dhcp: embedded.dhcp,
            ztp: embedded.ztp,
            sources,
        })
    }

    /// This site for one spine of an AVD project (`cargo xtask dist --avd`):
    /// its hostname and leaves come from AVD, its configs from `configs`
    /// (`intended/configs`). The site must be spine-served and name no leaves.
    pub fn for_spine(
        &self,
        hostname: &str,
        leaves: Vec<ZtpLeaf>,
        configs: PathBuf,
    ) -> Result<Site, String> {
        if self.mode != Mode::SpineServed {
            return Err(
                "--avd builds spine-served bundles: set ztp.serve = true in the site".into(),
            );
        }
        if !self.ztp.leaf.is_empty() || self.sources.configs.is_some() {
            return Err("with --avd the leaves and their configs come from AVD: remove                  [[ztp.leaf]] and bundle.configs from the site"
                .into());
        }
        let hostname = check_hostname(hostname).map_err(|m| format!("AVD hostname {m}"))?;
        let mut site = self.clone();
        site.spine.hostname = hostname;
        site.ztp.leaf = leaves;
        site.sources.configs = Some(configs);
        Ok(site)
    }

    /// The site `cargo xtask dist --avd` uses when given none: spine-served,
    /// every other key at its default.
    pub fn avd_default() -> Site {
        const TEXT: &str = "name = \"avd\"\n[spine]\nhostname = \"spine\"\n[ztp]\nserve = true\n";
        Site::parse(TEXT, "the default --avd site").expect("the default --avd site is valid")
    }

    /// The VM setup, in VM mode.
    pub fn vm_setup(&self) -> Option<&VmSetup> {
        match &self.mode {
            Mode::Vm(v) => Some(v),
            Mode::SpineServed => None,
        }
    }

    /// Values that are allowed but probably not meant.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut w = Vec::new();
        let mut warn = |key: &str, message: String| {
            w.push(Warning {
                key: key.into(),
                message,
            })
        };
        if let Some(v) = self.vm_setup() {
            vm_warnings(v, &mut warn);
        }
        if self.mode == Mode::SpineServed && self.ztp.leaf.is_empty() {
            warn(
                "ztp.leaf",
                "no [[ztp.leaf]]: the spine answers every leaf's bootstrap request with 404".into(),
            );
        }
        if self.spine.fullrecover && !self.spine.boot_config {
            warn(
                "spine.fullrecover",
                "fullrecover without boot_config: Aboot's USB recovery also needs a boot-config and the image".into(),
            );
        }
        w
    }
}

/// Warnings about the VM setup.
fn vm_warnings(v: &VmSetup, warn: &mut dyn FnMut(&str, String)) {
    if !v.vm.mac.is_local() {
        warn(
                "vm.mac",
                format!(
                    "{} is a globally administered (vendor) address; a locally administered one \
                     (second-lowest bit of the first byte set, e.g. 52:54:00:xx:xx:xx) cannot clash \
                     with real hardware",
                    v.vm.mac
                ),
            );
    }
    let persistent = ["/mnt/flash/", "/mnt/usb1/", "/mnt/drive/"];
    if !persistent.iter().any(|p| v.vm.disk.starts_with(p)) {
        warn(
            "vm.disk",
            format!(
                "{} is not on /mnt/flash, /mnt/usb1 or /mnt/drive: the rest of EOS's file \
                     system does not survive a reboot",
                v.vm.disk
            ),
        );
    }
    let ext = v.vm.disk.rsplit('.').next().unwrap_or_default();
    let mismatch = match v.vm.disk_format {
        DiskFormat::Qcow2 => matches!(ext, "raw" | "img" | "vmdk" | "vdi"),
        DiskFormat::Raw => matches!(ext, "qcow2" | "qcow" | "vmdk" | "vdi"),
    };
    if mismatch {
        warn(
            "vm.disk_format",
            format!(
                "{} with a .{ext} file name: check that the image really is {}",
                v.vm.disk_format.as_str(),
                v.vm.disk_format.as_str()
            ),
        );
    }
    if let Some(host) = url_ipv4_host(&v.vm.bootstrap_url) {
        if !v.bridge.contains(host) {
            warn(
                    "vm.bootstrap_url",
                    format!(
                        "{host} is outside the bridge subnet {}: the VM on br0 is normally the ZTPServer",
                        v.bridge.network()
                    ),
                );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const GOOD: &str = r#"name = "lab"

[spine]
hostname = "spine1"
loopback2 = "10.10.10.254"

[vm]
disk = "/mnt/flash/ztps.qcow2"
mac = "52:54:00:12:34:56"
bootstrap_url = "http://10.10.10.11:8080/bootstrap"

[bridge]
address = "10.10.10.1/24"
"#;

    fn err(text: &str) -> SiteError {
        Site::parse(text, "site.toml").expect_err("should be rejected")
    }

    fn one(text: &str) -> SiteIssue {
        let e = err(text);
        assert_eq!(e.issues.len(), 1, "{e}");
        e.issues[0].clone()
    }

    #[test]
    fn good_site_takes_defaults() {
        let s = Site::parse(GOOD, "site.toml").unwrap();
        let v = s.vm_setup().expect("VM mode");
        assert_eq!(v.vm.name, "ztps");
        assert_eq!(v.vm.memory_mib, 1024);
        assert_eq!(v.vm.disk_format, DiskFormat::Qcow2);
        assert_eq!(v.vm.uuid_source, UuidSource::Derived);
        assert_eq!(v.vm.uuid, derive_uuid("lab", "ztps"));
        assert_eq!(v.loopback2.to_string(), "10.10.10.254/32");
        assert!(!s.ztp.serve);
        assert_eq!(s.eapi, EapiTransport::UnixSocket);
        assert_eq!(s.dhcp.interfaces, vec!["Ethernet*"]);
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    }

    #[test]
    fn unknown_key_names_key_line_and_column() {
        let text = GOOD.replace("mac = ", "macc = \"x\"\nmac = ");
        let e = err(&text);
        let s = e.to_string();
        assert!(
            s.starts_with("site.toml:9:1: vm.macc: unknown field `macc`"),
            "{s}"
        );
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let text = GOOD.replace("[vm]\n", "[vm]\nmemory_mib = \"2G\"\n");
        let i = one(&text);
        assert_eq!(
            (i.line, i.key.as_str()),
            (Some(8), "vm.memory_mib"),
            "{i:?}"
        );
    }

    #[test]
    fn missing_required_key_is_named() {
        let text = GOOD.replace("disk = \"/mnt/flash/ztps.qcow2\"\n", "");
        let i = one(&text);
        assert!(i.message.contains("missing field `disk`"), "{i:?}");
        assert_eq!(i.key, "vm");
    }

    #[test]
    fn multicast_and_malformed_macs_are_rejected() {
        let i = one(&GOOD.replace("52:54:00:12:34:56", "01:00:5e:00:00:01"));
        assert_eq!(
            (i.key.as_str(), i.line, i.column),
            ("vm.mac", Some(9), Some(7))
        );
        assert!(i.message.contains("multicast"), "{i:?}");
        let i = one(&GOOD.replace("52:54:00:12:34:56", "52-54-00-12-34-56"));
        assert!(
            i.key == "vm.mac" && i.message.contains("six hex pairs"),
            "{i:?}"
        );
        let i = one(&GOOD.replace("52:54:00:12:34:56", "52:54:00:12:34:5g"));
        assert_eq!(i.key, "vm.mac");
    }

    #[test]
    fn vendor_mac_is_a_warning_not_an_error() {
        let s = Site::parse(&GOOD.replace("52:54:00", "08:00:27"), "f").unwrap();
        let w = s.warnings();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].key, "vm.mac");
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let text = GOOD
            .replace("\"spine1\"", "\"spine 1\"")
            .replace("\"10.10.10.1/24\"", "\"10.10.10.0/24\"")
            .replace("[vm]\n", "[vm]\nuuid = \"1234\"\nvcpus = 0\n");
        let e = err(&text);
        let keys: Vec<&str> = e.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            ["spine.hostname", "vm.uuid", "vm.vcpus", "bridge.address"],
            "{e}"
        );
        assert!(e.to_string().contains("network address"), "{e}");
    }

    #[test]
    fn boot_config_needs_an_image() {
        let text = GOOD.replace("[vm]\n", "boot_config = true\n\n[vm]\n");
        let i = one(&text);
        assert_eq!((i.key.as_str(), i.line), ("spine.boot_config", Some(7)));
        let text = GOOD.replace("[vm]\n", "eos_image = \"/mnt/flash/EOS.swi\"\n\n[vm]\n");
        assert_eq!(one(&text).key, "spine.eos_image");
    }

    #[test]
    fn bootstrap_url_is_checked_by_the_agent_under_the_site_key() {
        let i = one(&GOOD.replace("http://10.10.10.11:8080/bootstrap", "bootstrap"));
        assert_eq!((i.key.as_str(), i.line), ("vm.bootstrap_url", Some(10)));
        assert!(i.message.contains("not a full URL"), "{i:?}");
        let i = one(&GOOD.replace("10.10.10.11:8080", "10.10.10.1:8080"));
        assert!(
            i.key == "vm.bootstrap_url" && i.message.contains("spine itself"),
            "{i:?}"
        );
    }

    #[test]
    fn dhcp_errors_come_from_the_agent_under_the_same_key() {
        let text = format!(
            "{GOOD}\n[dhcp]\ninterfaces = [\"Ethernet*\", \"Ethernet[1-4]\"]\nlease_time = \"1 day\"\n"
        );
        // Both are reported at once, each at its own line.
        let e = err(&text);
        let keys: Vec<(&str, Option<usize>)> =
            e.issues.iter().map(|i| (i.key.as_str(), i.line)).collect();
        assert_eq!(
            keys,
            [
                ("dhcp.interfaces[1]", Some(16)),
                ("dhcp.lease_time", Some(17))
            ],
            "{e}"
        );
        let text = format!("{GOOD}\n[dhcp]\ninterfaces = [\"Ethernet*\", \"Ethernet[1-4]\"]\n");
        let i = one(&text);
        assert_eq!(
            (i.key.as_str(), i.line),
            ("dhcp.interfaces[1]", Some(16)),
            "{i:?}"
        );
        assert_eq!(i.column, Some(28), "{i:?}");
        let text = format!(
            "{GOOD}\n[[dhcp.link]]\ninterface = \"Ethernet7\"\nrange = \"10.0.7.6-10.0.7.2\"\nrouter = \"10.0.7.1\"\nprefix = 29\n"
        );
        let i = one(&text);
        assert_eq!(
            (i.key.as_str(), i.line),
            ("dhcp.link[0].range", Some(17)),
            "{i:?}"
        );
        assert!(i.message.contains("after the last"), "{i:?}");
    }

    #[test]
    fn values_for_fastcli_and_dhcp_options_are_checked_by_the_config_crate() {
        let i = one(&GOOD.replace("[vm]\n", "[vm]\nname = \"ztps; bash rm -rf /mnt/flash\"\n"));
        assert_eq!(
            (i.key.as_str(), i.line, i.column),
            ("vm.name", Some(8), Some(8))
        );
        let i = one(&GOOD.replace("[vm]\n", "[vm]\nname = \"ztps\\nreload now\"\n"));
        assert!(i.key == "vm.name" && i.message.contains("control"), "{i:?}");
        let i = one(&format!("{GOOD}\n[dhcp]\ndomain_name = \"lab\\u0007\"\n"));
        assert_eq!((i.key.as_str(), i.line), ("dhcp.domain_name", Some(16)));
        let i = one(&format!("{GOOD}\n[dhcp]\nbootfile_url = \"http://x/\"\n"));
        assert_eq!((i.key.as_str(), i.line), ("dhcp.bootfile_url", Some(16)));
        assert!(i.message.contains("vm.bootstrap_url"), "{i:?}");
    }

    const SERVED: &str =
        "name = \"lab\"\n\n[spine]\nhostname = \"spine1\"\n\n[ztp]\nserve = true\n";

    #[test]
    fn a_spine_served_site_needs_no_vm_bridge_or_loopback2() {
        let s = Site::parse(SERVED, "f").unwrap();
        assert_eq!(s.mode, Mode::SpineServed);
        assert!(s.ztp.serve && s.vm_setup().is_none());
        assert_eq!(s.dhcp.bootfile_url, None);
        let w = s.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].key, "ztp.leaf");
    }

    #[test]
    fn vm_pieces_in_a_spine_served_site_are_errors() {
        let text = SERVED.replace(
            "hostname = \"spine1\"\n",
            "hostname = \"spine1\"\nloopback2 = \"10.10.10.254\"\n",
        ) + "[bridge]\naddress = \"10.10.10.1/24\"\n";
        let e = err(&text);
        let keys: Vec<(&str, Option<usize>)> =
            e.issues.iter().map(|i| (i.key.as_str(), i.line)).collect();
        assert_eq!(
            keys,
            [("spine.loopback2", Some(5)), ("bridge", Some(9))],
            "{e}"
        );
        assert!(
            e.to_string().contains("not used with ztp.serve = true"),
            "{e}"
        );
        let i = one(&format!("{SERVED}[dhcp]\nbootfile_url = \"http://x/\"\n"));
        assert_eq!((i.key.as_str(), i.line), ("dhcp.bootfile_url", Some(9)));
    }

    #[test]
    fn leaves_need_a_configs_directory_and_spine_served_mode() {
        let leaf = "[[ztp.leaf]]\ninterface = \"Ethernet1\"\nname = \"leaf1\"\n";
        let i = one(&format!("{SERVED}{leaf}"));
        assert!(
            i.key == "bundle" && i.message.contains("bundle.configs"),
            "{i:?}"
        );
        let s = Site::parse(&format!("{SERVED}{leaf}[bundle]\nconfigs = \"c\"\n"), "f").unwrap();
        assert_eq!(s.ztp.leaf[0].name, "leaf1");
        assert_eq!(s.sources.configs.as_deref(), Some(Path::new("c")));
        let i = one(&format!("{GOOD}[ztp]\n{leaf}"));
        assert_eq!((i.key.as_str(), i.line), ("ztp.leaf", Some(15)));
        let i = one(&format!("{GOOD}[bundle]\nconfigs = \"c\"\n"));
        assert_eq!((i.key.as_str(), i.line), ("bundle.configs", Some(15)));
    }

    #[test]
    fn shipped_configs_and_image_go_where_the_bundle_puts_them() {
        let i = one(&format!("{SERVED}configs = \"/mnt/flash/cfgs\"\n"));
        assert_eq!((i.key.as_str(), i.line), ("ztp.configs", Some(8)));
        let image = "[ztp.image]\nfile = \"/mnt/flash/EOS.swi\"\nversion = \"4.33.2F\"\n";
        let i = one(&format!(
            "{SERVED}{image}[bundle]\nimage = \"/tmp/EOS.swi\"\n"
        ));
        assert_eq!((i.key.as_str(), i.line), ("ztp.image.file", Some(9)));
        assert!(
            i.message.contains("/mnt/flash/ztps/images/EOS.swi"),
            "{i:?}"
        );
        let ok = image.replace("/mnt/flash/EOS.swi", "/mnt/flash/ztps/images/EOS.swi");
        assert!(Site::parse(
            &format!("{SERVED}{ok}[bundle]\nimage = \"/tmp/EOS.swi\"\n"),
            "f"
        )
        .is_ok());
        let i = one(&format!("{SERVED}[bundle]\nimage = \"/tmp/EOS.swi\"\n"));
        assert_eq!(i.key, "bundle.image");
        let i = one(&format!("{SERVED}[[ztp.leaf]]\ninterface = \"Ethernet1\"\nname = \"../x\"\n[bundle]\nconfigs = \"c\"\n"));
        assert_eq!((i.key.as_str(), i.line), ("ztp.leaf[0].name", Some(10)));
    }

    #[test]
    fn a_vm_site_without_its_vm_says_what_is_missing() {
        let e = err("name = \"lab\"\n[spine]\nhostname = \"s1\"\n");
        let keys: Vec<&str> = e.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["spine", "vm", "bridge"], "{e}");
        assert!(e.to_string().contains("ztp.serve = true"), "{e}");
    }

    #[test]
    fn eapi_url_must_match_a_management_api_protocol() {
        let text = format!("{GOOD}\n[eapi]\nurl = \"https://10.0.0.1/command-api\"\n");
        let i = one(&text);
        assert_eq!((i.key.as_str(), i.line), ("eapi.url", Some(16)));
        let text = format!("{GOOD}\n[eapi]\nurl = \"http://localhost:8080/command-api\"\n");
        assert_eq!(
            Site::parse(&text, "f").unwrap().eapi,
            EapiTransport::HttpLocalhost
        );
    }

    #[test]
    fn loopback2_takes_an_optional_prefix() {
        let s = Site::parse(
            &GOOD.replace("\"10.10.10.254\"", "\"10.10.10.254/24\""),
            "f",
        )
        .unwrap();
        assert_eq!(
            s.vm_setup().unwrap().loopback2.to_string(),
            "10.10.10.254/24"
        );
        let i = one(&GOOD.replace("\"10.10.10.254\"", "\"10.10.10.1\""));
        assert!(
            i.key == "spine.loopback2" && i.message.contains("bridge.address"),
            "{i:?}"
        );
        assert_eq!(
            one(&GOOD.replace("\"10.10.10.254\"", "\"10.10.10\"")).key,
            "spine.loopback2"
        );
    }

    #[test]
    fn toml_syntax_error_has_a_line() {
        let i = one(&GOOD.replace("[bridge]", "[bridge"));
        assert_eq!(i.line, Some(12), "{i:?}");
    }

    #[test]
    fn uuid_round_trips_and_derivation_is_stable() {
        let u = Uuid::parse("8C5E8F5A-3F0B-4C1E-9D2A-1B2C3D4E5F60").unwrap();
        assert_eq!(u.to_string(), "8c5e8f5a-3f0b-4c1e-9d2a-1b2c3d4e5f60");
        let d = derive_uuid("lab", "ztps");
        assert_eq!(d, derive_uuid("lab", "ztps"));
        assert_ne!(d, derive_uuid("lab2", "ztps"));
        assert_ne!(d, derive_uuid("la", "bztps"));
        let s = d.to_string();
        assert_eq!(&s[14..15], "8", "version 8: {s}");
        assert!("89ab".contains(&s[19..20]), "RFC 9562 variant: {s}");
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_ipv4_host("http://u:p@10.1.2.3:8080/x"),
            Some(Ipv4Addr::new(10, 1, 2, 3))
        );
        assert_eq!(url_ipv4_host("tftp://ztps.example/x"), None);
    }
}
