//! Backend host mode: the /proc, netlink, `ip` and firewall parsers from fixtures, the host rules
//! from hand-built reports, and live runs: a listener whose tiny backlog is flooded from loopback
//! (502.backend-backlog-full confirmed), and `lbprobe backend` in a network namespace of its own
//! (own counters, own firewall) against a lab backend and against a firewall dropping the
//! health-check range. The live tests need root (network namespaces, iptables): CI runs as root.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use clap::Parser as _;
use lbprobe::catalogue::Catalogue;
use lbprobe::classify::host::host_findings;
use lbprobe::classify::{Finding, Verdict};
use lbprobe::host::{
    parse, Cidr, Counters, FirewallRule, HostFacts, HostReport, ListenSocket, Platform, RuleAction,
    RuleSet,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/host")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn sock(addr: &str, queue: u32, backlog: Option<u32>) -> ListenSocket {
    ListenSocket {
        addr: addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}")),
        queue,
        backlog,
    }
}

// ---------------------------------------------------------------- parsers, from fixtures

#[test]
fn proc_net_tcp_lists_listeners_of_the_port_with_their_queue() {
    let v4 = parse::proc_net_tcp(&fixture("proc_net_tcp"), 8080);
    // The established connection on 8080 and the garbage line are not listeners.
    assert_eq!(v4, vec![sock("0.0.0.0:8080", 3, None)]);
    let v4_other = parse::proc_net_tcp(&fixture("proc_net_tcp"), 9090);
    assert_eq!(v4_other, vec![sock("127.0.0.1:9090", 0, None)]);
    let v6 = parse::proc_net_tcp(&fixture("proc_net_tcp6"), 9090);
    assert_eq!(v6, vec![sock("[::1]:9090", 2, None)]);
    let v6_any = parse::proc_net_tcp(&fixture("proc_net_tcp6"), 8080);
    assert_eq!(v6_any, vec![sock("[::]:8080", 0, None)]);
    assert!(parse::proc_net_tcp("", 8080).is_empty());
}

#[test]
fn netstat_and_snmp_counters_by_group_and_name() {
    let mut all = parse::snmp_pairs(&fixture("proc_net_netstat"));
    all.extend(parse::snmp_pairs(&fixture("proc_net_snmp")));
    assert_eq!(all.get("TcpExt.ListenOverflows"), Some(&109));
    assert_eq!(all.get("TcpExt.ListenDrops"), Some(&111));
    assert_eq!(all.get("TcpExt.TCPReqQFullDrop"), Some(&2));
    assert_eq!(all.get("IpExt.InOctets"), Some(&665_341_416));
    assert_eq!(all.get("Tcp.RetransSegs"), Some(&1041));
    // MaxConn is -1 ("no limit"), not a counter.
    assert_eq!(all.get("Tcp.MaxConn"), None);
    let watched = Counters::watched(&all);
    assert_eq!(watched.get("TcpExt.ListenOverflows"), Some(109));
    assert_eq!(watched.get("IpExt.InOctets"), None);
    let mut later = watched.clone();
    later.values.insert("TcpExt.ListenOverflows".into(), 130);
    assert_eq!(
        watched.delta(&later).get("TcpExt.ListenOverflows"),
        Some(&21)
    );
    assert_eq!(watched.delta(&later).get("Tcp.RetransSegs"), Some(&0));
}

#[test]
fn sock_diag_answer_gives_queue_and_backlog() {
    // One inet_diag_msg for 127.0.0.1:8080 (queue 2, backlog 1), one for another port, DONE.
    fn msg(port: u16, rq: u32, wq: u32) -> Vec<u8> {
        let mut p = vec![0u8; 72];
        p[0] = parse::AF_INET;
        p[1] = 10; // LISTEN
        p[4..6].copy_from_slice(&port.to_be_bytes());
        p[8..12].copy_from_slice(&[127, 0, 0, 1]);
        p[56..60].copy_from_slice(&rq.to_ne_bytes());
        p[60..64].copy_from_slice(&wq.to_ne_bytes());
        let mut m = Vec::new();
        m.extend_from_slice(&(16u32 + 72).to_ne_bytes());
        m.extend_from_slice(&20u16.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend(p);
        m
    }
    let mut buf = msg(8080, 2, 1);
    buf.extend(msg(9090, 0, 128));
    let chunk = parse::sock_diag_chunk(&buf, 8080);
    assert_eq!(chunk.sockets, vec![sock("127.0.0.1:8080", 2, Some(1))]);
    assert_eq!(chunk.sockets[0].full(), Some(true));
    assert!(!chunk.done);
    let mut done = vec![0u8; 20];
    done[0..4].copy_from_slice(&20u32.to_ne_bytes());
    done[4..6].copy_from_slice(&3u16.to_ne_bytes());
    assert!(parse::sock_diag_chunk(&done, 8080).done);
}

#[test]
fn ip_route_get_gives_the_route_and_its_mtu() {
    let r = parse::ip_route_get(&fixture("ip-route-get.txt")).expect("a route");
    assert_eq!(
        r.destination,
        "10.0.0.1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(r.via, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(r.dev.as_deref(), Some("eth0"));
    assert_eq!(r.src, Some("192.0.2.2".parse().unwrap()));
    assert_eq!(r.route_mtu, Some(1300));
    let local = parse::ip_route_get(&fixture("ip-route-get-local.txt")).expect("a route");
    assert_eq!(local.dev.as_deref(), Some("lo"));
    assert_eq!(local.route_mtu, None);
    assert!(parse::ip_route_get("RTNETLINK answers: Network is unreachable").is_none());
}

#[test]
fn iptables_save_rules_and_what_they_block() {
    let rules = parse::iptables_save(&fixture("iptables-save.txt"));
    // OUTPUT rules cannot drop an incoming health check: not kept.
    assert_eq!(rules.len(), 4, "{rules:#?}");
    let drop = &rules[2];
    assert_eq!(drop.chain, "filter/INPUT");
    assert_eq!(drop.source, Some(cidr("100.64.0.0/16")));
    assert_eq!(drop.dports, vec![(8080, 8080)]);
    assert_eq!(drop.action, RuleAction::Drop);
    let hc = cidr("100.64.0.0/10");
    let blocking: Vec<&FirewallRule> = rules.iter().filter(|r| r.blocks(&hc, 8080)).collect();
    assert_eq!(blocking, vec![drop]);
    assert!(rules.iter().all(|r| !r.blocks(&hc, 9050)));
    assert!(rules[3].blocks(&cidr("192.168.1.0/24"), 9050));
    assert!(!rules[3].blocks(&cidr("192.168.1.0/24"), 8080));
}

#[test]
fn nft_ruleset_rules_and_what_they_block() {
    let rules = parse::nft_ruleset(&fixture("nft-ruleset.txt"));
    assert_eq!(rules.len(), 3, "{rules:#?}");
    let hc = cidr("100.64.0.0/10");
    assert!(rules[1].blocks(&hc, 8080));
    assert_eq!(rules[1].chain, "filter/input");
    // `saddr != 10.0.0.0/8 ... reject` on ports 22 and 2222 rejects the health checker there.
    assert!(rules[2].source_negated);
    assert_eq!(rules[2].dports, vec![(22, 22), (2222, 2222)]);
    assert!(rules[2].blocks(&hc, 2222));
    assert!(!rules[2].blocks(&cidr("10.1.0.0/16"), 2222));
    assert!(!rules[0].blocks(&hc, 8080));
}

// ---------------------------------------------------------------- host rules, from reports

fn facts(listening: Vec<ListenSocket>) -> HostFacts {
    HostFacts {
        platform: "linux".into(),
        listening: Some(listening),
        listening_source: Some("netlink sock_diag".into()),
        sysctls: BTreeMap::from([("net.core.somaxconn".to_string(), 4096)]),
        interfaces: None,
        route: None,
        firewall: None,
        unsupported: Vec::new(),
    }
}

fn counters(overflows: u64, drops: u64) -> Counters {
    Counters {
        values: BTreeMap::from([
            ("TcpExt.ListenOverflows".to_string(), overflows),
            ("TcpExt.ListenDrops".to_string(), drops),
            ("TcpExt.TCPReqQFullDrop".to_string(), 0),
        ]),
    }
}

fn verdict_of(findings: &[Finding], cause: &str) -> Option<Verdict> {
    findings
        .iter()
        .find(|f| f.cause == cause)
        .map(|f| f.verdict)
}

const BACKLOG: &str = "502.backend-backlog-full";

#[test]
fn overflow_counters_moving_confirm_backlog_full() {
    let s = sock("0.0.0.0:8080", 0, Some(128));
    let report = HostReport::new(
        8080,
        facts(vec![s.clone()]),
        Some(counters(100, 100)),
        Some(counters(118, 118)),
        Some(vec![s]),
    );
    let findings = host_findings(&report, Catalogue::builtin());
    assert_eq!(verdict_of(&findings, BACKLOG), Some(Verdict::Confirmed));
    let f = findings.iter().find(|f| f.cause == BACKLOG).unwrap();
    assert!(
        f.evidence
            .iter()
            .any(|e| e.text.contains("ListenOverflows grew by 18")),
        "{f:#?}"
    );
}

#[test]
fn full_accept_queue_now_confirms_backlog_full_without_counters() {
    let full = sock("0.0.0.0:8080", 129, Some(128));
    let report = HostReport::new(
        8080,
        facts(vec![full.clone()]),
        None,
        None,
        Some(vec![full]),
    );
    let findings = host_findings(&report, Catalogue::builtin());
    assert_eq!(verdict_of(&findings, BACKLOG), Some(Verdict::Confirmed));
}

#[test]
fn flat_counters_and_room_in_the_queue_rule_backlog_full_out() {
    let s = sock("0.0.0.0:8080", 3, Some(128));
    let report = HostReport::new(
        8080,
        facts(vec![s.clone()]),
        Some(counters(109, 111)),
        Some(counters(109, 111)),
        Some(vec![s]),
    );
    let findings = host_findings(&report, Catalogue::builtin());
    assert_eq!(verdict_of(&findings, BACKLOG), Some(Verdict::RuledOut));
    // Listening on every address: the host says nothing about reachability from the listener.
    assert_eq!(verdict_of(&findings, "502.backend-unreachable"), None);
}

#[test]
fn unreadable_counters_and_unknown_backlog_stay_inconclusive() {
    let s = sock("0.0.0.0:8080", 4, None);
    let report = HostReport::new(8080, facts(vec![s.clone()]), None, None, Some(vec![s]));
    let findings = host_findings(&report, Catalogue::builtin());
    assert_eq!(verdict_of(&findings, BACKLOG), Some(Verdict::Inconclusive));
}

#[test]
fn nothing_listening_confirms_unreachable_and_loopback_only_is_inconclusive() {
    let report = HostReport::new(8080, facts(vec![]), None, None, Some(vec![]));
    let findings = host_findings(&report, Catalogue::builtin());
    assert_eq!(
        verdict_of(&findings, "502.backend-unreachable"),
        Some(Verdict::Confirmed)
    );
    assert_eq!(verdict_of(&findings, BACKLOG), Some(Verdict::Inconclusive));

    let lo = sock("127.0.0.1:8080", 0, Some(511));
    let report = HostReport::new(8080, facts(vec![lo.clone()]), None, None, Some(vec![lo]));
    let findings = host_findings(&report, Catalogue::builtin());
    assert_eq!(
        verdict_of(&findings, "502.backend-unreachable"),
        Some(Verdict::Inconclusive)
    );
}

#[test]
fn firewall_dropping_the_health_check_range_is_confirmed() {
    let s = sock("0.0.0.0:8080", 0, Some(128));
    let mut f = facts(vec![s]);
    f.firewall = Some(vec![RuleSet {
        tool: "iptables-save".into(),
        rules: parse::iptables_save(&fixture("iptables-save.txt")),
    }]);
    let mut report = HostReport::new(8080, f.clone(), None, None, None);
    report.health_check_ranges = vec![cidr("100.64.0.0/10")];
    let findings = host_findings(&report, Catalogue::builtin());
    assert_eq!(
        verdict_of(&findings, "502.all-backends-unhealthy"),
        Some(Verdict::Confirmed)
    );

    // Another port: the rule does not apply.
    let mut other = HostReport::new(9050, f, None, None, None);
    other.health_check_ranges = vec![cidr("100.64.0.0/10")];
    let findings = host_findings(&other, Catalogue::builtin());
    assert_eq!(
        verdict_of(&findings, "502.all-backends-unhealthy"),
        Some(Verdict::Inconclusive)
    );

    // No range named: no statement about health checks at all.
    let plain = HostReport::new(8080, facts(vec![]), None, None, None);
    let findings = host_findings(&plain, Catalogue::builtin());
    assert_eq!(verdict_of(&findings, "502.all-backends-unhealthy"), None);
}

// ---------------------------------------------------------------- live: root, real kernel

/// Root is needed for network namespaces and iptables; say so by name rather than skip.
fn require_root(what: &str) {
    use std::os::unix::fs::MetadataExt as _;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    assert!(
        root,
        "{what} needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns`, iptables): run the tests as root, as CI does"
    );
}

/// How many loopback connections the flood opens: far beyond a backlog of 1, and bounded.
const FLOOD: usize = 20;

#[test]
fn flooded_tiny_backlog_is_confirmed_backlog_full() {
    let platform = lbprobe::host::platform();
    let listener = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    listener
        .bind(&SockAddr::from(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
        .unwrap();
    // Backlog 1, never accepted: the queue holds 2 connections, the kernel drops the rest.
    listener.listen(1).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let facts = lbprobe::host::read_facts(&platform, addr.port(), None);
    let before = platform.counters().expect("counters");

    let mut clients = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let c = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        c.set_nonblocking(true).unwrap();
        // In progress (EINPROGRESS) is the normal answer; the handshake completes or is dropped.
        let _ = c.connect(&SockAddr::from(addr));
        clients.push(c);
    }

    // Counters are host-wide and only grow: poll until they show at least what the flood caused.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (after, listening) = loop {
        let after = platform.counters().expect("counters");
        let (listening, _) = platform.listening(addr.port()).expect("listening sockets");
        let grew = before
            .delta(&after)
            .get("TcpExt.ListenOverflows")
            .copied()
            .unwrap_or(0);
        let full = listening.iter().any(|s| s.full() == Some(true));
        if (grew >= 1 && full) || Instant::now() > deadline {
            break (after, listening);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let report = HostReport::new(
        addr.port(),
        facts,
        Some(before),
        Some(after),
        Some(listening),
    );
    assert!(
        report
            .deltas
            .get("TcpExt.ListenOverflows")
            .copied()
            .unwrap_or(0)
            >= 1,
        "the flood of {FLOOD} connections moved no overflow counter: {:?}",
        report.deltas
    );
    let ours = report.listening_after.as_ref().unwrap();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].backlog, Some(1));
    assert_eq!(ours[0].full(), Some(true), "{ours:?}");

    let findings = host_findings(&report, Catalogue::builtin());
    let f = findings
        .iter()
        .find(|f| f.cause == BACKLOG)
        .expect("a backlog finding");
    assert_eq!(f.verdict, Verdict::Confirmed, "{f:#?}");
    assert!(f.evidence.iter().any(|e| e.text.contains("full")), "{f:#?}");
    drop(clients);
}

/// A network namespace with loopback up, deleted on drop (even when the test fails).
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("lbprobe-{tag}-{}", std::process::id());
        // A namespace left by an earlier, killed run of the same pid is replaced.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run_ok(ns.exec("ip").args(["link", "set", "lo", "up"]));
        ns
    }

    fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `lbprobe lab` running in a namespace; interrupted on drop so that it stops its nginx too.
struct LabProcess {
    child: Child,
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).output();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lbprobe_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lbprobe"))
}

#[test]
fn backend_mode_on_a_lab_backend_in_its_own_namespace_exits_0() {
    require_root("backend_mode_on_a_lab_backend_in_its_own_namespace_exits_0");
    let ns = Netns::new("lab");
    let dir = tempfile::tempdir().unwrap();
    let info_path = dir.path().join("lab.json");
    let child = ns
        .exec(lbprobe_bin())
        .args(["lab", "--for", "120", "--format", "json", "-o"])
        .arg(&info_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _lab = LabProcess { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    let info: serde_json::Value = loop {
        if let Some(v) = std::fs::read_to_string(&info_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "lbprobe lab did not start in 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let backend = info["backend"].as_str().expect("backend URL");
    let port = backend.rsplit(':').next().unwrap().trim_end_matches('/');

    let out = ns
        .exec(lbprobe_bin())
        .args(["backend", "--port", port, "--format", "json", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let verdict = |list: &serde_json::Value, cause: &str| {
        list.as_array()
            .and_then(|a| a.iter().find(|f| f["cause"] == cause))
            .map(|f| f["verdict"].as_str().unwrap_or("").to_string())
    };
    // The namespace's own counters: only this run's traffic, which overflows nothing.
    assert_eq!(
        verdict(&report["findings"], BACKLOG).as_deref(),
        Some("ruled_out"),
        "{stdout}"
    );
    assert_eq!(report["host"]["deltas"]["TcpExt.ListenOverflows"], 0);
    let listening = report["host"]["facts"]["listening"].as_array().unwrap();
    assert_eq!(listening.len(), 1, "{stdout}");
    assert!(listening[0]["backlog"].as_u64().is_some_and(|b| b > 0));
    // The local checks ran against the service: the demo backend rejects DELETE with 405.
    assert_eq!(
        verdict(
            &report["checks"]["findings"],
            "405.backend-method-unsupported"
        )
        .as_deref(),
        Some("reproduced"),
        "{stdout}"
    );
    assert_eq!(report["exit_code"], 0);
}

#[test]
fn backend_mode_flags_a_firewall_dropping_the_health_check_range() {
    require_root("backend_mode_flags_a_firewall_dropping_the_health_check_range");
    let ns = Netns::new("fw");
    run_ok(ns.exec("iptables").args([
        "-A",
        "INPUT",
        "-s",
        "100.64.0.0/10",
        "-p",
        "tcp",
        "--dport",
        "8080",
        "-j",
        "DROP",
    ]));
    let out = ns
        .exec(lbprobe_bin())
        .args([
            "backend",
            "--port",
            "8080",
            "--no-checks",
            "--health-check-range",
            "100.64.0.0/10",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Two faults: the firewall rule, and nothing listening on 8080 in the namespace.
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let findings = report["findings"].as_array().unwrap();
    let fw = findings
        .iter()
        .find(|f| f["cause"] == "502.all-backends-unhealthy")
        .expect("a health-check finding");
    assert_eq!(fw["verdict"], "confirmed", "{stdout}");
    assert!(
        fw["evidence"].to_string().contains("100.64.0.0/10"),
        "{stdout}"
    );
    assert!(findings
        .iter()
        .any(|f| f["cause"] == "502.backend-unreachable" && f["verdict"] == "confirmed"));
}

// ---------------------------------------------------------------- markers, capture, merge

use lbprobe::host::capture::{find_marker, parse_frame, Capture, ACK, RST, SYN};
use lbprobe::probe::engine::insert_marker;
use lbprobe::probe::templates::Fill;

/// An Ethernet + IPv4 + TCP frame, as a packet socket hands it out on loopback.
fn frame(
    src: (u8, u16),
    dst: u16,
    seq: u32,
    flags: u8,
    mss: Option<u16>,
    payload: &[u8],
) -> Vec<u8> {
    let options: Vec<u8> = match mss {
        Some(m) => {
            let b = m.to_be_bytes();
            vec![2, 4, b[0], b[1]]
        }
        None => Vec::new(),
    };
    let tcp_len = 20 + options.len();
    let total = 20 + tcp_len + payload.len();
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&[127, 0, 0, src.0]);
    f.extend_from_slice(&[127, 0, 0, 1]);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&0u32.to_be_bytes());
    f.push(((tcp_len / 4) as u8) << 4);
    f.push(flags);
    f.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(&options);
    f.extend_from_slice(payload);
    f
}

#[test]
fn dry_run_shows_the_marker_only_when_asked() {
    let args = |marker: bool| {
        let mut a = vec![
            "lbprobe",
            "scan",
            "--listener",
            "http://127.0.0.1:1/",
            "--probes",
            "malformed",
        ];
        if marker {
            a.push("--marker");
        }
        lbprobe::cli::Cli::try_parse_from(a).unwrap()
    };
    for marker in [false, true] {
        let lbprobe::cli::Command::Scan(scan) = args(marker).command else {
            panic!("not a scan")
        };
        let job = lbprobe::app::scan_job(&scan).unwrap();
        let plan = lbprobe::probe::dry_run::dry_run(&job.plan);
        let marked = plan
            .requests
            .iter()
            .filter(|r| r.text.contains("X-Lbprobe-Id: RUN-"))
            .count();
        if marker {
            // Every exact request whose head ends carries it; one whose head never ends
            // (CR-only line ends, HTTP/0.9) has no safe place for it.
            let markable = plan
                .requests
                .iter()
                .filter(|r| r.exact)
                .filter(|r| {
                    let bytes = lbprobe::transport::unescape_bytes(&r.text).expect("escaped");
                    insert_marker(&bytes, "x-1") != bytes || r.text.contains("X-Lbprobe-Id: RUN-")
                })
                .count();
            assert_eq!(marked, markable);
            assert!(marked > 100, "{marked} marked");
        } else {
            assert_eq!(marked, 0);
        }
    }
}

#[test]
fn marker_goes_last_in_the_head_whatever_the_request_line_is() {
    let marked = insert_marker(b"get /x HTTP/1.1\r\nHost: h\r\n\r\n", "ab12-3");
    assert_eq!(
        marked,
        b"get /x HTTP/1.1\r\nHost: h\r\nX-Lbprobe-Id: ab12-3\r\n\r\n".to_vec()
    );
    let bare = insert_marker(b"GET / HTTP/1.1\nHost: h\n\n", "ab12-4");
    assert_eq!(
        bare,
        b"GET / HTTP/1.1\nHost: h\nX-Lbprobe-Id: ab12-4\n\n".to_vec()
    );
    assert_eq!(find_marker(&bare).as_deref(), Some("ab12-4"));
    // A leading CRLF and a whitespace line stay in front of the request line.
    assert_eq!(
        insert_marker(b"\r\n \r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "x-2"),
        b"\r\n \r\nGET / HTTP/1.1\r\nHost: h\r\nX-Lbprobe-Id: x-2\r\n\r\n".to_vec()
    );
    // A whitespace line right after the request line stays there (not a continuation of ours).
    assert_eq!(
        insert_marker(b"GET / HTTP/1.1\r\n \r\nHost: h\r\n\r\n", "x-3"),
        b"GET / HTTP/1.1\r\n \r\nHost: h\r\nX-Lbprobe-Id: x-3\r\n\r\n".to_vec()
    );
    // The body's blank lines are not the head's end.
    assert_eq!(
        insert_marker(
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\n\r\n",
            "x-4"
        ),
        b"POST / HTTP/1.1\r\nContent-Length: 4\r\nX-Lbprobe-Id: x-4\r\n\r\n\r\n\r\n".to_vec()
    );
    // No end of head (a partial request, CR-only lines, HTTP/0.9): sent as it was.
    for unmarked in [
        &b"GET / HTTP/1.1"[..],
        b"GET / HTTP/1.1\r\nHost: h\r\n",
        b"GET / HTTP/1.1\rHost: h\r\r",
        b"GET /\r\n",
    ] {
        assert_eq!(insert_marker(unmarked, "x-1"), unmarked.to_vec());
    }
    // A marker in the body is not the request's.
    assert_eq!(
        find_marker(b"POST / HTTP/1.1\r\nHost: h\r\n\r\nA\nX-Lbprobe-Id: no-1\r\n"),
        None
    );
}

/// Every template of the malformed catalogue, marked: removing the marker line gives back the
/// exact bytes, the marker sits after every line of the head and before its blank line, and
/// the capture's parser finds it.
#[test]
fn marker_moves_nothing_in_any_malformed_template() {
    let fill = Fill {
        method: "GET",
        path: "/p",
        host: "h:1",
        extra: "X-A: 1\r\n",
    };
    let mut marked_count = 0;
    for t in lbprobe::probe::templates::malformed() {
        let bytes = t.render(&fill);
        let marked = insert_marker(&bytes, "ab12-9");
        if marked == bytes {
            continue;
        }
        marked_count += 1;
        let line = lbprobe::bytes::find(&marked, b"X-Lbprobe-Id: ab12-9")
            .unwrap_or_else(|| panic!("{}: marker not found", t.id));
        let eol = if marked[line + 20] == b'\r' { 2 } else { 1 };
        let mut unmarked = marked[..line].to_vec();
        unmarked.extend_from_slice(&marked[line + 20 + eol..]);
        assert_eq!(unmarked, bytes, "{}: the marker moved other bytes", t.id);
        // Right before the blank line that ends the head.
        let after = &marked[line + 20 + eol..];
        assert!(
            after.starts_with(b"\r\n") || after.starts_with(b"\n"),
            "{}: the marker is not the head's last line",
            t.id
        );
        // Never before the request line: some content precedes it on an earlier line.
        let before = &marked[..line];
        assert!(
            before
                .split(|&b| b == b'\n')
                .any(|l| l.iter().any(|b| !matches!(b, b' ' | b'\t' | b'\r'))),
            "{}: the marker precedes the request line",
            t.id
        );
        if eol == 2 && !lbprobe::bytes::contains(before, b"\r\n\r\n") {
            assert_eq!(
                find_marker(&marked).as_deref(),
                Some("ab12-9"),
                "{}: the capture would not see the marker",
                t.id
            );
        }
    }
    assert!(marked_count > 80, "only {marked_count} templates marked");
}

#[test]
fn frames_decode_to_segments_with_mss_and_payload() {
    let syn = parse_frame(&frame((2, 40000), 8080, 7, SYN, Some(1460), b"")).expect("a segment");
    assert_eq!(syn.src, "127.0.0.2:40000".parse().unwrap());
    assert_eq!(syn.dst.port(), 8080);
    assert_eq!(syn.mss, Some(1460));
    let data = parse_frame(&frame((2, 40000), 8080, 8, ACK, None, b"GET /")).unwrap();
    assert_eq!(data.payload, b"GET /");
    // Cut short anywhere: no segment, no panic.
    let full = frame((2, 40000), 8080, 8, ACK, None, b"GET /");
    for n in 0..full.len() - 5 {
        let _ = parse_frame(&full[..n]);
    }
    assert!(parse_frame(&full[..30]).is_none());
}

#[test]
fn capture_finds_markers_resets_retransmissions_and_drops_loopback_copies() {
    let ms = Duration::from_millis;
    let mut cap = Capture::new(8080);
    let req = b"GET / HTTP/1.1\r\nX-Lbprobe-Id: run1-1\r\nHost: h\r\n\r\n";
    let syn = frame((2, 40000), 8080, 1, SYN, Some(65495), b"");
    cap.frame(ms(0), &syn);
    cap.frame(ms(0), &syn); // loopback's second copy
    cap.frame(ms(1), &frame((2, 40000), 8080, 2, ACK, None, &req[..20]));
    cap.frame(ms(1), &frame((2, 40000), 8080, 22, ACK, None, &req[20..]));
    // The same data again 300 ms later: a retransmission.
    cap.frame(ms(300), &frame((2, 40000), 8080, 22, ACK, None, &req[20..]));
    // Another client, unmarked, reset by the service; a third port nobody asked about.
    cap.frame(ms(400), &frame((3, 40001), 8080, 1, SYN, Some(1460), b""));
    let mut rst = frame((1, 8080), 0, 9, RST | ACK, None, b"");
    rst[36..38].copy_from_slice(&40001u16.to_be_bytes());
    cap.frame(ms(401), &rst);
    cap.frame(ms(402), &frame((3, 40002), 9999, 1, SYN, None, b""));
    // The first client's port reused for a new marked connection.
    cap.frame(
        ms(500),
        &frame((2, 40000), 8080, 900, SYN, Some(65495), b""),
    );
    cap.frame(
        ms(501),
        &frame(
            (2, 40000),
            8080,
            901,
            ACK,
            None,
            b"GET / HTTP/1.1\r\nX-Lbprobe-Id: run1-2\r\n\r\n",
        ),
    );
    let r = cap.finish(1.0);
    assert_eq!(r.connections, 3);
    assert_eq!(r.syn_mss.get(&65495), Some(&2));
    assert_eq!(r.syn_mss.get(&1460), Some(&1));
    assert_eq!(r.retransmissions, 1);
    assert_eq!(r.resets_from_service, 1);
    let markers: Vec<(&str, u64)> = r
        .markers
        .iter()
        .map(|m| (m.marker.as_str(), m.bytes))
        .collect();
    assert_eq!(markers, vec![("run1-1", req.len() as u64), ("run1-2", 40)]);
}

/// Reads a child's stderr on a thread until a line contains `needle`; bounded by `within`.
fn wait_for_stderr(child: &mut Child, needle: &'static str, within: Duration) -> bool {
    use std::io::BufRead as _;
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().take(1000) {
            let Ok(line) = line else { break };
            if line.contains(needle) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(within).is_ok()
}

/// Waits for the file to hold JSON; bounded.
fn read_json(path: &Path, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{} never held JSON",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn merge_tells_probes_nginx_rejected_from_probes_that_reached_the_backend() {
    require_root("merge_tells_probes_nginx_rejected_from_probes_that_reached_the_backend");
    let ns = Netns::new("cap");
    let dir = tempfile::tempdir().unwrap();
    let (lab_json, client_json, backend_json) = (
        dir.path().join("lab.json"),
        dir.path().join("client.json"),
        dir.path().join("backend.json"),
    );
    let lab = ns
        .exec(lbprobe_bin())
        .args(["lab", "--for", "120", "--format", "json", "-o"])
        .arg(&lab_json)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _lab = LabProcess { child: lab };
    let info = read_json(&lab_json, Duration::from_secs(30));
    let listener = info["listener"]
        .as_str()
        .expect("nginx in the lab: install nginx-light (scripts/test.sh does)")
        .to_string();
    let backend = info["backend"].as_str().unwrap();
    let port = backend
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();

    let mut capture = ns
        .exec(lbprobe_bin())
        .args([
            "backend",
            "--port",
            &port,
            "--capture",
            "--for",
            "120",
            "--format",
            "json",
            "-o",
        ])
        .arg(&backend_json)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for_stderr(&mut capture, "capturing", Duration::from_secs(20)),
        "lbprobe backend --capture did not start capturing"
    );
    let capture = LabProcess { child: capture };

    let scan = ns
        .exec(lbprobe_bin())
        .args(["scan", "--listener", &listener, "--insecure", "--marker"])
        .args([
            "--probes",
            "malformed",
            "--timeout",
            "3",
            "--format",
            "json",
            "--quiet",
            "-o",
        ])
        .arg(&client_json)
        .output()
        .unwrap();
    assert!(scan.status.code().is_some_and(|c| c <= 1), "{scan:?}");
    // Ctrl-C ends the capture, which then writes its report.
    drop(capture);
    read_json(&backend_json, Duration::from_secs(10));

    let out = Command::new(lbprobe_bin())
        .args(["merge", "--format", "json"])
        .arg(&client_json)
        .arg(&backend_json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let merged: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    // The merge exits as a run would with its re-classified findings.
    let confirmed = merged["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .any(|f| f["verdict"] == "confirmed");
    assert_eq!(
        out.status.code(),
        Some(if confirmed { 1 } else { 0 }),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        merged["exit_code"],
        if confirmed { 1 } else { 0 },
        "{stdout}"
    );
    let probes = merged["probes"].as_array().unwrap();
    let by = |variant: &str| -> String {
        probes
            .iter()
            .find(|p| p["variant"] == variant)
            .map(|p| p["answered_by"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("no probe {variant}: {stdout}"))
    };
    // A valid request goes through nginx to the backend; nginx itself rejects these.
    assert_eq!(by("baseline"), "forwarded", "{stdout}");
    assert_eq!(by("control"), "forwarded", "{stdout}");
    assert_eq!(by("lowercase-method"), "listener", "{stdout}");
    assert_eq!(by("obs-fold"), "listener", "{stdout}");
    // Every 400 the listener sent was its own: none of those requests reached the backend.
    // Requests whose head never ends (CR-only lines) carry no marker: the capture cannot say.
    for p in probes.iter().filter(|p| p["status"] == 400) {
        let want = if p["marker"].is_null() {
            "unknown"
        } else {
            "listener"
        };
        assert_eq!(p["answered_by"], want, "{p}");
    }
    assert!(merged["summary"]["forwarded"].as_u64().unwrap() >= 2);
    assert!(merged["notes"].as_array().unwrap().is_empty(), "{stdout}");

    // The scan named no backend, so nothing was compared side by side: the run is classified
    // again with the capture, and the 400s are now the listener's on the capture's word.
    let findings = merged["findings"]
        .as_array()
        .expect("re-classified findings");
    let malformed = findings
        .iter()
        .find(|f| f["cause"] == "400.malformed-request")
        .unwrap_or_else(|| panic!("no 400.malformed-request finding: {stdout}"));
    assert_eq!(malformed["verdict"], "reproduced", "{malformed}");
    let evidence: Vec<&str> = malformed["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    for variant in ["lowercase-method", "obs-fold"] {
        assert!(
            evidence
                .iter()
                .any(|t| t.starts_with(&format!("{variant}:"))
                    && t.contains("the probe never reached the backend (capture)")),
            "{variant}: {evidence:?}"
        );
    }
    assert!(merged["changes"].is_array(), "{stdout}");

    // The human rendering says what the re-classification did.
    let out = Command::new(lbprobe_bin())
        .args(["merge", "--format", "human"])
        .arg(&client_json)
        .arg(&backend_json)
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("re-classified with the capture"), "{human}");
}
