//! Memory per lease (issue 10 §4): heap bytes the server holds per lease, counted
//! by a global allocator, for leases granted through the core and for leases
//! loaded from a lease file.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicIsize, Ordering};
use ztps_dhcp::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const N: u32 = 50_000;
const T0: u64 = 1_800_000_000;

fn lease(i: u32) -> Lease {
    let mac = [0x02, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1];
    Lease {
        link: "Ethernet7".into(),
        client: ClientId::from_hardware(1, &mac),
        mac: HwAddr::new(&mac),
        address: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 64, 0, 0)) + i),
        state: LeaseState::Bound,
        expires: T0 + 86_400,
        updated: T0,
        clock_trusted: true,
        // A unique serial per leaf, as real leaves send.
        vendor: Some(format!("Arista;DCS-7050SX3-48YC8;11.00;JPE{i:08}").into()),
        hostname: None,
    }
}

/// One test (the counter is process-wide): leases loaded into the core.
#[test]
fn a_lease_costs_at_most_140_bytes_of_heap_in_the_core() {
    let before = LIVE.load(Ordering::Relaxed);
    let leases: Vec<Lease> = (0..N).map(lease).collect();
    let mut s = Server::new(ServerConfig::default());
    s.load_leases(T0, leases);
    let after = LIVE.load(Ordering::Relaxed);
    let per_lease = (after - before) as f64 / f64::from(N);
    // The input vector was moved in and freed: what remains is the server's.
    eprintln!(
        "server heap per lease: {per_lease:.0} bytes ({N} leases, {} KiB)",
        (after - before) / 1024
    );
    assert_eq!(s.lease_counts(), (N as usize, N as usize));
    assert!(per_lease <= 140.0, "{per_lease:.0} bytes per lease");
}
