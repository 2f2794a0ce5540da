//! Leases and the identity of a client on a link.
//!
//! Kept compact because a spine may hold tens of thousands of leases on a pool
//! link: the link name is shared (`Arc<str>`, interned by the server), client
//! identifiers and hardware addresses are bytes held inline, and the vendor class
//! is kept as the one text option 60 sent, parsed only when shown. In the
//! server's table a lease is smaller still (`server::Record`: the vendor text's
//! shared part interned per link and its serial inline, times in 32 bits).

use crate::vendor::VendorInfo;
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

pub use crate::time::{Mono, Now, UnixTime};

/// Bytes held inline up to 14, on the heap beyond (behind one thin pointer, so
/// the whole is 16 bytes): client identifiers are 7 bytes (type + MAC) in
/// practice, but option 61 may carry up to 255.
#[derive(Clone)]
enum Bytes {
    Inline(u8, [u8; 14]),
    #[allow(clippy::box_collection)]
    Heap(Box<Vec<u8>>),
}

impl Bytes {
    fn new(b: &[u8]) -> Bytes {
        if b.len() <= 14 {
            let mut a = [0u8; 14];
            a[..b.len()].copy_from_slice(b);
            Bytes::Inline(b.len() as u8, a)
        } else {
            Bytes::Heap(Box::new(b.to_vec()))
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Inline(n, a) => &a[..usize::from(*n)],
            Bytes::Heap(b) => b,
        }
    }
}

/// Who a client is, as the DHCP server sees it: option 61 if present, else the
/// hardware type and address. Shown as hex bytes `01:28:99:3a:23:92:09`.
///
/// An option 61 of exactly six bytes (EOS sends the system MAC without a type
/// byte) is treated as an Ethernet address, so it equals the form with type 1.
#[derive(Clone)]
pub struct ClientId(Bytes);

impl ClientId {
    /// From option 61.
    pub fn from_option61(raw: &[u8]) -> Self {
        if raw.len() == 6 {
            let mut v = [0u8; 7];
            v[0] = 1;
            v[1..].copy_from_slice(raw);
            return ClientId(Bytes::new(&v));
        }
        ClientId(Bytes::new(raw))
    }

    /// From the header's htype and chaddr (first `hlen` bytes).
    pub fn from_hardware(htype: u8, chaddr: &[u8]) -> Self {
        let mut v = Vec::with_capacity(chaddr.len() + 1);
        v.push(htype);
        v.extend_from_slice(chaddr);
        ClientId(Bytes::new(&v))
    }

    /// From the raw identifier bytes, as [`ClientId::as_bytes`] returns them.
    pub fn from_bytes(raw: &[u8]) -> Self {
        ClientId(Bytes::new(raw))
    }

    /// The identifier's bytes (for option 61 of six bytes, with type byte 1).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Parses the colon-separated hex form (as written by `Display`).
    pub fn parse_hex(text: &str) -> Option<Self> {
        parse_hex(text).map(|b| ClientId(Bytes::new(&b)))
    }
}

/// Colon-separated lower-case hex, or plain hex without colons.
fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

macro_rules! bytes_traits {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.as_bytes() == other.as_bytes()
            }
        }
        impl Eq for $t {}
        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.as_bytes().hash(state)
            }
        }
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $t {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_bytes().cmp(other.as_bytes())
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, self.as_bytes())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, self.as_bytes())
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

bytes_traits!(ClientId);
bytes_traits!(HwAddr);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(":")?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// A hardware address (chaddr, up to 16 bytes; 6 for Ethernet), shown as
/// `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy)]
pub struct HwAddr {
    len: u8,
    bytes: [u8; 16],
}

impl HwAddr {
    /// From chaddr's first `hlen` bytes (longer input is cut to 16).
    pub fn new(raw: &[u8]) -> HwAddr {
        let n = raw.len().min(16);
        let mut bytes = [0u8; 16];
        bytes[..n].copy_from_slice(&raw[..n]);
        HwAddr {
            len: n as u8,
            bytes,
        }
    }

    /// The address bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Parses the colon-separated (or plain) hex form.
    pub fn parse_hex(text: &str) -> Option<HwAddr> {
        parse_hex(text)
            .filter(|b| b.len() <= 16)
            .map(|b| HwAddr::new(&b))
    }
}

/// Colon-separated lower-case hex, the way MACs are written.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A link's name, shared by every lease, offer and event on the link.
pub type LinkName = Arc<str>;

/// A lease's key: identity never spans links, because the same leaf asks on all
/// of its uplinks at once with the same identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LeaseKey {
    /// The link's name (as the caller named it in the served-links table).
    pub link: LinkName,
    /// The client.
    pub client: ClientId,
}

/// Where a lease stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// ACKed and in use until `expires`.
    Bound,
    /// The client sent DHCPRELEASE; kept so it gets the same address back.
    Released,
}

/// One lease, as kept on flash (and in memory, beside its monotonic timers).
///
/// `expires` and `updated` are wall-clock times, written and shown only: the
/// server decides whether a lease is active by its monotonic deadline, see
/// [`crate::Server::lease_remaining`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// Link name.
    pub link: LinkName,
    /// Client identity.
    pub client: ClientId,
    /// Hardware address from chaddr.
    pub mac: HwAddr,
    /// The leased address.
    pub address: Ipv4Addr,
    /// State.
    pub state: LeaseState,
    /// When the lease ends (Unix seconds, as written; see the type's docs).
    pub expires: UnixTime,
    /// When it was last written (Unix seconds).
    pub updated: UnixTime,
    /// Whether `expires` and `updated` come from a wall clock believed right.
    /// A spine that booted with its clock in 1970 stamps records with a floor
    /// instead ([`crate::time::TrustedWall`]), and such a record gets a whole
    /// lease time again when loaded, rather than reading as long expired once
    /// the clock is fixed.
    pub clock_trusted: bool,
    /// What option 60 said (control characters removed), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<Arc<str>>,
    /// Option 12 given to the client, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Arc<str>>,
}

impl Lease {
    /// The lease's key.
    pub fn key(&self) -> LeaseKey {
        LeaseKey {
            link: self.link.clone(),
            client: self.client.clone(),
        }
    }

    /// Bound and, by its written expiry, not yet expired at wall time `now`.
    /// For display only: the server's own decisions use monotonic time.
    pub fn is_active(&self, now: UnixTime) -> bool {
        self.state == LeaseState::Bound && self.expires > now
    }

    /// The vendor class, parsed.
    pub fn vendor_info(&self) -> Option<VendorInfo> {
        self.vendor
            .as_deref()
            .map(|v| VendorInfo::parse(v.as_bytes()))
    }

    /// The serial from option 60, if known.
    pub fn serial(&self) -> Option<&str> {
        self.vendor.as_deref().and_then(|v| VendorInfo::fields(v).3)
    }

    /// The model from option 60, if known.
    pub fn model(&self) -> Option<&str> {
        self.vendor.as_deref().and_then(|v| VendorInfo::fields(v).1)
    }
}

/// A change to the lease table that must reach stable storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseChange {
    /// Insert or replace a lease.
    Put(Lease),
    /// Remove the lease with this key.
    Delete(LeaseKey),
}

impl LeaseChange {
    /// The key the change is about.
    pub fn key(&self) -> LeaseKey {
        match self {
            LeaseChange::Put(l) => l.key(),
            LeaseChange::Delete(k) => k.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_byte_option61_equals_the_typed_form_and_chaddr() {
        let mac = [0x28, 0x99, 0x3a, 0x23, 0x92, 0x09];
        let a = ClientId::from_option61(&mac);
        let b = ClientId::from_option61(&[1, 0x28, 0x99, 0x3a, 0x23, 0x92, 0x09]);
        let c = ClientId::from_hardware(1, &mac);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_string(), "01:28:99:3a:23:92:09");
        assert_ne!(ClientId::from_option61(b"\x00leaf-1"), a);
        assert_eq!(ClientId::parse_hex(&a.to_string()), Some(a));
    }

    #[test]
    fn long_client_ids_round_trip() {
        let raw: Vec<u8> = (0..=200).collect();
        let id = ClientId::from_option61(&raw);
        assert_eq!(id.as_bytes(), &raw[..]);
        assert_eq!(ClientId::parse_hex(&id.to_string()), Some(id));
    }

    /// Memory per lease (issue 10): the record itself stays small; the link name,
    /// vendor class and hostname are shared or one small allocation each.
    #[test]
    fn a_lease_is_compact() {
        assert!(std::mem::size_of::<ClientId>() <= 16);
        assert!(std::mem::size_of::<HwAddr>() <= 17);
        let size = std::mem::size_of::<Lease>();
        assert!(size <= 112, "Lease is {size} bytes");
    }
}
