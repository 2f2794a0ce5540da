//! The servers under test, behind one small trait: start in a spine namespace
//! with a set of links, report the processes to measure, stop.
//!
//! Each server is configured the way an operator would run it, with ping checks
//! off (see [`IscDhcpd`] and [`Dnsmasq`]), logging to a file at its default
//! verbosity, and its lease file in the benchmark's work directory, which is on
//! disk (not tmpfs) so that durability costs compare. [`Mode::Dynamic`] is how
//! each copes with links that connect while it runs: ours by eAPI and netlink,
//! ISC dhcpd by the classic recipe's restart poller, Kea by a SIGHUP poller,
//! dnsmasq by `bind-dynamic`.

use super::proc::{output, show_cmd, wait_until, Proc};
use super::topo::LinkSpec;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use ztps_tests::netns::Netns;

/// Option 67 every server hands out.
pub const BOOTFILE_URL: &str = "http://10.10.10.11:8080/bootstrap";

/// How long a server may take to say it is ready: 20 s, and 150 ms more per
/// link (ISC dhcpd opens a packet socket per interface: with 2,000 it takes
/// minutes).
fn start_timeout(links: usize) -> Duration {
    Duration::from_secs(20) + Duration::from_millis(150) * links as u32
}

/// Which implementation stands for "ours".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Ours {
    /// `ztps-agent daemon` with `eos-sim` answering eAPI: the product.
    Agent,
    /// `dhcp-harness`: the DHCP crate alone, links given in a file.
    Harness,
}

/// Whether the links are fixed for the life of the server or may connect later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every link is up before the server starts (throughput).
    Static,
    /// Links may connect while the server runs (link-up, footprint).
    Dynamic,
}

/// The programs the benchmark runs.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `ztps-agent` to run: the host build, or the static i686 one as shipped.
    pub agent: PathBuf,
    /// `dhcp-harness`.
    pub harness: PathBuf,
    /// `eos-sim`.
    pub eos_sim: PathBuf,
    /// ISC dhcpd.
    pub dhcpd: PathBuf,
    /// kea-dhcp4.
    pub kea: PathBuf,
    /// dnsmasq.
    pub dnsmasq: PathBuf,
    /// python3 (Debian's).
    pub python: PathBuf,
    /// The `bench/` folder with the poller scripts.
    pub scripts: PathBuf,
}

/// Where and what to serve.
pub struct Setup<'a> {
    /// The spine namespace.
    pub ns: &'a Netns,
    /// A fresh directory for config, leases and logs (on disk).
    pub dir: &'a Path,
    /// The links to serve.
    pub links: &'a [LinkSpec],
    /// Static or dynamic.
    pub mode: Mode,
}

/// One process of a running server.
pub struct Part {
    /// What it is (`dhcpd`, `poller`, `eos-sim`, ...).
    pub role: &'static str,
    /// The guard.
    pub proc: Proc,
    /// Whether it counts toward the server's RSS and CPU (eos-sim, standing in
    /// for EOS, does not).
    pub counted: bool,
}

/// A started server; stopped (every process group killed) when dropped.
pub struct Running {
    /// The server's display name.
    pub name: String,
    /// Its processes, in start order.
    pub parts: Vec<Part>,
    /// Config files written for it.
    pub configs: Vec<PathBuf>,
    /// The command lines that started it.
    pub commands: Vec<String>,
}

impl Running {
    fn new(name: String) -> Running {
        Running {
            name,
            parts: Vec::new(),
            configs: Vec::new(),
            commands: Vec::new(),
        }
    }

    fn spawn(&mut self, role: &'static str, counted: bool, cmd: Command, log: &Path) -> Result<()> {
        self.commands.push(show_cmd(&cmd));
        let proc = Proc::spawn(role, cmd, log)?;
        self.parts.push(Part {
            role,
            proc,
            counted,
        });
        Ok(())
    }

    /// Process ids whose trees count toward RSS and CPU.
    pub fn counted_pids(&self) -> Vec<(&'static str, u32)> {
        self.parts
            .iter()
            .filter(|p| p.counted)
            .map(|p| (p.role, p.proc.pid()))
            .collect()
    }

    /// Fails, with the logs, if any process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        let mut dead = Vec::new();
        for p in &mut self.parts {
            if let Some(status) = p.proc.exited() {
                dead.push(format!("{} exited ({status})", p.role));
            }
        }
        if !dead.is_empty() {
            bail!("{}: {}\n{}", self.name, dead.join(", "), self.logs());
        }
        Ok(())
    }

    /// The tails of every process's log, for error messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for p in &self.parts {
            let _ = writeln!(s, "--- {} log ---\n{}", p.role, p.proc.log().trim_end());
        }
        s
    }

    /// Stops every process, last started first.
    pub fn stop(&mut self) {
        for p in self.parts.iter_mut().rev() {
            p.proc.stop(Duration::from_secs(3));
        }
    }

    /// Waits until `marker` appears in `log`, failing with the logs if a process
    /// dies or it does not appear in time.
    fn wait_log(&mut self, log: &Path, marker: &str, timeout: Duration) -> Result<()> {
        let mut died = None;
        let ok = wait_until(timeout, || {
            for p in &mut self.parts {
                if let Some(status) = p.proc.exited() {
                    died = Some(format!("{} exited ({status})", p.role));
                    return Ok(true);
                }
            }
            let text = std::fs::read_to_string(log).unwrap_or_default();
            // ISC dhcpd's last word when it gives up (its poller lives on).
            if text.contains("\nexiting.") {
                died = Some("it logged \"exiting.\"".to_owned());
                return Ok(true);
            }
            Ok(text.contains(marker))
        })?;
        if let Some(d) = died {
            bail!("{} did not start: {d}\n{}", self.name, self.logs());
        }
        if !ok {
            bail!(
                "{} did not log {marker:?} within {timeout:?}\n{}",
                self.name,
                self.logs()
            );
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A DHCP server the benchmark can run.
pub trait Server {
    /// Short key for JSON and file names: `ours`, `isc`, `kea`, `dnsmasq`.
    fn key(&self) -> &'static str;
    /// Display name in `mode`.
    fn name(&self, mode: Mode) -> String;
    /// Durability of an ACKed lease, as configured.
    fn durability(&self) -> &'static str;
    /// How it comes to serve a link that connects while it runs.
    fn dynamic_method(&self) -> &'static str;
    /// Starts it and waits until it says it is ready (the workloads then check
    /// with a real client that it answers).
    fn start(&self, s: &Setup) -> Result<Running>;
}

fn write(dir: &Path, name: &str, text: &str, run: &mut Running) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    run.configs.push(path.clone());
    Ok(path)
}

/// Ours: `ztps-agent daemon` (with eos-sim) or `dhcp-harness`.
pub struct OursServer {
    /// Which implementation.
    pub variant: Ours,
    /// Programs (`bins.agent` is the agent binary this instance runs).
    pub bins: Bins,
    /// The musl target when `bins.agent` is a static binary as shipped (keys
    /// `ours-i686`, `ours-x86_64`), rather than the host build.
    pub shipped: Option<&'static str>,
}

impl OursServer {
    /// The agent's config file for `s`.
    pub fn agent_config(s: &Setup, sock: &Path) -> String {
        let mut t = format!(
            "# ztps-agent for cargo xtask bench ({})\n\
             [eapi]\nurl = \"unix:{}\"\npoll_interval = \"2s\"\ntimeout = \"5s\"\n\n\
             [dhcp]\nbootfile_url = \"{BOOTFILE_URL}\"\ninterfaces = [\"Ethernet*\"]\n\
             lease_time = \"1h\"\nlease_file = \"{}\"\n",
            match s.mode {
                Mode::Static => "throughput",
                Mode::Dynamic => "links connect while it runs",
            },
            sock.display(),
            s.dir.join("leases.json").display(),
        );
        for l in s.links.iter().filter(|l| l.pool_link) {
            let _ = write!(
                t,
                "\n[[dhcp.link]]\ninterface = \"{}\"\nrange = \"{}-{}\"\nrouter = \"{}\"\nprefix = {}\n",
                l.eos_name(),
                l.pool.0,
                l.pool.1,
                l.spine,
                l.prefix
            );
        }
        let _ = write!(
            t,
            "\n[log]\nsyslog = false\n\n[state]\ndir = \"{}\"\n",
            s.dir.join("state").display()
        );
        t
    }

    /// dhcp-harness's links file for `s`: every link, whatever the mode (the
    /// harness has no eAPI; a listed link that is down is served once it is up).
    pub fn harness_links(s: &Setup) -> String {
        let items: Vec<serde_json::Value> = s
            .links
            .iter()
            .map(|l| {
                if l.pool_link {
                    serde_json::json!({"ifname": l.ifname(), "pool": {
                        "first": l.pool.0.to_string(), "last": l.pool.1.to_string(),
                        "router": l.spine.to_string(), "prefix_len": l.prefix}})
                } else {
                    serde_json::json!({"ifname": l.ifname()})
                }
            })
            .collect();
        serde_json::Value::Array(items).to_string()
    }
}

impl Server for OursServer {
    fn key(&self) -> &'static str {
        match self.shipped {
            Some(t) if t.starts_with("i686") => "ours-i686",
            Some(_) => "ours-x86_64",
            None => "ours",
        }
    }
    fn name(&self, _mode: Mode) -> String {
        match (self.variant, self.shipped) {
            (Ours::Agent, None) => "ztps-agent (host build)".into(),
            (Ours::Agent, Some(t)) => format!(
                "ztps-agent, static {} musl (as shipped)",
                t.split('-').next().unwrap_or(t)
            ),
            (Ours::Harness, _) => "ztps (dhcp-harness)".into(),
        }
    }
    fn durability(&self) -> &'static str {
        "lease fsynced before the ACK (group commit)"
    }
    fn dynamic_method(&self) -> &'static str {
        match self.variant {
            Ours::Agent => "eAPI poll (2 s) plus an immediate poll on a netlink link event",
            Ours::Harness => {
                "every port listed at start (the harness has no eAPI): one wildcard socket, \
                 served as soon as the port is up"
            }
        }
    }
    fn start(&self, s: &Setup) -> Result<Running> {
        let mut run = Running::new(self.name(s.mode));
        match self.variant {
            Ours::Agent => {
                let sock = s.dir.join("eapi.sock");
                let ready = s.dir.join("eos-sim.ready");
                let mut cmd = s.ns.cmd(&self.bins.eos_sim);
                cmd.arg("--unix").arg(&sock).arg("--ready-file").arg(&ready);
                run.spawn("eos-sim", false, cmd, &s.dir.join("eos-sim.log"))?;
                if !wait_until(start_timeout(s.links.len()), || Ok(ready.exists()))? {
                    bail!("eos-sim did not start\n{}", run.logs());
                }
                let config = write(s.dir, "ztps.toml", &Self::agent_config(s, &sock), &mut run)?;
                let mut check = Command::new(&self.bins.agent);
                check.arg("check-config").arg(&config);
                output(check).with_context(|| {
                    format!(
                        "ztps-agent rejects the benchmark's config {}:\n{}",
                        config.display(),
                        std::fs::read_to_string(&config).unwrap_or_default()
                    )
                })?;
                let mut cmd = s.ns.cmd(&self.bins.agent);
                cmd.arg("daemon").arg("--config").arg(&config);
                run.spawn("ztps-agent", true, cmd, &s.dir.join("agent.log"))?;
                // No log line is part of the contract: the workload's probe (a
                // real client getting a lease) says when it serves.
                std::thread::sleep(Duration::from_millis(100));
                run.check_alive()?;
            }
            Ours::Harness => {
                let links = write(s.dir, "links.json", &Self::harness_links(s), &mut run)?;
                let log = s.dir.join("harness.log");
                let mut cmd = s.ns.cmd(&self.bins.harness);
                cmd.arg("--lease-file")
                    .arg(s.dir.join("leases.json"))
                    .arg("--links")
                    .arg(&links)
                    .args(["--bootfile-url", BOOTFILE_URL, "--lease-time", "3600"]);
                run.spawn("dhcp-harness", true, cmd, &log)?;
                run.wait_log(&log, "harness: ready", start_timeout(s.links.len()))?;
            }
        }
        Ok(run)
    }
}

/// ISC dhcpd 4.4: static, or with the classic recipe's restart poller.
pub struct IscDhcpd {
    /// Programs.
    pub bins: Bins,
}

impl IscDhcpd {
    /// dhcpd.conf for `s`: one subnet block per link, as the recipe's hand-written
    /// file had. `ping-check false`: with it on, dhcpd holds every OFFER for its
    /// 1 s ping timeout, which measures a timer, not the server.
    pub fn config(s: &Setup) -> String {
        let mut t = format!(
            "# ISC dhcpd for cargo xtask bench\n\
             default-lease-time 3600;\nmax-lease-time 3600;\nauthoritative;\n\
             ddns-update-style none;\nping-check false;\n\
             option bootfile-name \"{BOOTFILE_URL}\";\n"
        );
        for l in s.links {
            let _ = writeln!(
                t,
                "subnet {} netmask {} {{ range {} {}; option routers {}; }}",
                l.network(),
                l.netmask(),
                l.pool.0,
                l.pool.1,
                l.spine
            );
        }
        t
    }
}

impl Server for IscDhcpd {
    fn key(&self) -> &'static str {
        "isc"
    }
    fn name(&self, mode: Mode) -> String {
        match mode {
            Mode::Static => "ISC dhcpd".into(),
            Mode::Dynamic => "ISC dhcpd + recipe poller".into(),
        }
    }
    fn durability(&self) -> &'static str {
        "lease appended and fsynced per ACK (its default)"
    }
    fn dynamic_method(&self) -> &'static str {
        "classic recipe: a 1 s poller restarts dhcpd with the connected interfaces"
    }
    fn start(&self, s: &Setup) -> Result<Running> {
        let mut run = Running::new(self.name(s.mode));
        let conf = write(s.dir, "dhcpd.conf", &Self::config(s), &mut run)?;
        let leases = s.dir.join("dhcpd.leases");
        std::fs::write(&leases, "").context("creating dhcpd.leases")?;
        let pid = s.dir.join("dhcpd.pid");
        let log = s.dir.join("dhcpd.log");
        match s.mode {
            Mode::Static => {
                let mut cmd = s.ns.cmd(&self.bins.dhcpd);
                cmd.args(["-4", "-f", "-d", "-cf"])
                    .arg(&conf)
                    .arg("-lf")
                    .arg(&leases)
                    .arg("-pf")
                    .arg(&pid)
                    .args(s.links.iter().map(|l| l.ifname()));
                run.spawn("dhcpd", true, cmd, &log)?;
            }
            Mode::Dynamic => {
                let mut cmd = s.ns.cmd("bash");
                cmd.arg(self.bins.scripts.join("recipe-poller.sh"))
                    .arg(&conf)
                    .arg(&leases)
                    .arg(&pid)
                    .arg("3600")
                    .env("DHCPD", &self.bins.dhcpd);
                run.spawn("poller+dhcpd", true, cmd, &log)?;
            }
        }
        run.wait_log(
            &log,
            "Server starting service.",
            start_timeout(s.links.len()),
        )?;
        Ok(run)
    }
}

/// Kea 2.2 kea-dhcp4, memfile; with a SIGHUP poller in dynamic mode.
pub struct Kea {
    /// Programs.
    pub bins: Bins,
}

impl Kea {
    /// kea-dhcp4 config for `s`: every link's interface listed, memfile with
    /// `persist: true` (Kea does not fsync it), lease file cleanup off.
    pub fn config(s: &Setup) -> String {
        let subnets: Vec<serde_json::Value> = s
            .links
            .iter()
            .map(|l| {
                serde_json::json!({
                    "id": l.n,
                    "subnet": format!("{}/{}", l.network(), l.prefix),
                    "pools": [{"pool": format!("{} - {}", l.pool.0, l.pool.1)}],
                    "option-data": [{"name": "routers", "data": l.spine.to_string()}],
                })
            })
            .collect();
        let ifaces: Vec<String> = s.links.iter().map(|l| l.ifname()).collect();
        let v = serde_json::json!({"Dhcp4": {
            "interfaces-config": {"interfaces": ifaces, "service-sockets-require-all": false},
            "lease-database": {"type": "memfile", "persist": true,
                "name": s.dir.join("kea-leases4.csv"), "lfc-interval": 0},
            "valid-lifetime": 3600,
            "option-data": [{"name": "boot-file-name", "data": BOOTFILE_URL}],
            "subnet4": subnets,
            "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stderr"}],
                "severity": "INFO"}],
        }});
        serde_json::to_string_pretty(&v).expect("JSON")
    }
}

impl Server for Kea {
    fn key(&self) -> &'static str {
        "kea"
    }
    fn name(&self, mode: Mode) -> String {
        match mode {
            Mode::Static => "Kea".into(),
            Mode::Dynamic => "Kea + SIGHUP poller".into(),
        }
    }
    fn durability(&self) -> &'static str {
        "memfile, persist=true: lease appended, no fsync"
    }
    fn dynamic_method(&self) -> &'static str {
        "a 1 s poller sends SIGHUP; Kea re-reads its config and reopens its sockets"
    }
    fn start(&self, s: &Setup) -> Result<Running> {
        let mut run = Running::new(self.name(s.mode));
        let conf = write(s.dir, "kea-dhcp4.json", &Self::config(s), &mut run)?;
        let log = s.dir.join("kea.log");
        let mut cmd = s.ns.cmd(&self.bins.kea);
        cmd.arg("-c")
            .arg(&conf)
            .env("KEA_PIDFILE_DIR", s.dir)
            .env("KEA_LOCKFILE_DIR", s.dir);
        run.spawn("kea-dhcp4", true, cmd, &log)?;
        run.wait_log(&log, "DHCP4_STARTED", start_timeout(s.links.len()))?;
        if s.mode == Mode::Dynamic {
            let kea_pid = run.parts[0].proc.pid();
            let mut cmd = s.ns.cmd("bash");
            cmd.arg(self.bins.scripts.join("kea-sighup-poller.sh"))
                .arg(kea_pid.to_string())
                .arg("3600");
            run.spawn("poller", true, cmd, &s.dir.join("poller.log"))?;
            if let Some(c) = run.commands.last_mut() {
                *c = c.replace(&format!(" {kea_pid} "), " $KEA_PID ");
            }
        }
        Ok(run)
    }
}

/// dnsmasq 2.90, DHCP only.
pub struct Dnsmasq {
    /// Programs.
    pub bins: Bins,
}

impl Dnsmasq {
    /// dnsmasq config for `s`. `no-ping`: with its ping check on, dnsmasq answers
    /// almost nothing at these rates (it waits on each ping). `bind-dynamic` in
    /// dynamic mode.
    pub fn config(s: &Setup) -> String {
        let mut t = format!(
            "# dnsmasq for cargo xtask bench\nport=0\nno-resolv\nno-hosts\n\
             dhcp-authoritative\nno-ping\ndhcp-lease-max=100000\n\
             dhcp-leasefile={}\npid-file={}\nlog-facility=-\n\
             dhcp-option=option:bootfile-name,\"{BOOTFILE_URL}\"\n",
            s.dir.join("dnsmasq.leases").display(),
            s.dir.join("dnsmasq.pid").display(),
        );
        match s.mode {
            Mode::Static => {
                for l in s.links {
                    let _ = writeln!(t, "interface={}", l.ifname());
                }
            }
            Mode::Dynamic => t.push_str("interface=et*\nbind-dynamic\n"),
        }
        for l in s.links {
            let _ = writeln!(t, "dhcp-range={},{},{},1h", l.pool.0, l.pool.1, l.netmask());
        }
        t
    }
}

impl Server for Dnsmasq {
    fn key(&self) -> &'static str {
        "dnsmasq"
    }
    fn name(&self, mode: Mode) -> String {
        match mode {
            Mode::Static => "dnsmasq".into(),
            Mode::Dynamic => "dnsmasq bind-dynamic".into(),
        }
    }
    fn durability(&self) -> &'static str {
        "whole lease file rewritten per change, no fsync"
    }
    fn dynamic_method(&self) -> &'static str {
        "bind-dynamic: netlink, no restart"
    }
    fn start(&self, s: &Setup) -> Result<Running> {
        let mut run = Running::new(self.name(s.mode));
        let conf = write(s.dir, "dnsmasq.conf", &Self::config(s), &mut run)?;
        let log = s.dir.join("dnsmasq.log");
        let mut cmd = s.ns.cmd(&self.bins.dnsmasq);
        cmd.arg("-k").arg("-C").arg(&conf);
        run.spawn("dnsmasq", true, cmd, &log)?;
        run.wait_log(&log, "started, version", start_timeout(s.links.len()))?;
        Ok(run)
    }
}

/// Copies the configs of `run` into `to`, and its command lines into
/// `commands.txt`, with the work directory `dir` written as `$WORK`, the build
/// output as `$TARGET`, the repository as `$REPO` and each `(name, placeholder)`
/// of `names` replaced (namespaces), so BENCHMARKS.md points at stable files.
pub fn save_configs(run: &Running, dir: &Path, names: &[(&str, &str)], to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut subst: Vec<(String, &str)> = vec![
        (dir.display().to_string(), "$WORK"),
        (ztps_bench::target_dir().display().to_string(), "$TARGET"),
        (ztps_bench::root().display().to_string(), "$REPO"),
    ];
    subst.extend(names.iter().map(|(n, p)| (n.to_string(), *p)));
    let fix = |t: &str| {
        subst.iter().fold(t.to_string(), |acc, (from, to)| {
            acc.replace(from.as_str(), to)
        })
    };
    for c in &run.configs {
        let text = std::fs::read_to_string(c).unwrap_or_default();
        let name = c.file_name().context("config file name")?;
        std::fs::write(to.join(name), fix(&text))?;
    }
    let cmds: String = run
        .commands
        .iter()
        .map(|c| format!("{}\n", fix(c)))
        .collect();
    std::fs::write(to.join("commands.txt"), cmds)?;
    Ok(())
}
