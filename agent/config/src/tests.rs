//! Config files in, typed values or located errors out.

use super::*;

const MINIMAL: &str = "[dhcp]\nbootfile_url = \"http://10.10.10.11:8080/bootstrap\"\n";

fn issues(text: &str) -> Vec<ConfigIssue> {
    Config::parse(text, "f")
        .expect_err("should be rejected")
        .issues
}

/// The one issue of `text`, as (line, column, key), and its message.
fn one(text: &str) -> ((Option<usize>, Option<usize>, String), String) {
    let i = issues(text);
    assert_eq!(i.len(), 1, "{i:?}");
    let i = i.into_iter().next().unwrap();
    ((i.line, i.column, i.key), i.message)
}

fn at(line: usize, column: usize, key: &str) -> (Option<usize>, Option<usize>, String) {
    (Some(line), Some(column), key.to_string())
}

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

[ztp]
serve = true
port = 80
configs = "/mnt/flash/ztps/configs"

[[ztp.leaf]]
interface = "Ethernet3"
name = "leaf3"
serial = "JPE20000003"

[ztp.image]
file = "/mnt/flash/ztps/images/EOS-4.33.2F.swi"
version = "4.33.2F"
"#;
    let c = Config::parse(text, "ztps.toml").unwrap();
    assert_eq!(c.eapi.poll_interval, Duration::from_secs(2));
    assert_eq!(c.boot.ready_timeout, Duration::from_secs(600));
    assert_eq!(c.dhcp.lease_time, Duration::from_secs(86_400));
    assert_eq!(c.bridge.address.addr(), Ipv4Addr::new(10, 10, 10, 1));
    assert_eq!(c.bridge.address.prefix_len(), 24);
    assert_eq!(c.dhcp.links[0].pool.prefix_len(), 29);
    assert_eq!(c.dhcp.links[0].interface.as_str(), "Ethernet7");
    assert!(c.ztp.serve);
    assert_eq!(c.ztp.leaf[0].name.as_str(), "leaf3");
    assert_eq!(c.ztp.leaf[0].serial.as_deref(), Some("JPE20000003"));
    assert_eq!(c.ztp.leaf_on("ethernet3").unwrap().interface, "Ethernet3");
    let image = c.ztp.image.as_ref().unwrap();
    assert_eq!(image.version, "4.33.2F");
    assert_eq!(c.ztp.max_image_downloads, 8);
}

#[test]
fn minimal_config_takes_defaults() {
    let c = Config::parse(MINIMAL, "x").unwrap();
    assert_eq!(c.eapi.url.as_str(), defaults::EAPI_URL);
    assert_eq!(c.eapi.credentials, None);
    assert_eq!(c.dhcp.interfaces.len(), 1);
    assert_eq!(c.dhcp.interfaces[0].as_str(), "Ethernet*");
    assert_eq!(c.dhcp.vendor_class.as_str(), "Arista");
    assert_eq!(c.state.dir, PathBuf::from("/var/run/ztps"));
    assert_eq!(c.log.facility, Facility::parse("local0").unwrap());
    assert_eq!(c.log.tag.as_str(), "ZTPS");
    assert_eq!(c.log.level.as_str(), "info");
    assert_eq!(c.vm.name.as_str(), "ztps");
    assert_eq!(c.bridge.name.as_str(), "br0");
    assert_eq!(c.boot.vm_restart_attempts.get(), 3);
    assert_eq!(c.ztp, ZtpConfig::default());
    assert!(!c.ztp.serve);
    assert_eq!(c.ztp.port, 80);
    assert_eq!(c.ztp.configs, PathBuf::from("/mnt/flash/ztps/configs"));
}

#[test]
fn unknown_key_names_file_line_column_and_key() {
    let text = format!("{MINIMAL}lease_tme = \"1d\"\n");
    let e = Config::parse(&text, "/mnt/flash/ztps/ztps.toml").unwrap_err();
    let s = e.to_string();
    assert!(
        s.starts_with("/mnt/flash/ztps/ztps.toml:3:1: dhcp.lease_tme: unknown field `lease_tme`"),
        "{s}"
    );
}

#[test]
fn bad_values_name_their_line_and_key() {
    let text = "[eapi]\npoll_interval = \"2 parsecs\"\n[dhcp]\nbootfile_url = \"http://x/\"\n";
    let s = Config::parse(text, "f").unwrap_err().to_string();
    assert!(s.starts_with("f:2:17: eapi.poll_interval: "), "{s}");
    assert!(s.contains("unknown unit"), "{s}");
}

#[test]
fn semantic_errors_are_all_reported_with_lines() {
    let text = r#"[bridge]
address = "10.10.10.1"
[dhcp]
bootfile_url = "bootstrap"
interfaces = ["Ethernet[1-4]"]
lease_time = "1 fortnight"
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
            (Some(6), "dhcp.lease_time"),
            (Some(14), "dhcp.link[1].range"),
            (Some(18), "log.facility"),
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
fn missing_bootfile_url_is_an_error_in_vm_mode_only() {
    let (key, m) = one("[eapi]\n");
    assert_eq!(key.2, "dhcp.bootfile_url");
    assert!(m.contains("missing") && m.contains("ztp.serve"), "{m}");
    let (key, _) = one("[dhcp]\nlease_time = \"2d\"\n");
    assert_eq!(key, at(1, 2, "dhcp.bootfile_url"));
    let c = Config::parse("[ztp]\nserve = true\n", "f").unwrap();
    assert_eq!(c.dhcp.bootfile_url, None);
    assert!(c.ztp.serve);
}

// Issue 11 item 8: values that reach FastCli, syslog, DHCP options or the
// terminal. Each of these passed check-config before ztps-config.

#[test]
fn vm_name_with_a_newline_or_shell_text_is_rejected_at_its_line() {
    let (key, m) = one(&format!("{MINIMAL}[vm]\nname = \"ztps\\nreload now\"\n"));
    assert_eq!(key, at(4, 8, "vm.name"));
    assert!(m.contains("control character '\\n'"), "{m}");
    let (key, m) = one(&format!(
        "{MINIMAL}[vm]\nname = \"ztps; bash rm -rf /mnt/flash\"\n"
    ));
    assert_eq!(key, at(4, 8, "vm.name"));
    assert!(m.contains("FastCli"), "{m}");
}

#[test]
fn log_tag_with_control_characters_is_rejected() {
    let (key, _) = one(&format!("{MINIMAL}[log]\ntag = \"ZTPS\\u001b[2J\"\n"));
    assert_eq!(key, at(4, 7, "log.tag"));
    let (key, _) = one(&format!("{MINIMAL}[log]\ntag = \"ZT PS\"\n"));
    assert_eq!(key, at(4, 7, "log.tag"));
}

#[test]
fn domain_name_and_hostname_template_with_control_characters_are_rejected() {
    let (key, m) = one(&format!("{MINIMAL}domain_name = \"lab.example\\n\"\n"));
    assert_eq!(key, at(3, 15, "dhcp.domain_name"));
    assert!(m.contains("control character"), "{m}");
    let (key, _) = one(&format!("{MINIMAL}hostname = \"leaf-{{serial}}\\r\"\n"));
    assert_eq!(key, at(3, 12, "dhcp.hostname"));
    let (key, m) = one(&format!("{MINIMAL}hostname = \"leaf-{{sn}}\"\n"));
    assert_eq!(key, at(3, 12, "dhcp.hostname"));
    assert!(m.contains("unknown placeholder"), "{m}");
}

#[test]
fn interface_names_eapi_user_and_classes_reject_control_characters() {
    let (key, _) = one(&format!(
        "{MINIMAL}interfaces = [\"Ethernet1\", \"Eth\\u0000\"]\n"
    ));
    assert_eq!(key, at(3, 28, "dhcp.interfaces[1]"));
    let (key, _) = one(&format!(
        "{MINIMAL}[[dhcp.link]]\ninterface = \"Ethernet7\\n\"\nrange = \"10.0.7.2-10.0.7.6\"\nrouter = \"10.0.7.1\"\nprefix = 29\n"
    ));
    assert_eq!(key, at(4, 13, "dhcp.link[0].interface"));
    let (key, _) = one(&format!(
        "[eapi]\nuser = \"admin\\u001b]0;x\\u0007\"\npassword_file = \"/mnt/flash/pw\"\n{MINIMAL}"
    ));
    assert_eq!(key, at(2, 8, "eapi.user"));
    let (key, _) = one(&format!(
        "{MINIMAL}[[dhcp.class]]\nname = \"old\\nfake log line\"\nvendor_class = \"Arista;DCS-7050\"\n"
    ));
    assert_eq!(key, at(4, 8, "dhcp.class[0].name"));
    let (key, _) = one(&format!("{MINIMAL}[bridge]\nname = \"br0\\t\"\n"));
    assert_eq!(key, at(4, 8, "bridge.name"));
    let (key, _) = one(&format!(
        "{MINIMAL}[boot]\nfastcli = \"/usr/bin/FastCli\\n-c x\"\n"
    ));
    assert_eq!(key, at(4, 11, "boot.fastcli"));
}

#[test]
fn a_link_pool_needs_one_interface_name_not_a_glob() {
    let (key, m) = one(&format!(
        "{MINIMAL}[[dhcp.link]]\ninterface = \"Ethernet*\"\nrange = \"10.0.7.2-10.0.7.6\"\nrouter = \"10.0.7.1\"\nprefix = 29\n"
    ));
    assert_eq!(key, at(4, 13, "dhcp.link[0].interface"));
    assert!(m.contains("no globs"), "{m}");
}

#[test]
fn eapi_credentials_go_together() {
    let (key, _) = one(&format!("[eapi]\nuser = \"admin\"\n{MINIMAL}"));
    assert_eq!(key, at(2, 8, "eapi.user"));
    let c = Config::parse(
        &format!("[eapi]\nuser = \"admin\"\npassword_file = \"/mnt/flash/pw\"\n{MINIMAL}"),
        "f",
    )
    .unwrap();
    let cr = c.eapi.credentials.unwrap();
    assert_eq!(
        (cr.user.as_str(), cr.password_file.to_str()),
        ("admin", Some("/mnt/flash/pw"))
    );
}

#[test]
fn numbers_out_of_range_name_their_key() {
    let (key, _) = one(&format!("{MINIMAL}[boot]\nvm_restart_attempts = 0\n"));
    assert_eq!(key, at(4, 23, "boot.vm_restart_attempts"));
    let (key, _) = one(&format!("{MINIMAL}[bridge]\nmtu = 20\n"));
    assert_eq!(key, at(4, 7, "bridge.mtu"));
    let (key, _) = one(&format!("{MINIMAL}lease_time = \"30s\"\n"));
    assert_eq!(key, at(3, 14, "dhcp.lease_time"));
}

#[test]
fn ztp_port_zero_and_no_downloads_are_errors() {
    let (key, m) = one("[ztp]\nserve = true\nport = 0\n");
    assert_eq!(key, at(3, 8, "ztp.port"));
    assert!(m.contains("not 0"), "{m}");
    let (key, _) = one("[ztp]\nserve = true\nport = 70000\n");
    assert_eq!(key, at(3, 8, "ztp.port"));
    let (key, _) = one("[ztp]\nserve = true\nmax_image_downloads = 0\n");
    assert_eq!(key, at(3, 23, "ztp.max_image_downloads"));
    let (key, _) = one("[ztp]\nserve = true\nconfigs = \"configs\"\n");
    assert_eq!(key, at(3, 11, "ztp.configs"));
}

#[test]
fn ztp_leaves_are_checked_and_unique() {
    let leaf = |i: &str, n: &str| format!("[[ztp.leaf]]\ninterface = \"{i}\"\nname = \"{n}\"\n");
    let head = "[ztp]\nserve = true\n";
    let (key, _) = one(&format!("{head}{}", leaf("Ethernet3", "../etc/passwd")));
    assert_eq!(key, at(5, 8, "ztp.leaf[0].name"));
    let (key, _) = one(&format!("{head}{}", leaf("Ethernet3", "leaf..3")));
    assert_eq!(key.2, "ztp.leaf[0].name");
    let (key, _) = one(&format!("{head}{}", leaf("Ethernet*", "leaf3")));
    assert_eq!(key, at(4, 13, "ztp.leaf[0].interface"));
    let (key, _) = one(&format!("{head}{}", leaf("Ethernet3\\n", "leaf3")));
    assert_eq!(key.2, "ztp.leaf[0].interface");
    let (key, m) = one(&format!(
        "{head}{}{}",
        leaf("Ethernet3", "leaf3"),
        leaf("ethernet3", "leaf4")
    ));
    assert_eq!(key, at(7, 13, "ztp.leaf[1].interface"));
    assert!(m.contains("two"), "{m}");
    let (key, _) = one(&format!(
        "{head}{}{}",
        leaf("Ethernet3", "leaf3"),
        leaf("Ethernet4", "leaf3")
    ));
    assert_eq!(key, at(8, 8, "ztp.leaf[1].name"));
    let (key, _) = one(&format!(
        "{head}{}serial = \"JPE 123\"\n",
        leaf("Ethernet3", "leaf3")
    ));
    assert_eq!(key, at(6, 10, "ztp.leaf[0].serial"));
}

#[test]
fn ztp_image_needs_an_absolute_file_and_a_plain_version() {
    let (key, _) =
        one("[ztp]\nserve = true\n[ztp.image]\nfile = \"EOS.swi\"\nversion = \"4.33.2F\"\n");
    assert_eq!(key, at(4, 8, "ztp.image.file"));
    let (key, _) = one(
        "[ztp]\nserve = true\n[ztp.image]\nfile = \"/mnt/flash/EOS.swi\"\nversion = \"4.33 2F\"\n",
    );
    assert_eq!(key, at(5, 11, "ztp.image.version"));
}

#[test]
fn wrong_types_are_located_by_toml() {
    let (key, m) = one("[ztp]\nserve = \"yes\"\n");
    assert_eq!(key, at(2, 9, "ztp.serve"));
    assert!(m.contains("invalid type"), "{m}");
}

#[test]
fn embedded_sections_are_read_from_another_file_with_its_lines() {
    let site = "name = \"lab\"\n[vm]\nmac = \"x\"\n[dhcp]\nlease_time = \"2h\"\nhostname = \"leaf\\n\"\n[ztp]\nserve = true\n";
    let loc = Locator::new(site);
    let mut iss = Issues::new(&loc);
    assert_eq!(
        EmbeddedSections::parse(site, "use vm.bootstrap_url", &mut iss),
        None
    );
    let e = iss.into_error("site.toml");
    assert_eq!(e.issues.len(), 1, "{e}");
    assert!(
        e.to_string().starts_with("site.toml:6:12: dhcp.hostname: "),
        "{e}"
    );

    let site = "[dhcp]\nbootfile_url = \"http://x/\"\n";
    let loc = Locator::new(site);
    let mut iss = Issues::new(&loc);
    assert_eq!(
        EmbeddedSections::parse(site, "use vm.bootstrap_url", &mut iss),
        None
    );
    assert!(iss
        .into_error("s")
        .to_string()
        .starts_with("s:2:16: dhcp.bootfile_url: use vm.bootstrap_url"));

    let site = "[vm]\nname = \"x\"\n";
    let loc = Locator::new(site);
    let mut iss = Issues::new(&loc);
    let s = EmbeddedSections::parse(site, "", &mut iss).unwrap();
    assert_eq!(s.dhcp.lease_time, defaults::LEASE_TIME);
    assert_eq!(s.dhcp.bootfile_url, None);
    assert!(!s.ztp.serve);
}
