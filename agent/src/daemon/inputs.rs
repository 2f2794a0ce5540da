//! The tasks that feed the reconcile loop: signals, netlink link events and
//! DHCP activity. Each turns its source into [`DaemonInput`] messages and does
//! nothing else.

use super::DaemonInput;
use crate::status::EventStatus;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use ztps_bridge::LinkEvents;
use ztps_dhcp::service::{unix_now, EventSink};
use ztps_dhcp::Event;

/// A signal the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: stop cleanly, leases flushed.
    Stop(&'static str),
    /// SIGHUP: reload the config.
    Reload,
}

/// Installs the handlers (through tokio's own signal support, the one path)
/// and forwards each signal as [`DaemonInput::Signal`]. Installed before
/// anything slow, so a SIGTERM at start is not lost.
pub fn spawn_signals(inputs: mpsc::Sender<DaemonInput>) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = term.recv() => Signal::Stop("SIGTERM"),
                _ = int.recv() => Signal::Stop("SIGINT"),
                _ = hup.recv() => Signal::Reload,
            };
            if inputs.send(DaemonInput::Signal(sig)).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Forwards netlink link and address events. Errors are said once per run of
/// them; meanwhile the eAPI poll keeps the view current.
pub fn spawn_netlink(mut events: LinkEvents, inputs: mpsc::Sender<DaemonInput>) {
    tokio::spawn(async move {
        let mut errors = 0u32;
        loop {
            match events.next().await {
                Ok(ev) => {
                    if errors > 0 {
                        info!("netlink events flowing again after {errors} error(s)");
                    }
                    errors = 0;
                    debug!("netlink: {ev}");
                    if inputs.send(DaemonInput::Netlink(ev)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    errors = errors.saturating_add(1);
                    if errors == 1 {
                        warn!("netlink events: {e}; relying on the eAPI poll until they recover");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
}

/// What the DHCP event sink records for status, and what it needs to name an
/// interface the DHCP core knows only by index. Shared with the DHCP path,
/// which must never wait on the loop: every lock here is held for a map
/// update only.
#[derive(Default)]
pub struct EventBoard {
    /// Last DHCP event per link (EOS name); bounded by the links.
    pub last: Mutex<HashMap<String, EventStatus>>,
    /// ifindex -> (EOS name, kernel name, why not served) for unserved links.
    pub unserved: Mutex<HashMap<u32, (String, String, String)>>,
    /// A [`DaemonInput::Dhcp`] is on its way to the loop: one in flight is
    /// enough, however many packets come.
    pending: AtomicBool,
}

impl EventBoard {
    /// The loop took the pending [`DaemonInput::Dhcp`]: the next event sends another.
    pub fn taken(&self) {
        self.pending.store(false, Ordering::Release);
    }
}

/// The DHCP event sink: logs each event, records it for status and wakes the
/// loop without ever blocking (a full channel drops the wake-up; the loop is
/// busy and publishes soon anyway).
pub fn dhcp_sink(board: Arc<EventBoard>, inputs: mpsc::Sender<DaemonInput>) -> EventSink {
    let log = ztps_dhcp::service::log_events();
    Arc::new(move |e: &Event| {
        if let Event::UnservedLink { ifindex, .. } = e {
            let known = board
                .unserved
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(ifindex)
                .cloned();
            if let Some((eos, kernel, why)) = known {
                info!("dropping DHCP from {eos} ({kernel}): not served: {why}");
                return;
            }
        }
        // A renewal is routine: every leaf renews every half lease, which on a
        // large fabric would flood syslog. It still shows in status.
        if matches!(e, Event::Acked { renewal: true, .. }) {
            debug!("{e}");
        } else {
            log(e);
        }
        if let Some(link) = e.link() {
            let text = e.summary();
            board.last.lock().unwrap_or_else(|p| p.into_inner()).insert(
                link.to_string(),
                EventStatus {
                    text,
                    at: unix_now(),
                },
            );
            if !board.pending.swap(true, Ordering::AcqRel)
                && inputs.try_send(DaemonInput::Dhcp).is_err()
            {
                board.pending.store(false, Ordering::Release);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use tracing_subscriber::layer::SubscriberExt;

    /// Collects (level, message) of every event.
    #[derive(Clone, Default)]
    struct Collect(Arc<StdMutex<Vec<(tracing::Level, String)>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Collect {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Message(String);
            impl tracing::field::Visit for Message {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    if f.name() == "message" {
                        self.0 = format!("{v:?}");
                    }
                }
            }
            let mut m = Message(String::new());
            event.record(&mut m);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), m.0));
        }
    }

    fn acked(renewal: bool) -> Event {
        Event::Acked {
            link: "Ethernet1".into(),
            mac: ztps_dhcp::HwAddr::new(&[2, 0, 0, 0, 0, 1]),
            address: "10.0.0.1".parse().unwrap(),
            vendor: Some("Arista;DCS-7050SX3-48YC8;11.00;JPE1".into()),
            renewal,
        }
    }

    #[test]
    fn renewals_are_debug_and_a_flood_wakes_the_loop_once_without_waiting() {
        let board = Arc::new(EventBoard::default());
        let (tx, mut rx) = mpsc::channel(1);
        let sink = dhcp_sink(board.clone(), tx);
        let seen = Collect::default();
        let subscriber = tracing_subscriber::registry().with(seen.clone());
        tracing::subscriber::with_default(subscriber, || {
            sink(&acked(false));
            for _ in 0..10_000 {
                sink(&acked(true));
            }
        });
        let seen = seen.0.lock().unwrap();
        assert_eq!(seen.len(), 10_001);
        assert_eq!(seen[0].0, tracing::Level::INFO, "{:?}", seen[0]);
        assert!(seen[1..].iter().all(|(l, _)| *l == tracing::Level::DEBUG));
        // One wake-up in flight, however many events; the next after it is taken.
        assert!(matches!(rx.try_recv(), Ok(DaemonInput::Dhcp)));
        assert!(rx.try_recv().is_err());
        board.taken();
        sink(&acked(true));
        assert!(matches!(rx.try_recv(), Ok(DaemonInput::Dhcp)));
        let last = board.last.lock().unwrap();
        assert_eq!(last["Ethernet1"].text, "ACK 10.0.0.1 (renewal)");
    }
}
