//! Project automation, in Rust so that nothing but cargo is needed:
//! `cargo xtask test | deps | msrv | dist | lab | bench`
//! (lab and bench are binaries of the `ztps-bench` crate; xtask installs what
//! they need and runs them).

mod deps;
mod dist;
mod msrv;
mod test;
mod tools;
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
    /// Check that the workspace's rust-version is exactly what the lock file
    /// needs, and print it.
    Msrv,
    /// Build the flash bundle: static binaries, config, libvirt XML, startup-config.
    Dist {
        /// Site description (examples/site-ztp.toml, examples/site.toml).
        /// Default: examples/site.toml; with --avd, a spine-served site with
        /// every key at its default.
        #[arg(long)]
        site: Option<PathBuf>,
        /// An AVD project: one spine-served bundle per spine, its leaves and
        /// their configs from DIR/intended/{structured_configs,configs}.
        #[arg(long, value_name = "DIR")]
        avd: Option<PathBuf>,
        /// With --avd: only this spine.
        #[arg(long, requires = "avd", value_name = "NAME")]
        spine: Option<String>,
        /// Output directory (with --avd, one sub-directory per spine).
        #[arg(long, default_value = "dist")]
        out: PathBuf,
    },
    /// Run a simulated spine and leaves in network namespaces and show them
    /// provisioned (`cargo xtask lab --help` for its options).
    #[command(disable_help_flag = true)]
    Lab {
        /// Passed through to the `lab` binary of `ztps-bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Benchmark ztps-agent against ISC dhcpd, Kea and dnsmasq; writes
    /// BENCHMARKS.md (`cargo xtask bench --help` for its options).
    #[command(disable_help_flag = true)]
    Bench {
        /// Passed through to the `bench` binary of `ztps-bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Test { args } => std::process::exit(test::run(&args)?),
        Command::Deps => test::install(),
        Command::Msrv => msrv::run(),
        Command::Dist {
            site,
            avd,
            spine,
            out,
        } => dist::run(&dist::DistArgs {
            site,
            avd,
            spine,
            out,
        }),
        Command::Lab { args } => std::process::exit(tools::run(tools::Tool::Lab, &args)?),
        Command::Bench { args } => std::process::exit(tools::run(tools::Tool::Bench, &args)?),
    }
}
