//! The one end-to-end test binary (built and linked once), one module per area.

mod agent;
mod daemon_hardening;
mod dhcp_hardening;
mod dhcp_server;
mod eapi_client;
mod faults;
mod ztp;
mod ztp_image;
