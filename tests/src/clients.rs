//! Real DHCP clients run in a leaf namespace: ISC dhclient, busybox udhcpc and
//! dhcpcd, each sending an Arista vendor class, each reporting what it was given.
//!
//! Each client runs once with a bounded timeout and a hook script that records
//! its environment on BOUND; the variables of the three clients are mapped onto
//! one [`Lease`] so tests compare like with like.

use crate::netns::Netns;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Which client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// ISC dhclient (`isc-dhcp-client`).
    Dhclient,
    /// busybox udhcpc (`udhcpc`).
    Udhcpc,
    /// dhcpcd (`dhcpcd-base`).
    Dhcpcd,
}

impl Client {
    /// All three.
    pub const ALL: [Client; 3] = [Client::Dhclient, Client::Udhcpc, Client::Dhcpcd];

    /// The program name.
    pub fn program(self) -> &'static str {
        match self {
            Client::Dhclient => "dhclient",
            Client::Udhcpc => "udhcpc",
            Client::Dhcpcd => "dhcpcd",
        }
    }
}

/// What a client was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Its address.
    pub address: Ipv4Addr,
    /// Its netmask.
    pub netmask: Ipv4Addr,
    /// Router (option 3).
    pub router: Option<Ipv4Addr>,
    /// Bootfile (option 67).
    pub bootfile: Option<String>,
    /// All variables the hook saw.
    pub env: HashMap<String, String>,
}

/// Runs `client` once on `ifname` in `ns` with option 60 `vendor_class`, and
/// returns the lease it bound, or `None` if it got none within ~20 s. Files go
/// to `dir`.
pub fn run_once(
    client: Client,
    ns: &Netns,
    ifname: &str,
    vendor_class: &str,
    dir: &Path,
) -> Option<Lease> {
    let tag = format!("{}-{}", client.program(), ifname);
    let out = dir.join(format!("{tag}.env"));
    let _ = std::fs::remove_file(&out);
    let hook = dir.join(format!("{tag}.hook"));
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncase \"$1$reason\" in bound|renew|BOUND|RENEW|REBOOT) env > '{}.tmp' && mv '{0}.tmp' '{0}' ;; esac\nexit 0\n",
            out.display()
        ),
    )
    .expect("writing hook");
    chmod_x(&hook);
    let mut cmd = ns.cmd("timeout");
    cmd.arg("25");
    match client {
        Client::Udhcpc => {
            cmd.args([
                "udhcpc", "-f", "-q", "-n", "-t", "8", "-T", "1", "-i", ifname,
            ])
            .args(["-V", vendor_class, "-O", "bootfile", "-s"])
            .arg(&hook);
        }
        Client::Dhclient => {
            let conf = dir.join(format!("{tag}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "send vendor-class-identifier \"{vendor_class}\";\nalso request bootfile-name;\ntimeout 20;\nretry 1;\n"
                ),
            )
            .expect("writing dhclient.conf");
            cmd.args(["dhclient", "-1", "-v", "-cf"])
                .arg(&conf)
                .arg("-lf")
                .arg(dir.join(format!("{tag}.leases")))
                .arg("-pf")
                .arg(dir.join(format!("{tag}.pid")))
                .arg("-sf")
                .arg(&hook)
                .arg(ifname);
        }
        Client::Dhcpcd => {
            cmd.args([
                "dhcpcd",
                "-4",
                "-1",
                "-t",
                "20",
                "-B",
                "-f",
                "/dev/null",
                "-c",
            ])
            .arg(&hook)
            .args(["-i", vendor_class, "-o", "bootfile_name", ifname]);
        }
    }
    let log = std::fs::File::create(dir.join(format!("{tag}.log"))).expect("client log");
    let status = cmd
        .stdout(Stdio::from(log.try_clone().expect("dup log")))
        .stderr(Stdio::from(log))
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e} (is it installed?)", client.program()));
    // dhclient goes to the background once bound: stop it so nothing lingers.
    if client == Client::Dhclient {
        if let Ok(pid) = std::fs::read_to_string(dir.join(format!("{tag}.pid"))) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
    let _ = status;
    let env = parse_env(&std::fs::read_to_string(&out).ok()?);
    let get = |k: &str| env.get(k).cloned();
    let (address, netmask, router, bootfile) = match client {
        Client::Udhcpc => (get("ip"), get("subnet"), get("router"), get("bootfile")),
        Client::Dhclient | Client::Dhcpcd => (
            get("new_ip_address"),
            get("new_subnet_mask"),
            get("new_routers"),
            get("new_bootfile_name"),
        ),
    };
    Some(Lease {
        address: address?.parse().ok()?,
        netmask: netmask?.parse().ok()?,
        router: router.and_then(|r| r.split_whitespace().next()?.parse().ok()),
        bootfile,
        env,
    })
}

/// The log a client wrote in `dir` for `ifname`.
pub fn log_of(client: Client, ifname: &str, dir: &Path) -> String {
    std::fs::read_to_string(dir.join(format!("{}-{ifname}.log", client.program())))
        .unwrap_or_default()
}

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.to_string(), v.trim_matches('\'').to_string()))
        })
        .collect()
}

fn chmod_x(path: &PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
