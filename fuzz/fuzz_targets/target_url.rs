//! The target parser on arbitrary strings: a target is used exactly as written or refused.
//! What parses has no whitespace or control character anywhere and a non-empty host, and its
//! own URL parses back to the same target; an error never echoes the credentials of a URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lbprobe::target::{Role, Target};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Target::parse(Role::Listener, text) {
        Ok(t) => {
            assert!(!text.chars().any(|c| c.is_whitespace() || c.is_control()));
            assert!(!t.host.is_empty());
            let again = Target::parse(Role::Listener, &t.url()).expect("its own URL parses");
            assert_eq!((&again.host, again.port, &again.path), (&t.host, t.port, &t.path));
        }
        Err(e) => {
            // Where the URL is echoed, its authority's credentials are masked (the same text
            // repeated in its path is the person's own path).
            if let Some((scheme, rest)) = text.split_once("://") {
                let valid = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                let credentials = authority
                    .rsplit_once('@')
                    .is_some_and(|(userinfo, _)| userinfo.contains(':'));
                let echo = e.to_string();
                if valid && credentials {
                    if let Some(at) = echo.find("://") {
                        assert!(echo[at + 3..].starts_with("***@"), "{echo}");
                    }
                }
            }
        }
    }
});
