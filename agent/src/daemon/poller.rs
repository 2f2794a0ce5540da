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
