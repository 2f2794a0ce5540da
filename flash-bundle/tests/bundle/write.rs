//! Writing the bundle: modes, replacement of a previous bundle, no leftovers,
//! and nothing written when building fails.

use crate::{bundle_of, fake_binaries, load_site, sites, VERSION};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use ztps_flash_bundle::elf::{fake_executable, Arch};
use ztps_flash_bundle::{build, Binaries, BundleError, Payload};

#[test]
fn write_to_sets_modes_and_replaces_the_previous_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("flash");
    let sites = sites();
    // The pools site has boot-config and fullrecover; the example does not.
    bundle_of(&sites[1].1).write_to(&dir).unwrap();
    assert!(dir.join("boot-config").exists());
    let example = bundle_of(&sites[0].1);
    example.write_to(&dir).unwrap();
    assert!(
        !dir.join("boot-config").exists(),
        "a file of the previous bundle survived"
    );
    assert!(!dir.join("fullrecover").exists());
    for f in example.files() {
        let p = dir.join(&f.path);
        assert_eq!(fs::read(&p).unwrap(), f.contents, "{}", f.path);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            f.mode,
            "{}",
            f.path
        );
    }
    assert_eq!(
        fs::metadata(dir.join("ztps/ztps-agent"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        fs::metadata(dir.join("ztps.xml"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    let names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["flash"], "temporary directories left behind");
}

#[test]
fn a_failed_write_leaves_the_previous_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("flash");
    let bundle = bundle_of(&sites()[0].1);
    bundle.write_to(&dir).unwrap();
    // Its parent is a file: creating the temporary directory fails.
    let blocked = tmp.path().join("file");
    fs::write(&blocked, "x").unwrap();
    let err = bundle.write_to(&blocked.join("flash")).unwrap_err();
    assert!(matches!(err, BundleError::Io { .. }), "{err}");
    assert_eq!(
        fs::read(dir.join("ztps.xml")).unwrap(),
        bundle.file("ztps.xml").unwrap().contents
    );
}

#[test]
fn dynamic_or_wrong_arch_binaries_are_refused() {
    let site = load_site(&sites()[0].1);
    let dynamic = Binaries {
        i686: fake_executable(Arch::I686, Some("/lib/ld-musl-i386.so.1")),
        ..fake_binaries()
    };
    let e = build(&site, &dynamic, &Payload::default(), VERSION)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ztps/ztps-agent (i686): dynamically linked") && e.contains("ld-musl"),
        "{e}"
    );
    let swapped = Binaries {
        i686: fake_executable(Arch::X86_64, None),
        x86_64: fake_executable(Arch::I686, None),
    };
    let e = build(&site, &swapped, &Payload::default(), VERSION)
        .unwrap_err()
        .to_string();
    assert!(e.contains("wrong architecture"), "{e}");
}

#[test]
fn rendering_is_deterministic() {
    for (_, path) in sites() {
        assert_eq!(bundle_of(&path), bundle_of(&path));
    }
}
