//! Project automation, in Rust so that nothing but cargo is needed:
//! `cargo xtask test | deps | dist | lab | bench`.

mod bench;
mod deps;
mod dist;
mod lab;
mod test;
mod util;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ztps-agent project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the Debian packages and rustup targets the tests use and this
    /// machine lacks, then run `cargo test --workspace ARGS...`.
    Test {
        /// Passed through to `cargo test --workspace` (test filters, `--release`,
        /// `-- --test-threads 1`, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Install the Debian packages and rustup targets the tests use and this
    /// machine lacks (what `test` does before running the tests).
    Deps,
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
        Command::Test { args } => std::process::exit(test::run(&args)?),
        Command::Deps => test::install(),
        Command::Dist { site, out } => dist::run(&site, &out),
        Command::Lab(args) => lab::run_lab(args),
        Command::Bench(args) => bench::run(args),
    }
}
