//! Access logs: `lbprobe logs` reads nginx, HAProxy or the load balancer's JSON export, and says
//! which documented cause each error line shows, with counts, shares, top URIs and clients, and
//! when it started. Streaming in bounded memory; a file is split at line boundaries and its
//! chunks are read in parallel.

/// A `&'static Either` of two or more cause ids and what tells them apart.
macro_rules! either {
    ($tell:expr; $first:literal $(, $rest:literal)+ $(,)?) => {{
        const E: $crate::logs::classify::Either = $crate::logs::classify::Either {
            id: concat!($first $(, " or ", $rest)+),
            causes: &[$first $(, $rest)+],
            tell: $tell,
        };
        &E
    }};
}

pub mod classify;
pub mod errorlog;
pub mod format;
pub mod haproxy;
pub mod json;
pub mod probe_line;
pub mod reader;
pub mod record;
pub mod rules;
mod scan;
pub mod sql;
pub mod summary;

use std::path::PathBuf;
use std::sync::Arc;

use classify::{Classification, Facts, Timeouts};
use errorlog::ErrorIndex;
use format::{FormatError, NginxFormat};
use record::Record;
use summary::{BadLine, Summary};

/// Why a line did not parse: where (0-based byte) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub column: usize,
    pub message: String,
}

impl LineError {
    pub fn new(column: usize, message: String) -> LineError {
        LineError { column, message }
    }
}

/// The formats `--log-format` names, besides a `log_format` string given as is.
pub const FORMAT_NAMES: &[(&str, &str)] = &[
    ("combined", "nginx's predefined combined format (no upstream fields)"),
    ("upstream", "combined plus $request_length $request_time $upstream_addr $upstream_status $upstream_response_time $upstream_connect_time $upstream_header_time"),
    ("lab", "the key=value format of lbprobe's own nginx lab"),
    ("json", "the load balancer's JSON export, one object per line"),
    ("haproxy", "HAProxy's default HTTP log (option httplog)"),
];

/// The named format, other than `tried`, in which most of `lines` parse (a log has its broken
/// lines too): what to suggest when a log is read with the wrong `--log-format`. On a tie the
/// more specific format wins (an `upstream` line is a `combined` line with more fields).
pub fn parses_as(lines: &[Vec<u8>], tried: &LogFormat) -> Option<&'static str> {
    let mut best: Option<(&'static str, usize)> = None;
    for name in ["upstream", "combined", "lab", "haproxy", "json"] {
        let Ok(format) = LogFormat::parse(name) else {
            continue;
        };
        if format.name() == tried.name() {
            continue;
        }
        let parsed = lines
            .iter()
            .filter(|l| {
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                format.parse_line(l, false).is_ok()
            })
            .count();
        if parsed * 2 > lines.len() && best.is_none_or(|(_, n)| parsed > n) {
            best = Some((name, parsed));
        }
    }
    best.map(|(name, _)| name)
}

/// A log format, compiled.
#[derive(Debug, Clone)]
pub enum LogFormat {
    Nginx { name: String, format: NginxFormat },
    Json,
    Haproxy,
}

impl LogFormat {
    /// A name of [`FORMAT_NAMES`], or an nginx `log_format` string (anything with a `$`).
    pub fn parse(arg: &str) -> Result<LogFormat, LogsError> {
        let nginx = |name: &str, source: &str| -> Result<LogFormat, LogsError> {
            Ok(LogFormat::Nginx {
                name: name.to_string(),
                format: NginxFormat::compile(source).map_err(LogsError::Format)?,
            })
        };
        match arg {
            "combined" => nginx("combined", format::COMBINED),
            "upstream" => nginx("upstream", format::COMBINED_UPSTREAM),
            "lab" => nginx("lab", crate::lab::ACCESS_LOG_FORMAT),
            "json" => Ok(LogFormat::Json),
            "haproxy" => Ok(LogFormat::Haproxy),
            s if s.contains('$') => nginx("nginx log_format", s),
            other => Err(LogsError::UnknownFormat(other.to_string())),
        }
    }

    /// The profile `--profile auto` picks for lines in this format (whose timeouts they are
    /// compared with), and why.
    pub fn listener(&self) -> (&'static str, String) {
        match self {
            LogFormat::Nginx { .. } => ("nginx", format!("the log is in {}", self.name())),
            LogFormat::Haproxy => ("haproxy", "the log is HAProxy's HTTP log".into()),
            LogFormat::Json => ("clb", "the log is the load balancer's JSON export".into()),
        }
    }

    pub fn name(&self) -> String {
        match self {
            LogFormat::Nginx { name, format } if name == "nginx log_format" => {
                format!("nginx log_format '{}'", format.source())
            }
            LogFormat::Nginx { name, .. } => format!("nginx {name}"),
            LogFormat::Json => "JSON export".into(),
            LogFormat::Haproxy => "HAProxy HTTP log".into(),
        }
    }

    /// Parse one line (without its newline); `fast` may stop after a status below 400.
    pub fn parse_line<'a>(&self, line: &'a [u8], fast: bool) -> Result<Record<'a>, LineError> {
        match self {
            LogFormat::Nginx { format, .. } => format.parse(line, fast),
            LogFormat::Json => json::parse(line, fast),
            LogFormat::Haproxy => haproxy::parse(line, fast),
        }
    }

    /// Every field of the line by name, for `--explain-line`.
    pub fn fields<'a>(&self, line: &'a [u8]) -> Result<Vec<(String, &'a [u8])>, LineError> {
        match self {
            LogFormat::Nginx { format, .. } => format.fields(line),
            LogFormat::Json => json::fields(line),
            LogFormat::Haproxy => haproxy::fields(line),
        }
    }
}

/// An input: a file (plain or gzip) or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn from_arg(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::File(arg.into())
        }
    }

    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".into(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

/// What `lbprobe logs` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub format: LogFormat,
    pub profile: String,
    pub timeouts: Timeouts,
    /// Worker threads for plain files (1: all in the calling thread).
    pub threads: usize,
    /// nginx's error.log, read: its reasons settle error lines the access log cannot.
    pub errors: Option<Arc<ErrorIndex>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("--log-format: {0}")]
    Format(FormatError),
    #[error("--log-format {0:?}: not a format name (combined, upstream, lab, json, haproxy) nor an nginx log_format string (it has no $variable)")]
    UnknownFormat(String),
    #[error("cannot read {input}: {source}")]
    Read {
        input: String,
        source: std::io::Error,
    },
    #[error("{input} does not look like the {format} format: {bad} of its first {lines} {verb} not parse; first: line {line}: {reason} (column {column}): {text:?}{hint}", lines = crate::plural::count(*sampled, "line"), verb = if *bad == 1 { "does" } else { "do" }, line = first.line, reason = first.reason, column = first.column, text = first.text, hint = parses_as.map(|name| format!("; these lines parse as `{name}`: try --log-format {name}")).unwrap_or_default())]
    NotThisFormat {
        input: String,
        format: String,
        bad: u64,
        sampled: u64,
        first: Box<BadLine>,
        /// The named format the lines that did not parse do parse in, when one does.
        parses_as: Option<&'static str>,
    },
    #[error(transparent)]
    Sql(#[from] sql::SqlError),
    #[error(transparent)]
    SqlResult(#[from] crate::report::sql_result::SqlResultError),
    #[error("--error-log reads nginx's error.log; {format} lines are not nginx's (HAProxy says why in its termination state)")]
    ErrorLogNotNginx { format: String },
    #[error("{input} has {lines} lines; there is no line {wanted}")]
    NoSuchLine {
        input: String,
        wanted: u64,
        lines: u64,
    },
}

/// Lines of each input checked against the format before the rest is trusted to it.
pub const SAMPLE_LINES: u64 = 100;

impl Options {
    /// Count a block of whole lines (each ending in `\n`, the last one maybe not) into `acc`;
    /// their numbers follow the lines `acc` has counted. Where the format has a quote anchor,
    /// one memchr pass over the block finds both the line ends and each line's status.
    pub fn block(&self, input: &str, block: &[u8], acc: &mut Summary) {
        let anchored = match &self.format {
            LogFormat::Nginx { format, .. } => format.anchor_quotes().map(|q| (format, q)),
            _ => None,
        };
        let Some((format, quotes_needed)) = anchored else {
            for line in block.split_inclusive(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                self.line(input, acc.lines + 1, line, acc);
            }
            return;
        };
        // Every line counts its length and its newline (the last one too, if it has none): all
        // of them at once here, not per line.
        acc.bytes += block.len() as u64 + u64::from(block.last().is_some_and(|&b| b != b'\n'));
        // The closure stays small (the error and unanchored lines are calls), so the scan
        // inlines it.
        scan::lines_with_anchor(block, quotes_needed, |start, end, anchor| {
            let line = &block[start..end];
            acc.lines += 1;
            let status = anchor.and_then(|at| format.status_after_anchor(line, at - start));
            match status {
                Some(s) if s < 400 => acc.status[usize::from(s)] += 1,
                // An error line: straight to the full parse, not through the fast paths again.
                Some(_) => self.placed_error_line(input, line, acc),
                None => self.unplaced_line(input, line, acc),
            }
        });
    }

    /// An error line the block scan placed, counted already.
    #[cold]
    #[inline(never)]
    fn placed_error_line(&self, input: &str, line: &[u8], acc: &mut Summary) {
        let n = acc.lines;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.error_or_bad(input, n, line, acc);
    }

    /// A line the block scan found no status in (blank, damaged, an unusual quote), counted
    /// already: the line-by-line path says what it is.
    #[cold]
    #[inline(never)]
    fn unplaced_line(&self, input: &str, line: &[u8], acc: &mut Summary) {
        self.uncounted_line(input, acc.lines, line, acc);
    }

    /// Count one line (1-based number `n` within the current chunk) into `acc`.
    #[inline]
    pub fn line(&self, input: &str, n: u64, line: &[u8], acc: &mut Summary) {
        acc.lines += 1;
        acc.bytes += line.len() as u64 + 1;
        self.uncounted_line(input, n, line, acc);
    }

    /// [`line`](Self::line) for a line whose number and bytes are counted already.
    #[inline]
    fn uncounted_line(&self, input: &str, n: u64, line: &[u8], acc: &mut Summary) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            acc.blank += 1;
            return;
        }
        if let LogFormat::Nginx { format, .. } = &self.format {
            let status = format
                .status_by_anchor(line)
                .or_else(|| format.status(line));
            match status {
                Some(status) if status < 400 => {
                    acc.status[usize::from(status)] += 1;
                    return;
                }
                // An error line, or one that does not parse up to its status: only the full
                // parse can tell what it shows or why it is bad.
                _ => return self.error_or_bad(input, n, line, acc),
            }
        }
        match self.format.parse_line(line, true) {
            Err(e) => acc.bad_line(input, n, line, e),
            Ok(rec) if rec.status < 400 => acc.status[usize::from(rec.status)] += 1,
            Ok(_) => self.error_or_bad(input, n, line, acc),
        }
    }

    /// The full parse and the classification of a line the fast path could not count.
    #[cold]
    fn error_or_bad(&self, input: &str, n: u64, line: &[u8], acc: &mut Summary) {
        match self.format.parse_line(line, false) {
            Err(e) => acc.bad_line(input, n, line, e),
            Ok(rec) => {
                acc.status[usize::from(rec.status)] += 1;
                if rec.status >= 400 {
                    // Filled in place: no copy of the Facts in and out of the summary.
                    acc.scratch.fill(&rec);
                    let mut undecided_alone = false;
                    if let Some(errors) = &self.errors {
                        // What the access log alone says, to count the lines the error.log
                        // settles.
                        undecided_alone = classify::classify(&acc.scratch, &self.timeouts)
                            .either
                            .is_some();
                        acc.scratch.join(errors.join(&rec, rec.status));
                    }
                    let c = classify::classify(&acc.scratch, &self.timeouts);
                    if undecided_alone && c.either.is_none() {
                        acc.settled += 1;
                    }
                    acc.scratch_error_line(n, &rec, c);
                }
            }
        }
    }
}

/// Read nginx's error.log (plain or gzip) for the reasons of its requests.
pub fn read_error_log(input: &Input, format: &LogFormat) -> Result<ErrorIndex, LogsError> {
    if !matches!(format, LogFormat::Nginx { .. }) {
        return Err(LogsError::ErrorLogNotNginx {
            format: format.name(),
        });
    }
    let mut index = ErrorIndex::new(input.name());
    reader::each_line_of(input, |line| {
        index.add_line(line.unwrap_or(b""));
        true
    })?;
    index.finish();
    Ok(index)
}

/// Read every input and summarise what its error lines show.
pub fn analyze(inputs: &[Input], opts: &Options) -> Result<Summary, LogsError> {
    let mut total = Summary::default();
    for input in inputs {
        total.merge(reader::read_input(input, opts)?);
    }
    total.finish();
    Ok(total)
}

/// One line, parsed and classified, with the reasoning.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub input: String,
    pub line: u64,
    pub text: String,
    pub format: String,
    pub fields: Result<Vec<(String, String)>, LineError>,
    pub facts: Option<Facts>,
    pub classification: Option<Classification>,
}

/// Parse and classify line `n` (1-based) of `input`, saying why.
pub fn explain_line(input: &Input, n: u64, opts: &Options) -> Result<Explanation, LogsError> {
    let text = reader::nth_line(input, n)?;
    let line = text.strip_suffix(b"\r").unwrap_or(&text);
    let fields = opts.format.fields(line).map(|v| {
        v.into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(v).into_owned()))
            .collect()
    });
    let (facts, classification) = match opts.format.parse_line(line, false) {
        Ok(rec) => {
            let mut f = Facts::of(&rec);
            if let Some(errors) = &opts.errors {
                f.join(errors.join(&rec, rec.status));
            }
            let c = classify::classify(&f, &opts.timeouts);
            (Some(f), Some(c))
        }
        Err(_) => (None, None),
    };
    Ok(Explanation {
        input: input.name(),
        line: n,
        text: String::from_utf8_lossy(line).into_owned(),
        format: opts.format.name(),
        fields,
        facts,
        classification,
    })
}
