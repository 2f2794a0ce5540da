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

/// A config whose eAPI timeout (30 s) is longer than eos-sim's delay (20 s),
/// so only a loop that does not await the poll can react in time.
fn with_long_eapi_timeout(spine: &Spine) {
    let cfg = std::fs::read_to_string(spine.config_path()).unwrap();
    assert!(cfg.contains("\ntimeout = \"2s\"\n"), "{cfg}");
    std::fs::write(
        spine.config_path(),
        cfg.replace("\ntimeout = \"2s\"\n", "\ntimeout = \"30s\"\n"),
    )
    .unwrap();
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
