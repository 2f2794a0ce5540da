//! Checks by the real consumers: the agent's config parser, libvirt's
//! `virt-xml-validate`, coreutils' `sha256sum -c`. Each has a negative case, so
//! that the check is shown to be able to fail.

use crate::{bundle_of, sites};
use std::fs;
use std::path::Path;
use std::process::Command;
use ztps_config::Config;
use ztps_flash_bundle::render::{AGENT_CONFIG_PATH, DOMAIN_XML_PATH, SHA256SUMS_PATH};

fn text(bundle: &ztps_flash_bundle::Bundle, path: &str) -> String {
    String::from_utf8(
        bundle
            .file(path)
            .unwrap_or_else(|| panic!("no {path}"))
            .contents
            .clone(),
    )
    .unwrap()
}

#[test]
fn rendered_agent_config_passes_the_agent_schema() {
    for (name, path) in sites() {
        let bundle = bundle_of(&path);
        let c = Config::parse(&text(&bundle, AGENT_CONFIG_PATH), AGENT_CONFIG_PATH)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.bridge.name, "br0");
        assert_eq!(c.log.tag, "ZTPS");
        match name {
            "example" => {
                assert_eq!(
                    c.dhcp.bootfile_url.as_deref(),
                    Some("http://10.10.10.11:8080/bootstrap")
                );
                assert_eq!(c.bridge.address.to_string(), "10.10.10.1/24");
                assert_eq!(c.eapi.url, "unix:/var/run/command-api.sock");
                assert!(c.dhcp.links.is_empty());
            }
            "pools" => {
                assert_eq!(c.vm.name, "ztps2");
                assert_eq!(c.eapi.url, "http://localhost:8080/command-api");
                assert_eq!(c.dhcp.links.len(), 2);
                assert_eq!(c.dhcp.links[1].pool.prefix_len(), 28);
                assert_eq!(c.dhcp.hostname.as_deref(), Some("leaf-{serial}"));
                assert_eq!(c.dhcp.lease_time, std::time::Duration::from_secs(12 * 3600));
            }
            "ztp" => {
                assert!(c.ztp.serve);
                assert_eq!(c.dhcp.bootfile_url, None);
                assert_eq!(c.ztp.port, 80);
                let leaves: Vec<(&str, &str)> = c
                    .ztp
                    .leaf
                    .iter()
                    .map(|l| (l.interface.as_str(), l.name.as_str()))
                    .collect();
                assert_eq!(
                    leaves,
                    [
                        ("Ethernet1", "leaf1"),
                        ("Ethernet2", "leaf2"),
                        ("Ethernet49/1", "leaf3")
                    ]
                );
                assert_eq!(c.ztp.leaf[0].serial.as_deref(), Some("JPE20000001"));
                assert_eq!(c.ztp.image, None);
            }
            "ztp-image" => {
                assert!(c.ztp.serve);
                assert_eq!(c.ztp.port, 50080);
                assert_eq!(c.ztp.max_image_downloads, 2);
                assert_eq!(c.ztp.image.as_ref().unwrap().version, "4.33.2F");
                assert_eq!(c.dhcp.links[0].interface, "Ethernet7");
                assert_eq!(c.dhcp.domain_name.as_deref(), Some("fabric.example"));
                assert_eq!(c.dhcp.exclude[0], "Ethernet48");
            }
            other => panic!("unexpected site {other}"),
        }
    }
}

/// Runs `virt-xml-validate FILE domain`; panics if the tool cannot run.
fn virt_xml_validate(file: &Path) -> (bool, String) {
    let out = Command::new("virt-xml-validate")
        .arg(file)
        .arg("domain")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run virt-xml-validate ({e}): install libvirt-clients (and libxml2-utils for xmllint)")
        });
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.code() == Some(127) || log.contains("xmllint: not found") {
        panic!("virt-xml-validate needs xmllint: install libxml2-utils\n{log}");
    }
    (out.status.success(), log)
}

#[test]
fn rendered_domain_xml_validates_with_libvirt() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, path) in sites() {
        let bundle = bundle_of(&path);
        if name.starts_with("ztp") {
            assert!(bundle.file(DOMAIN_XML_PATH).is_none(), "{name}: no VM");
            continue;
        }
        let file = tmp.path().join(format!("{name}.xml"));
        fs::write(&file, text(&bundle, DOMAIN_XML_PATH)).unwrap();
        let (ok, log) = virt_xml_validate(&file);
        assert!(ok, "{name}: {log}");
    }
}

#[test]
fn broken_domain_xml_fails_libvirt_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, path) = &sites()[0];
    let good = text(&bundle_of(path), DOMAIN_XML_PATH);
    let broken = [
        good.replace("<target dev='vnet0'/>", "<target dev='vnet0'/><bogus/>"),
        good.replace(
            "<memory unit='MiB'>1024</memory>",
            "<memory unit='MiB'>lots</memory>",
        ),
        good.replace("</domain>", ""),
    ];
    for (i, xml) in broken.iter().enumerate() {
        assert_ne!(xml, &good, "case {i} did not change the XML");
        let file = tmp.path().join(format!("broken{i}.xml"));
        fs::write(&file, xml).unwrap();
        let (ok, log) = virt_xml_validate(&file);
        assert!(!ok, "case {i} validated:\n{xml}\n{log}");
    }
}

#[test]
fn sha256sums_verify_with_sha256sum() {
    for (name, path) in sites() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("flash");
        let bundle = bundle_of(&path);
        bundle.write_to(&dir).unwrap();
        let out = Command::new("sha256sum")
            .args(["-c", SHA256SUMS_PATH])
            .current_dir(&dir)
            .output()
            .expect("sha256sum (coreutils) runs");
        let log = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{name}: {log}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Every file but SHA256SUMS itself is listed and OK.
        assert_eq!(
            log.lines().filter(|l| l.ends_with(": OK")).count(),
            bundle.files().len() - 1,
            "{log}"
        );

        // And a changed file is caught.
        fs::write(dir.join(AGENT_CONFIG_PATH), "changed").unwrap();
        let out = Command::new("sha256sum")
            .args(["-c", SHA256SUMS_PATH])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}: a changed file passed");
    }
}
