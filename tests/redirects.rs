//! Redirects are recorded, never followed: a 3xx whose `Location` leaves the target gets a
//! note in the report naming the answer and the observations it came from.

mod support;

use lbprobe::probe::{Family, Plan};
use lbprobe::profile::Profile;
use lbprobe::run::redirect_notes;
use lbprobe::target::{Role, Target};

use support::*;

fn plan() -> Plan {
    Plan::new(
        Some(Target::parse(Role::Listener, "https://127.0.0.1:8443/").expect("url")),
        Some(Target::parse(Role::Backend, "http://127.0.0.1:9090/").expect("url")),
    )
    .with_profile(Profile::clb())
    .with_probes(Vec::new())
}

#[test]
fn a_redirect_off_the_target_is_noted_once_with_its_observations() {
    let observations = numbered(vec![
        obs(Family::Protocol, "baseline", LISTENER)
            .answer(301, "Moved Permanently", "")
            .header("Location", "https://login.example.test/sso"),
        obs(Family::Methods, "GET", LISTENER)
            .answer(301, "Moved Permanently", "")
            .header("location", "https://login.example.test/sso"),
        // On the target (relative, or the same host and port): nothing to say.
        obs(Family::Protocol, "baseline", BACKEND)
            .answer(302, "Found", "")
            .header("Location", "/login"),
        obs(Family::Methods, "GET", BACKEND)
            .answer(307, "Temporary Redirect", "")
            .header("Location", "http://127.0.0.1:9090/next"),
        // Not a redirect, though it names a Location.
        obs(Family::Methods, "POST", BACKEND)
            .answer(201, "Created", "")
            .header("Location", "https://elsewhere.example.test/1"),
    ]);
    let notes = redirect_notes(&observations, &plan());
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(
            "the listener answered 301 with Location \"https://login.example.test/sso\", off the target [o1 o2]"
        ),
        "{notes:?}"
    );
    assert!(notes[0].contains("not followed"), "{notes:?}");
}

#[test]
fn many_redirects_are_counted_past_the_first_few() {
    let observations = numbered(
        (0..8)
            .map(|n| {
                obs(Family::Methods, "GET", BACKEND)
                    .answer(302, "Found", "")
                    .header("Location", &format!("https://cdn{n}.example.test/"))
            })
            .collect(),
    );
    let notes = redirect_notes(&observations, &plan());
    assert_eq!(notes.len(), 6, "{notes:?}");
    assert!(
        notes[5].starts_with("3 more redirects off the target"),
        "{notes:?}"
    );
}
