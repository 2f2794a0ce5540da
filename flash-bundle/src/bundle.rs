//! The bundle: every file with its path under `/mnt/flash` and its mode, built
//! from a checked site and the two agent binaries, and written all or nothing.

use crate::elf::{self, Arch, ElfError};
use crate::payload::Payload;
use crate::render::{self, *};
use crate::site::Site;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use ztps_config::{Config, ConfigError};

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Path relative to the root of flash, `/`-separated (e.g. `ztps/ztps.toml`).
    pub path: String,
    /// Contents.
    pub contents: Vec<u8>,
    /// Unix permission bits (0o755 for the binaries, 0o644 otherwise).
    pub mode: u32,
}

/// The whole bundle, files sorted by path. Made by [`build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    files: Vec<BundleFile>,
}

/// The two static agent executables.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `i686-unknown-linux-musl` build: `ztps/ztps-agent`.
    pub i686: Vec<u8>,
    /// `x86_64-unknown-linux-musl` build: `ztps/ztps-agent.x86_64`.
    pub x86_64: Vec<u8>,
}

/// Why a bundle could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The rendered agent config fails the agent's own parser (a bug in the
    /// renderer or a gap in site validation); shows the agent's error text.
    #[error("the rendered agent config is rejected by ztps-agent:\n{0}")]
    AgentConfig(#[from] ConfigError),
    /// An agent binary is not a static executable of its architecture.
    #[error("{path} ({arch}): {source}")]
    Binary {
        /// Bundle path of the binary.
        path: &'static str,
        /// Expected architecture.
        arch: Arch,
        /// What is wrong.
        source: ElfError,
    },
    /// Writing failed; nothing of the new bundle is left behind.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BundleError {
    let path = path.to_path_buf();
    move |source| BundleError::Io {
        action,
        path,
        source,
    }
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Builds the bundle: renders every file, checks the agent config with the
/// agent's parser and both binaries with [`elf::check_static`], and adds
/// `SHA256SUMS` over all other files (`sha256sum -c` format).
///
/// `payload` must have been loaded for this `site` ([`Payload::load`]): its
/// configs go to `ztps/configs/`.
pub fn build(
    site: &Site,
    binaries: &Binaries,
    payload: &Payload,
    version: &str,
) -> Result<Bundle, BundleError> {
    for (bytes, arch, path) in [
        (&binaries.i686, Arch::I686, AGENT_BIN_PATH),
        (&binaries.x86_64, Arch::X86_64, AGENT_BIN64_PATH),
    ] {
        elf::check_static(bytes, arch).map_err(|source| BundleError::Binary {
            path,
            arch,
            source,
        })?;
    }
    let agent_config = render::agent_config(site, version);
    Config::parse(&agent_config, AGENT_CONFIG_PATH)?;

    let text = |path: &str, s: String| BundleFile {
        path: path.into(),
        contents: s.into_bytes(),
        mode: 0o644,
    };
    let mut files = vec![
        BundleFile {
            path: AGENT_BIN_PATH.into(),
            contents: binaries.i686.clone(),
            mode: 0o755,
        },
        BundleFile {
            path: AGENT_BIN64_PATH.into(),
            contents: binaries.x86_64.clone(),
            mode: 0o755,
        },
        text(AGENT_CONFIG_PATH, agent_config),
        text(STARTUP_CONFIG_PATH, render::startup_config(site, version)),
        text(SNIPPET_PATH, render::startup_config_snippet(site, version)),
        text(INSTALL_PATH, render::install_txt(site, payload, version)),
    ];
    if let Some(v) = site.vm_setup() {
        files.push(text(
            DOMAIN_XML_PATH,
            render::libvirt_domain(site, v, version),
        ));
    }
    for c in &payload.configs {
        files.push(text(&render::leaf_config_path(&c.name), c.text.clone()));
    }
    if let Some(b) = render::boot_config(site) {
        files.push(text(BOOT_CONFIG_PATH, b));
    }
    if site.spine.fullrecover {
        files.push(text(FULLRECOVER_PATH, String::new()));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut sums = String::new();
    for f in &files {
        let _ = writeln!(sums, "{}  {}", sha256_hex(&f.contents), f.path);
    }
    files.push(text(SHA256SUMS_PATH, sums));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Bundle { files })
}

impl Bundle {
    /// The files, sorted by path.
    pub fn files(&self) -> &[BundleFile] {
        &self.files
    }

    /// The file at `path`, if the bundle has it.
    pub fn file(&self, path: &str) -> Option<&BundleFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Writes the bundle as directory `dir`, replacing what was there, all or
    /// nothing: files go to a temporary sibling directory first (each synced to
    /// disk), which is then renamed over `dir`. If anything fails, `dir` is left
    /// as it was and the temporary directory is removed.
    pub fn write_to(&self, dir: &Path) -> Result<(), BundleError> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| BundleError::Io {
                action: "writing the bundle to",
                path: dir.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory name"),
            })?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io_err("creating", &parent))?;
        let pid = std::process::id();
        let tmp = parent.join(format!(".{name}.tmp-{pid}"));
        let old = parent.join(format!(".{name}.old-{pid}"));
        for stale in [&tmp, &old] {
            match fs::remove_dir_all(stale) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("removing", stale)(e))
                }
                _ => {}
            }
        }
        if let Err(e) = self.write_files(&tmp) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let had_old = fs::symlink_metadata(dir).is_ok();
        if had_old {
            if let Err(e) = fs::rename(dir, &old) {
                let _ = fs::remove_dir_all(&tmp);
                return Err(io_err("moving aside", dir)(e));
            }
        }
        if let Err(e) = fs::rename(&tmp, dir) {
            if had_old {
                let _ = fs::rename(&old, dir);
            }
            let _ = fs::remove_dir_all(&tmp);
            return Err(io_err("renaming into place", dir)(e));
        }
        if had_old {
            let removed = if fs::symlink_metadata(&old).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(&old)
            } else {
                fs::remove_file(&old)
            };
            removed.map_err(io_err("removing the previous bundle", &old))?;
        }
        Ok(())
    }

    fn write_files(&self, root: &Path) -> Result<(), BundleError> {
        let mkdir = |d: &Path| -> Result<(), BundleError> {
            fs::create_dir_all(d).map_err(io_err("creating", d))?;
            fs::set_permissions(d, fs::Permissions::from_mode(0o755))
                .map_err(io_err("setting the mode of", d))
        };
        mkdir(root)?;
        for f in &self.files {
            let path = root.join(&f.path);
            if let Some(p) = path.parent() {
                mkdir(p)?;
            }
            let mut file = fs::File::create(&path).map_err(io_err("creating", &path))?;
            file.write_all(&f.contents)
                .map_err(io_err("writing", &path))?;
            file.set_permissions(fs::Permissions::from_mode(f.mode))
                .map_err(io_err("setting the mode of", &path))?;
            file.sync_all().map_err(io_err("syncing", &path))?;
        }
        Ok(())
    }
}
