//! Every line parser (nginx formats, the JSON export, HAProxy) and the classifier on arbitrary
//! bytes: errors are fine, panics are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lbprobe::logs::classify::{classify, Facts, Timeouts};
use lbprobe::logs::errorlog::ErrorIndex;
use lbprobe::logs::summary::Summary;
use lbprobe::logs::{LogFormat, Options};
use lbprobe::profile::Profile;

fuzz_target!(|data: &[u8]| {
    let timeouts = Timeouts::of(&Profile::clb());
    // Every line as an nginx error.log line, then every line joined to what it indexed.
    let mut errors = ErrorIndex::new("fuzz".into());
    for line in data.split(|&b| b == b'\n') {
        errors.add_line(line);
    }
    errors.finish();
    for name in ["upstream", "combined", "lab", "json", "haproxy"] {
        let Ok(format) = LogFormat::parse(name) else { continue };
        if let Ok(rec) = format.parse_line(data, false) {
            let mut facts = Facts::of(&rec);
            let _ = classify(&facts, &timeouts);
            facts.join(errors.join(&rec, rec.status));
            let _ = classify(&facts, &timeouts);
        }
        let _ = format.parse_line(data, true);
        let _ = format.fields(data);
        // The quote anchor and the field walk agree wherever both find a status on a line nginx
        // can write. The anchor rests on nginx never writing a bare `"` inside a value (it writes
        // `\x22`, or `\"` under escape=json); where a value before `$status` holds one, the line
        // is not nginx's and the two may read different fields as the status (both stay bounded).
        if let LogFormat::Nginx { format: f, .. } = &format {
            if let (Some(a), Some(w)) = (f.status_by_anchor(data), f.status(data)) {
                let nginx_wrote_it = f.fields(data).is_ok_and(|fields| {
                    fields
                        .iter()
                        .take_while(|(name, _)| name != "$status")
                        .all(|(_, value)| !has_bare_quote(value))
                });
                if nginx_wrote_it {
                    assert_eq!(a, w);
                }
            }
        }
        // The block scanner counts what the line-by-line path counts.
        let opts = Options {
            format,
            profile: "clb".into(),
            timeouts,
            threads: 1,
            errors: None,
        };
        let (mut by_block, mut by_line) = (Summary::default(), Summary::default());
        opts.block("fuzz", data, &mut by_block);
        for line in data.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            opts.line("fuzz", by_line.lines + 1, line, &mut by_line);
        }
        assert_eq!(
            (by_block.lines, by_block.bad, by_block.blank, &by_block.status),
            (by_line.lines, by_line.bad, by_line.blank, &by_line.status)
        );
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

/// A `"` not escaped as `\"`.
fn has_bare_quote(value: &[u8]) -> bool {
    value
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'"' && (i == 0 || value[i - 1] != b'\\'))
}
