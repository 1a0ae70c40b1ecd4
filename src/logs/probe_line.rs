//! Each probe's own line in the listener's access log (`scan|run --access-log FILE`): a marked
//! run's requests carry `X-Lbprobe-Id: <run>-<n>`, or `lbprobe-id=<run>-<n>` in the query
//! string for a log format that logs the request line but no header ([`place_for`]); a listener
//! whose log format writes either leaves the token in the line it logs for the probe. After the run the log is read
//! (while it may still be appended to, or a copy made after the fact), each line holding one of
//! the run's tokens is parsed with the log format, and what the listener logged goes with the
//! observation. The token is searched in the raw line bytes, so it is found whatever field
//! logs it (nginx's `"$http_x_lbprobe_id"`, HAProxy's `{…}` captures).
//!
//! Reading is bounded: at most [`AccessLog::max_bytes`] bytes, and at most [`AccessLog::wait`]
//! after the run for lines not written yet.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::probe::Observation;
use crate::target::Role;
use crate::transport::marker::MarkerPlace;
use crate::transport::mask::MARKER_HEADER;

use super::record::{is_dash, last_upstream, parse_number, split_upstream, Record};
use super::{LogFormat, LogsError};

/// The nginx `log_format` `--access-log` reads by default: nginx's `combined`, the upstream
/// fields the classifier reads, and the marker header last.
pub const PROBE_FORMAT: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status \
     $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_length $request_time \
     $upstream_addr $upstream_status $upstream_response_time $upstream_connect_time \
     $upstream_header_time \"$http_x_lbprobe_id\"";

/// The name `--log-format` gives [`PROBE_FORMAT`] (the default of `--access-log`).
pub const PROBE_FORMAT_NAME: &str = "probe";

/// The nginx.conf line that logs the marker in [`PROBE_FORMAT`].
pub fn nginx_log_format_line() -> String {
    format!("log_format lbprobe '{PROBE_FORMAT}';")
}

/// The HAProxy line that puts the marker into its HTTP log, in `{…}` before the request.
pub const HAPROXY_CAPTURE_LINE: &str = "http-request capture req.hdr(X-Lbprobe-Id) len 64";

/// Waiting for lines the listener has not written yet stops after this, by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);
/// At most this much of the log is read (the end of it, when it is larger).
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// How often a log that has no new bytes is looked at again while lines are missing.
const POLL: Duration = Duration::from_millis(50);

/// What the listener logged for one probe. `None`: the format has no such field, or it logged
/// `-` there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedLine {
    /// The marker value found in the line (`<run>-<n>`).
    pub marker: String,
    /// The line's number (from 1) counted from where reading started: the log's end when the
    /// run started, or its start for a copy read after the fact (its last
    /// [`AccessLog::max_bytes`] when it is larger).
    pub line: u64,
    /// The status it logged; 0 for HAProxy's `-1` (no answer sent).
    pub status: u16,
    /// The statuses of every backend tried (nginx's `$upstream_status`, in order); empty when
    /// it logged `-` (no backend answered); `None` when the format has no such field.
    pub upstream_status: Option<Vec<u16>>,
    /// Seconds from the first byte of the request to the log line (nginx's `$request_time`,
    /// HAProxy's Ta).
    pub request_time_s: Option<f64>,
    /// Seconds the last backend tried took to answer (`$upstream_response_time`'s last value,
    /// HAProxy's Tr).
    pub upstream_response_time_s: Option<f64>,
    /// Seconds to connect to the last backend tried (`$upstream_connect_time`, HAProxy's Tc).
    pub upstream_connect_time_s: Option<f64>,
    /// HAProxy's two-letter termination state (`cR`, `CH`, `sH`, `--`).
    pub termination: Option<String>,
}

/// Seconds from a log's number in its unit, to the microsecond (HAProxy's milliseconds
/// times 0.001 would print as 2.0020000000000002).
fn in_seconds(n: f64, scale: f64) -> f64 {
    (n * scale * 1e6).round() / 1e6
}

impl LoggedLine {
    /// `upstream_status 502, 504` as logged (`-` when no backend answered); `None` when the
    /// format has no such field.
    pub fn upstream_status_text(&self) -> Option<String> {
        let up = self.upstream_status.as_ref()?;
        let list: Vec<String> = up.iter().map(u16::to_string).collect();
        Some(format!(
            "upstream_status {}",
            if list.is_empty() {
                "-".to_string()
            } else {
                list.join(", ")
            }
        ))
    }

    /// What the listener logged, in words: `status 400, upstream_status -, request_time
    /// 1.002 s`; fields the format does not have are left out.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("status {}", self.status)];
        parts.extend(self.upstream_status_text());
        let secs = |name: &str, v: Option<f64>| v.map(|v| format!("{name} {v:.3} s"));
        parts.extend(secs("request_time", self.request_time_s));
        parts.extend(secs(
            "upstream_response_time",
            self.upstream_response_time_s,
        ));
        if let Some(t) = &self.termination {
            parts.push(format!("termination state {t}"));
        }
        parts.join(", ")
    }

    fn of(marker: &str, line: u64, rec: &Record<'_>) -> LoggedLine {
        let seconds = |v: Option<&[u8]>| {
            let v = v?;
            let last = last_upstream(v)?;
            (!is_dash(last))
                .then(|| parse_number(last))
                .flatten()
                .map(|n| in_seconds(n, rec.time_scale))
        };
        LoggedLine {
            marker: marker.to_string(),
            line,
            status: rec.status,
            upstream_status: rec.upstream_status.map(|v| {
                split_upstream(v)
                    .filter_map(|s| std::str::from_utf8(s).ok()?.parse().ok())
                    .collect()
            }),
            request_time_s: rec
                .request_time
                .and_then(parse_number)
                .map(|n| in_seconds(n, rec.time_scale)),
            upstream_response_time_s: seconds(rec.upstream_response_time),
            upstream_connect_time_s: seconds(rec.upstream_connect_time),
            termination: rec
                .termination
                .map(|t| String::from_utf8_lossy(&t).into_owned()),
        }
    }
}

/// Whether a log format can carry the marker at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    /// The nginx format logs `$http_x_lbprobe_id`.
    Yes,
    /// Only the listener's configuration says (HAProxy's captures): search, and say what to
    /// add when nothing is found.
    IfConfigured,
    /// The format has no field that holds it: nothing to search for.
    No,
}

/// Whether an nginx log_format logs one of these variables (`$name` or `${name}`).
fn logs_variable(source: &str, names: &[&str]) -> bool {
    let source = source.to_ascii_lowercase();
    names.iter().any(|name| {
        let braced = format!("${{{name}}}");
        let plain = format!("${name}");
        source.contains(&braced)
            || source.match_indices(&plain).any(|(at, m)| {
                // `$http_x_lbprobe_idx` is another variable.
                !source[at + m.len()..]
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
    })
}

/// Whether `format` logs the marker where the run puts it: the header's own field, or the
/// request line (or URI, or query) for the query-string marker.
pub fn carries(format: &LogFormat, place: MarkerPlace) -> Carries {
    match (format, place) {
        (LogFormat::Nginx { format, .. }, place) => {
            let names: &[&str] = match place {
                MarkerPlace::Header => &["http_x_lbprobe_id"],
                MarkerPlace::Query => &["request", "request_uri", "args", "query_string"],
            };
            if logs_variable(format.source(), names) {
                Carries::Yes
            } else {
                Carries::No
            }
        }
        (LogFormat::Haproxy, MarkerPlace::Header) => Carries::IfConfigured,
        // `option httplog` logs the request line.
        (LogFormat::Haproxy, MarkerPlace::Query) => Carries::Yes,
        (LogFormat::Json, MarkerPlace::Header) => Carries::No,
        // The export's `request_uri` holds the query.
        (LogFormat::Json, MarkerPlace::Query) => Carries::Yes,
    }
}

/// Where a run reading this log should put its marker: the header where the format logs it
/// (or may: HAProxy's captures), else the query string where the format logs the request line.
pub fn place_for(format: &LogFormat) -> MarkerPlace {
    match (
        carries(format, MarkerPlace::Header),
        carries(format, MarkerPlace::Query),
    ) {
        (Carries::No, Carries::Yes) => MarkerPlace::Query,
        _ => MarkerPlace::Header,
    }
}

/// What to add to the listener's configuration so its log carries the marker.
pub fn how_to_log_marker(format: &LogFormat, place: MarkerPlace) -> String {
    if place == MarkerPlace::Query {
        return match format {
            LogFormat::Nginx { .. } => "add \"$request\" (or $request_uri) to the listener's log_format, as nginx's combined format has it".to_string(),
            LogFormat::Haproxy => "log with `option httplog`, which writes the request line".to_string(),
            LogFormat::Json => "the export's request_uri field holds the query".to_string(),
        };
    }
    match format {
        LogFormat::Nginx { .. } => format!(
            "add \"$http_x_lbprobe_id\" to the listener's log_format, for example: {}",
            nginx_log_format_line()
        ),
        LogFormat::Haproxy => format!(
            "add `{HAPROXY_CAPTURE_LINE}` to the HAProxy frontend (with `option httplog`): the captured header appears in {{…}} before the request in each line"
        ),
        LogFormat::Json => {
            "the load balancer's JSON export has no field for request headers: it cannot carry the marker".to_string()
        }
    }
}

/// `--access-log FILE [--log-format F] [--access-log-wait S]`.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pub path: PathBuf,
    pub format: LogFormat,
    /// How long to wait after the run for lines not written yet.
    pub wait: Duration,
    /// The most bytes read.
    pub max_bytes: u64,
    /// Where the run puts the marker this log is searched for.
    pub place: MarkerPlace,
}

/// Where the log ended when the run started: lines before it are not the run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartMark {
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl StartMark {
    fn of(path: &Path) -> Option<StartMark> {
        let meta = std::fs::metadata(path).ok()?;
        Some(StartMark {
            len: meta.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
        })
    }

    /// The same file, not shorter: it was appended to, not replaced or rotated.
    fn same_file(&self, now: &StartMark) -> bool {
        #[cfg(unix)]
        if self.inode != now.inode {
            return false;
        }
        now.len >= self.len
    }
}

/// What reading the log found.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// By marker value.
    pub lines: BTreeMap<String, LoggedLine>,
    /// Bytes read.
    pub bytes_read: u64,
    /// Lines holding one of the markers that did not parse in the format (then not attached).
    pub unparsed: u64,
    /// Reading stopped at the byte bound before every line was found.
    pub bounded: bool,
}

impl AccessLog {
    pub fn new(path: PathBuf, format: LogFormat) -> AccessLog {
        AccessLog {
            path,
            format,
            wait: DEFAULT_WAIT,
            max_bytes: DEFAULT_MAX_BYTES,
            place: MarkerPlace::Header,
        }
    }

    /// `--log-format`'s value: [`PROBE_FORMAT_NAME`] or what `lbprobe logs` takes.
    pub fn format_named(arg: &str) -> Result<LogFormat, LogsError> {
        if arg == PROBE_FORMAT_NAME {
            return LogFormat::parse(PROBE_FORMAT);
        }
        LogFormat::parse(arg)
    }

    /// Where the log ends now; `None` when there is no file yet.
    pub fn start(&self) -> Option<StartMark> {
        StartMark::of(&self.path)
    }

    /// Read the log for `markers`' lines: from where it ended at `start` when it is the same
    /// file, else its last [`AccessLog::max_bytes`]; while some are missing, wait for more
    /// lines up to [`AccessLog::wait`]. Blocking.
    pub fn find(&self, start: Option<StartMark>, markers: &[String]) -> Result<Lookup, LogsError> {
        let read_err = |source| LogsError::Read {
            input: self.path.display().to_string(),
            source,
        };
        let mut lookup = Lookup::default();
        let wanted: BTreeSet<&str> = markers.iter().map(String::as_str).collect();
        if wanted.is_empty() || carries(&self.format, self.place) == Carries::No {
            return Ok(lookup);
        }
        let runs: BTreeSet<&str> = wanted
            .iter()
            .filter_map(|m| m.rsplit_once('-').map(|(run, _)| run))
            .collect();
        let deadline = Instant::now() + self.wait;
        // The file may appear only after the run (a copy): wait for it as for its lines.
        let mut file = loop {
            match File::open(&self.path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && Instant::now() < deadline => {
                    std::thread::sleep(POLL)
                }
                Err(e) => return Err(read_err(e)),
            }
        };
        let now = file.metadata().map_err(read_err)?;
        let now = StartMark {
            len: now.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&now),
        };
        let offset = match start {
            // Lines before the run's start are not the run's; counting them would read the
            // whole file again: numbers count from there.
            Some(s) if s.same_file(&now) && now.len - s.len <= self.max_bytes => s.len,
            _ => now.len.saturating_sub(self.max_bytes),
        };
        let mut line_no = 0;
        // Reading from inside a line: its end is not a line of its own.
        let mut skip_partial = false;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset - 1)).map_err(read_err)?;
            let mut before = [0u8; 1];
            file.read_exact(&mut before).map_err(read_err)?;
            skip_partial = before[0] != b'\n';
        }
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut chunk).map_err(read_err)?;
            if n > 0 {
                lookup.bytes_read += n as u64;
                pending.extend_from_slice(&chunk[..n]);
                let mut consumed = 0;
                while let Some(lf) = memchr::memchr(b'\n', &pending[consumed..]) {
                    let line = &pending[consumed..consumed + lf];
                    consumed += lf + 1;
                    if std::mem::take(&mut skip_partial) {
                        continue;
                    }
                    line_no += 1;
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    self.take_line(line, line_no, &runs, &wanted, &mut lookup);
                }
                pending.drain(..consumed);
                if lookup.lines.len() == wanted.len() {
                    break;
                }
                if lookup.bytes_read >= self.max_bytes {
                    lookup.bounded = true;
                    break;
                }
                continue;
            }
            if lookup.lines.len() == wanted.len() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(POLL);
        }
        // A last line without its newline yet: complete as far as it goes.
        if !pending.is_empty() && !skip_partial {
            self.take_line(&pending, line_no + 1, &runs, &wanted, &mut lookup);
        }
        Ok(lookup)
    }

    fn take_line(
        &self,
        line: &[u8],
        line_no: u64,
        runs: &BTreeSet<&str>,
        wanted: &BTreeSet<&str>,
        lookup: &mut Lookup,
    ) {
        for marker in markers_in(line, runs) {
            if !wanted.contains(marker.as_str()) || lookup.lines.contains_key(&marker) {
                continue;
            }
            match self.format.parse_line(line, false) {
                Ok(rec) => {
                    lookup
                        .lines
                        .insert(marker.clone(), LoggedLine::of(&marker, line_no, &rec));
                }
                Err(_) => lookup.unparsed += 1,
            }
        }
    }
}

/// The marker an observation's request carried, from its recorded bytes.
pub fn marker_of(o: &Observation) -> Option<String> {
    let bytes = crate::transport::unescape_bytes(&o.request.text).ok()?;
    crate::host::capture::find_marker(&bytes)
}

/// The listener's probes that carried a marker: the ones whose line the log can hold.
pub fn wanted(observations: &[Observation]) -> Vec<String> {
    observations
        .iter()
        .filter(|o| o.role == Role::Listener)
        .filter_map(marker_of)
        .collect()
}

/// Attach what `lookup` found to the observations whose marker it holds, and say in notes what
/// was and was not found, and what to add where the log cannot carry the marker.
pub fn attach(log: &AccessLog, lookup: &Lookup, observations: &mut [Observation]) -> Vec<String> {
    let file = log.path.display();
    let mut notes = Vec::new();
    let mut missing = Vec::new();
    let mut marked = 0;
    for o in observations.iter_mut().filter(|o| o.role == Role::Listener) {
        let Some(marker) = marker_of(o) else {
            continue;
        };
        marked += 1;
        match lookup.lines.get(&marker) {
            Some(line) => o.logged = Some(line.clone()),
            None => missing.push(format!("{} {}", o.family.as_str(), o.variant)),
        }
    }
    if marked == 0 {
        notes.push(format!(
            "--access-log {file}: no request to the listener carried the marker, so no line was looked for"
        ));
        return notes;
    }
    let format = log.format.name();
    if carries(&log.format, log.place) == Carries::No {
        let field = match log.place {
            MarkerPlace::Header => format!("the {MARKER_HEADER} header"),
            MarkerPlace::Query => "the request's query string".to_string(),
        };
        notes.push(format!(
            "--access-log {file}: the {format} format has no field that holds {field}, so no probe's line can be told from another's and none was attached; {}",
            how_to_log_marker(&log.format, log.place)
        ));
        return notes;
    }
    let found = marked - missing.len();
    let mut text = format!(
        "--access-log {file}: found the listener's own line for {found} of {} ({} of the log read)",
        crate::plural::count(marked, "marked probe"),
        bytes(lookup.bytes_read),
    );
    if !missing.is_empty() {
        const SHOWN: usize = 6;
        let more = missing.len().saturating_sub(SHOWN);
        missing.truncate(SHOWN);
        text.push_str(&format!(
            "; none within {:.1} s after the run for {}{}",
            log.wait.as_secs_f64(),
            missing.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if lookup.unparsed > 0 {
        text.push_str(&format!(
            "; {} with a marker did not parse as {format} and {} not attached",
            crate::plural::count(lookup.unparsed as usize, "line"),
            if lookup.unparsed == 1 { "was" } else { "were" }
        ));
    }
    if lookup.bounded {
        text.push_str(&format!(
            "; reading stopped at its bound of {}",
            bytes(log.max_bytes)
        ));
    }
    notes.push(text);
    if matches!(log.format, LogFormat::Haproxy)
        && observations.iter().any(|o| {
            o.role == Role::Listener
                && o.logged.is_none()
                && o.family == crate::probe::Family::Partial
                && marker_of(o).is_some()
                && matches!(
                    o.variant.as_str(),
                    crate::probe::partial::HEADERS_PARTIAL | crate::probe::partial::CLOSE_EARLY
                )
        })
    {
        notes.push(format!(
            "--access-log {file}: HAProxy captures a header only once a request's head is complete, so it logs a request cut mid-head (partial headers-partial, close-early) as \"<BADREQ>\" without the marker: those lines cannot be told from another client's"
        ));
    }
    if found == 0 {
        notes.push(format!(
            "--access-log {file}: no line carried this run's marker; if the listener writes this log, {}",
            how_to_log_marker(&log.format, log.place)
        ));
    }
    notes
}

fn bytes(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else if n >= 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

/// Every `<run>-<n>` token of these runs in the line, as whole tokens: `ab12-1` is not found in
/// `ab12-10` nor in `xab12-1`.
pub fn markers_in(line: &[u8], runs: &BTreeSet<&str>) -> Vec<String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut out = Vec::new();
    for run in runs {
        let prefix = format!("{run}-");
        for at in memchr::memmem::find_iter(line, prefix.as_bytes()) {
            if at > 0 && word(line[at - 1]) {
                continue;
            }
            let rest = &line[at + prefix.len()..];
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 || rest.get(digits).is_some_and(|&b| word(b)) {
                continue;
            }
            let n = std::str::from_utf8(&rest[..digits]).unwrap_or_default();
            out.push(format!("{prefix}{n}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn runs(r: &[&'static str]) -> BTreeSet<&'static str> {
        r.iter().copied().collect()
    }

    #[test]
    fn tokens_are_whole() {
        let line = b"1.2.3.4 \"GET / HTTP/1.1\" 400 \"ab12-10\" xab12-1 ab12-3x ab12-7";
        assert_eq!(markers_in(line, &runs(&["ab12"])), ["ab12-10", "ab12-7"]);
        assert!(markers_in(b"ab12-", &runs(&["ab12"])).is_empty());
    }

    #[test]
    fn carries_marker_by_format() {
        use MarkerPlace::{Header, Query};
        let probe = AccessLog::format_named(PROBE_FORMAT_NAME).unwrap();
        assert_eq!(carries(&probe, Header), Carries::Yes);
        let combined = LogFormat::parse("combined").unwrap();
        assert_eq!(carries(&combined, Header), Carries::No);
        let other = LogFormat::parse("$status \"$http_x_lbprobe_idx\"").unwrap();
        assert_eq!(carries(&other, Header), Carries::No);
        let haproxy = LogFormat::parse("haproxy").unwrap();
        assert_eq!(carries(&haproxy, Header), Carries::IfConfigured);
        assert!(how_to_log_marker(&combined, Header).contains("$http_x_lbprobe_id"));
        assert!(how_to_log_marker(&haproxy, Header).contains(HAPROXY_CAPTURE_LINE));
        // The query-string marker: formats that log the request line or its URI.
        assert_eq!(carries(&combined, Query), Carries::Yes);
        let uri = LogFormat::parse("$status ${request_uri} $upstream_status").unwrap();
        assert_eq!(carries(&uri, Query), Carries::Yes);
        let no_request = LogFormat::parse("$status $request_time $upstream_status").unwrap();
        assert_eq!(carries(&no_request, Query), Carries::No);
        assert!(how_to_log_marker(&no_request, Query).contains("$request"));
        // Where a run puts it: the header where the format logs it or may.
        assert_eq!(place_for(&probe), Header);
        assert_eq!(place_for(&haproxy), Header);
        assert_eq!(place_for(&combined), Query);
        assert_eq!(place_for(&LogFormat::parse("json").unwrap()), Query);
        assert_eq!(place_for(&no_request), Header);
    }

    #[test]
    fn finds_lines_appended_after_the_start_and_in_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let line = |marker: &str, status: u16, up: &str, rt: &str| {
            format!("127.0.0.1 - - [07/Dec/2026:21:00:00 +0000] \"GET / HTTP/1.1\" {status} 0 \"-\" \"ua\" 80 {rt} 127.0.0.1:1 {up} {rt} 0.000 {rt} \"{marker}\"\n")
        };
        // An earlier run's line with the same number is before the start: not this run's.
        std::fs::write(&path, line("ab12-1", 200, "200", "0.001")).unwrap();
        let log = AccessLog {
            wait: Duration::from_millis(300),
            ..AccessLog::new(path.clone(), AccessLog::format_named("probe").unwrap())
        };
        let start = log.start();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(line("ab12-1", 400, "-", "1.002").as_bytes())
            .unwrap();
        f.write_all(line("ab12-2", 502, "502, 504", "0.500").as_bytes())
            .unwrap();
        let markers = vec!["ab12-1".to_string(), "ab12-2".into(), "ab12-3".into()];
        let t0 = Instant::now();
        let found = log.find(start, &markers).unwrap();
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "waited for ab12-3"
        );
        let one = &found.lines["ab12-1"];
        assert_eq!(one.status, 400);
        assert_eq!(one.upstream_status, Some(vec![]));
        assert_eq!(one.request_time_s, Some(1.002));
        assert_eq!(found.lines["ab12-2"].upstream_status, Some(vec![502, 504]));
        assert!(!found.lines.contains_key("ab12-3"));
        // A copy read after the fact (no start mark): the whole file, the first line wins.
        let copy = AccessLog {
            path: dir.path().join("copy.log"),
            ..log.clone()
        };
        std::fs::copy(&path, &copy.path).unwrap();
        let found = copy.find(None, &markers[..1]).unwrap();
        assert_eq!(found.lines["ab12-1"].status, 200);
        assert_eq!(found.lines["ab12-1"].line, 1);
    }

    #[test]
    fn haproxy_line_with_a_capture() {
        let line = b"127.0.0.1:40000 [07/Dec/2026:21:00:00.000] fe be/s1 0/0/1/-1/1002 408 212 - - cR-- 1/1/0/0/0 0/0 {ab12-4} \"GET / HTTP/1.1\"";
        let rec = LogFormat::Haproxy.parse_line(line, false).unwrap();
        let logged = LoggedLine::of("ab12-4", 9, &rec);
        assert_eq!(logged.status, 408);
        assert_eq!(logged.termination.as_deref(), Some("cR"));
        assert_eq!(logged.request_time_s, Some(1.002));
        assert_eq!(logged.upstream_status, Some(vec![]));
        assert_eq!(markers_in(line, &runs(&["ab12"])), ["ab12-4"]);
    }
}
