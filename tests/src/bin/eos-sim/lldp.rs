//! `show lldp neighbors` from a file the tests write:
//! `{"Ethernet3": {"device": "leaf3.example.net", "port": "Ethernet49/1"}, ...}`
//! (an entry may add `"ttl": N`; the default is EOS's 120 s). The file is re-read
//! on every request; a missing file means no neighbours, an unreadable one keeps
//! the last good table (a test may be halfway through writing it).

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// EOS's default LLDP hold time.
const DEFAULT_TTL: u32 = 120;

/// One neighbour as the tests describe it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Neighbor {
    device: String,
    port: String,
    #[serde(default = "default_ttl")]
    ttl: u32,
}

fn default_ttl() -> u32 {
    DEFAULT_TTL
}

/// The table read last, and when it last changed.
#[derive(Debug, Default, Clone)]
struct Table {
    /// Local port (EOS name) -> neighbour, in EOS's port order.
    neighbors: Vec<(String, Neighbor)>,
    /// Seconds since the epoch of the file's last change (0: never).
    changed: f64,
}

/// The LLDP neighbour table.
pub struct Lldp {
    path: Option<PathBuf>,
    last: Mutex<Table>,
}

impl Lldp {
    /// Neighbours from `path` (none: never any).
    pub fn new(path: Option<PathBuf>) -> Lldp {
        Lldp {
            path,
            last: Mutex::new(Table::default()),
        }
    }

    fn read(&self) -> Table {
        let mut last = self.last.lock().unwrap();
        let Some(path) = &self.path else {
            return last.clone();
        };
        let read = std::fs::read_to_string(path).and_then(|text| {
            let changed = std::fs::metadata(path)?
                .modified()?
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            Ok((text, changed))
        });
        match read {
            Ok((text, changed)) => match parse(&text) {
                Ok(neighbors) => *last = Table { neighbors, changed },
                Err(e) => eprintln!("eos-sim: ignoring LLDP file {}: {e}", path.display()),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !last.neighbors.is_empty() {
                    last.changed = now();
                }
                last.neighbors.clear();
            }
            Err(e) => eprintln!("eos-sim: ignoring LLDP file {}: {e}", path.display()),
        }
        last.clone()
    }

    /// As goeapi's `show lldp neighbors` capture.
    pub fn neighbors_json(&self) -> Value {
        let table = self.read();
        let neighbors: Vec<Value> = table
            .neighbors
            .iter()
            .map(|(port, n)| {
                json!({
                    "ttl": n.ttl,
                    "neighborDevice": n.device,
                    "neighborPort": n.port,
                    "port": port
                })
            })
            .collect();
        json!({
            "tablesLastChangeTime": table.changed,
            "tablesAgeOuts": 0,
            "tablesInserts": neighbors.len(),
            "lldpNeighbors": neighbors,
            "tablesDeletes": 0,
            "tablesDrops": 0
        })
    }

    /// The CLI table.
    pub fn neighbors_text(&self) -> String {
        let table = self.read();
        let mut out = format!(
            "Last table change time   : {:.0} s after the epoch\nNumber of table inserts  : {}\n\
             Number of table deletes  : 0\nNumber of table drops    : 0\nNumber of table age-outs : 0\n\n\
             Port          Neighbor Device ID             Neighbor Port ID    TTL\n\
             ------------- ------------------------------ ------------------- ---\n",
            table.changed,
            table.neighbors.len()
        );
        for (port, n) in &table.neighbors {
            let short = port
                .replacen("Ethernet", "Et", 1)
                .replacen("Management", "Ma", 1);
            out.push_str(&format!(
                "{short:<13} {:<30} {:<19} {}\n",
                n.device, n.port, n.ttl
            ));
        }
        out
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The file's table, sorted as EOS lists ports (Ethernet2 before Ethernet10).
fn parse(text: &str) -> Result<Vec<(String, Neighbor)>, String> {
    let map: BTreeMap<String, Neighbor> =
        serde_json::from_str(text).map_err(|e| format!("not a neighbour table: {e}"))?;
    let mut neighbors: Vec<(String, Neighbor)> = map.into_iter().collect();
    neighbors.sort_by_key(|(port, _)| port_order(port));
    Ok(neighbors)
}

/// A sort key: the name's letters, then each number in it as a number.
fn port_order(port: &str) -> (String, Vec<u64>) {
    let letters: String = port
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let numbers = port[letters.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (letters, numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_sort_as_eos_lists_them() {
        let table = parse(
            r#"{"Ethernet10": {"device": "b", "port": "Ethernet1"},
                "Ethernet2/1": {"device": "a", "port": "Ethernet49/1", "ttl": 30},
                "Ethernet2/10": {"device": "c", "port": "Ethernet2"}}"#,
        )
        .unwrap();
        let ports: Vec<&str> = table.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(ports, ["Ethernet2/1", "Ethernet2/10", "Ethernet10"]);
        assert_eq!(table[0].1.ttl, 30);
        assert_eq!(table[1].1.ttl, DEFAULT_TTL);
    }

    #[test]
    fn a_malformed_table_is_an_error() {
        assert!(parse(r#"{"Ethernet1": {"device": "a"}}"#).is_err());
        assert!(parse(r#"["Ethernet1"]"#).is_err());
    }
}
