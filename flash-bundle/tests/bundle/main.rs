//! Integration tests of the bundle, one test binary (modules below): golden
//! files for every rendered file of two sites, the agent schema, libvirt's
//! validator, `sha256sum -c`, and writing to disk.

mod avd;
mod golden;
mod payload;
mod tools;
mod write;

use std::path::{Path, PathBuf};
use ztps_flash_bundle::elf::{fake_executable, Arch};
use ztps_flash_bundle::{build, Binaries, Bundle, Payload, Site};

/// Version used in rendered files, so that the goldens do not change with releases.
pub const VERSION: &str = "0.0.0-test";

/// The test sites: (golden directory name, site file).
pub fn sites() -> Vec<(&'static str, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![
        ("example", dir.join("../examples/site.toml")),
        ("pools", dir.join("tests/sites/pools.toml")),
        ("ztp", dir.join("../examples/site-ztp.toml")),
        ("ztp-image", dir.join("tests/sites/ztp-image.toml")),
    ]
}

/// Minimal static executables standing in for the agent binaries.
pub fn fake_binaries() -> Binaries {
    Binaries {
        i686: fake_executable(Arch::I686, None),
        x86_64: fake_executable(Arch::X86_64, None),
    }
}

/// Parses a site file, panicking with the site error text.
pub fn load_site(path: &Path) -> Site {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Site::parse(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// The payload of a test site: the files it names, relative to the site file.
pub fn payload_of(site: &Site, path: &Path) -> Payload {
    Payload::load(site, path.parent().unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

/// The AVD fixture `tests/avd/<fixture>`.
pub fn avd_dir(fixture: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/avd")
        .join(fixture)
}

/// One bundle per spine of an AVD fixture, with the default `--avd` site.
pub fn avd_bundles(fixture: &str) -> Vec<(String, Bundle)> {
    let dir = avd_dir(fixture);
    ztps_flash_bundle::avd::load_spines(&dir, None)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|spine| {
            let site = Site::avd_default()
                .for_spine(
                    &spine.hostname,
                    spine.leaves,
                    dir.join(ztps_flash_bundle::avd::CONFIGS),
                )
                .unwrap_or_else(|e| panic!("{e}"));
            let payload = Payload::load(&site, Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
            let bundle =
                build(&site, &fake_binaries(), &payload, VERSION).unwrap_or_else(|e| panic!("{e}"));
            (spine.hostname, bundle)
        })
        .collect()
}

/// The bundle of a test site.
pub fn bundle_of(path: &Path) -> Bundle {
    let site = load_site(path);
    build(&site, &fake_binaries(), &payload_of(&site, path), VERSION)
        .unwrap_or_else(|e| panic!("{e}"))
}
