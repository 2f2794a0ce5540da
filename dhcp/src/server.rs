//! The sans-IO DHCPv4 server: (time, ingress link, packet) in, (reply, lease
//! changes, events) out.
//!
//! **Invariants.** It reads no clock and touches no socket or file: the caller
//! passes the time and carries out the [`Outcome`]. Every lease change it makes in
//! memory is returned in `Outcome::changes`, and the caller must put those on
//! stable storage before it sends the reply (an ACK must never promise what a
//! crash could lose). At most one lease holds an address on a link. Pending state
//! is bounded: OFFERs expire and are capped, rate-limit records are capped.

use crate::config::{ClientClass, HostnameVars, ServerConfig};
use crate::lease::{ClientId, Lease, LeaseChange, LeaseKey, LeaseState, UnixTime};
use crate::packet::{self, Request};
use crate::plan::AddressPlan;
use crate::vendor::VendorInfo;
use dhcproto::v4::{DhcpOption, MessageType};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An address was offered.
    Offered {
        /// Link name.
        link: String,
        /// Client MAC.
        mac: String,
        /// Offered address.
        address: Ipv4Addr,
        /// What option 60 said.
        vendor: Option<VendorInfo>,
    },
    /// A lease was granted or renewed.
    Acked {
        /// Link name.
        link: String,
        /// Client MAC.
        mac: String,
        /// Leased address.
        address: Ipv4Addr,
        /// What option 60 said.
        vendor: Option<VendorInfo>,
        /// A renewal of the client's current lease rather than a new binding.
        renewal: bool,
    },
    /// A request was refused.
    Naked {
        /// Link name.
        link: String,
        /// Client MAC.
        mac: String,
        /// The address it asked for.
        requested: Option<Ipv4Addr>,
        /// Why.
        reason: String,
    },
    /// A client released its lease.
    Released {
        /// Link name.
        link: String,
        /// Client MAC.
        mac: String,
        /// The address.
        address: Ipv4Addr,
    },
    /// A client said the address is in use by someone else.
    Declined {
        /// Link name.
        link: String,
        /// Client MAC.
        mac: String,
        /// The address, now quarantined.
        address: Ipv4Addr,
        /// For how long, in seconds.
        quarantine_secs: u64,
    },
    /// An INFORM was answered.
    Informed {
        /// Link name.
        link: String,
        /// Client MAC.
        mac: String,
        /// The client's own address.
        address: Ipv4Addr,
    },
    /// A new leaf took a point-to-point link's address from the old one.
    Replaced {
        /// Link name.
        link: String,
        /// The link's leaf address.
        address: Ipv4Addr,
        /// Old holder's MAC.
        old_mac: String,
        /// Old holder's serial, if known.
        old_serial: Option<String>,
        /// New holder's MAC.
        new_mac: String,
        /// New holder's serial, if known.
        new_serial: Option<String>,
    },
    /// A client whose option 60 matches no class was ignored (rate-limited).
    IgnoredClass {
        /// Link name.
        link: String,
        /// Client MAC.
        mac: String,
        /// Its option 60, if any.
        vendor_class: Option<String>,
        /// How many more were ignored since the last such event on this link.
        suppressed: u32,
    },
    /// The link's address is bound to another client that is still active.
    HeldByOther {
        /// Link name.
        link: String,
        /// The address.
        address: Ipv4Addr,
        /// The holder.
        holder_mac: String,
        /// The client that asked.
        asking_mac: String,
    },
    /// No address could be offered (pool exhausted or quarantined).
    NoAddress {
        /// Link name.
        link: String,
        /// Client MAC.
        mac: String,
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
            | Event::NoAddress { link, .. } => Some(link),
            Event::UnservedLink { .. } | Event::Malformed { .. } => None,
        }
    }
}

impl Event {
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
            Event::UnservedLink { .. } => "DHCP on an unserved link".into(),
            Event::Malformed { error, .. } => format!("malformed packet: {error}"),
        }
    }
}

fn leaf(v: &Option<VendorInfo>) -> String {
    match v {
        Some(v) => format!(
            "{} serial {}",
            v.model.as_deref().unwrap_or("unknown-model"),
            v.serial.as_deref().unwrap_or("unknown")
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
            } => write!(
                f,
                "{link}: DECLINE of {address} by {mac}: address in use elsewhere, \
                 quarantined for {quarantine_secs}s"
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

#[derive(Debug, Clone)]
struct Offer {
    address: Ipv4Addr,
    expires: UnixTime,
}

/// Rate limiting for log events, keyed by kind and link; bounded in size.
#[derive(Debug, Default)]
struct RateLimit {
    last: HashMap<(u8, String), (UnixTime, u32)>,
}

impl RateLimit {
    const MAX_KEYS: usize = 4096;

    /// Returns `Some(suppressed)` when the event may be reported now.
    fn allow(&mut self, kind: u8, key: String, now: UnixTime, interval: u64) -> Option<u32> {
        if self.last.len() >= Self::MAX_KEYS && !self.last.contains_key(&(kind, key.clone())) {
            self.last
                .retain(|_, (t, _)| now < t.saturating_add(interval));
            if self.last.len() >= Self::MAX_KEYS {
                return None;
            }
        }
        let entry = self.last.entry((kind, key)).or_insert((0, 0));
        if entry.0 == 0 || now >= entry.0.saturating_add(interval) {
            let n = entry.1;
            *entry = (now, 0);
            Some(n)
        } else {
            entry.1 = entry.1.saturating_add(1);
            None
        }
    }
}

/// The DHCP server state machine.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    links: HashMap<u32, ServedLink>,
    leases: HashMap<LeaseKey, Lease>,
    /// (link, address) -> holder, for every lease record.
    by_address: HashMap<(String, Ipv4Addr), ClientId>,
    offers: HashMap<LeaseKey, Offer>,
    /// (link, address) -> client, for pending offers.
    offered: HashMap<(String, Ipv4Addr), ClientId>,
    /// Offers in creation order; all have the same hold time, so this is expiry order.
    offer_queue: VecDeque<(UnixTime, LeaseKey)>,
    quarantine: HashMap<(String, Ipv4Addr), UnixTime>,
    /// When each lease holder was last heard from (in memory only; after a
    /// restart the lease's `updated` time stands in).
    last_heard: HashMap<LeaseKey, UnixTime>,
    pool_cursor: HashMap<String, u32>,
    limits: RateLimit,
}

const RL_IGNORED: u8 = 1;
const RL_UNSERVED: u8 = 2;
const RL_MALFORMED: u8 = 3;
const RL_HELD: u8 = 4;
const RL_NOADDR: u8 = 5;

impl Server {
    /// A server with no links and no leases.
    pub fn new(config: ServerConfig) -> Self {
        Server {
            config,
            links: HashMap::new(),
            leases: HashMap::new(),
            by_address: HashMap::new(),
            offers: HashMap::new(),
            offered: HashMap::new(),
            offer_queue: VecDeque::new(),
            quarantine: HashMap::new(),
            last_heard: HashMap::new(),
            pool_cursor: HashMap::new(),
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

    /// Loads leases read from storage, e.g. at start. Later entries for the same
    /// key win; an address claimed twice on a link keeps the newest claim.
    pub fn load_leases(&mut self, leases: impl IntoIterator<Item = Lease>) {
        for lease in leases {
            self.insert_lease(lease);
        }
    }

    /// Replaces the whole served-links table. Leases and offers are kept: a link
    /// that comes back is served with the same addresses.
    pub fn set_links(&mut self, links: impl IntoIterator<Item = ServedLink>) {
        self.links = links.into_iter().map(|l| (l.ifindex, l)).collect();
    }

    /// Adds or replaces one served link.
    pub fn add_link(&mut self, link: ServedLink) {
        self.links.retain(|_, l| l.name != link.name);
        self.links.insert(link.ifindex, link);
    }

    /// Stops serving the link with this name. Its leases are kept.
    pub fn remove_link(&mut self, name: &str) {
        self.links.retain(|_, l| l.name != name);
    }

    /// The served links.
    pub fn links(&self) -> impl Iterator<Item = &ServedLink> {
        self.links.values()
    }

    /// Every lease record.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }

    /// Number of OFFERs waiting for a REQUEST.
    pub fn pending_offers(&self) -> usize {
        self.offers.len()
    }

    /// Handles one packet that arrived on interface `ifindex` at time `now`.
    pub fn handle(&mut self, now: UnixTime, ifindex: u32, bytes: &[u8]) -> Outcome {
        let mut out = Outcome::default();
        self.expire(now);
        let interval = self.config.log_interval.as_secs();
        let Some(link) = self.links.get(&ifindex).cloned() else {
            if let Some(n) = self
                .limits
                .allow(RL_UNSERVED, ifindex.to_string(), now, interval)
            {
                out.events.push(Event::UnservedLink {
                    ifindex,
                    suppressed: n,
                });
            }
            return out;
        };
        let req = match packet::parse(bytes) {
            Ok(r) => r,
            Err(e) => {
                if let Some(n) = self
                    .limits
                    .allow(RL_MALFORMED, ifindex.to_string(), now, interval)
                {
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
        let loop_reason = if req.msg.hops() > 16 {
            Some(format!("{} relay hops (limit 16)", req.msg.hops()))
        } else if self
            .links
            .values()
            .any(|l| l.plan.server_id() == req.msg.giaddr())
        {
            Some(format!(
                "relay address {} is this server's own",
                req.msg.giaddr()
            ))
        } else {
            None
        };
        if let Some(error) = loop_reason {
            if let Some(n) = self
                .limits
                .allow(RL_MALFORMED, ifindex.to_string(), now, interval)
            {
                out.events.push(Event::Malformed {
                    ifindex,
                    error,
                    suppressed: n,
                });
            }
            return out;
        }
        let class = req
            .vendor_class
            .as_deref()
            .and_then(|v| self.config.classes.iter().find(|c| c.matches(v)))
            .cloned();
        let Some(class) = class else {
            if let Some(n) = self
                .limits
                .allow(RL_IGNORED, link.name.clone(), now, interval)
            {
                out.events.push(Event::IgnoredClass {
                    link: link.name.clone(),
                    mac: req.mac.clone(),
                    vendor_class: req
                        .vendor_class
                        .as_deref()
                        .map(|v| String::from_utf8_lossy(v).into_owned()),
                    suppressed: n,
                });
            }
            return out;
        };
        let key = LeaseKey {
            link: link.name.clone(),
            client: req.client.clone(),
        };
        if self.leases.contains_key(&key) {
            self.last_heard.insert(key.clone(), now);
        }
        let ctx = Ctx {
            now,
            link: &link,
            class: &class,
            req: &req,
            key,
        };
        match req.msg_type {
            MessageType::Discover => self.discover(&ctx, &mut out),
            MessageType::Request => self.request(&ctx, &mut out),
            MessageType::Decline => self.decline(&ctx, &mut out),
            MessageType::Release => self.release(&ctx, &mut out),
            MessageType::Inform => self.inform(&ctx, &mut out),
            _ => {}
        }
        out
    }

    fn expire(&mut self, now: UnixTime) {
        while let Some((expires, _)) = self.offer_queue.front() {
            if *expires > now && self.offer_queue.len() <= self.config.max_pending_offers {
                break;
            }
            let (expires, key) = self.offer_queue.pop_front().expect("front exists");
            if self.offers.get(&key).is_some_and(|o| o.expires == expires) {
                self.drop_offer(&key);
            }
        }
        if !self.quarantine.is_empty() {
            self.quarantine.retain(|_, until| *until > now);
        }
    }

    fn drop_offer(&mut self, key: &LeaseKey) {
        if let Some(o) = self.offers.remove(key) {
            let slot = (key.link.clone(), o.address);
            if self.offered.get(&slot) == Some(&key.client) {
                self.offered.remove(&slot);
            }
        }
    }

    fn insert_lease(&mut self, lease: Lease) {
        let key = lease.key();
        let slot = (lease.link.clone(), lease.address);
        // One lease per address on a link: an older claim by another client goes.
        if let Some(other) = self.by_address.get(&slot).cloned() {
            if other != lease.client {
                let other_key = LeaseKey {
                    link: lease.link.clone(),
                    client: other,
                };
                self.leases.remove(&other_key);
                self.last_heard.remove(&other_key);
            }
        }
        if let Some(old) = self.leases.get(&key) {
            if old.address != lease.address {
                self.by_address.remove(&(old.link.clone(), old.address));
            }
        }
        self.by_address.insert(slot, lease.client.clone());
        self.leases.insert(key, lease);
    }

    fn remove_lease(&mut self, key: &LeaseKey) -> Option<Lease> {
        let lease = self.leases.remove(key)?;
        let slot = (lease.link.clone(), lease.address);
        if self.by_address.get(&slot) == Some(&key.client) {
            self.by_address.remove(&slot);
        }
        self.last_heard.remove(key);
        Some(lease)
    }

    fn heard(&self, key: &LeaseKey, lease: &Lease) -> UnixTime {
        self.last_heard
            .get(key)
            .copied()
            .unwrap_or(0)
            .max(lease.updated)
    }

    /// Whether `addr` on `link` may go to the client in `ctx`, or why not.
    fn check_address(&self, ctx: &Ctx<'_>, addr: Ipv4Addr) -> Result<(), Refusal> {
        let link = &ctx.link.name;
        if !ctx.link.plan.contains(addr) {
            return Err(Refusal::WrongLink);
        }
        if self
            .quarantine
            .get(&(link.clone(), addr))
            .is_some_and(|until| *until > ctx.now)
        {
            return Err(Refusal::Quarantined);
        }
        if let Some(holder) = self.by_address.get(&(link.clone(), addr)) {
            if *holder != ctx.key.client {
                let hkey = LeaseKey {
                    link: link.clone(),
                    client: holder.clone(),
                };
                if let Some(lease) = self.leases.get(&hkey) {
                    if lease.is_active(ctx.now) {
                        let p2p = matches!(ctx.link.plan, AddressPlan::PointToPoint { .. });
                        let quiet_for = ctx.now.saturating_sub(self.heard(&hkey, lease));
                        // On a point-to-point link the address is the link's: a
                        // holder that has gone quiet was unplugged or replaced.
                        if !(p2p && quiet_for >= self.config.replace_after.as_secs()) {
                            return Err(Refusal::Held(lease.mac.clone()));
                        }
                    }
                }
            }
        }
        if matches!(ctx.link.plan, AddressPlan::Pool(_)) {
            if let Some(c) = self.offered.get(&(link.clone(), addr)) {
                if *c != ctx.key.client {
                    return Err(Refusal::Offered);
                }
            }
        }
        Ok(())
    }

    /// Picks the address for a DISCOVER.
    fn choose_address(&mut self, ctx: &Ctx<'_>) -> Result<Ipv4Addr, Refusal> {
        match &ctx.link.plan {
            AddressPlan::PointToPoint { leaf, .. } => {
                self.check_address(ctx, *leaf)?;
                Ok(*leaf)
            }
            AddressPlan::Pool(pool) => {
                let mut candidates = Vec::with_capacity(3);
                if let Some(o) = self.offers.get(&ctx.key) {
                    candidates.push(o.address);
                }
                if let Some(l) = self.leases.get(&ctx.key) {
                    candidates.push(l.address);
                }
                if let Some(r) = ctx.req.requested_ip {
                    candidates.push(r);
                }
                for c in candidates {
                    if self.check_address(ctx, c).is_ok() {
                        return Ok(c);
                    }
                }
                let first = u32::from(pool.first);
                let size = u32::from(pool.last) - first + 1;
                let start = self.pool_cursor.get(&ctx.link.name).copied().unwrap_or(0) % size;
                // First pass: addresses nobody has ever held. Second: reclaim
                // addresses whose lease expired or was released.
                for reclaim in [false, true] {
                    for i in 0..size {
                        let off = (start + i) % size;
                        let addr = Ipv4Addr::from(first + off);
                        let slot = (ctx.link.name.clone(), addr);
                        if !reclaim && self.by_address.contains_key(&slot) {
                            continue;
                        }
                        if self.check_address(ctx, addr).is_ok() {
                            self.pool_cursor.insert(ctx.link.name.clone(), off + 1);
                            return Ok(addr);
                        }
                    }
                }
                // Last resort: take the address of the oldest pending offer on
                // this link; an OFFER is not a promise.
                let oldest = self
                    .offer_queue
                    .iter()
                    .find(|(_, k)| k.link == ctx.link.name && k.client != ctx.key.client)
                    .map(|(_, k)| k.clone());
                if let Some(k) = oldest {
                    let addr = self.offers.get(&k).map(|o| o.address);
                    self.drop_offer(&k);
                    if let Some(addr) = addr {
                        if self.check_address(ctx, addr).is_ok() {
                            return Ok(addr);
                        }
                    }
                }
                Err(Refusal::Exhausted)
            }
        }
    }

    fn discover(&mut self, ctx: &Ctx<'_>, out: &mut Outcome) {
        let addr = match self.choose_address(ctx) {
            Ok(a) => a,
            Err(r) => {
                self.report_refusal(ctx, r, out);
                return;
            }
        };
        self.drop_offer(&ctx.key);
        let expires = ctx.now + self.config.offer_hold.as_secs();
        self.offers.insert(
            ctx.key.clone(),
            Offer {
                address: addr,
                expires,
            },
        );
        self.offered
            .insert((ctx.link.name.clone(), addr), ctx.key.client.clone());
        self.offer_queue.push_back((expires, ctx.key.clone()));
        // Keep the cap: evict the oldest offers first.
        while self.offers.len() > self.config.max_pending_offers {
            match self.offer_queue.pop_front() {
                Some((exp, k)) => {
                    if self.offers.get(&k).is_some_and(|o| o.expires == exp) {
                        self.drop_offer(&k);
                    }
                }
                None => break,
            }
        }
        let vendor = ctx.vendor();
        let hostname = self.hostname(ctx, &vendor);
        let options = self.lease_options(ctx, hostname);
        out.reply = Some(self.reply(ctx, MessageType::Offer, addr, options));
        out.events.push(Event::Offered {
            link: ctx.link.name.clone(),
            mac: ctx.req.mac.clone(),
            address: addr,
            vendor,
        });
    }

    fn request(&mut self, ctx: &Ctx<'_>, out: &mut Outcome) {
        let req = ctx.req;
        let ciaddr = req.msg.ciaddr();
        let server_id = ctx.link.plan.server_id();
        // RFC 2131 §4.3.2: which state the client is in.
        let (wanted, state) = match (req.server_id, req.requested_ip) {
            (Some(sid), _) if sid != server_id => {
                // SELECTING, and it chose another server: forget our offer.
                self.drop_offer(&ctx.key);
                return;
            }
            (Some(_), Some(r)) => (r, "selecting"),
            (Some(_), None) if !ciaddr.is_unspecified() => (ciaddr, "selecting"),
            (Some(_), None) => {
                self.nak(ctx, None, "REQUEST names this server but no address", out);
                return;
            }
            (None, Some(r)) if ciaddr.is_unspecified() => (r, "init-reboot"),
            (None, _) if !ciaddr.is_unspecified() => (ciaddr, "renewing"),
            (None, _) => {
                // Nothing to go on: RFC says stay silent.
                return;
            }
        };
        if !ctx.link.plan.contains(wanted) {
            let why = format!("{wanted} is not an address of this link ({state})");
            self.nak(ctx, Some(wanted), &why, out);
            return;
        }
        if state == "selecting" {
            // It must be what we offered or what it already holds, or (p2p) the
            // link's address: a restart may have lost the offer.
            let offered = self.offers.get(&ctx.key).map(|o| o.address);
            let held = self.leases.get(&ctx.key).map(|l| l.address);
            let p2p = matches!(ctx.link.plan, AddressPlan::PointToPoint { .. });
            if offered != Some(wanted) && held != Some(wanted) && !p2p {
                self.nak(ctx, Some(wanted), "not the address offered", out);
                return;
            }
        }
        if let Err(r) = self.check_address(ctx, wanted) {
            let why = match &r {
                Refusal::Held(mac) => format!("held by {mac}"),
                other => other.to_string(),
            };
            self.nak(ctx, Some(wanted), &why, out);
            return;
        }
        self.bind(ctx, wanted, out);
    }

    /// Commits a lease for the client in `ctx` and queues the ACK.
    fn bind(&mut self, ctx: &Ctx<'_>, addr: Ipv4Addr, out: &mut Outcome) {
        let link = &ctx.link.name;
        let vendor = ctx.vendor();
        let previous = self.leases.get(&ctx.key).cloned();
        let renewal = previous
            .as_ref()
            .is_some_and(|l| l.address == addr && l.is_active(ctx.now));
        // Another client's record for this address goes (a replaced leaf, or an
        // expired pool lease).
        if let Some(holder) = self.by_address.get(&(link.clone(), addr)).cloned() {
            if holder != ctx.key.client {
                let hkey = LeaseKey {
                    link: link.clone(),
                    client: holder,
                };
                if let Some(old) = self.remove_lease(&hkey) {
                    if matches!(ctx.link.plan, AddressPlan::PointToPoint { .. }) {
                        out.events.push(Event::Replaced {
                            link: link.clone(),
                            address: addr,
                            old_mac: old.mac.clone(),
                            old_serial: old.serial().map(str::to_string),
                            new_mac: ctx.req.mac.clone(),
                            new_serial: vendor.as_ref().and_then(|v| v.serial.clone()),
                        });
                    }
                    out.changes.push(LeaseChange::Delete(hkey));
                }
            }
        }
        self.drop_offer(&ctx.key);
        let hostname = self.hostname(ctx, &vendor);
        let lease = Lease {
            link: link.clone(),
            client: ctx.key.client.clone(),
            mac: ctx.req.mac.clone(),
            address: addr,
            state: LeaseState::Bound,
            expires: ctx.now + self.config.lease_time.as_secs(),
            updated: ctx.now,
            vendor: vendor.clone(),
            hostname: hostname.clone(),
        };
        self.insert_lease(lease.clone());
        self.last_heard.insert(ctx.key.clone(), ctx.now);
        out.changes.push(LeaseChange::Put(lease));
        let options = self.lease_options(ctx, hostname);
        out.reply = Some(self.reply(ctx, MessageType::Ack, addr, options));
        out.events.push(Event::Acked {
            link: link.clone(),
            mac: ctx.req.mac.clone(),
            address: addr,
            vendor,
            renewal,
        });
    }

    fn decline(&mut self, ctx: &Ctx<'_>, out: &mut Outcome) {
        if ctx
            .req
            .server_id
            .is_some_and(|s| s != ctx.link.plan.server_id())
        {
            return;
        }
        let Some(addr) = ctx.req.requested_ip else {
            return;
        };
        let ours = self.leases.get(&ctx.key).is_some_and(|l| l.address == addr)
            || self.offers.get(&ctx.key).is_some_and(|o| o.address == addr);
        if !ours {
            return;
        }
        self.drop_offer(&ctx.key);
        if self.remove_lease(&ctx.key).is_some() {
            out.changes.push(LeaseChange::Delete(ctx.key.clone()));
        }
        let secs = self.config.decline_quarantine.as_secs();
        self.quarantine
            .insert((ctx.link.name.clone(), addr), ctx.now + secs);
        out.events.push(Event::Declined {
            link: ctx.link.name.clone(),
            mac: ctx.req.mac.clone(),
            address: addr,
            quarantine_secs: secs,
        });
    }

    fn release(&mut self, ctx: &Ctx<'_>, out: &mut Outcome) {
        if ctx
            .req
            .server_id
            .is_some_and(|s| s != ctx.link.plan.server_id())
        {
            return;
        }
        let addr = ctx.req.msg.ciaddr();
        let Some(lease) = self.leases.get(&ctx.key) else {
            return;
        };
        if lease.address != addr || lease.state == LeaseState::Released {
            return;
        }
        let mut lease = lease.clone();
        lease.state = LeaseState::Released;
        lease.expires = ctx.now;
        lease.updated = ctx.now;
        self.insert_lease(lease.clone());
        out.changes.push(LeaseChange::Put(lease));
        out.events.push(Event::Released {
            link: ctx.link.name.clone(),
            mac: ctx.req.mac.clone(),
            address: addr,
        });
    }

    fn inform(&mut self, ctx: &Ctx<'_>, out: &mut Outcome) {
        let ciaddr = ctx.req.msg.ciaddr();
        if ciaddr.is_unspecified() {
            return;
        }
        let vendor = ctx.vendor();
        let hostname = self.hostname(ctx, &vendor);
        // RFC 2131 §3.4: no lease time and no yiaddr in the ACK to an INFORM.
        let mut options = self.lease_options(ctx, hostname);
        options.retain(|o| {
            !matches!(
                o,
                DhcpOption::AddressLeaseTime(_) | DhcpOption::Renewal(_) | DhcpOption::Rebinding(_)
            )
        });
        out.reply = Some(self.reply(ctx, MessageType::Ack, Ipv4Addr::UNSPECIFIED, options));
        out.events.push(Event::Informed {
            link: ctx.link.name.clone(),
            mac: ctx.req.mac.clone(),
            address: ciaddr,
        });
    }

    fn nak(&mut self, ctx: &Ctx<'_>, requested: Option<Ipv4Addr>, why: &str, out: &mut Outcome) {
        self.drop_offer(&ctx.key);
        let giaddr = ctx.req.msg.giaddr();
        // RFC 2131 §4.1: a NAK without giaddr is broadcast; through a relay, the
        // broadcast bit asks the relay to broadcast it.
        let mut req = ctx.req.clone();
        if !giaddr.is_unspecified() {
            let flags = req.msg.flags().set_broadcast();
            req.msg.set_flags(flags);
        }
        let server_id = ctx.link.plan.server_id();
        let payload = packet::encode_reply(
            &req,
            MessageType::Nak,
            server_id,
            Ipv4Addr::UNSPECIFIED,
            vec![DhcpOption::Message(why.to_string())],
        );
        out.reply = Some(Reply {
            kind: MessageType::Nak,
            ifindex: ctx.link.ifindex,
            source: server_id,
            destination: if giaddr.is_unspecified() {
                Destination::Broadcast
            } else {
                Destination::Relay(giaddr)
            },
            payload,
        });
        out.events.push(Event::Naked {
            link: ctx.link.name.clone(),
            mac: ctx.req.mac.clone(),
            requested,
            reason: why.to_string(),
        });
    }

    fn report_refusal(&mut self, ctx: &Ctx<'_>, r: Refusal, out: &mut Outcome) {
        let interval = self.config.log_interval.as_secs();
        let link = ctx.link.name.clone();
        match r {
            Refusal::Held(holder) => {
                if self
                    .limits
                    .allow(RL_HELD, link.clone(), ctx.now, interval)
                    .is_some()
                {
                    let address = match &ctx.link.plan {
                        AddressPlan::PointToPoint { leaf, .. } => *leaf,
                        AddressPlan::Pool(_) => {
                            ctx.req.requested_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
                        }
                    };
                    out.events.push(Event::HeldByOther {
                        link,
                        address,
                        holder_mac: holder,
                        asking_mac: ctx.req.mac.clone(),
                    });
                }
            }
            _ => {
                if self
                    .limits
                    .allow(RL_NOADDR, link.clone(), ctx.now, interval)
                    .is_some()
                {
                    out.events.push(Event::NoAddress {
                        link,
                        mac: ctx.req.mac.clone(),
                    });
                }
            }
        }
    }

    fn hostname(&self, ctx: &Ctx<'_>, vendor: &Option<VendorInfo>) -> Option<String> {
        ctx.class.hostname.as_ref().and_then(|t| {
            t.render(HostnameVars {
                link: &ctx.link.name,
                serial: vendor.as_ref().and_then(|v| v.serial.as_deref()),
                model: vendor.as_ref().and_then(|v| v.model.as_deref()),
                mac: &ctx.req.mac,
            })
        })
    }

    fn lease_options(&self, ctx: &Ctx<'_>, hostname: Option<String>) -> Vec<DhcpOption> {
        let plan = &ctx.link.plan;
        let class = ctx.class;
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
            o.push(DhcpOption::Hostname(h));
        }
        if let Some(url) = class.bootfile_for(plan.router()) {
            o.push(DhcpOption::BootfileName(url.into_bytes()));
        }
        o
    }

    fn reply(
        &self,
        ctx: &Ctx<'_>,
        kind: MessageType,
        yiaddr: Ipv4Addr,
        options: Vec<DhcpOption>,
    ) -> Reply {
        let server_id = ctx.link.plan.server_id();
        let payload = packet::encode_reply(ctx.req, kind, server_id, yiaddr, options);
        let q = &ctx.req.msg;
        let destination = if !q.giaddr().is_unspecified() {
            Destination::Relay(q.giaddr())
        } else if !q.ciaddr().is_unspecified() {
            Destination::Unicast(q.ciaddr())
        } else if q.flags().broadcast() || yiaddr.is_unspecified() {
            Destination::Broadcast
        } else {
            Destination::Hardware {
                address: yiaddr,
                chaddr: q.chaddr().to_vec(),
            }
        };
        Reply {
            kind,
            ifindex: ctx.link.ifindex,
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
    Held(String),
    #[error("offered to another client")]
    Offered,
    #[error("pool exhausted")]
    Exhausted,
}

/// What one packet is about.
struct Ctx<'a> {
    now: UnixTime,
    link: &'a ServedLink,
    class: &'a ClientClass,
    req: &'a Request,
    key: LeaseKey,
}

impl Ctx<'_> {
    fn vendor(&self) -> Option<VendorInfo> {
        self.req.vendor_class.as_deref().map(VendorInfo::parse)
    }
}
