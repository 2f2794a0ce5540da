//! Pure renderers: one function per file of the bundle, from a checked [`Site`]
//! and the bundle version (which only appears in comments). None of them can
//! fail: every value was checked by [`Site::parse`], and every string that goes
//! into TOML or XML is escaped here anyway.
//!
//! Paths on the switch are fixed: the bundle unpacks at the root of flash
//! (`/mnt/flash`, `flash:` in EOS), the agent and its config live in `ztps/`.

use crate::payload::Payload;
use crate::site::{Graphics, Mode, Site, UuidSource, VmSetup, BRIDGE_NAME, CONFIGS_DIR, TAP_NAME};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use ztps_config::{
    defaults, format_duration, ClassSection, DhcpSection, LeafName, LinkPool, ZtpConfig,
};

/// Where the bundle unpacks on the switch.
pub const FLASH: &str = "/mnt/flash";
/// The agent binary (i686, the default), relative to flash.
pub const AGENT_BIN_PATH: &str = "ztps/ztps-agent";
/// The x86_64 agent binary for EOS64 images, relative to flash.
pub const AGENT_BIN64_PATH: &str = "ztps/ztps-agent.x86_64";
/// The agent config, relative to flash.
pub const AGENT_CONFIG_PATH: &str = "ztps/ztps.toml";
/// The libvirt domain, relative to flash (`config-file flash:/ztps.xml`).
pub const DOMAIN_XML_PATH: &str = "ztps.xml";
/// The full startup-config.
pub const STARTUP_CONFIG_PATH: &str = "startup-config";
/// The ztps lines only, to merge.
pub const SNIPPET_PATH: &str = "startup-config.snippet";
/// Aboot's boot-config.
pub const BOOT_CONFIG_PATH: &str = "boot-config";
/// Aboot's USB full recovery marker.
pub const FULLRECOVER_PATH: &str = "fullrecover";
/// Install notes.
pub const INSTALL_PATH: &str = "INSTALL.txt";
/// Checksums of every other file.
pub const SHA256SUMS_PATH: &str = "SHA256SUMS";

/// Syslog tag the rendered config sets (`show logging | include ZTPS`).
pub const LOG_TAG: &str = defaults::LOG_TAG;
/// Syslog facility the rendered config sets.
pub const LOG_FACILITY: &str = defaults::LOG_FACILITY;
/// Delay of the on-boot event handler, in seconds: short, because `boot` itself
/// waits until eAPI answers.
pub const EVENT_HANDLER_DELAY_S: u32 = 30;

fn on_flash(rel: &str) -> String {
    format!("{FLASH}/{rel}")
}

fn toml_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn toml_strs<S: AsRef<str>>(v: &[S]) -> String {
    let items: Vec<String> = v.iter().map(|s| toml_str(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

fn toml_ips(v: &[Ipv4Addr]) -> String {
    let items: Vec<String> = v.iter().map(|a| toml_str(&a.to_string())).collect();
    format!("[{}]", items.join(", "))
}

/// Text for inside `<!-- -->`: entities are not expanded there, and `--` is not allowed.
fn xml_comment(s: &str) -> String {
    let mut o = s.replace("--", "- -");
    if o.ends_with('-') {
        o.push(' ');
    }
    o
}

fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\'' => o.push_str("&apos;"),
            '"' => o.push_str("&quot;"),
            c => o.push(c),
        }
    }
    o
}

/// `ztps/ztps.toml`: the agent config, commented. `cargo xtask dist` (through
/// [`crate::build`]) checks it with the agent's own parser before writing it.
pub fn agent_config(site: &Site, version: &str) -> String {
    let mut o = String::new();
    let mut line = |s: &str| {
        o.push_str(s);
        o.push('\n');
    };
    line(&format!(
        "# ztps-agent config for spine {} of site {}, rendered by ztps-flash-bundle {version}.",
        site.spine.hostname, site.name
    ));
    line("# Change the site description and run `cargo xtask dist` again rather than editing");
    line("# this file, so that the bundle stays consistent. To check a hand edit on the switch:");
    line(&format!(
        "#   bash {} check-config {}",
        on_flash(AGENT_BIN_PATH),
        on_flash(AGENT_CONFIG_PATH)
    ));
    line("# The daemon re-reads this file on SIGHUP and keeps the old config if the new one is invalid.");
    line("");
    line("[eapi]");
    line(&format!(
        "# eAPI of this switch: `management api http-commands` / `{}`.",
        site.eapi.eos_protocol()
    ));
    line(&format!("url = {}", toml_str(site.eapi.url())));
    line("");
    match &site.mode {
        Mode::Vm(v) => {
            line("[bridge]");
            line(&format!(
                "# Linux bridge of the ZTPServer VM's NIC (tap {TAP_NAME}). `ztps-agent boot` creates it"
            ));
            line("# and gives it this address, which is the VM's default gateway.");
            line(&format!("name = {}", toml_str(BRIDGE_NAME)));
            line(&format!("address = {}", toml_str(&v.bridge.to_string())));
            line("");
            line("[vm]");
            line(&format!(
                "# `virtual-machine {}` in the startup-config; `boot` restarts it once br0 is up.",
                v.vm.name
            ));
            line(&format!("name = {}", toml_str(&v.vm.name)));
            line("");
            line("[dhcp]");
            line("# Option 67 for leaves in ZTP (option 60 starting with \"Arista\"): the ZTPServer bootstrap.");
            line(&format!("bootfile_url = {}", toml_str(&v.vm.bootstrap_url)));
        }
        Mode::SpineServed => {
            line("[dhcp]");
            line("# Option 67 for leaves in ZTP (option 60 starting with \"Arista\") is");
            line("# http://<the spine's address on the leaf's link>/ztp/bootstrap ([ztp] below).");
        }
    }
    dhcp_keys(&site.dhcp, &mut line);
    if site.mode == Mode::SpineServed {
        line("");
        ztp_keys(&site.ztp, &mut line);
    }
    line("");
    line("[log]");
    line(&format!(
        "# Syslog facility {LOG_FACILITY}, tag {LOG_TAG}: `show logging | include {LOG_TAG}` on the switch."
    ));
    line("syslog = true");
    line(&format!("facility = {}", toml_str(LOG_FACILITY)));
    line(&format!("tag = {}", toml_str(LOG_TAG)));
    o
}

/// The keys of `[dhcp]` after `bootfile_url`, and its `[[dhcp.link]]` and
/// `[[dhcp.class]]` tables: the ones with a default only when they differ from it.
fn dhcp_keys(d: &DhcpSection, line: &mut dyn FnMut(&str)) {
    // Destructured so that a key added to the schema fails to compile here.
    let DhcpSection {
        bootfile_url: _, // the site's vm.bootstrap_url, rendered by the caller
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
    } = d;
    if vendor_class.as_str() != defaults::VENDOR_CLASS {
        line("# Option 60 prefix of the leaves answered.");
        line(&format!("vendor_class = {}", toml_str(vendor_class)));
    }
    line("# EOS interface names or globs that may be served, and those never served");
    line("# (Management, Loopback and br0 never are).");
    line(&format!("interfaces = {}", toml_strs(interfaces)));
    line(&format!("exclude = {}", toml_strs(exclude)));
    line(&format!(
        "lease_time = {}",
        toml_str(&format_duration(*lease_time))
    ));
    line("# Leases survive restarts and reboots here.");
    line(&format!(
        "lease_file = {}",
        toml_str(&lease_file.to_string_lossy())
    ));
    for (key, value, default) in [
        ("offer_hold", offer_hold, defaults::OFFER_HOLD),
        ("replace_after", replace_after, defaults::REPLACE_AFTER),
        (
            "decline_quarantine",
            decline_quarantine,
            defaults::DECLINE_QUARANTINE,
        ),
    ] {
        if *value != default {
            line(&format!("{key} = {}", toml_str(&format_duration(*value))));
        }
    }
    let any_option = !dns_servers.is_empty()
        || domain_name.is_some()
        || !ntp_servers.is_empty()
        || hostname.is_some();
    if any_option {
        line("# Options for the leaves: DNS servers (6), domain (15), NTP servers (42), hostname (12).");
    }
    options(
        dns_servers,
        domain_name.as_deref(),
        ntp_servers,
        hostname.as_deref(),
        line,
    );
    if !links.is_empty() {
        line("");
        line(
            "# Pools for links with no /31 or /30 on the spine to derive the leaf's address from.",
        );
    }
    for (i, LinkPool { interface, pool }) in links.iter().enumerate() {
        if i > 0 {
            line("");
        }
        line("[[dhcp.link]]");
        line(&format!("interface = {}", toml_str(interface)));
        line(&format!("range = {}", toml_str(&pool.range())));
        line(&format!(
            "router = {}",
            toml_str(&pool.router().to_string())
        ));
        line(&format!("prefix = {}", pool.prefix_len()));
    }
    if !classes.is_empty() {
        line("");
        line("# More client classes, tried in order before the default one.");
    }
    for (i, class) in classes.iter().enumerate() {
        let ClassSection {
            name,
            vendor_class,
            bootfile_url,
            dns_servers,
            domain_name,
            ntp_servers,
            hostname,
        } = class;
        if i > 0 {
            line("");
        }
        line("[[dhcp.class]]");
        line(&format!("name = {}", toml_str(name)));
        line(&format!("vendor_class = {}", toml_str(vendor_class)));
        if let Some(u) = bootfile_url {
            line(&format!("bootfile_url = {}", toml_str(u)));
        }
        options(
            dns_servers,
            domain_name.as_deref(),
            ntp_servers,
            hostname.as_deref(),
            line,
        );
    }
}

/// `[ztp]` of a spine that serves ZTP itself, with its leaves and image.
fn ztp_keys(z: &ZtpConfig, line: &mut dyn FnMut(&str)) {
    // Destructured so that a key added to the schema fails to compile here.
    let ZtpConfig {
        serve,
        port,
        configs,
        leaf,
        image,
        max_image_downloads,
    } = z;
    line("[ztp]");
    line("# The spine serves each leaf its startup-config over the leaf's own link.");
    line(&format!("serve = {serve}"));
    if *port != defaults::ZTP_PORT {
        line("# TCP port on the spine's link addresses (the default control-plane ACL admits 80).");
        line(&format!("port = {port}"));
    }
    line("# <name>.cfg for every [[ztp.leaf]], shipped in the bundle.");
    line(&format!(
        "configs = {}",
        toml_str(&configs.to_string_lossy())
    ));
    if *max_image_downloads != defaults::MAX_IMAGE_DOWNLOADS {
        line(&format!("max_image_downloads = {max_image_downloads}"));
    }
    if let Some(im) = image {
        line("");
        line("# Leaves not on this EOS version are upgraded first, then get their config.");
        line("[ztp.image]");
        line(&format!("file = {}", toml_str(&im.file.to_string_lossy())));
        line(&format!("version = {}", toml_str(&im.version)));
    }
    if !leaf.is_empty() {
        line("");
        line("# Which leaf is cabled to which port of this spine.");
    }
    for (i, l) in leaf.iter().enumerate() {
        if i > 0 {
            line("");
        }
        line("[[ztp.leaf]]");
        line(&format!("interface = {}", toml_str(&l.interface)));
        line(&format!("name = {}", toml_str(&l.name)));
        if let Some(serial) = &l.serial {
            line(&format!("serial = {}", toml_str(serial)));
        }
    }
}

/// Options 6, 15, 42 and 12, those that are set.
fn options(
    dns_servers: &[Ipv4Addr],
    domain_name: Option<&str>,
    ntp_servers: &[Ipv4Addr],
    hostname: Option<&str>,
    line: &mut dyn FnMut(&str),
) {
    if !dns_servers.is_empty() {
        line(&format!("dns_servers = {}", toml_ips(dns_servers)));
    }
    if let Some(dn) = domain_name {
        line(&format!("domain_name = {}", toml_str(dn)));
    }
    if !ntp_servers.is_empty() {
        line(&format!("ntp_servers = {}", toml_ips(ntp_servers)));
    }
    if let Some(h) = hostname {
        line(&format!("hostname = {}", toml_str(h)));
    }
}

/// `ztps.xml`: the libvirt KVM domain of the ZTPServer VM, for
/// `virtual-machine <name>` / `config-file flash:/ztps.xml`.
///
/// Deliberately left out: `<emulator>` unless the site sets one (libvirt then
/// takes the default emulator of its capabilities, which is right on any EOS
/// release that has a VM manager, and a wrong fixed path would stop the VM), the
/// machine type (libvirt picks its default) and PCI addresses (libvirt assigns
/// them). The disk and NIC are virtio: the VM's OS needs virtio drivers, which
/// every current Linux has.
pub fn libvirt_domain(site: &Site, setup: &VmSetup, version: &str) -> String {
    let vm = &setup.vm;
    let uuid_note = match vm.uuid_source {
        UuidSource::Given => "uuid: vm.uuid of the site".to_string(),
        UuidSource::Derived => format!(
            "uuid: derived from the site name {} and the VM name {}\n     (SHA-256 name-based, RFC 9562 version 8); set vm.uuid to choose one",
            site.name, vm.name
        ),
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!-- ZTPServer VM of site {} (spine {}), rendered by ztps-flash-bundle {}.",
        xml_comment(&site.name),
        xml_comment(&site.spine.hostname),
        xml_comment(version)
    );
    let _ = writeln!(
        o,
        "     EOS starts it from: virtual-machine {} / config-file flash:/{DOMAIN_XML_PATH} / enable.",
        xml_comment(&vm.name)
    );
    let _ = writeln!(
        o,
        "     Its NIC is the tap {TAP_NAME} on bridge {BRIDGE_NAME} ({}), its default gateway.",
        setup.bridge
    );
    let _ = writeln!(o, "     {} -->", xml_comment(&uuid_note));
    o.push_str("<domain type='kvm'>\n");
    let _ = writeln!(o, "  <name>{}</name>", xml(&vm.name));
    let _ = writeln!(o, "  <uuid>{}</uuid>", vm.uuid);
    let _ = writeln!(o, "  <memory unit='MiB'>{}</memory>", vm.memory_mib);
    let _ = writeln!(
        o,
        "  <currentMemory unit='MiB'>{}</currentMemory>",
        vm.memory_mib
    );
    let _ = writeln!(o, "  <vcpu>{}</vcpu>", vm.vcpus);
    o.push_str(
        "  <os>\n    <type arch='x86_64'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n\
         \x20 <features>\n    <acpi/>\n    <apic/>\n  </features>\n\
         \x20 <clock offset='utc'/>\n\
         \x20 <on_poweroff>destroy</on_poweroff>\n\
         \x20 <on_reboot>restart</on_reboot>\n\
         \x20 <on_crash>restart</on_crash>\n\
         \x20 <devices>\n",
    );
    if let Some(e) = &vm.emulator {
        let _ = writeln!(o, "    <emulator>{}</emulator>", xml(e));
    }
    o.push_str("    <disk type='file' device='disk'>\n");
    let _ = writeln!(
        o,
        "      <driver name='qemu' type='{}'/>",
        vm.disk_format.as_str()
    );
    let _ = writeln!(o, "      <source file='{}'/>", xml(&vm.disk));
    o.push_str("      <target dev='vda' bus='virtio'/>\n    </disk>\n");
    o.push_str("    <interface type='bridge'>\n");
    let _ = writeln!(o, "      <mac address='{}'/>", vm.mac);
    let _ = writeln!(o, "      <source bridge='{BRIDGE_NAME}'/>");
    let _ = writeln!(o, "      <target dev='{TAP_NAME}'/>");
    o.push_str("      <model type='virtio'/>\n    </interface>\n");
    o.push_str(
        "    <serial type='pty'>\n      <target port='0'/>\n    </serial>\n\
         \x20   <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n",
    );
    if vm.graphics == Graphics::Vnc {
        o.push_str("    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>\n");
    }
    o.push_str("  </devices>\n</domain>\n");
    o
}

/// The ztps blocks of the EOS config, shared by the full startup-config and the snippet.
///
/// Syntax sources: `daemon` (`exec`; older releases `command`), `event-handler`
/// (`trigger on-boot`, `action bash`, `delay`, `asynchronous`) and `management api
/// http-commands` (`protocol unix-socket`, `protocol http localhost`) are EOS
/// manual syntax. `virtual-machine <name>` / `config-file flash:/<file>` /
/// `enable` is taken from the public "ZTPServer VM on EOS" recipe (ZTPServer
/// docs); I could not check it against a current EOS manual, and the VM manager
/// is not on every platform or release: INSTALL.txt tells the operator to check
/// `show virtual-machine`.
fn ztps_blocks(site: &Site) -> String {
    let agent = on_flash(AGENT_BIN_PATH);
    let config = on_flash(AGENT_CONFIG_PATH);
    let mut o = String::new();
    let _ = writeln!(o, "management api http-commands");
    let _ = writeln!(o, "   {}", site.eapi.eos_protocol());
    let _ = writeln!(o, "   no shutdown");
    let _ = writeln!(o, "!");
    if let Some(v) = site.vm_setup() {
        let _ = writeln!(o, "interface Loopback2");
        let _ = writeln!(
            o,
            "   description ztps: ZTPServer reachability, advertise into the fabric"
        );
        let _ = writeln!(o, "   ip address {}", v.loopback2);
        let _ = writeln!(o, "!");
    }
    let _ = writeln!(o, "daemon ztps");
    let _ = writeln!(o, "   exec {agent} daemon --config {config}");
    let _ = writeln!(o, "   no shutdown");
    let _ = writeln!(o, "!");
    if let Some(v) = site.vm_setup() {
        let _ = writeln!(o, "event-handler ztps");
        let _ = writeln!(o, "   trigger on-boot");
        let _ = writeln!(o, "   action bash {agent} boot --config {config}");
        let _ = writeln!(o, "   delay {EVENT_HANDLER_DELAY_S}");
        let _ = writeln!(o, "   asynchronous");
        let _ = writeln!(o, "!");
        let _ = writeln!(o, "virtual-machine {}", v.vm.name);
        let _ = writeln!(o, "   config-file flash:/{DOMAIN_XML_PATH}");
        let _ = writeln!(o, "   enable");
        let _ = writeln!(o, "!");
    }
    o
}

/// `startup-config`: a complete, small config for a new first spine. Its comment
/// lines say what the operator must add (leaf links, uplinks, routing, users).
pub fn startup_config(site: &Site, version: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "! startup-config of {}, first spine of site {}, rendered by ztps-flash-bundle {version}.",
        site.spine.hostname, site.name
    );
    o.push_str(
        "! It holds only what ztps needs and a minimal rest. ADD before the first boot:\n\
         !  - the leaf-facing ports: `no switchport` and a /31 each (the agent gives the leaf\n\
         !    the other address), or `ip address unnumbered Loopback0` with a [[dhcp.link]] pool;\n\
         !  - the uplinks and the routing protocol (BGP) of the fabric;\n",
    );
    match site.vm_setup() {
        Some(v) => {
            let _ = writeln!(
                o,
                "!  - advertise Loopback2 ({}) and the ZTPServer subnet {} into it;",
                v.loopback2,
                v.bridge.network()
            );
        }
        None if site.ztp.port != defaults::ZTP_PORT => {
            let _ = writeln!(
                o,
                "!  - a control-plane ACL that admits TCP {} from the leaf links;",
                site.ztp.port
            );
        }
        None => {}
    }
    o.push_str("!  - users, AAA and management access.\n!\n");
    let _ = writeln!(o, "hostname {}", site.spine.hostname);
    o.push_str("!\nip routing\n!\n");
    o.push_str(&ztps_blocks(site));
    o.push_str("end\n");
    o
}

/// `startup-config.snippet`: only the ztps lines, to merge into an existing config
/// with `copy flash:startup-config.snippet running-config` then `write memory`.
pub fn startup_config_snippet(site: &Site, version: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "! ztps lines for {} (site {}), rendered by ztps-flash-bundle {version}.",
        site.spine.hostname, site.name
    );
    o.push_str(
        "! Merge: copy flash:startup-config.snippet running-config, then write memory.\n\
         ! Never copy it onto startup-config: that would replace the whole configuration.\n",
    );
    if site.vm_setup().is_some() {
        o.push_str(
            "! Also needed, not here: ip routing, and Loopback2 advertised into the fabric.\n!\n",
        );
    } else {
        o.push_str("! Also needed, not here: ip routing.\n!\n");
    }
    o.push_str(&ztps_blocks(site));
    o
}

/// `boot-config`, if the site asks for one: `SWI=flash:/<image>`.
pub fn boot_config(site: &Site) -> Option<String> {
    match (&site.spine.eos_image, site.spine.boot_config) {
        (Some(image), true) => Some(format!("SWI=flash:/{image}\n")),
        _ => None,
    }
}

/// The path of a leaf's config in the bundle, relative to flash.
pub fn leaf_config_path(name: &LeafName) -> String {
    format!("{CONFIGS_DIR}/{name}.cfg")
}

/// `INSTALL.txt`: copy, merge, reboot, check; specific to this site and its mode.
pub fn install_txt(site: &Site, payload: &Payload, version: &str) -> String {
    let tarball = crate::tarball_name(version);
    let host = &site.spine.hostname;
    let agent = on_flash(AGENT_BIN_PATH);
    let config = on_flash(AGENT_CONFIG_PATH);
    let setup = site.vm_setup();
    let boot_cfg = boot_config(site).is_some();
    let mut o = String::new();
    let mut line = |s: &str| {
        o.push_str(s);
        o.push('\n');
    };
    let title = format!(
        "ztps flash bundle {version}: site {}, spine {host}",
        site.name
    );
    line(&title);
    line(&"=".repeat(title.len()));
    line("");
    match setup {
        Some(_) => {
            line("Mode: ZTPServer VM (ztp.serve = false). The agent answers the leaves' DHCP and");
            line("points them at the ZTPServer VM on this spine, which serves their configs.");
        }
        None => {
            line("Mode: spine-served (ztp.serve = true). The agent answers the leaves' DHCP and");
            line("serves each leaf its startup-config itself, over the leaf's own link: no VM,");
            line("no br0, no Loopback2, no on-boot event handler.");
        }
    }
    line("");
    line("The bundle unpacks at the root of flash (/mnt/flash in bash, flash: in the CLI).");
    line("");
    line(&format!(
        "  {AGENT_BIN_PATH:<24} the agent, static i686 (hardware EOS userland is 32-bit)"
    ));
    line(&format!(
        "  {AGENT_BIN64_PATH:<24} the agent, static x86_64, for EOS64 images"
    ));
    line(&format!("  {AGENT_CONFIG_PATH:<24} the agent's config"));
    if let Some(v) = setup {
        line(&format!(
            "  {DOMAIN_XML_PATH:<24} libvirt domain of the ZTPServer VM {:?}",
            v.vm.name
        ));
    }
    for c in &payload.configs {
        let leaf = site
            .ztp
            .leaf
            .iter()
            .find(|l| l.name == c.name)
            .map_or(String::new(), |l| format!(" on {}", l.interface));
        line(&format!(
            "  {:<24} startup-config of leaf {}{leaf}",
            leaf_config_path(&c.name),
            c.name
        ));
    }
    line(&format!(
        "  {STARTUP_CONFIG_PATH:<24} complete startup-config for a new first spine"
    ));
    line(&format!(
        "  {SNIPPET_PATH:<24} only the ztps lines, to merge into an existing config"
    ));
    if let Some(b) = boot_config(site) {
        line(&format!("  {BOOT_CONFIG_PATH:<24} {}", b.trim_end()));
    }
    if site.spine.fullrecover {
        line(&format!(
            "  {FULLRECOVER_PATH:<24} empty: marks a USB drive for Aboot's full recovery (step 6)"
        ));
    }
    line(&format!("  {INSTALL_PATH:<24} this file"));
    line(&format!(
        "  {SHA256SUMS_PATH:<24} SHA-256 of every file above"
    ));
    line("");
    line("1. Files you supply");
    line("");
    if let Some(v) = setup {
        let vm = &v.vm;
        line(&format!(
            "   - The ZTPServer VM disk image, format {}, at",
            vm.disk_format.as_str()
        ));
        line(&format!("       {}", vm.disk));
        line(&format!(
            "     In the VM: the NIC with MAC {} has a static address in",
            vm.mac
        ));
        line(&format!(
            "     {} (not {}, the spine's br0) and default",
            v.bridge.network(),
            v.bridge.addr()
        ));
        line(&format!(
            "     gateway {}; ZTPServer answers",
            v.bridge.addr()
        ));
        line(&format!("       {}", vm.bootstrap_url));
    }
    if let Some(image) = &site.ztp.image {
        line(&format!(
            "   - The EOS image for the leaves (version {}), at",
            image.version
        ));
        line(&format!("       {}", image.file.display()));
        match &payload.image {
            Some(local) => {
                let name = local
                    .path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                line(&format!(
                    "     {} bytes, SHA-256 {}",
                    local.size, local.sha256
                ));
                line(&format!(
                    "     (checked by `cargo xtask dist`: copy {name} there and run"
                ));
                line(&format!("     `sha256sum {}`).", image.file.display()));
            }
            None => {
                line("     (not checked by `cargo xtask dist`: set bundle.image to a local copy");
                line("     to have its checksum here). Leaves not on this version download it");
                line("     from the spine and upgrade before they get their config.");
            }
        }
    }
    if let Some(image) = &site.spine.eos_image {
        line(&format!("   - The EOS image {FLASH}/{image}"));
        if boot_cfg {
            line("     (boot-config makes the spine boot it).");
        } else {
            line("     (no boot-config is shipped: `boot system flash:` selects it).");
        }
    }
    if setup.is_none() && site.ztp.image.is_none() && site.spine.eos_image.is_none() {
        line("   None: every file the spine needs is in the bundle.");
    }
    line("");
    line("2. Copy the bundle to the spine");
    line("");
    line("   From your workstation:");
    line(&format!("     scp {tarball} admin@<{host}>:{FLASH}/"));
    line("   On the spine:");
    line(&format!("     {host}# bash"));
    line(&format!(
        "     $ cp /mnt/usb1/{tarball} {FLASH}/    # only if it came on a USB drive"
    ));
    line(&format!("     $ cd {FLASH}"));
    line(&format!(
        "     $ sha256sum {tarball}    # the sum `cargo xtask dist` printed"
    ));
    line("   A new spine, whose startup-config the bundle's may replace:");
    line(&format!("     $ tar xzf {tarball} --no-same-owner"));
    line(&format!("     $ sha256sum -c {SHA256SUMS_PATH}"));
    line("   A spine with a configuration to keep:");
    let mut excludes = format!("--exclude={STARTUP_CONFIG_PATH}");
    if boot_cfg {
        excludes.push_str(&format!(" --exclude={BOOT_CONFIG_PATH}"));
    }
    line(&format!("     $ tar xzf {tarball} --no-same-owner \\"));
    line(&format!("           {excludes}"));
    line(&format!(
        "     $ sha256sum -c {SHA256SUMS_PATH}    # excluded files report FAILED: expected"
    ));
    if boot_cfg {
        line("     (leave out --exclude=boot-config to switch this spine to the image above)");
    }
    line("     $ exit");
    line("   EOS64 image: the i686 agent runs there too; to use the x86_64 one, after the");
    line(&format!(
        "   sums are checked run `mv {AGENT_BIN64_PATH} {AGENT_BIN_PATH}` in {FLASH}, or"
    ));
    if setup.is_some() {
        line(&format!(
            "   point the daemon and event-handler lines at {}.",
            on_flash(AGENT_BIN64_PATH)
        ));
    } else {
        line(&format!(
            "   point the daemon line at {}.",
            on_flash(AGENT_BIN64_PATH)
        ));
    }
    line("");
    line("3. Configuration");
    line("");
    line(&format!(
        "   New spine: edit {FLASH}/{STARTUP_CONFIG_PATH} first; its comment lines say what to"
    ));
    line("   add (leaf-facing ports, uplinks, BGP, users).");
    line("   Existing spine: merge the ztps lines into the running config and save:");
    line(&format!(
        "     {host}# copy flash:{SNIPPET_PATH} running-config"
    ));
    line(&format!("     {host}# write memory"));
    line("   (or paste the lines of the snippet under `configure`). Never copy the snippet");
    if setup.is_some() {
        line("   onto startup-config: that replaces the whole configuration. Also make sure of");
        line("   `ip routing`, and advertise Loopback2 and the ZTPServer subnet into the fabric.");
    } else {
        line("   onto startup-config: that replaces the whole configuration. Also make sure of");
        line("   `ip routing`.");
        if site.ztp.port != defaults::ZTP_PORT {
            line(&format!(
                "   The default control-plane ACL drops TCP {}: admit it from the leaf links.",
                site.ztp.port
            ));
        }
    }
    line("   Releases that reject `exec` under `daemon ztps` take the older form:");
    line("     daemon ztps");
    line(&format!("        command {agent} daemon --config {config}"));
    line("");
    line("4. Reboot");
    line("");
    line(&format!("     {host}# reload"));
    match setup {
        Some(v) => {
            line(&format!(
                "   About {EVENT_HANDLER_DELAY_S} s after boot, event-handler ztps runs `ztps-agent boot`: it waits"
            ));
            line(&format!(
                "   for eAPI, gives {BRIDGE_NAME} the address {}, turns on IPv4",
                v.bridge
            ));
            line("   forwarding and restarts the VM. daemon ztps serves DHCP to the leaves on");
            line("   the leaf-facing links.");
        }
        None => {
            line("   daemon ztps serves DHCP to the leaves on the leaf-facing links, and each");
            line(&format!(
                "   leaf's config over HTTP (port {}) on the spine's address on its link.",
                site.ztp.port
            ));
        }
    }
    line("");
    line("5. Check that it worked");
    line("");
    line(&format!("     {host}# show logging | include {LOG_TAG}"));
    match setup {
        Some(_) => {
            line("       boot and daemon log each step: bridge up, forwarding on, VM restarted,");
            line("       links served, leases given");
        }
        None => {
            line("       the daemon logs each step: links served, leases given, configs sent,");
            line("       leaves provisioned");
        }
    }
    line(&format!("     {host}# bash {agent} status"));
    line("       each leaf-facing link: served or why not, and each leaf's address");
    if setup.is_none() {
        line("       and ZTP stage (provisioned once LLDP shows the leaf's name on its port)");
    }
    if let Some(v) = setup {
        line(&format!("     {host}# show virtual-machine"));
        line(&format!("       {} is shown running", v.vm.name));
    }
    line(&format!("     {host}# bash {agent} check-config {config}"));
    line("       the config is valid");
    if let Some(v) = setup {
        let vm = &v.vm;
        if vm.bootstrap_url.starts_with("http") {
            let insecure = if vm.bootstrap_url.starts_with("https://") {
                "-k "
            } else {
                ""
            };
            line(&format!(
                "     {host}# bash curl -sS {insecure}-o /dev/null -w '%{{http_code}}\\n' {}",
                vm.bootstrap_url
            ));
            line("       200: the spine reaches the ZTPServer over br0");
        } else {
            line(&format!(
                "     {host}# bash curl -sS -o /dev/null {}",
                vm.bootstrap_url
            ));
            line("       no error: the spine reaches the ZTPServer over br0");
        }
    }
    if site.spine.fullrecover {
        line("");
        line("6. USB full recovery (erases the switch's flash)");
        line("");
        line("   Unpack the bundle at the root of a FAT-formatted USB drive, and add the files");
        line("   of step 1 that go to /mnt/flash at the same paths under the drive's root.");
        line("   Insert the drive and power-cycle the switch: because the drive has a file");
        line("   named fullrecover, Aboot erases the internal flash and copies the drive onto");
        line("   it, then boots with this bundle's boot-config and startup-config. Check");
        line(&format!(
            "   afterwards with `cd {FLASH} && sha256sum -c {SHA256SUMS_PATH}` and step 5."
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::EapiTransport;

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        let v: toml::Value = toml::from_str(&format!("k = {}", toml_str("x\"\\\u{7f}y"))).unwrap();
        assert_eq!(v["k"].as_str(), Some("x\"\\\u{7f}y"));
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(xml("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
        assert_eq!(xml_comment("a--b-"), "a- -b- ");
    }

    #[test]
    fn eapi_transport_decides_the_protocol_line() {
        assert_eq!(
            EapiTransport::UnixSocket.eos_protocol(),
            "protocol unix-socket"
        );
        assert_eq!(
            EapiTransport::HttpLocalhost.eos_protocol(),
            "protocol http localhost"
        );
    }
}
