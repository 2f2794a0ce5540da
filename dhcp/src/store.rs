//! The lease file on flash.
//!
//! Format: JSON Lines. The first line is a header
//! (`{"format":"ztps-leases","version":1}`), every other line one [`LeaseChange`]
//! (`{"op":"put",...lease...}` or `{"op":"delete","link":..,"client":..}`); a later
//! line for the same lease wins. One JSON document per line means a torn or
//! damaged line costs that line only, and the rest of the file still loads.
//!
//! **Invariants.** A change is durable when [`LeaseStore::commit`] returns `Ok`:
//! the bytes were appended and the file fdatasynced. A failed append is cut off
//! again (ftruncate to the last good length), so the file never holds half a
//! record in its middle. The file is otherwise only ever replaced whole, by
//! writing a temporary file, fsyncing it, renaming it over the old one and
//! fsyncing the directory. A damaged file found at start is renamed aside (never
//! deleted) and a clean file with everything valid takes its place.

use crate::lease::{Lease, LeaseChange, LeaseKey};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// A failure of the lease file, naming the file and the operation.
#[derive(Debug, thiserror::Error)]
#[error("lease file {path}: {op}: {source}")]
pub struct StoreError {
    /// The file (or directory) concerned.
    pub path: PathBuf,
    /// What was being done.
    pub op: &'static str,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl StoreError {
    fn new(path: &Path, op: &'static str, source: io::Error) -> Self {
        StoreError {
            path: path.to_path_buf(),
            op,
            source,
        }
    }

    /// Whether the error is the disk being full (or over quota).
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self.source.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT)
        )
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
}

const FORMAT: &str = "ztps-leases";
const VERSION: u32 = 1;

/// What loading the file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// The lease file.
    pub path: PathBuf,
    /// Whether the file existed.
    pub existed: bool,
    /// Change records read (valid ones).
    pub records: usize,
    /// Leases after replaying them.
    pub leases: usize,
    /// Damage found, if any.
    pub damage: Option<Damage>,
}

/// A damaged lease file, and where it was put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Lines that could not be used.
    pub bad_lines: usize,
    /// The first of them (1-based) and why.
    pub first_bad_line: usize,
    /// Why the first bad line was rejected.
    pub why: String,
    /// Where the original file now is.
    pub moved_to: PathBuf,
}

/// The open lease file.
#[derive(Debug)]
pub struct LeaseStore {
    path: PathBuf,
    file: File,
    /// Length of the file up to the last complete, synced record.
    good_len: u64,
    /// What the file holds, replayed: used to compact and to know what is stored.
    live: HashMap<LeaseKey, Lease>,
    records_since_compaction: usize,
}

impl LeaseStore {
    /// Opens (or creates) the lease file, replays it, sets aside a damaged file,
    /// and rewrites it compacted. Returns the store, the leases and a report.
    pub fn open(path: &Path) -> Result<(LeaseStore, Vec<Lease>, LoadReport), StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| StoreError::new(dir, "create directory", e))?;
        }
        let mut live: HashMap<LeaseKey, Lease> = HashMap::new();
        let mut report = LoadReport {
            path: path.to_path_buf(),
            existed: false,
            records: 0,
            leases: 0,
            damage: None,
        };
        let mut bad_lines = 0usize;
        let mut first_bad: Option<(usize, String)> = None;
        match File::open(path) {
            Ok(f) => {
                report.existed = true;
                let mut reader = BufReader::new(f);
                let mut line = Vec::new();
                let mut n = 0usize;
                loop {
                    line.clear();
                    let read = reader
                        .read_until(b'\n', &mut line)
                        .map_err(|e| StoreError::new(path, "read", e))?;
                    if read == 0 {
                        break;
                    }
                    n += 1;
                    let complete = line.last() == Some(&b'\n');
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    // Ok(true): a change record; Ok(false): the header.
                    let parsed: Result<bool, String> = if !complete {
                        Err("truncated record (no newline): a write cut short".into())
                    } else if n == 1 {
                        match serde_json::from_str::<Header>(text) {
                            Ok(h) if h.format == FORMAT && h.version == VERSION => Ok(false),
                            Ok(h) => Err(format!(
                                "header says format {:?} version {}, expected {FORMAT:?} version {VERSION}",
                                h.format, h.version
                            )),
                            Err(_) => apply_line(text, &mut live)
                                .map(|()| true)
                                .map_err(|e| format!("no header, and {e}")),
                        }
                    } else {
                        apply_line(text, &mut live).map(|()| true)
                    };
                    match parsed {
                        Ok(is_record) => report.records += usize::from(is_record),
                        Err(why) => {
                            bad_lines += 1;
                            if first_bad.is_none() {
                                first_bad = Some((n, why));
                            }
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::new(path, "open for reading", e)),
        }
        if let Some((line, why)) = first_bad {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let moved_to = aside_name(path, stamp);
            fs::rename(path, &moved_to)
                .map_err(|e| StoreError::new(path, "move damaged file aside", e))?;
            report.damage = Some(Damage {
                bad_lines,
                first_bad_line: line,
                why,
                moved_to,
            });
        }
        report.leases = live.len();
        write_snapshot(path, live.values())?;
        let file = open_append(path)?;
        let good_len = file
            .metadata()
            .map_err(|e| StoreError::new(path, "stat", e))?
            .len();
        let leases: Vec<Lease> = live.values().cloned().collect();
        Ok((
            LeaseStore {
                path: path.to_path_buf(),
                file,
                good_len,
                live,
                records_since_compaction: 0,
            },
            leases,
            report,
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of leases on storage.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no lease is stored.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The stored lease with this key, if any.
    pub fn get(&self, key: &LeaseKey) -> Option<&Lease> {
        self.live.get(key)
    }

    /// Appends `changes` and fdatasyncs. On error nothing of the batch is kept
    /// in the file (it is cut back), so the batch can be retried whole.
    pub fn commit(&mut self, changes: &[LeaseChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(changes.len() * 256);
        for c in changes {
            serde_json::to_writer(&mut buf, c).expect("lease changes always serialize");
            buf.push(b'\n');
        }
        let result = self
            .file
            .write_all(&buf)
            .map_err(|e| StoreError::new(&self.path, "append", e))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(|e| StoreError::new(&self.path, "fdatasync", e))
            });
        if let Err(e) = result {
            // Cut off whatever part of the batch reached the file.
            let _ = self.file.set_len(self.good_len);
            let _ = self.file.sync_data();
            return Err(e);
        }
        self.good_len += buf.len() as u64;
        for c in changes {
            apply(c.clone(), &mut self.live);
        }
        self.records_since_compaction += changes.len();
        if self.records_since_compaction > 1024.max(self.live.len() * 2) {
            // A failed compaction leaves the journal as it was: still correct.
            if let Err(e) = self.compact() {
                tracing::warn!("lease file compaction failed, keeping the journal: {e}");
            }
        }
        Ok(())
    }

    /// Rewrites the file with only the current leases, by atomic rename.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        write_snapshot(&self.path, self.live.values())?;
        self.file = open_append(&self.path)?;
        self.good_len = self
            .file
            .metadata()
            .map_err(|e| StoreError::new(&self.path, "stat", e))?
            .len();
        self.records_since_compaction = 0;
        Ok(())
    }
}

fn aside_name(path: &Path, stamp: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".damaged-{stamp}"));
    let mut candidate = path.with_file_name(&name);
    let mut n = 1;
    while candidate.exists() {
        let mut alt = name.clone();
        alt.push(format!(".{n}"));
        candidate = path.with_file_name(alt);
        n += 1;
    }
    candidate
}

fn apply_line(text: &str, live: &mut HashMap<LeaseKey, Lease>) -> Result<(), String> {
    let change: LeaseChange = serde_json::from_str(text).map_err(|e| format!("bad record: {e}"))?;
    apply(change, live);
    Ok(())
}

fn apply(change: LeaseChange, live: &mut HashMap<LeaseKey, Lease>) {
    match change {
        LeaseChange::Put(l) => {
            live.insert(l.key(), l);
        }
        LeaseChange::Delete(k) => {
            live.remove(&k);
        }
    }
}

fn open_append(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| StoreError::new(path, "open for append", e))
}

/// Writes header + one Put per lease to `<path>.tmp`, fsyncs, renames over
/// `path`, fsyncs the directory.
fn write_snapshot<'a>(
    path: &Path,
    leases: impl Iterator<Item = &'a Lease>,
) -> Result<(), StoreError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut buf = Vec::new();
    serde_json::to_writer(
        &mut buf,
        &Header {
            format: FORMAT.into(),
            version: VERSION,
        },
    )
    .expect("header serializes");
    buf.push(b'\n');
    let mut sorted: Vec<&Lease> = leases.collect();
    sorted.sort_by(|a, b| (&a.link, &a.client).cmp(&(&b.link, &b.client)));
    for l in sorted {
        serde_json::to_writer(&mut buf, &LeaseChange::Put(l.clone())).expect("lease serializes");
        buf.push(b'\n');
    }
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| StoreError::new(&tmp, "create", e))?;
        f.write_all(&buf)
            .map_err(|e| StoreError::new(&tmp, "write", e))?;
        f.sync_all()
            .map_err(|e| StoreError::new(&tmp, "fsync", e))?;
        fs::rename(&tmp, path).map_err(|e| StoreError::new(path, "rename into place", e))?;
        sync_dir(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::new(dir, "fsync directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::{ClientId, LeaseState};

    fn lease(link: &str, n: u8) -> Lease {
        Lease {
            link: link.into(),
            client: ClientId::from_hardware(1, &[0, 0, 0, 0, 0, n]),
            mac: format!("00:00:00:00:00:{n:02x}"),
            address: std::net::Ipv4Addr::new(10, 0, 0, n),
            state: LeaseState::Bound,
            expires: 1000,
            updated: 10,
            vendor: None,
            hostname: None,
        }
    }

    #[test]
    fn commit_then_reopen_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/leases.json");
        let (mut s, leases, rep) = LeaseStore::open(&path).unwrap();
        assert!(leases.is_empty() && !rep.existed);
        s.commit(&[
            LeaseChange::Put(lease("et1", 1)),
            LeaseChange::Put(lease("et2", 2)),
        ])
        .unwrap();
        s.commit(&[LeaseChange::Delete(lease("et1", 1).key())])
            .unwrap();
        drop(s);
        let (_, leases, rep) = LeaseStore::open(&path).unwrap();
        assert_eq!(leases, vec![lease("et2", 2)]);
        assert_eq!(rep.damage, None);
    }

    #[test]
    fn torn_tail_and_garbage_lines_are_set_aside_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let (mut s, _, _) = LeaseStore::open(&path).unwrap();
        s.commit(&[LeaseChange::Put(lease("et1", 1))]).unwrap();
        s.commit(&[LeaseChange::Put(lease("et2", 2))]).unwrap();
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{not json}\n").unwrap();
        let good = serde_json::to_string(&LeaseChange::Put(lease("et3", 3))).unwrap();
        f.write_all(good.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
        f.write_all(&good.as_bytes()[..20]).unwrap(); // torn, no newline
        drop(f);
        let original = fs::read(&path).unwrap();
        let (_, mut leases, rep) = LeaseStore::open(&path).unwrap();
        leases.sort_by_key(|l| l.address);
        assert_eq!(
            leases,
            vec![lease("et1", 1), lease("et2", 2), lease("et3", 3)]
        );
        let d = rep.damage.expect("damage reported");
        assert_eq!(d.bad_lines, 2);
        assert_eq!(d.first_bad_line, 4);
        assert_eq!(
            fs::read(&d.moved_to).unwrap(),
            original,
            "kept aside as it was"
        );
        // The new file is clean.
        let (_, _, rep) = LeaseStore::open(&path).unwrap();
        assert_eq!(rep.damage, None);
        assert_eq!(rep.leases, 3);
    }

    #[test]
    fn a_wholly_corrupt_file_still_opens_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        fs::write(&path, b"\x00\x01\x02garbage").unwrap();
        let (_, leases, rep) = LeaseStore::open(&path).unwrap();
        assert!(leases.is_empty());
        assert!(rep.damage.unwrap().moved_to.exists());
    }

    #[test]
    fn compaction_keeps_only_live_leases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let (mut s, _, _) = LeaseStore::open(&path).unwrap();
        for i in 0..3000u32 {
            let mut l = lease("et1", (i % 5) as u8);
            l.updated = i as u64;
            s.commit(&[LeaseChange::Put(l)]).unwrap();
        }
        let lines = fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines < 1100, "journal compacted, {lines} lines");
        drop(s);
        let (_, leases, _) = LeaseStore::open(&path).unwrap();
        assert_eq!(leases.len(), 5);
        assert!(leases.iter().any(|l| l.updated == 2999));
    }
}
