//! `cargo xtask dist [--site FILE] [--avd DIR [--spine NAME]] [--out DIR]`:
//! the flash bundle for a site, or one per spine of an AVD project.
//!
//! Order matters. The site is read and checked first, and every file it names
//! (the leaves' configs, a local copy of their EOS image: `ztps_flash_bundle::
//! Payload`); with `--avd`, every spine's structured config and each leaf's
//! config too. So a bad site or project writes nothing. Then both static agent
//! binaries are built (release profile, musl targets). Then every bundle is
//! rendered and checked in memory: the agent config through the agent's own
//! schema, both binaries' ELF headers (right architecture, no program
//! interpreter). Only then is anything written: `<out>/flash/` (replaced as a
//! whole) and `<out>/ztps-flash-<version>.tar.gz` (written under a temporary
//! name, then renamed); with `--avd`, the same under `<out>/<spine>/`.
//!
//! The binaries' location comes from cargo's JSON messages, so a
//! `CARGO_TARGET_DIR` (or `build.target-dir`) in effect is respected.

use crate::util;
use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use ztps_flash_bundle::avd::{self, CONFIGS};
use ztps_flash_bundle::bundle::sha256_hex;
use ztps_flash_bundle::render::INSTALL_PATH;
use ztps_flash_bundle::{tarball_name, Binaries, Bundle, Mode, Payload, Site};

/// The workspace version: names the tarball and appears in the rendered files.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The default (hardware EOS userland is 32-bit) and the EOS64 target.
const TARGETS: [&str; 2] = ["i686-unknown-linux-musl", "x86_64-unknown-linux-musl"];
/// The site without `--site` or `--avd`.
const DEFAULT_SITE: &str = "examples/site.toml";

/// What `cargo xtask dist` was asked for.
pub struct DistArgs {
    /// `--site`.
    pub site: Option<PathBuf>,
    /// `--avd`.
    pub avd: Option<PathBuf>,
    /// `--spine` (only with `--avd`).
    pub spine: Option<String>,
    /// `--out`.
    pub out: PathBuf,
}

/// One bundle to build: a checked site, its files, where it goes.
struct Job {
    site: Site,
    payload: Payload,
    out: PathBuf,
}

fn read_site(path: &Path) -> Result<Site> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading the site description {}", path.display()))?;
    let site = Site::parse(&text, &path.display().to_string())
        .map_err(|e| anyhow!("{e}\n(nothing was written)"))?;
    for w in site.warnings() {
        // The leaves come from AVD: the base site's "no [[ztp.leaf]]" is expected.
        if !(w.key == "ztp.leaf" && site.ztp.leaf.is_empty()) {
            eprintln!("xtask: warning: {}: {w}", path.display());
        }
    }
    Ok(site)
}

/// Every bundle's site and files, all checked; nothing built or written yet.
fn plan(args: &DistArgs) -> Result<Vec<Job>> {
    let Some(dir) = &args.avd else {
        let path = args.site.clone().unwrap_or_else(|| DEFAULT_SITE.into());
        let site = read_site(&path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let payload =
            Payload::load(&site, base).map_err(|e| anyhow!("{e}\n(nothing was written)"))?;
        for w in &payload.warnings {
            eprintln!("xtask: warning: {w}");
        }
        return Ok(vec![Job {
            site,
            payload,
            out: args.out.clone(),
        }]);
    };
    let base = match &args.site {
        Some(path) => read_site(path)?,
        None => Site::avd_default(),
    };
    let spines = avd::load_spines(dir, args.spine.as_deref())
        .map_err(|e| anyhow!("{e}\n(nothing was written)"))?;
    let mut jobs = Vec::new();
    let mut problems = Vec::new();
    for spine in spines {
        for w in &spine.warnings {
            eprintln!("xtask: warning: {w}");
        }
        let site = match base.for_spine(&spine.hostname, spine.leaves, dir.join(CONFIGS)) {
            Ok(s) => s,
            Err(e) => bail!("{}: {e}\n(nothing was written)", spine.hostname),
        };
        // Unused configs are expected: intended/configs holds every device.
        match Payload::load(&site, Path::new(".")) {
            Ok(payload) => jobs.push(Job {
                out: args.out.join(&site.spine.hostname),
                site,
                payload,
            }),
            Err(e) => problems.push(format!("spine {}:\n{e}", spine.hostname)),
        }
    }
    if !problems.is_empty() {
        bail!("{}\n(nothing was written)", problems.join("\n"));
    }
    Ok(jobs)
}

/// Checks everything, builds both agent binaries, writes each bundle and tarball.
pub fn run(args: &DistArgs) -> Result<()> {
    let jobs = plan(args)?;

    util::ensure_targets(&TARGETS)?;
    let i686 = build_agent(TARGETS[0])?;
    let x86_64 = build_agent(TARGETS[1])?;
    let binaries = Binaries {
        i686: fs::read(&i686).with_context(|| format!("reading {}", i686.display()))?,
        x86_64: fs::read(&x86_64).with_context(|| format!("reading {}", x86_64.display()))?,
    };
    let bundles = jobs
        .into_iter()
        .map(|job| {
            ztps_flash_bundle::build(&job.site, &binaries, &job.payload, VERSION)
                .map(|bundle| (job, bundle))
                .map_err(|e| anyhow!("{e}\n(nothing was written)"))
        })
        .collect::<Result<Vec<_>>>()?;

    for (job, bundle) in &bundles {
        let flash = job.out.join("flash");
        bundle.write_to(&flash)?;
        let tarball = job.out.join(tarball_name(VERSION));
        make_tarball(&flash, bundle, &tarball)?;
        print_summary(&job.site, bundle, &flash, &tarball)?;
    }
    Ok(())
}

/// Builds `ztps-agent` in release for `triple` and returns the executable's path.
fn build_agent(triple: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("xtask: cargo build --locked --release -p ztps-agent --target {triple}");
    let output = Command::new(&cargo)
        .current_dir(util::root())
        .args([
            "build",
            "--locked",
            "--release",
            "-p",
            "ztps-agent",
            "--target",
            triple,
        ])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start {}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        bail!("building ztps-agent for {triple} failed: {}", output.status);
    }
    agent_executable(&String::from_utf8_lossy(&output.stdout))
        .ok_or_else(|| anyhow!("cargo reported no ztps-agent executable for {triple}"))
}

/// The `ztps-agent` binary's path from cargo's JSON messages.
fn agent_executable(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "ztps-agent")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// Writes `tarball` from the written bundle directory: entries in bundle order,
/// owner 0:0, gzip without a name or time stamp; `SOURCE_DATE_EPOCH`, if set,
/// fixes the file times too, for a byte-identical tarball.
fn make_tarball(flash: &Path, bundle: &Bundle, tarball: &Path) -> Result<()> {
    let name = tarball
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("bad tarball path {}", tarball.display()))?;
    let tmp = tarball.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut entries: Vec<String> = Vec::new();
    for f in bundle.files() {
        let parts: Vec<&str> = f.path.split('/').collect();
        for i in 1..parts.len() {
            let dir = parts[..i].join("/");
            if !entries.contains(&dir) {
                entries.push(dir);
            }
        }
        entries.push(f.path.clone());
    }
    let mut cmd = Command::new("tar");
    cmd.arg("--create")
        .arg("--file")
        .arg(&tmp)
        .args(["--use-compress-program", "gzip -9n"])
        .args([
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--no-recursion",
        ])
        .arg("--directory")
        .arg(flash);
    if let Some(epoch) = std::env::var_os("SOURCE_DATE_EPOCH") {
        cmd.arg(format!("--mtime=@{}", epoch.to_string_lossy()));
    }
    cmd.arg("--").args(&entries);
    if let Err(e) = util::run(&mut cmd) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, tarball)
        .with_context(|| format!("renaming {} to {}", tmp.display(), tarball.display()))
}

fn human(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / (KIB * KIB))
    }
}

fn print_summary(site: &Site, bundle: &Bundle, flash: &Path, tarball: &Path) -> Result<()> {
    let mode = match site.mode {
        Mode::SpineServed => "spine-served (ztp.serve = true)",
        Mode::Vm(_) => "ZTPServer VM",
    };
    println!(
        "ztps flash bundle {VERSION}: site {}, spine {}, {mode}",
        site.name, site.spine.hostname
    );
    println!("{}/", flash.display());
    for f in bundle.files() {
        println!(
            "  {:04o} {:>10}  {}",
            f.mode,
            human(f.contents.len() as u64),
            f.path
        );
    }
    let data = fs::read(tarball).with_context(|| format!("reading {}", tarball.display()))?;
    println!("{}  {}", tarball.display(), human(data.len() as u64));
    println!("  sha256 {}", sha256_hex(&data));
    println!("Next: {}", flash.join(INSTALL_PATH).display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_agent_binary_in_cargo_messages() {
        let msgs = [
            r#"{"reason":"compiler-artifact","target":{"name":"ztps-agent","kind":["lib"]},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"ztps-dhcp","kind":["lib"]},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"ztps-agent","kind":["bin"]},"executable":"/t/i686-unknown-linux-musl/release/ztps-agent"}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        assert_eq!(
            agent_executable(&msgs),
            Some(PathBuf::from(
                "/t/i686-unknown-linux-musl/release/ztps-agent"
            ))
        );
        assert_eq!(
            agent_executable(&msgs.lines().take(2).collect::<Vec<_>>().join("\n")),
            None
        );
    }

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn a_spine_served_site_plans_one_bundle_with_its_leaf_configs() {
        let jobs = plan(&DistArgs {
            site: Some(root().join("examples/site-ztp.toml")),
            avd: None,
            spine: None,
            out: "out".into(),
        })
        .unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].out, PathBuf::from("out"));
        assert_eq!(jobs[0].site.mode, Mode::SpineServed);
        let names: Vec<&str> = jobs[0]
            .payload
            .configs
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["leaf1", "leaf2", "leaf3"]);
    }

    #[test]
    fn avd_plans_one_bundle_per_spine_under_its_name() {
        let avd = root().join("flash-bundle/tests/avd/v3");
        let args = |spine: Option<&str>, site: Option<PathBuf>| DistArgs {
            site,
            avd: Some(avd.clone()),
            spine: spine.map(str::to_string),
            out: "out".into(),
        };
        let jobs = plan(&args(None, None)).unwrap();
        let outs: Vec<&Path> = jobs.iter().map(|j| j.out.as_path()).collect();
        assert_eq!(
            outs,
            [Path::new("out/dc1-spine1"), Path::new("out/dc1-spine2")]
        );
        assert!(jobs.iter().all(|j| j.payload.configs.len() == 2));
        let jobs = plan(&args(Some("dc1-spine2"), None)).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].site.spine.hostname, "dc1-spine2");
        // A VM site cannot take AVD's leaves.
        let e = plan(&args(None, Some(root().join("examples/site.toml"))))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("ztp.serve = true") && e.contains("nothing was written"),
            "{e}"
        );
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 * 1024 * 1024 + 1), "3.0 MiB");
    }
}
