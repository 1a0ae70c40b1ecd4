//! The run's wall time against its floor, in one sentence: "Took 13.1 s; floor 10.0 s (1.31×):
//! the 10.0 s wait of malformed duplicate-content-length at the backend, the request timeout."

use crate::plural;
use crate::probe::floor::LongestWait;

use super::model::Report;

/// The sentence for a report.
pub fn line(r: &Report) -> String {
    let t = &r.timing;
    let ratio = if t.floor_seconds > 0.0 {
        format!(" ({:.2}×)", t.ratio)
    } else {
        String::new()
    };
    let rate = format!(
        "{} at {}/s",
        plural::count(r.requests_sent, "request"),
        trim(r.limits.max_rate)
    );
    let why = match (&t.longest_wait, t.floor_set_by) {
        (Some(w), "wait") => format!("{}; {rate} take {:.1} s", wait(w), t.rate_seconds),
        (Some(w), _) => format!("{rate}; the longest wait: {}", wait(w)),
        (None, _) => rate,
    };
    format!(
        "Took {:.1} s; floor {:.1} s{ratio}: {why}.",
        t.wall_seconds, t.floor_seconds
    )
}

/// "the 3.0 s wait of malformed cl-larger-than-body at the backend, its declared wait".
fn wait(w: &LongestWait) -> String {
    let bound = if !w.waited_out() {
        String::new()
    } else if w.declared {
        ", its declared wait".to_string()
    } else {
        ", the request timeout".to_string()
    };
    format!(
        "the {:.1} s wait of {} {} at the {}{bound}",
        w.seconds, w.family, w.variant, w.role
    )
}

/// A rate without a trailing ".0".
fn trim(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate}")
    }
}
