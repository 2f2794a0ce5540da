//! Leases and the identity of a client on a link.

use crate::vendor::VendorInfo;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// Seconds since the Unix epoch. The core is given the time; it never reads a clock.
pub type UnixTime = u64;

/// Who a client is, as the DHCP server sees it: option 61 if present, else the
/// hardware type and address. Shown as hex bytes `01:28:99:3a:23:92:09`.
///
/// An option 61 of exactly six bytes (EOS sends the system MAC without a type
/// byte) is treated as an Ethernet address, so it equals the form with type 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// From option 61.
    pub fn from_option61(raw: &[u8]) -> Self {
        if raw.len() == 6 {
            let mut v = Vec::with_capacity(7);
            v.push(1);
            v.extend_from_slice(raw);
            return ClientId(hex(&v));
        }
        ClientId(hex(raw))
    }

    /// From the header's htype and chaddr (first `hlen` bytes).
    pub fn from_hardware(htype: u8, chaddr: &[u8]) -> Self {
        let mut v = Vec::with_capacity(chaddr.len() + 1);
        v.push(htype);
        v.extend_from_slice(chaddr);
        ClientId(hex(&v))
    }

    /// The hex form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Colon-separated lower-case hex, the way MACs are written.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A lease's key: identity never spans links, because the same leaf asks on all
/// of its uplinks at once with the same identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseKey {
    /// The link's name (as the caller named it in the served-links table).
    pub link: String,
    /// The client.
    pub client: ClientId,
}

/// Where a lease stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// ACKed and in use until `expires`.
    Bound,
    /// The client sent DHCPRELEASE; kept so it gets the same address back.
    Released,
}

/// One lease, as kept in memory and on flash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Link name.
    pub link: String,
    /// Client identity.
    pub client: ClientId,
    /// Hardware address from chaddr, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// The leased address.
    pub address: Ipv4Addr,
    /// State.
    pub state: LeaseState,
    /// When the lease ends (Unix seconds).
    pub expires: UnixTime,
    /// When it was last ACKed or changed (Unix seconds).
    pub updated: UnixTime,
    /// What option 60 said, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<VendorInfo>,
    /// Option 12 given to the client, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

impl Lease {
    /// The lease's key.
    pub fn key(&self) -> LeaseKey {
        LeaseKey {
            link: self.link.clone(),
            client: self.client.clone(),
        }
    }

    /// Bound and not yet expired at `now`.
    pub fn is_active(&self, now: UnixTime) -> bool {
        self.state == LeaseState::Bound && self.expires > now
    }

    /// The serial from option 60, if known.
    pub fn serial(&self) -> Option<&str> {
        self.vendor.as_ref().and_then(|v| v.serial.as_deref())
    }
}

/// A change to the lease table that must reach stable storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
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
        assert_eq!(a.as_str(), "01:28:99:3a:23:92:09");
        assert_ne!(ClientId::from_option61(b"\x00leaf-1"), a);
    }
}
