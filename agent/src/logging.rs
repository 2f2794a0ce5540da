//! Logs: to syslog (facility `local0`, tag `ZTPS` by default, as the recipe's
//! `logger` calls did, so lines show in EOS `show logging`) and to stderr.
//!
//! The syslog layer speaks RFC 3164 over the `/dev/log` datagram socket itself:
//! one small function instead of a dependency. Logging never blocks serving:
//! the socket is non-blocking, a line that does not fit (syslogd stopped or
//! slow) is dropped and counted ([`dropped_lines`], shown in status), and the
//! count is said once in the log when lines go through again. A vanished
//! socket (syslogd restarted) is reconnected, at most once a second. Every
//! line is passed through [`escape_untrusted`], as the stderr copy is.

use crate::config::LogSection;
use crate::escape::escape_untrusted;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where syslog lines go.
const DEV_LOG: &str = "/dev/log";

/// Environment variable that overrides [`DEV_LOG`] (for tests).
pub const SYSLOG_SOCKET_ENV: &str = "ZTPS_SYSLOG_SOCKET";

/// Least time between two attempts to (re)connect to the syslog socket.
const RECONNECT_GAP: Duration = Duration::from_secs(1);

/// Lines dropped because the syslog socket was full or gone, since start.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How many syslog lines this process has dropped (socket full or gone).
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// The socket and what the layer remembers about it.
struct Connection {
    socket: Option<UnixDatagram>,
    last_attempt: Option<Instant>,
    /// Lines dropped since the last one that went through.
    dropped_in_a_row: u64,
}

/// A tracing layer that sends each event to syslog, never waiting.
pub struct SyslogLayer {
    connection: Mutex<Connection>,
    path: String,
    facility: u8,
    tag: String,
    pid: u32,
    complained: AtomicBool,
}

impl SyslogLayer {
    /// A layer for `facility` (a code from `Facility::code`) and `tag`, sending to `path`.
    pub fn new(path: &str, facility: u8, tag: &str) -> SyslogLayer {
        SyslogLayer {
            connection: Mutex::new(Connection {
                socket: None,
                last_attempt: None,
                dropped_in_a_row: 0,
            }),
            path: path.into(),
            facility,
            tag: tag.into(),
            pid: std::process::id(),
            complained: AtomicBool::new(false),
        }
    }

    fn line(&self, severity: u8, message: &str) -> String {
        format!(
            "<{}>{}[{}]: {}",
            u16::from(self.facility) * 8 + u16::from(severity),
            self.tag,
            self.pid,
            escape_untrusted(message)
        )
    }

    fn connect(&self, c: &mut Connection) {
        let now = Instant::now();
        if c.last_attempt.is_some_and(|t| now < t + RECONNECT_GAP) {
            return;
        }
        c.last_attempt = Some(now);
        c.socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(|s| s.connect(&self.path).map(|()| s))
            .ok();
    }

    fn send(&self, severity: u8, message: &str) {
        let line = self.line(severity, message);
        let mut c = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if c.socket.is_none() {
            self.connect(&mut c);
        }
        let sent = match c.socket.as_ref().map(|s| s.send(line.as_bytes())) {
            Some(Ok(_)) => true,
            // Full (the reader is stopped or slow): drop, never wait.
            Some(Err(e)) if e.kind() == ErrorKind::WouldBlock => false,
            Some(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => false,
            // Gone (syslogd restarted): reconnect and try once more.
            Some(Err(_)) => {
                c.socket = None;
                c.last_attempt = None;
                self.connect(&mut c);
                matches!(
                    c.socket.as_ref().map(|s| s.send(line.as_bytes())),
                    Some(Ok(_))
                )
            }
            None => false,
        };
        if !sent {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            c.dropped_in_a_row += 1;
            if c.socket.is_none() && !self.complained.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "ztps-agent: cannot write to syslog at {}; logging to stderr only \
                     (lines are counted as dropped)",
                    self.path
                );
            }
            return;
        }
        if c.dropped_in_a_row > 0 {
            let note = self.line(
                4,
                &format!(
                    "syslog: {} line(s) dropped while {} was full or gone ({} since start)",
                    c.dropped_in_a_row,
                    self.path,
                    dropped_lines()
                ),
            );
            if let Some(Ok(_)) = c.socket.as_ref().map(|s| s.send(note.as_bytes())) {
                eprintln!("{}", &note[note.find(": ").map_or(0, |i| i + 2)..]);
                c.dropped_in_a_row = 0;
            }
        }
    }
}

/// A stderr writer that escapes every line (a client's bytes in an event must
/// not drive the terminal or forge a line), keeping only the final newline.
#[derive(Clone, Copy, Default)]
pub struct EscapedStderr;

impl std::io::Write for EscapedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, newline) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let line = format!("{}{newline}", escape_untrusted(body));
        std::io::stderr().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for EscapedStderr {
    type Writer = EscapedStderr;
    fn make_writer(&'a self) -> Self::Writer {
        EscapedStderr
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
    // No colours: escaping would show their escape sequences.
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(EscapedStderr)
        .with_ansi(false)
        .with_target(false);
    let path = std::env::var(SYSLOG_SOCKET_ENV).unwrap_or_else(|_| DEV_LOG.to_string());
    let syslog_layer =
        (syslog && log.syslog).then(|| SyslogLayer::new(&path, log.facility.code(), &log.tag));
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

    #[test]
    fn a_full_socket_drops_and_counts_never_waits_then_says_how_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let layer = SyslogLayer::new(path.to_str().unwrap(), 16, "ZTPS");
        let before = dropped_lines();
        let start = Instant::now();
        // Nobody reads: the queue fills after a few datagrams (net.unix.max_dgram_qlen).
        for i in 0..2000 {
            layer.send(5, &format!("line {i}"));
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "sending to a full socket waited"
        );
        let dropped = dropped_lines() - before;
        assert!(dropped > 0, "nothing dropped");
        // Drain, then the next line goes through and the count is said once.
        server.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        while server.recv(&mut buf).is_ok() {}
        layer.send(5, "after");
        let mut got = Vec::new();
        while let Ok(n) = server.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert!(got[0].ends_with(": after"), "{got:?}");
        assert!(
            got[1].contains(&format!("syslog: {dropped} line(s) dropped")),
            "{got:?}"
        );
        layer.send(5, "again");
        let n = server.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with(": again"));
        assert!(server.recv(&mut buf).is_err(), "the count is said once");
    }

    #[test]
    fn a_restarted_syslogd_is_reconnected_and_lines_are_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let first = UnixDatagram::bind(&path).unwrap();
        let layer = SyslogLayer::new(path.to_str().unwrap(), 16, "ZTPS");
        layer.send(5, "one");
        let mut buf = [0u8; 512];
        let n = first.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with(": one"));
        drop(first);
        std::fs::remove_file(&path).unwrap();
        let second = UnixDatagram::bind(&path).unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        layer.send(5, "vendor Arista\x1b[2J\n forged\u{202e}");
        let n = second.recv(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            line.ends_with(": vendor Arista\\x1b[2J\\n forged\\u{202e}"),
            "{line}"
        );
    }
}
