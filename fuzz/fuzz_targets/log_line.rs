//! Every line parser (nginx formats, the JSON export, HAProxy) and the classifier on arbitrary
//! bytes: errors are fine, panics are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lbprobe::logs::classify::{classify, Facts, Timeouts};
use lbprobe::logs::LogFormat;
use lbprobe::profile::Profile;

fuzz_target!(|data: &[u8]| {
    let timeouts = Timeouts::of(&Profile::clb());
    for name in ["upstream", "combined", "lab", "json", "haproxy"] {
        let Ok(format) = LogFormat::parse(name) else { continue };
        if let Ok(rec) = format.parse_line(data, false) {
            let _ = classify(&Facts::of(&rec), &timeouts);
        }
        let _ = format.parse_line(data, true);
        let _ = format.fields(data);
    }
    // The first line may also be a log_format string of its own.
    if let Some(nl) = data.iter().position(|&b| b == b'\n') {
        if let Ok(src) = std::str::from_utf8(&data[..nl]) {
            if let Ok(format) = LogFormat::parse(src) {
                let _ = format.parse_line(&data[nl + 1..], false);
            }
        }
    }
});
