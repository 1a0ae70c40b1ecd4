//! The `mtu` family against a real narrow path: three network namespaces (client, router,
//! backend) whose middle link carries 1280 bytes while both ends' interfaces say 1500, nginx in
//! the client namespace proxying to a lab backend in the backend namespace.
//!
//! With the router's ICMP "fragmentation needed" dropped (a black hole), small POSTs pass and
//! large ones are lost: `502.mtu-mismatch` is confirmed, and once that is proven the larger
//! sizes are not sent. Neighbours that must not confirm it: ICMP allowed (discovery reports the
//! path MTU the router announced and every POST passes), and ICMP dropped on a path with no
//! narrow link. Needs CAP_NET_ADMIN and CAP_NET_RAW (root, as in CI); every namespace and
//! process is removed after, even on failure.

#[path = "support/says.rs"]
mod says;
use says::assert_says;

use std::sync::Arc;
use std::time::Duration;

use lbprobe::catalogue::Catalogue;
use lbprobe::classify::{self, Context, Finding, Verdict};
use lbprobe::lab::netns::{require_net_admin, NarrowPath};
use lbprobe::lab::{BackendConfig, LabBackend, Nginx, NginxServer, NginxSpec};
use lbprobe::probe::mtu::{MtuResult, MtuSpec, DISCOVERY_VARIANT};
use lbprobe::probe::{self, Detail, Family, Limits, Observation, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::scenario::{load_str, LoadContext};
use lbprobe::target::{Role, Target};
use lbprobe::transport::pmtu::{Icmp, Method};

const NARROW_MTU: u32 = 1280;

/// nginx gives up on a stalled upstream quickly, so a lost POST ends within the test's wait.
const NGINX_TIMEOUTS: &str =
    "proxy_connect_timeout 2s; proxy_send_timeout 2s; proxy_read_timeout 2s;";

/// The POST sizes every run here sends.
const SIZES: [usize; 4] = [200, 1200, 1400, 9000];

struct Outcome {
    observations: Vec<Observation>,
    notes: Vec<String>,
    finding: Finding,
}

impl Outcome {
    fn text(&self) -> String {
        let f = &self.finding;
        let mut all = format!("{}: {}", f.verdict, f.reason);
        for e in &f.evidence {
            all.push_str("\n  - ");
            all.push_str(&e.text);
        }
        all
    }

    fn discovery(&self, role: Role) -> &MtuResult {
        self.observations
            .iter()
            .find_map(|o| match &o.detail {
                Detail::Mtu(r)
                    if o.role == role
                        && o.family == Family::Mtu
                        && o.variant == DISCOVERY_VARIANT =>
                {
                    Some(r)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no discovery towards the {role}"))
    }

    fn status_of(&self, variant: &str, role: Role) -> Option<u16> {
        self.observations
            .iter()
            .find(|o| o.family == Family::Mtu && o.variant == variant && o.role == role)
            .and_then(|o| o.exchange.as_ref())
            .and_then(|e| e.status())
    }

    /// The POSTs of the family sent to `role` with a body above `size`.
    fn posts_above(&self, size: usize, role: Role) -> usize {
        self.observations
            .iter()
            .filter(|o| o.family == Family::Mtu && o.role == role)
            .filter_map(|o| lbprobe::probe::mtu::post_size(&o.variant))
            .filter(|&s| s > size)
            .count()
    }
}

/// A lab backend in the path's backend namespace. Its runtime is created inside the namespace,
/// so its listening socket is there; keep the runtime as long as the backend.
fn backend_in(path: &NarrowPath, config: BackendConfig) -> (tokio::runtime::Runtime, LabBackend) {
    path.backend
        .run_in(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("backend runtime");
            let backend = rt
                .block_on(LabBackend::start_at(
                    config,
                    (NarrowPath::BACKEND, 0).into(),
                ))
                .expect("start the lab backend");
            (rt, backend)
        })
        .expect("run in the backend namespace")
}

/// The three namespaces, the middle link at `middle_mtu` bytes (needs CAP_NET_ADMIN).
fn build_path(tag: &str, middle_mtu: u32, drop_frag_needed: bool) -> NarrowPath {
    if let Err(e) = require_net_admin() {
        panic!("the mtu tests build network namespaces: {e}");
    }
    NarrowPath::build(tag, middle_mtu, drop_frag_needed)
        .unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"))
}

/// Run `plan` on a runtime of this thread (so in the namespace it is in), classify with the
/// backend named, and take the `502.mtu-mismatch` finding.
fn probe_mtu(plan: &Plan, listener_tls: Option<bool>) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("probe runtime");
    let output = rt.block_on(probe::run(plan, Arc::new(|_| {})));
    let ctx = Context {
        profile: &plan.profile,
        listener_tls,
        has_backend: true,
    };
    let finding = classify::classify(&output.observations, Catalogue::builtin(), &ctx)
        .into_iter()
        .find(|f| f.cause == "502.mtu-mismatch")
        .expect("a finding for 502.mtu-mismatch");
    Outcome {
        observations: output.observations,
        notes: output.notes,
        finding,
    }
}

/// Build the path, start the backend and nginx inside it, run the mtu family from the client
/// namespace and classify.
fn run_through_narrow_path(tag: &str, drop_frag_needed: bool) -> Outcome {
    run_through_path(tag, NARROW_MTU, drop_frag_needed)
}

/// The same with the router's middle link at `middle_mtu` bytes.
fn run_through_path(tag: &str, middle_mtu: u32, drop_frag_needed: bool) -> Outcome {
    let path = build_path(tag, middle_mtu, drop_frag_needed);

    let (backend_rt, backend) = backend_in(&path, BackendConfig::default());
    let backend_url = format!("http://{}/", backend.addr());

    let outcome = path
        .client
        .run_in(|| {
            let nginx = Nginx::start(&NginxSpec::one(
                NginxServer::proxy(backend_url.trim_end_matches('/')).extra(NGINX_TIMEOUTS),
            ))
            .unwrap_or_else(|e| panic!("cannot start nginx in the client namespace: {e}"));
            let plan = Plan::new(
                Some(Target::parse(Role::Listener, &nginx.url(0)).unwrap()),
                Some(Target::parse(Role::Backend, &backend_url).unwrap()),
            )
            .with_profile(Profile::nginx())
            .with_probes(vec![ProbeSpec::Mtu(MtuSpec {
                sizes: SIZES.to_vec(),
                echo_wait: Duration::from_millis(500),
                request_wait: Some(Duration::from_secs(4)),
                ..MtuSpec::default()
            })])
            .with_limits(Limits {
                request_timeout: Duration::from_secs(4),
                ..Limits::default()
            });
            let outcome = probe_mtu(&plan, Some(false));
            drop(nginx);
            outcome
        })
        .unwrap_or_else(|e| panic!("run in the client namespace: {e}"));
    drop(backend);
    drop(backend_rt);
    drop(path);
    outcome
}

#[test]
fn black_hole_on_a_middle_link_confirms_mtu_mismatch() {
    let out = run_through_narrow_path("bh", true);
    let text = out.text();
    println!("{text}");
    assert_eq!(out.finding.verdict, Verdict::Confirmed, "{text}");
    // Small requests pass both ways; the large ones are lost through the listener.
    assert_eq!(
        out.status_of("post-200", Role::Listener),
        Some(200),
        "{text}"
    );
    assert_eq!(
        out.status_of("post-200", Role::Backend),
        Some(200),
        "{text}"
    );
    assert!(
        !matches!(out.status_of("post-1200", Role::Listener), Some(s) if s < 500),
        "{text}"
    );
    assert_eq!(out.status_of("post-1200", Role::Backend), None, "{text}");
    // Proven on the backend (200 answered, 1200 lost, a black hole below it): the larger
    // sizes were not sent, to either side.
    let large = SIZES.iter().filter(|&&s| s > 200).count();
    let sent = out.posts_above(200, Role::Backend);
    assert!(
        sent < large,
        "{sent} of {large} large POSTs sent to the backend: {text}"
    );
    assert!(out.posts_above(200, Role::Listener) < large, "{text}");
    assert!(
        out.notes.iter().any(|n| n.contains("were not sent")),
        "{:?}",
        out.notes
    );
    // Discovery from the client sees the hole: 1280 passes, larger sizes vanish with no ICMP.
    let d = out.discovery(Role::Backend);
    let found = d.discovery.as_ref().unwrap_or_else(|| panic!("{d:?}"));
    assert_eq!(found.method, Method::RawEcho, "running as root: {d:?}");
    assert_eq!(found.icmp, Icmp::Silent, "{found:?}");
    assert_eq!(found.path_mtu, Some(NARROW_MTU), "{found:?}");
    assert!(text.contains("black hole"), "{text}");
}

#[test]
fn icmp_allowed_discovery_reports_the_narrow_path_mtu() {
    let out = run_through_narrow_path("ok", false);
    let text = out.text();
    println!("{text}");
    let d = out.discovery(Role::Backend);
    let found = d.discovery.as_ref().unwrap_or_else(|| panic!("{d:?}"));
    assert_eq!(found.kernel_mtu_before, 1500, "{found:?}");
    assert_eq!(found.path_mtu, Some(NARROW_MTU), "{found:?}");
    assert_eq!(found.icmp, Icmp::Returned { mtu: NARROW_MTU }, "{found:?}");
    // Path MTU discovery works, so large requests get through and the cause is ruled out.
    assert_eq!(
        out.status_of("post-9000", Role::Listener),
        Some(200),
        "{text}"
    );
    assert_eq!(out.finding.verdict, Verdict::RuledOut, "{text}");
    // Nothing proven: every size went out to both sides.
    for role in [Role::Listener, Role::Backend] {
        assert_eq!(out.posts_above(200, role), SIZES.len() - 1, "{text}");
    }
}

/// ICMP "fragmentation needed" dropped as in the black hole, but no narrow link: nothing needs
/// the ICMP, every POST passes and discovery finds the full 1500 bytes. Dropping ICMP alone is
/// no black hole.
#[test]
fn icmp_dropped_without_a_narrow_link_does_not_confirm() {
    let out = run_through_path("wd", 1500, true);
    let text = out.text();
    println!("{text}");
    let d = out.discovery(Role::Backend);
    let found = d.discovery.as_ref().unwrap_or_else(|| panic!("{d:?}"));
    assert_eq!(found.method, Method::RawEcho, "running as root: {d:?}");
    assert_eq!(found.path_mtu, Some(1500), "{found:?}");
    assert_eq!(found.icmp, Icmp::NotNeeded, "{found:?}");
    assert!(!found.black_hole(), "{found:?}");
    for role in [Role::Listener, Role::Backend] {
        assert_eq!(out.status_of("post-9000", role), Some(200), "{text}");
    }
    assert_eq!(out.finding.verdict, Verdict::RuledOut, "{text}");
}

/// A TLS lab backend across the narrow path, probed directly with the two ClientHellos (no
/// discovery, one small POST): what the hellos alone say.
fn hellos_through_narrow_path(tag: &str, drop_frag_needed: bool) -> Outcome {
    let path = build_path(tag, NARROW_MTU, drop_frag_needed);
    let (backend_rt, backend) = backend_in(&path, BackendConfig::default().tls(true));
    let backend_url = format!("https://{}/", backend.addr());
    let outcome = path
        .client
        .run_in(|| {
            let mut target = Target::parse(Role::Backend, &backend_url).unwrap();
            target.tls_verify = false;
            let plan = Plan::new(None, Some(target))
                .with_profile(Profile::nginx())
                .with_probes(vec![ProbeSpec::Mtu(MtuSpec {
                    sizes: vec![200],
                    discover: false,
                    request_wait: Some(Duration::from_secs(3)),
                    ..MtuSpec::default()
                })])
                .with_limits(Limits {
                    request_timeout: Duration::from_secs(3),
                    ..Limits::default()
                });
            probe_mtu(&plan, None)
        })
        .unwrap_or_else(|e| panic!("run in the client namespace: {e}"));
    drop(backend);
    drop(backend_rt);
    drop(path);
    outcome
}

fn hello_answered(out: &Outcome, variant: &str) -> bool {
    out.observations
        .iter()
        .find(|o| o.family == Family::Mtu && o.variant == variant)
        .and_then(|o| o.exchange.as_ref())
        .unwrap_or_else(|| panic!("no {variant}"))
        .bytes_in
        > 0
}

/// Behind the black hole the large ClientHello (a post-quantum key share, ~1.7 KB) hangs while
/// the small one is answered: 502.mtu-mismatch on the TLS path.
#[test]
fn a_large_client_hello_hangs_in_the_black_hole() {
    let out = hellos_through_narrow_path("th", true);
    let text = out.text();
    println!("{text}");
    assert!(hello_answered(&out, "tls-hello-small"), "{text}");
    assert!(!hello_answered(&out, "tls-hello-large"), "{text}");
    assert_eq!(out.finding.verdict, Verdict::Confirmed, "{text}");
    assert_says(&text, &["TLS ClientHello", "a ServerHello"]);
    assert!(
        text.contains("1694 bytes: nothing back") || text.contains("1694 bytes: no answer"),
        "{text}"
    );
}

/// With ICMP "fragmentation needed" allowed, the kernel learns the path MTU and the large
/// hello gets through too: no hello evidence against the path.
#[test]
fn a_large_client_hello_passes_when_icmp_comes_back() {
    let out = hellos_through_narrow_path("to", false);
    let text = out.text();
    println!("{text}");
    assert!(hello_answered(&out, "tls-hello-small"), "{text}");
    assert!(hello_answered(&out, "tls-hello-large"), "{text}");
    assert_ne!(out.finding.verdict, Verdict::Confirmed, "{text}");
}

#[test]
fn scenario_mtu_parameters_load_and_bad_ones_point_at_the_value() {
    let no_vars = |_: &str| None;
    let any = |_: &str| true;
    let ctx = LoadContext {
        vars: &no_vars,
        known_cause: &any,
        known_variant: &any,
    };
    let text = "targets:\n  listener:\n    url: http://127.0.0.1:8080/\nprobes:\n  - mtu: { sizes: [1200, 64k], discover: false, max-mtu: 1500, echo-wait: 500ms, request-wait: 3s }\n";
    let s = load_str(text, "t.yaml", &ctx).unwrap_or_else(|e| panic!("{e}"));
    let want = MtuSpec {
        sizes: vec![1200, 65536],
        discover: false,
        max_mtu: 1500,
        echo_wait: Duration::from_millis(500),
        request_wait: Some(Duration::from_secs(3)),
    };
    assert_eq!(s.probes, vec![ProbeSpec::Mtu(want)]);

    let bad = "targets:\n  listener:\n    url: http://127.0.0.1:8080/\nprobes:\n  - mtu: { max-mtu: 100 }\n";
    let err = load_str(bad, "t.yaml", &ctx).unwrap_err();
    assert_eq!(err.position(), Some((5, 21)), "{err}");
    assert!(err.to_string().contains("max-mtu"), "{err}");
}
