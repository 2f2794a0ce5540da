//! State the tests set for `eos-sim` while it runs: the LLDP neighbour table
//! (`eos-sim --lldp-file PATH`).
//!
//! Every change is written whole to a temporary file and renamed over the table,
//! so eos-sim, which re-reads the file on every request, never sees half of it.
//! Changes from several threads (the lab's leaves) are serialised, so none is
//! lost and no two share the temporary file.

use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::Mutex;

/// Held across each read-modify-write of a table.
static TABLE_LOCK: Mutex<()> = Mutex::new(());

/// Puts `device` (its port `neighbor_port`) as the LLDP neighbour on this switch's
/// `port` (an EOS name, e.g. `Ethernet3`), replacing any neighbour there.
pub fn set_lldp_neighbor(path: &Path, port: &str, device: &str, neighbor_port: &str) {
    let _serialised = TABLE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut table = read_table(path);
    table.insert(
        port.to_owned(),
        json!({"device": device, "port": neighbor_port}),
    );
    write_table(path, table);
}

/// Removes the LLDP neighbour on `port`, if there is one.
pub fn clear_lldp_neighbor(path: &Path, port: &str) {
    let _serialised = TABLE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut table = read_table(path);
    table.remove(port);
    write_table(path, table);
}

fn read_table(path: &Path) -> Map<String, Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(Value::Object(table)) => table,
            other => panic!("{} is not an LLDP table: {other:?}", path.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

fn write_table(path: &Path, table: Map<String, Value>) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, Value::Object(table).to_string())
        .unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path)
        .unwrap_or_else(|e| panic!("renaming {} to {}: {e}", tmp.display(), path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_set_from_many_threads_are_all_kept() {
        let dir = std::env::temp_dir().join(format!("ztps-eos-lldp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lldp.json");
        std::thread::scope(|s| {
            for i in 0..32 {
                let path = &path;
                s.spawn(move || {
                    set_lldp_neighbor(path, &format!("Ethernet{i}"), &format!("leaf{i}"), "Et1")
                });
            }
        });
        let table = read_table(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(table.len(), 32, "{table:?}");
    }
}
