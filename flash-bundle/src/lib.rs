//! Renders every file that goes to `/mnt/flash` of a spine of a site: the agent
//! config, the leaves' configs (spine-served mode) or the libvirt domain of the
//! ZTPServer VM (VM mode), a startup-config and a snippet to merge,
//! `boot-config`, `fullrecover`, install notes and checksums.
//!
//! The flow is: [`Site::parse`] reads and checks the site description (nothing is
//! rendered from a site that failed), the pure functions in [`render`] turn a
//! [`Site`] into text, and [`bundle::build`] puts them together with the two
//! static agent binaries into a [`Bundle`] that [`Bundle::write_to`] writes.
//!
//! **Invariants.** The rendered `ztps/ztps.toml` is checked with the agent's own
//! parser (`ztps_config::Config::parse`) before a bundle exists, so a bundle
//! never carries a config the agent rejects. This crate depends on the schema
//! crate `ztps-config` only, never on the agent and its on-box stack. Rendering is deterministic: the same
//! site, version and binaries give byte-identical files (the golden tests rely on
//! it). Nothing here touches the file system except [`Payload::load`], which
//! reads the files a site names (the leaves' configs, a local image copy), and
//! [`Bundle::write_to`].

#![warn(missing_docs)]

pub mod avd;
pub mod bundle;
pub mod elf;
pub mod payload;
pub mod render;
pub mod site;

pub use bundle::{build, Binaries, Bundle, BundleError, BundleFile};
pub use payload::{Payload, PayloadError};
pub use site::{Mode, Site, SiteError, SiteIssue, Warning};

/// Name of the tarball `cargo xtask dist` makes for a version, e.g.
/// `ztps-flash-0.1.0.tar.gz` (INSTALL.txt refers to it by this name).
pub fn tarball_name(version: &str) -> String {
    format!("ztps-flash-{version}.tar.gz")
}
