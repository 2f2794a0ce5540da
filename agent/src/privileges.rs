//! After its sockets are bound, the daemon keeps only the capabilities it
//! still needs and drops every other one (effective, permitted, inheritable,
//! ambient and the bounding set, so no later exec can regain them):
//!
//! - `CAP_NET_RAW`: replies to a client without an address go out on a packet
//!   socket, and sockets are bound to an interface (`SO_BINDTODEVICE`);
//! - `CAP_NET_BIND_SERVICE`: the ZTP HTTP server may bind port 80 later (at
//!   start or after a SIGHUP turns `ztp.serve` on);
//! - `CAP_NET_ADMIN`: interface-level socket options the DHCP and ZTP sockets
//!   may set after a reload; nothing in the daemon changes kernel tables.
//!
//! Root's other powers go: notably `CAP_DAC_OVERRIDE`, so the daemon (uid 0)
//! writes only files and directories that uid 0 owns or may write by their
//! mode, as the lease file, the status directory and `/mnt/flash` are.
//!
//! Capabilities are per thread and inherited by new threads: this runs on the
//! main thread before any other thread is started.

use caps::{CapSet, Capability, CapsHashSet};

/// The capabilities the running daemon keeps.
pub const KEPT: [Capability; 3] = [
    Capability::CAP_NET_ADMIN,
    Capability::CAP_NET_RAW,
    Capability::CAP_NET_BIND_SERVICE,
];

/// What [`drop_all_but_kept`] left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The effective set now (the kept ones the process had).
    pub effective: Vec<Capability>,
    /// How many were dropped from the effective set.
    pub dropped: usize,
}

/// Drops every capability but [`KEPT`] from this thread (and so from every
/// thread started after). A process that lacks some kept capability keeps
/// the ones it has; one without `CAP_SETPCAP` cannot shrink its bounding set
/// and says so in the error.
pub fn drop_all_but_kept() -> Result<Kept, caps::errors::CapsError> {
    let permitted = caps::read(None, CapSet::Permitted)?;
    let effective_before = caps::read(None, CapSet::Effective)?;
    let kept: CapsHashSet = KEPT
        .iter()
        .copied()
        .filter(|c| permitted.contains(c))
        .collect();
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP)? {
        for cap in caps::runtime::thread_all_supported() {
            if !kept.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)?;
            }
        }
    }
    // Ambient capabilities would survive an exec: none.
    let _ = caps::clear(None, CapSet::Ambient);
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new())?;
    caps::set(None, CapSet::Effective, &kept)?;
    caps::set(None, CapSet::Permitted, &kept)?;
    let mut effective: Vec<Capability> = kept.into_iter().collect();
    effective.sort_by_key(|c| c.index());
    Ok(Kept {
        dropped: effective_before.len().saturating_sub(effective.len()),
        effective,
    })
}

/// The bit mask of `caps`, as `/proc/<pid>/status` shows it (`CapEff:`).
pub fn mask(caps: &[Capability]) -> u64 {
    caps.iter().fold(0, |m, c| m | c.bitmask())
}
