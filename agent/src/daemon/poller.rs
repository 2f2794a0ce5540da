//! The eAPI poller: its own task, so a slow or hung EOS never holds up the
//! reconcile loop (signals, netlink events and status are handled meanwhile).
//!
//! It asks `show interfaces status connected` every `poll_interval` (with
//! capped backoff while EOS fails), and `show lldp neighbors` after each
//! interface poll while the loop wants LLDP. It sends what it got to the loop
//! as [`DaemonInput::Eapi`] and [`DaemonInput::Lldp`]; it decides nothing.
//!
//! The loop steers it through a [`PollerControl`]: `poll_now` (a `Notify`, so a
//! burst of netlink events coalesces into one early poll) and the settings (a
//! `watch`, so the poller always sees the latest client, interval and LLDP wish,
//! and the loop never waits on the poller).

use super::DaemonInput;
use crate::config::Config;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use ztps_eapi::{Backoff, Credentials, EapiClient, EapiConfig, EapiError, LldpNeighbor};

/// Longest wait between two polls while eAPI fails.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Builds the eAPI client the config describes.
pub fn eapi_client(config: &Config) -> Result<EapiClient, EapiError> {
    let credentials = match &config.eapi.credentials {
        Some(c) => Some(Credentials::from_password_file(&c.user, &c.password_file)?),
        None => None,
    };
    EapiClient::new(&EapiConfig {
        url: config.eapi.url.to_string(),
        timeout: config.eapi.timeout,
        credentials,
    })
}

/// The retry schedule while eAPI fails: twice the interval, doubling, at most
/// 30 s (or the interval, if that is longer). The one [`Backoff`] type, as in
/// `boot` and `ztps_eapi::retry_until`.
pub fn poll_backoff(interval: Duration) -> Backoff {
    Backoff {
        initial: interval * 2,
        max: MAX_BACKOFF.max(interval),
        factor: 2.0,
    }
}

/// One answer to `show interfaces status connected`.
#[derive(Debug)]
pub struct PollResult {
    /// The EOS names of the connected interfaces, or why eAPI did not say.
    pub connected: Result<BTreeSet<String>, EapiError>,
    /// The URL asked, for messages.
    pub url: String,
}

/// One answer to `show lldp neighbors`.
#[derive(Debug)]
pub struct LldpResult {
    /// The neighbours by port, or why eAPI did not say.
    pub neighbors: Result<Vec<LldpNeighbor>, EapiError>,
    /// When it was asked (monotonic).
    pub at: Instant,
}

/// What the poller works with; replaced as a whole on SIGHUP.
#[derive(Debug, Clone)]
pub struct PollerSettings {
    /// The client to ask.
    pub client: Arc<EapiClient>,
    /// Time between two good polls.
    pub interval: Duration,
    /// Whether to ask for LLDP neighbours too (some link is waiting for one).
    pub lldp: bool,
}

/// The loop's handle on the poller.
#[derive(Debug)]
pub struct PollerControl {
    settings: watch::Sender<PollerSettings>,
    poll_now: Arc<Notify>,
}

impl PollerControl {
    /// Asks for a poll now rather than at the next tick. Ignored while eAPI
    /// fails: the backoff stands. Many requests before the poll make one poll.
    pub fn poll_now(&self) {
        self.poll_now.notify_one();
    }

    /// Starts or stops asking for LLDP neighbours; a change polls at once.
    pub fn want_lldp(&self, lldp: bool) {
        self.settings.send_if_modified(|s| {
            let changed = s.lldp != lldp;
            s.lldp = lldp;
            changed
        });
    }

    /// Whether LLDP is asked for.
    pub fn lldp_wanted(&self) -> bool {
        self.settings.borrow().lldp
    }

    /// Uses another client and interval, polling with them at once (SIGHUP).
    pub fn replace(&self, client: EapiClient, interval: Duration) {
        self.settings.send_modify(|s| {
            s.client = Arc::new(client);
            s.interval = interval;
        });
    }
}

/// Starts the poller task; it polls at once, then on its schedule, and ends
/// when the loop's receiver is gone.
pub fn spawn(
    client: EapiClient,
    interval: Duration,
    inputs: mpsc::Sender<DaemonInput>,
) -> (PollerControl, tokio::task::JoinHandle<()>) {
    let (settings, rx) = watch::channel(PollerSettings {
        client: Arc::new(client),
        interval,
        lldp: false,
    });
    let poll_now = Arc::new(Notify::new());
    let task = tokio::spawn(run(rx, poll_now.clone(), inputs));
    (PollerControl { settings, poll_now }, task)
}

async fn run(
    mut settings: watch::Receiver<PollerSettings>,
    poll_now: Arc<Notify>,
    inputs: mpsc::Sender<DaemonInput>,
) {
    let mut failures = 0u32;
    let mut next = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = poll_now.notified() => {
                if failures > 0 {
                    continue;
                }
            }
            // New settings (SIGHUP, LLDP wanted): poll with them at once.
            changed = settings.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        let current = settings.borrow_and_update().clone();
        let connected = current.client.connected_interfaces().await.map(|list| {
            list.into_iter()
                .filter(|i| i.is_connected())
                .map(|i| i.name)
                .collect::<BTreeSet<String>>()
        });
        failures = if connected.is_ok() {
            0
        } else {
            failures.saturating_add(1)
        };
        let ok = connected.is_ok();
        let result = PollResult {
            connected,
            url: current.client.url().to_string(),
        };
        if inputs.send(DaemonInput::Eapi(result)).await.is_err() {
            return;
        }
        if ok && settings.borrow().lldp {
            let at = Instant::now();
            let neighbors = current.client.lldp_neighbors().await;
            if inputs
                .send(DaemonInput::Lldp(LldpResult { neighbors, at }))
                .await
                .is_err()
            {
                return;
            }
        }
        let interval = settings.borrow().interval;
        let delay = match failures {
            0 => interval,
            n => poll_backoff(interval).delay(n - 1),
        };
        next = Instant::now() + delay;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    /// Requests seen by the tiny eAPI on loopback, per command.
    #[derive(Default)]
    struct Seen {
        interfaces: AtomicUsize,
        lldp: AtomicUsize,
    }

    /// A minimal eAPI over HTTP on 127.0.0.1: Ethernet1 and Ethernet2 are
    /// connected, Ethernet1 has an LLDP neighbour.
    async fn tiny_eapi(seen: Arc<Seen>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/command-api", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut conn = BufReader::new(conn);
                    loop {
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0u8; length.min(1 << 16)];
                        if conn.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let body = String::from_utf8_lossy(&body);
                        let result = if body.contains("show lldp neighbors") {
                            seen.lldp.fetch_add(1, Ordering::SeqCst);
                            r#"{"lldpNeighbors":[{"port":"Ethernet1","neighborDevice":"leaf1","neighborPort":"Ethernet49","ttl":120}]}"#
                        } else {
                            seen.interfaces.fetch_add(1, Ordering::SeqCst);
                            r#"{"interfaceStatuses":{"Ethernet1":{"linkStatus":"connected"},"Ethernet2":{"linkStatus":"connected"},"Ethernet3":{"linkStatus":"notconnect"}}}"#
                        };
                        let answer = format!(r#"{{"jsonrpc":"2.0","id":"1","result":[{result}]}}"#);
                        let response = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if conn.get_mut().write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        url
    }

    async fn next(rx: &mut mpsc::Receiver<DaemonInput>) -> DaemonInput {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the poller sent nothing within 10 s")
            .expect("the poller is gone")
    }

    #[tokio::test]
    async fn polls_at_once_coalesces_poll_now_and_asks_lldp_only_when_wanted() {
        let seen = Arc::new(Seen::default());
        let url = tiny_eapi(seen.clone()).await;
        let client = EapiClient::new(&EapiConfig {
            url,
            timeout: Duration::from_secs(5),
            credentials: None,
        })
        .unwrap();
        let (inputs, mut rx) = mpsc::channel(16);
        // A long interval: every poll after the first is one the test asked for.
        let (control, _task) = spawn(client, Duration::from_secs(3600), inputs);
        match next(&mut rx).await {
            DaemonInput::Eapi(PollResult { connected, .. }) => {
                let set = connected.unwrap();
                assert_eq!(
                    set.into_iter().collect::<Vec<_>>(),
                    ["Ethernet1", "Ethernet2"]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(!control.lldp_wanted());
        // A burst of requests makes one poll, plus at most one more for the
        // requests that came after that poll was woken.
        for _ in 0..50 {
            control.poll_now();
        }
        assert!(matches!(next(&mut rx).await, DaemonInput::Eapi(_)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        while let Ok(input) = rx.try_recv() {
            assert!(matches!(input, DaemonInput::Eapi(_)), "{input:?}");
        }
        let polls = seen.interfaces.load(Ordering::SeqCst);
        assert!((2..=3).contains(&polls), "{polls} polls for one burst");
        assert_eq!(seen.lldp.load(Ordering::SeqCst), 0, "LLDP asked unasked");
        // Wanting LLDP polls at once, and each poll then brings LLDP too.
        control.want_lldp(true);
        assert!(matches!(next(&mut rx).await, DaemonInput::Eapi(_)));
        match next(&mut rx).await {
            DaemonInput::Lldp(LldpResult { neighbors, .. }) => {
                let n = neighbors.unwrap();
                assert_eq!(n[0].port, "Ethernet1");
                assert_eq!(n[0].neighbor_device, "leaf1");
            }
            other => panic!("{other:?}"),
        }
        control.want_lldp(false);
        assert!(matches!(next(&mut rx).await, DaemonInput::Eapi(_)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(rx.try_recv().is_err(), "LLDP after it was no longer wanted");
        assert_eq!(seen.lldp.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn failing_polls_back_off_from_twice_the_interval_to_thirty_seconds() {
        let b = poll_backoff(Duration::from_secs(2));
        let delays: Vec<u64> = (0..6).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(delays, [4, 8, 16, 30, 30, 30]);
        // An interval longer than the cap is never shortened.
        assert_eq!(
            poll_backoff(Duration::from_secs(60)).delay(0),
            Duration::from_secs(60)
        );
    }
}
