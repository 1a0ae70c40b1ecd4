//! Reading inputs line by line in bounded memory: plain files split into chunks at newline
//! boundaries and read in parallel with positioned reads, gzip files and stdin as one stream.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::summary::{BadLine, Summary};
use super::{Input, LineError, LogsError, Options, SAMPLE_LINES};

/// Bytes per read.
const READ_SIZE: usize = 1 << 20;
/// A longer line is counted bad and skipped, so one line cannot take unbounded memory.
pub const MAX_LINE: usize = 1 << 20;
/// Chunks smaller than this are not worth a thread.
const MIN_CHUNK: u64 = 8 << 20;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What the reader hands on: whole lines, or the news that a line was too long to keep.
pub enum Block<'a> {
    /// One or more whole lines, each ending in `\n` but for the input's last line.
    Lines(&'a [u8]),
    /// A line longer than [`MAX_LINE`]: counted, its bytes skipped.
    Overlong,
}

/// Feed `r` to `each` in blocks of whole lines, as large as a read allows, so a consumer can
/// scan many lines in one pass. Stops early when `stop` is set or `each` returns false.
pub fn for_each_block<R: Read>(
    mut r: R,
    stop: &AtomicBool,
    mut each: impl FnMut(Block<'_>) -> bool,
) -> io::Result<()> {
    let mut buf = vec![0u8; READ_SIZE + MAX_LINE];
    let (mut start, mut end) = (0usize, 0usize);
    let mut skipping = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if end + READ_SIZE > buf.len() {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let got = loop {
            match r.read(&mut buf[end..end + READ_SIZE]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        let eof = got == 0;
        // Bytes before `scan_from` were searched already and hold no newline.
        let scan_from = end;
        end += got;
        if skipping {
            if let Some(nl) = memchr::memchr(b'\n', &buf[scan_from..end]) {
                skipping = false;
                start = scan_from + nl + 1;
            } else {
                start = end;
            }
        }
        if !skipping {
            if let Some(nl) = memchr::memrchr(b'\n', &buf[start.max(scan_from)..end]) {
                let nl = start.max(scan_from) + nl;
                if !each(Block::Lines(&buf[start..=nl])) {
                    return Ok(());
                }
                start = nl + 1;
            }
        }
        if eof {
            if start < end && !skipping {
                each(Block::Lines(&buf[start..end]));
            }
            return Ok(());
        }
        if !skipping && end - start >= MAX_LINE {
            if !each(Block::Overlong) {
                return Ok(());
            }
            skipping = true;
            start = end;
        }
    }
}

/// Feed each line of `r` (without its `\n`) to `each` with its 1-based number; an overlong line
/// comes as `None`. Stops early when `stop` is set or `each` returns false.
pub fn for_each_line<R: Read>(
    r: R,
    stop: &AtomicBool,
    mut each: impl FnMut(u64, Option<&[u8]>) -> bool,
) -> io::Result<()> {
    let mut n = 0u64;
    for_each_block(r, stop, |block| match block {
        Block::Overlong => {
            n += 1;
            each(n, None)
        }
        Block::Lines(lines) => {
            let mut pos = 0;
            while pos < lines.len() {
                let end = memchr::memchr(b'\n', &lines[pos..]).map_or(lines.len(), |i| pos + i);
                n += 1;
                if !each(n, Some(&lines[pos..end])) {
                    return false;
                }
                pos = end + 1;
            }
            true
        }
    })
}

/// The first lines of an input decide whether it is in the named format at all.
struct Sample {
    seen: u64,
    bad: u64,
    first: Option<BadLine>,
    /// The first few lines that did not parse, whole, to find the format they are in.
    unparsed: Vec<Vec<u8>>,
}

/// How many unparsed lines are kept to guess the right format from, and up to how long.
const GUESS_LINES: usize = 5;
const GUESS_LINE_BYTES: usize = 64 << 10;

impl Sample {
    fn new() -> Sample {
        Sample {
            seen: 0,
            bad: 0,
            first: None,
            unparsed: Vec::new(),
        }
    }

    fn verdict(&self, input: &str, opts: &Options) -> Result<(), LogsError> {
        if self.seen > 0 && self.bad * 2 > self.seen {
            return Err(LogsError::NotThisFormat {
                input: input.to_string(),
                format: opts.format.name(),
                bad: self.bad,
                sampled: self.seen,
                first: Box::new(self.first.clone().unwrap_or(BadLine {
                    input: input.to_string(),
                    line: 0,
                    column: 0,
                    reason: String::new(),
                    text: String::new(),
                })),
                parses_as: super::parses_as(&self.unparsed, &opts.format),
            });
        }
        Ok(())
    }
}

/// Summarise lines from `r`; `sample`: check the first lines against the format.
fn summarise<R: Read>(
    r: R,
    input: &str,
    opts: &Options,
    sample: bool,
    stop: &AtomicBool,
) -> Result<Summary, LogsError> {
    summarise_blocks(input, opts, sample, |each| for_each_block(r, stop, each))
}

/// Summarise the blocks `feed` hands over; `sample`: check the first lines against the format.
fn summarise_blocks(
    input: &str,
    opts: &Options,
    sample: bool,
    feed: impl FnOnce(&mut dyn FnMut(Block<'_>) -> bool) -> io::Result<()>,
) -> Result<Summary, LogsError> {
    let mut acc = Summary::default();
    let mut check = Sample::new();
    let mut failed = None;
    // Line by line while the sample is checked, then whole blocks through the fast scanner.
    let mut sampled = |acc: &mut Summary, line: Option<&[u8]>| -> bool {
        let n = acc.lines + 1;
        let bad_before = acc.bad;
        match line {
            Some(line) => opts.line(input, n, line, acc),
            None => {
                acc.lines += 1;
                acc.bytes += MAX_LINE as u64;
                acc.bad_line(
                    input,
                    n,
                    b"",
                    LineError::new(
                        MAX_LINE,
                        format!("line longer than {MAX_LINE} bytes, skipped"),
                    ),
                );
            }
        }
        if sample && check.seen < SAMPLE_LINES && acc.lines - acc.blank > check.seen {
            check.seen += 1;
            if acc.bad > bad_before {
                check.bad += 1;
                if check.first.is_none() {
                    check.first = acc.bad_samples.last().cloned();
                }
                if let Some(line) = line.filter(|l| l.len() <= GUESS_LINE_BYTES) {
                    if check.unparsed.len() < GUESS_LINES {
                        check.unparsed.push(line.to_vec());
                    }
                }
            }
            if check.seen == SAMPLE_LINES {
                if let Err(e) = check.verdict(input, opts) {
                    failed = Some(e);
                    return false;
                }
            }
        }
        true
    };
    let mut sampling = sample;
    let read = feed(&mut |block| {
        let mut lines = match block {
            Block::Overlong => return sampled(&mut acc, None),
            Block::Lines(lines) => lines,
        };
        while sampling && !lines.is_empty() {
            let end = memchr::memchr(b'\n', lines).unwrap_or(lines.len());
            if !sampled(&mut acc, Some(&lines[..end])) {
                return false;
            }
            lines = &lines[(end + 1).min(lines.len())..];
            sampling = acc.lines - acc.blank < SAMPLE_LINES;
        }
        opts.block(input, lines, &mut acc);
        true
    });
    read.map_err(read_error(input))?;
    if let Some(e) = failed {
        return Err(e);
    }
    if sample && check.seen < SAMPLE_LINES {
        check.verdict(input, opts)?;
    }
    Ok(acc)
}

/// Summarise one input.
pub fn read_input(input: &Input, opts: &Options) -> Result<Summary, LogsError> {
    let name = input.name();
    let io_err = read_error(&name);
    let stop = AtomicBool::new(false);
    match input {
        Input::Stdin => {
            let stdin = io::stdin().lock();
            stream(
                BufReader::with_capacity(READ_SIZE, stdin),
                &name,
                opts,
                &stop,
            )
        }
        Input::File(path) => {
            let file = File::open(path).map_err(io_err)?;
            let len = file.metadata().map_err(io_err)?.len();
            let mut magic = [0u8; 2];
            let is_gzip =
                len >= 2 && file.read_exact_at(&mut magic, 0).is_ok() && magic == GZIP_MAGIC;
            if is_gzip || opts.threads <= 1 || len < 2 * MIN_CHUNK {
                return stream(
                    BufReader::with_capacity(READ_SIZE, file),
                    &name,
                    opts,
                    &stop,
                );
            }
            parallel(&file, len, opts, |i, pos, end, stop| {
                summarise(
                    Range {
                        file: &file,
                        pos,
                        end,
                    },
                    &name,
                    opts,
                    i == 0,
                    stop,
                )
            })
            .map_err(|e| match e {
                Failure::Io(source) => io_err(source),
                Failure::Logs(e) => e,
            })
        }
    }
}

/// A sequential stream, gunzipped when it starts with the gzip magic.
fn stream<R: BufRead>(
    mut r: R,
    name: &str,
    opts: &Options,
    stop: &AtomicBool,
) -> Result<Summary, LogsError> {
    let head = r.fill_buf().map_err(read_error(name))?;
    if head.starts_with(&GZIP_MAGIC) {
        summarise(
            flate2::bufread::MultiGzDecoder::new(r),
            name,
            opts,
            true,
            stop,
        )
    } else {
        summarise(r, name, opts, true, stop)
    }
}

enum Failure {
    Io(io::Error),
    Logs(LogsError),
}

/// Reads `[pos, end)` of a file with positioned reads, so threads share one handle.
struct Range<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Range<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Where each chunk starts: just after the first newline at or past an even split point.
fn chunk_starts(file: &File, len: u64, chunks: u64) -> io::Result<Vec<u64>> {
    let mut starts = vec![0u64];
    let mut window = vec![0u8; 64 * 1024];
    for i in 1..chunks {
        let mut at = (len * i / chunks).max(*starts.last().unwrap_or(&0));
        if at == 0 {
            continue;
        }
        // The chunk starts after the newline that ends the line holding byte at-1.
        at -= 1;
        let start = loop {
            let n = file.read_at(&mut window, at)?;
            if n == 0 {
                break len;
            }
            if let Some(nl) = memchr::memchr(b'\n', &window[..n]) {
                break at + nl as u64 + 1;
            }
            at += n as u64;
        };
        if start < len && start > *starts.last().unwrap_or(&0) {
            starts.push(start);
        }
    }
    Ok(starts)
}

/// Split `file` into chunks at line boundaries and summarise them on `opts.threads` threads with
/// `run(index, start, end, stop)`; the summaries merge in file order.
fn parallel(
    file: &File,
    len: u64,
    opts: &Options,
    run: impl Fn(usize, u64, u64, &AtomicBool) -> Result<Summary, LogsError> + Sync,
) -> Result<Summary, Failure> {
    let chunks = (opts.threads as u64 * 4).min(len / MIN_CHUNK).max(1);
    let starts = chunk_starts(file, len, chunks).map_err(Failure::Io)?;
    let ranges: Vec<(u64, u64)> = starts
        .iter()
        .zip(starts.iter().skip(1).chain(std::iter::once(&len)))
        .map(|(&a, &b)| (a, b))
        .collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Summary, LogsError>>>> =
        Mutex::new((0..ranges.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..opts.threads.min(ranges.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(pos, end)) = ranges.get(i) else {
                    return;
                };
                let r = run(i, pos, end, &stop);
                if r.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                if let Ok(mut all) = results.lock() {
                    all[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut total = Summary::default();
    for r in results {
        match r {
            Some(Ok(s)) => total.merge(s),
            Some(Err(e)) => return Err(Failure::Logs(e)),
            None => {
                return Err(Failure::Io(io::Error::other(
                    "a reader thread stopped before its chunk was read",
                )))
            }
        }
    }
    Ok(total)
}

/// Each line of an input (gunzipped when needed) with its 1-based number; an overlong line
/// comes as `None`. Stops early when `each` returns false.
pub fn for_each_numbered_line(
    input: &Input,
    mut each: impl FnMut(u64, Option<&[u8]>) -> bool,
) -> Result<(), LogsError> {
    let name = input.name();
    let io_err = read_error(&name);
    let source: Box<dyn Read> = match input {
        Input::Stdin => Box::new(io::stdin().lock()),
        Input::File(p) => Box::new(File::open(p).map_err(io_err)?),
    };
    let mut r = BufReader::with_capacity(READ_SIZE, source);
    let stop = AtomicBool::new(false);
    if r.fill_buf().map_err(io_err)?.starts_with(&GZIP_MAGIC) {
        for_each_line(flate2::bufread::MultiGzDecoder::new(r), &stop, &mut each)
    } else {
        for_each_line(r, &stop, &mut each)
    }
    .map_err(io_err)
}

/// The error for a failed read of the input named `name`.
fn read_error(name: &str) -> impl Fn(io::Error) -> LogsError + Copy + '_ {
    move |source| LogsError::Read {
        input: name.to_string(),
        source,
    }
}

/// [`for_each_numbered_line`] without the numbers.
pub fn each_line_of(
    input: &Input,
    mut each: impl FnMut(Option<&[u8]>) -> bool,
) -> Result<(), LogsError> {
    for_each_numbered_line(input, |_, line| each(line))
}

/// Line `n` (1-based) of an input, gunzipped when needed.
pub fn nth_line(input: &Input, n: u64) -> Result<Vec<u8>, LogsError> {
    let mut found = None;
    let mut lines = 0;
    for_each_numbered_line(input, |i, line| {
        lines = i;
        if i == n {
            found = Some(line.unwrap_or(b"(line too long)").to_vec());
            return false;
        }
        true
    })?;
    found.ok_or(LogsError::NoSuchLine {
        input: input.name(),
        wanted: n,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(data: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut out = Vec::new();
        for_each_line(data, &AtomicBool::new(false), |_, l| {
            out.push(l.map(<[u8]>::to_vec));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_with_and_without_a_final_newline() {
        assert_eq!(
            lines_of(b"a\nb\n"),
            vec![Some(b"a".to_vec()), Some(b"b".to_vec())]
        );
        assert_eq!(
            lines_of(b"a\n\nb"),
            vec![Some(b"a".to_vec()), Some(vec![]), Some(b"b".to_vec())]
        );
        assert!(lines_of(b"").is_empty());
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_skipped() {
        let mut data = vec![b'x'; MAX_LINE * 3];
        data.extend_from_slice(b"\nok\n");
        let got = lines_of(&data);
        assert_eq!(got, vec![None, Some(b"ok".to_vec())]);
    }

    #[test]
    fn chunks_start_after_newlines_and_cover_the_file() {
        let mut f = tempfile::tempfile().unwrap();
        let mut data = Vec::new();
        for i in 0..10_000 {
            data.extend_from_slice(format!("line {i} {}\n", "y".repeat(i % 97)).as_bytes());
        }
        io::Write::write_all(&mut f, &data).unwrap();
        let starts = chunk_starts(&f, data.len() as u64, 7).unwrap();
        assert_eq!(starts[0], 0);
        for s in &starts[1..] {
            assert_eq!(data[*s as usize - 1], b'\n');
        }
        assert!(starts.windows(2).all(|w| w[0] < w[1]));
    }
}
