//! `ztps-agent`: the command line. See the crate docs of `ztps_agent`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use ztps_agent::config::{Config, DEFAULT_PATH};
use ztps_agent::{boot, daemon, logging, status};

#[derive(Parser)]
#[command(
    name = "ztps-agent",
    version,
    about = "Zero Touch Provisioning for leaf switches, from the spine: DHCP on the leaf \
             links, the ZTPServer VM's bridge, status"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DHCP to leaves in ZTP (started by `daemon ztps`; runs until stopped).
    Daemon {
        /// Config file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Once per boot (from `event-handler ztps`): wait for EOS, set up the VM bridge and
    /// forwarding, restart the VM.
    Boot {
        /// Config file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
        /// Say what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what the running daemon sees and serves.
    Status {
        /// Config file (for `state.dir`).
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check a config file; exit status 1 if it has errors.
    CheckConfig {
        /// Config file.
        #[arg(default_value = DEFAULT_PATH)]
        path: PathBuf,
    },
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("{e}");
        eprintln!(
            "ztps-agent: {}: invalid config; nothing started",
            path.display()
        );
        ExitCode::from(2)
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { path } => match Config::load(&path) {
            Ok(_) => {
                println!("{}: ok", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Daemon { config } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            logging::init(&cfg.log, true);
            match runtime().block_on(daemon::run(&config, cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("daemon stopped: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Boot { config, dry_run } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if dry_run {
                logging::init_quiet();
                print!("{}", runtime().block_on(boot::dry_run(&cfg)));
                return ExitCode::SUCCESS;
            }
            logging::init(&cfg.log, true);
            let report = runtime().block_on(boot::run(&cfg));
            print!("{report}");
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Status { config, json } => {
            logging::init_quiet();
            // The state dir comes from the config; without a readable config,
            // fall back to the default so status still works for the operator.
            let dir = Config::load(&config)
                .map(|c| c.state.dir)
                .unwrap_or_else(|e| {
                    eprintln!("warning: {e}\nusing the default state dir");
                    PathBuf::from(ztps_agent::config::defaults::STATE_DIR)
                });
            let now = ztps_dhcp::service::unix_now();
            let (s, code) = match status::read(&dir, now) {
                Ok(s) => (s, ExitCode::SUCCESS),
                Err(status::StatusError::Stale { status, .. }) if json => {
                    eprintln!("ztps-agent: the daemon is not running; last status follows");
                    (*status, ExitCode::from(3))
                }
                Err(e @ status::StatusError::Stale { .. }) => {
                    eprintln!("{e}");
                    let status::StatusError::Stale { status, .. } = e else {
                        unreachable!()
                    };
                    (*status, ExitCode::from(3))
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(3);
                }
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&s).expect("status serializes")
                );
            } else {
                print!("{}", status::render_table(&s, now));
            }
            code
        }
    }
}
