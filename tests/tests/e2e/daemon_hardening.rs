//! The daemon under conditions that used to stall it: a slow eAPI, a stalled
//! syslog, hostile client fields, an odd status file. Each test fails on the
//! code before the fix (see the comment on each).

use crate::agent::{vendor, Spine};
use std::time::{Duration, Instant};
use ztps_tests::clients::Client;
use ztps_tests::wait_until;

/// Sets eos-sim to answer every request after `ms` milliseconds.
fn slow_eapi(spine: &Spine, ms: u64) {
    std::fs::write(
        spine.path("control.json"),
        format!(r#"{{"mode":"slow","delay_ms":{ms}}}"#),
    )
    .unwrap();
}

/// Replaces `from` (which must be there) by `to` in the spine's config.
fn edit_config(spine: &Spine, from: &str, to: &str) {
    let cfg = std::fs::read_to_string(spine.config_path()).unwrap();
    assert!(cfg.contains(from), "{from:?} not in {cfg}");
    std::fs::write(spine.config_path(), cfg.replace(from, to)).unwrap();
}

/// A config whose eAPI timeout (30 s) is longer than eos-sim's delay (20 s),
/// so only a loop that does not await the poll can react in time.
fn with_long_eapi_timeout(spine: &Spine) {
    edit_config(spine, "\ntimeout = \"2s\"\n", "\ntimeout = \"30s\"\n");
}

// Before: the poll was awaited inside the loop's select!, so SIGHUP and
// SIGTERM waited for the 20 s answer.
#[test]
fn sighup_and_sigterm_during_a_slow_eapi_answer_are_acted_on_at_once() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(1, true);
    with_long_eapi_timeout(&spine);
    spine.start_daemon();
    spine
        .client(Client::Udhcpc, &leaf, &vendor("JPE1"))
        .expect("served before eAPI slows down");
    slow_eapi(&spine, 20_000);
    // poll_interval is 1 s: after 2.5 s a poll is waiting on the slow answer.
    std::thread::sleep(Duration::from_millis(2500));
    let daemon = spine.daemon.as_ref().unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(3), || spine
            .log()
            .contains("config reloaded")),
        "SIGHUP not handled during a slow eAPI poll:\n{}",
        spine.log()
    );
    // Still serving meanwhile.
    spine
        .client(Client::Dhclient, &leaf, &vendor("JPE1"))
        .expect("served during a slow eAPI poll");
    let daemon = spine.daemon.as_mut().unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let sent = Instant::now();
    let status = daemon.wait_exit(Duration::from_secs(3));
    assert!(
        status.is_some(),
        "the daemon did not stop within 3 s of SIGTERM during a slow eAPI answer:\n{}",
        spine.log()
    );
    assert!(status.unwrap().success(), "{}", spine.log());
    let log = spine.log();
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    assert!(log.contains("stopped; 1 lease(s) on storage"), "{log}");
    eprintln!("stopped {:?} after SIGTERM", sent.elapsed());
}

/// Turns syslog on in the spine's config (the socket comes from the environment).
fn with_syslog(spine: &Spine) {
    edit_config(spine, "[log]\nsyslog = false\n", "[log]\nsyslog = true\n");
}

// Before: a blocking send to /dev/log; with the reader stopped the daemon
// froze on its first log lines (no DHCP, no SIGTERM).
#[test]
fn a_syslog_that_is_never_read_does_not_stop_serving_or_shutdown() {
    let mut spine = Spine::new();
    let leaf = spine.leaf(1, true);
    with_syslog(&spine);
    // Stands in for /dev/log: bound, never read, so its queue fills at once.
    let socket = spine.path("devlog");
    let syslog = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    // Fill its queue, as a stopped syslogd's would be.
    let filler = std::os::unix::net::UnixDatagram::unbound().unwrap();
    filler.connect(&socket).unwrap();
    filler.set_nonblocking(true).unwrap();
    let mut queued = 0;
    while queued < 100_000 && filler.send(b"<13>old line").is_ok() {
        queued += 1;
    }
    assert!(queued < 100_000, "the stand-in for /dev/log never filled");
    spine.start_daemon_with_env(&[("ZTPS_SYSLOG_SOCKET", &socket)]);
    let lease = spine
        .client(Client::Udhcpc, &leaf, &vendor("JPE1"))
        .unwrap_or_else(|| panic!("not served with syslog stalled:\n{}", spine.log()));
    assert_eq!(lease.address.to_string(), "10.0.1.1");
    assert!(
        wait_until(Duration::from_secs(5), || spine.status()
            ["log_lines_dropped"]
            .as_u64()
            .unwrap_or(0)
            > 0),
        "status does not show dropped lines: {:#}",
        spine.status()
    );
    let cfg = spine.config_path();
    let table = spine.agent(&["status", "--config", cfg.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.contains("line(s) dropped"), "{table}");
    // The reader comes back: the next lines go through, and the drop count
    // is said once.
    syslog.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    while syslog.recv(&mut buf).is_ok() {}
    spine.set_eapi("garbage");
    let mut lines = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            while let Ok(n) = syslog.recv(&mut buf) {
                lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            lines.iter().any(|l| l.contains("not answering"))
        }),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("line(s) dropped while")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.starts_with("<13")), "{lines:?}");
    // Stalled again, then SIGTERM: stops at once.
    let daemon = spine.daemon.as_mut().unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(3));
    assert!(status.is_some_and(|s| s.success()), "{}", spine.log());
}

// Before: the daemon kept every capability root has.
#[test]
fn the_running_daemon_keeps_only_its_three_capabilities() {
    let mut spine = Spine::new();
    let _leaf = spine.leaf(1, true);
    spine.start_daemon();
    let pid = spine.daemon.as_ref().unwrap().id();
    // CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13).
    let want = (1u64 << 10) | (1 << 12) | (1 << 13);
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let mut seen = 0;
    for task in tasks {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        for field in ["CapEff", "CapPrm", "CapBnd"] {
            let value = status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{field}:\t")))
                .unwrap_or_else(|| panic!("no {field} in {status}"));
            let value = u64::from_str_radix(value.trim(), 16).unwrap();
            assert_eq!(value, want, "{field} {value:#x} in thread of {pid}");
        }
        let inh = status.lines().find(|l| l.starts_with("CapInh:")).unwrap();
        assert!(inh.ends_with("0000000000000000"), "{inh}");
        seen += 1;
    }
    assert!(seen >= 2, "the daemon and its committer thread: {seen}");
    assert!(spine.log().contains("dropped"), "{}", spine.log());
    // And it still serves, renews and writes its files without the rest.
    let lease = spine
        .client(Client::Dhclient, &_leaf, &vendor("JPE1"))
        .expect("served with the reduced set");
    assert_eq!(lease.address.to_string(), "10.0.1.1");
}

// Before: option 60 went raw into the status table and the log.
#[test]
fn hostile_option_60_is_escaped_in_the_table_and_the_log() {
    let mut spine = Spine::new();
    let arista = spine.leaf(1, true);
    let other = spine.leaf(2, true);
    spine.start_daemon();
    spine
        .client(
            Client::Udhcpc,
            &arista,
            "Arista;DCS\x1b[2J\x1b]0;owned\x07;01;JPE\nEthernet9  et9  yes",
        )
        .expect("an Arista is served whatever its model says");
    assert_eq!(
        spine.client(
            Client::Udhcpc,
            &other,
            "MSFT\u{202E}5.0\u{2028}Ethernet8  et8"
        ),
        None
    );
    assert!(
        wait_until(Duration::from_secs(5), || spine.link_status("Ethernet2")
            ["last_event"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("ignored"))),
        "{:#}",
        spine.status()
    );
    // Per-link counters say what the log no longer says per packet.
    let e1 = spine.link_status("Ethernet1");
    assert!(e1["counters"]["offers"].as_u64() >= Some(1), "{e1:#}");
    assert!(e1["counters"]["acks"].as_u64() >= Some(1), "{e1:#}");
    let e2 = spine.link_status("Ethernet2");
    assert!(e2["counters"]["dropped"].as_u64() >= Some(1), "{e2:#}");
    assert_eq!(e2["counters"]["acks"], 0, "{e2:#}");
    let cfg = spine.config_path();
    let out = spine.agent(&["status", "--config", cfg.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("OFR/ACK/NAK/DROP"), "{table}");
    for bad in ['\x1b', '\x07', '\u{202E}', '\u{2028}'] {
        assert!(!table.contains(bad), "{bad:?} reached the table: {table:?}");
        assert!(!spine.log().contains(bad), "{bad:?} reached the log");
    }
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("Ethernet"))
        .collect();
    assert_eq!(rows.len(), 2, "a forged row: {table}");
    assert!(table.contains("\\u{202e}"), "{table}");
}
