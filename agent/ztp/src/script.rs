//! The bash script a leaf not on the configured EOS version gets at
//! `GET /ztp/bootstrap`: download the image (resuming, waiting out the
//! spine's download cap), check its size and sha256, set boot-config, fetch the
//! startup-config, report each step, exit 0 so EOS reboots.
//!
//! The script is a header of variable assignments rendered here, followed by a
//! fixed body, `upgrade.sh`, that never changes with the input. Every rendered
//! value is single-quoted (with `'` escaped) and stripped of control
//! characters, and the file name is reduced to `[A-Za-z0-9._-]`, so nothing
//! from config or from a request header can run as shell or split an HTTP
//! header line.

use crate::image::{is_safe_file_name, ImageDigest};

/// The body of every upgrade script, after the rendered variables.
const BODY: &str = include_str!("upgrade.sh");

/// Free space (KiB) the script keeps on flash beyond the image itself.
pub const FLASH_MARGIN_KIB: u64 = 16 * 1024;

/// How long (seconds) the script waits out 503 from the spine's download cap;
/// EOS gives a ZTP script 900 s in all.
pub const MAX_BUSY_SECONDS: u64 = 600;

/// How many times the script starts (or resumes) the download after a failure
/// other than 503.
pub const MAX_ATTEMPTS: u32 = 5;

/// What one leaf's upgrade script carries.
#[derive(Debug, Clone, Copy)]
pub struct UpgradeScript<'a> {
    /// `http://<spine address on the leaf's link>[:port]`, no trailing slash.
    pub base_url: &'a str,
    /// The image to install.
    pub image: &'a ImageDigest,
    /// The serial the leaf sent (`X-Arista-Serial`); repeated on every request
    /// so that serial-locked ports accept them.
    pub serial: Option<&'a str>,
    /// The EOS version of the image (`ztp.image.version`).
    pub version: &'a str,
}

/// The whole script, `#!/bin/bash` first.
pub fn render(s: &UpgradeScript<'_>) -> String {
    let base_url = s.base_url.trim_end_matches('/');
    let sha256: String = s
        .image
        .sha256_hex
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let mut out = String::with_capacity(BODY.len() + 1024);
    out.push_str("#!/bin/bash\n");
    out.push_str("# ztps-agent: upgrade this leaf's EOS, then install its startup-config.\n");
    out.push_str("set -u\n");
    let vars: [(&str, String); 10] = [
        ("BASE_URL", quote(base_url)),
        ("SERIAL", quote(s.serial.unwrap_or(""))),
        ("VERSION", quote(s.version)),
        ("IMAGE", quote(&safe_file_name(&s.image.file_name))),
        ("IMAGE_SIZE", s.image.size.to_string()),
        ("IMAGE_SHA256", quote(&sha256)),
        ("FLASH", "/mnt/flash".to_string()),
        ("MARGIN_KIB", FLASH_MARGIN_KIB.to_string()),
        ("MAX_BUSY_SECONDS", MAX_BUSY_SECONDS.to_string()),
        ("MAX_ATTEMPTS", MAX_ATTEMPTS.to_string()),
    ];
    for (name, value) in vars {
        out.push_str(name);
        out.push('=');
        out.push_str(&value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(BODY);
    out
}

/// `value` as one bash word: single-quoted, `'` written as `'\''`, control
/// characters (newlines included) dropped.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The name the leaf saves the image under: the image's own name when it is
/// safe (always, for a digest from `ImageStore::digest`), else the same with
/// every other character replaced by `_`. The name is only local to the leaf.
fn safe_file_name(name: &str) -> String {
    if is_safe_file_name(name) {
        return name.to_owned();
    }
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.starts_with(['.', '-']) {
        format!("EOS{cleaned}")
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests;
