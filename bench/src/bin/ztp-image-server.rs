//! The agent's ZTP HTTP server (`ztps_ztp::http::ZtpServer` with an
//! `ImageStore`), alone, for the `ztp` benchmark: the same code and the same
//! runtime as in `ztps-agent daemon` (its own, `ztps_ztp::SERVER_THREADS` workers),
//! without DHCP and eAPI. Leaf `i` (1..=links) is admitted from 10.1.i.2 to the spine's
//! 10.1.i.1, as a leased leaf on `Ethernet<i>` would be.

use anyhow::{Context, Result};
use clap::Parser;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use ztps_ztp::http::{LeafSpec, Limits, PeerEntry, PeerTable, Shared, ZtpServer, ZtpSettings};
use ztps_ztp::image::ImageStore;

#[derive(Parser)]
struct Args {
    /// The EOS image to serve at /ztp/image.
    #[arg(long)]
    image: PathBuf,
    /// TCP port on every spine address.
    #[arg(long, default_value_t = 80)]
    port: u16,
    /// Leaf links 1..=N (leaf 10.1.i.2, spine 10.1.i.1).
    #[arg(long, default_value_t = 16)]
    links: u8,
    /// `ztp.max_image_downloads`.
    #[arg(long, default_value_t = 16)]
    max_downloads: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let peers: HashMap<Ipv4Addr, PeerEntry> = (1..=args.links)
        .map(|i| {
            let leaf = LeafSpec::new(&format!("leaf{i}"), None).expect("a plain label");
            let entry = PeerEntry {
                link: format!("Ethernet{i}"),
                spine: Ipv4Addr::new(10, 1, i, 1),
                leaf: Some(leaf),
                // The default `dhcp.lease_time`: longer than any bench run.
                until: Instant::now() + Duration::from_secs(86_400),
            };
            (Ipv4Addr::new(10, 1, i, 2), entry)
        })
        .collect();
    let configs = args.image.parent().map(PathBuf::from).unwrap_or_default();
    let image = ImageStore::new(args.image, "bench".into(), args.max_downloads);
    // As `ztps_agent::ztp::ZtpService::start` builds it.
    let threads =
        std::thread::available_parallelism().map_or(1, |n| n.get().min(ztps_ztp::SERVER_THREADS));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async move {
        let settings = Shared::new(ZtpSettings {
            configs,
            limits: Limits::default(),
            image: Some(image),
        });
        let (tx, mut events) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, args.port));
        let server = ZtpServer::bind(addr, settings, PeerTable::new(peers), tx)?;
        eprintln!("ztp-image-server: listening on {addr}");
        server.run(std::future::pending()).await;
        Ok(())
    })
}
