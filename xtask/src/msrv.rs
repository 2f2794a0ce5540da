//! `cargo xtask msrv`: checks that the workspace's `rust-version` is exactly
//! what the lock file needs (the highest `rust-version` of a locked
//! dependency), and prints it for CI, which then builds with that toolchain.

use crate::util::root;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::process::Command;

/// A Rust version, `major.minor[.patch]`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RustVersion([u32; 3]);

impl RustVersion {
    fn parse(text: &str) -> Option<RustVersion> {
        let mut parts = [0u32; 3];
        let mut fields = text.split('.');
        for part in &mut parts {
            match fields.next() {
                Some(field) => *part = field.parse().ok()?,
                None => break,
            }
        }
        fields.next().is_none().then_some(RustVersion(parts))
    }
}

impl std::fmt::Display for RustVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            [major, minor, 0] => write!(f, "{major}.{minor}"),
            [major, minor, patch] => write!(f, "{major}.{minor}.{patch}"),
        }
    }
}

/// Checks the declared `rust-version` against the lock file and prints it.
pub fn run() -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(root())
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata --locked failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let metadata: Value = serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    let version = check(&metadata)?;
    println!("{version}");
    Ok(())
}

/// The declared version, if every workspace member declares the same one and it
/// equals the highest a locked dependency needs.
fn check(metadata: &Value) -> Result<RustVersion> {
    let packages = metadata["packages"].as_array().context("no packages")?;
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .context("no workspace members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let version_of = |p: &Value| p["rust_version"].as_str().and_then(RustVersion::parse);
    let mut declared = None;
    let mut needed: Option<(RustVersion, String)> = None;
    for package in packages {
        let name = format!(
            "{} {}",
            package["name"].as_str().unwrap_or("?"),
            package["version"].as_str().unwrap_or("?")
        );
        if members.contains(&package["id"].as_str().unwrap_or("")) {
            let Some(version) = version_of(package) else {
                bail!("workspace member {name} declares no rust-version");
            };
            match declared {
                Some(d) if d != version => {
                    bail!("workspace members declare different rust-versions ({d}, {version})")
                }
                _ => declared = Some(version),
            }
        } else if let Some(version) = version_of(package) {
            if needed.as_ref().is_none_or(|(n, _)| version > *n) {
                needed = Some((version, name));
            }
        }
    }
    let declared = declared.context("no workspace members")?;
    match needed {
        Some((needed, by)) if needed != declared => bail!(
            "Cargo.toml declares rust-version {declared}, but the lock file needs {needed} \
             (highest: {by}); set workspace.package.rust-version = \"{needed}\""
        ),
        _ => Ok(declared),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metadata(ours: &str, deps: &[(&str, Option<&str>)]) -> Value {
        let mut packages =
            vec![json!({"id": "ours", "name": "ours", "version": "0.1.0", "rust_version": ours})];
        for (name, rv) in deps {
            packages
                .push(json!({"id": name, "name": name, "version": "1.0.0", "rust_version": rv}));
        }
        json!({"packages": packages, "workspace_members": ["ours"]})
    }

    #[test]
    fn the_declared_version_must_equal_the_highest_a_dependency_needs() {
        let deps = [("a", Some("1.70")), ("b", Some("1.88")), ("c", None)];
        assert_eq!(check(&metadata("1.88", &deps)).unwrap().to_string(), "1.88");
        let low = check(&metadata("1.85", &deps)).unwrap_err().to_string();
        assert!(low.contains("needs 1.88 (highest: b 1.0.0)"), "{low}");
        assert!(check(&metadata("1.90", &deps)).is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        let v = |s| RustVersion::parse(s).unwrap();
        assert!(v("1.9") < v("1.10"));
        assert!(v("1.88") < v("1.88.1"));
        assert_eq!(v("1.88.0"), v("1.88"));
        assert!(RustVersion::parse("1.x").is_none());
    }
}
