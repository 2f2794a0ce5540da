//! Fault injection: the mode a test switches through the control file.

use serde_json::Value;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// How eos-sim answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Normally.
    Ok,
    /// Not at all: listening sockets and open connections closed.
    Refuse,
    /// With this HTTP status and nginx's error page.
    Status(u16),
    /// With 200 and a body that is not JSON.
    Garbage,
    /// Normally, after this delay.
    Slow(Duration),
}

fn parse_mode(text: &str) -> Result<Mode, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match value.get("mode").and_then(Value::as_str) {
        Some("ok") => Ok(Mode::Ok),
        Some("refuse") => Ok(Mode::Refuse),
        Some("http502") => Ok(Mode::Status(502)),
        Some("http503") => Ok(Mode::Status(503)),
        Some("garbage") => Ok(Mode::Garbage),
        Some("slow") => {
            let ms = value
                .get("delay_ms")
                .and_then(Value::as_u64)
                .ok_or("slow needs delay_ms")?;
            Ok(Mode::Slow(Duration::from_millis(ms)))
        }
        other => Err(format!("unknown mode {other:?}")),
    }
}

/// The current mode from the control file; a missing file means `ok`, an unreadable
/// one keeps the previous mode (a test may be halfway through writing it).
pub struct Control {
    path: Option<PathBuf>,
    last: Mutex<Mode>,
}

impl Control {
    /// Control from `path` (none: always `ok`).
    pub fn new(path: Option<PathBuf>) -> Control {
        Control {
            path,
            last: Mutex::new(Mode::Ok),
        }
    }

    /// Reads the file again and returns the mode now in force.
    pub fn read(&self) -> Mode {
        let mut last = self.last.lock().unwrap();
        let Some(path) = &self.path else { return *last };
        let mode = match std::fs::read_to_string(path) {
            Ok(text) => parse_mode(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Mode::Ok),
            Err(e) => Err(e.to_string()),
        };
        match mode {
            Ok(mode) => {
                if mode != *last {
                    eprintln!("eos-sim: mode {mode:?}");
                }
                *last = mode;
            }
            Err(e) => eprintln!("eos-sim: ignoring control file {}: {e}", path.display()),
        }
        *last
    }
}
