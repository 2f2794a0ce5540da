//! Logs: to syslog (facility `local0`, tag `ZTPS` by default, as the recipe's
//! `logger` calls did, so lines show in EOS `show logging`) and to stderr.
//!
//! The syslog layer speaks RFC 3164 over the `/dev/log` datagram socket itself:
//! one small function instead of a dependency. If `/dev/log` is missing or a send
//! fails, the line still goes to stderr and the problem is said once.

use crate::config::LogSection;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where syslog lines go.
const DEV_LOG: &str = "/dev/log";

/// A tracing layer that sends each event to syslog.
pub struct SyslogLayer {
    socket: Mutex<Option<UnixDatagram>>,
    path: String,
    facility: u8,
    tag: String,
    pid: u32,
    complained: std::sync::atomic::AtomicBool,
}

impl SyslogLayer {
    /// A layer for `facility` (a code from `Facility::code`) and `tag`, sending to `path`.
    pub fn new(path: &str, facility: u8, tag: &str) -> SyslogLayer {
        SyslogLayer {
            socket: Mutex::new(None),
            path: path.into(),
            facility,
            tag: tag.into(),
            pid: std::process::id(),
            complained: Default::default(),
        }
    }

    fn send(&self, severity: u8, message: &str) {
        let line = format!(
            "<{}>{}[{}]: {}",
            u16::from(self.facility) * 8 + u16::from(severity),
            self.tag,
            self.pid,
            message
        );
        let mut guard = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        for attempt in 0..2 {
            if guard.is_none() {
                *guard = UnixDatagram::unbound()
                    .and_then(|s| s.connect(&self.path).map(|()| s))
                    .ok();
            }
            let Some(sock) = guard.as_ref() else { break };
            match sock.send(line.as_bytes()) {
                Ok(_) => return,
                // The syslog daemon restarted: reconnect once.
                Err(_) if attempt == 0 => *guard = None,
                Err(_) => break,
            }
        }
        if !self
            .complained
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            eprintln!(
                "ztps-agent: cannot write to syslog at {}; logging to stderr only",
                self.path
            );
        }
    }
}

/// Severity (RFC 5424 numbers) for a tracing level. INFO maps to notice so that
/// the events an operator cares about pass EOS's usual logging thresholds.
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 5,
        Level::DEBUG | Level::TRACE => 7,
    }
}

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={:?}", field.name(), value));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={}", field.name(), value));
        }
    }
}

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut v = MessageVisitor(String::new());
        event.record(&mut v);
        self.send(severity(event.metadata().level()), &v.0);
    }
}

/// Sets up logging for the daemon and `boot`: stderr always, syslog when the
/// config asks. The level comes from `RUST_LOG` if set, else `log.level`.
pub fn init(log: &LogSection, syslog: bool) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(&log.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let ansi = nix::unistd::isatty(std::io::stderr()).unwrap_or(false);
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    let syslog_layer =
        (syslog && log.syslog).then(|| SyslogLayer::new(DEV_LOG, log.facility.code(), &log.tag));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(syslog_layer)
        .try_init();
}

/// Logging for short commands (`status`, `check-config`): stderr, warnings only.
pub fn init_quiet() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::new("warn"))
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_lines_carry_priority_tag_pid_and_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let layer = SyslogLayer::new(path.to_str().unwrap(), 16, "ZTPS");
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(link = "Ethernet3", "ACK 10.0.0.1");
            tracing::error!("lease file full");
        });
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf[..n]).to_string();
        // local0 (16) * 8 + notice (5) = 133.
        assert_eq!(
            first,
            format!(
                "<133>ZTPS[{}]: ACK 10.0.0.1 link=Ethernet3",
                std::process::id()
            )
        );
        let n = server.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("<131>ZTPS["));
    }
}
