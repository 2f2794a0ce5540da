//! The sans-IO DHCPv4 server: (time, ingress link, packet) in, (reply, lease
//! changes, events) out.
//!
//! **Invariants.** It reads no clock and touches no socket or file: the caller
//! passes the time ([`Now`]: monotonic for every timer, wall only for what is
//! written) and carries out the [`Outcome`]. Every lease change it makes in
//! memory is returned in `Outcome::changes`, and the caller must put those on
//! stable storage before it sends the reply (an ACK must never promise what a
//! crash could lose). At most one lease holds an address on a link. Pending state
//! is bounded per link: OFFERs expire and are capped per link, so a flood on one
//! link costs no other link anything; each client is rate-limited. Idle work is
//! O(what expired), never O(leases): lease expiry runs off a heap of monotonic
//! deadlines, and per-link summaries are kept up to date on change.

use crate::config::{ClientClass, HostnameVars, ServerConfig};
use crate::gate::Bucket;
use crate::lease::{ClientId, HwAddr, Lease, LeaseChange, LeaseKey, LeaseState, LinkName};
use crate::packet::{self, Request};
use crate::plan::AddressPlan;
use crate::table::{Addressed, ClientTable};
use crate::time::{Mono, Now, TrustedWall, UnixTime};
use crate::vendor::VendorInfo;
use dhcproto::v4::{DhcpOption, MessageType};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

/// A link the server answers on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedLink {
    /// Name used for leases, logs and status (stable across reboots, unlike ifindex).
    pub name: String,
    /// Kernel interface index the packets arrive on and replies leave by.
    pub ifindex: u32,
    /// How addresses are given out on it.
    pub plan: AddressPlan,
}

/// Where a reply goes (RFC 2131 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// giaddr was set: to the relay, port 67.
    Relay(Ipv4Addr),
    /// ciaddr was set: unicast to the client, port 68.
    Unicast(Ipv4Addr),
    /// The client asked for broadcast, or it is a NAK: 255.255.255.255:68.
    Broadcast,
    /// The client has no address yet: unicast to `address` at hardware address
    /// `chaddr` (needs an ARP entry), else broadcast.
    Hardware {
        /// yiaddr.
        address: Ipv4Addr,
        /// The client's hardware address.
        chaddr: Vec<u8>,
    },
}

/// A reply ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// OFFER, ACK or NAK.
    pub kind: MessageType,
    /// The link's kernel index: replies always name their outgoing interface.
    pub ifindex: u32,
    /// Source address (the server identifier on that link).
    pub source: Ipv4Addr,
    /// Where it goes.
    pub destination: Destination,
    /// The encoded packet.
    pub payload: Vec<u8>,
}

/// What handling one packet produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The reply, if any. Send it only after `changes` are durable.
    pub reply: Option<Reply>,
    /// Lease changes to store.
    pub changes: Vec<LeaseChange>,
    /// Things worth logging or showing in status.
    pub events: Vec<Event>,
}

/// Something that happened, for logs and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An address was offered.
    Offered {
        /// Link name.
        link: LinkName,
        /// Client MAC.
        mac: HwAddr,
        /// Offered address.
        address: Ipv4Addr,
        /// What option 60 said.
        vendor: Option<Arc<str>>,
    },
    /// A lease was granted or renewed.
    Acked {
        /// Link name.
        link: LinkName,
        /// Client MAC.
        mac: HwAddr,
        /// Leased address.
        address: Ipv4Addr,
        /// What option 60 said.
        vendor: Option<Arc<str>>,
        /// A renewal of the client's current lease rather than a new binding.
        renewal: bool,
    },
    /// A request was refused.
    Naked {
        /// Link name.
        link: LinkName,
        /// Client MAC.
        mac: HwAddr,
        /// The address it asked for.
        requested: Option<Ipv4Addr>,
        /// Why.
        reason: String,
    },
    /// A client released its lease.
    Released {
        /// Link name.
        link: LinkName,
        /// Client MAC.
        mac: HwAddr,
        /// The address.
        address: Ipv4Addr,
    },
    /// A client said the address is in use by someone else.
    Declined {
        /// Link name.
        link: LinkName,
        /// Client MAC.
        mac: HwAddr,
        /// The address, now quarantined.
        address: Ipv4Addr,
        /// For how long, in seconds.
        quarantine_secs: u64,
        /// Whether the lease record was kept (a point-to-point link's address
        /// belongs to the link: a DECLINE never deletes its binding).
        binding_kept: bool,
    },
    /// An INFORM was answered.
    Informed {
        /// Link name.
        link: LinkName,
        /// Client MAC.
        mac: HwAddr,
        /// The client's own address.
        address: Ipv4Addr,
    },
    /// A new leaf took a point-to-point link's address from the old one.
    Replaced {
        /// Link name.
        link: LinkName,
        /// The link's leaf address.
        address: Ipv4Addr,
        /// Old holder's MAC.
        old_mac: HwAddr,
        /// Old holder's serial, if known.
        old_serial: Option<String>,
        /// New holder's MAC.
        new_mac: HwAddr,
        /// New holder's serial, if known.
        new_serial: Option<String>,
    },
    /// A client sent more packets than it is answered (rate-limited itself).
    RateLimited {
        /// Link name.
        link: LinkName,
        /// Client MAC.
        mac: HwAddr,
        /// Packets dropped on this link since the last such event.
        suppressed: u32,
    },
    /// A DECLINE or RELEASE that did not come from the lease's holder (client
    /// id, chaddr and address must all match) was ignored (rate-limited).
    Spoofed {
        /// Link name.
        link: LinkName,
        /// chaddr of the packet.
        mac: HwAddr,
        /// "DECLINE" or "RELEASE".
        kind: &'static str,
        /// The address it named.
        address: Ipv4Addr,
        /// How many more since the last such event on this link.
        suppressed: u32,
    },
    /// A client whose option 60 matches no class was ignored (rate-limited).
    IgnoredClass {
        /// Link name.
        link: LinkName,
        /// Client MAC.
        mac: HwAddr,
        /// Its option 60, if any.
        vendor_class: Option<String>,
        /// How many more were ignored since the last such event on this link.
        suppressed: u32,
    },
    /// The link's address is bound to another client that is still active.
    HeldByOther {
        /// Link name.
        link: LinkName,
        /// The address.
        address: Ipv4Addr,
        /// The holder.
        holder_mac: HwAddr,
        /// The client that asked.
        asking_mac: HwAddr,
    },
    /// No address could be offered (pool exhausted or quarantined).
    NoAddress {
        /// Link name.
        link: LinkName,
        /// Client MAC.
        mac: HwAddr,
    },
    /// A packet arrived on an interface that is not served (rate-limited).
    UnservedLink {
        /// Kernel interface index.
        ifindex: u32,
        /// How many more since the last such event.
        suppressed: u32,
    },
    /// A packet could not be decoded (rate-limited).
    Malformed {
        /// Kernel interface index.
        ifindex: u32,
        /// The decoder's complaint.
        error: String,
        /// How many more since the last such event.
        suppressed: u32,
    },
}

impl Event {
    /// The link the event is about, if it is about a served link.
    pub fn link(&self) -> Option<&str> {
        match self {
            Event::Offered { link, .. }
            | Event::Acked { link, .. }
            | Event::Naked { link, .. }
            | Event::Released { link, .. }
            | Event::Declined { link, .. }
            | Event::Informed { link, .. }
            | Event::Replaced { link, .. }
            | Event::IgnoredClass { link, .. }
            | Event::HeldByOther { link, .. }
            | Event::NoAddress { link, .. }
            | Event::RateLimited { link, .. }
            | Event::Spoofed { link, .. } => Some(link),
            Event::UnservedLink { .. } | Event::Malformed { .. } => None,
        }
    }
}

impl Event {
    /// Whether the event is a change an operator should see in the log at info
    /// level or above (a new lease, a new address, a replaced leaf, a refusal
    /// and its reason, rate limiting). OFFERs, renewals and INFORMs are not:
    /// they are counted per link ([`Server::link_counters`]) and logged at debug.
    pub fn is_state_change(&self) -> bool {
        !matches!(
            self,
            Event::Offered { .. } | Event::Acked { renewal: true, .. } | Event::Informed { .. }
        )
    }

    /// A short form for a status column: what happened, without the details the
    /// row already shows (MAC, model, serial).
    pub fn summary(&self) -> String {
        match self {
            Event::Offered { address, .. } => format!("OFFER {address}"),
            Event::Acked {
                address,
                renewal: true,
                ..
            } => format!("ACK {address} (renewal)"),
            Event::Acked { address, .. } => format!("ACK {address}"),
            Event::Naked { reason, .. } => format!("NAK: {reason}"),
            Event::Released { address, .. } => format!("RELEASE {address}"),
            Event::Declined { address, .. } => format!("DECLINE {address}"),
            Event::Informed { address, .. } => format!("INFORM from {address}"),
            Event::Replaced {
                old_serial,
                new_serial,
                ..
            } => format!(
                "replaced leaf {} -> {}",
                old_serial.as_deref().unwrap_or("?"),
                new_serial.as_deref().unwrap_or("?")
            ),
            Event::IgnoredClass { vendor_class, .. } => format!(
                "ignored client, vendor class {}",
                vendor_class.as_deref().unwrap_or("(none)")
            ),
            Event::HeldByOther { holder_mac, .. } => format!("refused: held by {holder_mac}"),
            Event::NoAddress { .. } => "no free address".into(),
            Event::RateLimited { .. } => "rate-limited".into(),
            Event::Spoofed { kind, address, .. } => {
                format!("ignored {kind} of {address} not from its holder")
            }
            Event::UnservedLink { .. } => "DHCP on an unserved link".into(),
            Event::Malformed { error, .. } => format!("malformed packet: {error}"),
        }
    }
}

fn leaf(v: &Option<Arc<str>>) -> String {
    match v.as_deref().map(VendorInfo::fields) {
        Some((_, model, _, serial)) => format!(
            "{} serial {}",
            model.unwrap_or("unknown-model"),
            serial.unwrap_or("unknown")
        ),
        None => "no vendor class".into(),
    }
}

fn suppressed(n: u32) -> String {
    if n > 0 {
        format!(" ({n} more since last report)")
    } else {
        String::new()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Offered {
                link,
                mac,
                address,
                vendor,
            } => {
                write!(f, "{link}: OFFER {address} to {mac} ({})", leaf(vendor))
            }
            Event::Acked {
                link,
                mac,
                address,
                vendor,
                renewal,
            } => write!(
                f,
                "{link}: ACK {address} to {mac} ({}){}",
                leaf(vendor),
                if *renewal { " renewal" } else { "" }
            ),
            Event::Naked {
                link,
                mac,
                requested,
                reason,
            } => match requested {
                Some(r) => write!(f, "{link}: NAK {mac} asking for {r}: {reason}"),
                None => write!(f, "{link}: NAK {mac}: {reason}"),
            },
            Event::Released { link, mac, address } => {
                write!(f, "{link}: RELEASE of {address} by {mac}")
            }
            Event::Declined {
                link,
                mac,
                address,
                quarantine_secs,
                binding_kept,
            } => write!(
                f,
                "{link}: DECLINE of {address} by its holder {mac}: address in use elsewhere, \
                 quarantined for {quarantine_secs}s{}",
                if *binding_kept {
                    "; the point-to-point link keeps its binding: check the link for a \
                     second device or a duplicate address"
                } else {
                    ""
                }
            ),
            Event::RateLimited {
                link,
                mac,
                suppressed: n,
            } => write!(
                f,
                "{link}: {mac} sends faster than it is answered; dropping its excess \
                 packets{}",
                suppressed(*n)
            ),
            Event::Spoofed {
                link,
                mac,
                kind,
                address,
                suppressed: n,
            } => write!(
                f,
                "{link}: ignoring {kind} of {address} from {mac}: not the lease's holder \
                 (client id, hardware address and address must all match){}",
                suppressed(*n)
            ),
            Event::Informed { link, mac, address } => {
                write!(f, "{link}: INFORM from {mac} at {address} answered")
            }
            Event::Replaced {
                link,
                address,
                old_mac,
                old_serial,
                new_mac,
                new_serial,
            } => {
                write!(
                    f,
                    "{link}: replaced leaf: {address} passes from {old_mac} (serial {}) \
                     to {new_mac} (serial {})",
                    old_serial.as_deref().unwrap_or("unknown"),
                    new_serial.as_deref().unwrap_or("unknown")
                )
            }
            Event::IgnoredClass {
                link,
                mac,
                vendor_class,
                suppressed: n,
            } => write!(
                f,
                "{link}: ignoring {mac}: vendor class {} matches no configured class{}",
                vendor_class
                    .as_deref()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_else(|| "(none)".into()),
                suppressed(*n)
            ),
            Event::HeldByOther {
                link,
                address,
                holder_mac,
                asking_mac,
            } => write!(
                f,
                "{link}: not offering {address} to {asking_mac}: held by {holder_mac}, \
                 which is still active on the link"
            ),
            Event::NoAddress { link, mac } => {
                write!(f, "{link}: no free address for {mac}")
            }
            Event::UnservedLink {
                ifindex,
                suppressed: n,
            } => write!(
                f,
                "dropping DHCP from interface index {ifindex}: not a served link{}",
                suppressed(*n)
            ),
            Event::Malformed {
                ifindex,
                error,
                suppressed: n,
            } => write!(
                f,
                "dropping malformed DHCP packet on interface index {ifindex}: {error}{}",
                suppressed(*n)
            ),
        }
    }
}

/// Per-link packet counters, for status: what the log no longer says per packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounters {
    /// OFFERs sent.
    pub offers: u64,
    /// ACKs for REQUESTs (new leases and renewals).
    pub acks: u64,
    /// Of `acks`, renewals of the client's current lease.
    pub renewals: u64,
    /// NAKs sent.
    pub naks: u64,
    /// INFORMs answered.
    pub informs: u64,
    /// RELEASEs and DECLINEs accepted from the holder.
    pub releases: u64,
    /// DECLINEs accepted from the holder.
    pub declines: u64,
    /// Packets dropped: no class, no address to offer, spoofed DECLINE/RELEASE,
    /// INFORM from off the link, and the like.
    pub dropped: u64,
    /// Packets dropped because their client sent too many.
    pub rate_limited: u64,
}

/// A link's leases at a glance, kept up to date on every change so status
/// costs O(links), not O(leases).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkSummary {
    /// Lease records on the link (bound, released or expired).
    pub leases: usize,
    /// Of those, bound and not expired (by the monotonic clock).
    pub active: usize,
    /// The lease to show for the link: the most recently granted, or the
    /// newest record if none is bound.
    pub latest: Option<Lease>,
    /// Its remaining time by the monotonic clock (zero if expired or released).
    pub latest_remaining: Duration,
    /// OFFERs waiting for a REQUEST on the link.
    pub pending_offers: usize,
}

#[derive(Debug, Clone)]
struct Offer {
    address: Ipv4Addr,
    expires: Mono,
}

/// Option 60 text held compactly: an Arista leaf sends
/// `Arista;<model>;<rev>;<serial>`, and on a pool link thousands of leaves share
/// everything but the serial. The shared part is one `Arc<String>` (a thin
/// pointer: 8 bytes per lease) per link (see `LinkState::vendor_text`); a serial
/// of up to 15 bytes is held inline.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VendorText {
    /// The text up to and including its last `;` (all of it if the tail does
    /// not fit inline).
    prefix: Arc<String>,
    tail_len: u8,
    tail: [u8; VendorText::TAIL],
}

impl VendorText {
    const TAIL: usize = 15;

    /// Splits `text` at its last `;`; the tail is inline if it fits.
    fn split(text: &str) -> (&str, &str) {
        match text.rfind(';') {
            Some(i) if text.len() - i - 1 <= Self::TAIL => text.split_at(i + 1),
            _ => (text, ""),
        }
    }

    fn new(prefix: Arc<String>, tail: &str) -> VendorText {
        let mut bytes = [0u8; Self::TAIL];
        bytes[..tail.len()].copy_from_slice(tail.as_bytes());
        VendorText {
            prefix,
            tail_len: tail.len() as u8,
            tail: bytes,
        }
    }

    fn tail(&self) -> &str {
        // Built from a `&str` cut at a char boundary (after an ASCII `;`).
        std::str::from_utf8(&self.tail[..usize::from(self.tail_len)]).unwrap_or("")
    }

    /// The whole text, as option 60 sent it (sanitized).
    fn text(&self) -> Arc<str> {
        Arc::from(format!("{}{}", self.prefix, self.tail()))
    }

    fn is(&self, text: &str) -> bool {
        text.len() == self.prefix.len() + usize::from(self.tail_len)
            && text.starts_with(self.prefix.as_str())
            && text[self.prefix.len()..] == *self.tail()
    }
}

/// Unix seconds held in 32 bits (until 2106; later saturates).
fn secs32(t: UnixTime) -> u32 {
    u32::try_from(t).unwrap_or(u32::MAX)
}

/// `Record::flags`: the written record's clock was trusted.
const TRUSTED: u8 = 1;
/// `Record::flags`: counted in `LinkState::active`, with a deadline in `LinkState::expiry`.
const ACTIVE: u8 = 2;
/// `Record::flags`: known to be on storage ([`Server::mark_stored`]): only then
/// may a renewal skip the write.
const STORED: u8 = 4;

/// A lease record without its key: the link and the client are the maps'
/// (issue 10: no per-lease copy of what the key already says). Laid out to fit
/// 72 bytes, so an [`Entry`] is 88: times in 32 bits, flags in one byte.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    vendor: Option<VendorText>,
    hostname: Option<Arc<str>>,
    expires: u32,
    updated: u32,
    address: Ipv4Addr,
    mac: HwAddr,
    state: LeaseState,
    flags: u8,
}

impl Record {
    fn of(l: Lease, vendor: Option<VendorText>) -> Record {
        Record {
            mac: l.mac,
            address: l.address,
            state: l.state,
            flags: if l.clock_trusted { TRUSTED } else { 0 },
            expires: secs32(l.expires),
            updated: secs32(l.updated),
            vendor,
            hostname: l.hostname,
        }
    }

    fn lease(&self, link: &LinkName, client: &ClientId) -> Lease {
        Lease {
            link: link.clone(),
            client: client.clone(),
            mac: self.mac,
            address: self.address,
            state: self.state,
            expires: self.expires(),
            updated: self.updated(),
            clock_trusted: self.clock_trusted(),
            vendor: self.vendor.as_ref().map(VendorText::text),
            hostname: self.hostname.clone(),
        }
    }

    fn expires(&self) -> UnixTime {
        UnixTime::from(self.expires)
    }

    fn updated(&self) -> UnixTime {
        UnixTime::from(self.updated)
    }

    fn clock_trusted(&self) -> bool {
        self.flags & TRUSTED != 0
    }

    /// Whether the vendor text is `text`.
    fn vendor_is(&self, text: Option<&str>) -> bool {
        match (&self.vendor, text) {
            (None, None) => true,
            (Some(v), Some(t)) => v.is(t),
            _ => false,
        }
    }

    /// Whether `l` is this record (its key aside).
    fn is(&self, l: &Lease) -> bool {
        self.mac == l.mac
            && self.address == l.address
            && self.state == l.state
            && self.clock_trusted() == l.clock_trusted
            && self.expires == secs32(l.expires)
            && self.updated == secs32(l.updated)
            && self.vendor_is(l.vendor.as_deref())
            && self.hostname == l.hostname
    }
}

/// A lease in memory: the record as last written, and its monotonic timers.
#[derive(Debug, Clone)]
struct Entry {
    lease: Record,
    /// When the lease ends, by the monotonic clock.
    expires: Mono,
    /// When its holder was last heard from.
    heard: Mono,
}

impl Addressed for Entry {
    fn address(&self) -> Ipv4Addr {
        self.lease.address
    }
}

impl Entry {
    /// Counted in `LinkState::active`, with a deadline in `LinkState::expiry`.
    fn active(&self) -> bool {
        self.lease.flags & ACTIVE != 0
    }

    fn set_active(&mut self, on: bool) {
        self.set(ACTIVE, on);
    }

    /// The record is known to be on storage.
    fn stored(&self) -> bool {
        self.lease.flags & STORED != 0
    }

    fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.lease.flags |= flag;
        } else {
            self.lease.flags &= !flag;
        }
    }
}

/// A lease deadline in the expiry heap, packed in 8 bytes: whole monotonic
/// seconds (rounded up: a lease is found expired at most a second late; its
/// remaining time always uses the exact deadline) and the address.
fn due(expires: Mono, address: Ipv4Addr) -> Reverse<u64> {
    let secs = expires.0.div_ceil(1000).min(u64::from(u32::MAX));
    Reverse(secs << 32 | u64::from(u32::from(address)))
}

/// The (deadline, address) of a heap entry made by [`due`].
fn undue(packed: u64) -> (Mono, Ipv4Addr) {
    (Mono((packed >> 32) * 1000), Ipv4Addr::from(packed as u32))
}

/// Everything the server knows about one link (served now or not: a link that
/// goes away keeps its leases for when it comes back).
#[derive(Debug)]
struct LinkState {
    name: LinkName,
    /// Every lease record, by client and by address.
    leases: ClientTable<Entry>,
    offers: HashMap<ClientId, Offer>,
    /// address -> client, for pending offers.
    offered: HashMap<Ipv4Addr, ClientId>,
    /// Offers in creation order; all have the same hold time, so this is expiry order.
    offer_queue: VecDeque<(Mono, ClientId)>,
    quarantine: HashMap<Ipv4Addr, Mono>,
    /// Lease deadlines; an entry is checked against the lease when it comes due
    /// (a renewal moves the lease's deadline without touching the heap).
    expiry: BinaryHeap<Reverse<u64>>,
    active: usize,
    /// The lease shown in status (see [`LinkSummary::latest`]).
    latest: Option<ClientId>,
    pool_cursor: u32,
    counters: LinkCounters,
    /// Rate of recent senders that hold a lease or an offer (kept apart from
    /// the leases: most leases send twice a lease time, and need none).
    buckets: HashMap<ClientId, Bucket>,
    /// The vendor class last seen on the link, shared by the leases that sent
    /// the same text (many clients of one kind on a pool link).
    last_vendor: Option<Arc<str>>,
    /// Shared parts of recent vendor texts, for lease records (see [`VendorText`]).
    vendor_prefixes: Vec<Arc<String>>,
}

impl LinkState {
    fn new(name: LinkName) -> LinkState {
        LinkState {
            name,
            leases: ClientTable::default(),
            offers: HashMap::new(),
            offered: HashMap::new(),
            offer_queue: VecDeque::new(),
            quarantine: HashMap::new(),
            expiry: BinaryHeap::new(),
            active: 0,
            latest: None,
            pool_cursor: 0,
            counters: LinkCounters::default(),
            last_vendor: None,
            vendor_prefixes: Vec::new(),
            buckets: HashMap::new(),
        }
    }

    /// Drops what expired: offers, quarantines, lease deadlines. O(what expired).
    fn expire(&mut self, now: Mono, max_offers: usize) {
        while let Some((expires, _)) = self.offer_queue.front() {
            if *expires > now && self.offer_queue.len() <= max_offers.max(1) {
                break;
            }
            let (expires, client) = self.offer_queue.pop_front().expect("front exists");
            if self
                .offers
                .get(&client)
                .is_some_and(|o| o.expires == expires)
            {
                self.drop_offer(&client);
            }
        }
        if !self.quarantine.is_empty() {
            self.quarantine.retain(|_, until| *until > now);
        }
        while let Some(Reverse(packed)) = self.expiry.peek().copied() {
            let (due_at, addr) = undue(packed);
            if due_at > now {
                break;
            }
            self.expiry.pop();
            let Some(entry) = self.leases.at_address_mut(addr) else {
                continue;
            };
            if !entry.active() {
                continue;
            }
            if entry.expires > now {
                // Renewed since: due again at its new deadline.
                self.expiry.push(due(entry.expires, addr));
            } else {
                entry.set_active(false);
                self.active -= 1;
            }
        }
    }

    /// Gives back what a burst left behind: idle rate records go, and a table
    /// (offers, rate records, quarantine) filled by thousands of clients at
    /// once and now mostly empty is shrunk (issue 10: RSS holds the leases,
    /// not the size of the last avalanche). Called from [`Server::sweep`].
    fn shrink_after_burst(&mut self, now: Mono) {
        self.buckets.retain(|_, b| !b.is_idle(now));
        shrink_if_sparse(&mut self.buckets);
        shrink_if_sparse(&mut self.offers);
        shrink_if_sparse(&mut self.offered);
        shrink_if_sparse(&mut self.quarantine);
        if is_sparse(self.offer_queue.len(), self.offer_queue.capacity()) {
            self.offer_queue.shrink_to_fit();
        }
    }

    /// Recent vendor prefixes shared per link, at most.
    const VENDOR_PREFIXES: usize = 8;

    /// `text` held compactly, its shared part taken from the link's recent
    /// prefixes (many leaves of a few models on a pool link).
    fn vendor_text(&mut self, text: Option<&Arc<str>>) -> Option<VendorText> {
        let text = text?;
        let (prefix, tail) = VendorText::split(text);
        let shared = match self.vendor_prefixes.iter().position(|p| **p == prefix) {
            Some(i) => self.vendor_prefixes[i].clone(),
            None => {
                let p = Arc::new(prefix.to_string());
                if self.vendor_prefixes.len() >= Self::VENDOR_PREFIXES {
                    self.vendor_prefixes.remove(0);
                }
                self.vendor_prefixes.push(p.clone());
                p
            }
        };
        Some(VendorText::new(shared, tail))
    }

    fn drop_offer(&mut self, client: &ClientId) {
        if let Some(o) = self.offers.remove(client) {
            if self.offered.get(&o.address) == Some(client) {
                self.offered.remove(&o.address);
            }
        }
    }

    fn deactivate(&mut self, client: &ClientId) {
        if let Some(e) = self.leases.get_mut(client) {
            if e.active() {
                e.set_active(false);
                self.active -= 1;
            }
        }
    }

    /// Inserts or replaces a lease record, keeping one holder per address.
    fn insert(&mut self, lease: Lease, expires: Mono, heard: Mono, now: Mono, stored: bool) {
        let client = lease.client.clone();
        let address = lease.address;
        // One lease per address on a link: an older claim by another client goes.
        if let Some(other) = self.leases.holder(address).cloned() {
            if other != client {
                self.remove(&other);
            }
        }
        let was_active = self
            .leases
            .get(&client)
            .is_some_and(|old| old.lease.address == address && old.active());
        if !was_active {
            self.deactivate(&client);
        }
        let active = lease.state == LeaseState::Bound && expires > now;
        if active && !was_active {
            self.active += 1;
            self.expiry.push(due(expires, address));
        } else if !active && was_active {
            self.active -= 1;
        }
        let newer = match self.latest.as_ref().and_then(|c| self.leases.get(c)) {
            None => true,
            Some(cur) => {
                (lease.state == LeaseState::Bound, lease.updated)
                    >= (cur.lease.state == LeaseState::Bound, cur.lease.updated())
            }
        };
        let vendor = self.vendor_text(lease.vendor.as_ref());
        let mut entry = Entry {
            lease: Record::of(lease, vendor),
            expires,
            heard,
        };
        entry.set_active(active);
        entry.set(STORED, stored);
        self.leases.insert(client.clone(), entry);
        if newer {
            self.latest = Some(client);
        }
    }

    fn remove(&mut self, client: &ClientId) -> Option<Lease> {
        self.deactivate(client);
        let entry = self.leases.remove(client)?;
        if self.latest.as_ref() == Some(client) {
            // Only on a removal of the shown lease: O(leases of this link).
            self.latest = self
                .leases
                .iter()
                .max_by_key(|(_, e)| (e.lease.state == LeaseState::Bound, e.lease.updated))
                .map(|(c, _)| c.clone());
        }
        Some(entry.lease.lease(&self.name, client))
    }
}

/// Shrinks `map` when under a quarter of its room is used (and the room is
/// worth giving back), so a table that shrinks does not grow again at once.
pub(crate) fn shrink_if_sparse<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if is_sparse(map.len(), map.capacity()) {
        map.shrink_to_fit();
    }
}

/// Under a quarter of `room` used, and the room worth giving back.
fn is_sparse(len: usize, room: usize) -> bool {
    room > 64 && len < room / 4
}

/// Rate limiting for log events, keyed by kind and link; bounded in size.
#[derive(Debug, Default)]
struct RateLimit {
    last: HashMap<(u8, u32), (Mono, u32)>,
}

impl RateLimit {
    const MAX_KEYS: usize = 4096;

    /// Returns `Some(suppressed)` when the event may be reported now.
    fn allow(&mut self, kind: u8, key: u32, now: Mono, interval: Duration) -> Option<u32> {
        if self.last.len() >= Self::MAX_KEYS && !self.last.contains_key(&(kind, key)) {
            self.last.retain(|_, (t, _)| now < t.after(interval));
            if self.last.len() >= Self::MAX_KEYS {
                return None;
            }
        }
        match self.last.get_mut(&(kind, key)) {
            None => {
                self.last.insert((kind, key), (now, 0));
                Some(0)
            }
            Some(entry) if now >= entry.0.after(interval) => {
                let n = entry.1;
                *entry = (now, 0);
                Some(n)
            }
            Some(entry) => {
                entry.1 = entry.1.saturating_add(1);
                None
            }
        }
    }
}

/// A served link and its interned name.
#[derive(Debug)]
struct Served {
    link: ServedLink,
    name: LinkName,
}

/// The DHCP server state machine.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    /// Served links by ingress interface index.
    links: HashMap<u32, Arc<Served>>,
    /// Per-link state by name, for served links and links that hold leases.
    state: HashMap<LinkName, LinkState>,
    /// The wall clock records are stamped with (see [`TrustedWall`]); set by
    /// the first load or packet.
    wall: Option<TrustedWall>,
    /// Why new leases are refused (the lease file cannot be written), if so.
    refuse_new: Option<String>,
    limits: RateLimit,
}

const RL_IGNORED: u8 = 1;
const RL_UNSERVED: u8 = 2;
const RL_MALFORMED: u8 = 3;
const RL_HELD: u8 = 4;
const RL_NOADDR: u8 = 5;
/// NAK log events: [`NakReason`] codes are added to it, so each link and
/// reason has its own limit.
const RL_NAK: u8 = 16;
const RL_RATE: u8 = 7;
const RL_SPOOF: u8 = 8;
const RL_INFORM: u8 = 9;

/// Rate records kept per link, at most: 7/8 of 4,096, the most a table of
/// 4,096 buckets holds before it doubles.
const MAX_BUCKETS: usize = 3584;

/// A DECLINE on a point-to-point link quarantines its address at most this
/// long: the address is the link's, and a long quarantine is an outage.
const P2P_DECLINE_QUARANTINE: Duration = Duration::from_secs(10);

/// Why a REQUEST was NAKed, as far as log rate limiting is concerned: NAK
/// lines are limited per link and reason, so a flood of one reason (evicted
/// offers under a DISCOVER avalanche) never hides the first NAK of another.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
enum NakReason {
    NoAddress,
    OffLink,
    NotOffered,
    Quarantined,
    Held,
    OfferedToAnother,
    NewLeasesRefused,
}

impl NakReason {
    /// The rate-limit kind for this reason.
    fn rate_kind(self) -> u8 {
        RL_NAK + self as u8
    }
}

impl From<&Refusal> for NakReason {
    fn from(r: &Refusal) -> Self {
        match r {
            Refusal::WrongLink => NakReason::OffLink,
            Refusal::Quarantined => NakReason::Quarantined,
            Refusal::Held(_) => NakReason::Held,
            Refusal::Offered => NakReason::OfferedToAnother,
            Refusal::Exhausted => NakReason::NoAddress,
            Refusal::Storage(_) => NakReason::NewLeasesRefused,
        }
    }
}

impl Server {
    /// A server with no links and no leases.
    pub fn new(config: ServerConfig) -> Self {
        Server {
            config,
            links: HashMap::new(),
            state: HashMap::new(),
            wall: None,
            refuse_new: None,
            limits: RateLimit::default(),
        }
    }

    /// The current settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Replaces the settings (a config reload). Leases are kept.
    pub fn set_config(&mut self, config: ServerConfig) {
        self.config = config;
    }

    /// Refuses new leases (with this reason, shown in status and NAKs), or
    /// grants them again with `None`. Stored leases are still served: used when
    /// the lease file cannot be written (read-only flash).
    pub fn refuse_new_leases(&mut self, reason: Option<String>) {
        self.refuse_new = reason;
    }

    /// Why new leases are refused, if they are.
    pub fn new_leases_refused(&self) -> Option<&str> {
        self.refuse_new.as_deref()
    }

    fn intern(&mut self, name: &str) -> LinkName {
        match self.state.get_key_value(name) {
            Some((k, _)) => k.clone(),
            None => {
                let k: LinkName = Arc::from(name);
                self.state.insert(k.clone(), LinkState::new(k.clone()));
                k
            }
        }
    }

    fn trusted_wall(&mut self, now: Now, floor: UnixTime) -> UnixTime {
        self.wall
            .get_or_insert_with(|| TrustedWall::new(floor, now))
            .observe(now)
    }

    /// Loads leases read from storage, e.g. at start. Later entries for the same
    /// key win; an address claimed twice on a link keeps the newest claim.
    ///
    /// Stored expiries are wall-clock times. They are turned into monotonic
    /// deadlines against a trusted wall clock: the latest of `now.wall`, the
    /// newest record's `updated`, and [`crate::time::NOT_BEFORE`]. A clock that
    /// booted in 1970 or stepped back expires nothing; a clock that ran ahead
    /// made records no longer than one lease time.
    pub fn load_leases(&mut self, now: impl Into<Now>, leases: impl IntoIterator<Item = Lease>) {
        let now = now.into();
        let leases: Vec<Lease> = leases.into_iter().collect();
        let newest = leases
            .iter()
            .filter(|l| l.clock_trusted)
            .map(|l| l.updated)
            .max()
            .unwrap_or(0);
        let wall = self.trusted_wall(now, newest);
        let max_left = self.config.lease_time;
        for mut lease in leases {
            let name = self.intern(&lease.link);
            lease.link = name.clone();
            // A record stamped while the clock was wrong says nothing about
            // when it ends: it gets a whole lease time from now.
            let (left, quiet) = if lease.clock_trusted {
                (
                    Duration::from_secs(lease.expires.saturating_sub(wall)).min(max_left),
                    Duration::from_secs(wall.saturating_sub(lease.updated)),
                )
            } else if lease.state == LeaseState::Bound {
                (max_left, Duration::ZERO)
            } else {
                (Duration::ZERO, Duration::ZERO)
            };
            let st = self.state.get_mut(&name).expect("interned");
            st.insert(
                lease,
                now.mono.after(left),
                now.mono.before(quiet),
                now.mono,
                true,
            );
        }
        // A load is the one big batch of inserts: give back the heaps' doubling slack.
        for st in self.state.values_mut() {
            st.expiry.shrink_to_fit();
        }
    }

    /// Replaces the whole served-links table. Leases and offers are kept: a link
    /// that comes back is served with the same addresses.
    pub fn set_links(&mut self, links: impl IntoIterator<Item = ServedLink>) {
        let mut table = HashMap::new();
        for link in links {
            let name = self.intern(&link.name);
            table.insert(link.ifindex, Arc::new(Served { link, name }));
        }
        self.links = table;
        self.forget_idle_links();
    }

    /// Adds or replaces one served link.
    pub fn add_link(&mut self, link: ServedLink) {
        self.links.retain(|_, l| l.link.name != link.name);
        let name = self.intern(&link.name);
        self.links
            .insert(link.ifindex, Arc::new(Served { link, name }));
    }

    /// Stops serving the link with this name. Its leases are kept.
    pub fn remove_link(&mut self, name: &str) {
        self.links.retain(|_, l| l.link.name != name);
        self.forget_idle_links();
    }

    /// Drops the state of links that are not served and hold no lease, so
    /// link churn does not grow memory.
    fn forget_idle_links(&mut self) {
        let served: std::collections::HashSet<&str> =
            self.links.values().map(|l| &*l.name).collect();
        self.state
            .retain(|name, st| served.contains(&**name) || !st.leases.is_empty());
    }

    /// The served links.
    pub fn links(&self) -> impl Iterator<Item = &ServedLink> {
        self.links.values().map(|l| &l.link)
    }

    /// Every lease record, as last written (built on the fly: the core keeps
    /// no per-lease copy of the link name and client). O(leases): for tools,
    /// compaction and tests; status uses [`Server::link_summary`].
    pub fn leases(&self) -> impl Iterator<Item = Lease> + '_ {
        self.state
            .values()
            .flat_map(|st| st.leases.iter().map(|(c, e)| e.lease.lease(&st.name, c)))
    }

    /// Names of the links that hold at least one lease record. O(links).
    pub fn lease_links(&self) -> impl Iterator<Item = &str> {
        self.state
            .values()
            .filter(|st| !st.leases.is_empty())
            .map(|st| &*st.name)
    }

    /// Number of lease records, and of those bound and not expired. O(links).
    pub fn lease_counts(&self) -> (usize, usize) {
        self.state
            .values()
            .fold((0, 0), |(n, a), st| (n + st.leases.len(), a + st.active))
    }

    /// The leases of one link at a glance. O(1) per link.
    pub fn link_summary(&self, link: &str, now: impl Into<Now>) -> Option<LinkSummary> {
        let now = now.into();
        let st = self.state.get(link)?;
        let latest = st
            .latest
            .as_ref()
            .and_then(|c| Some((c, st.leases.get(c)?)));
        Some(LinkSummary {
            leases: st.leases.len(),
            active: st.active,
            latest: latest.map(|(c, e)| e.lease.lease(&st.name, c)),
            latest_remaining: latest
                .map(|(_, e)| e)
                .filter(|e| e.lease.state == LeaseState::Bound)
                .map(|e| e.expires.since(now.mono))
                .unwrap_or_default(),
            pending_offers: st.offers.len(),
        })
    }

    /// The addresses bound on one link and how long each has left at `now`
    /// by the monotonic clock (ended leases left out). O(leases on the link):
    /// for a consumer that follows a few links, not every lease.
    pub fn link_bound_leases(
        &self,
        link: &str,
        now: Mono,
    ) -> impl Iterator<Item = (Ipv4Addr, Duration)> + '_ {
        self.state.get(link).into_iter().flat_map(move |st| {
            st.leases
                .values()
                .filter(move |e| e.lease.state == LeaseState::Bound && e.expires > now)
                .map(move |e| (e.lease.address, e.expires.since(now)))
        })
    }

    /// Per-link packet counters, by link name.
    pub fn link_counters(&self) -> impl Iterator<Item = (&str, &LinkCounters)> {
        self.state.values().map(|st| (&*st.name, &st.counters))
    }

    /// How long the lease with this key has left by the monotonic clock (zero
    /// if expired, released or unknown). What status should show, rather than
    /// `expires` minus a wall clock that may be wrong.
    pub fn lease_remaining(&self, key: &LeaseKey, now: impl Into<Now>) -> Duration {
        let now = now.into();
        self.state
            .get(&*key.link)
            .and_then(|st| st.leases.get(&key.client))
            .filter(|e| e.lease.state == LeaseState::Bound)
            .map(|e| e.expires.since(now.mono))
            .unwrap_or_default()
    }

    /// Notes that `changes` reached stable storage: a later renewal of these
    /// records needs no write. Called by the committer after each successful
    /// write; O(changes). A record replaced since is left alone.
    pub fn mark_stored(&mut self, changes: &[LeaseChange]) {
        for c in changes {
            if let LeaseChange::Put(l) = c {
                if let Some(e) = self
                    .state
                    .get_mut(&*l.link)
                    .and_then(|st| st.leases.get_mut(&l.client))
                {
                    if e.lease.is(l) {
                        e.set(STORED, true);
                    }
                }
            }
        }
    }

    /// Number of OFFERs waiting for a REQUEST, on all links.
    pub fn pending_offers(&self) -> usize {
        self.state.values().map(|st| st.offers.len()).sum()
    }

    /// Drops whatever expired on every link (offers, quarantines, lease
    /// deadlines), so summaries are current while no packet arrives.
    /// O(links + what expired).
    pub fn tick(&mut self, now: impl Into<Now>) {
        let now = now.into();
        let max = self.config.max_pending_offers;
        for st in self.state.values_mut() {
            st.expire(now.mono, max);
        }
    }

    /// [`Server::tick`], and the room a burst left in the per-link tables given
    /// back. For a periodic timer (the service runs it every 2 s), not per
    /// packet or publish. O(links + rate records).
    pub fn sweep(&mut self, now: impl Into<Now>) {
        let now = now.into();
        self.tick(now);
        for st in self.state.values_mut() {
            st.shrink_after_burst(now.mono);
        }
    }

    /// Handles one packet that arrived on interface `ifindex` at time `now`.
    pub fn handle(&mut self, now: impl Into<Now>, ifindex: u32, bytes: &[u8]) -> Outcome {
        let now = now.into();
        let mut out = Outcome::default();
        let wall = self.trusted_wall(now, 0);
        let clock_trusted = self.wall.as_ref().is_some_and(|w| w.believes(now));
        let interval = self.config.log_interval;
        let Some(served) = self.links.get(&ifindex).cloned() else {
            if let Some(n) = self.limits.allow(RL_UNSERVED, ifindex, now.mono, interval) {
                out.events.push(Event::UnservedLink {
                    ifindex,
                    suppressed: n,
                });
            }
            return out;
        };
        let max_offers = self.config.max_pending_offers;
        if let Some(st) = self.state.get_mut(&served.name) {
            st.expire(now.mono, max_offers);
        }
        let mut req = match packet::parse(bytes) {
            Ok(r) => r,
            Err(e) => {
                self.count(&served.name, |c| c.dropped += 1);
                if let Some(n) = self.limits.allow(RL_MALFORMED, ifindex, now.mono, interval) {
                    out.events.push(Event::Malformed {
                        ifindex,
                        error: e.to_string(),
                        suppressed: n,
                    });
                }
                return out;
            }
        };
        // RFC 1542 §4.1.1: more than 16 relay hops is a loop or an attack; a
        // giaddr that is our own address would make us reply to ourselves.
        let giaddr = req.msg.giaddr();
        let loop_reason = if req.msg.hops() > 16 {
            Some(format!("{} relay hops (limit 16)", req.msg.hops()))
        } else if !giaddr.is_unspecified()
            && (giaddr.is_loopback()
                || giaddr.is_broadcast()
                || giaddr.is_multicast()
                || self
                    .links
                    .values()
                    .any(|l| l.link.plan.server_id() == giaddr))
        {
            Some(format!("relay address {giaddr} is not a relay's"))
        } else {
            None
        };
        if let Some(error) = loop_reason {
            self.count(&served.name, |c| c.dropped += 1);
            if let Some(n) = self.limits.allow(RL_MALFORMED, ifindex, now.mono, interval) {
                out.events.push(Event::Malformed {
                    ifindex,
                    error,
                    suppressed: n,
                });
            }
            return out;
        }
        if !giaddr.is_unspecified() && !self.relay_allowed(&served.link, giaddr) {
            // A directly attached client has no business setting relay fields:
            // reply as to a local client, and echo no option 82.
            req.msg.set_giaddr(Ipv4Addr::UNSPECIFIED);
            req.relay_info = None;
        } else if giaddr.is_unspecified() {
            // RFC 3046: option 82 comes from relays only.
            req.relay_info = None;
        }
        let Some(class_index) = req
            .vendor_class
            .as_deref()
            .and_then(|v| self.config.classes.iter().position(|c| c.matches(v)))
        else {
            self.count(&served.name, |c| c.dropped += 1);
            if let Some(n) = self.limits.allow(RL_IGNORED, ifindex, now.mono, interval) {
                out.events.push(Event::IgnoredClass {
                    link: served.name.clone(),
                    mac: req.mac,
                    vendor_class: req
                        .vendor_class
                        .as_deref()
                        .map(|v| String::from_utf8_lossy(v).into_owned()),
                    suppressed: n,
                });
            }
            return out;
        };
        // Per-client rate limit, before any work: a flood costs the flooder only.
        if !self.admit(&served.name, &req.client, now.mono) {
            let st = self
                .state
                .get_mut(&served.name)
                .expect("served link has state");
            st.counters.rate_limited += 1;
            if let Some(n) = self.limits.allow(RL_RATE, ifindex, now.mono, interval) {
                out.events.push(Event::RateLimited {
                    link: served.name.clone(),
                    mac: req.mac,
                    suppressed: n,
                });
            }
            return out;
        }
        let Server {
            config,
            state,
            limits,
            refuse_new,
            ..
        } = self;
        let st = state.get_mut(&served.name).expect("served link has state");
        if let Some(e) = st.leases.get_mut(&req.client) {
            e.heard = now.mono;
        }
        let mut h = Handler {
            config,
            limits,
            refuse_new: refuse_new.as_deref(),
            st,
            link: &served.link,
            name: &served.name,
            class: &config.classes[class_index],
            req: &req,
            now,
            wall,
            clock_trusted,
            out: &mut out,
        };
        match req.msg_type {
            MessageType::Discover => h.discover(),
            MessageType::Request => h.request(),
            MessageType::Decline => h.decline(),
            MessageType::Release => h.release(),
            MessageType::Inform => h.inform(),
            _ => {}
        }
        out
    }

    /// Whether a packet's giaddr is honoured: when relaying is configured
    /// ([`ServerConfig::trust_relay_agents`]), or on a pool link for a unicast
    /// address of the link's own subnet (a relay, or a load generator acting as
    /// one, on a shared segment). Never on a point-to-point link: its only other
    /// host is the leaf itself.
    fn relay_allowed(&self, link: &ServedLink, giaddr: Ipv4Addr) -> bool {
        if self.config.trust_relay_agents {
            return true;
        }
        let AddressPlan::Pool(pool) = &link.plan else {
            return false;
        };
        let mask = u32::from(crate::plan::netmask(pool.prefix_len));
        let host = u32::from(giaddr) & !mask;
        u32::from(giaddr) & mask == u32::from(pool.router) & mask
            && host != 0
            && host != !mask
            && giaddr != pool.server
    }

    /// Counts `n` packets from over-rate senders on `ifindex` that were dropped
    /// before decoding ([`crate::FloodGate`]), in the link's `rate_limited`.
    pub fn count_rate_limited(&mut self, ifindex: u32, n: u64) {
        let Some(name) = self.links.get(&ifindex).map(|l| l.name.clone()) else {
            return;
        };
        self.count(&name, |c| c.rate_limited += n);
    }

    fn count(&mut self, link: &LinkName, f: impl FnOnce(&mut LinkCounters)) {
        if let Some(st) = self.state.get_mut(link) {
            f(&mut st.counters);
        }
    }

    /// Whether this client's packet is within its rate. Clients with neither a
    /// lease nor an offer are bounded by the per-link offer cap instead.
    fn admit(&mut self, link: &LinkName, client: &ClientId, now: Mono) -> bool {
        let per_sec = self.config.client_packets_per_sec;
        let Some(st) = self.state.get_mut(link) else {
            return true;
        };
        if !st.leases.contains(client) && !st.offers.contains_key(client) {
            return true;
        }
        if st.buckets.len() >= MAX_BUCKETS && !st.buckets.contains_key(client) {
            // Forget clients quiet for a second; if every one is sending now,
            // the newcomer goes unmetered rather than growing the table.
            st.buckets.retain(|_, b| !b.is_idle(now));
            if st.buckets.len() >= MAX_BUCKETS {
                return true;
            }
        }
        st.buckets
            .entry(client.clone())
            .or_default()
            .allow(now, per_sec)
    }
}

/// Handles one admitted packet on one link.
struct Handler<'a> {
    config: &'a ServerConfig,
    limits: &'a mut RateLimit,
    refuse_new: Option<&'a str>,
    st: &'a mut LinkState,
    link: &'a ServedLink,
    name: &'a LinkName,
    class: &'a ClientClass,
    req: &'a Request,
    now: Now,
    /// Trusted wall time: what records are stamped with.
    wall: UnixTime,
    /// Whether the system wall clock is believed (see [`Lease::clock_trusted`]).
    clock_trusted: bool,
    out: &'a mut Outcome,
}

impl Handler<'_> {
    fn p2p(&self) -> bool {
        matches!(self.link.plan, AddressPlan::PointToPoint { .. })
    }

    fn client(&self) -> &ClientId {
        &self.req.client
    }

    fn vendor(&mut self) -> Option<Arc<str>> {
        let text = VendorInfo::sanitize(self.req.vendor_class.as_deref()?);
        if let Some(last) = self.st.last_vendor.as_ref().filter(|l| ***l == *text) {
            return Some(last.clone());
        }
        let v: Arc<str> = Arc::from(text);
        self.st.last_vendor = Some(v.clone());
        Some(v)
    }

    /// Whether `addr` may go to this client, or why not.
    fn check_address(&self, addr: Ipv4Addr) -> Result<(), Refusal> {
        if !self.link.plan.contains(addr) {
            return Err(Refusal::WrongLink);
        }
        if self
            .st
            .quarantine
            .get(&addr)
            .is_some_and(|until| *until > self.now.mono)
        {
            return Err(Refusal::Quarantined);
        }
        if let Some(holder) = self.st.leases.holder(addr) {
            if holder != self.client() {
                if let Some(e) = self.st.leases.get(holder) {
                    if e.active() && e.expires > self.now.mono {
                        let quiet_for = self.now.mono.since(e.heard);
                        // On a point-to-point link the address is the link's: a
                        // holder that has gone quiet was unplugged or replaced.
                        if !(self.p2p() && quiet_for >= self.config.replace_after) {
                            return Err(Refusal::Held(e.lease.mac));
                        }
                    }
                }
            }
        }
        if !self.p2p() {
            if let Some(c) = self.st.offered.get(&addr) {
                if c != self.client() {
                    return Err(Refusal::Offered);
                }
            }
        }
        Ok(())
    }

    /// Whether granting `addr` would be a new lease (not one already stored for
    /// this client at this address).
    fn is_new_binding(&self, addr: Ipv4Addr) -> bool {
        !self
            .st
            .leases
            .get(self.client())
            .is_some_and(|e| e.lease.address == addr && e.lease.state == LeaseState::Bound)
    }

    /// Picks the address for a DISCOVER.
    fn choose_address(&mut self) -> Result<Ipv4Addr, Refusal> {
        let pool = match &self.link.plan {
            AddressPlan::PointToPoint { leaf, .. } => {
                self.check_address(*leaf)?;
                return Ok(*leaf);
            }
            AddressPlan::Pool(pool) => pool.clone(),
        };
        let mut candidates = Vec::with_capacity(3);
        if let Some(o) = self.st.offers.get(self.client()) {
            candidates.push(o.address);
        }
        if let Some(e) = self.st.leases.get(self.client()) {
            candidates.push(e.lease.address);
        }
        if let Some(r) = self.req.requested_ip {
            candidates.push(r);
        }
        for c in candidates {
            if self.check_address(c).is_ok() {
                return Ok(c);
            }
        }
        let first = u32::from(pool.first);
        let size = u32::from(pool.last) - first + 1;
        let start = self.st.pool_cursor % size;
        // First pass: addresses nobody has ever held. Second: reclaim
        // addresses whose lease expired or was released.
        for reclaim in [false, true] {
            for i in 0..size {
                let off = (start + i) % size;
                let addr = Ipv4Addr::from(first + off);
                if !reclaim && self.st.leases.holds(addr) {
                    continue;
                }
                if self.check_address(addr).is_ok() {
                    self.st.pool_cursor = off + 1;
                    return Ok(addr);
                }
            }
        }
        // Last resort: take the address of the oldest pending offer on this
        // link; an OFFER is not a promise.
        let oldest = self
            .st
            .offer_queue
            .iter()
            .find(|(_, c)| c != self.client())
            .map(|(_, c)| c.clone());
        if let Some(c) = oldest {
            let addr = self.st.offers.get(&c).map(|o| o.address);
            self.st.drop_offer(&c);
            if let Some(addr) = addr {
                if self.check_address(addr).is_ok() {
                    return Ok(addr);
                }
            }
        }
        Err(Refusal::Exhausted)
    }

    fn discover(&mut self) {
        let addr = match self.choose_address() {
            Ok(a) => a,
            Err(r) => {
                self.report_refusal(r);
                return;
            }
        };
        if let Some(why) = self.refuse_new {
            if self.is_new_binding(addr) {
                self.report_refusal(Refusal::Storage(why.to_string()));
                return;
            }
        }
        let client = self.client().clone();
        self.st.drop_offer(&client);
        let expires = self.now.mono.after(self.config.offer_hold);
        self.st.offers.insert(
            client.clone(),
            Offer {
                address: addr,
                expires,
            },
        );
        self.st.offered.insert(addr, client.clone());
        self.st.offer_queue.push_back((expires, client));
        // Keep this link's cap: evict its oldest offers first.
        while self.st.offers.len() > self.config.max_pending_offers.max(1) {
            match self.st.offer_queue.pop_front() {
                Some((exp, c)) => {
                    if self.st.offers.get(&c).is_some_and(|o| o.expires == exp) {
                        self.st.drop_offer(&c);
                    }
                }
                None => break,
            }
        }
        let vendor = self.vendor();
        let hostname = self.hostname(&vendor);
        let options = self.lease_options(hostname.as_deref());
        self.out.reply = Some(self.reply(MessageType::Offer, addr, options));
        self.st.counters.offers += 1;
        self.out.events.push(Event::Offered {
            link: self.name.clone(),
            mac: self.req.mac,
            address: addr,
            vendor,
        });
    }

    fn request(&mut self) {
        let req = self.req;
        let ciaddr = req.msg.ciaddr();
        let server_id = self.link.plan.server_id();
        // RFC 2131 §4.3.2: which state the client is in.
        let (wanted, state) = match (req.server_id, req.requested_ip) {
            (Some(sid), _) if sid != server_id => {
                // SELECTING, and it chose another server: forget our offer.
                let c = self.client().clone();
                self.st.drop_offer(&c);
                return;
            }
            (Some(_), Some(r)) => (r, "selecting"),
            (Some(_), None) if !ciaddr.is_unspecified() => (ciaddr, "selecting"),
            (Some(_), None) => {
                self.nak(
                    None,
                    NakReason::NoAddress,
                    "REQUEST names this server but no address",
                );
                return;
            }
            (None, Some(r)) if ciaddr.is_unspecified() => (r, "init-reboot"),
            (None, _) if !ciaddr.is_unspecified() => (ciaddr, "renewing"),
            (None, _) => {
                // Nothing to go on: RFC says stay silent.
                return;
            }
        };
        if !self.link.plan.contains(wanted) {
            let why = format!("{wanted} is not an address of this link ({state})");
            self.nak(Some(wanted), NakReason::OffLink, &why);
            return;
        }
        if state == "selecting" {
            // It must be what we offered or what it already holds, or (p2p) the
            // link's address. With no offer on record (evicted by the per-link
            // cap, expired, or lost in a restart), a free address is granted as
            // ISC dhcpd and Kea do: check_address below still refuses one that
            // is off the plan, quarantined, held or offered to another client.
            let offered = self.st.offers.get(self.client()).map(|o| o.address);
            let held = self.st.leases.get(self.client()).map(|e| e.lease.address);
            if offered.is_some_and(|o| o != wanted) && held != Some(wanted) && !self.p2p() {
                self.nak(
                    Some(wanted),
                    NakReason::NotOffered,
                    "not the address offered",
                );
                return;
            }
        }
        if let Err(r) = self.check_address(wanted) {
            self.nak(Some(wanted), NakReason::from(&r), &r.to_string());
            return;
        }
        if let Some(why) = self.refuse_new {
            if self.is_new_binding(wanted) {
                let why = format!("new leases refused: {why}");
                self.nak(Some(wanted), NakReason::NewLeasesRefused, &why);
                return;
            }
        }
        self.bind(wanted);
    }

    /// Grants `addr` to the client and queues the ACK. A renewal that changes
    /// nothing durable is not written: the stored record keeps the binding, and
    /// its expiry is extended only once a quarter of the lease time has passed
    /// since it was written (well before the client's T1), so a renewal flood
    /// writes nothing.
    fn bind(&mut self, addr: Ipv4Addr) {
        let vendor = self.vendor();
        let hostname = self.hostname(&vendor);
        let client = self.client().clone();
        let lease_time = self.config.lease_time;
        let previous = self.st.leases.get(&client);
        let renewal = previous
            .is_some_and(|e| e.lease.address == addr && e.active() && e.expires > self.now.mono);
        let unchanged = previous.is_some_and(|e| {
            let l = &e.lease;
            e.stored()
                && l.address == addr
                && l.state == LeaseState::Bound
                && l.mac == self.req.mac
                && l.vendor_is(vendor.as_deref())
                && l.hostname == hostname
                && l.clock_trusted() == self.clock_trusted
                && l.expires() >= self.wall.saturating_add(lease_time.as_secs() * 3 / 4)
        });
        // Another client's record for this address goes (a replaced leaf, or an
        // expired pool lease).
        if let Some(holder) = self.st.leases.holder(addr).cloned() {
            if holder != client {
                if let Some(old) = self.st.remove(&holder) {
                    if self.p2p() {
                        self.out.events.push(Event::Replaced {
                            link: self.name.clone(),
                            address: addr,
                            old_mac: old.mac,
                            old_serial: old.serial().map(str::to_string),
                            new_mac: self.req.mac,
                            new_serial: vendor
                                .as_deref()
                                .and_then(|v| VendorInfo::fields(v).3)
                                .map(str::to_string),
                        });
                    }
                    self.out.changes.push(LeaseChange::Delete(old.key()));
                }
            }
        }
        self.st.drop_offer(&client);
        let expires = self.now.mono.after(lease_time);
        if unchanged {
            let e = self.st.leases.get_mut(&client).expect("checked above");
            e.expires = expires;
            e.heard = self.now.mono;
            if !e.active() {
                e.set_active(true);
                self.st.active += 1;
                self.st.expiry.push(due(expires, addr));
            }
        } else {
            let lease = Lease {
                link: self.name.clone(),
                client,
                mac: self.req.mac,
                address: addr,
                state: LeaseState::Bound,
                expires: self.wall.saturating_add(lease_time.as_secs()),
                updated: self.wall,
                clock_trusted: self.clock_trusted,
                vendor: vendor.clone(),
                hostname: hostname.clone(),
            };
            self.st
                .insert(lease.clone(), expires, self.now.mono, self.now.mono, false);
            self.out.changes.push(LeaseChange::Put(lease));
        }
        let options = self.lease_options(hostname.as_deref());
        self.out.reply = Some(self.reply(MessageType::Ack, addr, options));
        self.st.counters.acks += 1;
        if renewal {
            self.st.counters.renewals += 1;
        }
        self.out.events.push(Event::Acked {
            link: self.name.clone(),
            mac: self.req.mac,
            address: addr,
            vendor,
            renewal,
        });
    }

    /// The lease this DECLINE or RELEASE is about, if it comes from its holder:
    /// client id (the key), chaddr and address must all match the binding.
    fn sent_by_holder(&mut self, kind: &'static str, addr: Ipv4Addr) -> bool {
        let ok = self.st.leases.get(self.client()).is_some_and(|e| {
            e.lease.address == addr
                && e.lease.mac == self.req.mac
                && e.lease.state == LeaseState::Bound
        });
        if !ok {
            self.st.counters.dropped += 1;
            if let Some(n) = self.limits.allow(
                RL_SPOOF,
                self.link.ifindex,
                self.now.mono,
                self.config.log_interval,
            ) {
                self.out.events.push(Event::Spoofed {
                    link: self.name.clone(),
                    mac: self.req.mac,
                    kind,
                    address: addr,
                    suppressed: n,
                });
            }
        }
        ok
    }

    fn decline(&mut self) {
        if self
            .req
            .server_id
            .is_some_and(|s| s != self.link.plan.server_id())
        {
            return;
        }
        let Some(addr) = self.req.requested_ip else {
            return;
        };
        // Only a bound holder can decline: a DECLINE of a merely offered address
        // would let anyone starve a pool.
        if !self.sent_by_holder("DECLINE", addr) {
            return;
        }
        let client = self.client().clone();
        self.st.drop_offer(&client);
        let p2p = self.p2p();
        let quarantine = if p2p {
            self.config.decline_quarantine.min(P2P_DECLINE_QUARANTINE)
        } else {
            self.config.decline_quarantine
        };
        if p2p {
            // The address is the link's: keep the binding, only stop serving it
            // for a moment (the holder stays the holder).
            self.st.deactivate(&client);
        } else if let Some(old) = self.st.remove(&client) {
            self.out.changes.push(LeaseChange::Delete(old.key()));
        }
        self.st
            .quarantine
            .insert(addr, self.now.mono.after(quarantine));
        self.st.counters.declines += 1;
        self.out.events.push(Event::Declined {
            link: self.name.clone(),
            mac: self.req.mac,
            address: addr,
            quarantine_secs: quarantine.as_secs(),
            binding_kept: p2p,
        });
    }

    fn release(&mut self) {
        if self
            .req
            .server_id
            .is_some_and(|s| s != self.link.plan.server_id())
        {
            return;
        }
        let addr = self.req.msg.ciaddr();
        if !self.sent_by_holder("RELEASE", addr) {
            return;
        }
        let client = self.client().clone();
        let Some(e) = self.st.leases.get(&client) else {
            return;
        };
        let mut lease = e.lease.lease(self.name, &client);
        let heard = e.heard;
        lease.state = LeaseState::Released;
        lease.expires = self.wall;
        lease.updated = self.wall;
        lease.clock_trusted = self.clock_trusted;
        self.st
            .insert(lease.clone(), self.now.mono, heard, self.now.mono, false);
        self.out.changes.push(LeaseChange::Put(lease));
        self.st.counters.releases += 1;
        self.out.events.push(Event::Released {
            link: self.name.clone(),
            mac: self.req.mac,
            address: addr,
        });
    }

    fn inform(&mut self) {
        let ciaddr = self.req.msg.ciaddr();
        // Only for an address on the ingress link (RFC 2131 §4.3.5: the client
        // is already configured there); never the spine's own.
        let plan = &self.link.plan;
        let mask = u32::from(plan.netmask());
        let host = u32::from(ciaddr) & !mask;
        let on_link = !ciaddr.is_unspecified()
            && ciaddr != plan.server_id()
            && u32::from(ciaddr) & mask == u32::from(plan.router()) & mask
            // On a /30 or wider, not the network or broadcast address.
            && (mask >= 0xffff_fffe || (host != 0 && host != !mask));
        if !on_link {
            self.st.counters.dropped += 1;
            if !ciaddr.is_unspecified() {
                if let Some(n) = self.limits.allow(
                    RL_INFORM,
                    self.link.ifindex,
                    self.now.mono,
                    self.config.log_interval,
                ) {
                    self.out.events.push(Event::Naked {
                        link: self.name.clone(),
                        mac: self.req.mac,
                        requested: Some(ciaddr),
                        reason: format!(
                            "INFORM from {ciaddr}, which is not on this link{}",
                            suppressed(n)
                        ),
                    });
                }
            }
            return;
        }
        let vendor = self.vendor();
        let hostname = self.hostname(&vendor);
        // RFC 2131 §3.4: no lease time and no yiaddr in the ACK to an INFORM.
        let mut options = self.lease_options(hostname.as_deref());
        options.retain(|o| {
            !matches!(
                o,
                DhcpOption::AddressLeaseTime(_) | DhcpOption::Renewal(_) | DhcpOption::Rebinding(_)
            )
        });
        self.out.reply = Some(self.reply(MessageType::Ack, Ipv4Addr::UNSPECIFIED, options));
        self.st.counters.informs += 1;
        self.out.events.push(Event::Informed {
            link: self.name.clone(),
            mac: self.req.mac,
            address: ciaddr,
        });
    }

    /// Queues a NAK. It is always counted; it is logged rate-limited per link
    /// and `reason` (the first at once, then one line per `log_interval`
    /// saying how many were suppressed).
    fn nak(&mut self, requested: Option<Ipv4Addr>, reason: NakReason, why: &str) {
        let client = self.client().clone();
        self.st.drop_offer(&client);
        let giaddr = self.req.msg.giaddr();
        // RFC 2131 §4.1: a NAK without giaddr is broadcast; through a relay, the
        // broadcast bit asks the relay to broadcast it.
        let mut req = self.req.clone();
        if !giaddr.is_unspecified() {
            let flags = req.msg.flags().set_broadcast();
            req.msg.set_flags(flags);
        }
        let server_id = self.link.plan.server_id();
        let payload = packet::encode_reply(
            &req,
            MessageType::Nak,
            server_id,
            Ipv4Addr::UNSPECIFIED,
            vec![DhcpOption::Message(why.to_string())],
        );
        self.out.reply = Some(Reply {
            kind: MessageType::Nak,
            ifindex: self.link.ifindex,
            source: server_id,
            destination: if giaddr.is_unspecified() {
                Destination::Broadcast
            } else {
                Destination::Relay(giaddr)
            },
            payload,
        });
        self.st.counters.naks += 1;
        let interval = self.config.log_interval;
        if let Some(n) = self.limits.allow(
            reason.rate_kind(),
            self.link.ifindex,
            self.now.mono,
            interval,
        ) {
            self.out.events.push(Event::Naked {
                link: self.name.clone(),
                mac: self.req.mac,
                requested,
                reason: format!("{why}{}", suppressed(n)),
            });
        }
    }

    fn report_refusal(&mut self, r: Refusal) {
        self.st.counters.dropped += 1;
        let interval = self.config.log_interval;
        let ifindex = self.link.ifindex;
        match r {
            Refusal::Held(holder) => {
                if self
                    .limits
                    .allow(RL_HELD, ifindex, self.now.mono, interval)
                    .is_some()
                {
                    let address = match &self.link.plan {
                        AddressPlan::PointToPoint { leaf, .. } => *leaf,
                        AddressPlan::Pool(_) => {
                            self.req.requested_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
                        }
                    };
                    self.out.events.push(Event::HeldByOther {
                        link: self.name.clone(),
                        address,
                        holder_mac: holder,
                        asking_mac: self.req.mac,
                    });
                }
            }
            Refusal::Storage(why) => {
                if let Some(n) = self
                    .limits
                    .allow(RL_NOADDR, ifindex, self.now.mono, interval)
                {
                    self.out.events.push(Event::Naked {
                        link: self.name.clone(),
                        mac: self.req.mac,
                        requested: None,
                        reason: format!("no new lease offered: {why}{}", suppressed(n)),
                    });
                }
            }
            _ => {
                if self
                    .limits
                    .allow(RL_NOADDR, ifindex, self.now.mono, interval)
                    .is_some()
                {
                    self.out.events.push(Event::NoAddress {
                        link: self.name.clone(),
                        mac: self.req.mac,
                    });
                }
            }
        }
    }

    fn hostname(&self, vendor: &Option<Arc<str>>) -> Option<Arc<str>> {
        let fields = vendor.as_deref().map(VendorInfo::fields);
        let template = self.class.hostname.as_ref()?;
        let mac = self.req.mac.to_string();
        template
            .render(HostnameVars {
                link: &self.link.name,
                serial: fields.and_then(|f| f.3),
                model: fields.and_then(|f| f.1),
                mac: &mac,
            })
            .map(Arc::from)
    }

    fn lease_options(&self, hostname: Option<&str>) -> Vec<DhcpOption> {
        let plan = &self.link.plan;
        let class = self.class;
        let secs = u32::try_from(self.config.lease_time.as_secs()).unwrap_or(u32::MAX);
        let mut o = vec![
            DhcpOption::AddressLeaseTime(secs),
            DhcpOption::Renewal(secs / 2),
            DhcpOption::Rebinding((secs as u64 * 7 / 8) as u32),
            DhcpOption::SubnetMask(plan.netmask()),
            DhcpOption::Router(vec![plan.router()]),
        ];
        if !class.dns_servers.is_empty() {
            o.push(DhcpOption::DomainNameServer(class.dns_servers.clone()));
        }
        if let Some(d) = &class.domain_name {
            o.push(DhcpOption::DomainName(d.clone()));
        }
        if !class.ntp_servers.is_empty() {
            o.push(DhcpOption::NtpServers(class.ntp_servers.clone()));
        }
        if let Some(h) = hostname {
            o.push(DhcpOption::Hostname(h.to_string()));
        }
        if let Some(url) = class.bootfile_for(plan.router()) {
            o.push(DhcpOption::BootfileName(url.into_bytes()));
        }
        o
    }

    fn reply(&self, kind: MessageType, yiaddr: Ipv4Addr, options: Vec<DhcpOption>) -> Reply {
        let server_id = self.link.plan.server_id();
        let payload = packet::encode_reply(self.req, kind, server_id, yiaddr, options);
        let q = &self.req.msg;
        let destination = if !q.giaddr().is_unspecified() {
            Destination::Relay(q.giaddr())
        } else if !q.ciaddr().is_unspecified() {
            Destination::Unicast(q.ciaddr())
        } else if q.flags().broadcast() || yiaddr.is_unspecified() || self.p2p() {
            // On a point-to-point link there is one neighbour: broadcast costs
            // nothing and needs no neighbour entry.
            Destination::Broadcast
        } else {
            Destination::Hardware {
                address: yiaddr,
                chaddr: q.chaddr().to_vec(),
            }
        };
        Reply {
            kind,
            ifindex: self.link.ifindex,
            source: server_id,
            destination,
            payload,
        }
    }
}

/// Why an address cannot go to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Refusal {
    #[error("not an address of this link")]
    WrongLink,
    #[error("address quarantined after a DECLINE")]
    Quarantined,
    #[error("held by {0}")]
    Held(HwAddr),
    #[error("offered to another client")]
    Offered,
    #[error("pool exhausted")]
    Exhausted,
    #[error("{0}")]
    Storage(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10: a lease in memory stays within 88 bytes plus its map slot.
    #[test]
    fn an_entry_fits_88_bytes() {
        assert!(std::mem::size_of::<VendorText>() <= 24);
        assert!(std::mem::size_of::<Record>() <= 72);
        assert!(std::mem::size_of::<Entry>() <= 88);
    }

    #[test]
    fn vendor_text_round_trips_and_shares_its_prefix() {
        let mut st = LinkState::new("Ethernet7".into());
        let texts = [
            "Arista;DCS-7050SX3-48YC8;11.00;JPE20000001",
            "Arista;DCS-7050SX3-48YC8;11.00;JPE20000002",
            "Arista;DCS-7280;11.00;a-serial-longer-than-fifteen",
            "no separator",
            "trailing;",
            "ünïcode;séríal",
        ];
        let held: Vec<VendorText> = texts
            .iter()
            .map(|t| st.vendor_text(Some(&Arc::from(*t))).expect("some"))
            .collect();
        for (t, v) in texts.iter().zip(&held) {
            assert_eq!(&*v.text(), *t);
            assert!(v.is(t));
            assert!(!v.is(&format!("{t}x")));
        }
        assert!(Arc::ptr_eq(&held[0].prefix, &held[1].prefix));
        assert_eq!(held[0].tail(), "JPE20000001");
    }

    /// Issue 10: the tables an avalanche of clients fills (offers, rate
    /// records) give their room back once it has passed.
    #[test]
    fn a_burst_leaves_no_room_behind() {
        let mut st = LinkState::new("Ethernet7".into());
        let held_until = Mono(60_000);
        for i in 0..3_000u32 {
            let client = ClientId::from_hardware(1, &i.to_be_bytes());
            let address = Ipv4Addr::from(0x0a40_0000 + i);
            st.offers.insert(
                client.clone(),
                Offer {
                    address,
                    expires: held_until,
                },
            );
            st.offered.insert(address, client.clone());
            st.offer_queue.push_back((held_until, client.clone()));
            st.buckets.insert(client, Bucket::default());
        }
        // Still busy: nothing is shrunk while the offers are pending.
        st.shrink_after_burst(Mono(1_000));
        assert!(st.offers.capacity() >= 3_000 && st.offered.capacity() >= 3_000);
        let later = Mono(61_000);
        st.expire(later, 4096);
        st.shrink_after_burst(later);
        assert!(st.offers.is_empty() && st.buckets.is_empty());
        for (what, room) in [
            ("offers", st.offers.capacity()),
            ("offered", st.offered.capacity()),
            ("offer queue", st.offer_queue.capacity()),
            ("rate records", st.buckets.capacity()),
        ] {
            assert!(room <= 64, "{what}: room for {room} left after the burst");
        }
    }

    #[test]
    fn packed_deadlines_are_never_early() {
        let a = Ipv4Addr::new(10, 64, 1, 2);
        for ms in [0, 1, 999, 1000, 1001, 86_400_123] {
            let (at, addr) = undue(due(Mono(ms), a).0);
            assert_eq!(addr, a);
            assert!(at >= Mono(ms) && at < Mono(ms + 1000), "{ms} -> {at:?}");
        }
    }
}
