//! Files of the build machine that go into a bundle: each leaf's startup-config
//! (`ztps/configs/<name>.cfg`) and, if the site names a local copy of the EOS
//! image for the leaves, that image's size and SHA-256 (the image itself is
//! not put in the bundle: it is large, and the operator copies it once; the
//! bundle's INSTALL.txt says where and with which checksum).
//!
//! [`Payload::load`] is the only reading of the file system in this crate.
//! Every file a site refers to is checked here, before anything is rendered.

use crate::site::Site;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use ztps_config::LeafName;

/// Largest leaf startup-config accepted (a large one is 100 KiB).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// One leaf's startup-config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafConfig {
    /// The leaf (`[[ztp.leaf]] name`): the file is `ztps/configs/<name>.cfg`.
    pub name: LeafName,
    /// The config text, checked: UTF-8, no NUL, not empty.
    pub text: String,
}

/// The local copy of the leaves' EOS image, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    /// Where it is on the build machine.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// What a bundle carries besides rendered files and the agent binaries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload {
    /// One config per `[[ztp.leaf]]`, in the site's order.
    pub configs: Vec<LeafConfig>,
    /// The checked local image, if the site names one (`bundle.image`).
    pub image: Option<LocalImage>,
    /// Allowed but probably not meant (a `.cfg` no leaf uses).
    pub warnings: Vec<String>,
}

/// Why a payload could not be loaded: every problem, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct PayloadError {
    /// What is wrong, naming each file.
    pub problems: Vec<String>,
}

impl Payload {
    /// Reads and checks every file `site` refers to; relative paths of
    /// `[bundle]` are relative to `base` (the site file's directory).
    pub fn load(site: &Site, base: &Path) -> Result<Payload, PayloadError> {
        let mut problems = Vec::new();
        let mut payload = Payload::default();
        if let Some(dir) = &site.sources.configs {
            let dir = base.join(dir);
            for leaf in &site.ztp.leaf {
                let path = dir.join(format!("{}.cfg", leaf.name));
                match read_config(&path) {
                    Ok(text) => payload.configs.push(LeafConfig {
                        name: leaf.name.clone(),
                        text,
                    }),
                    Err(why) => problems.push(format!(
                        "{}: {why} (config of leaf {} on {})",
                        path.display(),
                        leaf.name,
                        leaf.interface
                    )),
                }
            }
            match fs::read_dir(&dir) {
                Err(e) => problems.push(format!("{}: {e} (bundle.configs)", dir.display())),
                Ok(entries) => {
                    let mut unused: Vec<String> = entries
                        .flatten()
                        .filter_map(|e| e.file_name().into_string().ok())
                        .filter(|n| {
                            n.strip_suffix(".cfg").is_some_and(|stem| {
                                !site.ztp.leaf.iter().any(|l| l.name.as_str() == stem)
                            })
                        })
                        .collect();
                    unused.sort();
                    payload.warnings.extend(unused.into_iter().map(|n| {
                        format!(
                            "{}: no [[ztp.leaf]] is named {}; not shipped",
                            dir.join(&n).display(),
                            n.trim_end_matches(".cfg")
                        )
                    }));
                }
            }
        }
        if let Some(local) = &site.sources.image {
            let path = base.join(local);
            match hash_file(&path) {
                Ok((size, sha256)) => payload.image = Some(LocalImage { path, size, sha256 }),
                Err(e) => problems.push(format!("{}: {e} (bundle.image)", path.display())),
            }
        }
        if problems.is_empty() {
            Ok(payload)
        } else {
            Err(PayloadError { problems })
        }
    }
}

fn read_config(path: &Path) -> Result<String, String> {
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "{} bytes: more than {MAX_CONFIG_BYTES}, not a startup-config",
            meta.len()
        ));
    }
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    if text.trim().is_empty() {
        return Err("empty".into());
    }
    if text.contains('\0') {
        return Err("contains NUL bytes: not a text config".into());
    }
    Ok(text)
}

/// Size and SHA-256 of a file, read in chunks (an EOS image is about 1 GB).
fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let mut f = fs::File::open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, crate::bundle::hex(&hasher.finalize())))
}
