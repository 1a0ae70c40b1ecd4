//! `lbprobe replay`'s reader on arbitrary bytes (raw HTTP/1.1, a curl command line, a HAR file):
//! it reads a request or says where it cannot (a line and column inside the input), never
//! panics; and whatever request curl can express comes back the same through the curl command
//! lbprobe writes for it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lbprobe::replay::{self, curl};

fuzz_target!(|data: &[u8]| {
    // `@file` makes curl lines read files: not the fuzzer's to open.
    if data.contains(&b'@') {
        return;
    }
    match replay::parse(data, None) {
        Ok(parsed) => {
            let defaults = curl::Defaults::default();
            if let Ok(line) = curl::to_curl(&parsed.request, "http://a.test", &defaults) {
                let again = curl::parse(&line, &defaults).expect("lbprobe's own curl line reads");
                assert_eq!(again.request, parsed.request, "{line}");
            }
        }
        Err(e) => {
            let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
            assert!(e.line >= 1 && e.line <= lines, "{e}");
            assert!(e.column >= 1, "{e}");
        }
    }
});
