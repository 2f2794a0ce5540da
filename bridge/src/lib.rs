//! Netlink side of ztps-agent: will own the VM bridge (`br0`), IPv4 forwarding,
//! interface and address queries, and link/address event streams.
