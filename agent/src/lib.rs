//! ztps-agent: the program the operator runs on an Arista EOS spine.
//!
//! It answers DHCP from factory-fresh leaves in Zero Touch Provisioning on the
//! spine's leaf links, keeps the ZTPServer VM's bridge and forwarding in place at
//! boot, and reports what it sees. This crate is the only one that knows about
//! the config file, the CLI, signals and syslog; `ztps-dhcp`, `ztps-bridge` and
//! `ztps-eapi` do the protocol and system work and know nothing of each other.

pub mod boot;
pub mod config;
pub mod daemon;
pub mod dhcp_config;
pub mod escape;
pub mod links;
pub mod logging;
pub mod privileges;
pub mod status;
pub mod ztp;
