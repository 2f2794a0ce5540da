//! The lease records of one link, found by client or by address.
//!
//! Issue 10: a spine may hold 50,000 leases on one pool link, and two hash maps
//! (client → record, address → client) cost 130 bytes per lease in buckets,
//! most of it the load-factor slack of a record-sized bucket. Here the records
//! sit in fixed-size chunks (no doubling slack; a freed slot is reused) and both
//! indexes are tables of 4-byte slot numbers, so the slack is 5 bytes a bucket.
//! The indexes hash with std's randomly keyed SipHash: client identifiers are
//! chosen by whoever sends a packet.

use crate::lease::ClientId;
use hashbrown::HashTable;
use std::hash::{BuildHasher, RandomState};
use std::net::Ipv4Addr;

/// A record that holds one address.
pub(crate) trait Addressed {
    /// The address the record holds.
    fn address(&self) -> Ipv4Addr;
}

/// Slots per chunk: big enough that the chunk list stays short, small enough
/// that a link with a handful of leases costs little.
const CHUNK: usize = 256;

/// Records keyed by client, at most one per address. The address of a record
/// changes only through [`ClientTable::insert`] (never through `get_mut`), so
/// the address index stays true.
#[derive(Debug)]
pub(crate) struct ClientTable<V> {
    chunks: Vec<Vec<Option<(ClientId, V)>>>,
    /// Slots emptied by removals, reused first.
    free: Vec<u32>,
    by_client: HashTable<u32>,
    by_address: HashTable<u32>,
    hasher: RandomState,
}

impl<V: Addressed> Default for ClientTable<V> {
    fn default() -> Self {
        ClientTable {
            chunks: Vec::new(),
            free: Vec::new(),
            by_client: HashTable::new(),
            by_address: HashTable::new(),
            hasher: RandomState::new(),
        }
    }
}

impl<V: Addressed> ClientTable<V> {
    fn slot(&self, i: u32) -> &(ClientId, V) {
        occupied(&self.chunks, i)
    }

    fn slot_mut(&mut self, i: u32) -> &mut (ClientId, V) {
        let i = i as usize;
        self.chunks[i / CHUNK][i % CHUNK]
            .as_mut()
            .expect("indexed slots are occupied")
    }

    fn find_client(&self, client: &ClientId) -> Option<u32> {
        let hash = self.hasher.hash_one(client);
        self.by_client
            .find(hash, |&i| self.slot(i).0 == *client)
            .copied()
    }

    fn find_address(&self, address: Ipv4Addr) -> Option<u32> {
        let hash = self.hasher.hash_one(address);
        self.by_address
            .find(hash, |&i| self.slot(i).1.address() == address)
            .copied()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// The record of `client`.
    pub fn get(&self, client: &ClientId) -> Option<&V> {
        self.find_client(client).map(|i| &self.slot(i).1)
    }

    /// The record of `client`, to change anything but its address.
    pub fn get_mut(&mut self, client: &ClientId) -> Option<&mut V> {
        self.find_client(client).map(|i| &mut self.slot_mut(i).1)
    }

    /// Whether `client` has a record.
    pub fn contains(&self, client: &ClientId) -> bool {
        self.find_client(client).is_some()
    }

    /// The client whose record holds `address`.
    pub fn holder(&self, address: Ipv4Addr) -> Option<&ClientId> {
        self.find_address(address).map(|i| &self.slot(i).0)
    }

    /// The record that holds `address`, to change anything but its address.
    pub fn at_address_mut(&mut self, address: Ipv4Addr) -> Option<&mut V> {
        self.find_address(address).map(|i| &mut self.slot_mut(i).1)
    }

    /// Whether a record holds `address`.
    pub fn holds(&self, address: Ipv4Addr) -> bool {
        self.find_address(address).is_some()
    }

    /// Sets the record of `client`; a record of another client that held the
    /// same address goes and is returned.
    pub fn insert(&mut self, client: ClientId, value: V) -> Option<(ClientId, V)> {
        let address = value.address();
        let displaced = match self.find_address(address) {
            Some(i) if self.slot(i).0 != client => {
                let other = self.slot(i).0.clone();
                self.remove(&other).map(|v| (other, v))
            }
            _ => None,
        };
        if let Some(i) = self.find_client(&client) {
            let old = self.slot(i).1.address();
            if old != address {
                self.unindex_address(old, i);
                self.index_address(address, i);
            }
            self.slot_mut(i).1 = value;
            return displaced;
        }
        let i = self.allocate((client, value));
        let hash = self.hasher.hash_one(&self.slot(i).0);
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        self.by_client
            .insert_unique(hash, i, |&j| hasher.hash_one(&occupied(chunks, j).0));
        self.index_address(address, i);
        displaced
    }

    /// Removes the record of `client`.
    pub fn remove(&mut self, client: &ClientId) -> Option<V> {
        let hash = self.hasher.hash_one(client);
        let (chunks, by_client) = (&self.chunks, &mut self.by_client);
        let i = by_client
            .find_entry(hash, |&j| occupied(chunks, j).0 == *client)
            .ok()?
            .remove()
            .0;
        let address = self.slot(i).1.address();
        self.unindex_address(address, i);
        let n = i as usize;
        let (_, value) = self.chunks[n / CHUNK][n % CHUNK]
            .take()
            .expect("indexed slots are occupied");
        self.free.push(i);
        Some(value)
    }

    /// Every record, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&ClientId, &V)> {
        self.chunks
            .iter()
            .flatten()
            .filter_map(|s| s.as_ref().map(|(c, v)| (c, v)))
    }

    /// Every record's value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    fn allocate(&mut self, record: (ClientId, V)) -> u32 {
        if let Some(i) = self.free.pop() {
            let n = i as usize;
            self.chunks[n / CHUNK][n % CHUNK] = Some(record);
            return i;
        }
        let n = self.chunks.last().map_or(0, Vec::len);
        if self.chunks.is_empty() || n == CHUNK {
            // Exactly one chunk's worth: no slack beyond the chunk.
            let mut chunk = Vec::new();
            chunk.reserve_exact(CHUNK);
            self.chunks.push(chunk);
        }
        let last = self.chunks.len() - 1;
        self.chunks[last].push(Some(record));
        // A link holds fewer records than u32 counts: its pool is an IPv4 range.
        u32::try_from(last * CHUNK + self.chunks[last].len() - 1).expect("fewer than 2^32 records")
    }

    fn index_address(&mut self, address: Ipv4Addr, i: u32) {
        let hash = self.hasher.hash_one(address);
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        self.by_address.insert_unique(hash, i, |&j| {
            hasher.hash_one(occupied(chunks, j).1.address())
        });
    }

    fn unindex_address(&mut self, address: Ipv4Addr, i: u32) {
        let hash = self.hasher.hash_one(address);
        if let Ok(e) = self.by_address.find_entry(hash, |&j| j == i) {
            e.remove();
        }
    }
}

fn occupied<V>(chunks: &[Vec<Option<(ClientId, V)>>], i: u32) -> &(ClientId, V) {
    let i = i as usize;
    chunks[i / CHUNK][i % CHUNK]
        .as_ref()
        .expect("indexed slots are occupied")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone, PartialEq)]
    struct Rec(Ipv4Addr, u32);

    impl Addressed for Rec {
        fn address(&self) -> Ipv4Addr {
            self.0
        }
    }

    fn client(n: u32) -> ClientId {
        ClientId::from_hardware(1, &n.to_be_bytes())
    }

    fn addr(n: u32) -> Ipv4Addr {
        Ipv4Addr::from(0x0a00_0000 + n)
    }

    #[test]
    fn finds_by_client_and_by_address() {
        let mut t = ClientTable::default();
        for n in 0..1000 {
            assert!(t.insert(client(n), Rec(addr(n), n)).is_none());
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(t.get(&client(7)), Some(&Rec(addr(7), 7)));
        assert_eq!(t.holder(addr(9)), Some(&client(9)));
        assert!(t.holds(addr(999)) && !t.holds(addr(1000)));
        t.get_mut(&client(3)).unwrap().1 = 33;
        t.at_address_mut(addr(4)).unwrap().1 = 44;
        assert_eq!(t.get(&client(3)).unwrap().1, 33);
        assert_eq!(t.get(&client(4)).unwrap().1, 44);
    }

    #[test]
    fn a_new_address_moves_the_index_and_a_taken_one_displaces_its_holder() {
        let mut t = ClientTable::default();
        t.insert(client(1), Rec(addr(1), 1));
        t.insert(client(2), Rec(addr(2), 2));
        // Client 1 moves to address 5: address 1 is free.
        assert!(t.insert(client(1), Rec(addr(5), 1)).is_none());
        assert_eq!(t.holder(addr(5)), Some(&client(1)));
        assert!(!t.holds(addr(1)));
        // Client 3 takes address 2: client 2's record goes.
        let gone = t.insert(client(3), Rec(addr(2), 3));
        assert_eq!(gone, Some((client(2), Rec(addr(2), 2))));
        assert!(!t.contains(&client(2)));
        assert_eq!(t.holder(addr(2)), Some(&client(3)));
        assert_eq!(t.len(), 2);
    }

    /// The table agrees with two plain maps through a long random sequence of
    /// inserts and removals (slots reused, chunks filled and refilled).
    #[test]
    fn agrees_with_two_maps_through_churn() {
        let mut t = ClientTable::default();
        let mut by_client: HashMap<u32, Rec> = HashMap::new();
        let mut seed = 0x2545_f491_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for step in 0..20_000 {
            let c = next() % 700;
            if next() % 3 == 0 {
                let removed = t.remove(&client(c));
                assert_eq!(removed, by_client.remove(&c), "step {step}");
            } else {
                let a = addr(next() % 900);
                by_client.retain(|_, r| r.0 != a);
                by_client.insert(c, Rec(a, step));
                t.insert(client(c), Rec(a, step));
            }
            assert_eq!(t.len(), by_client.len(), "step {step}");
        }
        for (c, r) in &by_client {
            assert_eq!(t.get(&client(*c)), Some(r));
            assert_eq!(t.holder(r.0), Some(&client(*c)));
        }
        assert_eq!(t.iter().count(), by_client.len());
        assert!(t.chunks.len() * CHUNK <= 700 + CHUNK, "slots are reused");
    }
}
