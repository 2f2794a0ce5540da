//! The config file: the schema lives in its own crate, `ztps-config` (so that the
//! flash bundle and `cargo xtask dist` can check configs without the on-box
//! stack); it is re-exported here so `crate::config::Config` names it.

pub use ztps_config::*;
