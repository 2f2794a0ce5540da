//! Talking to EOS from the spine: the eAPI JSON-RPC client, the `FastCli` runner and
//! the mapping between EOS and kernel interface names.
//!
//! **Architecture Invariant**: this crate knows nothing of the agent's config file,
//! DHCP or netlink; it turns EOS's answers into typed values and EOS's failures into
//! errors an operator can act on.
//!
//! Parsing is lenient by design: EOS releases differ (see `tests/fixtures/SOURCES.md`
//! for the captures the parsers are tested against).

#![warn(missing_docs)]

mod client;
mod error;
mod fastcli;
mod jsonrpc;
mod model;
pub mod names;
mod retry;

pub use client::{Credentials, EapiClient, EapiConfig, DEFAULT_URL, MAX_BODY};
pub use error::EapiError;
pub use fastcli::{cli_errors, FastCli, FastCliError, DEFAULT_FASTCLI};
pub use jsonrpc::{parse_response, request_body, Format};
pub use model::{
    parse_interfaces_status, parse_ip_interfaces, parse_lldp_neighbors, parse_management_api,
    parse_version, InterfaceStatus, IpInterface, Ipv4Prefix, LldpNeighbor, ManagementApi, Version,
};
pub use retry::{retry_until, Backoff};
