//! The command line, with clap.

use clap::Parser;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The identity `show version` reports.
#[derive(Debug, Clone, clap::Args)]
pub struct Identity {
    /// `modelName`.
    #[arg(long = "model", default_value = "vEOS-lab")]
    pub model: String,
    /// `serialNumber`.
    #[arg(long = "serial", default_value = "SIM0000000001")]
    pub serial: String,
    /// `systemMacAddress`.
    #[arg(long = "system-mac", default_value = "00:1c:73:00:00:01")]
    pub system_mac: String,
    /// `architecture` (i686 on hardware, x86_64 on EOS64).
    #[arg(long = "architecture", default_value = "i686")]
    pub architecture: String,
    /// `version`.
    #[arg(long = "version", default_value = "4.31.1F")]
    pub version: String,
    /// `hardwareRevision`.
    #[arg(long = "hardware-revision", default_value = "")]
    pub hardware_revision: String,
}

/// A stand-in for EOS's eAPI that answers from this namespace's kernel state.
#[derive(Debug, Parser)]
#[command(name = "eos-sim", disable_version_flag = true)]
pub struct Options {
    /// Serve eAPI over HTTP on ADDR:PORT (port 0: a free one, see --ready-file).
    #[arg(long, value_name = "ADDR:PORT", required_unless_present = "unix")]
    pub http: Option<SocketAddr>,
    /// Serve eAPI on this unix socket (EOS's `protocol unix-socket`).
    #[arg(long, value_name = "PATH")]
    pub unix: Option<PathBuf>,
    /// Fault control file, re-read on every request and every 100 ms.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Append one JSON line per request here.
    #[arg(long, value_name = "PATH")]
    pub request_log: Option<PathBuf>,
    /// Write `{"http": ..., "unix": ..., "pid": ...}` here once listening.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// LLDP neighbours, `{"Ethernet3": {"device": ..., "port": ...}}`, re-read on
    /// every request; a missing file means no neighbours.
    #[arg(long, value_name = "PATH")]
    pub lldp_file: Option<PathBuf>,
    /// Answer 502 (as EOS's nginx does while CommandApi starts) for this long.
    #[arg(long = "boot-502", value_name = "SECS", value_parser = parse_secs, default_value = "0")]
    pub boot_502: Duration,
    /// Require HTTP Basic authentication with these credentials.
    #[arg(long, value_name = "USER:PASSWORD", value_parser = parse_credentials)]
    pub credentials: Option<Credentials>,
    /// An unnumbered interface and the interface it borrows its address from.
    #[arg(long = "unnumbered", value_name = "EOSNAME=SOURCE", value_parser = parse_unnumbered)]
    unnumbered_pairs: Vec<(String, String)>,
    #[command(flatten)]
    pub identity: Identity,
}

impl Options {
    /// EOS name -> the interface it borrows its address from.
    pub fn unnumbered(&self) -> BTreeMap<String, String> {
        self.unnumbered_pairs.iter().cloned().collect()
    }
}

/// `USER:PASSWORD`, kept as the `Authorization` header value it must match.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `Basic <base64(USER:PASSWORD)>`.
    pub authorization: String,
}

fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn parse_credentials(text: &str) -> Result<Credentials, String> {
    use base64::Engine as _;
    if !text.contains(':') {
        return Err("expected USER:PASSWORD".into());
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    Ok(Credentials {
        authorization: format!("Basic {encoded}"),
    })
}

fn parse_unnumbered(text: &str) -> Result<(String, String), String> {
    let (port, source) = text
        .split_once('=')
        .ok_or("expected EOSNAME=SOURCE".to_owned())?;
    Ok((port.to_owned(), source.to_owned()))
}
