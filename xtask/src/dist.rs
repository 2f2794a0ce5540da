//! `cargo xtask dist` (being written).

use anyhow::{bail, Result};

pub fn run(_site: &std::path::Path, _out: &std::path::Path) -> Result<()> {
    bail!("cargo xtask dist is not written yet")
}
