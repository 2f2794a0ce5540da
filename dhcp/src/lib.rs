//! DHCPv4 server for the leaf-facing links of a spine.
//!
//! - [`server`]: the sans-IO core, a function of (time, ingress link, packet) to
//!   (reply, lease changes, events). No clock, no socket, no file.
//! - [`plan`]: the address plan of a link, derived from the spine's own address
//!   (/31, /30) or given as a pool.
//! - [`store`]: the lease file: an append-only journal with group commit, so an
//!   ACK leaves only after its lease is fsynced, and recovery of damaged files.
//! - [`gate`]: drops a flooding sender's packets before they are decoded.
//! - [`socket`]: the one UDP socket on port 67 with `IP_PKTINFO`.
//! - [`service`]: runs the core on the socket and the store.

pub mod config;
pub mod gate;
pub mod lease;
pub mod packet;
pub mod plan;
pub mod server;
mod table;
pub mod time;
pub mod vendor;

pub use config::{ClientClass, HostnameTemplate, ServerConfig};
pub use gate::FloodGate;
pub use lease::{ClientId, HwAddr, Lease, LeaseChange, LeaseKey, LeaseState, LinkName};
pub use plan::{AddressPlan, NoPlan, PoolSpec, SpineAddress};
pub use server::{
    Destination, Event, LinkCounters, LinkSummary, Outcome, Reply, ServedLink, Server,
};
pub use time::{Clock, Mono, Now, UnixTime};
pub use vendor::VendorInfo;
pub mod service;
pub mod socket;
pub mod store;

pub use service::{EventSink, Service};
pub use socket::{DhcpSocket, SocketError};
pub use store::{LeaseStore, LoadReport, StoreError};
