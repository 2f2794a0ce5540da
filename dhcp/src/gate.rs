//! A cheap admission check run on the raw bytes of every packet, before it is
//! decoded (issue 11 item 2: one client's flood never delays another link's ACK).
//!
//! All links share one socket and so one kernel receive buffer: the server must
//! drain it faster than one leaf can fill it. Decoding a packet and running the
//! core cost far more than reading 16 bytes of chaddr and one hash lookup, so a
//! sender over its rate is dropped here. The core keeps its own, finer limit by
//! client identity; this one is keyed by (ingress interface, chaddr) and admits
//! twice the core's rate, so it only ever drops what the core would refuse.

use crate::time::Mono;
use std::collections::HashMap;
use std::time::Duration;

/// Admits a few packets per second for one sender: fixed one-second windows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bucket {
    window: Mono,
    count: u16,
}

impl Bucket {
    /// Counts one packet at `now`; whether it is within `per_sec`.
    pub(crate) fn allow(&mut self, now: Mono, per_sec: u16) -> bool {
        if now.since(self.window) >= Duration::from_secs(1) || now < self.window {
            self.window = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count <= per_sec.max(1)
    }

    /// Whether the bucket has seen nothing for a whole window.
    pub(crate) fn is_idle(&self, now: Mono) -> bool {
        now.since(self.window) >= Duration::from_secs(1)
    }
}

/// Offset of `hlen` in a BOOTP header.
const HLEN: usize = 2;
/// Offset of `chaddr` in a BOOTP header.
const CHADDR: usize = 28;
/// Length of the `chaddr` field.
const CHADDR_LEN: usize = 16;

/// Who sent a packet, as far as the raw header says: ingress interface and chaddr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Sender {
    ifindex: u32,
    chaddr: [u8; CHADDR_LEN],
}

impl Sender {
    /// Reads the sender from a packet's first 44 bytes; `None` if it is shorter
    /// (the decoder rejects it anyway).
    fn of(ifindex: u32, packet: &[u8]) -> Option<Sender> {
        let header = packet.get(..CHADDR + CHADDR_LEN)?;
        let hlen = usize::from(header[HLEN]).min(CHADDR_LEN);
        let mut chaddr = [0u8; CHADDR_LEN];
        chaddr[..hlen].copy_from_slice(&header[CHADDR..CHADDR + hlen]);
        Some(Sender { ifindex, chaddr })
    }
}

/// The pre-decode flood filter: a bounded table of per-sender rate buckets.
#[derive(Debug)]
pub struct FloodGate {
    per_sec: u16,
    buckets: HashMap<Sender, Bucket>,
}

impl FloodGate {
    /// Senders tracked at most: 7/8 of 16,384, the most a table of 16,384
    /// buckets holds before it doubles. A full table of busy senders admits
    /// newcomers unmetered (the core still limits them) rather than growing.
    pub const MAX_SENDERS: usize = 14_336;

    /// A gate admitting `per_sec` packets per second per (interface, chaddr).
    pub fn new(per_sec: u16) -> FloodGate {
        FloodGate {
            per_sec: per_sec.max(1),
            buckets: HashMap::new(),
        }
    }

    /// A gate that admits twice what the core admits per client, so it drops
    /// only packets the core would refuse anyway.
    pub fn for_core_rate(client_packets_per_sec: u16) -> FloodGate {
        FloodGate::new(client_packets_per_sec.saturating_mul(2))
    }

    /// Changes the rate (a config reload); counts so far are kept.
    pub fn set_rate(&mut self, per_sec: u16) {
        self.per_sec = per_sec.max(1);
    }

    /// Whether the packet that arrived on `ifindex` at `now` goes on to the
    /// decoder. Reads only the fixed header; never allocates past the bound.
    pub fn admit(&mut self, now: Mono, ifindex: u32, packet: &[u8]) -> bool {
        let Some(sender) = Sender::of(ifindex, packet) else {
            return true;
        };
        if let Some(bucket) = self.buckets.get_mut(&sender) {
            return bucket.allow(now, self.per_sec);
        }
        if self.buckets.len() >= Self::MAX_SENDERS {
            self.buckets.retain(|_, b| !b.is_idle(now));
            if self.buckets.len() >= Self::MAX_SENDERS {
                return true;
            }
        }
        let mut bucket = Bucket::default();
        let admitted = bucket.allow(now, self.per_sec);
        self.buckets.insert(sender, bucket);
        admitted
    }

    /// Forgets senders quiet for a second and, when the table is mostly empty
    /// after a burst, gives its room back. Called now and then, not per packet.
    pub fn sweep(&mut self, now: Mono) {
        self.buckets.retain(|_, b| !b.is_idle(now));
        crate::server::shrink_if_sparse(&mut self.buckets);
    }

    /// Room for senders without growing (for tests and diagnostics).
    pub fn capacity(&self) -> usize {
        self.buckets.capacity()
    }

    /// Senders tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no sender is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(mac: [u8; 6]) -> Vec<u8> {
        let mut p = vec![0u8; 300];
        p[0] = 1;
        p[1] = 1;
        p[HLEN] = 6;
        p[CHADDR..CHADDR + 6].copy_from_slice(&mac);
        p
    }

    #[test]
    fn a_flooder_is_cut_to_its_rate_and_others_pass() {
        let mut gate = FloodGate::new(4);
        let flooder = packet([2, 0, 0, 0, 0, 1]);
        let other = packet([2, 0, 0, 0, 0, 2]);
        let t = Mono(10_000);
        let admitted = (0..1000).filter(|_| gate.admit(t, 7, &flooder)).count();
        assert_eq!(admitted, 4);
        assert!(gate.admit(t, 7, &other), "another sender is not limited");
        assert!(
            gate.admit(t, 8, &flooder),
            "the same chaddr on another link is another sender"
        );
        assert!(
            gate.admit(Mono(11_000), 7, &flooder),
            "a new window admits again"
        );
    }

    #[test]
    fn bytes_past_hlen_do_not_make_new_senders() {
        let mut gate = FloodGate::new(1);
        let mut a = packet([2, 0, 0, 0, 0, 1]);
        assert!(gate.admit(Mono(0), 1, &a));
        a[CHADDR + 10] = 0xff; // padding a flooder varies
        assert!(!gate.admit(Mono(0), 1, &a));
    }

    #[test]
    fn short_packets_go_to_the_decoder_and_the_table_is_bounded() {
        let mut gate = FloodGate::new(1);
        assert!(gate.admit(Mono(0), 1, &[1, 2, 3]));
        assert!(gate.is_empty());
        for i in 0..(FloodGate::MAX_SENDERS as u32 + 100) {
            let b = i.to_be_bytes();
            gate.admit(Mono(0), 1, &packet([2, 0, b[0], b[1], b[2], b[3]]));
        }
        assert_eq!(gate.len(), FloodGate::MAX_SENDERS);
        assert!(
            gate.capacity() <= 16_384,
            "a full table does not double: {}",
            gate.capacity()
        );
        // Once they are idle, room is made.
        gate.admit(Mono(5_000), 1, &packet([4, 4, 4, 4, 4, 4]));
        assert_eq!(gate.len(), 1);
        // And a sweep gives the room back.
        gate.sweep(Mono(5_500));
        assert!(gate.capacity() <= 64, "room for {} left", gate.capacity());
        assert_eq!(gate.len(), 1, "a sender heard within the second is kept");
    }
}
