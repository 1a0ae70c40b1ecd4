//! Network namespaces for lab topologies that loopback cannot give (a router with a narrow link,
//! a firewall dropping ICMP): created with iproute2, deleted with everything in them when the
//! guard drops, even on panic. Linux only, and needs CAP_NET_ADMIN (root in CI).
//!
//! Code runs inside a namespace on a thread of its own ([`Netns::run_in`]): every socket it
//! opens, every thread it starts and every process it spawns (nginx) lives in that namespace,
//! while the rest of the test process stays where it was.

use std::fmt;
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// What went wrong setting a lab network up.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespaces need CAP_NET_ADMIN (run the tests as root, as CI does): {detail}")]
    NoNetAdmin { detail: String },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{program} not found: install it with `apt-get install {package}`")]
    Missing {
        program: &'static str,
        package: &'static str,
    },
    #[error("entering network namespace {name}: {source}")]
    Enter {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the thread inside network namespace {name} panicked")]
    Panicked { name: String },
}

/// Bit of CAP_NET_ADMIN in the capability sets of /proc/self/status.
const CAP_NET_ADMIN: u32 = 12;

/// Fails, naming the capability, unless this process holds CAP_NET_ADMIN.
pub fn require_net_admin() -> Result<(), NetnsError> {
    let status = fs::read_to_string("/proc/self/status").map_err(|e| NetnsError::NoNetAdmin {
        detail: format!("cannot read /proc/self/status: {e}"),
    })?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or_else(|| NetnsError::NoNetAdmin {
            detail: "no CapEff line in /proc/self/status".into(),
        })?;
    if eff & (1 << CAP_NET_ADMIN) == 0 {
        return Err(NetnsError::NoNetAdmin {
            detail: format!("the effective capabilities are {eff:#x}"),
        });
    }
    Ok(())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace this process created; dropping it kills what still runs inside and
/// deletes it (its veth ends go with it).
pub struct Netns {
    name: String,
}

impl fmt::Debug for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Netns({})", self.name)
    }
}

impl Netns {
    /// A fresh namespace named `lbp-{tag}-{pid}-{n}`, unique across parallel tests and runs,
    /// with its loopback up.
    pub fn create(tag: &str) -> Result<Netns, NetnsError> {
        require_net_admin()?;
        let name = format!(
            "lbp-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS...`
    pub fn ip(&self, args: &[&str]) -> Result<Output, NetnsError> {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// `ip netns exec NAME PROGRAM ARGS...`, waited for.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output, NetnsError> {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args))
    }

    /// Run `f` on a new thread inside this namespace and wait for it.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
        let path = Path::new("/run/netns").join(&self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    enter(&path).map_err(|source| NetnsError::Enter {
                        name: self.name.clone(),
                        source,
                    })?;
                    Ok(f())
                })
                .join()
                .map_err(|_| NetnsError::Panicked {
                    name: self.name.clone(),
                })?
        })
    }

    /// Process ids still running inside.
    fn pids(&self) -> Vec<i32> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stdin(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Only this process creates namespaces of this name, so what runs inside was started
        // by it (a guard that did not get to stop its child, e.g. after a panic).
        let me = std::process::id() as i32;
        for pid in self.pids().into_iter().filter(|&p| p != me) {
            kill(pid);
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn run(cmd: &mut Command) -> Result<Output, NetnsError> {
    let command = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetnsError::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(NetnsError::Command {
            command,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(out)
}

#[allow(unsafe_code)]
fn enter(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = fs::File::open(path)?;
    // SAFETY: setns(2) reads no memory of ours; the descriptor is a live namespace file held
    // by `file` for the call, and CLONE_NEWNET only moves this thread, not the process.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn kill(pid: i32) {
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes two integers and touches no memory of this process; `pid` is a
    // single process (never 0, -1 or a group) found inside our own namespace.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Three namespaces in a row — client, router, backend — with the router's link towards the
/// backend narrower than both ends' interfaces, so TCP's MSS (negotiated from the endpoints'
/// interfaces) is too large for the path and only path MTU discovery can save it. With
/// `drop_frag_needed`, the router's ICMP "fragmentation needed" is dropped by iptables: a black
/// hole.
///
/// Addresses are the same in every instance (namespaces are isolated): the client is
/// 10.77.1.1, the backend 10.77.2.2.
pub struct NarrowPath {
    // Dropped in this order: the client's processes go before the router.
    pub client: Netns,
    pub backend: Netns,
    pub router: Netns,
    pub narrow_mtu: u32,
}

impl NarrowPath {
    pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
    pub const BACKEND: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 2);

    pub fn build(
        tag: &str,
        narrow_mtu: u32,
        drop_frag_needed: bool,
    ) -> Result<NarrowPath, NetnsError> {
        if drop_frag_needed {
            which("iptables", "iptables")?;
        }
        let path = NarrowPath {
            client: Netns::create(&format!("{tag}c"))?,
            backend: Netns::create(&format!("{tag}b"))?,
            router: Netns::create(&format!("{tag}r"))?,
            narrow_mtu,
        };
        let (c, r, b) = (&path.client, &path.router, &path.backend);
        // Both ends created straight inside their namespaces: nothing appears in the host's.
        c.ip(&[
            "link",
            "add",
            "c0",
            "type",
            "veth",
            "peer",
            "name",
            "r0",
            "netns",
            r.name(),
        ])?;
        r.ip(&[
            "link",
            "add",
            "r1",
            "type",
            "veth",
            "peer",
            "name",
            "b0",
            "netns",
            b.name(),
        ])?;
        c.ip(&["addr", "add", "10.77.1.1/24", "dev", "c0"])?;
        r.ip(&["addr", "add", "10.77.1.2/24", "dev", "r0"])?;
        r.ip(&["addr", "add", "10.77.2.1/24", "dev", "r1"])?;
        b.ip(&["addr", "add", "10.77.2.2/24", "dev", "b0"])?;
        r.ip(&["link", "set", "r1", "mtu", &narrow_mtu.to_string()])?;
        for (ns, dev) in [(c, "c0"), (r, "r0"), (r, "r1"), (b, "b0")] {
            ns.ip(&["link", "set", dev, "up"])?;
        }
        c.ip(&["route", "add", "default", "via", "10.77.1.2"])?;
        b.ip(&["route", "add", "default", "via", "10.77.2.1"])?;
        r.exec("sh", &["-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])?;
        if drop_frag_needed {
            // The router sends the ICMP itself (OUTPUT), a router in between would forward it.
            for chain in ["OUTPUT", "FORWARD"] {
                r.exec(
                    "iptables",
                    &[
                        "-A",
                        chain,
                        "-p",
                        "icmp",
                        "--icmp-type",
                        "fragmentation-needed",
                        "-j",
                        "DROP",
                    ],
                )?;
            }
        }
        Ok(path)
    }
}

fn which(program: &'static str, package: &'static str) -> Result<(), NetnsError> {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|dir| dir.join(program).is_file())
    });
    if found {
        Ok(())
    } else {
        Err(NetnsError::Missing { program, package })
    }
}
