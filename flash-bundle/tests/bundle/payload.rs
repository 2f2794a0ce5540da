//! The files a site names on the build machine: every leaf config must exist
//! and be text; an image copy is hashed; unused configs are reported.

use crate::{load_site, payload_of, sites};
use std::fs;
use std::path::Path;
use ztps_flash_bundle::{Payload, Site};

fn site_in(dir: &Path, leaves: &[&str], image: bool) -> Site {
    let mut text = String::from("name = \"t\"\n[spine]\nhostname = \"s1\"\n[ztp]\nserve = true\n");
    if image {
        text.push_str(
            "[ztp.image]\nfile = \"/mnt/flash/ztps/images/EOS.swi\"\nversion = \"4.33.2F\"\n",
        );
    }
    for (i, l) in leaves.iter().enumerate() {
        text.push_str(&format!(
            "[[ztp.leaf]]\ninterface = \"Ethernet{}\"\nname = \"{l}\"\n",
            i + 1
        ));
    }
    text.push_str("[bundle]\nconfigs = \"cfgs\"\n");
    if image {
        text.push_str("image = \"EOS.swi\"\n");
    }
    let path = dir.join("site.toml");
    fs::write(&path, text).unwrap();
    fs::create_dir_all(dir.join("cfgs")).unwrap();
    load_site(&path)
}

#[test]
fn every_leaf_config_must_exist_and_be_text() {
    let tmp = tempfile::tempdir().unwrap();
    let site = site_in(tmp.path(), &["leaf1", "leaf2", "leaf3", "leaf4"], false);
    fs::write(tmp.path().join("cfgs/leaf1.cfg"), "hostname leaf1\n").unwrap();
    fs::write(tmp.path().join("cfgs/leaf3.cfg"), b"\xff\xfe binary").unwrap();
    fs::write(tmp.path().join("cfgs/leaf4.cfg"), "\n").unwrap();
    let e = Payload::load(&site, tmp.path()).unwrap_err();
    let s = e.to_string();
    assert_eq!(e.problems.len(), 3, "{s}");
    assert!(
        s.contains("leaf2.cfg: No such file") && s.contains("leaf leaf2 on Ethernet2"),
        "{s}"
    );
    assert!(s.contains("leaf3.cfg: not UTF-8 text"), "{s}");
    assert!(s.contains("leaf4.cfg: empty"), "{s}");
}

#[test]
fn unused_configs_are_warned_about_and_not_shipped() {
    let tmp = tempfile::tempdir().unwrap();
    let site = site_in(tmp.path(), &["leaf1"], false);
    fs::write(tmp.path().join("cfgs/leaf1.cfg"), "hostname leaf1\n").unwrap();
    fs::write(tmp.path().join("cfgs/old-leaf.cfg"), "hostname old\n").unwrap();
    let p = Payload::load(&site, tmp.path()).unwrap();
    assert_eq!(p.configs.len(), 1);
    assert_eq!(p.configs[0].text, "hostname leaf1\n");
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].contains("old-leaf"), "{:?}", p.warnings);
}

#[test]
fn a_local_image_is_hashed_and_a_missing_one_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let site = site_in(tmp.path(), &[], true);
    let e = Payload::load(&site, tmp.path()).unwrap_err();
    assert!(
        e.to_string().contains("EOS.swi") && e.to_string().contains("bundle.image"),
        "{e}"
    );
    fs::write(tmp.path().join("EOS.swi"), "abc").unwrap();
    let p = Payload::load(&site, tmp.path()).unwrap();
    let image = p.image.unwrap();
    assert_eq!(image.size, 3);
    // sha256("abc")
    assert_eq!(
        image.sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn the_test_sites_load_and_warn_only_where_meant() {
    for (name, path) in sites() {
        let p = payload_of(&load_site(&path), &path);
        let expected = usize::from(name == "ztp-image"); // its spare.cfg
        assert_eq!(p.warnings.len(), expected, "{name}: {:?}", p.warnings);
    }
}
