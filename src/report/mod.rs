//! Reports: one module per output format over one model. The only place that writes to stdout.

pub mod catalogue;
pub mod curl;
pub mod dry_run;
pub mod fold;
pub mod host;
pub mod human;
pub mod junit;
pub mod lab;
pub mod logs;
pub mod markdown;
pub mod model;
pub mod probes;
pub mod progress;
pub mod prometheus;
pub mod replay;
pub mod schema;
pub mod serve;
pub mod shell;
pub mod sql_result;
pub mod style;
pub mod timing;

use std::io::Write;
use std::path::Path;

pub use model::{ExpectationResult, LimitExpectationResult, Report, Summary};
pub use style::Style;

/// Output formats every command takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    /// JUnit XML for CI systems (reports of runs only).
    Junit,
    /// Markdown for a pull-request comment or an issue (reports of runs only).
    Markdown,
    /// A shell script of curl commands, one per planned request (`--dry-run` only).
    Curl,
    /// Prometheus metrics (reports of runs, and `backend`'s).
    Prometheus,
}

/// When to color human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Color only for a terminal, never with NO_COLOR set or when writing to a file; wrapped to the
/// terminal's width, or to a fixed one for files and pipes.
pub fn style_for(choice: ColorChoice, to_file: bool, verbose: bool) -> Style {
    let stdout = std::io::stdout();
    let color = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !to_file && style::auto_color(&stdout),
    };
    let width = if to_file {
        style::DEFAULT_WIDTH
    } else {
        style::width_of(&stdout)
    };
    Style {
        color,
        width,
        verbose,
    }
}

pub fn render(report: &Report, format: Format, style: Style) -> String {
    match format {
        Format::Human => human::render(report, style),
        Format::Json => to_json(report),
        Format::Junit => junit::render(report),
        Format::Markdown => markdown::render(report, style.verbose),
        Format::Curl => curl::render_run(report),
        Format::Prometheus => prometheus::probe(report),
    }
}

/// Pretty JSON with a trailing newline.
pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    let mut s =
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// Write rendered output to `--output FILE` or stdout.
pub fn emit(text: &str, output: Option<&Path>) -> std::io::Result<()> {
    match output {
        Some(path) => std::fs::write(path, text),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()
        }
    }
}

/// Write `text` to `path` whole or not at all: a temporary file beside it, then renamed over
/// it, so a reader (node_exporter's textfile collector) never sees half a file. Readable by
/// everyone, as the collector usually runs as another user.
pub fn emit_atomic(text: &str, path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".lbprobe-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A message for the person at the terminal (errors, skipped work), on stderr.
pub fn warn(text: &str) {
    eprintln!("lbprobe: {text}");
}
