//! The report of `lbprobe replay`: the request as sent (exact escaped bytes, secrets masked,
//! and a curl command that sends the same, or why curl cannot), who answered what, the
//! shrink's minimal request with what matters in words and the requests it cost, and the
//! findings of the same rules as the probes.

use std::fmt::Write as _;

use serde::Serialize;

use crate::classify::{Finding, Origin, Verdict};
use crate::probe::{Limits, Observation};
use crate::profile::Profile;

use super::style::wrap;
use super::Style;

/// The replay report's `schema_version` (see [`super::schema`] for every kind's).
pub const SCHEMA_VERSION: u32 = super::schema::Kind::Replay.version();

/// A request as every output shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShownRequest {
    /// The exact bytes, escaped (`\r\n`, `\xNN`), secrets masked.
    pub bytes: String,
    /// Bytes on the wire (before masking).
    pub length: usize,
    /// A curl command that sends these bytes (secrets masked as `***`: put them back to run
    /// it), when curl can express them.
    pub curl: Option<String>,
    /// Why curl cannot send these exact bytes, when it cannot.
    pub curl_cannot: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShrinkReport {
    pub minimal: ShownRequest,
    /// What the failure needs, in words.
    pub matters: Vec<String>,
    /// Requests the shrink cost, the backend's comparison of the minimal request included.
    pub requests: u32,
    /// Of which shrink candidates sent to the listener.
    pub shrink_requests: u32,
    /// The run's request cap, which bounds the shrink.
    pub cap: u32,
    /// False when a cap or Ctrl-C stopped it: `minimal` is then the smallest failing one found.
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub schema_version: u32,
    pub tool: String,
    /// Where the request came from, in words.
    pub source: String,
    pub listener: String,
    pub backend: Option<String>,
    pub limits: Limits,
    pub profile: Profile,
    pub request: ShownRequest,
    /// The listener's answer to the judged request (the minimal one after a shrink).
    pub answer: String,
    pub origin: Origin,
    /// Who answered, in words: the signals that agreed.
    pub who: String,
    pub passes_now: bool,
    pub shrink: Option<ShrinkReport>,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
    pub requests_sent: u32,
    pub duration_ms: f64,
    pub observations: Vec<Observation>,
    pub exit_code: i32,
    pub exit_reason: String,
}

/// Escaped bytes longer than this are cut in the middle in the human report (`-v`: whole).
const SHOWN_BYTES: usize = 400;

pub fn render(r: &ReplayReport, s: Style) -> String {
    let mut out = String::new();
    let _ = write(&mut out, r, s);
    out
}

fn write(out: &mut String, r: &ReplayReport, s: Style) -> std::fmt::Result {
    let sides = match &r.backend {
        Some(b) => format!("listener {} and backend {b}", r.listener),
        None => format!("listener {}", r.listener),
    };
    writeln!(
        out,
        "{}",
        wrap(
            &format!(
                "{} {} replayed to {sides}",
                s.bold("lbprobe replay:"),
                r.source
            ),
            s.width,
            "",
            "  "
        )
    )?;
    writeln!(out)?;
    write_request(
        out,
        &format!("The request as given ({} bytes)", r.request.length),
        &r.request,
        s,
    )?;
    writeln!(out)?;
    if r.exit_code == crate::exit::UNREACHABLE {
        writeln!(
            out,
            "{}",
            wrap(
                &format!("The listener could not be reached: {}.", r.answer),
                s.width,
                "",
                "  "
            )
        )?;
    } else if r.passes_now {
        writeln!(
            out,
            "{}",
            wrap(
                &format!("The request passes now: the listener answers {}.", r.answer),
                s.width,
                "",
                "  "
            )
        )?;
    } else {
        let who = match r.origin {
            Origin::Listener => "the listener itself",
            Origin::Backend => "the backend, relayed by the listener",
            Origin::Unknown => "the listener or the backend",
        };
        writeln!(
            out,
            "{}",
            wrap(
                &format!("Answer: {} from {who} ({}).", r.answer, r.who),
                s.width,
                "",
                "  "
            )
        )?;
    }
    if let Some(sh) = &r.shrink {
        writeln!(out)?;
        let state = if sh.complete { "" } else { ", stopped early" };
        write_request(
            out,
            &format!(
                "The minimal request ({} bytes; {} spent on the shrink, cap {}{state})",
                sh.minimal.length,
                crate::plural::count(sh.requests, "request"),
                sh.cap
            ),
            &sh.minimal,
            s,
        )?;
        writeln!(out, "  {}", s.bold("what matters"))?;
        if sh.matters.is_empty() {
            writeln!(
                out,
                "    • nothing but the request line and Host: any such request fails this way"
            )?;
        }
        for m in &sh.matters {
            writeln!(out, "{}", wrap(m, s.width, "    • ", "      "))?;
        }
    }
    let shown: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| s.verbose || f.verdict != Verdict::RuledOut)
        .collect();
    for f in shown {
        super::human::write_detail(out, f, s)?;
    }
    if !r.notes.is_empty() {
        writeln!(out)?;
        for n in &r.notes {
            writeln!(out, "{}", wrap(n, s.width, "note: ", "  "))?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        wrap(
            &format!(
                "{} sent in {:.1} s. Exit {}: {}",
                crate::plural::count(r.requests_sent, "request"),
                r.duration_ms / 1000.0,
                r.exit_code,
                r.exit_reason
            ),
            s.width,
            "",
            "  "
        )
    )
}

fn write_request(out: &mut String, title: &str, q: &ShownRequest, s: Style) -> std::fmt::Result {
    writeln!(out, "{}", s.bold(title))?;
    let bytes = cut(&q.bytes, s.verbose);
    for line in bytes.split_inclusive("\\n") {
        writeln!(out, "  {line}")?;
    }
    match (&q.curl, &q.curl_cannot) {
        (Some(c), _) => writeln!(out, "  {} {}", s.dim("as curl:"), cut(c, s.verbose))?,
        (None, Some(why)) => writeln!(
            out,
            "{}",
            wrap(
                &format!("curl cannot send these exact bytes: {why}"),
                s.width,
                "  ",
                "    "
            )
        )?,
        (None, None) => {}
    }
    Ok(())
}

/// A long text with its middle left out, saying how much.
fn cut(text: &str, verbose: bool) -> String {
    if verbose || text.chars().count() <= SHOWN_BYTES {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let head: String = chars[..SHOWN_BYTES / 2].iter().collect();
    let tail: String = chars[chars.len() - SHOWN_BYTES / 4..].iter().collect();
    format!(
        "{head}…[{} characters left out; -v or --format json shows them]…{tail}",
        chars.len() - SHOWN_BYTES / 2 - SHOWN_BYTES / 4
    )
}
