//! A small stand-alone DHCP server over `ztps-dhcp`, for the namespace tests of
//! the DHCP crate on its own (the agent adds eAPI, netlink and config on top).
//!
//! `dhcp-harness --lease-file F --links L [--bootfile-url U] [--replace-after S]
//! [--lease-time S]`: `L` is a JSON list of `{"ifname": "et1"}` or
//! `{"ifname": "et7", "pool": {"first":..,"last":..,"router":..,"prefix_len":..}}`.
//! The spine address of each link is read from the kernel. SIGHUP re-reads `L`
//! (the served-links table changes, no socket is rebound, no lease is lost);
//! SIGTERM stops after every lease is stored. Logs go to stderr.

use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ztps_dhcp::{
    AddressPlan, ClientClass, DhcpSocket, LeaseStore, PoolSpec, ServedLink, Server, ServerConfig,
    Service, SpineAddress,
};

struct Args {
    lease_file: PathBuf,
    links: PathBuf,
    bootfile_url: String,
    replace_after: u64,
    lease_time: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        lease_file: PathBuf::from("leases.json"),
        links: PathBuf::from("links.json"),
        bootfile_url: "http://10.10.10.11:8080/bootstrap".into(),
        replace_after: 30,
        lease_time: 3600,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--lease-file" => a.lease_file = val().into(),
            "--links" => a.links = val().into(),
            "--bootfile-url" => a.bootfile_url = val(),
            "--replace-after" => a.replace_after = val().parse().expect("seconds"),
            "--lease-time" => a.lease_time = val().parse().expect("seconds"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The first IPv4 address and prefix of each interface, from getifaddrs.
fn spine_address(ifname: &str) -> Option<SpineAddress> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for ifa in addrs {
        if ifa.interface_name != ifname {
            continue;
        }
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) else {
            continue;
        };
        return Some(SpineAddress {
            address: a.ip(),
            prefix_len: u32::from(m.ip()).count_ones() as u8,
        });
    }
    None
}

fn load_links(path: &PathBuf) -> Vec<ServedLink> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let list: Vec<Value> = serde_json::from_str(&text).expect("links file is a JSON list");
    let mut out = Vec::new();
    for l in list {
        let ifname = l["ifname"].as_str().expect("ifname").to_string();
        let pool = l.get("pool").map(|p| PoolSpec {
            first: p["first"].as_str().unwrap().parse().unwrap(),
            last: p["last"].as_str().unwrap().parse().unwrap(),
            router: p["router"].as_str().unwrap().parse().unwrap(),
            prefix_len: p["prefix_len"].as_u64().unwrap() as u8,
        });
        let Ok(ifindex) = nix::net::if_::if_nametoindex(ifname.as_str()) else {
            eprintln!("harness: {ifname}: no such interface, not served");
            continue;
        };
        match AddressPlan::derive(spine_address(&ifname), pool.as_ref()) {
            Ok(plan) => {
                eprintln!("harness: serving {ifname} (ifindex {ifindex}): {plan}");
                out.push(ServedLink {
                    name: ifname,
                    ifindex,
                    plan,
                });
            }
            Err(why) => eprintln!("harness: {ifname}: not served: {why}"),
        }
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = parse_args();
    let config = ServerConfig {
        classes: vec![ClientClass::arista(Some(args.bootfile_url.clone()))],
        lease_time: Duration::from_secs(args.lease_time),
        replace_after: Duration::from_secs(args.replace_after),
        ..ServerConfig::default()
    };
    let (store, leases, report) = LeaseStore::open(&args.lease_file).expect("lease file");
    eprintln!(
        "harness: loaded {} leases from {}{}",
        leases.len(),
        args.lease_file.display(),
        report
            .damage
            .as_ref()
            .map(|d| format!(" (damaged, moved to {})", d.moved_to.display()))
            .unwrap_or_default()
    );
    let mut server = Server::new(config);
    let (now, _) = ztps_dhcp::Clock::new().read();
    server.load_leases(now, leases);
    if let Some(why) = &report.read_only {
        eprintln!("harness: lease file read-only, new leases refused: {why}");
        server.refuse_new_leases(Some(why.clone()));
    }
    server.set_links(load_links(&args.links));
    let server = Arc::new(Mutex::new(server));
    let socket = match DhcpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("harness: {e}");
            std::process::exit(1);
        }
    };
    match socket.receive_buffer() {
        Ok(bytes) => eprintln!("harness: receive buffer {bytes} bytes"),
        Err(e) => eprintln!("harness: receive buffer unknown: {e}"),
    }
    let service = Service::new(
        server.clone(),
        socket,
        store,
        ztps_dhcp::service::log_events(),
    );
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let links_path = args.links.clone();
    let reload = async move {
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    let links = load_links(&links_path);
                    server.lock().unwrap().set_links(links);
                    eprintln!("harness: links reloaded");
                }
                _ = term.recv() => break,
            }
        }
    };
    eprintln!("harness: ready");
    let closed = service.run(reload).await;
    eprintln!("harness: stopped, {:?} leases stored", closed.leases);
}
