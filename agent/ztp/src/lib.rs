//! The spine's own ZTP service (`[ztp] serve = true`).
//!
//! A leaf that got its address by DHCP on a spine link fetches option 67,
//! `http://<spine address on that link>/ztp/bootstrap`, straight over the
//! point-to-point link: no routing, no VM. This crate answers that fetch.
//!
//! - [`http`]: the HTTP/1.1 server (hyper), its limits, and the routes
//!   `/ztp/bootstrap`, `/ztp/config`, `/ztp/image`, `/ztp/status`. The requester
//!   is identified by its TCP peer address alone: nothing in a path names a file.
//! - [`lifecycle`]: each leaf's stage from `waiting` to `provisioned`.
//! - [`script`]: the bash script that upgrades EOS and then installs the config.
//! - [`image`]: streaming the EOS image (Range, bounded memory, a download cap)
//!   and its sha256, computed once per file.

pub mod http;
pub mod image;
pub mod lifecycle;
pub mod script;

/// The body of every response this service sends: whole buffers for configs
/// and scripts, a bounded stream for the image.
pub type ResponseBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// Worker threads of the runtime the ZTP server runs on, apart from the
/// daemon's single-threaded loop: a busy image download never delays DHCP
/// events, eAPI polls or SIGHUP, and the server can use a second core as
/// nginx's workers do (`cargo xtask bench --only ztp`).
pub const SERVER_THREADS: usize = 2;
