//! Project automation, in Rust so that nothing but cargo is needed:
//! `cargo xtask dist | lab | bench | ci`.

mod bench;
mod dist;
mod lab;
mod util;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ztps-agent project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the flash bundle: static binaries, config, libvirt XML, startup-config.
    Dist {
        /// Site description (see examples/site.toml).
        #[arg(long, default_value = "examples/site.toml")]
        site: PathBuf,
        /// Output directory.
        #[arg(long, default_value = "dist")]
        out: PathBuf,
    },
    /// Run a simulated spine and leaves in network namespaces and show them provisioned.
    Lab(lab::LabArgs),
    /// Benchmark ztps-agent against ISC dhcpd, Kea and dnsmasq; writes BENCHMARKS.md.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dist { site, out } => dist::run(&site, &out),
        Command::Lab(args) => lab::run_lab(args),
        Command::Bench(args) => bench::run(args),
    }
}
