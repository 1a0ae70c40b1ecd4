//! The HTTP response parser on arbitrary bytes, as a hostile server sends them: never a panic,
//! and the parser agrees with itself (a response cut short is never "complete" where the whole
//! was not, and the body never claims more bytes than arrived).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lbprobe::transport::response::{parse_response, parse_response_closed, response_is_complete, ParseLimits};

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits::default();
    for head in [false, true] {
        let open = parse_response(data, head, &limits);
        let closed = parse_response_closed(data, head, &limits);
        if let Some(r) = &open {
            assert!(r.body_bytes <= data.len(), "body {} of {}", r.body_bytes, data.len());
            assert_eq!(response_is_complete(data, head, &limits), r.complete);
        }
        // A close can only end a response, never unmake one that parsed.
        assert!(open.is_none() || closed.is_some());
    }
});
