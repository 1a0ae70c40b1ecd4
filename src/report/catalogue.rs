//! Renders the causes catalogue for people (terminal table, one cause in detail, Markdown for
//! docs/causes.md) and for programs (JSON). Pure: everything returns a value, the caller prints.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::catalogue::{Catalogue, Cause, Kind, Side};

/// Terminal width the detail view wraps prose to; tables are never wrapped.
const WRAP: usize = 92;

use super::style::look::{BOLD, CYAN, DIM, MAGENTA, WARN as YELLOW};

/// Styling that collapses to plain text when color is off, so callers never branch.
#[derive(Clone, Copy)]
struct Paint {
    color: bool,
}

impl Paint {
    fn with(self, look: anstyle::Style, text: &str) -> String {
        super::Style {
            color: self.color,
            ..super::Style::plain()
        }
        .paint(look, text)
    }

    fn kind(self, kind: Kind, text: &str) -> String {
        match kind {
            Kind::Fault => self.with(YELLOW, text),
            Kind::Trigger => self.with(CYAN, text),
        }
    }
}

/// The standard reason phrase, plus nginx's 499 which the page uses too.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Where the evidence for a cause of this side lives, in words.
pub fn side_meaning(side: Side) -> &'static str {
    match side {
        Side::Upstream => "upstream_status shows the code: the backend said it",
        Side::Listener => "only status shows it; the listener or the client is its origin",
    }
}

/// What a cause of this kind is and what a probe can say about it, in words.
pub fn kind_meaning(kind: Kind) -> &'static str {
    match kind {
        Kind::Fault => {
            "something wrong in the setup, present or absent now; a probe can confirm it or \
             rule it out"
        }
        Kind::Trigger => {
            "a kind of request that produces the code; a probe can reproduce it and find its \
             threshold, and the access log tells whether real clients do it"
        }
    }
}

fn code_heading(code: u16) -> String {
    let reason = reason_phrase(code);
    if reason.is_empty() {
        code.to_string()
    } else {
        format!("{code} {reason}")
    }
}

fn confirms_heading(kind: Kind) -> &'static str {
    match kind {
        Kind::Fault => "Evidence that confirms it",
        Kind::Trigger => "Evidence that reproduces it",
    }
}

/// A compact table of every cause, grouped by code.
pub fn causes_human(cat: &Catalogue, color: bool) -> String {
    let paint = Paint { color };
    let id_width = cat.causes().iter().map(|c| c.id.len()).max().unwrap_or(0);
    let side_width = "upstream".len();
    let kind_width = "trigger".len();
    let mut out = String::new();
    for (n, code) in cat.codes().into_iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{}", paint.with(BOLD, &code_heading(code)));
        for cause in cat.by_code(code) {
            // Pad before painting: escape codes have no width on screen.
            let id = format!("{:id_width$}", cause.id);
            let side = format!("{:side_width$}", cause.side.to_string());
            let kind = format!("{:kind_width$}", cause.kind.to_string());
            let _ = write!(
                out,
                "  {}  {}  {}  {}",
                paint.with(BOLD, &id),
                side,
                paint.kind(cause.kind, &kind),
                cause.title
            );
            if cause.extension {
                let _ = write!(out, " {}", paint.with(MAGENTA, "(extension)"));
            }
            out.push('\n');
        }
    }
    let faults = cat
        .causes()
        .iter()
        .filter(|c| c.kind == Kind::Fault)
        .count();
    let extensions = cat.causes().iter().filter(|c| c.extension).count();
    let mut footer = format!(
        "{} causes: {} faults, {} triggers",
        cat.causes().len(),
        faults,
        cat.causes().len() - faults
    );
    if extensions > 0 {
        let _ = write!(
            footer,
            "; {extensions} marked (extension) go beyond the reference page"
        );
    }
    let _ = writeln!(out, "\n{}", paint.with(DIM, &footer));
    out
}

/// One cause in full: what it means, where its evidence lives, how to confirm it, rule it out,
/// probe it, spot it in the access log, and fix it.
pub fn cause_human(cause: &Cause, color: bool) -> String {
    let paint = Paint { color };
    let mut out = String::new();
    let _ = writeln!(out, "{}", paint.with(BOLD, &cause.id));
    out.push_str(&wrap(&cause.title, "  ", "  "));
    out.push('\n');
    let _ = writeln!(out, "  code  {}", code_heading(cause.code));
    out.push_str(&wrap(
        &format!("{} — {}", cause.side, side_meaning(cause.side)),
        "  side  ",
        "        ",
    ));
    let kind_line = wrap(
        &format!("{} — {}", cause.kind, kind_meaning(cause.kind)),
        "  kind  ",
        "        ",
    );
    // Color only the kind's name, which the wrapped line starts with.
    let kind_name = cause.kind.to_string();
    out.push_str(&kind_line.replacen(&kind_name, &paint.kind(cause.kind, &kind_name), 1));
    if cause.extension {
        let _ = writeln!(
            out,
            "  {}",
            paint.with(MAGENTA, "extension: not on the reference page")
        );
    }

    let mut section = |heading: &str, body: String| {
        let _ = writeln!(out, "\n{}", paint.with(BOLD, heading));
        out.push_str(&body);
    };
    section("What it means", wrap(&cause.summary, "  ", "  "));
    section(confirms_heading(cause.kind), bullets(&cause.confirms));
    section("Evidence that rules it out", bullets(&cause.rules_out));
    section(
        "Probes that test it",
        wrap(&cause.probes.join(", "), "  ", "  "),
    );
    section("Log signals", wrap(&cause.log_signals, "  ", "  "));
    section("Fix", bullets(&cause.remediation));
    out
}

fn bullets(items: &[String]) -> String {
    items
        .iter()
        .map(|item| wrap(item, "  - ", "    "))
        .collect()
}

/// Word wrap to [`WRAP`] columns, the catalogue's line breaks folded into spaces; a word
/// longer than the line stays whole.
fn wrap(text: &str, first: &str, rest: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = super::style::wrap(&flat, WRAP, first, rest);
    out.push('\n');
    out
}

/// The whole catalogue as JSON: `{"causes": [...]}`, each cause as [`cause_json`] gives it.
pub fn causes_json(cat: &Catalogue) -> Value {
    json!({ "causes": cat.causes().iter().map(cause_json).collect::<Vec<_>>() })
}

/// One cause with the catalogue's own field names, so the JSON reads back as a [`Cause`].
pub fn cause_json(cause: &Cause) -> Value {
    json!({
        "id": cause.id,
        "code": cause.code,
        "side": cause.side.to_string(),
        "kind": cause.kind.to_string(),
        "title": cause.title,
        "summary": cause.summary,
        "confirms": cause.confirms,
        "rules_out": cause.rules_out,
        "remediation": cause.remediation,
        "probes": cause.probes,
        "log_signals": cause.log_signals,
        "extension": cause.extension,
    })
}

/// docs/causes.md: the catalogue as Markdown, generated so the docs cannot drift from the data.
pub fn causes_markdown(cat: &Catalogue) -> String {
    let mut out = String::new();
    out.push_str("# Causes catalogue\n\n");
    out.push_str(
        "<!-- Generated from src/catalogue/causes.yaml by \
         lbprobe::report::catalogue::causes_markdown. Do not edit by hand: change the YAML, \
         then run `LBPROBE_BLESS=1 cargo test --lib catalogue` to regenerate. -->\n\n",
    );
    out.push_str(
        "Every error code lbprobe explains has a list of documented causes. Each cause has a \
         stable id `<code>.<slug>` that findings, reports and scenario `expect` blocks refer \
         to, and every code has a `<code>.passthrough`: the backend returned the code and the \
         listener passed it on.\n\n",
    );
    let _ = writeln!(
        out,
        "- **Side** `upstream`: {}. `listener`: {}.",
        side_meaning(Side::Upstream),
        side_meaning(Side::Listener)
    );
    let _ = writeln!(
        out,
        "- **Kind** `fault`: {}. `trigger`: {}.",
        kind_meaning(Kind::Fault),
        kind_meaning(Kind::Trigger)
    );
    out.push_str(
        "- **Probes** name the probe families that test the cause; `capture` and `logs` are \
         evidence a person gathers (a packet capture, the access log).\n\n",
    );

    out.push_str("## Index\n\n| id | side | kind | title |\n|---|---|---|---|\n");
    for cause in cat.causes() {
        let mut title = table_cell(&cause.title);
        if cause.extension {
            title.push_str(" (extension)");
        }
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} | {} |",
            cause.id,
            anchor(&cause.id),
            cause.side,
            cause.kind,
            title
        );
    }

    for code in cat.codes() {
        let _ = writeln!(out, "\n## {}", code_heading(code));
        for cause in cat.by_code(code) {
            out.push('\n');
            out.push_str(&cause_markdown(cause));
        }
    }
    out
}

fn cause_markdown(cause: &Cause) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### `{}`\n", cause.id);
    let _ = writeln!(out, "**{}**\n", cause.title);
    let probes: Vec<String> = cause.probes.iter().map(|p| format!("`{p}`")).collect();
    let _ = writeln!(
        out,
        "Side: **{}** ({}). Kind: **{}**. Probes: {}.\n",
        cause.side,
        side_meaning(cause.side),
        cause.kind,
        probes.join(", ")
    );
    if cause.extension {
        out.push_str("Extension: this cause is not on the reference page.\n\n");
    }
    let _ = writeln!(out, "{}\n", cause.summary.trim());
    let mut list = |heading: &str, items: &[String]| {
        let _ = writeln!(out, "{heading}:\n");
        for item in items {
            let _ = writeln!(out, "- {item}");
        }
        out.push('\n');
    };
    list(confirms_heading(cause.kind), &cause.confirms);
    list("Evidence that rules it out", &cause.rules_out);
    list("Fix", &cause.remediation);
    let _ = writeln!(out, "Log signals: {}", cause.log_signals);
    out
}

/// GitHub's heading anchor for a heading that is just the id in backticks.
fn anchor(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>()
        .to_ascii_lowercase()
}

fn table_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Prose is wrapped, so compare with all whitespace runs collapsed.
    fn squash(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn cause(id: &str) -> &'static Cause {
        Catalogue::builtin()
            .get(id)
            .unwrap_or_else(|| panic!("{id} in the builtin catalogue"))
    }

    #[test]
    fn table_lists_every_cause_once_under_its_code() {
        let text = causes_human(Catalogue::builtin(), false);
        for c in Catalogue::builtin().causes() {
            let rows: Vec<&str> = text
                .lines()
                .filter(|l| l.split_whitespace().next() == Some(c.id.as_str()))
                .collect();
            assert_eq!(rows.len(), 1, "{}: {rows:?}", c.id);
            assert!(rows[0].contains(&c.title), "{}", rows[0]);
            assert!(rows[0].contains(&c.kind.to_string()), "{}", rows[0]);
        }
        let headings: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
        assert_eq!(headings[0], "400 Bad Request");
        assert!(headings.contains(&"499 Client Closed Request"));
        let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(at("405 Method Not Allowed") < at("405.trace-unsupported"));
        assert!(at("405.trace-unsupported") < at("408 Request Timeout"));
        let count = format!("{} causes", Catalogue::builtin().causes().len());
        assert!(text.contains(&count), "{count} missing: {text}");
    }

    #[test]
    fn table_columns_line_up() {
        let text = causes_human(Catalogue::builtin(), false);
        let side_columns: Vec<usize> = text
            .lines()
            .filter(|l| l.starts_with("  "))
            .map(|l| {
                l.find(" upstream ")
                    .or_else(|| l.find(" listener "))
                    .unwrap_or_else(|| panic!("no side in {l:?}"))
            })
            .collect();
        assert!(side_columns.windows(2).all(|w| w[0] == w[1]), "{text}");
    }

    #[test]
    fn color_only_when_asked() {
        let plain = causes_human(Catalogue::builtin(), false);
        assert!(!plain.contains('\x1b'));
        let colored = causes_human(Catalogue::builtin(), true);
        let has = |text: &str, look: anstyle::Style| text.contains(&look.render().to_string());
        assert!(has(&colored, BOLD) && has(&colored, YELLOW) && has(&colored, CYAN));
        let one = cause("400.header-too-large");
        assert!(!cause_human(one, false).contains('\x1b'));
        assert!(has(&cause_human(one, true), CYAN));
    }

    #[test]
    fn extensions_are_marked() {
        let catalogue = Catalogue::builtin();
        let text = causes_human(catalogue, false);
        let row = text
            .lines()
            .find(|l| l.contains("502.keepalive-race"))
            .expect("extension row");
        assert!(row.ends_with("(extension)"), "{row}");
        let extensions: Vec<&str> = catalogue
            .causes()
            .iter()
            .filter(|c| c.extension)
            .map(|c| c.id.as_str())
            .collect();
        let marked = format!("{} marked (extension)", extensions.len());
        assert!(text.contains(&marked), "{marked} missing: {text}");
        // Exactly the extensions' rows carry the mark.
        let page_rows = text
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains("(extension)"))
            .filter(|l| !extensions.iter().any(|id| l.contains(id)));
        assert_eq!(page_rows.count(), 0, "{text}");
        let rows = text
            .lines()
            .filter(|l| l.starts_with("  ") && l.ends_with("(extension)"))
            .count();
        assert_eq!(rows, extensions.len(), "{text}");
        let detail = cause_human(cause("502.keepalive-race"), false);
        assert!(detail.contains("extension: not on the reference page"));
        assert!(!cause_human(cause("502.backend-unreachable"), false).contains("extension"));
        let markdown = causes_markdown(catalogue);
        assert!(markdown.contains("Extension: this cause is not on the reference page."));
    }

    #[test]
    fn detail_of_an_upstream_fault_says_everything() {
        let c = cause("502.mtu-mismatch");
        let text = cause_human(c, false);
        assert!(text.starts_with("502.mtu-mismatch\n"), "{text}");
        let flat = squash(&text);
        assert!(flat.contains("code 502 Bad Gateway"), "{flat}");
        assert!(
            flat.contains("side upstream — upstream_status shows the code: the backend said it"),
            "{flat}"
        );
        assert!(flat.contains("kind fault — something wrong in the setup"));
        assert!(flat.contains(&squash(&c.summary)));
        assert!(flat.contains("Evidence that confirms it"));
        for item in c.confirms.iter().chain(&c.rules_out).chain(&c.remediation) {
            assert!(flat.contains(&format!("- {}", squash(item))), "{item}");
        }
        assert!(flat.contains(&c.probes.join(", ")));
        assert!(flat.contains(&squash(&c.log_signals)));
    }

    #[test]
    fn detail_of_a_listener_trigger_talks_of_reproducing() {
        let text = cause_human(cause("405.trace-unsupported"), false);
        let flat = squash(&text);
        assert!(
            flat.contains("side listener — only status shows it"),
            "{flat}"
        );
        assert!(flat.contains("kind trigger — a kind of request"), "{flat}");
        assert!(flat.contains("Evidence that reproduces it"), "{flat}");
        assert!(!flat.contains("Evidence that confirms it"), "{flat}");
    }

    #[test]
    fn wrap_keeps_every_word_and_the_width() {
        let text = "word ".repeat(100);
        let wrapped = wrap(&text, "  - ", "    ");
        assert!(wrapped.lines().all(|l| l.chars().count() <= WRAP));
        assert_eq!(squash(&wrapped), format!("- {}", squash(&text)));
        assert!(wrapped.lines().skip(1).all(|l| l.starts_with("    word")));
    }

    #[test]
    fn json_reads_back_as_the_catalogue() {
        let value = causes_json(Catalogue::builtin());
        let back: Catalogue = serde_json::from_value(value).expect("catalogue from JSON");
        assert_eq!(&back, Catalogue::builtin());
        let one = cause("504.connect-timeout");
        let value = cause_json(one);
        assert_eq!(value["side"], "listener");
        assert_eq!(value["kind"], "fault");
        assert_eq!(value["code"], 504);
        assert_eq!(value["extension"], false);
        let back: Cause = serde_json::from_value(value).expect("cause from JSON");
        assert_eq!(&back, one);
    }

    #[test]
    fn markdown_has_a_section_and_an_index_row_per_cause() {
        let text = causes_markdown(Catalogue::builtin());
        for c in Catalogue::builtin().causes() {
            assert_eq!(
                text.matches(&format!("\n### `{}`\n", c.id)).count(),
                1,
                "{}",
                c.id
            );
            assert!(
                text.contains(&format!("| [`{}`](#{}) |", c.id, anchor(&c.id))),
                "{}",
                c.id
            );
        }
        assert!(text.contains("\n## 503 Service Unavailable\n"));
        assert_eq!(
            anchor("400.backend-expects-https"),
            "400backend-expects-https"
        );
    }

    /// docs/causes.md is generated; this keeps it from drifting from causes.yaml.
    #[test]
    fn docs_causes_md_matches_the_catalogue() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/causes.md");
        let generated = causes_markdown(Catalogue::builtin());
        if std::env::var("LBPROBE_BLESS").as_deref() == Ok("1") {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).expect("create docs/");
            }
            std::fs::write(&path, &generated).expect("write docs/causes.md");
        }
        let regenerate = "Regenerate it with: LBPROBE_BLESS=1 cargo test --lib catalogue";
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}. {regenerate}", path.display()));
        if on_disk != generated {
            let first_difference = on_disk
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| on_disk.lines().count().min(generated.lines().count()));
            panic!(
                "docs/causes.md is out of date with src/catalogue/causes.yaml (first difference \
                 at line {}). {regenerate}",
                first_difference + 1
            );
        }
    }
}
