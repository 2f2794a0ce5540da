//! AVD projects in, one spine-served bundle per spine out (fixtures written for
//! these tests in `tests/avd/`: `v3` the mapping form, `v5` the list form).

use crate::{avd_bundles, avd_dir};
use std::fs;
use ztps_flash_bundle::avd::load_spines;
use ztps_flash_bundle::Site;

fn leaves(fixture: &str, spine: Option<&str>) -> Vec<(String, Vec<(String, String)>)> {
    load_spines(&avd_dir(fixture), spine)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|s| {
            let l = s
                .leaves
                .iter()
                .map(|l| (l.interface.clone(), l.name.to_string()))
                .collect();
            (s.hostname, l)
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn avd3_mapping_form_gives_every_spine_with_its_leaves() {
    assert_eq!(
        leaves("v3", None),
        vec![
            (
                "dc1-spine1".to_string(),
                pairs(&[("Ethernet1", "dc1-leaf1"), ("Ethernet2", "dc1-leaf2")])
            ),
            (
                "dc1-spine2".to_string(),
                pairs(&[("Ethernet1", "dc1-leaf1"), ("Ethernet2", "dc1-leaf2")])
            ),
        ]
    );
}

#[test]
fn avd5_list_form_one_port_per_leaf_and_peers_without_a_type() {
    let spines = load_spines(&avd_dir("v5"), None).unwrap();
    assert_eq!(spines.len(), 1, "the leaves face spines only: {spines:?}");
    assert_eq!(
        leaves("v5", None)[0].1,
        pairs(&[
            ("Ethernet1/1", "pod1-leaf1a"),
            ("Ethernet2/1", "pod1-leaf1b"),
            ("Ethernet3/1", "pod1-border1"),
        ])
    );
    assert_eq!(spines[0].warnings.len(), 1, "{:?}", spines[0].warnings);
    assert!(
        spines[0].warnings[0].contains("pod1-leaf1a is on Ethernet1/1 and Ethernet1/2"),
        "{:?}",
        spines[0].warnings
    );
}

#[test]
fn spine_selects_one_and_a_leaf_or_unknown_name_is_refused() {
    assert_eq!(leaves("v3", Some("dc1-spine2")).len(), 1);
    let e = load_spines(&avd_dir("v3"), Some("dc1-leaf1")).unwrap_err();
    assert!(e.to_string().contains("not a spine"), "{e}");
    let e = load_spines(&avd_dir("v3"), Some("nope")).unwrap_err();
    assert!(
        e.to_string().contains("no structured config nope.yml"),
        "{e}"
    );
    let e = load_spines(&avd_dir("does-not-exist"), None).unwrap_err();
    assert!(e.to_string().contains("not an AVD project"), "{e}");
}

#[test]
fn a_bad_structured_config_names_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("intended/structured_configs")).unwrap();
    fs::create_dir_all(tmp.path().join("intended/configs")).unwrap();
    let file = tmp.path().join("intended/structured_configs/s1.yml");
    fs::write(
        &file,
        "hostname: s1\nethernet_interfaces:\n  - name: Ethernet1\n    peer: [leaf1]\n",
    )
    .unwrap();
    let e = load_spines(tmp.path(), None).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:4:11: ethernet_interfaces[0].peer: must be a scalar",
            file.display()
        )),
        "{e}"
    );
}

#[test]
fn each_spine_bundle_ships_its_leaves_configs_and_no_vm() {
    let bundles = avd_bundles("v3");
    assert_eq!(bundles.len(), 2);
    for (spine, bundle) in &bundles {
        let paths: Vec<&str> = bundle.files().iter().map(|f| f.path.as_str()).collect();
        assert!(
            paths.contains(&"ztps/configs/dc1-leaf1.cfg"),
            "{spine}: {paths:?}"
        );
        assert!(
            paths.contains(&"ztps/configs/dc1-leaf2.cfg"),
            "{spine}: {paths:?}"
        );
        assert!(!paths.contains(&"ztps.xml"), "{spine}: {paths:?}");
        let config =
            String::from_utf8(bundle.file("ztps/ztps.toml").unwrap().contents.clone()).unwrap();
        let c = ztps_config::Config::parse(&config, "ztps.toml").unwrap();
        assert!(c.ztp.serve);
        assert_eq!(c.ztp.leaf.len(), 2);
        let startup =
            String::from_utf8(bundle.file("startup-config").unwrap().contents.clone()).unwrap();
        assert!(startup.contains(&format!("hostname {spine}")), "{startup}");
    }
}

#[test]
fn a_vm_site_or_one_with_leaves_cannot_take_avd_leaves() {
    let vm = Site::parse(
        &fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/site.toml"
        ))
        .unwrap(),
        "site.toml",
    )
    .unwrap();
    let e = vm.for_spine("s1", vec![], "/x".into()).unwrap_err();
    assert!(e.contains("ztp.serve = true"), "{e}");
    let served = Site::parse(
        &fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/site-ztp.toml"
        ))
        .unwrap(),
        "site-ztp.toml",
    )
    .unwrap();
    let e = served.for_spine("s1", vec![], "/x".into()).unwrap_err();
    assert!(e.contains("come from AVD"), "{e}");
    let e = Site::avd_default()
        .for_spine("bad host", vec![], "/x".into())
        .unwrap_err();
    assert!(e.contains("hostname"), "{e}");
}
