//! The kernel side of ztps-agent: the VM bridge (`br0`), IPv4 forwarding,
//! link and address queries, and a stream of link/address events.
//!
//! It replaces the recipe's `brctl addbr br0; ifconfig br0 up;
//! sysctl net.ipv4.ip_forward=1` and the polling the daemon would otherwise
//! need to notice new interfaces.
//!
//! **Architecture Invariant:** library code never shells out (no `ip`, no
//! `brctl`, no `sysctl`): links and addresses go through rtnetlink, sysctls
//! through `/proc/sys`. There is no parsing of tool output and no dependency
//! on what the EOS userland ships.
//!
//! **Architecture Invariant:** every setup step is idempotent and reads
//! before it writes: look the link up by name, create it only if missing,
//! verify its kind before touching it (a name held by a non-bridge link is an
//! error and nothing is changed), change only what differs. A second run of
//! [`Netlink::ensure_bridge`] or [`enable_forwarding`] changes nothing and
//! says so. Only the bridge itself is touched: its ports (the VM's `vnet0`)
//! and addresses other than the requested one are left alone.
//!
//! **Architecture Invariant:** everything acts on the network namespace of
//! the calling thread. Netlink sockets take the namespace of the thread that
//! opens them, and `/proc/sys/net` resolves against the namespace of the
//! thread that opens the file (unlike `/sys/class/net`, which follows the
//! namespace sysfs was mounted in, and `/proc/self/net`, which follows the
//! main thread). The tests rely on this: each one `unshare`s a fresh
//! namespace on its own thread.
//!
//! Link and address events ([`LinkEvents`]) use their own raw netlink socket
//! rather than rtnetlink's connection; see the `events` module for why.

#![warn(missing_docs)]

mod error;
mod events;
mod netlink;
mod parse;
mod sysctl;

pub use error::BridgeError;
pub use events::{LinkEvents, NetEvent};
pub use netlink::{BridgeReport, BridgeSpec, Netlink};
pub use parse::{Ipv4AddrInfo, LinkInfo};
pub use sysctl::{enable_forwarding, ForwardingReport};
