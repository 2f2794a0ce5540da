//! The lease file on flash.
//!
//! Format (version 2): the first line is a JSON header
//! (`{"format":"ztps-leases","version":2}`), every other line one change record
//! of tab-separated fields ending in a checksum:
//!
//! ```text
//! P <link> <client> <mac> <address> <b|r|B|R> <expires> <updated> <vendor> <hostname> #<fnv32>
//! D <link> <client> #<fnv32>
//! ```
//!
//! Client and MAC are plain hex, times Unix seconds (state in capitals: stamped
//! while the wall clock was not believed, see `Lease::clock_trusted`), an empty vendor or
//! hostname means none; `%`, tab and control bytes in text fields are written as
//! `%XX`. A later record for the same lease wins. One record per line, with its
//! own checksum, means a torn or damaged line costs that line only, and the rest
//! of the file still loads. About 110 bytes per lease, against 305 for the
//! version 1 JSON lines, which are still read (a file from an older agent
//! upgrades on the first start: it is rewritten in version 2).
//!
//! **Invariants.** A change is durable when [`LeaseStore::commit`] returns `Ok`:
//! the bytes were appended and the file fdatasynced. A failed append is cut off
//! again (ftruncate to the last good length), so the file never holds half a
//! record in its middle. The file is otherwise only ever replaced whole, by
//! writing a new file created exclusively (`O_EXCL`, never through a symlink,
//! a unique name, mode 0600: leases name every leaf's MAC and serial),
//! fsyncing it, renaming it over the old one and fsyncing the directory. A
//! damaged file found at start is renamed aside (never deleted) and a clean
//! file with everything valid takes its place. On read-only storage the file is
//! read and served, and every write fails with the reason
//! ([`LoadReport::read_only`]).

use crate::lease::{ClientId, HwAddr, Lease, LeaseChange, LeaseKey, LeaseState, LinkName};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

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

    /// Whether the storage refuses writes (read-only file system, permissions).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self.source.raw_os_error(),
            Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM)
        )
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
}

const FORMAT: &str = "ztps-leases";
const VERSION: u32 = 2;

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
    /// Why the file cannot be written, if it cannot (read-only flash): the
    /// stored leases are served, and new leases must be refused.
    pub read_only: Option<String>,
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
    /// Where the original file now is (where it still is, if it could not be
    /// moved on read-only storage).
    pub moved_to: PathBuf,
}

/// What the store remembers of a stored lease: enough to tell whether a
/// renewal's binding is on storage, not the lease itself (the server holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    address: Ipv4Addr,
    bound: bool,
}

/// The open lease file.
#[derive(Debug)]
pub struct LeaseStore {
    path: PathBuf,
    /// `None` when the storage is read-only.
    file: Option<File>,
    read_only: Option<String>,
    /// Length of the file up to the last complete, synced record.
    good_len: u64,
    /// Stored leases by a 64-bit hash of their key.
    stored: HashMap<u64, Stored>,
    records_since_compaction: usize,
}

fn key_hash(link: &str, client: &ClientId) -> u64 {
    // A fixed-key SipHash: the same on every run; 64 bits make a collision
    // between two of a spine's leases practically impossible.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    link.hash(&mut h);
    client.as_bytes().hash(&mut h);
    h.finish()
}

impl LeaseStore {
    /// Opens (or creates) the lease file, replays it, sets aside a damaged file,
    /// and rewrites it compacted. Returns the store, the leases and a report.
    /// Read-only storage is not an error: see [`LoadReport::read_only`].
    pub fn open(path: &Path) -> Result<(LeaseStore, Vec<Lease>, LoadReport), StoreError> {
        let mut read_only: Option<String> = None;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Err(e) = fs::create_dir_all(dir) {
                let e = StoreError::new(dir, "create directory", e);
                if !e.is_read_only() {
                    return Err(e);
                }
                read_only = Some(e.to_string());
            }
        }
        let mut live: HashMap<LeaseKey, Lease> = HashMap::new();
        let mut names: HashMap<String, LinkName> = HashMap::new();
        let mut report = LoadReport {
            path: path.to_path_buf(),
            existed: false,
            records: 0,
            leases: 0,
            damage: None,
            read_only: None,
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
                    let text = text.trim_end_matches(['\n', '\r']);
                    if text.trim().is_empty() {
                        continue;
                    }
                    // Ok(true): a change record; Ok(false): the header.
                    let parsed: Result<bool, String> = if !complete {
                        Err("truncated record (no newline): a write cut short".into())
                    } else if n == 1 && text.starts_with('{') {
                        match serde_json::from_str::<Header>(text) {
                            Ok(h) if h.format == FORMAT && (1..=VERSION).contains(&h.version) => {
                                Ok(false)
                            }
                            Ok(h) => Err(format!(
                                "header says format {:?} version {}, expected {FORMAT:?} \
                                 version 1 to {VERSION}",
                                h.format, h.version
                            )),
                            Err(_) => decode(text, &mut names)
                                .map(|c| apply(c, &mut live))
                                .map(|()| true)
                                .map_err(|e| format!("no header, and {e}")),
                        }
                    } else {
                        decode(text, &mut names)
                            .map(|c| apply(c, &mut live))
                            .map(|()| true)
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
            let mut moved_to = aside_name(path, stamp);
            if read_only.is_some() {
                moved_to = path.to_path_buf();
            } else if let Err(e) = fs::rename(path, &moved_to) {
                let e = StoreError::new(path, "move damaged file aside", e);
                if !e.is_read_only() {
                    return Err(e);
                }
                read_only = Some(e.to_string());
                moved_to = path.to_path_buf();
            }
            report.damage = Some(Damage {
                bad_lines,
                first_bad_line: line,
                why,
                moved_to,
            });
        }
        report.leases = live.len();
        let mut file = None;
        let mut good_len = 0;
        if read_only.is_none() {
            match write_snapshot(path, live.values()).and_then(|()| open_append(path)) {
                Ok(f) => {
                    good_len = f
                        .metadata()
                        .map_err(|e| StoreError::new(path, "stat", e))?
                        .len();
                    file = Some(f);
                }
                Err(e) if e.is_read_only() => read_only = Some(e.to_string()),
                Err(e) => return Err(e),
            }
        }
        report.read_only = read_only.clone();
        let stored = live
            .values()
            .map(|l| (key_hash(&l.link, &l.client), stored_of(l)))
            .collect();
        let leases: Vec<Lease> = live.into_values().collect();
        Ok((
            LeaseStore {
                path: path.to_path_buf(),
                file,
                read_only,
                good_len,
                stored,
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

    /// Why the file cannot be written, if it cannot.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// Number of leases on storage.
    pub fn len(&self) -> usize {
        self.stored.len()
    }

    /// Whether no lease is stored.
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }

    /// Whether the lease with this key is on storage, bound, at `address`.
    pub fn holds(&self, key: &LeaseKey, address: Ipv4Addr) -> bool {
        self.stored
            .get(&key_hash(&key.link, &key.client))
            .is_some_and(|s| s.bound && s.address == address)
    }

    /// Appends `changes` and fdatasyncs. On error nothing of the batch is kept
    /// in the file (it is cut back), so the batch can be retried whole.
    pub fn commit(&mut self, changes: &[LeaseChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Err(StoreError::new(
                &self.path,
                "append",
                io::Error::from_raw_os_error(libc::EROFS),
            ));
        };
        let mut buf = String::with_capacity(changes.len() * 128);
        for c in changes {
            encode(c, &mut buf);
        }
        let result = file
            .write_all(buf.as_bytes())
            .map_err(|e| StoreError::new(&self.path, "append", e))
            .and_then(|()| {
                file.sync_data()
                    .map_err(|e| StoreError::new(&self.path, "fdatasync", e))
            });
        if let Err(e) = result {
            // Cut off whatever part of the batch reached the file.
            let _ = file.set_len(self.good_len);
            let _ = file.sync_data();
            return Err(e);
        }
        self.good_len += buf.len() as u64;
        for c in changes {
            match c {
                LeaseChange::Put(l) => {
                    self.stored
                        .insert(key_hash(&l.link, &l.client), stored_of(l));
                }
                LeaseChange::Delete(k) => {
                    self.stored.remove(&key_hash(&k.link, &k.client));
                }
            }
        }
        self.records_since_compaction += changes.len();
        Ok(())
    }

    /// Whether the journal has grown enough (twice the leases, at least 1024
    /// records) to be worth rewriting with [`LeaseStore::compact`].
    pub fn needs_compaction(&self) -> bool {
        self.file.is_some() && self.records_since_compaction > 1024.max(self.stored.len() * 2)
    }

    /// Rewrites the file with exactly `leases` (the current leases, from the
    /// server), by atomic rename.
    pub fn compact<'a>(
        &mut self,
        leases: impl Iterator<Item = &'a Lease>,
    ) -> Result<(), StoreError> {
        let leases: Vec<&Lease> = leases.collect();
        write_snapshot(&self.path, leases.iter().copied())?;
        let file = open_append(&self.path)?;
        self.good_len = file
            .metadata()
            .map_err(|e| StoreError::new(&self.path, "stat", e))?
            .len();
        self.file = Some(file);
        self.stored = leases
            .iter()
            .map(|l| (key_hash(&l.link, &l.client), stored_of(l)))
            .collect();
        self.records_since_compaction = 0;
        Ok(())
    }
}

fn stored_of(l: &Lease) -> Stored {
    Stored {
        address: l.address,
        bound: l.state == LeaseState::Bound,
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

/// FNV-1a, 32 bit: the record checksum.
fn fnv32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Writes `text` with `%`, `#`, tab and control characters as `%XX`.
fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        if c == '%' || c == '#' || c.is_control() {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

fn unescape(field: &str) -> Result<String, String> {
    if !field.contains('%') {
        return Ok(field.to_string());
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = field
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape in {field:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("bad UTF-8 in {field:?}"))
}

fn plain_hex(bytes: &[u8], out: &mut String) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// Appends one version 2 record line for `change` to `out`.
fn encode(change: &LeaseChange, out: &mut String) {
    let start = out.len();
    match change {
        LeaseChange::Put(l) => {
            out.push_str("P\t");
            escape(&l.link, out);
            out.push('\t');
            plain_hex(l.client.as_bytes(), out);
            out.push('\t');
            plain_hex(l.mac.as_bytes(), out);
            let state = match (l.state, l.clock_trusted) {
                (LeaseState::Bound, true) => 'b',
                (LeaseState::Released, true) => 'r',
                (LeaseState::Bound, false) => 'B',
                (LeaseState::Released, false) => 'R',
            };
            let _ = write!(
                out,
                "\t{}\t{state}\t{}\t{}\t",
                l.address, l.expires, l.updated
            );
            escape(l.vendor.as_deref().unwrap_or(""), out);
            out.push('\t');
            escape(l.hostname.as_deref().unwrap_or(""), out);
        }
        LeaseChange::Delete(k) => {
            out.push_str("D\t");
            escape(&k.link, out);
            out.push('\t');
            plain_hex(k.client.as_bytes(), out);
        }
    }
    let sum = fnv32(&out.as_bytes()[start..]);
    let _ = writeln!(out, "\t#{sum:08x}");
}

fn intern(names: &mut HashMap<String, LinkName>, name: String) -> LinkName {
    if let Some(n) = names.get(&name) {
        return n.clone();
    }
    let n: LinkName = Arc::from(name.as_str());
    names.insert(name, n.clone());
    n
}

/// Decodes one record line, version 2 or version 1 (JSON).
fn decode(text: &str, names: &mut HashMap<String, LinkName>) -> Result<LeaseChange, String> {
    if text.starts_with('{') {
        return decode_v1(text, names);
    }
    let (body, sum) = text.rsplit_once("\t#").ok_or("bad record: no checksum")?;
    let sum = u32::from_str_radix(sum.trim(), 16).map_err(|_| "bad record: bad checksum")?;
    if fnv32(body.as_bytes()) != sum {
        return Err("bad record: checksum mismatch".into());
    }
    let f: Vec<&str> = body.split('\t').collect();
    let client = |s: &str| ClientId::parse_hex(s).ok_or(format!("bad client id {s:?}"));
    let num = |s: &str| s.parse::<u64>().map_err(|_| format!("bad time {s:?}"));
    let text_opt = |s: &str| -> Result<Option<Arc<str>>, String> {
        Ok((!s.is_empty())
            .then(|| unescape(s))
            .transpose()?
            .map(Arc::from))
    };
    match f.as_slice() {
        ["P", link, cid, mac, addr, state, expires, updated, vendor, hostname] => {
            Ok(LeaseChange::Put(Lease {
                link: intern(names, unescape(link)?),
                client: client(cid)?,
                mac: HwAddr::parse_hex(mac).ok_or(format!("bad MAC {mac:?}"))?,
                address: addr.parse().map_err(|_| format!("bad address {addr:?}"))?,
                state: match *state {
                    "b" | "B" => LeaseState::Bound,
                    "r" | "R" => LeaseState::Released,
                    other => return Err(format!("bad state {other:?}")),
                },
                expires: num(expires)?,
                updated: num(updated)?,
                clock_trusted: state.chars().all(|c| c.is_ascii_lowercase()),
                vendor: text_opt(vendor)?,
                hostname: text_opt(hostname)?,
            }))
        }
        ["D", link, cid] => Ok(LeaseChange::Delete(LeaseKey {
            link: intern(names, unescape(link)?),
            client: client(cid)?,
        })),
        _ => Err(format!("bad record: {} fields", f.len())),
    }
}

/// Version 1: one JSON object per line.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ChangeV1 {
    Put(LeaseV1),
    Delete { link: String, client: String },
}

#[derive(Deserialize)]
struct LeaseV1 {
    link: String,
    client: String,
    mac: String,
    address: Ipv4Addr,
    state: StateV1,
    expires: u64,
    updated: u64,
    #[serde(default)]
    vendor: Option<VendorV1>,
    #[serde(default)]
    hostname: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum StateV1 {
    Bound,
    Released,
}

#[derive(Deserialize)]
struct VendorV1 {
    class: String,
}

fn decode_v1(text: &str, names: &mut HashMap<String, LinkName>) -> Result<LeaseChange, String> {
    let c: ChangeV1 = serde_json::from_str(text).map_err(|e| format!("bad record: {e}"))?;
    let client = |s: &str| ClientId::parse_hex(s).ok_or(format!("bad client id {s:?}"));
    Ok(match c {
        ChangeV1::Put(l) => LeaseChange::Put(Lease {
            link: intern(names, l.link),
            client: client(&l.client)?,
            mac: HwAddr::parse_hex(&l.mac).ok_or(format!("bad MAC {:?}", l.mac))?,
            address: l.address,
            state: match l.state {
                StateV1::Bound => LeaseState::Bound,
                StateV1::Released => LeaseState::Released,
            },
            expires: l.expires,
            updated: l.updated,
            clock_trusted: true,
            vendor: l.vendor.map(|v| Arc::from(v.class)),
            hostname: l.hostname.map(Arc::from),
        }),
        ChangeV1::Delete { link, client: c } => LeaseChange::Delete(LeaseKey {
            link: intern(names, link),
            client: client(&c)?,
        }),
    })
}

/// Opens the lease file for appending, never through a symlink.
fn open_append(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| StoreError::new(path, "open for append", e))
}

static TMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Writes header + one Put per lease to a new temporary file beside `path`
/// (exclusive create, unique name, mode 0600), fsyncs, renames over `path`,
/// fsyncs the directory.
fn write_snapshot<'a>(
    path: &Path,
    leases: impl Iterator<Item = &'a Lease>,
) -> Result<(), StoreError> {
    let mut buf = serde_json::to_string(&Header {
        format: FORMAT.into(),
        version: VERSION,
    })
    .expect("header serializes");
    buf.push('\n');
    let mut sorted: Vec<&Lease> = leases.collect();
    sorted.sort_by(|a, b| (&a.link, &a.client).cmp(&(&b.link, &b.client)));
    for l in sorted {
        encode(&LeaseChange::Put(l.clone()), &mut buf);
    }
    // A fresh name per attempt: a name that exists (planted, or left by a
    // crash) is never opened, only skipped.
    let mut attempt = 0;
    let (tmp, mut f) = loop {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(path.file_name().unwrap_or_default());
        tmp_name.push(format!(
            ".tmp.{}.{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = path.with_file_name(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => {
                attempt += 1;
            }
            Err(e) => return Err(StoreError::new(&tmp, "create", e)),
        }
    };
    let result = (|| {
        // The mode given to open is cut by the umask; set it exactly.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| StoreError::new(&tmp, "chmod 0600", e))?;
        f.write_all(buf.as_bytes())
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
    use std::os::unix::fs::PermissionsExt;

    fn lease(link: &str, n: u8) -> Lease {
        Lease {
            link: link.into(),
            client: ClientId::from_hardware(1, &[0, 0, 0, 0, 0, n]),
            mac: HwAddr::new(&[0, 0, 0, 0, 0, n]),
            address: std::net::Ipv4Addr::new(10, 0, 0, n),
            state: LeaseState::Bound,
            expires: 1000,
            updated: 10,
            clock_trusted: true,
            vendor: Some("Arista;DCS-7050S-64;01.23;JPE%1\tX".into()),
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
        assert!(s.holds(&lease("et2", 2).key(), lease("et2", 2).address));
        assert!(!s.holds(&lease("et1", 1).key(), lease("et1", 1).address));
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
        let mut good = String::new();
        encode(&LeaseChange::Put(lease("et3", 3)), &mut good);
        f.write_all(good.as_bytes()).unwrap();
        // A flipped byte fails the checksum.
        let flipped = good.replace("10.0.0.3", "10.0.0.9");
        f.write_all(flipped.as_bytes()).unwrap();
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
        assert_eq!(d.bad_lines, 3);
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
    fn a_version_1_json_file_is_read_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        fs::write(
            &path,
            concat!(
                "{\"format\":\"ztps-leases\",\"version\":1}\n",
                "{\"op\":\"put\",\"link\":\"Ethernet1\",\"client\":\"01:00:1c:73:00:00:01\",",
                "\"mac\":\"00:1c:73:00:00:01\",\"address\":\"10.0.0.1\",\"state\":\"bound\",",
                "\"expires\":1700086400,\"updated\":1700000000,\"vendor\":{\"class\":",
                "\"Arista;DCS-7050SX3-48YC8;11.00;JPE1\",\"model\":\"DCS-7050SX3-48YC8\",",
                "\"hw_rev\":\"11.00\",\"serial\":\"JPE1\"},\"hostname\":\"leaf-JPE1\"}\n",
                "{\"op\":\"put\",\"link\":\"Ethernet2\",\"client\":\"01:00:1c:73:00:00:02\",",
                "\"mac\":\"00:1c:73:00:00:02\",\"address\":\"10.0.0.3\",\"state\":\"released\",",
                "\"expires\":1700000000,\"updated\":1700000000}\n",
                "{\"op\":\"delete\",\"link\":\"Ethernet2\",\"client\":\"01:00:1c:73:00:00:02\"}\n",
            ),
        )
        .unwrap();
        let (_, leases, rep) = LeaseStore::open(&path).unwrap();
        assert_eq!(rep.damage, None);
        assert_eq!(leases.len(), 1);
        let l = &leases[0];
        assert_eq!(&*l.link, "Ethernet1");
        assert_eq!(l.mac.to_string(), "00:1c:73:00:00:01");
        assert_eq!(l.serial(), Some("JPE1"));
        assert_eq!(l.hostname.as_deref(), Some("leaf-JPE1"));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"format\":\"ztps-leases\",\"version\":2}\n"));
        let (_, again, _) = LeaseStore::open(&path).unwrap();
        assert_eq!(again, leases);
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
        let mut live = HashMap::new();
        for i in 0..3000u32 {
            let mut l = lease("et1", (i % 5) as u8);
            l.updated = i as u64;
            s.commit(&[LeaseChange::Put(l.clone())]).unwrap();
            live.insert(l.key(), l);
            if s.needs_compaction() {
                s.compact(live.values()).unwrap();
            }
        }
        let lines = fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines < 1100, "journal compacted, {lines} lines");
        drop(s);
        let (_, leases, _) = LeaseStore::open(&path).unwrap();
        assert_eq!(leases.len(), 5);
        assert!(leases.iter().any(|l| l.updated == 2999));
    }

    /// Journal bytes per lease (issue 10): a typical ZTP lease record.
    #[test]
    fn a_record_is_compact() {
        let mut l = lease("Ethernet49/1", 1);
        l.vendor = Some("Arista;DCS-7050SX3-48YC8;11.00;JPE20000001".into());
        l.expires = 1_800_000_000;
        l.updated = 1_799_913_600;
        let mut line = String::new();
        encode(&LeaseChange::Put(l), &mut line);
        assert!(line.len() <= 130, "{} bytes: {line}", line.len());
    }

    /// Issue 11 item 12: a planted symlink where the temporary file goes is
    /// never followed, and the lease file is 0600 whatever the umask.
    #[test]
    fn temp_files_never_follow_symlinks_and_the_file_is_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        // Every name an older version or this one could use for its temp file.
        std::os::unix::fs::symlink(&victim, dir.path().join("leases.json.tmp")).unwrap();
        for n in 0..64 {
            let name = format!(".leases.json.tmp.{}.{n}", std::process::id());
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        // SAFETY: umask only changes this process's file creation mask.
        let old = unsafe { libc::umask(0) };
        let result = LeaseStore::open(&path);
        unsafe { libc::umask(old) };
        let (mut s, _, _) = result.expect("opens despite the planted links");
        s.commit(&[LeaseChange::Put(lease("et1", 1))]).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
    }
}
