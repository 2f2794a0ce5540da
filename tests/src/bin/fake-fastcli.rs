//! fake-fastcli: stands in for EOS's `FastCli -p 15 -c "<commands>"`.
//!
//! Every run appends one JSON line `{"pid": N, "privilege": 15, "commands": "a\nb"}`
//! to the file named by `FAKE_FASTCLI_LOG` (if set). `FAKE_FASTCLI_MODE` picks the
//! behaviour:
//! - `ok` (default): prints `FAKE_FASTCLI_OUTPUT` if set, else nothing; exit 0.
//! - `invalid`: prints `% Invalid input (at token 1: 'foo')` on stdout and exits 0,
//!   as EOS does.
//! - `fail`: a message on stderr, exit 1.
//! - `hang`: sleeps an hour, so the caller's timeout fires.
//! - `fail-times:N`: `fail` for the first N runs, then `ok`; runs are counted in
//!   `<FAKE_FASTCLI_LOG>.count`.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (privilege, commands) = match args.as_slice() {
        [p, privilege, c, commands] if p == "-p" && c == "-c" => match privilege.parse::<u8>() {
            Ok(privilege) => (privilege, commands.clone()),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    let log = std::env::var_os("FAKE_FASTCLI_LOG");
    if let Some(log) = &log {
        let line = serde_json::json!({"pid": std::process::id(), "privilege": privilege, "commands": commands});
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(e) = written {
            eprintln!("fake-fastcli: cannot write {}: {e}", log.to_string_lossy());
            return ExitCode::from(3);
        }
    }
    let mode = std::env::var("FAKE_FASTCLI_MODE").unwrap_or_else(|_| "ok".to_owned());
    let mode = match mode.strip_prefix("fail-times:") {
        Some(times) => {
            let Ok(times) = times.parse::<u64>() else {
                return bad_mode(&mode);
            };
            let Some(log) = &log else {
                eprintln!("fake-fastcli: fail-times needs FAKE_FASTCLI_LOG to count runs");
                return ExitCode::from(3);
            };
            let counter = format!("{}.count", log.to_string_lossy());
            let runs: u64 = std::fs::read_to_string(&counter)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            if let Err(e) = std::fs::write(&counter, (runs + 1).to_string()) {
                eprintln!("fake-fastcli: cannot write {counter}: {e}");
                return ExitCode::from(3);
            }
            if runs < times { "fail" } else { "ok" }.to_owned()
        }
        None => mode,
    };
    match mode.as_str() {
        "ok" => {
            if let Ok(output) = std::env::var("FAKE_FASTCLI_OUTPUT") {
                println!("{output}");
            }
            ExitCode::SUCCESS
        }
        "invalid" => {
            println!("% Invalid input (at token 1: 'foo')");
            ExitCode::SUCCESS
        }
        "fail" => {
            eprintln!("fake-fastcli: failed to connect to the CLI server (simulated failure)");
            ExitCode::from(1)
        }
        "hang" => {
            std::thread::sleep(Duration::from_secs(3600));
            ExitCode::SUCCESS
        }
        _ => bad_mode(&mode),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: fake-fastcli -p PRIVILEGE -c COMMANDS");
    ExitCode::from(2)
}

fn bad_mode(mode: &str) -> ExitCode {
    eprintln!(
        "fake-fastcli: unknown FAKE_FASTCLI_MODE {mode:?} (ok, invalid, fail, hang, fail-times:N)"
    );
    ExitCode::from(2)
}
