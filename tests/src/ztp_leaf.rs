//! A leaf that behaves like EOS Zero Touch Provisioning, in a network namespace.
//!
//! What EOS does, step by step, with real tools:
//! 1. a real DHCP client ([`clients::run_once`]) with an Arista vendor class;
//!    the leased address is put on the interface, as EOS does;
//! 2. curl fetches the option 67 URL from that address with the `X-Arista-*`
//!    headers EOS sends;
//! 3. a body starting with `#!` is run with bash in a private mount namespace
//!    whose `/mnt/flash` is a tmpfs (seeded from, and copied back to, the
//!    leaf's own flash folder, so nothing touches the host's `/mnt`); anything
//!    else is saved as `/mnt/flash/startup-config`;
//! 4. "reboot": the device comes up with its startup-config, so its
//!    `hostname` is what LLDP will show ([`EosLeaf::reboot`]).

use crate::clients::{self, Client, Lease};
use crate::netns::Netns;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What a leaf says of itself: option 60 and the `X-Arista-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `X-Arista-Serial`, last field of option 60.
    pub serial: String,
    /// `X-Arista-ModelName`.
    pub model: String,
    /// `X-Arista-HardwareVersion`.
    pub hardware: String,
    /// `X-Arista-SoftwareVersion`.
    pub version: String,
    /// `X-Arista-SystemMAC`.
    pub system_mac: String,
    /// `X-Arista-Architecture`.
    pub architecture: String,
}

impl Identity {
    /// A DCS-7050SX3 on EOS 4.30.1F with this serial and MAC.
    pub fn new(serial: &str, system_mac: &str) -> Identity {
        Identity {
            serial: serial.into(),
            model: "DCS-7050SX3-48YC8".into(),
            hardware: "11.00".into(),
            version: "4.30.1F".into(),
            system_mac: system_mac.into(),
            architecture: "i386".into(),
        }
    }

    /// Option 60 as EOS sends it in ZTP.
    pub fn vendor_class(&self) -> String {
        format!("Arista;{};{};{}", self.model, self.hardware, self.serial)
    }

    /// The headers EOS puts on the bootstrap fetch.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("X-Arista-SystemMAC", self.system_mac.clone()),
            ("X-Arista-Serial", self.serial.clone()),
            ("X-Arista-ModelName", self.model.clone()),
            ("X-Arista-HardwareVersion", self.hardware.clone()),
            ("X-Arista-SoftwareVersion", self.version.clone()),
            ("X-Arista-Architecture", self.architecture.clone()),
        ]
    }
}

/// An HTTP answer as curl saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The status code; 0 when no answer came (refused, reset, timeout).
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// curl's stderr (why there was no answer).
    pub error: String,
}

/// What one ZTP round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A config was saved as startup-config.
    ConfigSaved,
    /// A script ran.
    ScriptRan {
        /// Its exit code (EOS reboots on 0, retries otherwise).
        exit: i32,
        /// Its stdout and stderr.
        output: String,
    },
    /// The bootstrap fetch was not answered with 200.
    NotServed(Fetched),
}

/// One round of ZTP.
#[derive(Debug, Clone)]
pub struct ZtpRound {
    /// What DHCP gave.
    pub lease: Lease,
    /// The option 67 URL fetched.
    pub url: String,
    /// What happened.
    pub outcome: Outcome,
    /// From the start of DHCP to the lease.
    pub dhcp_took: Duration,
    /// From the lease to the whole bootstrap received.
    pub fetch_took: Duration,
}

/// A leaf in ZTP on interface `ifname` of namespace `ns`.
pub struct EosLeaf<'a> {
    ns: &'a Netns,
    ifname: String,
    /// Who it says it is; tests change it to try a wrong serial.
    pub identity: Identity,
    dir: PathBuf,
    /// Extra folders put first on the script's PATH (e.g. a fake `FastCli`).
    pub script_path: Vec<PathBuf>,
    /// Size of the `/mnt/flash` tmpfs, KiB (`None`: tmpfs's default, half the RAM).
    pub flash_kib: Option<u64>,
}

impl<'a> EosLeaf<'a> {
    /// A leaf whose flash and logs live in `dir` (created if missing).
    pub fn new(ns: &'a Netns, ifname: &str, identity: Identity, dir: &Path) -> EosLeaf<'a> {
        std::fs::create_dir_all(dir.join("flash")).expect("creating the leaf's flash folder");
        EosLeaf {
            ns,
            ifname: ifname.into(),
            identity,
            dir: dir.to_path_buf(),
            script_path: Vec::new(),
            flash_kib: None,
        }
    }

    /// The leaf's flash (what `/mnt/flash` holds between rounds).
    pub fn flash(&self) -> PathBuf {
        self.dir.join("flash")
    }

    /// `/mnt/flash/startup-config`, if any.
    pub fn startup_config(&self) -> Option<String> {
        std::fs::read_to_string(self.flash().join("startup-config")).ok()
    }

    /// Step 1: DHCP with the Arista vendor class; the address is put on the
    /// interface (EOS configures what it leased). `None` if no lease came.
    pub fn dhcp(&self, client: Client) -> Option<Lease> {
        let lease = clients::run_once(
            client,
            self.ns,
            &self.ifname,
            &self.identity.vendor_class(),
            &self.dir,
        )?;
        let prefix = u32::from(lease.netmask).count_ones();
        self.ns
            .ip(&format!("addr flush dev {} scope global", self.ifname));
        self.ns.ip(&format!(
            "addr add {}/{prefix} dev {}",
            lease.address, self.ifname
        ));
        Some(lease)
    }

    /// Step 2: fetches `url` from `from` with the leaf's headers.
    pub fn fetch(&self, url: &str, from: Ipv4Addr) -> Fetched {
        self.fetch_with(url, from, &self.identity.headers())
    }

    /// Fetches `url` from `from` with exactly these headers.
    pub fn fetch_with(&self, url: &str, from: Ipv4Addr, headers: &[(&str, String)]) -> Fetched {
        let body = self.dir.join("fetched");
        let _ = std::fs::remove_file(&body);
        let mut cmd = self.ns.cmd("curl");
        cmd.args(["-sS", "--max-time", "20", "--path-as-is", "--interface"])
            .arg(from.to_string())
            .arg("-o")
            .arg(&body)
            .args(["-w", "%{http_code}"]);
        for (k, v) in headers {
            cmd.arg("-H").arg(format!("{k}: {v}"));
        }
        let out = cmd
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running curl: {e} (is it installed?)"));
        Fetched {
            status: String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0),
            body: std::fs::read(&body).unwrap_or_default(),
            error: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Steps 1 to 3: DHCP, fetch option 67, then save the config or run the
    /// script. Panics (with the client's log) when DHCP gives nothing or no
    /// option 67.
    pub fn ztp(&self, client: Client) -> ZtpRound {
        self.try_ztp(client).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`ztp`](Self::ztp), with a failure to get a lease or option 67 as an error.
    pub fn try_ztp(&self, client: Client) -> Result<ZtpRound, String> {
        let started = std::time::Instant::now();
        let lease = self.dhcp(client).ok_or_else(|| {
            format!(
                "{} on {} got no lease:\n{}",
                client.program(),
                self.ifname,
                clients::log_of(client, &self.ifname, &self.dir)
            )
        })?;
        let url = lease
            .bootfile
            .clone()
            .ok_or_else(|| format!("no option 67 in the lease: {:?}", lease.env))?;
        let dhcp_took = started.elapsed();
        let fetched = self.fetch(&url, lease.address);
        let fetch_took = started.elapsed() - dhcp_took;
        let outcome = if fetched.status != 200 {
            Outcome::NotServed(fetched)
        } else if fetched.body.starts_with(b"#!") {
            let (exit, output) = self.run_script(&fetched.body);
            Outcome::ScriptRan { exit, output }
        } else {
            std::fs::write(self.flash().join("startup-config"), &fetched.body)
                .map_err(|e| format!("saving startup-config: {e}"))?;
            Outcome::ConfigSaved
        };
        Ok(ZtpRound {
            lease,
            url,
            outcome,
            dhcp_took,
            fetch_took,
        })
    }

    /// Runs `script` as EOS does: bash, root, in the leaf's network namespace,
    /// with `/mnt/flash` a tmpfs holding the leaf's flash; at most 120 s.
    pub fn run_script(&self, script: &[u8]) -> (i32, String) {
        let path = self.dir.join("ztp-script");
        std::fs::write(&path, script).expect("writing the script");
        let flash = self.flash();
        let log = self.dir.join("ztp-script.log");
        let mut search: Vec<String> = self
            .script_path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        search.push(std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()));
        // The outer shell runs in a mount namespace of its own: tmpfs over
        // /mnt hides the host's, then /mnt/flash is a tmpfs of its own.
        let outer = r#"
set -e
mount -t tmpfs ztpmnt /mnt
mkdir /mnt/flash
mount -t tmpfs -o "size=$FLASH_SIZE" ztpflash /mnt/flash
cp -a "$FLASH"/. /mnt/flash/
set +e
cd /mnt/flash
timeout 120 bash "$SCRIPT" > "$LOG" 2>&1 </dev/null
rc=$?
find "$FLASH" -mindepth 1 -delete
cp -a /mnt/flash/. "$FLASH"/
exit $rc
"#;
        let status = self
            .ns
            .cmd("unshare")
            .args(["--mount", "--propagation", "private", "bash", "-c", outer])
            .env("FLASH", &flash)
            .env("SCRIPT", &path)
            .env("LOG", &log)
            .env(
                "FLASH_SIZE",
                self.flash_kib.map_or("50%".into(), |k| format!("{k}k")),
            )
            .env("PATH", search.join(":"))
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("running the ZTP script: {e}"));
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }

    /// Step 4: "reboots" into its startup-config; returns the `hostname` it
    /// configures, the name LLDP shows from now on (`None` without a config).
    pub fn reboot(&self) -> Option<String> {
        let config = self.startup_config()?;
        config.lines().find_map(|l| {
            let name = l.trim().strip_prefix("hostname ")?.trim();
            (!name.is_empty()).then(|| name.to_string())
        })
    }
}

/// Runs `curl` once from `ns`, for tests that craft requests by hand.
pub fn curl(ns: &Netns, args: &[&str]) -> std::process::Output {
    let mut c: Command = ns.cmd("curl");
    c.args(["-sS", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running curl: {e}"))
}

/// How long to wait for anything the spine does for a leaf.
pub const SPINE_WAIT: Duration = Duration::from_secs(20);

/// Runs `f` on a thread that has joined `ns`'s network namespace, so the
/// sockets it opens live there (and stay there once returned).
pub fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{}", ns.name());
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("joining {path}: {e}"));
            f()
        })
        .join()
        .expect("thread in the namespace panicked")
    })
}
