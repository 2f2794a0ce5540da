//! Golden files: every rendered file of each test site is compared with
//! `tests/golden/<site>/<path>`. `UPDATE_GOLDEN=1 cargo test -p ztps-flash-bundle`
//! rewrites them (and removes stale ones); review the diff before committing.

use crate::{avd_bundles, bundle_of, sites};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use ztps_flash_bundle::render::{AGENT_BIN64_PATH, AGENT_BIN_PATH};
use ztps_flash_bundle::Bundle;

/// Every test bundle: the sites', and each spine's of the AVD fixtures
/// (golden directory `avd-<fixture>/<spine>`).
fn all_bundles() -> Vec<(String, Bundle)> {
    let mut all: Vec<(String, Bundle)> = sites()
        .into_iter()
        .map(|(name, path)| (name.to_string(), bundle_of(&path)))
        .collect();
    for fixture in ["v3", "v5"] {
        for (spine, bundle) in avd_bundles(fixture) {
            all.push((format!("avd-{fixture}/{spine}"), bundle));
        }
    }
    all
}

fn golden_dir(site: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(site)
}

fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// A short line diff: the first differing lines with their numbers.
fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    let mut shown = 0;
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i), a.get(i));
        if x != y {
            out.push_str(&format!("  line {}:\n", i + 1));
            out.push_str(&format!("    - {}\n", x.copied().unwrap_or("<no line>")));
            out.push_str(&format!("    + {}\n", y.copied().unwrap_or("<no line>")));
            shown += 1;
            if shown == 8 {
                out.push_str("  ...\n");
                break;
            }
        }
    }
    if out.is_empty() && expected != actual {
        out.push_str("  (differs only in the final newline)\n");
    }
    out
}

#[test]
fn rendered_files_match_the_goldens() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for (name, bundle) in all_bundles() {
        let dir = golden_dir(&name);
        let mut expected_files = BTreeSet::new();
        for f in bundle.files() {
            if f.path == AGENT_BIN_PATH || f.path == AGENT_BIN64_PATH {
                continue; // test stand-ins, not rendered
            }
            expected_files.insert(f.path.clone());
            let golden = dir.join(&f.path);
            let actual = String::from_utf8(f.contents.clone()).expect("rendered files are text");
            if update {
                fs::create_dir_all(golden.parent().unwrap()).unwrap();
                fs::write(&golden, &actual).unwrap();
                continue;
            }
            match fs::read_to_string(&golden) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => failures.push(format!(
                    "{} differs from the rendered file:\n{}",
                    golden.display(),
                    diff(&expected, &actual)
                )),
                Err(e) => failures.push(format!("{}: {e}", golden.display())),
            }
        }
        for stale in files_under(&dir).difference(&expected_files) {
            if update {
                fs::remove_file(dir.join(stale)).unwrap();
            } else {
                failures.push(format!(
                    "{}: golden file for a file the bundle no longer has",
                    dir.join(stale).display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended: UPDATE_GOLDEN=1 cargo test -p ztps-flash-bundle, then review the diff.",
        failures.join("\n")
    );
}

#[test]
fn the_diff_shows_the_differing_line() {
    let d = diff("a\nb\nc\n", "a\nB\nc\n");
    assert_eq!(d, "  line 2:\n    - b\n    + B\n");
    assert_eq!(
        diff("a\n", "a\nz\n"),
        "  line 2:\n    - <no line>\n    + z\n"
    );
}

#[test]
fn each_site_has_the_files_it_asked_for() {
    let paths = |name: &str| -> Vec<String> {
        let (_, p) = sites().into_iter().find(|(n, _)| *n == name).unwrap();
        bundle_of(&p)
            .files()
            .iter()
            .map(|f| f.path.clone())
            .collect()
    };
    assert_eq!(
        paths("example"),
        [
            "INSTALL.txt",
            "SHA256SUMS",
            "startup-config",
            "startup-config.snippet",
            "ztps.xml",
            "ztps/ztps-agent",
            "ztps/ztps-agent.x86_64",
            "ztps/ztps.toml"
        ]
    );
    let pools = paths("pools");
    assert!(
        pools.contains(&"boot-config".to_string()) && pools.contains(&"fullrecover".to_string())
    );
    // Spine-served: the leaves' configs, and no VM piece.
    assert_eq!(
        paths("ztp"),
        [
            "INSTALL.txt",
            "SHA256SUMS",
            "startup-config",
            "startup-config.snippet",
            "ztps/configs/leaf1.cfg",
            "ztps/configs/leaf2.cfg",
            "ztps/configs/leaf3.cfg",
            "ztps/ztps-agent",
            "ztps/ztps-agent.x86_64",
            "ztps/ztps.toml"
        ]
    );
}

#[test]
fn a_spine_served_bundle_renders_no_vm_pieces() {
    for name in ["ztp", "ztp-image"] {
        let (_, p) = sites().into_iter().find(|(n, _)| *n == name).unwrap();
        let bundle = bundle_of(&p);
        let text =
            |path: &str| String::from_utf8(bundle.file(path).unwrap().contents.clone()).unwrap();
        for path in ["startup-config", "startup-config.snippet", "ztps/ztps.toml"] {
            let t = text(path);
            for vm_piece in [
                "virtual-machine",
                "Loopback2",
                "ztps.xml",
                "event-handler",
                "[vm]",
                "[bridge]",
                "bootfile_url",
            ] {
                assert!(!t.contains(vm_piece), "{name}: {path} has {vm_piece}:\n{t}");
            }
        }
        let snippet = text("startup-config.snippet");
        assert!(
            snippet.contains("management api http-commands") && snippet.contains("daemon ztps")
        );
        assert!(text("INSTALL.txt").contains("Mode: spine-served (ztp.serve = true)"));
    }
}
