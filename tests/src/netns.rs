//! Network namespaces for tests, made and removed with iproute2.
//!
//! A [`Netns`] has a name unique to this process and test (`ztps<pid>n<counter><label>`,
//! short because interface-facing names are limited), and is deleted on drop after
//! every process still inside it is killed. Tests that need root call
//! [`require_root`] first: it panics with the reason, so a test that cannot run
//! fails loudly instead of passing silently.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Panics unless this process can create network namespaces (root with `ip`).
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "this test needs root to create network namespaces; run the test suite as root \
             (CI runs it as root). It does not pass silently."
        );
    }
    let ok = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        panic!("this test needs iproute2 (`ip`) on PATH to create network namespaces");
    }
}

/// A network namespace that exists for the life of this value.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a fresh namespace with loopback up. Panics (with the reason) on failure.
    pub fn new(label: &str) -> Netns {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("ztps{}n{}{}", std::process::id(), n, label);
        run_checked(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside this namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `ip -n NAME <args>` and panics with its stderr if it fails.
    pub fn ip(&self, args: &str) -> String {
        let mut c = Command::new("ip");
        c.args(["-n", &self.name]).args(args.split_whitespace());
        String::from_utf8_lossy(&run_checked(&mut c).stdout).into_owned()
    }

    /// Runs `ip -n NAME <args>` and returns whether it succeeded.
    pub fn try_ip(&self, args: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.name])
            .args(args.split_whitespace())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Runs a shell command line inside the namespace and returns its output.
    pub fn sh(&self, script: &str) -> Output {
        self.cmd("sh")
            .args(["-c", script])
            .output()
            .unwrap_or_else(|e| panic!("running `{script}` in {}: {e}", self.name))
    }

    /// The IPv4 addresses (without prefix) on `ifname` inside this namespace.
    pub fn ipv4_addrs(&self, ifname: &str) -> Vec<std::net::Ipv4Addr> {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-4", "-o", "addr", "show", "dev", ifname])
            .output()
            .expect("ip addr show");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                it.position(|w| w == "inet")?;
                it.next()?.split('/').next()?.parse().ok()
            })
            .collect()
    }
}

impl Netns {
    /// Kills (SIGKILL) every process running inside the namespace.
    pub fn kill_processes(&self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever is still running inside, then remove the namespace.
        self.kill_processes();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Connects `a` and `b` with a veth pair named `a_if` in `a` and `b_if` in `b`.
/// Both ends are left down; bring them up with `ip link set ... up`.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    // Create in `a` with a temporary peer name, then move the peer into `b`: the final
    // names may clash with names in the namespace that runs the test.
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = format!("zv{}p{}", std::process::id() % 100000, n);
    a.ip(&format!("link add {a_if} type veth peer name {tmp}"));
    a.ip(&format!("link set {tmp} netns {}", b.name()));
    b.ip(&format!("link set {tmp} name {b_if}"));
}

fn run_checked(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    out
}
