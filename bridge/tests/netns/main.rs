//! Root-only tests against the real kernel. Each test runs on its own thread
//! in a fresh network namespace (`unshare(CLONE_NEWNET)` on that thread), so
//! they run in parallel and touch nothing on the host.
//!
//! One test binary with modules: it builds and links once.

mod bridge;
mod common;
mod events;
mod forwarding;
mod queries;
