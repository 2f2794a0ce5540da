//! The one definition of every default: the config parser applies them, and the
//! flash bundle renders them from here rather than repeating them.

use std::num::NonZeroU32;
use std::time::Duration;

/// Where the config file lives on the switch.
pub const CONFIG_PATH: &str = "/mnt/flash/ztps/ztps.toml";
/// eAPI over the unix socket (`protocol unix-socket`, EOS 4.14.5 and later): the default.
pub const EAPI_URL: &str = "unix:/var/run/command-api.sock";
/// eAPI over plain HTTP on localhost (`protocol http localhost`, port 8080).
pub const EAPI_HTTP_LOCAL_URL: &str = "http://localhost:8080/command-api";
/// `eapi.poll_interval`.
pub const EAPI_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// `eapi.timeout`.
pub const EAPI_TIMEOUT: Duration = Duration::from_secs(5);
/// `boot.ready_timeout`.
pub const BOOT_READY_TIMEOUT: Duration = Duration::from_secs(600);
/// `boot.fastcli`.
pub const FASTCLI: &str = "/usr/bin/FastCli";
/// `boot.fastcli_timeout`.
pub const FASTCLI_TIMEOUT: Duration = Duration::from_secs(60);
/// `boot.vm_restart_attempts`.
pub const VM_RESTART_ATTEMPTS: NonZeroU32 = NonZeroU32::new(3).expect("3 is not 0");
/// `bridge.name`: the Linux bridge of the VM's NIC.
pub const BRIDGE_NAME: &str = "br0";
/// `bridge.address`.
pub const BRIDGE_ADDRESS: &str = "10.10.10.1/24";
/// `vm.name`.
pub const VM_NAME: &str = "ztps";
/// `dhcp.vendor_class`: option 60 prefix of the default class.
pub const VENDOR_CLASS: &str = "Arista";
/// `dhcp.interfaces`.
pub const INTERFACES: &[&str] = &["Ethernet*"];
/// `dhcp.lease_time`.
pub const LEASE_TIME: Duration = Duration::from_secs(86_400);
/// `dhcp.lease_file`.
pub const LEASE_FILE: &str = "/mnt/flash/ztps/leases.json";
/// `dhcp.offer_hold`.
pub const OFFER_HOLD: Duration = Duration::from_secs(30);
/// `dhcp.replace_after`.
pub const REPLACE_AFTER: Duration = Duration::from_secs(30);
/// `dhcp.decline_quarantine`.
pub const DECLINE_QUARANTINE: Duration = Duration::from_secs(600);
/// `log.facility`.
pub const LOG_FACILITY: &str = "local0";
/// `log.tag` (`show logging | include ZTPS`).
pub const LOG_TAG: &str = "ZTPS";
/// `log.level`.
pub const LOG_LEVEL: &str = "info";
/// `state.dir`.
pub const STATE_DIR: &str = "/var/run/ztps";
/// `ztp.port`: the spine's control-plane ACL admits TCP 80 by default.
pub const ZTP_PORT: u16 = 80;
/// `ztp.configs`.
pub const ZTP_CONFIGS: &str = "/mnt/flash/ztps/configs";
/// `ztp.max_image_downloads`.
pub const MAX_IMAGE_DOWNLOADS: usize = 8;
