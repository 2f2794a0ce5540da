//! ISC perfdhcp: running it in the client namespace and reading its report.
//!
//! perfdhcp acts as a relay (giaddr = its address, source port 67) and runs
//! 4-way exchanges (DISCOVER-OFFER, REQUEST-ACK) at a fixed rate for a period,
//! then waits `-W` for late replies. Its report has one block per exchange type
//! with `sent packets`, `received packets`, `drops` and `avg/max delay`; a block
//! with no samples says `n/a` (and perfdhcp 2.2 prints a stray
//! `avg delay: min delay: n/a`), which the parser takes as "no value".

use super::proc::run_logged;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;
use ztps_tests::netns::Netns;

/// Option 60 perfdhcp sends: ours answers only `Arista...` vendor classes.
pub const VENDOR_CLASS: &str = "Arista;DCS-7050SX3-48YC8;11.00;JPEBENCH001";

/// How many distinct clients (MACs) perfdhcp draws from: below the 65,279
/// addresses of the pool, so no server runs out.
pub const CLIENTS: u32 = 50_000;

/// Exit wait after the period (µs): as long as perfdhcp's 1 s drop time, so a
/// reply still in flight at the end is counted.
pub const EXIT_WAIT_US: u32 = 1_000_000;

/// One exchange type's figures.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// Requests sent.
    pub sent: u64,
    /// Replies received.
    pub received: u64,
    /// Requests perfdhcp counted as dropped (no reply within 1 s).
    pub drops: u64,
    /// Average delay, ms.
    pub avg_ms: Option<f64>,
    /// Maximum delay, ms.
    pub max_ms: Option<f64>,
}

/// A perfdhcp report.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// DISCOVER -> OFFER.
    pub discover_offer: Exchange,
    /// REQUEST -> ACK.
    pub request_ack: Exchange,
}

impl Report {
    /// Fraction of DISCOVERs that did not end in an ACK (0..=1).
    pub fn loss(&self) -> f64 {
        let sent = self.discover_offer.sent;
        if sent == 0 {
            return 1.0;
        }
        1.0 - (self.request_ack.received.min(sent) as f64 / sent as f64)
    }
}

/// Parses perfdhcp's final report.
pub fn parse(text: &str) -> Result<Report> {
    let mut r = Report::default();
    let mut section: Option<bool> = None; // Some(true) = DISCOVER-OFFER
    let mut seen = 0;
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("***Statistics for:") {
            section = if rest.contains("DISCOVER-OFFER") {
                seen += 1;
                Some(true)
            } else if rest.contains("REQUEST-ACK") {
                seen += 1;
                Some(false)
            } else {
                None
            };
            continue;
        }
        let Some(do_section) = section else { continue };
        let ex = if do_section {
            &mut r.discover_offer
        } else {
            &mut r.request_ack
        };
        let Some((key, value)) = l.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if value.contains(':') {
            continue; // "avg delay: min delay: n/a"
        }
        let first = value.split_whitespace().next().unwrap_or("");
        match key.trim() {
            "sent packets" => ex.sent = first.parse().unwrap_or(0),
            "received packets" => ex.received = first.parse().unwrap_or(0),
            "drops" => ex.drops = first.parse().unwrap_or(0),
            "avg delay" => ex.avg_ms = first.parse().ok(),
            "max delay" => ex.max_ms = first.parse().ok(),
            _ => {}
        }
    }
    if seen == 0 {
        bail!("no statistics in perfdhcp's output:\n{text}");
    }
    Ok(r)
}

/// Lower-case hex of `s`, as perfdhcp's `-o60,HEX` wants it.
pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Runs perfdhcp in `ns` on `ifname` against `server` at `rate` exchanges per
/// second for `period`, output to `out`. Returns the command line and the report.
pub fn run(
    ns: &Netns,
    ifname: &str,
    server: &str,
    rate: u32,
    period: Duration,
    out: &Path,
) -> Result<(String, Report)> {
    let mut cmd = ns.cmd("perfdhcp");
    cmd.args(["-4", "-l", ifname])
        .args(["-r", &rate.to_string()])
        .args(["-p", &format!("{}", period.as_secs_f64())])
        .args(["-R", &CLIENTS.to_string()])
        .args(["-W", &EXIT_WAIT_US.to_string()])
        .arg(format!("-o60,{}", hex(VENDOR_CLASS)))
        .arg(server);
    let line = super::proc::show_cmd(&cmd);
    let timeout = period + Duration::from_secs(30);
    let (status, text) = run_logged("perfdhcp", cmd, out, timeout)?;
    if status.is_none() {
        bail!("perfdhcp did not finish within {timeout:?}: {line}\n{text}");
    }
    let report = parse(&text).map_err(|e| anyhow::anyhow!("{line}: {e}"))?;
    Ok((line, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "Running: perfdhcp -4 -l pf0 -r 200 -p 3
Scenario: basic.
Multi-thread mode enabled.
***Rate statistics***
Rate: 170.95 4-way exchanges/second, expected rate: 200

***Malformed Packets***
Malformed packets: 0
***Statistics for: DISCOVER-OFFER***
sent packets: 599
received packets: 597
drops: 2
drops ratio: 0.3 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 0.064 ms
avg delay: 0.175 ms
max delay: 6.986 ms
std deviation: 0.524 ms
collected packets: 0

***Statistics for: REQUEST-ACK***
sent packets: 597
received packets: 590
drops: 7
drops ratio: 1.1 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 0.194 ms
avg delay: 0.528 ms
max delay: 10.167 ms
std deviation: 0.790 ms
collected packets: 0
";

    const SILENT: &str = "***Statistics for: DISCOVER-OFFER***
sent packets: 399
received packets: 0
drops: 399
drops ratio: 100 %
orphans: 0

avg delay: min delay: n/a
avg delay: n/a
max delay: n/a
std deviation: n/a
collected packets: 0

***Statistics for: REQUEST-ACK***
sent packets: 0
received packets: 0
drops: 0
avg delay: min delay: n/a
avg delay: n/a
max delay: n/a
";

    #[test]
    fn a_full_report_is_read() {
        let r = parse(GOOD).unwrap();
        assert_eq!(
            r.discover_offer,
            Exchange {
                sent: 599,
                received: 597,
                drops: 2,
                avg_ms: Some(0.175),
                max_ms: Some(6.986)
            }
        );
        assert_eq!(r.request_ack.received, 590);
        assert_eq!(r.request_ack.max_ms, Some(10.167));
        assert!((r.loss() - 9.0 / 599.0).abs() < 1e-9);
    }

    #[test]
    fn a_server_that_never_answers_has_no_delays_and_full_loss() {
        let r = parse(SILENT).unwrap();
        assert_eq!(r.discover_offer.drops, 399);
        assert_eq!(r.discover_offer.avg_ms, None);
        assert_eq!(r.request_ack.max_ms, None);
        assert_eq!(r.loss(), 1.0);
    }

    #[test]
    fn output_without_statistics_is_an_error() {
        assert!(parse("perfdhcp: failed to open socket").is_err());
    }

    #[test]
    fn the_vendor_class_is_hex() {
        assert_eq!(hex("Ari"), "417269");
    }
}
